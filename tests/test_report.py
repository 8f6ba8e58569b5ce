"""The results report is computed from sweep outputs, never typed in."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from aclecg.errors import DataError
from aclecg.results.report import Sweep, build_report, delong_table, metric_table


@pytest.fixture
def sweep_dir(tmp_path):
    d = tmp_path / "ptbxl-multilabel"
    d.mkdir()
    meta = {
        "label_set": "superdiagnostic",
        "protocol": "multilabel",
        "fractions": [0.1, 1.0],
        "seeds": [0, 1],
        "classes": ["CD", "HYP", "MI", "NORM", "STTC"],
        "n_val": 136,
        "n_test": 128,
        "device": "cpu",
        "checkpoints": {"acl_ecg": {"method": "acl_ecg", "sha256": "ab" * 32}},
    }
    (d / "sweep.json").write_text(json.dumps(meta))
    rows = []
    values = {"acl_ecg:linear_probe": (0.81, 0.86), "supervised": (0.78, 0.85), "random_init": (0.70, 0.74)}
    for arm, (v10, v100) in values.items():
        for metric, shift in (("macro_auroc", 0.0), ("macro_auprc", -0.3)):
            for frac, v in ((0.1, v10), (1.0, v100)):
                rows.append(
                    {
                        "arm": arm,
                        "arm_kind": arm.split(":")[-1],
                        "method": arm.split(":")[0],
                        "fraction": frac,
                        "metric": metric,
                        "mean": v + shift,
                        "std": 0.01,
                        "n_seeds": 2,
                        "ci_low": v + shift - 0.05,
                        "ci_high": v + shift + 0.05,
                        "boot_ci_low_mean": v + shift - 0.04,
                        "boot_ci_high_mean": v + shift + 0.04,
                    }
                )
    pd.DataFrame(rows).to_csv(d / "summary.csv", index=False)
    pd.DataFrame(rows).to_csv(d / "results.csv", index=False)
    comps = [
        {
            "arm_a": "acl_ecg:linear_probe",
            "arm_b": "supervised",
            "fraction": 0.1,
            "seed": s,
            "metric": "macro_auroc",
            "auc_a": 0.81,
            "auc_b": 0.78,
            "diff": 0.03,
            "z": 2.1,
            "p_value": p,
        }
        for s, p in ((0, 0.03), (1, 0.2))
    ]
    comps.append(
        {
            "arm_a": "random_init",
            "arm_b": "acl_ecg:linear_probe",
            "fraction": 0.1,
            "seed": 0,
            "metric": "macro_auroc",
            "auc_a": 0.70,
            "auc_b": 0.81,
            "diff": -0.11,
            "z": -3.0,
            "p_value": 0.001,
        }
    )
    pd.DataFrame(comps).to_csv(d / "comparisons.csv", index=False)
    return d


def test_tables_carry_the_sweep_numbers(sweep_dir):
    sweep = Sweep.load(sweep_dir)
    table = metric_table(sweep, "macro_auroc", "acl_ecg")
    lines = table.splitlines()
    assert lines[0] == "| arm | 10 % | 100 % |"
    assert lines[2].startswith("| acl_ecg:linear_probe | 0.810 ± 0.010 [0.770, 0.850] | 0.860")
    assert lines[-1].startswith("| random_init |")  # references come last
    delong = delong_table(sweep, "acl_ecg:linear_probe")
    assert "| supervised | 10 % | +0.030 | 0.030, 0.200 | 1 better, 0 worse of 2 |" in delong
    # the sign is flipped when the focus arm is arm_b
    assert "| random_init | 10 % | +0.110 | 0.001 | 1 better, 0 worse of 1 |" in delong


def test_report_writes_markdown_and_figures(sweep_dir, tmp_path):
    out = build_report([sweep_dir], tmp_path / "docs" / "results.md", preamble="Setup text.")
    text = out.read_text()
    assert "Setup text." in text and "superdiagnostic — multilabel" in text
    assert "supervised with 100 %: 0.850 [0.810, 0.890] → below its mean but inside its bootstrap 95 % CI" in text
    for metric in ("macro_auroc", "macro_auprc"):
        png = tmp_path / "docs" / "results" / f"ptbxl-multilabel_{metric}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"results/ptbxl-multilabel_{metric}.png" in text


def test_unfinished_sweep_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="missing sweep.json"):
        Sweep.load(tmp_path)


def test_rotation_summary_averages_over_test_folds(sweep_dir, tmp_path):
    import shutil

    from aclecg.results.report import rotation_summary

    other = tmp_path / "ptbxl-multilabel-test9"
    shutil.copytree(sweep_dir, other)
    meta = json.loads((other / "sweep.json").read_text())
    meta["test_fold"] = 9
    (other / "sweep.json").write_text(json.dumps(meta))
    summary = pd.read_csv(other / "summary.csv")
    summary["mean"] += 0.02
    summary.to_csv(other / "summary.csv", index=False)
    lines = rotation_summary([Sweep.load(sweep_dir), Sweep.load(other)], "acl_ecg")
    text = "\n".join(lines)
    assert "test folds 9, 10; 256 test records" in text
    assert "| acl_ecg:linear_probe | 0.820 (0.830, 0.810) | 0.870 (0.880, 0.860) |" in text
    assert "| supervised | 10 % | +0.030 | 2 | 0 | 4 |" in text  # one p < 0.05 per copy, both in favour
    assert rotation_summary([Sweep.load(sweep_dir)], "acl_ecg") == []
