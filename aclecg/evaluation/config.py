"""Evaluation settings: a sweep's defaults, :class:`EvalConfig` and the cache locations.

``EvalConfig`` is plain data and part of every sweep cell's key (:meth:`EvalConfig.key_for`), so changing a
setting that alters a cell's result recomputes that cell and nothing else.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from aclecg.constraints import EVAL_PARAMS, PROTOCOLS, validate
from aclecg.evaluation.arms import arm_display_name, is_trained
from aclecg.paths import embeddings_cache_dir

__all__ = [
    "DEFAULT_ARMS",
    "DEFAULT_FRACTIONS",
    "DEFAULT_SEEDS",
    "PROTOCOLS",
    "EvalConfig",
    "arm_display_name",
    "digest",
    "embedding_cache_dir",
]

DEFAULT_ARMS: tuple[str, ...] = ("linear_probe", "random_init", "supervised")
#: Label seeds per fraction (seeds 0..N-1) of ``aclecg sweep`` and :func:`~aclecg.evaluation.run_sweep`.
DEFAULT_SEEDS = 3

DEFAULT_FRACTIONS: tuple[float, ...] = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0)


@dataclass(frozen=True)
class EvalConfig:
    """Hyper-parameters of the probe and of the trained arms (plain data; part of every cell's key).

    ``probe_grid`` holds L2 strengths (on the mean loss, standardised features) tried for the linear probe.
    The trained arms (``fine_tune``, ``supervised``, ``reference_cnn``) run at most ``max_steps`` optimiser
    steps, measure the validation macro AUROC every ``eval_every`` steps and stop after ``patience`` steps
    without improvement; before that they validate the untrained model (step 0) and every ``dense_every`` steps up
    to ``dense_until`` (``dense_until=0``: the pre-2026-12-04 schedule, every ``eval_every`` steps from step
    ``eval_every``); each learning rate of ``lr_grid`` is tried and the one that validates best is kept
    (see :mod:`aclecg.classifier`). With ``lr_selection="first_seed"`` only the first seed of each arm and
    fraction searches the grid and the other seeds reuse its choice (a third of the cost); ``"every_cell"``
    searches in every cell. With ``lr_extend=k`` a search whose top or bottom rate validates best tries the next
    half-decade rate past it, at most ``k`` more rates (:mod:`aclecg.lrsearch`). When the validation fold has
    more than ``val_cap`` records (``0``: no cap), training
    validates on a fixed class-stratified subsample of ``val_cap`` records and scores the whole fold once at each
    learning rate's best step (:mod:`aclecg.evaluation.finetune`); smaller folds are validated whole, as before.
    """

    probe_grid: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)
    probe_max_iter: int = 100
    max_steps: int = 2000
    eval_every: int = 20
    dense_every: int = 5
    dense_until: int = 100
    patience: int = 200
    batch_size: int = 64
    lr_grid: tuple[float, ...] = (1e-4, 3e-4, 1e-3, 3e-3)
    lr_selection: str = "first_seed"
    lr_extend: int = 0
    val_cap: int = 256
    n_bootstrap: int = 1000
    embed_batch_size: int = 256
    device: str = "auto"

    def __post_init__(self) -> None:
        """Check every parameter against :data:`aclecg.constraints.EVAL_PARAMS` (grids become float tuples)."""
        for key, value in validate("evaluation config", EVAL_PARAMS, asdict(self)).items():
            object.__setattr__(self, key, value)

    def key_for(self, arm_kind: str, n_val: int | None = None) -> dict[str, Any]:
        """The settings that change the result of a cell of this arm kind.

        ``val_cap`` enters a trained arm's key only when it changes the result: when ``n_val`` (the validation
        fold's size) exceeds it, or, without ``n_val``, when it is not the default. Cells of folds the cap does
        not reach keep the keys they had before the cap existed.
        """
        trained = is_trained(arm_kind)
        if not trained:
            keys: tuple[str, ...] = ("probe_grid", "probe_max_iter", "n_bootstrap")
        else:
            keys = ("max_steps", "eval_every", "patience", "batch_size", "lr_grid", "lr_selection", "n_bootstrap")
        out = {k: getattr(self, k) for k in keys}
        if trained and self.dense_until > 0:
            # only then, so cells trained on the old schedule (dense_until=0) keep their keys
            out["dense"] = [self.dense_every, self.dense_until]
        if trained and self.lr_extend > 0:  # only then, so the cells of a fixed grid keep their keys
            out["lr_extend"] = self.lr_extend
        if trained and self._cap_matters(n_val):
            out["val_cap"] = self.val_cap
        if arm_kind == "reference_cnn":
            from aclecg.reference_cnn import ReferenceCNNConfig  # torch: only when a reference arm is keyed

            out["network"] = ReferenceCNNConfig().to_dict()
        return out

    def _cap_matters(self, n_val: int | None) -> bool:
        if n_val is None:
            return self.val_cap != EvalConfig.val_cap
        return 0 < self.val_cap < n_val


def embedding_cache_dir() -> Path:
    """Where :func:`aclecg.evaluation.cached_embeddings` keeps embeddings by default
    (:func:`aclecg.paths.embeddings_cache_dir`, the app's folder too)."""
    return embeddings_cache_dir()


def digest(obj: Any) -> str:
    """The sha256 (hex) of ``obj`` as sorted JSON: the weights key of a random encoder and of every sweep cell."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()
