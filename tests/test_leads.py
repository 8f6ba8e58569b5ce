"""Lead names, limb-lead derivation and the region map."""

from __future__ import annotations

import numpy as np
import pytest

from aclecg.leads import (
    INDEPENDENT_LEADS,
    LEADS,
    RegionMap,
    canonical_lead,
    default_region_map,
    derive_limb_leads,
    lead_indices,
)


@pytest.mark.parametrize(
    "name, canon",
    [("AVR", "aVR"), ("avl", "aVL"), (" aVF ", "aVF"), ("v1", "V1"), ("i", "I"), ("III", "III"), ("D2", "II")],
)
def test_aliases(name, canon):
    assert canonical_lead(name) == canon


@pytest.mark.parametrize("bad", ["V7", "-aVR", "", "lead"])
def test_unknown_leads_are_rejected_by_name(bad):
    with pytest.raises(ValueError, match="unknown lead"):
        canonical_lead(bad)


def test_derivation_from_any_two_limb_leads_reproduces_the_standard_relations():
    rng = np.random.default_rng(0)
    lead_i, lead_iii = rng.normal(size=500), rng.normal(size=500)
    lead_ii = lead_i + lead_iii  # Einthoven
    truth = {
        "I": lead_i,
        "II": lead_ii,
        "III": lead_iii,
        "aVR": -(lead_i + lead_ii) / 2,
        "aVL": (lead_i - lead_iii) / 2,
        "aVF": (lead_ii + lead_iii) / 2,
    }
    for pair in (("I", "II"), ("I", "III"), ("II", "III")):
        out = derive_limb_leads({k: truth[k] for k in pair})
        for lead in LEADS[:6]:
            np.testing.assert_allclose(out[lead], truth[lead], atol=1e-12, err_msg=f"{lead} from {pair}")
    # Goldberger: the augmented leads sum to zero.
    out = derive_limb_leads({"I": lead_i, "II": lead_ii})
    np.testing.assert_allclose(out["aVR"] + out["aVL"] + out["aVF"], 0, atol=1e-12)
    with pytest.raises(ValueError, match="need two of"):
        derive_limb_leads({"I": lead_i, "V1": lead_i})


def test_default_regions_cover_eleven_leads_and_exclude_avr():
    regions = default_region_map()
    assert regions.names == ("septal", "anterior", "lateral", "inferior")
    covered = [lead for leads in regions.regions.values() for lead in leads]
    assert sorted(covered) == sorted(set(LEADS) - {"aVR"})
    assert regions.region_of("aVR") is None and regions.region_of("avl") == "lateral"
    assert default_region_map("own").region_of("aVR") == "aVR"
    with pytest.raises(ValueError, match="avr_policy"):
        default_region_map("include")


def test_region_map_validation():
    with pytest.raises(ValueError, match="two regions"):
        RegionMap({"a": ("V1",), "b": ("v1",)})
    with pytest.raises(ValueError, match="unknown lead"):
        RegionMap({"a": ("V9",)})
    with pytest.raises(ValueError, match="at least one lead"):
        RegionMap({"a": ()})
    with pytest.raises(ValueError, match="at least one region"):
        RegionMap({})
    assert RegionMap.from_dict(default_region_map().to_dict()) == default_region_map()


def test_indices_and_assignment_matrix_follow_the_input_lead_order():
    regions = default_region_map()
    idx = regions.indices(INDEPENDENT_LEADS)  # I, II, V1..V6: no III, aVL, aVF
    assert idx == {"septal": [2, 3], "anterior": [4, 5], "lateral": [0, 6, 7], "inferior": [1]}
    mat = regions.assignment_matrix(INDEPENDENT_LEADS)
    assert mat.shape == (4, 8)
    np.testing.assert_allclose(mat.sum(1), 1.0)
    assert lead_indices(["V6", "aVR"]) == [11, 3]
