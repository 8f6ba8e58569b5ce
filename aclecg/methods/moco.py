"""MoCo: momentum contrast with a key queue (v2) or with in-batch keys and a predictor (v3).

He, Fan, Wu, Xie, Girshick. "Momentum Contrast for Unsupervised Visual Representation Learning". CVPR 2020;
Chen, Fan, Girshick, He. "Improved Baselines with Momentum Contrastive Learning" (MoCo v2), arXiv:2003.04297;
Chen, Xie, He. "An Empirical Study of Training Self-Supervised Vision Transformers" (MoCo v3), ICCV 2021.

v2 (default): query ``q = g(f(x1))`` from the online encoder, key ``k = g'(f'(x2))`` from the momentum
encoder (``theta' <- m theta' + (1 - m) theta``, constant ``m = 0.999``), a queue ``{k_j}`` of ``K`` past keys:

    L = -log( exp(q.k / tau) / (exp(q.k / tau) + sum_j exp(q.k_j / tau)) )        (all vectors L2-normalised)

then the keys of the (global) batch are enqueued, oldest out. Published: ``K = 65536``, ``tau = 0.2``, MLP head
2048 -> 128. Here ``K = 1024`` by default (the queue should stay a small fraction of the training set; with
~1000 records a larger queue mostly holds stale keys of the same records), head 768 -> 256 -> 64.

v3 (``version="v3"``): no queue; a predictor ``h`` on the online branch, keys of the whole batch as negatives,
symmetrised and scaled as published, ``L = 2 tau [CE(h(q1) k2^T / tau, I) + CE(h(q2) k1^T / tau, I)]``;
projector 3 layers with a final affine-free BN, predictor 2 layers; momentum cosine-scheduled from
``m = 0.99`` to 1. Published ``tau`` is 1.0 for ResNet-50 and 0.2 for ViT; we keep one ``temperature``
default of 0.2 for both versions.

One registered method, ``moco``, and one class per version (as solo-learn keeps one file per method version):
:class:`MoCo` holds what both share (name, hyper-parameters, the EMA targets of
:class:`~aclecg.methods.momentum.MomentumMethod`), and building ``moco`` gives the class of its ``version``:
:class:`~aclecg.methods.moco_v2.MoCoV2` (:func:`~aclecg.methods.losses.moco_queue_loss`) or
:class:`~aclecg.methods.moco_v3.MoCoV3` (:func:`~aclecg.methods.losses.moco_v3_loss`).

Example:
    >>> from aclecg.methods import create_method
    >>> method = create_method("moco", "small", queue_size=64)
    >>> type(method).__name__, tuple(method.queue.shape), method.extra_state_description()["ema"]["schedule"]
    ('MoCoV2', (64, 64), 'constant')
"""

from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor, nn

from aclecg.constraints import Constraint, Integer, Optional, Options, Real
from aclecg.errors import ConfigError
from aclecg.methods.momentum import MomentumMethod
from aclecg.methods.registry import register_method

__all__ = ["MoCo"]


@register_method
class MoCo(MomentumMethod):
    """MoCo v2 (queue, constant momentum) or v3 (in-batch keys, predictor, cosine momentum).

    ``MoCo(..., version=v)`` builds the subclass registered for ``v`` in :attr:`VERSIONS`; each subclass builds its
    heads (:meth:`_build_heads`) and defines ``forward``, its momentum schedule and its extra state.
    """

    NAME = "moco"
    TITLE = "MoCo (v2 / v3)"
    PAPER = (
        "He et al., Momentum Contrast for Unsupervised Visual Representation Learning, CVPR 2020; "
        "Chen et al., Improved Baselines with Momentum Contrastive Learning, arXiv:2003.04297 (v2); "
        "Chen, Xie, He, An Empirical Study of Training Self-Supervised Vision Transformers, ICCV 2021 (v3)"
    )
    DESCRIPTION = "InfoNCE between online queries and momentum-encoder keys; v2 queue of negatives, v3 in-batch."
    LOSS_TERMS = ("loss", "infonce")
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "augmentation": "standard",
        "version": "v2",
        "temperature": 0.2,
        "queue_size": 1024,
        "momentum": None,
        "ema_half_life": None,
        "proj_hidden_dim": 256,
        "proj_dim": 64,
        "pred_hidden_dim": 256,
    }
    PARAMS: ClassVar[dict[str, Constraint]] = {
        "version": Options(("v2", "v3")),
        "temperature": Real(0, lo_open=True),
        "queue_size": Integer(1),
        "momentum": Optional(Real(0, 1, hi_open=True)),
        "ema_half_life": Optional(Real(0, 1, lo_open=True)),
        "proj_hidden_dim": Integer(1),
        "proj_dim": Integer(1),
        "pred_hidden_dim": Integer(1),
    }
    MOMENTUM_HPARAM = "momentum"
    #: The class of each version (each subclass adds itself under its :attr:`VERSION`).
    VERSIONS: ClassVar[dict[str, type[MoCo]]] = {}
    #: The ``version`` this class implements (empty for the shared base).
    VERSION: ClassVar[str] = ""
    #: The momentum when the ``momentum`` hyper-parameter is null.
    DEFAULT_MOMENTUM: ClassVar[float] = 0.999
    predictor: nn.Module | None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.VERSION:
            MoCo.VERSIONS[cls.VERSION] = cls

    def __new__(cls, *args: Any, **hparams: Any) -> MoCo:
        if cls is MoCo:  # the registered name builds the class of its version (a bad one fails validation there)
            version = hparams.get("version", cls.DEFAULTS["version"])
            cls = MoCo.VERSIONS.get(version if isinstance(version, str) else "", MoCo.VERSIONS["v2"])
        return super().__new__(cls)

    def __init__(self, encoder_config: Any = None, region_map: Any = None, **hparams: Any) -> None:
        super().__init__(encoder_config, region_map, **hparams)
        h = self.hparams
        if self.VERSION and h["version"] != self.VERSION:
            raise ConfigError(f"{type(self).__name__} is MoCo {self.VERSION}; build version {h['version']} as 'moco'")
        if h["momentum"] is None:
            h["momentum"] = self.DEFAULT_MOMENTUM
        self._build_heads(self.encoder.embedding_dim)
        self._build_targets()

    def _build_heads(self, embedding_dim: int) -> None:
        raise NotImplementedError

    def forward(self, view1: Tensor, view2: Tensor) -> dict[str, Tensor]:  # pragma: no cover - per version
        raise NotImplementedError
