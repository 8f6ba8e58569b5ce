"""Projection and prediction heads of the self-supervised methods (in the style of lightly's ``heads`` module).

Every head is an MLP of ``Linear`` layers with ``BatchNorm1d`` + ``ReLU`` between them, applied to ``(N, C)`` or,
for the lead- and region-level methods, to ``(N, K, C)`` (the middle axis is folded into the batch, so one head
is shared across leads or regions). The layer layout (and hence every parameter name) is what the methods have
always built, so checkpoints load unchanged:

* :func:`projection_head` with 2 layers: SimCLR, MoCo v2, BYOL, DLC, DLA, LCD, ACL-ECG
  (``Linear-BN-ReLU-Linear``, as in SimCLR and BYOL);
* :func:`projection_head` with 3 layers: Barlow Twins' projector and VICReg's expander;
* :func:`projection_head` with 3 layers and ``standardize_output=True``: SimSiam and MoCo v3 (a final
  affine-free BatchNorm, the output of every layer normalised);
* :func:`prediction_head`: BYOL, SimSiam, MoCo v3 and LCD (``dim -> hidden -> dim``, 2 layers).

Example:
    >>> import torch
    >>> head = projection_head(16, 32, 8)
    >>> head(torch.randn(4, 16)).shape, head(torch.randn(4, 12, 16)).shape    # record- or lead-level
    (torch.Size([4, 8]), torch.Size([4, 12, 8]))
    >>> prediction_head(8, 4)(torch.randn(4, 8)).shape
    torch.Size([4, 8])
"""

from __future__ import annotations

from torch import Tensor, nn

from aclecg.errors import ConfigError

__all__ = ["mlp", "prediction_head", "projection_head"]


def mlp(
    in_dim: int, hidden_dim: int, out_dim: int, n_layers: int = 2, last_bn: bool = False, last_bn_affine: bool = True
) -> nn.Sequential:
    """Projector/predictor: ``n_layers`` linear layers with BN + ReLU between them (SimCLR/BYOL style).

    ``last_bn`` appends a BatchNorm1d to the output (SimSiam, MoCo v3); ``last_bn_affine=False`` makes it a
    pure standardisation. Inputs may be ``(N, C)`` or ``(N, K, C)`` (the extra axis is folded into the batch).
    """
    if n_layers < 1:
        raise ConfigError(f"an MLP needs at least one layer, got {n_layers}")
    layers: list[nn.Module] = []
    dims = [in_dim] + [hidden_dim] * (n_layers - 1) + [out_dim]
    for i in range(n_layers):
        last = i == n_layers - 1
        layers.append(nn.Linear(dims[i], dims[i + 1], bias=last and not last_bn))
        if not last:
            layers += [nn.BatchNorm1d(dims[i + 1]), nn.ReLU(inplace=True)]
    if last_bn:
        layers.append(nn.BatchNorm1d(out_dim, affine=last_bn_affine))
    return _FoldMLP(*layers)


class _FoldMLP(nn.Sequential):
    """An MLP that accepts ``(N, ..., C)`` by folding the middle axes into the batch (shared across leads)."""

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 2:
            return super().forward(x)
        lead_shape = x.shape[:-1]
        return super().forward(x.reshape(-1, x.shape[-1])).reshape(*lead_shape, -1)


def projection_head(
    in_dim: int, hidden_dim: int, out_dim: int, n_layers: int = 2, standardize_output: bool = False
) -> nn.Sequential:
    """The projector ``in_dim -> hidden_dim (x n_layers - 1) -> out_dim``.

    ``standardize_output`` ends it with an affine-free BatchNorm (SimSiam, MoCo v3) instead of a biased linear
    layer.
    """
    return mlp(in_dim, hidden_dim, out_dim, n_layers=n_layers, last_bn=standardize_output, last_bn_affine=False)


def prediction_head(dim: int, hidden_dim: int) -> nn.Sequential:
    """The predictor ``dim -> hidden_dim -> dim`` of BYOL, SimSiam, MoCo v3 and LCD (2 layers, no output BN)."""
    return mlp(dim, hidden_dim, dim, n_layers=2)
