"""The linear probe: one linear layer on frozen, standardised embeddings, L2 strength chosen on validation.

Fitted full-batch with L-BFGS in float64 on the training records only; the validation records choose the L2
strength and the test records are scored once by the chosen model. Small problems run single-threaded.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from aclecg.classifier import check_protocol, loss_of, scores_from_logits, val_criterion
from aclecg.errors import DataError
from aclecg.evaluation.config import EvalConfig

__all__ = ["ProbeResult", "linear_probe"]


@dataclass
class ProbeResult:
    """Test scores of the selected probe, the chosen L2 strength and every grid point's validation score.

    ``weight (E, C)``, ``bias (C,)``, ``mean (E,)`` and ``std (E,)`` are the selected model and the training
    standardisation, so it can score new embeddings: ``(x - mean) / std @ weight + bias`` gives its logits.
    """

    test_scores: np.ndarray
    best_l2: float
    val_scores: dict[float, float]
    val_criterion: str
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    mean: np.ndarray | None = None
    std: np.ndarray | None = None


def linear_probe(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    x_test: np.ndarray,
    protocol: str = "multilabel",
    grid: Sequence[float] = EvalConfig.probe_grid,
    max_iter: int = 100,
) -> ProbeResult:
    """Linear probe on frozen embeddings, fitted full-batch with L-BFGS in float64.

    Features are standardised with the training mean/std. For each L2 strength (strongest first, warm-started)
    one linear layer is fitted on the training records only (one-vs-rest sigmoid for multilabel, softmax for
    singlelabel); the strength with the best validation macro AUROC is kept (ties: the stronger one), and its
    model - fitted on train only, never on val or test - scores the test records.
    """
    check_protocol(protocol)
    if len(x_train) == 0:
        raise DataError("linear probe: no training records")
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std = np.where(std > 1e-8, std, 1.0)

    def prep(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy((np.asarray(x, np.float64) - mean) / std)

    with _few_threads(x_train.size * max(1, len(y_train[0])) < 20_000_000):
        result = _fit_probe(prep(x_train), y_train, prep(x_val), y_val, prep(x_test), protocol, grid, max_iter)
    result.mean, result.std = np.asarray(mean, np.float64), np.asarray(std, np.float64)
    return result


_THREADS_LOCK = threading.Lock()


@contextmanager
def _few_threads(enabled: bool) -> Iterator[None]:
    """Run small problems single-threaded: thread start-up dominates tiny matmuls on busy machines."""
    if not enabled:
        yield
        return
    with _THREADS_LOCK:  # torch's thread count is process-wide: serialise concurrent callers (e.g. app threads)
        previous = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(previous)


def _fit_probe(
    xt: torch.Tensor,
    y_train: np.ndarray,
    xv: torch.Tensor,
    y_val: np.ndarray,
    xs: torch.Tensor,
    protocol: str,
    grid: Sequence[float],
    max_iter: int,
) -> ProbeResult:
    """The grid search of :func:`linear_probe` on standardised float64 tensors."""
    yt, yv = torch.from_numpy(np.asarray(y_train, np.float64)), torch.from_numpy(np.asarray(y_val, np.float64))
    n_classes = yt.shape[1]
    weight = torch.zeros(xt.shape[1], n_classes, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(n_classes, dtype=torch.float64, requires_grad=True)
    best: tuple[float, float, torch.Tensor, torch.Tensor] | None = None
    val_scores: dict[float, float] = {}
    criterion_name = "val_macro_auroc"
    for l2 in sorted(grid, reverse=True):
        opt = torch.optim.LBFGS(
            [weight, bias],
            lr=1.0,
            max_iter=max_iter,
            tolerance_grad=1e-7,
            tolerance_change=1e-10,
            history_size=20,
            line_search_fn="strong_wolfe",
        )

        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = loss_of(xt @ weight + bias, yt, protocol) + 0.5 * l2 * (weight**2).sum()
            loss.backward()
            return loss

        opt.step(closure)
        with torch.no_grad():
            logits_v = xv @ weight + bias
            val_loss = float(loss_of(logits_v, yv, protocol)) if len(yv) else float("nan")
            crit, criterion_name = val_criterion(y_val, scores_from_logits(logits_v, protocol).numpy(), val_loss)
        val_scores[l2] = crit
        if best is None or crit > best[0] + 1e-12:
            best = (crit, l2, weight.detach().clone(), bias.detach().clone())
    assert best is not None
    with torch.no_grad():
        test_scores = scores_from_logits(xs @ best[2] + best[3], protocol).numpy()
    return ProbeResult(test_scores, best[1], val_scores, criterion_name, weight=best[2].numpy(), bias=best[3].numpy())
