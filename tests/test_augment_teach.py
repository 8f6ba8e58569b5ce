"""The Augmentations page's teaching mode (issue 31): crop, then mask, then shift, one step at a time with one seed,
each step's view the previous one with one more change (``aclecg.augment.teach``)."""

from __future__ import annotations

import pytest
import torch

from aclecg.augment import build_augmentation, make_synthetic_batch
from aclecg.augment.teach import TEACHING_STEPS, step_views
from aclecg.errors import ConfigError

SPEC = [
    {"name": "random_scale_crop", "scale": [0.5, 0.8], "resample": False},
    {"name": "cardiac_cycle_mask", "n_cycles": [1, 2], "window": "rr", "scope": "all", "fill": "zero"},
    {"name": "temporal_shift", "max_shift": "rr", "mode": "zero"},
]


def _record():
    x, peaks = make_synthetic_batch(1, generator=torch.Generator().manual_seed(3))
    return x, peaks


@pytest.mark.parametrize("seed", [0, 7, 123])
def test_each_step_builds_on_the_previous_one(seed):
    x, peaks = _record()
    (crop, i1), (mask, i2), (shift, i3) = step_views(SPEC, x, peaks, seed, 3)
    # the same crop window in every step, the same masked cycles in steps 2 and 3
    for info in (i2, i3):
        assert torch.equal(info["0:random_scale_crop"]["start"], i1["0:random_scale_crop"]["start"])
    assert torch.equal(i3["1:cardiac_cycle_mask"]["cycles"], i2["1:cardiac_cycle_mask"]["cycles"])
    # step 2 changes the crop's view only where it masks; step 3 is step 2 moved in time
    changed = (mask != crop).any(dim=1)[0]
    for s, e in i2["1:cardiac_cycle_mask"]["cycles"][0].tolist():
        if s >= 0:
            changed[s:e] = False
    assert not changed.any()
    n = int(i3["2:temporal_shift"]["shift"][0])
    if n > 0:
        assert torch.equal(shift[..., n:], mask[..., :-n])
    elif n < 0:
        assert torch.equal(shift[..., :n], mask[..., -n:])
    # and the last step is the full pipeline with that seed
    full = build_augmentation(SPEC, fs=100).forward_with_info(x, peaks, generator=torch.Generator().manual_seed(seed))
    assert torch.equal(shift, full[0])


def test_the_crop_keeps_the_rate():
    """Step 1 is the rate-keeping crop: inside its window the view is the record itself."""
    x, peaks = _record()
    ((crop, info),) = step_views(SPEC, x, peaks, 0, 1)
    s, e = int(info["0:random_scale_crop"]["start"][0]), int(info["0:random_scale_crop"]["end"][0])
    assert torch.equal(crop[..., s:e], x[..., s:e]) and not crop[..., :s].any() and not crop[..., e:].any()


def test_every_step_says_why_it_keeps_the_rhythm_in_one_sentence():
    assert [s.title for s in TEACHING_STEPS] == ["crop", "mask", "shift"]
    for step in TEACHING_STEPS:
        assert step.why.count(". ") == 0 and step.why.endswith(".")
        assert "rhythm" in step.why or "RR" in step.why


def test_bad_teaching_requests_are_one_clear_error():
    x, peaks = _record()
    with pytest.raises(ConfigError, match="in that order"):
        step_views(SPEC[::-1], x, peaks, 0, 1)
    with pytest.raises(ConfigError, match="teaching step must be 1 to 3, got 4"):
        step_views(SPEC, x, peaks, 0, 4)
