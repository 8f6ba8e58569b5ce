"""VICReg: variance-invariance-covariance regularisation.

Bardes, Ponce, LeCun. "VICReg: Variance-Invariance-Covariance Regularization for Self-Supervised Learning".
ICLR 2022 (arXiv:2105.04906).

For expander outputs ``Z, Z'`` ``(N, d)``:

    s(Z, Z') = mean_b ||z_b - z'_b||^2 / d                                   (invariance, MSE)
    v(Z)     = mean_j max(0, gamma - sqrt(Var(Z_.j) + eps)),   gamma = 1, eps = 1e-4
    c(Z)     = sum_{i != j} Cov(Z)_ij^2 / d,   Cov(Z) = (Z - mean)^T (Z - mean) / (N - 1)
    L = lambda s + mu [v(Z) + v(Z')] / 2 + nu [c(Z) + c(Z')],   (lambda, mu, nu) = (25, 25, 1)

(the 1/2 on the variance term and the sum of the two covariance terms follow the authors' released code).
All three terms use the global batch, gathered with :func:`~aclecg.methods.distributed.gather_with_grad`;
every rank computes the full loss. Published expander 3 x 8192; here 3 x 512.

Example:
    >>> import torch
    >>> from aclecg.methods.vicreg import vicreg_terms
    >>> inv, var, cov = vicreg_terms(torch.randn(64, 8), torch.randn(64, 8))
    >>> float(inv) > 0 and float(var) >= 0 and float(cov) >= 0
    True
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from aclecg.methods.base import SSLMethod, mlp
from aclecg.methods.distributed import gather_with_grad
from aclecg.methods.precision import float32_loss
from aclecg.methods.registry import register_method

__all__ = ["VICReg", "vicreg_terms", "vicreg_loss"]


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


def vicreg_loss(z1: Tensor, z2: Tensor, sim_coeff: float = 25.0, std_coeff: float = 25.0,
                cov_coeff: float = 1.0) -> Tensor:
    inv, var, cov = vicreg_terms(z1, z2)
    return sim_coeff * inv + std_coeff * var + cov_coeff * cov


@register_method
class VICReg(SSLMethod):
    """VICReg on the record embedding."""

    NAME = "vicreg"
    TITLE = "VICReg"
    PAPER = "Bardes, Ponce, LeCun, VICReg: Variance-Invariance-Covariance Regularization, ICLR 2022"
    DESCRIPTION = "Invariance (MSE) + variance hinge + covariance decorrelation on the expander outputs."
    DEFAULTS: dict[str, Any] = {"augmentation": "standard", "sim_coeff": 25.0, "std_coeff": 25.0,
                                "cov_coeff": 1.0, "proj_dim": 512}

    def __init__(self, encoder_config: Any = None, region_map: Any = None, **hparams: Any) -> None:
        super().__init__(encoder_config, region_map, **hparams)
        h = self.hparams
        self.projector = mlp(self.encoder.embedding_dim, h["proj_dim"], h["proj_dim"], n_layers=3)

    def _check_hparams(self) -> None:
        self._positive("proj_dim")
        for key in ("sim_coeff", "std_coeff", "cov_coeff"):
            self._require(self.hparams[key] >= 0, key, ">= 0")

    def forward(self, view1: Tensor, view2: Tensor) -> dict[str, Tensor]:
        z1 = self.projector(self.encoder(view1).embedding)
        z2 = self.projector(self.encoder(view2).embedding)
        inv, var, cov = vicreg_terms(z1, z2)
        h = self.hparams
        loss = h["sim_coeff"] * inv + h["std_coeff"] * var + h["cov_coeff"] * cov
        return {"loss": loss, "invariance": inv.detach(), "variance": var.detach(), "covariance": cov.detach()}
