"""Physio-AUG and the baseline ECG augmentations as batched, seedable torch operations.

Physio-AUG is the physiology-aware augmentation of ACL-ECG (Liu, Wu, Yuan, "ACL-ECG: Anatomy-Aware Contrastive
Learning for Multi-Lead Electrocardiograms", Sensors 26(3):1080, 2026, DOI 10.3390/s26031080). The paper names
three parts that keep the rhythm intact: random scale cropping, cardiac-cycle masking and temporal shifting. Their
exact parameters are not public; the defaults here are a reconstruction and are documented as such in
``docs/augmentations.md``. The preset applies crop -> cycle mask -> shift: the crop maps the R-peaks into its
output so the mask hits whole cycles of the cropped signal, and the (circular) shift comes last so its seam never
creates a false "cycle".

The baseline augmentations are those of contrastive ECG work: random resized crop + time-out (the "standard"
pipeline of the LCD/ELIC authors), Gaussian noise, amplitude scaling, baseline wander and lead dropout.

Conventions
-----------
* ``x`` is a float tensor ``(B, L, T)`` (batch, leads, samples) on any device; the output has the same shape,
  dtype and device.
* ``rpeaks`` is an integer tensor ``(B, K)`` of R-peak sample positions at the signal's rate, ``-1`` padded.
  Peaks are sorted per sample on entry; geometric steps (crop, shift) map them so later steps see where the
  beats are *now*.
* Every random parameter is drawn per sample with one vectorised call; there is no Python loop over samples.
* Randomness comes from ``generator``: a ``torch.Generator`` on ``x``'s device, or a CPU generator whose draws
  are made on the CPU and then moved to ``x``'s device (so a CPU generator gives the same augmentation on CPU
  and GPU). ``None`` uses torch's global RNG of ``x``'s device.

>>> import torch
>>> aug = build_augmentation("physio", fs=100)
>>> x, rp = make_synthetic_batch(4, fs=100, generator=torch.Generator().manual_seed(0))
>>> y, info = aug.forward_with_info(x, rp, generator=torch.Generator().manual_seed(1))
>>> y.shape, sorted(info)
(torch.Size([4, 12, 1000]), ['0:random_scale_crop', '1:cardiac_cycle_mask', '2:temporal_shift'])

Modules: :mod:`~aclecg.augment.base` (the step interface and :class:`Compose`), :mod:`~aclecg.augment.physio`
(Physio-AUG's parts), :mod:`~aclecg.augment.baseline` (the baselines), :mod:`~aclecg.augment.warp` (the time
geometry and its renderer), :mod:`~aclecg.augment.registry` (step names, presets, :func:`build_augmentation`),
:mod:`~aclecg.augment.rpeaks`, :mod:`~aclecg.augment.draws` and :mod:`~aclecg.augment.params` (shared helpers) and
:mod:`~aclecg.augment.synthetic` (synthetic ECGs).
"""

from aclecg.augment.base import Augmentation, Compose, Info
from aclecg.augment.baseline import AmplitudeScale, BaselineWander, GaussianNoise, LeadDropout, TimeOut
from aclecg.augment.physio import CardiacCycleMask, RandomScaleCrop, TemporalShift
from aclecg.augment.registry import AUGMENTATIONS, PRESETS, build_augmentation
from aclecg.augment.rpeaks import DEFAULT_RR_S, median_rr, sanitize_rpeaks
from aclecg.augment.synthetic import make_synthetic_batch
from aclecg.augment.warp import Warp, render_warp

__all__ = [
    "AUGMENTATIONS",
    "DEFAULT_RR_S",
    "PRESETS",
    "AmplitudeScale",
    "Augmentation",
    "BaselineWander",
    "CardiacCycleMask",
    "Compose",
    "GaussianNoise",
    "Info",
    "LeadDropout",
    "RandomScaleCrop",
    "TemporalShift",
    "TimeOut",
    "Warp",
    "build_augmentation",
    "make_synthetic_batch",
    "median_rr",
    "render_warp",
    "sanitize_rpeaks",
]
