"""The pretraining engine: one function, a run directory as its contract, exact resume, CPU/GPU/multi-GPU.

``pretrain(config, run_dir)`` trains one self-supervised method on one or more prepared datasets and writes:

=====================  ==================================================================================
``config.json``        the fully resolved :class:`PretrainConfig`; ``pretrain --config config.json`` reproduces the run
``metrics.jsonl``      one JSON object per logged step: step, epoch, loss and every loss term, lr, samples/s, device, memory
``status.json``        state (queued/running/finished/failed/cancelled), error, pid, host, heartbeat, progress
``checkpoints/``       ``step_XXXXXXXX.pt`` (last *K* kept), ``best.pt``, each with a ``.sha256`` sidecar
``encoder.pt``         the final online encoder with its metadata, for evaluation and the app
``lock``               held by the process writing the run; two runs never share a directory
=====================  ==================================================================================

Determinism: the sample order of epoch *e* is a permutation seeded by ``(seed, e)``; augmentations draw from one
``torch.Generator``; model randomness from torch's global generator. All of them, the optimiser, the AMP scaler and
the method's extra state (EMA targets, queues) are checkpointed, so a run killed at any step and resumed ends
bit-identical to an uninterrupted one on CPU.

Multi-GPU: launch with ``torchrun --nproc_per_node N -m aclecg pretrain ...``. Every process builds the same global
batch and the same augmented views, keeps its own slice, and batch norm and contrastive negatives span all processes,
so *N* processes with global batch *B* follow the same loss curve as one process with batch *B*.
"""

from __future__ import annotations

import gc
import json
import math
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from aclecg import atomicio
from aclecg import checkpoint as ckpt
from aclecg.errors import AclEcgError, ConfigError
from aclecg.leads import LEADS, canonical_lead, default_region_map
from aclecg.procs import live_records, own_record, read_json, record_alive
from aclecg.runtime import AMP_NAMES, amp_from_name, resolve_amp, resolve_device, set_deterministic
from aclecg.parallel import (DistInfo, all_reduce_mean, broadcast_object, convert_sync_batchnorm, init_distributed,
                             reduce_flags, shutdown_distributed)

STATES = ("queued", "running", "finished", "failed", "cancelled")


# --------------------------------------------------------------------------------------------------- configuration
@dataclass
class PretrainConfig:
    """Everything that defines a pretraining run. Plain data: it round-trips through JSON."""

    method: str = "acl_ecg"
    data: list[str] = field(default_factory=list)
    encoder: str | dict[str, Any] = "small"
    method_hparams: dict[str, Any] = field(default_factory=dict)
    augmentation: str | list[dict[str, Any]] | None = None  # None: the method's default
    leads: list[str] = field(default_factory=lambda: list(LEADS))
    avr_policy: str = "exclude"
    exclude_splits: list[str] = field(default_factory=lambda: ["test"])
    exclude_folds: list[int] = field(default_factory=list)  # e.g. [9] when fold 9 will be a rotated test fold
    epochs: int = 30
    max_steps: int | None = None
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-5
    warmup_steps: int = 20
    grad_clip: float | None = 3.0
    seed: int = 0
    device: str = "auto"
    amp: str = "auto"  # auto (bf16/fp16 on CUDA, off on CPU), off, bf16, fp16
    compile: bool = False
    deterministic: bool = False  # CUDA only: deterministic cuDNN/cuBLAS kernels, no TF32 (CPU is always exact)
    checkpoint_every: int = 50
    keep_last: int = 3
    log_every: int = 1
    max_peaks: int = 32

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        positive = {"epochs": self.epochs, "batch_size": self.batch_size, "checkpoint_every": self.checkpoint_every,
                    "keep_last": self.keep_last, "log_every": self.log_every, "max_peaks": self.max_peaks}
        for key, value in positive.items():
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{key} must be a positive integer, got {value!r}")
        if self.max_steps is not None and (not isinstance(self.max_steps, int) or self.max_steps < 1):
            raise ConfigError(f"max_steps must be a positive integer or null, got {self.max_steps!r}")
        if not (isinstance(self.lr, (int, float)) and 0 < self.lr < 10):
            raise ConfigError(f"lr must be in (0, 10), got {self.lr!r}")
        if self.device not in ("auto", "cpu", "cuda") and not str(self.device).startswith("cuda:"):
            raise ConfigError(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        for key in ("compile", "deterministic"):
            if not isinstance(getattr(self, key), bool):
                raise ConfigError(f"{key} must be true or false, got {getattr(self, key)!r}")
        if self.amp not in ("auto", "off", "bf16", "fp16"):
            raise ConfigError(f"amp must be auto, off, bf16 or fp16, got {self.amp!r}")
        if not isinstance(self.exclude_folds, list) or not all(
                isinstance(f, int) and not isinstance(f, bool) for f in self.exclude_folds):
            raise ConfigError(f"exclude_folds must be a list of fold numbers, got {self.exclude_folds!r}")
        if self.avr_policy not in ("exclude", "own"):
            raise ConfigError(f"avr_policy must be exclude or own, got {self.avr_policy!r}")
        try:
            self.leads = [canonical_lead(lead) for lead in self.leads]
        except ValueError as exc:
            raise ConfigError(f"leads: {exc}") from exc
        if len(set(self.leads)) != len(self.leads) or not self.leads:
            raise ConfigError(f"leads must be a non-empty list without repeats, got {self.leads}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PretrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown configuration keys {unknown}; known keys: {sorted(known)}")
        return cls(**data)

    @classmethod
    def from_file(cls, path: str | Path) -> "PretrainConfig":
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"configuration file {path} does not exist") from None
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path} is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path} must hold a JSON object")
        if "run" in data and "config" in data:  # a run's own config.json written by the engine
            data = data["config"]
        base_dir = path.parent
        data["data"] = [str(_resolve_relative(d, base_dir)) for d in data.get("data", [])]
        return cls.from_dict(data)


def _resolve_relative(path: str, base: Path) -> Path:
    """Paths in a config file are relative to the repository (cwd) if they exist there, else to the file."""
    candidate = Path(path)
    if path.startswith("bundled:") or candidate.is_absolute() or candidate.exists():
        return candidate
    alt = base / candidate
    return alt if alt.exists() else candidate


#: Named presets: starting points the CLI and the app offer. Values override PretrainConfig defaults.
PRESETS: dict[str, dict[str, Any]] = {
    "cpu-small": {"encoder": "small", "epochs": 20, "batch_size": 64, "lr": 1e-3, "checkpoint_every": 50},
    "cpu-quick": {"encoder": "small", "epochs": 2, "batch_size": 64, "lr": 1e-3, "checkpoint_every": 10},
    "gpu-base": {"encoder": "base", "epochs": 100, "batch_size": 256, "lr": 1e-3, "checkpoint_every": 200,
                 "device": "cuda"},
}


# ------------------------------------------------------------------------------------------------------------ data
class PretrainData:
    """The union of several prepared datasets, read from their memory-mapped caches in global batches."""

    def __init__(self, paths: Sequence[str | Path], leads: Sequence[str], exclude_splits: Sequence[str] = ("test",),
                 exclude_folds: Sequence[int] = ()):
        from aclecg.data import PreparedDataset

        if not paths:
            raise ConfigError("no data given: pass at least one prepared dataset (--data DIR)")
        self.datasets = [PreparedDataset(resolve_data_path(p)) for p in paths]
        self.exclude_folds = [int(f) for f in exclude_folds]
        first = self.datasets[0]
        for ds in self.datasets[1:]:
            if (ds.fs, ds.n_samples) != (first.fs, first.n_samples):
                raise ConfigError(f"{ds.path} has fs={ds.fs}, T={ds.n_samples} but {first.path} has fs={first.fs}, "
                                  f"T={first.n_samples}; prepare them with the same --fs and --seconds")
        self.fs, self.n_samples = first.fs, first.n_samples
        self.leads = list(leads)
        self.lead_idx: list[list[int]] = []
        for ds in self.datasets:
            missing = [lead for lead in self.leads if lead not in ds.leads]
            if missing:
                raise ConfigError(f"{ds.path} lacks leads {missing}")
            self.lead_idx.append([list(ds.leads).index(lead) for lead in self.leads])
        owner, local = [], []
        for k, ds in enumerate(self.datasets):
            split = ds.records["split"].astype(str).to_numpy() if "split" in ds.records else np.array(["train"] * len(ds))
            drop = np.isin(split, list(exclude_splits))
            if self.exclude_folds and "fold" in ds.records:
                drop |= np.isin(ds.records["fold"].to_numpy(), self.exclude_folds)
            keep = np.flatnonzero(~drop)
            owner.append(np.full(len(keep), k, dtype=np.int64))
            local.append(keep.astype(np.int64))
        self.owner = np.concatenate(owner)
        self.local = np.concatenate(local)
        if len(self.owner) == 0:
            raise ConfigError(f"no records left for pretraining after excluding splits {list(exclude_splits)} and "
                              f"folds {self.exclude_folds}")
        self.fingerprint = ckpt.sha256_bytes("|".join(ds.fingerprint for ds in self.datasets).encode())

    def __len__(self) -> int:
        return len(self.owner)

    def batch(self, index: np.ndarray, max_peaks: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Signals ``(B, L, T)`` float32 and R-peaks ``(B, K)`` int64 (-1 padded) for global indices."""
        x = np.empty((len(index), len(self.leads), self.n_samples), dtype=np.float32)
        peaks = np.full((len(index), max_peaks), -1, dtype=np.int64)
        owners = self.owner[index]
        for k, ds in enumerate(self.datasets):
            rows = np.flatnonzero(owners == k)
            if len(rows) == 0:
                continue
            local = self.local[index[rows]]
            order = np.argsort(local)  # ascending reads are kinder to the page cache
            sig = ds.signals[local[order]][:, self.lead_idx[k]]
            x[rows[order]] = sig
            peaks[rows] = ds.rpeaks_padded(local, max_peaks=max_peaks)
        return torch.from_numpy(x), torch.from_numpy(peaks)


def resolve_data_path(path: str | Path) -> Path:
    """A prepared dataset directory; ``bundled:NAME`` names a bundled dataset (prepared on first use)."""
    text = str(path)
    if text.startswith("bundled:"):
        from aclecg.data import ensure_bundled

        name = text.split(":", 1)[1]
        bundled = ensure_bundled()
        if name not in bundled:
            raise ConfigError(f"unknown bundled dataset {name!r}; bundled: {sorted(bundled)}")
        return Path(bundled[name])
    return Path(path)


def epoch_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    """The sample order of one epoch; a pure function of (seed, epoch) so resume needs no stored order."""
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=gen).numpy()


def lr_at(step: int, total: int, base: float, warmup: int) -> float:
    """Linear warm-up then cosine decay to zero; a pure function of the step."""
    if warmup > 0 and step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return base * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


# -------------------------------------------------------------------------------------------------------- run files
class RunDir:
    """Files of one run directory; only the main process writes them."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.config = self.path / "config.json"
        self.metrics = self.path / "metrics.jsonl"
        self.status = self.path / "status.json"
        self.lock = self.path / "lock"
        self.checkpoints = self.path / "checkpoints"
        self.encoder = self.path / "encoder.pt"
        self.log = self.path / "log.txt"
        self.procs = self.path / "procs"  # procs/rank-N.json: pid + start time of each training process
        self._status_lock = threading.Lock()

    def read_status(self) -> dict[str, Any]:
        return read_json(self.status)

    def write_status(self, **updates: Any) -> dict[str, Any]:
        with self._status_lock:
            status = self.read_status()
            status.update(updates)
            status["updated"] = time.time()
            atomicio.write_bytes(self.status, json.dumps(status, indent=1).encode())
            return status

    def acquire_lock(self) -> None:
        """Take the run's lock; a lock left by a dead process (same host) is taken over."""
        self.path.mkdir(parents=True, exist_ok=True)
        me = json.dumps({**own_record(), "time": time.time()})
        for _ in range(2):
            try:
                fd = os.open(self.lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    holder = json.loads(self.lock.read_text() or "{}")
                except (OSError, json.JSONDecodeError):
                    holder = {}
                if holder.get("host") == socket.gethostname() and not record_alive(holder):
                    self.lock.unlink(missing_ok=True)
                    continue
                raise AclEcgError(f"run directory {self.path} is in use by pid {holder.get('pid')} on "
                                  f"{holder.get('host')}; choose another --run-dir or cancel that run")
            with os.fdopen(fd, "w") as fh:
                fh.write(me)
            return
        raise AclEcgError(f"could not lock {self.path}")

    def release_lock(self) -> None:
        self.lock.unlink(missing_ok=True)

    def write_proc(self, rank: int) -> None:
        """Record this process as the run's rank ``rank`` (what cancel signals and run state trusts)."""
        self.procs.mkdir(parents=True, exist_ok=True)
        atomicio.write_bytes(self.procs / f"rank-{rank}.json", json.dumps({**own_record(), "rank": rank}).encode())

    def live_procs(self) -> list[dict[str, Any]]:
        """The records of this run's training processes that are still running (verified by start time)."""
        return live_records(self.procs)

    def step_checkpoints(self) -> list[Path]:
        return sorted(self.checkpoints.glob("step_*.pt"), reverse=True)


class Heartbeat(threading.Thread):
    """Refreshes ``status.json``'s heartbeat so readers can tell a live run from a dead one."""

    def __init__(self, run: RunDir, every: float = 5.0):
        super().__init__(daemon=True)
        self.run_dir, self.every, self.progress = run, every, {}
        self._stop_event = threading.Event()

    def run(self) -> None:  # noqa: D401 - threading API
        while not self._stop_event.wait(self.every):
            self.run_dir_beat()

    def run_dir_beat(self) -> None:
        try:
            self.run_dir.write_status(heartbeat=time.time(), **self.progress)
        except OSError:
            pass  # a full or read-only disk: the training loop reports it at its next write

    def stop(self) -> None:
        """Stop beating and wait for the thread, so nothing writes the run's files after the run has ended."""
        self._stop_event.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout=10)


# ----------------------------------------------------------------------------------------------------- the engine
def build_encoder_config(spec: str | dict[str, Any], leads: Sequence[str]):
    from aclecg.models import ENCODER_PRESETS, EncoderConfig

    if isinstance(spec, str):
        if spec not in ENCODER_PRESETS:
            raise ConfigError(f"unknown encoder preset {spec!r}; choose one of {sorted(ENCODER_PRESETS)}")
        base = ENCODER_PRESETS[spec]
        data = base.to_dict() if hasattr(base, "to_dict") else dict(base)
    else:
        data = dict(spec)
    data["leads"] = list(leads)
    return EncoderConfig.from_dict(data)


def build_method(config: PretrainConfig):
    from aclecg.methods import create_method

    encoder_config = build_encoder_config(config.encoder, config.leads)
    return create_method(config.method, encoder_config, leads=tuple(config.leads),
                         region_map=default_region_map(config.avr_policy), **config.method_hparams)


def _rng_state(device: torch.device, aug_gen: torch.Generator) -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "augment": aug_gen.get_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, Any], device: torch.device, aug_gen: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    aug_gen.set_state(state["augment"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def hardware_description(device: torch.device) -> str:
    """One line naming the machine a run trained on (for model cards)."""
    import platform

    text = f"{platform.machine()} CPU, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"
    if device.type == "cuda":
        text = f"{torch.cuda.get_device_name(device)} ({torch.cuda.device_count()} visible); " + text
    return text + f", torch {torch.__version__}"


def _memory_fields(device: torch.device) -> dict[str, float]:
    """The memory figure of one metrics row, named for what it measures.

    On CUDA, ``peak_gpu_memory_mb`` is the peak of allocated tensor memory; on CPU, ``rss_mb`` is the process's
    current resident set size (no peak is tracked there).
    """
    if device.type == "cuda":
        return {"peak_gpu_memory_mb": round(torch.cuda.max_memory_allocated(device) / 2**20, 1)}
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return {"rss_mb": round(int(line.split()[1]) / 1024, 1)}
    except OSError:
        pass
    return {"rss_mb": float("nan")}


#: fp16 runs stop after this many overflowed (skipped) steps in a row.
MAX_CONSECUTIVE_SKIPS = 25


def _forward(forward: Callable, view1: torch.Tensor, view2: torch.Tensor, device: torch.device,
             amp_dtype: torch.dtype | None) -> tuple[dict[str, Any], str | None]:
    """The method's loss terms, or ``({}, reason)`` when this process ran out of memory."""
    try:
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            return forward(view1, view2), None
    except torch.OutOfMemoryError as exc:
        if device.type == "cuda":
            torch.cuda.empty_cache()
        return {}, str(exc).splitlines()[0][:200]


class _Stop:
    """Set by SIGTERM/SIGINT: the loop checkpoints at the next step boundary and ends as 'cancelled'."""

    def __init__(self) -> None:
        self.requested = False

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:  # noqa: ARG002
        self.requested = True


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop metric rows logged after the checkpoint a run resumes from (they will be logged again)."""
    if not path.exists():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line).get("step", 0) <= step:
                keep.append(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a kill
    atomicio.write_bytes(path, ("\n".join(keep) + "\n" if keep else "").encode())


def find_resume_checkpoint(run: RunDir, log: Callable[[str], None]) -> dict[str, Any] | None:
    """The newest full training state that passes its integrity checks, and says which file it is.

    Step checkpoints are tried newest first; when none is usable, ``best.pt`` (which holds the full state of its
    step too) is the fallback. Corrupted files are reported and skipped, never loaded.
    """
    candidates = run.step_checkpoints() + [run.checkpoints / "best.pt"]
    for path in candidates:
        if not path.is_file():
            continue
        try:
            state = ckpt.load_checkpoint(path)
        except AclEcgError as exc:
            log(f"warning: {exc}; falling back to the previous checkpoint")
            continue
        if "optimizer" not in state or "rng" not in state:
            log(f"warning: {path.name} holds no training state; skipped")
            continue
        log(f"resuming from {path.name}")
        return state
    return None


def clean_stale_files(run: RunDir) -> list[str]:
    """Remove what an interrupted write can leave behind (the caller holds the run's lock).

    * ``.*.tmp`` files of atomic writes that never got renamed (checkpoint-sized);
    * ``.sha256`` sidecars whose file is missing (a kill between the sidecar and the file).
    """
    removed = []
    for folder in (run.path, run.checkpoints):
        if not folder.is_dir():
            continue
        for tmp in folder.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)
            removed.append(tmp.name)
        for sidecar in folder.glob("*.sha256"):
            if not sidecar.with_name(sidecar.name[: -len(".sha256")]).exists():
                sidecar.unlink(missing_ok=True)
                removed.append(sidecar.name)
    return removed


def pretrain(config: PretrainConfig, run_dir: str | Path, resume: bool = False, progress: bool = True,
             stop_after_steps: int | None = None) -> Path:
    """Run (or resume) pretraining into ``run_dir``; returns the path of the exported encoder.

    ``stop_after_steps`` ends the process's work after that many optimiser steps *of this call*, leaving a
    checkpoint, as if it had been cancelled (used by tests of resume).

    Under ``torchrun`` every decision that one rank makes alone (the stored configuration on resume, a lock or
    run-directory error, a non-finite loss, an out-of-memory error) is shared with the other ranks, so all of them
    stop together with the same error instead of blocking in a collective until torchrun kills them.
    """
    device = resolve_device(config.device)
    info = init_distributed(device.type == "cuda")
    try:
        return _pretrain_rank(config, run_dir, resume, progress, stop_after_steps, device, info)
    finally:
        if info.enabled:
            gc.collect()  # free DDP wrappers and their reducers while the process group still exists
        shutdown_distributed(info)


def _pick_device(config: PretrainConfig, device: torch.device, info: DistInfo) -> torch.device:
    if info.enabled and device.type == "cuda":
        if str(config.device).startswith("cuda:"):
            raise ConfigError(f"device {config.device!r} with {info.world_size} processes: under torchrun each "
                              f"process uses the GPU of its LOCAL_RANK; pass --device cuda (or auto) and choose "
                              f"the GPUs with CUDA_VISIBLE_DEVICES")
        device = torch.device("cuda", info.local_rank)
    if device.type == "cuda":
        if device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        torch.cuda.set_device(device)  # no stray context on GPU 0 for a run on cuda:1
    return device


def _pretrain_rank(config: PretrainConfig, run_dir: str | Path, resume: bool, progress: bool,
                   stop_after_steps: int | None, device: torch.device, info: DistInfo) -> Path:
    run = RunDir(run_dir)
    main = info.is_main
    logf = None

    def log(message: str) -> None:
        if main:
            print(message, file=sys.stderr, flush=True)
            if logf:
                logf.write(message + "\n")
                logf.flush()

    # Rank 0 validates the run directory, takes the lock and (on resume) adopts the stored configuration;
    # the outcome, and the configuration every rank trains with, is broadcast.
    setup_error: str | None = None
    stored_amp: str | None = None
    locked = False
    if main:
        try:
            device = _pick_device(config, device, info)
            if not resume and run.config.exists() and run.step_checkpoints():
                raise AclEcgError(f"{run.path} already holds a run; pass --resume to continue it or choose a new "
                                  f"--run-dir")
            run.acquire_lock()
            locked = True
            removed = clean_stale_files(run)
            if removed:
                log(f"removed {len(removed)} file(s) left by an interrupted write: {', '.join(sorted(removed))}")
            if resume and run.config.exists():
                stored = PretrainConfig.from_file(run.config)
                if stored.to_dict() != config.to_dict():
                    log("note: resuming with the configuration stored in the run directory")
                config = stored
                # A resumed run keeps the precision it started with, even if "auto" would now choose another;
                # runs from before this record trained CPU float32.
                stored_amp = read_json(run.config).get("resolved_amp") or ("off" if device.type == "cpu" else None)
        except AclEcgError as exc:
            setup_error = str(exc)
    resolved, setup_error, stored_amp = broadcast_object((config.to_dict(), setup_error, stored_amp), info)
    if setup_error is not None:
        if main:
            raise AclEcgError(setup_error)
        raise AclEcgError(f"rank 0 could not start the run: {setup_error}")
    config = PretrainConfig.from_dict(resolved)
    stopper = _Stop()
    stopper.install()
    heartbeat: Heartbeat | None = None
    try:
        device = _pick_device(config, device, info)
        set_deterministic(device, config.deterministic)
        amp_dtype = amp_from_name(stored_amp) if stored_amp else resolve_amp(config.amp, device, cpu_auto_bf16=True)
        run.write_proc(info.rank)
        if main:
            logf = open(run.log, "a")
            log(f"precision: {AMP_NAMES[amp_dtype]} (amp={config.amp}{', as the run started' if stored_amp else ''}, "
                f"{device})")
            run.write_status(state="running", pid=os.getpid(), process=own_record(), host=socket.gethostname(),
                             heartbeat=time.time(), error=None, started=time.time(), method=config.method,
                             world_size=info.world_size, hardware=hardware_description(device))
            atomicio.write_bytes(run.config, json.dumps(
                {"run": str(run.path.name), "config": config.to_dict(), "resolved_device": str(device),
                 "resolved_amp": AMP_NAMES[amp_dtype], "world_size": info.world_size}, indent=1).encode())
            heartbeat = Heartbeat(run)
            heartbeat.start()
        return _train_loop(config, run, device, info, resume, progress, stopper, stop_after_steps, log, heartbeat,
                           amp_dtype)
    except BaseException as exc:
        if heartbeat:
            heartbeat.stop()
        if main:
            cancelled = isinstance(exc, KeyboardInterrupt)
            try:
                run.write_status(state="cancelled" if cancelled else "failed",
                                 error=None if cancelled else f"{type(exc).__name__}: {exc}", heartbeat=time.time())
            except OSError as status_exc:  # the disk that failed the run may refuse the status too
                log(f"warning: could not record the failure in {run.status}: {status_exc}")
        raise
    finally:
        if heartbeat:
            heartbeat.stop()
        if logf:
            logf.close()
        if locked:
            run.release_lock()


def _train_loop(config, run, device, info: DistInfo, resume, progress, stopper, stop_after_steps, log, heartbeat,
                amp_dtype: torch.dtype | None):
    from aclecg.augment import build_augmentation

    torch.manual_seed(config.seed)
    data = PretrainData(config.data, config.leads, config.exclude_splits, config.exclude_folds)
    if config.batch_size % info.world_size:
        raise ConfigError(f"batch_size {config.batch_size} must be divisible by the number of processes "
                          f"({info.world_size})")
    if len(data) < config.batch_size:
        raise ConfigError(f"batch_size {config.batch_size} is larger than the {len(data)} training records")
    if config.compile and info.enabled:
        raise ConfigError("compile is supported for single-process runs only: under DDP every SyncBatchNorm "
                          "breaks the graph; drop --compile or run one process")
    method = build_method(config).to(device)
    aug_spec = config.augmentation if config.augmentation is not None else method.default_augmentation
    augment = build_augmentation(aug_spec, fs=data.fs, leads=config.leads,
                                 region_map=default_region_map(config.avr_policy))
    aug_gen = torch.Generator(device="cpu").manual_seed(config.seed + 17)
    steps_per_epoch = len(data) // config.batch_size
    total_steps = steps_per_epoch * config.epochs
    if config.max_steps:
        total_steps = min(total_steps, config.max_steps)
    if info.enabled:
        method = convert_sync_batchnorm(method, device.type == "cuda")
    optimizer = torch.optim.AdamW([p for p in method.parameters() if p.requires_grad], lr=config.lr,
                                  weight_decay=config.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)

    step, best = 0, float("inf")
    if resume:
        state = broadcast_object(find_resume_checkpoint(run, log) if info.is_main else None, info)
        if state is not None:
            if info.is_main:
                _truncate_metrics(run.metrics, int(state["step"]))
            method.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            if state.get("scaler"):  # a run saved without loss scaling stores {}, which GradScaler refuses
                scaler.load_state_dict(state["scaler"])
            _set_rng_state(state["rng"], device, aug_gen)
            step, best = int(state["step"]), float(state["best"])
            log(f"resumed from step {step} (epoch {step // steps_per_epoch + 1})")
        else:
            log("no usable checkpoint found: starting from scratch")
            if info.is_main:
                _truncate_metrics(run.metrics, 0)  # the rows of the lost steps will be logged again
    model = method
    if info.enabled:
        ids = [device.index] if device.type == "cuda" else None
        model = torch.nn.parallel.DistributedDataParallel(method, device_ids=ids)
    forward = torch.compile(model) if config.compile else model

    meta = {"format_version": ckpt.FORMAT_VERSION, "method": config.method, "hparams": dict(method.hparams),
            "encoder_config": method.encoder.config.to_dict(), "leads": list(config.leads), "fs": data.fs,
            "n_samples": data.n_samples, "data_fingerprint": data.fingerprint,
            "augmentation": aug_spec if isinstance(aug_spec, str) else json.dumps(aug_spec)}

    def save(kind: str, loss_value: float) -> None:
        nonlocal best
        if not info.is_main:
            return
        payload = {**meta, "epoch": step // steps_per_epoch, "step": step, "best": min(best, loss_value),
                   "model": method.state_dict(), "encoder": method.encoder.state_dict(),
                   "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
                   "rng": _rng_state(device, aug_gen), "config": json.dumps(config.to_dict())}
        path = run.checkpoints / f"step_{step:08d}.pt"
        ckpt.save_checkpoint(path, payload)
        for old in run.step_checkpoints()[config.keep_last:]:
            old.unlink(missing_ok=True)
            old.with_name(old.name + ".sha256").unlink(missing_ok=True)
        if loss_value < best:
            best = loss_value
            payload["best"] = best
            ckpt.save_checkpoint(run.checkpoints / "best.pt", payload)
        log(f"checkpoint ({kind}) at step {step}: {path.name}")

    global_b, local_b = config.batch_size, config.batch_size // info.world_size
    lo, hi = info.rank * local_b, (info.rank + 1) * local_b
    bar = None
    if progress and info.is_main:
        from tqdm.auto import tqdm
        bar = tqdm(total=total_steps, initial=step, unit="step", dynamic_ncols=True, file=sys.stderr)
    window_loss: list[float] = []
    steps_this_call = 0
    skipped = consecutive_skips = 0
    method.train()
    metrics_fh = open(run.metrics, "a") if info.is_main else None
    try:
        while step < total_steps:
            epoch = step // steps_per_epoch
            order = epoch_permutation(len(data), config.seed, epoch)
            pos = step % steps_per_epoch
            t0 = time.perf_counter()
            index = order[pos * global_b:(pos + 1) * global_b]
            x, peaks = data.batch(index, config.max_peaks)
            x, peaks = x.to(device, non_blocking=True), peaks.to(device, non_blocking=True)
            with torch.no_grad():
                view1 = augment(x, peaks, generator=aug_gen)[lo:hi]
                view2 = augment(x, peaks, generator=aug_gen)[lo:hi]
            lr = lr_at(step, total_steps, config.lr, config.warmup_steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            terms, failure = _forward(forward, view1, view2, device, amp_dtype)
            loss = terms.get("loss")
            bad_loss = loss is not None and not bool(torch.isfinite(loss.detach()).all())
            # One small collective tells every rank whether any rank failed, so all stop (or skip) together.
            n_oom, n_bad = reduce_flags([failure is not None, bad_loss], info)
            if n_oom:
                raise AclEcgError(f"out of memory at step {step} on {int(n_oom)} of {info.world_size} process(es); "
                                  f"lower --batch-size" + (f" ({failure})" if failure else ""))
            if n_bad and not scaler.is_enabled():
                where = f" on {int(n_bad)} of {info.world_size} processes" if info.enabled else ""
                raise AclEcgError(f"loss became non-finite at step {step}{where}; lower --lr or check the data")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if config.grad_clip:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(method.parameters(), config.grad_clip)
            scale_before = scaler.get_scale() if scaler.is_enabled() else 1.0
            scaler.step(optimizer)
            scaler.update()
            if scaler.is_enabled() and scaler.get_scale() < scale_before:
                # fp16 overflow: GradScaler skipped the update and lowered the scale (the same on every rank,
                # since DDP's gradients are already averaged); count it, and give up on a run that only overflows
                skipped += 1
                consecutive_skips += 1
                if consecutive_skips >= MAX_CONSECUTIVE_SKIPS:
                    raise AclEcgError(f"{consecutive_skips} fp16 steps in a row overflowed (up to step {step}); "
                                      f"use --amp bf16 or off, or lower --lr")
            else:
                consecutive_skips = 0
            method.momentum_update((step + 1) / total_steps)
            step += 1
            steps_this_call += 1
            scalars = {k: v.detach().float() for k, v in terms.items() if torch.is_tensor(v) and v.dim() == 0}
            logged = dict(zip(scalars, all_reduce_mean(torch.stack(list(scalars.values())), info).tolist()))
            window_loss.append(logged["loss"])
            elapsed = time.perf_counter() - t0
            if info.is_main and (step % config.log_every == 0 or step == total_steps):
                row = {"step": step, "epoch": epoch + 1, "epoch_float": step / steps_per_epoch, **logged, "lr": lr,
                       "samples_per_s": global_b / max(elapsed, 1e-9), "device": str(device),
                       "world_size": info.world_size, **_memory_fields(device), "time": time.time()}
                if scaler.is_enabled():
                    row["skipped_steps"] = skipped
                metrics_fh.write(json.dumps(row) + "\n")
                metrics_fh.flush()
            if heartbeat:
                heartbeat.progress = {"step": step, "total_steps": total_steps, "epoch": epoch + 1,
                                      "epochs": config.epochs, "loss": logged["loss"]}
            if bar:
                bar.set_description(f"epoch {epoch + 1}/{config.epochs}")
                bar.set_postfix(loss=f"{logged['loss']:.4f}", sps=f"{global_b / max(elapsed, 1e-9):.0f}")
                bar.update(1)
            stop_now = stopper.requested or (stop_after_steps is not None and steps_this_call >= stop_after_steps)
            stop_now = reduce_flags([stop_now], info)[0] > 0  # any rank asked: all stop at this step
            if step % config.checkpoint_every == 0 or step == total_steps or stop_now:
                save("periodic" if not stop_now else "stop", float(np.mean(window_loss)))
                window_loss = []
            if stop_now and step < total_steps:
                if info.is_main:
                    run.write_status(state="cancelled", error=None, step=step, total_steps=total_steps,
                                     heartbeat=time.time())
                    log(f"stopped at step {step}; resume with --resume")
                return run.encoder
    finally:
        if bar:
            bar.close()
        if metrics_fh:
            metrics_fh.close()
    if info.is_main:
        export = {**meta, "epoch": config.epochs, "step": step, "encoder": method.encoder.state_dict()}
        ckpt.save_checkpoint(run.encoder, export)
        run.write_status(state="finished", error=None, step=step, total_steps=total_steps, heartbeat=time.time(),
                         finished=time.time())
        log(f"finished: {step} steps; encoder exported to {run.encoder}")
    return run.encoder
