"""Records one prepared dataset shares with another: the leakage check across datasets (``aclecg overlap``).

Public collections copy each other: the PhysioNet/CinC Challenge 2021 holds PTB-XL at 500 Hz (``HR00001`` is PTB-XL
record 1), CPSC 2018 and Chapman-Shaoxing. An encoder pretrained on one and scored on the other may have seen the
test records. :func:`find_overlap` finds the rows of dataset A that duplicate rows of dataset B:

1. **common view**: both datasets at one sampling rate (default the lower of the two; ``resample_poly``) and their
   common leads. Windows of different lengths are cut into tiles of the shorter window length, so a 10-s window
   is compared with each tile of a longer one.
2. **segments**: the interior of every tile (``edge_s`` trimmed at both ends, where the preprocessing of two
   copies differs most: filter transients, different record ends).
3. **fingerprint**: per lead, the log power spectrum of the segment in bands between 0.5 and 40 Hz (unchanged by a
   small shift in time), centred on B's mean, projected onto B's ``dims`` principal axes and L2-normalised.
4. **candidates**: the ``candidates`` segments of B whose fingerprints are nearest (cosine) to each segment of A,
   by blocked matrix products (exact; ~50 GFLOP for 20k x 20k, seconds on two cores), never all signal pairs.
5. **confirmation**: the cross-correlation of each candidate pair at every lag within ``max_lag_s`` (FFT), of
   the leads each scaled to unit energy and summed; at the best lag, ``r`` is the mean over the leads of the
   Pearson correlation (flat leads left out). Pairs with ``r >= threshold`` are reported.

The array kernels (fingerprints, top-k, cross-correlation) are in :mod:`aclecg.overlap_match`.

:func:`overlap_with_folds` answers the study's question: do evaluation rows in the test folds duplicate
pretraining rows? :func:`enforce` turns its report into a warning line or a refusal.

>>> from aclecg.overlap import find_overlap            # doctest: +SKIP
>>> result = find_overlap("challenge", "ptbxl")       # prepared folders  # doctest: +SKIP
>>> result.pairs[["a_record_id", "b_record_id", "r"]]  # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from aclecg.data.cache import PreparedDataset
from aclecg.data.preprocess import resample
from aclecg.errors import ConfigError, DataError
from aclecg.leads import canonical_lead
from aclecg.overlap_match import confirm, fingerprints, fit_projection, nearest

#: Columns of :attr:`Overlap.pairs` (and of the CSV ``aclecg overlap --out`` writes), in order.
PAIR_COLUMNS: tuple[str, ...] = (
    "a_record_id",
    "b_record_id",
    "r",
    "lag_s",
    "a_fold",
    "b_fold",
    "a_row",
    "b_row",
    "a_window",
    "b_window",
)
#: Policies of :func:`enforce`.
POLICIES: tuple[str, ...] = ("ignore", "warn", "refuse")


@dataclass(frozen=True)
class OverlapConfig:
    """How :func:`find_overlap` compares two datasets (see the module docstring for the steps)."""

    threshold: float = 0.95  #: report pairs whose mean lead correlation at the best lag reaches this
    fs: float | None = None  #: common sampling rate (Hz); default the lower of the two datasets' rates
    leads: tuple[str, ...] | None = None  #: leads to compare; default every lead both datasets hold
    max_lag_s: float = 0.5  #: the largest shift between two copies that is searched (seconds)
    edge_s: float = 1.0  #: trimmed at both ends of every tile before comparing (seconds; >= max_lag_s)
    candidates: int = 5  #: B segments confirmed per A segment (nearest fingerprints)
    bands: int = 48  #: spectral bands per lead in the fingerprint
    dims: int = 64  #: principal axes the fingerprints are projected onto
    chunk: int = 2048  #: candidate pairs confirmed at a time (bounds memory: about 0.1 MB a pair at 100 Hz)
    workers: int = 1  #: threads of the FFTs (scipy.fft)

    def check(self) -> None:
        """Raise :class:`ConfigError` naming the first invalid setting."""
        if not 0.0 < self.threshold <= 1.0:
            raise ConfigError(f"threshold (--threshold) must be in (0, 1], got {self.threshold}")
        if self.fs is not None and not self.fs > 0:
            raise ConfigError(f"fs (--fs) must be positive, got {self.fs}")
        if not self.max_lag_s >= 0:
            raise ConfigError(f"max_lag_s (--max-lag) must be >= 0, got {self.max_lag_s}")
        if not self.edge_s >= self.max_lag_s:
            raise ConfigError(
                f"edge_s (--edge) {self.edge_s:g} must be at least max_lag_s (--max-lag) {self.max_lag_s:g}"
            )
        for name in ("candidates", "bands", "dims", "chunk", "workers"):
            if int(getattr(self, name)) < 1:
                flag = {"candidates": " (-k)", "workers": " (--workers)"}.get(name, "")
                raise ConfigError(f"{name}{flag} must be at least 1, got {getattr(self, name)}")
        if self.leads is not None and not self.leads:
            raise ConfigError("leads (--leads) is empty; name at least one lead, or leave it out for every common lead")


@dataclass
class Overlap:
    """What :func:`find_overlap` found: the duplicate pairs (:data:`PAIR_COLUMNS`) and how it compared."""

    pairs: pd.DataFrame
    a_name: str
    b_name: str
    a_rows: int
    b_rows: int
    fs: float
    leads: tuple[str, ...]
    threshold: float
    compared: int  #: candidate pairs confirmed by cross-correlation
    seconds: float
    extra: dict = field(default_factory=dict)

    def summary(self) -> str:
        """One line: how many rows of A duplicate rows of B, at which threshold, rate and leads."""
        n_a = self.pairs["a_row"].nunique() if len(self.pairs) else 0
        n_b = self.pairs["b_row"].nunique() if len(self.pairs) else 0
        leads = ",".join(self.leads) if len(self.leads) < 12 else "12 leads"
        return (
            f"{self.a_name} ({self.a_rows} rows) vs {self.b_name} ({self.b_rows} rows): {n_a} row(s) of "
            f"{self.a_name} duplicate {n_b} row(s) of {self.b_name} (r >= {self.threshold:g}; {self.fs:g} Hz, "
            f"{leads}; {self.compared} candidate pairs checked in {self.seconds:.1f} s)"
        )


# --- the common view ---------------------------------------------------------------------------------------
def _open(dataset: PreparedDataset | str | Path) -> PreparedDataset:
    return dataset if isinstance(dataset, PreparedDataset) else PreparedDataset(dataset)


def common_leads(a: PreparedDataset, b: PreparedDataset, leads: Sequence[str] | None = None) -> tuple[str, ...]:
    """The leads both datasets hold (in A's order), or ``leads`` after checking both hold each one."""
    if leads is None:
        shared = tuple(x for x in a.leads if x in set(b.leads))
        if not shared:
            raise DataError(
                f"{a.path} and {b.path} have no lead in common ({', '.join(a.leads)} vs {', '.join(b.leads)})"
            )
        return shared
    out: list[str] = []
    for name in leads:
        try:
            lead = canonical_lead(name)
        except ValueError as exc:
            raise ConfigError(f"leads: {exc}") from None
        for ds in (a, b):
            if lead not in ds.leads:
                raise DataError(f"{ds.path}: has no lead {lead} (it holds {', '.join(ds.leads)})")
        if lead not in out:
            out.append(lead)
    return tuple(out)


@dataclass(frozen=True)
class _View:
    """One dataset's rows at the common rate and leads, cut into tiles of ``tile`` samples."""

    ds: PreparedDataset
    rows: np.ndarray
    lead_idx: np.ndarray
    fs: float
    length: int  #: samples of a row at the common rate
    tile: int  #: samples of a tile at the common rate

    @property
    def tiles_per_row(self) -> int:
        return self.length // self.tile

    def read(self, rows: np.ndarray) -> np.ndarray:
        """``(n, leads, length)`` float32 of dataset rows ``rows`` (read in ascending order, returned as asked)."""
        rows = np.asarray(rows, dtype=np.int64)
        order = np.argsort(rows, kind="stable")
        ascending = rows[order]
        if ascending.size and ascending[-1] - ascending[0] + 1 == ascending.size:  # a run of rows: one slice
            block = np.array(self.ds.signals[int(ascending[0]) : int(ascending[-1]) + 1])
        else:
            block = self.ds.signals[ascending]
        if self.lead_idx.size != block.shape[1] or np.any(self.lead_idx != np.arange(block.shape[1])):
            block = block[:, self.lead_idx]
        if np.any(order != np.arange(order.size)):
            x = np.empty_like(block)
            x[order] = block
            block = x
        if abs(self.fs - self.ds.fs) > 1e-9:
            block = resample(block, self.ds.fs, self.fs).astype(np.float32)
        return block[..., : self.length]


#: Row indices of a dataset (``None``: every row).
Rows = Sequence[int] | np.ndarray | None


def _views(
    a: PreparedDataset, b: PreparedDataset, rows_a: Rows, rows_b: Rows, cfg: OverlapConfig
) -> tuple[_View, _View]:
    leads = common_leads(a, b, cfg.leads)
    fs = float(cfg.fs) if cfg.fs is not None else min(a.fs, b.fs)
    lengths = [int(round(ds.n_samples * fs / ds.fs)) for ds in (a, b)]
    tile = min(lengths)
    edge, lag = int(round(cfg.edge_s * fs)), int(round(cfg.max_lag_s * fs))
    if tile - 2 * edge < max(8, lag):
        raise ConfigError(
            f"windows of {tile / fs:g} s at {fs:g} Hz leave no segment to compare after trimming edge_s "
            f"{cfg.edge_s:g} s at both ends; lower edge_s (and max_lag_s)"
        )
    views = []
    for ds, rows, length in ((a, rows_a, lengths[0]), (b, rows_b, lengths[1])):
        idx = np.arange(len(ds)) if rows is None else np.unique(np.asarray(rows, dtype=np.int64))
        if idx.size and (idx[0] < 0 or idx[-1] >= len(ds)):
            raise ConfigError(f"{ds.path}: row indices outside 0..{len(ds) - 1}")
        lead_idx = np.array([ds.leads.index(x) for x in leads], dtype=np.int64)
        views.append(_View(ds, idx, lead_idx, fs, length, tile))
    return views[0], views[1]


def _row_blocks(view: _View, block: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(rows, signals)`` blocks of a view, in order."""
    for start in range(0, view.rows.size, block):
        rows = view.rows[start : start + block]
        yield rows, view.read(rows)


def _segments(x: np.ndarray, tile: int, edge: int) -> np.ndarray:
    """``(n * tiles, leads, tile - 2 edge)``: the interior of every tile of every row (row-major)."""
    n, leads, length = x.shape
    k = length // tile
    tiles = x[..., : k * tile].reshape(n, leads, k, tile).transpose(0, 2, 1, 3)
    return np.ascontiguousarray(tiles[..., edge : tile - edge]).reshape(n * k, leads, tile - 2 * edge)


# --- confirmation ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Scored:
    a_seg: np.ndarray  # A segment of each pair (global segment index)
    b_seg: np.ndarray  # B segment of each pair
    r: np.ndarray  # mean lead Pearson correlation at the best lag
    lag: np.ndarray  # best lag in samples: A's segment reappears ``lag`` samples later in B


def _regions(xb: np.ndarray, row_of: np.ndarray, tiles: np.ndarray, tile: int, edge: int, lag: int) -> np.ndarray:
    """``(n, leads, segment + 2 lag)``: row ``xb[row_of[i]]`` around the interior of its tile ``tiles[i]``."""
    width = tile - 2 * edge + 2 * lag
    first = edge - lag
    if not tiles.any() and np.array_equal(row_of, np.arange(len(xb))):
        return xb[..., first : first + width]  # one tile per row: a view
    out = np.empty((len(tiles), xb.shape[1], width), dtype=xb.dtype)
    for j in np.unique(tiles):
        pick = tiles == j
        start = int(j) * tile + first
        out[pick] = xb[row_of[pick], :, start : start + width]
    return out


def _confirm_block(
    qa: np.ndarray, seg0: int, cand: np.ndarray, b: _View, edge: int, lag: int, cfg: OverlapConfig
) -> _Scored:
    """Confirm the candidates ``cand`` (B segment indices) of A segments ``seg0 ..`` whose interiors are ``qa``."""
    k_b = b.tiles_per_row
    unique_seg, inverse = np.unique(cand, return_inverse=True)
    rows, row_inv = np.unique(unique_seg // k_b, return_inverse=True)
    xb = b.read(b.rows[rows])
    regions = _regions(xb, row_inv, unique_seg % k_b, b.tile, edge, lag)
    pa = np.repeat(np.arange(len(qa)), cand.shape[1])
    pb = inverse.reshape(-1)
    r, lags = confirm(qa, regions, pa, pb, lag, cfg.threshold, cfg.workers)
    return _Scored(pa + seg0, unique_seg[pb], r, lags)


# --- the whole comparison ----------------------------------------------------------------------------------
def _fingerprint_view(view: _View, edge: int, cfg: OverlapConfig) -> np.ndarray:
    parts = [
        fingerprints(_segments(x, view.tile, edge), view.fs, cfg.bands, cfg.workers) for _, x in _row_blocks(view, 1024)
    ]
    return np.concatenate(parts) if parts else np.zeros((0, len(view.lead_idx) * cfg.bands), np.float32)


def _pairs_frame(found: list[_Scored], a: _View, b: _View) -> pd.DataFrame:
    if not found:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in PAIR_COLUMNS})
    cat = {k: np.concatenate([getattr(s, k) for s in found]) for k in ("a_seg", "b_seg", "r", "lag")}
    a_row = a.rows[cat["a_seg"] // a.tiles_per_row]
    b_row = b.rows[cat["b_seg"] // b.tiles_per_row]
    a_off = (cat["a_seg"] % a.tiles_per_row) * a.tile
    b_off = (cat["b_seg"] % b.tiles_per_row) * b.tile
    ra, rb = a.ds.records, b.ds.records
    frame = pd.DataFrame(
        {
            "a_record_id": ra["record_id"].to_numpy()[a_row],
            "b_record_id": rb["record_id"].to_numpy()[b_row],
            "r": np.round(cat["r"], 4),
            # where A's waveform sits in B's row, relative to where it sits in A's row
            "lag_s": np.round((b_off - a_off + cat["lag"]) / a.fs, 4),
            "a_fold": ra["fold"].to_numpy()[a_row],
            "b_fold": rb["fold"].to_numpy()[b_row],
            "a_row": a_row,
            "b_row": b_row,
            "a_window": ra["window"].to_numpy()[a_row] if "window" in ra else 0,
            "b_window": rb["window"].to_numpy()[b_row] if "window" in rb else 0,
        }
    )
    frame = frame.sort_values(["a_row", "r"], ascending=[True, False], kind="stable")
    return frame.drop_duplicates(["a_row", "b_row"]).reset_index(drop=True)[list(PAIR_COLUMNS)]


def find_overlap(
    a: PreparedDataset | str | Path,
    b: PreparedDataset | str | Path,
    config: OverlapConfig | None = None,
    rows_a: Rows = None,
    rows_b: Rows = None,
    progress: Callable[[str], None] | None = None,
) -> Overlap:
    """Rows of ``a`` (or of its ``rows_a``) that duplicate rows of ``b`` (or of ``rows_b``): see the module docstring.

    BLAS and FFTs use ``config.workers`` threads."""
    cfg = config or OverlapConfig()
    cfg.check()
    started = time.perf_counter()
    ds_a, ds_b = _open(a), _open(b)
    va, vb = _views(ds_a, ds_b, rows_a, rows_b, cfg)
    timings: dict[str, float] = {}
    with _thread_limit(cfg.workers):
        found, compared = _search(va, vb, cfg, progress or (lambda _: None), timings)
    return Overlap(
        pairs=_pairs_frame(found, va, vb),
        a_name=ds_a.name,
        b_name=ds_b.name,
        a_rows=int(va.rows.size),
        b_rows=int(vb.rows.size),
        fs=va.fs,
        leads=common_leads(ds_a, ds_b, cfg.leads),
        threshold=cfg.threshold,
        compared=compared,
        seconds=time.perf_counter() - started,
        extra={"seconds": timings},
    )


def _thread_limit(workers: int) -> AbstractContextManager:
    """At most ``workers`` BLAS threads (oversubscribed BLAS threads on a busy machine cost seconds)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn, a dependency
        return nullcontext()
    return threadpool_limits(int(workers))


def _search(
    va: _View, vb: _View, cfg: OverlapConfig, say: Callable[[str], None], timings: dict[str, float]
) -> tuple[list[_Scored], int]:
    """Fingerprint both views, retrieve candidates, confirm them; the pairs at or above the threshold."""
    found: list[_Scored] = []
    compared = 0
    if not (va.rows.size and vb.rows.size):
        return found, compared
    edge, lag = int(round(cfg.edge_s * va.fs)), int(round(cfg.max_lag_s * va.fs))
    clock = time.perf_counter()
    say(f"fingerprints of {vb.ds.name} ({vb.rows.size} rows)")
    fb = _fingerprint_view(vb, edge, cfg)
    proj = fit_projection(fb, cfg.dims)
    fb = proj(fb)
    say(f"fingerprints of {va.ds.name} ({va.rows.size} rows)")
    fa = proj(_fingerprint_view(va, edge, cfg))
    timings["fingerprints"] = time.perf_counter() - clock
    clock = time.perf_counter()
    cand = nearest(fa, fb, cfg.candidates)
    timings["candidates"] = time.perf_counter() - clock
    clock = time.perf_counter()
    k_a = va.tiles_per_row
    per_chunk = max(1, cfg.chunk // (cfg.candidates * k_a))  # A rows whose candidates are confirmed together
    for start, (rows, x) in zip(range(0, va.rows.size, per_chunk), _row_blocks(va, per_chunk)):
        say(f"confirming rows {start}..{start + len(rows) - 1} of {va.ds.name}")
        seg0 = start * k_a
        qa = _segments(x, va.tile, edge)
        scored = _confirm_block(qa, seg0, cand[seg0 : seg0 + len(qa)], vb, edge, lag, cfg)
        compared += scored.r.size
        hit = scored.r >= cfg.threshold
        found.append(_Scored(scored.a_seg[hit], scored.b_seg[hit], scored.r[hit], scored.lag[hit]))
    timings["confirm"] = time.perf_counter() - clock
    return found, compared


# --- pretraining data against test folds -------------------------------------------------------------------
@dataclass
class FoldOverlap:
    """Evaluation rows in ``folds`` that duplicate pretraining rows (:func:`overlap_with_folds`)."""

    overlap: Overlap  #: A = the evaluation rows in ``folds``, B = the pretraining rows
    folds: tuple[int, ...]
    per_fold: dict[int, int]  #: evaluation rows of each fold that duplicate a pretraining row

    @property
    def pairs(self) -> pd.DataFrame:
        return self.overlap.pairs

    @property
    def leaks(self) -> bool:
        return bool(len(self.overlap.pairs))

    def line(self) -> str:
        """One line naming the folds, how many of their rows duplicate pretraining rows, and a few ids."""
        o = self.overlap
        where = f"pretraining data {o.b_name} vs {o.a_name} fold(s) {', '.join(map(str, self.folds))}"
        if not self.leaks:
            return f"{where}: no duplicate records (r >= {o.threshold:g}, {o.a_rows} x {o.b_rows} rows)"
        counts = ", ".join(f"fold {f}: {n}" for f, n in self.per_fold.items() if n)
        ids = o.pairs.drop_duplicates("a_row").head(3)
        example = "; ".join(f"{a} = {b} (r {r:.3f})" for a, b, r in ids[["a_record_id", "b_record_id", "r"]].values)
        n = o.pairs["a_row"].nunique()
        more = " ..." if n > 3 else ""
        return f"{where}: {n} test row(s) duplicate pretraining records ({counts}; e.g. {example}{more})"


def pretraining_rows(
    dataset: PreparedDataset | str | Path, exclude_splits: Sequence[str] = ("test",), exclude_folds: Sequence[int] = ()
) -> np.ndarray:
    """The rows of ``dataset`` a pretraining run with these exclusions reads (a checkpoint's provenance records
    them: ``exclude_splits``, ``exclude_folds``); the same rule as ``aclecg.training.data.PretrainData``."""
    ds = _open(dataset)
    split = ds.records["split"].astype(str).to_numpy() if "split" in ds.records else np.full(len(ds), "train")
    drop = np.isin(split, list(exclude_splits))
    if exclude_folds:
        drop |= np.isin(ds.folds, [int(f) for f in exclude_folds])
    return np.flatnonzero(~drop)


def overlap_with_folds(
    pretrain: PreparedDataset | str | Path,
    evaluation: PreparedDataset | str | Path,
    folds: Sequence[int],
    pretrain_rows: Rows = None,
    config: OverlapConfig | None = None,
) -> FoldOverlap:
    """Which rows of ``evaluation`` in ``folds`` (the test folds) duplicate rows of ``pretrain`` (all of them, or
    ``pretrain_rows``: the rows the encoder was pretrained on). Use :func:`enforce` to warn or refuse."""
    ds_eval, ds_pre = _open(evaluation), _open(pretrain)
    wanted = sorted({int(f) for f in folds})
    if not wanted:
        raise ConfigError("folds is empty; name the test folds to check")
    rows = np.flatnonzero(np.isin(ds_eval.folds, wanted))
    result = find_overlap(ds_eval, ds_pre, config, rows_a=rows, rows_b=pretrain_rows)
    hit = result.pairs.drop_duplicates("a_row")
    per_fold = {f: int((hit["a_fold"].astype(int) == f).sum()) for f in wanted}
    return FoldOverlap(result, tuple(wanted), per_fold)


def enforce(report: FoldOverlap, policy: str = "warn") -> str | None:
    """Apply ``policy`` to a :func:`overlap_with_folds` report: ``refuse`` raises :class:`DataError` with its line
    when test rows duplicate pretraining rows; ``warn`` returns the line (``None`` when clean); ``ignore`` returns
    ``None``."""
    if policy not in POLICIES:
        raise ConfigError(f"overlap policy must be one of {', '.join(POLICIES)}, got {policy!r}")
    if policy == "ignore" or not report.leaks:
        return None
    if policy == "refuse":
        raise DataError(f"{report.line()}; pretrain without those records or score other folds")
    return f"warning: {report.line()}"
