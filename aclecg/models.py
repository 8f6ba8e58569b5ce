"""ECG encoders: a per-lead 1D xresnet shared across leads, its presets, and the classifier helper.

The encoder follows the xresnet1d family (He et al., "Bag of Tricks for Image Classification with
Convolutional Neural Networks", CVPR 2019, adapted to 1D ECGs by Strodthoff et al., IEEE JBHI 2021):
a stem, residual stages of two-convolution basic blocks (the last BN of each block is zero-initialised, the
shortcut downsamples by average pooling), and a concat (average + max) pooling head. Two stems:

* ``"xresnet"``: the xresnet stem, three convolutions (the first with stride 2) and a stride-2 max pool;
* ``"strided"``: a convolution of kernel 7 and stride 4 straight to ``widths[0]`` channels, then one more
  convolution at that rate. It reaches the xresnet stem's time resolution (``T / 4``) and about its receptive
  field (23 against 25 samples) without running two narrow convolutions, their batch norms and a max pool at
  ``T / 2``, which took about half of the encoder's training time on a CPU (``benchmarks/bench_encoder.py``).
  With a single convolution the stem was faster still, but lost 2.6 AUROC points in the quality guard
  (``benchmarks/README.md``).

Layout: every lead goes through the network as a ``(N, C, 1, T)`` tensor in channels-last memory format
(``kernel (1, k)`` 2-D convolutions, pools and batch norms). oneDNN runs channels-last convolutions of a few
channels without reordering their inputs and outputs: 1.1-1.3x faster training and 1.4-1.5x faster evaluation
for the xresnet stem, about 1.6x for the strided one, than the same networks in the ``(N, C, T)`` layout. The
parameters keep their 1-D shapes (``Conv1d`` weights ``(out, in, k)``, ``BatchNorm1d``), so every checkpoint
written before loads unchanged.

Every lead goes through the *same* network on its own: ``(B, L, T)`` is reshaped to ``(B * L, 1, T)``,
encoded to ``D`` features, and reshaped back to ``lead_features (B, L, D)``; the record embedding is the
concatenation of the lead features, ``(B, L * D)``. The encoder therefore works for any lead subset (the
config records which leads, in which order).

>>> import torch
>>> from aclecg.models import ECGEncoder, ENCODER_PRESETS, count_parameters
>>> enc = ECGEncoder(ENCODER_PRESETS["small"])
>>> out = enc(torch.randn(2, 12, 1000))
>>> tuple(out.lead_features.shape), tuple(out.embedding.shape)
((2, 12, 64), (2, 768))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, NamedTuple, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aclecg.errors import ConfigError, DataError
from aclecg.leads import LEADS, canonical_lead
from aclecg.registry import Registry

__all__ = [
    "ENCODER_PRESETS",
    "ENCODER_PRESET_REGISTRY",
    "Classifier",
    "ECGEncoder",
    "EncoderConfig",
    "EncoderOutput",
    "build_classifier",
    "build_encoder",
    "count_parameters",
    "resolve_encoder_config",
]


@dataclass(frozen=True)
class EncoderConfig:
    """Hyper-parameters of :class:`ECGEncoder` (plain data; ``to_dict``/``from_dict`` round-trip through JSON).

    Attributes:
        leads: the leads the encoder sees, in input order (canonical names; any non-empty subset of the 12).
        stem_width: channels of the first two stem convolutions.
        widths: channels of each residual stage (the third stem convolution outputs ``widths[0]``).
        blocks: number of residual blocks per stage (same length as ``widths``).
        kernel_size: odd kernel size of every non-shortcut convolution.
        feature_dim: ``D``, the size of one lead's feature vector.
        dropout: dropout probability before the final linear layer of the head.
        stem: ``"xresnet"`` (three convolutions + max pool; ``stem_width`` channels) or ``"strided"`` (a
            convolution of kernel 7, stride 4, then one of ``kernel_size``; ``stem_width`` unused). Configs
            written before this key existed mean ``"xresnet"``.
    """

    leads: tuple[str, ...] = LEADS
    stem_width: int = 8
    widths: tuple[int, ...] = (16, 32, 64)
    blocks: tuple[int, ...] = (1, 1, 1)
    kernel_size: int = 5
    feature_dim: int = 64
    dropout: float = 0.0
    stem: str = "xresnet"

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def n_leads(self) -> int:
        return len(self.leads)

    @property
    def embedding_dim(self) -> int:
        """Size of the record embedding (``n_leads * feature_dim``)."""
        return self.n_leads * self.feature_dim

    def to_dict(self) -> dict[str, Any]:
        """Plain data. ``stem`` is left out when it is ``"xresnet"``, so that the configs, checkpoint metadata and
        cache keys of encoders from before the key existed stay byte-identical."""
        data = asdict(self)
        if data["stem"] == "xresnet":
            del data["stem"]
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EncoderConfig:
        """Build a config from plain data; unknown keys or bad values raise ``ConfigError`` naming the key."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"encoder config must be a mapping, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown encoder config key(s) {unknown}; accepted: {sorted(known)}")
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key in ("leads", "widths", "blocks"):
                if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
                    raise ConfigError(f"encoder config key {key!r} must be a list, got {value!r}")
                value = tuple(value)
            kwargs[key] = value
        return cls(**kwargs)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _validate(cfg: EncoderConfig) -> None:
    if isinstance(cfg.leads, str) or not cfg.leads:
        raise ConfigError("encoder config key 'leads' must list at least one lead")
    try:
        canon = tuple(canonical_lead(lead) for lead in cfg.leads)
    except ValueError as exc:
        raise ConfigError(f"encoder config key 'leads': {exc}") from None
    if len(set(canon)) != len(canon):
        raise ConfigError(f"encoder config key 'leads' has duplicates: {list(cfg.leads)}")
    object.__setattr__(cfg, "leads", canon)
    for key in ("stem_width", "feature_dim", "kernel_size"):
        value = getattr(cfg, key)
        if not _is_int(value) or value < 1:
            raise ConfigError(f"encoder config key {key!r} must be a positive integer, got {value!r}")
    if cfg.kernel_size % 2 == 0:
        raise ConfigError(f"encoder config key 'kernel_size' must be odd, got {cfg.kernel_size}")
    for key in ("widths", "blocks"):
        value = getattr(cfg, key)
        if (
            isinstance(value, (str, bytes))
            or not isinstance(value, Sequence)
            or not value
            or not all(_is_int(v) and v >= 1 for v in value)
        ):
            raise ConfigError(
                f"encoder config key {key!r} must be a non-empty list of positive integers, got {value!r}"
            )
        object.__setattr__(cfg, key, tuple(value))
    if len(cfg.widths) != len(cfg.blocks):
        raise ConfigError(
            f"encoder config keys 'widths' and 'blocks' must have the same length, got "
            f"{len(cfg.widths)} and {len(cfg.blocks)}"
        )
    if isinstance(cfg.dropout, bool) or not isinstance(cfg.dropout, (int, float)) or not 0 <= cfg.dropout < 1:
        raise ConfigError(f"encoder config key 'dropout' must be a number in [0, 1), got {cfg.dropout!r}")
    object.__setattr__(cfg, "dropout", float(cfg.dropout))
    if cfg.stem not in STEMS:
        raise ConfigError(f"encoder config key 'stem' must be one of {list(STEMS)}, got {cfg.stem!r}")


#: The stems an encoder can start with (see the module docstring).
STEMS: tuple[str, ...] = ("xresnet", "strided")


#: Encoder presets as data.
#:
#: * ``small`` (~54 k parameters, the default since 2026-12): the strided stem. It pretrains on a CPU in minutes on
#:   ~1000 records; it runs once per lead, 12 times per record, so its width sets the CPU cost.
#: * ``small-v1``: the xresnet stem, the ``small`` of every checkpoint shipped before 2026-12 (their configurations
#:   name it, so they reproduce).
#: * ``base`` (~3.4 M parameters): for a GPU.
ENCODER_PRESETS: dict[str, EncoderConfig] = {
    "small": EncoderConfig(stem="strided"),
    "small-v1": EncoderConfig(),
    "base": EncoderConfig(
        stem_width=32, widths=(64, 128, 192, 256), blocks=(2, 2, 2, 2), kernel_size=7, feature_dim=128, dropout=0.0
    ),
}
#: The same presets in a :class:`~aclecg.registry.Registry` (what :func:`resolve_encoder_config` looks names up in).
ENCODER_PRESET_REGISTRY: Registry[EncoderConfig] = Registry("encoder preset")
for _name, _config in ENCODER_PRESETS.items():
    ENCODER_PRESET_REGISTRY.register(_name, _config)
del _name, _config


def resolve_encoder_config(
    spec: EncoderConfig | Mapping[str, Any] | str | None, leads: Sequence[str] | None = None
) -> EncoderConfig:
    """An :class:`EncoderConfig` from a config, a plain dict, or a preset name (``None`` = ``"small"``).

    ``leads``, when given, replaces the config's leads.
    """
    if spec is None:
        spec = "small"
    if isinstance(spec, str):
        cfg = ENCODER_PRESET_REGISTRY.get(spec)
    elif isinstance(spec, EncoderConfig):
        cfg = spec
    elif isinstance(spec, Mapping):
        cfg = EncoderConfig.from_dict(spec)
    else:
        raise ConfigError(
            f"encoder config must be a preset name, a mapping or an EncoderConfig, got {type(spec).__name__}"
        )
    if leads is not None:
        if isinstance(leads, str):
            raise ConfigError(f"leads must be a list of lead names, got the string {leads!r}")
        cfg = replace(cfg, leads=tuple(leads))
    return cfg


class EncoderOutput(NamedTuple):
    """``lead_features`` ``(B, L, D)`` and the record ``embedding`` ``(B, L * D)`` (their concatenation)."""

    lead_features: Tensor
    embedding: Tensor


class _Conv(nn.Conv1d):
    """A ``Conv1d`` (same parameters, same state dict) computed as a ``(1, k)`` 2-D convolution, channels-last."""

    def forward(self, x: Tensor) -> Tensor:  # x: (N, C, 1, T)
        return self.apply_weights(x, self.weight, self.bias)

    def apply_weights(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        """This convolution's geometry with the given ``(out, in, k)`` weight and bias (also batch-norm-folded)."""
        weight = weight.unsqueeze(2).contiguous(memory_format=torch.channels_last)
        padding = cast(tuple[int, ...], self.padding)  # built with an int padding, never a string mode
        out = F.conv2d(x, weight, bias, (1, self.stride[0]), (0, padding[0]))
        # With one input channel, input and weight look contiguous *and* channels-last, and oneDNN returns the
        # contiguous layout; every later layer would then convert it (4 copies of the largest activation a step).
        return out.contiguous(memory_format=torch.channels_last) if self.in_channels == 1 else out


class _BatchNorm(nn.BatchNorm1d):
    """``BatchNorm1d`` (same state dict) that also normalises ``(N, C, 1, T)`` tensors per channel."""

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() not in (2, 3, 4):
            raise ValueError(f"expected 2-D, 3-D or 4-D input, got {input.dim()}-D")


class _Pool(nn.Module):
    """Max or average pooling along time of ``(N, C, 1, T)`` (``MaxPool1d``/``AvgPool1d`` semantics)."""

    def __init__(self, kind: str, kernel: int, stride: int, padding: int = 0, ceil_mode: bool = False) -> None:
        super().__init__()
        self.kind, self.kernel, self.stride, self.padding, self.ceil_mode = kind, kernel, stride, padding, ceil_mode

    def forward(self, x: Tensor) -> Tensor:
        pool = F.max_pool2d if self.kind == "max" else F.avg_pool2d
        return pool(x, (1, self.kernel), (1, self.stride), (0, self.padding), ceil_mode=self.ceil_mode)

    def extra_repr(self) -> str:
        return f"{self.kind}, kernel={self.kernel}, stride={self.stride}, padding={self.padding}"


class _ConvBN(nn.Sequential):
    """Conv (no bias) + batch norm (+ ReLU) on ``(N, C, 1, T)``; ``zero_bn`` zero-initialises the BN scale."""

    def __init__(
        self, c_in: int, c_out: int, kernel_size: int, stride: int = 1, act: bool = True, zero_bn: bool = False
    ) -> None:
        bn = _BatchNorm(c_out)
        nn.init.constant_(bn.weight, 0.0 if zero_bn else 1.0)
        conv = _Conv(c_in, c_out, kernel_size, stride, kernel_size // 2, bias=False)
        layers: list[nn.Module] = [conv, bn]
        if act:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)
        nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        conv, bn = cast(_Conv, self[0]), cast(_BatchNorm, self[1])
        if self.training or bn.running_mean is None or torch.is_grad_enabled():
            return super().forward(x)
        # Inference: batch norm with running statistics is an affine map per channel, folded into the convolution
        # (one pass over the activations instead of two).
        assert bn.running_var is not None  # registered together with running_mean
        scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
        out = conv.apply_weights(x, conv.weight * scale[:, None, None], bn.bias - bn.running_mean * scale)
        return torch.relu_(out) if len(self) > 2 else out


class _ResBlock(nn.Module):
    """xresnet basic block: two convolutions, average-pool + 1x1 conv shortcut when the shape changes."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, stride: int) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            _ConvBN(c_in, c_out, kernel_size, stride), _ConvBN(c_out, c_out, kernel_size, act=False, zero_bn=True)
        )
        shortcut: list[nn.Module] = []
        if stride != 1:
            shortcut.append(_Pool("avg", stride, stride, ceil_mode=True))
        if c_in != c_out:
            shortcut.append(_ConvBN(c_in, c_out, 1, act=False))
        self.shortcut = nn.Sequential(*shortcut)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        out = self.convs(x)
        out += self.shortcut(x)  # in place: batch norm's backward does not need its output
        return self.act(out)


def _stem(cfg: EncoderConfig) -> nn.Sequential:
    if cfg.stem == "strided":
        return nn.Sequential(
            _ConvBN(1, cfg.widths[0], 7, stride=4), _ConvBN(cfg.widths[0], cfg.widths[0], cfg.kernel_size)
        )
    ks = cfg.kernel_size
    return nn.Sequential(
        _ConvBN(1, cfg.stem_width, ks, stride=2),
        _ConvBN(cfg.stem_width, cfg.stem_width, ks),
        _ConvBN(cfg.stem_width, cfg.widths[0], ks),
        _Pool("max", 3, 2, 1),
    )


class ECGEncoder(nn.Module):
    """Per-lead 1D xresnet with weights shared across leads.

    ``forward(x)`` takes ``x`` of shape ``(B, L, T)`` with ``L == config.n_leads`` (leads in ``config.leads``
    order) and returns :class:`EncoderOutput`.
    """

    def __init__(self, config: EncoderConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else ENCODER_PRESETS["small"]
        cfg = self.config
        ks = cfg.kernel_size
        self.stem = _stem(cfg)
        stages: list[nn.Module] = []
        c_in = cfg.widths[0]
        for width, n_blocks in zip(cfg.widths, cfg.blocks):
            for j in range(n_blocks):
                stride = 2 if j == 0 else 1
                stages.append(_ResBlock(c_in, width, ks, stride))
                c_in = width
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(2 * c_in, cfg.feature_dim))

    @property
    def leads(self) -> tuple[str, ...]:
        return self.config.leads

    @property
    def feature_dim(self) -> int:
        return self.config.feature_dim

    @property
    def embedding_dim(self) -> int:
        return self.config.embedding_dim

    def forward(self, x: Tensor) -> EncoderOutput:
        if x.dim() != 3 or x.shape[1] != self.config.n_leads:
            raise DataError(
                f"encoder expects input (batch, {self.config.n_leads} leads "
                f"{'/'.join(self.config.leads)}, time), got shape {tuple(x.shape)}"
            )
        b, n_leads, t = x.shape
        h = x.reshape(b * n_leads, 1, 1, t).contiguous(memory_format=torch.channels_last)
        h = self.stages(self.stem(h))
        pooled = torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1)
        feats = self.head(pooled).reshape(b, n_leads, -1)
        return EncoderOutput(feats, feats.reshape(b, -1))


def build_encoder(
    config: EncoderConfig | Mapping[str, Any] | str | None = None,
    seed: int | None = None,
    leads: Sequence[str] | None = None,
) -> ECGEncoder:
    """An :class:`ECGEncoder`; with ``seed`` its initial weights are reproducible and the global RNG is untouched.

    ``build_encoder("small", seed=0)`` is the ``random_init`` reference arm.
    """
    cfg = resolve_encoder_config(config, leads)
    if seed is None:
        return ECGEncoder(cfg)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return ECGEncoder(cfg)


class Classifier(nn.Module):
    """An encoder followed by one linear layer on the record embedding (``forward(x) -> logits``)."""

    def __init__(self, encoder: ECGEncoder, n_classes: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.embedding_dim, n_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.encoder(x).embedding)


def build_classifier(encoder: ECGEncoder, n_classes: int) -> Classifier:
    """Encoder + linear head, for supervised training from scratch and for fine-tuning a pretrained encoder."""
    if not _is_int(n_classes) or n_classes < 1:
        raise ConfigError(f"n_classes must be a positive integer, got {n_classes!r}")
    if not isinstance(encoder, ECGEncoder):
        raise ConfigError(f"build_classifier needs an ECGEncoder, got {type(encoder).__name__}")
    return Classifier(encoder, n_classes)


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements of ``module`` (only those with ``requires_grad`` when ``trainable_only``)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
