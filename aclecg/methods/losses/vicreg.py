"""VICReg: variance-invariance-covariance regularisation of the two views' expander outputs.

Bardes, Ponce, LeCun. "VICReg: Variance-Invariance-Covariance Regularization for Self-Supervised Learning".
ICLR 2022 (arXiv:2105.04906).

For expander outputs ``Z, Z'`` ``(N, d)``:

    s(Z, Z') = mean_b ||z_b - z'_b||^2 / d                                   (invariance, MSE)
    v(Z)     = mean_j max(0, gamma - sqrt(Var(Z_.j) + eps)),   gamma = 1, eps = 1e-4
    c(Z)     = sum_{i != j} Cov(Z)_ij^2 / d,   Cov(Z) = (Z - mean)^T (Z - mean) / (N - 1)
    L = lambda s + mu [v(Z) + v(Z')] / 2 + nu [c(Z) + c(Z')],   (lambda, mu, nu) = (25, 25, 1)

(the 1/2 on the variance term and the sum of the two covariance terms follow the authors' released code).
All three terms use the global batch, gathered with :func:`~aclecg.methods.distributed.gather_with_grad`;
every rank computes the full loss.

Example:
    >>> import torch
    >>> inv, var, cov = vicreg_terms(torch.randn(64, 8), torch.randn(64, 8))
    >>> float(inv) > 0 and float(var) >= 0 and float(cov) >= 0
    True
    >>> loss, terms = vicreg_loss(torch.randn(64, 8), torch.randn(64, 8), return_terms=True)
    >>> list(terms)
    ['invariance', 'variance', 'covariance']
"""

from __future__ import annotations

from typing import Literal, overload

import torch
import torch.nn.functional as F
from torch import Tensor

from aclecg.methods.distributed import gather_with_grad
from aclecg.methods.precision import float32_loss

__all__ = ["vicreg_loss", "vicreg_terms"]


def _variance_term(z: Tensor, gamma: float, eps: float) -> Tensor:
    std = torch.sqrt(z.var(dim=0) + eps)
    return F.relu(gamma - std).mean()


def _covariance_term(z: Tensor) -> Tensor:
    n, d = z.shape
    zc = z - z.mean(dim=0, keepdim=True)
    cov = zc.T @ zc / (n - 1)
    return (cov.pow(2).sum() - torch.diagonal(cov).pow(2).sum()) / d


@float32_loss
def vicreg_terms(z1: Tensor, z2: Tensor, gamma: float = 1.0, eps: float = 1e-4) -> tuple[Tensor, Tensor, Tensor]:
    """``(invariance, variance, covariance)`` on the globally gathered batch."""
    a, b = gather_with_grad(z1), gather_with_grad(z2)
    inv = F.mse_loss(a, b)
    var = 0.5 * (_variance_term(a, gamma, eps) + _variance_term(b, gamma, eps))
    cov = _covariance_term(a) + _covariance_term(b)
    return inv, var, cov


@overload
def vicreg_loss(
    z1: Tensor,
    z2: Tensor,
    sim_coeff: float = ...,
    std_coeff: float = ...,
    cov_coeff: float = ...,
    return_terms: Literal[False] = ...,
) -> Tensor: ...


@overload
def vicreg_loss(
    z1: Tensor,
    z2: Tensor,
    sim_coeff: float = ...,
    std_coeff: float = ...,
    cov_coeff: float = ...,
    *,
    return_terms: Literal[True],
) -> tuple[Tensor, dict[str, Tensor]]: ...


def vicreg_loss(
    z1: Tensor,
    z2: Tensor,
    sim_coeff: float = 25.0,
    std_coeff: float = 25.0,
    cov_coeff: float = 1.0,
    return_terms: bool = False,
) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
    """``sim_coeff * invariance + std_coeff * variance + cov_coeff * covariance`` of ``z1``, ``z2`` ``(n, d)``.

    With ``return_terms`` also ``{"invariance": ..., "variance": ..., "covariance": ...}`` (not detached).
    """
    inv, var, cov = vicreg_terms(z1, z2)
    loss = sim_coeff * inv + std_coeff * var + cov_coeff * cov
    return (loss, {"invariance": inv, "variance": var, "covariance": cov}) if return_terms else loss
