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

The loss is :func:`aclecg.methods.losses.vicreg_loss`.

Example:
    >>> import torch
    >>> from aclecg.methods import create_method
    >>> method = create_method("vicreg", "small", proj_dim=64)
    >>> list(method(torch.randn(8, 12, 250), torch.randn(8, 12, 250)))
    ['loss', 'invariance', 'variance', 'covariance']
"""

from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor

from aclecg.constraints import Constraint, Integer, Real
from aclecg.methods.base import SSLMethod
from aclecg.methods.heads import projection_head
from aclecg.methods.losses import vicreg_loss
from aclecg.methods.registry import register_method

__all__ = ["VICReg"]


@register_method
class VICReg(SSLMethod):
    """VICReg on the record embedding."""

    NAME = "vicreg"
    TITLE = "VICReg"
    PAPER = "Bardes, Ponce, LeCun, VICReg: Variance-Invariance-Covariance Regularization, ICLR 2022"
    DESCRIPTION = "Invariance (MSE) + variance hinge + covariance decorrelation on the expander outputs."
    LOSS_TERMS = ("loss", "invariance", "variance", "covariance")
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "augmentation": "standard",
        "sim_coeff": 25.0,
        "std_coeff": 25.0,
        "cov_coeff": 1.0,
        "proj_dim": 512,
    }
    PARAMS: ClassVar[dict[str, Constraint]] = {
        "sim_coeff": Real(0),
        "std_coeff": Real(0),
        "cov_coeff": Real(0),
        "proj_dim": Integer(1),
    }

    def __init__(self, encoder_config: Any = None, region_map: Any = None, **hparams: Any) -> None:
        super().__init__(encoder_config, region_map, **hparams)
        h = self.hparams
        self.projector = projection_head(self.encoder.embedding_dim, h["proj_dim"], h["proj_dim"], n_layers=3)

    def forward(self, view1: Tensor, view2: Tensor) -> dict[str, Tensor]:
        z1 = self.projector(self.encoder(view1).embedding)
        z2 = self.projector(self.encoder(view2).embedding)
        h = self.hparams
        loss, terms = vicreg_loss(z1, z2, h["sim_coeff"], h["std_coeff"], h["cov_coeff"], return_terms=True)
        return {"loss": loss, **{name: term.detach() for name, term in terms.items()}}
