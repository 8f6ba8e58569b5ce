"""The true-scale 12-lead printout (aclecg.viz.printout) and ``aclecg printout``: page size, 1 mm grid in the PDF's
transforms and in the PNG's pixels, the gain on the calibration pulse, the header, and the command's errors."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from aclecg.cli import main
from aclecg.measure import measure_record, synthetic_ecg
from aclecg.viz.printout import NOT_FOR_DIAGNOSIS, PAPER_SIZES_MM, printout_bytes, printout_figure
from tests.helpers.pdftext import page_sizes_pt, shown_text

MM_PER_PT = 25.4 / 72


@pytest.fixture(scope="module")
def record():
    x, _ = synthetic_ecg(fs=250, hr_bpm=75, pr_ms=160, qrs_ms=90, qt_ms=380)
    return x, 250.0, measure_record(x, 250)


def _grid_axes(fig):
    return next(ax for ax in fig.axes if ax.get_gid() == "ecg-grid")


@pytest.mark.slow  # about 0.4-1 s: moved out of make test's 90 s (CI runs the slow suite)
@pytest.mark.parametrize(("paper", "size_pt"), [("A4", (841.89, 595.28)), ("Letter", (792.0, 612.0))])
def test_pdf_page_is_the_paper_in_landscape(record, paper, size_pt):
    x, fs, m = record
    pdf = printout_bytes(printout_figure(x, fs, record_id="R1", measurement=m, paper=paper), "pdf")
    assert pdf.startswith(b"%PDF")
    (w, h), *rest = page_sizes_pt(pdf)
    assert not rest and w == pytest.approx(size_pt[0], abs=0.01) and h == pytest.approx(size_pt[1], abs=0.01)
    assert (w * MM_PER_PT, h * MM_PER_PT) == pytest.approx(PAPER_SIZES_MM[paper], abs=0.01)


@pytest.mark.parametrize("paper", ["A4", "Letter"])
def test_one_grid_unit_is_one_millimetre_of_paper(record, paper):
    """Through the figure's own transforms: a data unit spans 1 mm at any dpi, and the grid lines step 1 / 5 mm."""
    x, fs, m = record
    fig = printout_figure(x, fs, record_id="R1", measurement=m, paper=paper)
    ax = _grid_axes(fig)
    for dpi in (72, 300):
        fig.set_dpi(dpi)
        (x0, y0), (x1, y1) = ax.transData.transform([(0, 0), (1, 1)])
        assert (x1 - x0) / dpi * 25.4 == pytest.approx(1.0, abs=1e-9)
        assert (y1 - y0) / dpi * 25.4 == pytest.approx(1.0, abs=1e-9)
    xs = {
        gid: sorted({seg[0][0] for seg in c.get_segments() if seg[0][0] == seg[1][0]})
        for c in ax.collections
        for gid in [c.get_gid()]
    }
    assert np.diff(xs["grid1"]) == pytest.approx(1.0) and np.diff(xs["grid5"]) == pytest.approx(5.0)
    assert len(xs["grid1"]) > 250  # 10 s at 25 mm/s are on the grid


@pytest.mark.slow  # about 0.4-1 s: moved out of make test's 90 s (CI runs the slow suite)
def test_png_records_its_dpi_and_its_major_lines_are_5mm_apart(record):
    x, fs, m = record
    dpi = 254  # 10 px a millimetre
    png = printout_bytes(printout_figure(x, fs, record_id="R1", measurement=m, paper="A4"), "png", dpi=dpi)
    img = Image.open(io.BytesIO(png))
    assert img.info["dpi"] == pytest.approx((dpi, dpi), abs=0.01)
    assert img.size == (int(297 / 25.4 * dpi), int(210 / 25.4 * dpi))
    rgb = np.asarray(img.convert("RGB")).astype(int)
    bottom = int(8 / 25.4 * dpi)  # the grid starts 8 mm above the page's lower edge
    band = rgb[-bottom - 25 : -bottom - 5]  # a strip at the bottom of the grid, below the traces
    major = (np.abs(band - np.array([0xE0, 0x60, 0x7A])).sum(axis=2) < 60).mean(axis=0) > 0.9
    cols = np.flatnonzero(major)
    starts = cols[np.r_[True, np.diff(cols) > 1]]
    assert len(starts) > 40
    assert np.diff(starts) == pytest.approx(50, abs=1)  # 5 mm at 10 px/mm


@pytest.mark.parametrize("gain", [5.0, 10.0, 20.0])
def test_calibration_pulse_is_gain_millimetres_high_and_says_so(record, gain):
    x, fs, m = record
    fig = printout_figure(x, fs, record_id="R1", measurement=m, gain=gain)
    ax = _grid_axes(fig)
    pulses = [ln for ln in ax.lines if len(ln.get_xdata()) == 6]
    assert len(pulses) == 4  # three rows and the rhythm strip
    for ln in pulses:
        ys = np.asarray(ln.get_ydata())
        assert ys.max() - ys.min() == pytest.approx(gain)
    texts = [t.get_text() for t in ax.texts] + [t.get_text() for t in fig.texts]
    assert f"{gain:g} mm/mV" in texts and f"25 mm/s · {gain:g} mm/mV" in texts
    lead_i = next(ln for ln in ax.lines if len(ln.get_xdata()) > 6)  # the first panel: lead I, 2.5 s
    drawn = np.asarray(lead_i.get_ydata())
    assert np.ptp(drawn) == pytest.approx(np.ptp(x[0, : drawn.size]) * gain)


def test_header_holds_record_measurements_and_disclaimer_in_the_pdf_text(record):
    x, fs, m = record
    pdf = printout_bytes(printout_figure(x, fs, record_id="JS00042", measurement=m), "pdf")
    text = " | ".join(shown_text(pdf))
    assert "Record JS00042" in text and NOT_FOR_DIAGNOSIS in text
    assert f"HR {m.hr_bpm:.0f} bpm" in text and f"QRS {m.qrs_ms:.0f} ms" in text and "QTc" in text
    assert f"PR {m.pr_ms:.0f} ms" in text and f"QT {m.qt_ms:.0f} ms" in text


def test_bad_arguments_raise_one_line_errors(record):
    from aclecg.errors import ConfigError

    x, fs, _ = record
    with pytest.raises(ConfigError, match="paper must be one of A4, Letter"):
        printout_figure(x, fs, paper="A3")
    with pytest.raises(ConfigError, match="gain must be"):
        printout_figure(x, fs, gain=0)
    with pytest.raises(ConfigError, match="signals must be"):
        printout_figure(x[:5], fs)
    with pytest.raises(ConfigError, match="format must be"):
        printout_bytes(printout_figure(x, fs), "svg")


# --- the command --------------------------------------------------------------------------------------------------


def test_printout_command_writes_a_letter_pdf_of_a_prepared_record(bundled_prepared, tmp_path, capsys):
    out = tmp_path / "r12.pdf"
    assert (
        main(
            [
                "printout",
                "--data",
                str(bundled_prepared),
                "--record",
                "12",
                "--paper",
                "Letter",
                "--gain",
                "20",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert "written" in capsys.readouterr().out
    pdf = out.read_bytes()
    assert page_sizes_pt(pdf) == [pytest.approx((792.0, 612.0), abs=0.01)]
    text = " | ".join(shown_text(pdf))
    assert "Record ptbxl 12" in text and NOT_FOR_DIAGNOSIS in text and "20 mm/mV" in text and "HR " in text


@pytest.mark.slow  # about 0.4-1 s: moved out of make test's 90 s (CI runs the slow suite)
def test_printout_command_writes_a_png_of_an_upload(challenge_upload, tmp_path):
    out = tmp_path / "up.png"
    assert main(["printout", "--upload", str(challenge_upload / "JS00001.hea"), "--dpi", "100", "--out", str(out)]) == 0
    img = Image.open(out)
    assert img.format == "PNG" and img.size == (int(297 / 25.4 * 100), int(210 / 25.4 * 100))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--out", "x.pdf"], "give --data PREPARED --record ID, or --upload PATH"),
        (["--data", "DATA", "--out", "x.pdf"], "give --data PREPARED --record ID"),
        (["--data", "DATA", "--record", "12", "--out", "x.svg"], "--out must end in .pdf or .png"),
        (["--data", "DATA", "--record", "nope", "--out", "x.pdf"], "'nope' is not in"),
        (["--data", "DATA", "--record", "12", "--dpi", "5", "--out", "x.png"], "--dpi must be"),
    ],
)
def test_printout_command_refuses_bad_options_in_one_line(bundled_prepared, tmp_path, capsys, argv, message):
    argv = [str(bundled_prepared) if a == "DATA" else str(tmp_path / a) if a.startswith("x.") else a for a in argv]
    assert main(["printout", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err
    assert not list(tmp_path.glob("x.*"))


def test_printout_imports_matplotlib_only_inside_its_functions():
    """Issue 31: the Explorer imports this module; matplotlib (0.3-0.5 s of import) is for the downloads alone."""
    import ast
    from pathlib import Path

    import aclecg.viz.printout as printout

    tree = ast.parse(Path(printout.__file__).read_text())
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    names = [a.name for n in top if isinstance(n, ast.Import) for a in n.names]
    names += [n.module or "" for n in top if isinstance(n, ast.ImportFrom)]
    assert not [n for n in names if n.split(".")[0] == "matplotlib"], names


@pytest.mark.slow
def test_the_explorer_loads_no_matplotlib_until_a_printout_is_drawn():
    """Issue 31: importing matplotlib took 0.3-0.5 s of the Explorer's first visit, for downloads drawn only when
    their button is pressed; it now loads with the first printout."""
    import subprocess
    import sys

    code = (
        "import sys; import pages._explorer_tools; assert 'matplotlib' not in sys.modules, 'loaded at import'; "
        "from aclecg.viz.printout import printout_figure; import numpy as np; "
        "printout_figure(np.zeros((12, 1000)), 100.0); assert 'matplotlib' in sys.modules"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-800:]
