"""The evaluation arms, one registry entry each: what an arm fits, whether per checkpoint, and how it is named.

An arm is *per checkpoint* (``linear_probe``, ``fine_tune``: one arm ``<checkpoint>:<kind>`` for every checkpoint
of a sweep) or a *reference* (``supervised``, ``reference_cnn``, ``random_init``: one arm of its own name). A
*trained* arm is trained end to end (the step budget and learning-rate grid of
:class:`~aclecg.evaluation.config.EvalConfig`); the others fit a linear probe on frozen features (the checkpoint's,
or a seeded random encoder's). The registry's order is the results' order (per-checkpoint kinds, then the
references) and the order of :data:`aclecg.constraints.ARMS`, the torch-free tuple that help texts and the study
spec read (tests/test_registries.py checks they agree).

This module imports no torch.

>>> [a.name for a in reference_arms()], [a.name for a in trained_arms()]
(['supervised', 'reference_cnn', 'random_init'], ['fine_tune', 'supervised', 'reference_cnn'])
>>> arm_display_name("acl_ecg:fine_tune"), arm_display_name("acl_ecg:linear_probe"), arm_display_name("supervised")
('acl_ecg (fine-tuned)', 'acl_ecg', 'supervised')
"""

from __future__ import annotations

from dataclasses import dataclass

from aclecg.registry import Registry

__all__ = [
    "ARM_KINDS",
    "ArmKind",
    "arm_display_name",
    "arm_kind",
    "baseline_arms",
    "is_arm_name",
    "is_reference",
    "is_trained",
    "reference_arms",
    "register_arm",
    "trained_arms",
]


@dataclass(frozen=True)
class ArmKind:
    """One kind of evaluation arm.

    Attributes:
        name: the kind (``--arms`` value; a reference arm's results name).
        description: one line for help texts and docs.
        trained: trained end to end (step budget, lr grid) rather than a linear probe on frozen features.
        per_checkpoint: one arm per checkpoint (``<label>:<kind>``) rather than one reference arm.
        baseline: results carry a DeLong ``p_vs_<name>`` column against it.
        display_suffix: appended to the checkpoint's name in charts and tables (``" (fine-tuned)"``).
    """

    name: str
    description: str
    trained: bool
    per_checkpoint: bool
    baseline: bool = False
    display_suffix: str = ""


#: Every arm kind, in results order.
ARM_KINDS: Registry[ArmKind] = Registry("arm")


def register_arm(arm: ArmKind) -> ArmKind:
    return ARM_KINDS.register(arm.name, arm)


for _arm in (
    ArmKind("linear_probe", "a linear probe on the checkpoint's frozen embeddings", trained=False, per_checkpoint=True),
    ArmKind(
        "fine_tune",
        "the checkpoint's encoder and a linear head trained end to end",
        trained=True,
        per_checkpoint=True,
        display_suffix=" (fine-tuned)",
    ),
    ArmKind(
        "supervised",
        "the same encoder from a seeded random initialisation, trained end to end on the labels",
        trained=True,
        per_checkpoint=False,
        baseline=True,
    ),
    ArmKind(
        "reference_cnn",
        "a plain 12-lead CNN trained from scratch (aclecg.reference_cnn)",
        trained=True,
        per_checkpoint=False,
    ),
    ArmKind(
        "random_init",
        "a linear probe on a seeded, randomly initialised encoder",
        trained=False,
        per_checkpoint=False,
        baseline=True,
    ),
):
    register_arm(_arm)


def arm_kind(name: str) -> ArmKind:
    """The registered kind ``name`` (:class:`~aclecg.errors.ConfigError` listing the kinds if unknown)."""
    return ARM_KINDS.get(name)


def _exact(name: object) -> ArmKind | None:
    """The kind spelt exactly ``name`` (results and cell keys hold canonical names; no alias or case folding)."""
    return dict(ARM_KINDS.items()).get(name) if isinstance(name, str) else None


def is_arm_name(name: object) -> bool:
    """Whether ``name`` is exactly a registered kind (a checkpoint label that is one gets a key suffix)."""
    return _exact(name) is not None


def is_trained(kind: object) -> bool:
    """Whether arms of ``kind`` are trained end to end (``False`` for an unknown or missing kind)."""
    entry = _exact(kind)
    return entry is not None and entry.trained


def is_reference(name: object) -> bool:
    """Whether ``name`` (a results arm or table row) is a reference arm (not ``<checkpoint>:<kind>``)."""
    entry = _exact(name)
    return entry is not None and not entry.per_checkpoint


def trained_arms() -> list[ArmKind]:
    return [a for _, a in ARM_KINDS.items() if a.trained]


def reference_arms() -> list[ArmKind]:
    return [a for _, a in ARM_KINDS.items() if not a.per_checkpoint]


def baseline_arms() -> list[ArmKind]:
    """The reference arms every other arm is compared with (DeLong p-values in ``results.csv``)."""
    return [a for _, a in ARM_KINDS.items() if a.baseline]


def arm_display_name(arm: str, kind: str | None = None) -> str:
    """An arm as every chart and table names it: ``METHOD`` for a linear probe of a checkpoint, ``METHOD
    (fine-tuned)`` for its fine-tuning, a reference arm by its own name.

    ``arm`` is a results' arm id (``acl_ecg:fine_tune``, ``acl_ecg:linear_probe``, ``supervised``); ``kind``
    (``linear_probe``, ``fine_tune``, ...) overrides the kind the id carries.
    """
    name, _, own_kind = str(arm).partition(":")
    kind = kind or own_kind or None
    entry = _exact(kind)
    return name + (entry.display_suffix if entry is not None else "")
