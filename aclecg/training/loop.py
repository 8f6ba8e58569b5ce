"""The pretraining engine: :func:`pretrain` and the :class:`Trainer` that runs its loop.

``pretrain(config, run_dir)`` trains one self-supervised method on one or more prepared datasets and writes a run
directory (its files: :mod:`aclecg.training.rundir`). Each process first settles the run in a
:func:`~aclecg.training.session.run_session`, which yields a :class:`~aclecg.training.session.RunContext`; a
:class:`Trainer` built from it holds the training state (model, optimiser, scaler, generators, step) and runs the
loop: one global batch, two augmented views, one optimiser step, a metrics row, a checkpoint when due.

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
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, cast

import numpy as np
import torch

from aclecg import checkpoint as ckpt
from aclecg.augment.draws import SampleDraws, sample_keys
from aclecg.errors import AclEcgError, CheckpointError, ConfigError
from aclecg.leads import default_region_map
from aclecg.parallel import (
    DistInfo,
    all_reduce_mean,
    broadcast_object,
    convert_sync_batchnorm,
    init_distributed,
    reduce_flags,
    shutdown_distributed,
)
from aclecg.runtime import resolve_device
from aclecg.training.config import PretrainConfig, build_method
from aclecg.training.data import PretrainData, epoch_permutation
from aclecg.training.devices import guarded_forward, memory_fields, rng_state, set_rng_state
from aclecg.training.rundir import find_resume_checkpoint, truncate_metrics
from aclecg.training.schedule import lr_at
from aclecg.training.session import RunContext, run_session

if TYPE_CHECKING:
    from aclecg.methods.base import SSLMethod

__all__ = ["MAX_CONSECUTIVE_SKIPS", "Trainer", "pretrain"]

#: fp16 runs stop after this many overflowed (skipped) steps in a row.
MAX_CONSECUTIVE_SKIPS = 25


def pretrain(
    config: PretrainConfig,
    run_dir: str | Path,
    resume: bool = False,
    progress: bool = True,
    stop_after_steps: int | None = None,
    restart: bool = False,
) -> Path:
    """Run (or resume) pretraining into ``run_dir``; returns the path of the exported encoder.

    ``stop_after_steps`` ends the process's work after that many optimiser steps *of this call*, leaving a
    checkpoint, as if it had been cancelled (used by tests of resume). A resume refuses checkpoints of another
    run, and damaged ones when none is usable; ``restart`` (implies ``resume``) sets those aside and continues
    from the newest usable one, or from scratch (:mod:`aclecg.training.resume`).

    Under ``torchrun`` every decision that one rank makes alone (the stored configuration on resume, a lock or
    run-directory error, a non-finite loss, an out-of-memory error) is shared with the other ranks, so all of them
    stop together with the same error instead of blocking in a collective until torchrun kills them.
    """
    device = resolve_device(config.device)
    info = init_distributed(device.type == "cuda")
    try:
        with run_session(config, run_dir, device, info, resume or restart, progress, stop_after_steps) as ctx:
            ctx.restart = restart
            return Trainer(ctx).run()
    finally:
        if info.enabled:
            gc.collect()  # free DDP wrappers and their reducers while the process group still exists
        shutdown_distributed(info)


def _check_shape(config: PretrainConfig, info: DistInfo, n_records: int) -> None:
    """Refuse a batch the processes or the data cannot form, and torch.compile under DDP."""
    if config.batch_size % info.world_size:
        raise ConfigError(
            f"batch_size {config.batch_size} must be divisible by the number of processes ({info.world_size})"
        )
    if n_records < config.batch_size:
        raise ConfigError(f"batch_size {config.batch_size} is larger than the {n_records} training records")
    if config.compile and info.enabled:
        raise ConfigError(
            "compile is supported for single-process runs only: under DDP every SyncBatchNorm "
            "breaks the graph; drop --compile or run one process"
        )


class Trainer:
    """The training state of one process and the loop over it.

    Built in the order that fixes every random draw (torch's seed, the method's initial weights, the augmentation
    generator), so the same configuration and seed give the same weights; :meth:`run` resumes when asked, trains
    to the end or to a stop request, and returns the path of the exported encoder.
    """

    def __init__(self, ctx: RunContext):
        from aclecg.augment import build_augmentation

        self.ctx = ctx
        config, info, device = ctx.config, ctx.info, ctx.device
        torch.manual_seed(config.seed)
        self.data = PretrainData(config.data, config.leads, config.exclude_splits, config.exclude_folds)
        _check_shape(config, info, len(self.data))
        method: SSLMethod = build_method(config).to(device)
        self.aug_spec = config.augmentation if config.augmentation is not None else method.default_augmentation
        self.augment = build_augmentation(
            self.aug_spec, fs=self.data.fs, leads=config.leads, region_map=default_region_map(config.avr_policy)
        )
        self.aug_gen = torch.Generator(device="cpu").manual_seed(config.seed + 17)
        self.steps_per_epoch = len(self.data) // config.batch_size
        self.total_steps = self.steps_per_epoch * config.epochs
        if config.max_steps:
            self.total_steps = min(self.total_steps, config.max_steps)
        # The conversion replaces batch-norm layers inside the method and returns the method object itself.
        if info.enabled:
            method = cast("SSLMethod", convert_sync_batchnorm(method, device.type == "cuda"))
        self.method = method
        self.optimizer = torch.optim.AdamW(
            [p for p in self.method.parameters() if p.requires_grad], lr=config.lr, weight_decay=config.weight_decay
        )
        self.scaler = torch.amp.GradScaler("cuda", enabled=ctx.amp_dtype == torch.float16)
        self.step, self.best = 0, float("inf")
        self.skipped = self.consecutive_skips = 0  # fp16 steps GradScaler skipped: in this call, and in a row
        self.global_batch = config.batch_size
        local = config.batch_size // info.world_size
        self.rows = slice(info.rank * local, (info.rank + 1) * local)  # this process's part of a global batch
        self.meta = {
            "format_version": ckpt.FORMAT_VERSION,
            "method": config.method,
            "hparams": dict(self.method.hparams),
            "encoder_config": self.method.encoder.config.to_dict(),
            "leads": list(config.leads),
            "fs": self.data.fs,
            "n_samples": self.data.n_samples,
            "data_fingerprint": self.data.fingerprint,
            "augmentation": self.aug_spec if isinstance(self.aug_spec, str) else json.dumps(self.aug_spec),
            "contract": self.data.contract.to_dict(),
        }

    def provenance(self) -> dict[str, Any]:
        """What a checkpoint of the current step records about how it was made (read by
        :func:`aclecg.checkpoint.provenance`): the data, what was held out, the seed, the steps and epochs run."""
        config = self.ctx.config
        return {
            "data_fingerprint": self.data.fingerprint,
            "data": [str(d) for d in config.data],
            "exclude_splits": [str(s) for s in config.exclude_splits],
            "exclude_folds": [int(f) for f in config.exclude_folds],
            "seed": int(config.seed),
            "steps": int(self.step),
            "epochs": round(self.step / self.steps_per_epoch, 6),
            "steps_per_epoch": int(self.steps_per_epoch),
            "total_steps": int(self.total_steps),
            "n_records": len(self.data),
        }

    # ------------------------------------------------------------------------------------------------ the loop
    def run(self) -> Path:
        """Train to ``total_steps`` (then export the encoder) or to a stop request (checkpoint, 'cancelled')."""
        ctx, config = self.ctx, self.ctx.config
        if ctx.resume:
            self.restore()
        forward = self._forward_module()
        bar = self._progress_bar()
        window_loss: list[float] = []
        steps_this_call = 0
        self.method.train()
        metrics_fh = open(ctx.run.metrics, "a") if ctx.info.is_main else None
        try:
            while self.step < self.total_steps:
                epoch = self.step // self.steps_per_epoch
                order = epoch_permutation(len(self.data), config.seed, epoch)
                t0 = time.perf_counter()
                view1, view2 = self._views(order)
                lr = lr_at(self.step, self.total_steps, config.lr, config.warmup_steps)
                logged = self._optimise(forward, view1, view2, lr)
                steps_this_call += 1
                window_loss.append(logged["loss"])
                self._report(logged, epoch, lr, time.perf_counter() - t0, metrics_fh, bar)
                stop_now = ctx.stopper.requested or (
                    ctx.stop_after_steps is not None and steps_this_call >= ctx.stop_after_steps
                )
                stop_now = reduce_flags([stop_now], ctx.info)[0] > 0  # any rank asked: all stop at this step
                if self.step % config.checkpoint_every == 0 or self.step == self.total_steps or stop_now:
                    self.save("periodic" if not stop_now else "stop", float(np.mean(window_loss)))
                    window_loss = []
                if stop_now and self.step < self.total_steps:
                    if ctx.info.is_main:
                        ctx.run.write_status(
                            state="cancelled",
                            error=None,
                            step=self.step,
                            total_steps=self.total_steps,
                            heartbeat=time.time(),
                        )
                        ctx.log(f"stopped at step {self.step}; resume with --resume")
                    return ctx.run.encoder
        finally:
            if bar:
                bar.close()
            if metrics_fh:
                metrics_fh.close()
        return self.export()

    def _views(self, order: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """This process's rows of the current step's global batch, augmented twice.

        ``per_sample`` draws: the process reads and augments only its own rows, each with draws keyed by (seed,
        epoch, view, record), so the views equal one process's for any world size. ``global_batch`` (runs made
        before per-sample draws): every process reads and augments the whole global batch and keeps its rows."""
        pos = self.step % self.steps_per_epoch
        index = order[pos * self.global_batch : (pos + 1) * self.global_batch]
        per_sample = self.ctx.config.input_draws == "per_sample"
        if per_sample:
            index = index[self.rows]
        x, peaks = self.data.batch(index, self.ctx.config.max_peaks)
        x, peaks = x.to(self.ctx.device, non_blocking=True), peaks.to(self.ctx.device, non_blocking=True)
        with torch.no_grad():
            if per_sample:
                epoch, rows = self.step // self.steps_per_epoch, torch.from_numpy(np.asarray(index, dtype=np.int64))
                seed = self.ctx.config.seed
                view1 = self.augment(x, peaks, generator=SampleDraws(sample_keys(seed, epoch, 1, rows)))
                view2 = self.augment(x, peaks, generator=SampleDraws(sample_keys(seed, epoch, 2, rows)))
            else:
                view1 = self.augment(x, peaks, generator=self.aug_gen)[self.rows]
                view2 = self.augment(x, peaks, generator=self.aug_gen)[self.rows]
        return view1, view2

    def _optimise(self, forward: Callable, view1: torch.Tensor, view2: torch.Tensor, lr: float) -> dict[str, float]:
        """One optimiser step at learning rate ``lr``; the scalar loss terms, averaged over processes."""
        ctx, config, info = self.ctx, self.ctx.config, self.ctx.info
        optimizer, scaler = self.optimizer, self.scaler
        for group in optimizer.param_groups:
            group["lr"] = lr
        terms, failure = guarded_forward(forward, view1, view2, ctx.device, ctx.amp_dtype)
        loss = terms.get("loss")
        bad_loss = loss is not None and not bool(torch.isfinite(loss.detach()).all())
        # One small collective tells every rank whether any rank failed, so all stop (or skip) together.
        n_oom, n_bad = reduce_flags([failure is not None, bad_loss], info)
        if n_oom:
            raise AclEcgError(
                f"out of memory at step {self.step} on {int(n_oom)} of {info.world_size} process(es); "
                f"lower --batch-size" + (f" ({failure})" if failure else "")
            )
        if n_bad and not scaler.is_enabled():
            where = f" on {int(n_bad)} of {info.world_size} processes" if info.enabled else ""
            raise AclEcgError(f"loss became non-finite at step {self.step}{where}; lower --lr or check the data")
        optimizer.zero_grad(set_to_none=True)
        assert loss is not None  # no loss only after an out-of-memory forward, which raised above
        scaler.scale(loss).backward()
        if config.grad_clip:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(self.method.parameters(), config.grad_clip)
        scale_before = scaler.get_scale() if scaler.is_enabled() else 1.0
        scaler.step(optimizer)
        scaler.update()
        if scaler.is_enabled() and scaler.get_scale() < scale_before:
            # fp16 overflow: GradScaler skipped the update and lowered the scale (the same on every rank,
            # since DDP's gradients are already averaged); count it, and give up on a run that only overflows
            self.skipped += 1
            self.consecutive_skips += 1
            if self.consecutive_skips >= MAX_CONSECUTIVE_SKIPS:
                raise AclEcgError(
                    f"{self.consecutive_skips} fp16 steps in a row overflowed (up to step {self.step}); "
                    f"use --amp bf16 or off, or lower --lr"
                )
        else:
            self.consecutive_skips = 0
        self.method.momentum_update((self.step + 1) / self.total_steps, self.total_steps)
        self.step += 1
        scalars = {k: v.detach().float() for k, v in terms.items() if torch.is_tensor(v) and v.dim() == 0}
        return dict(zip(scalars, all_reduce_mean(torch.stack(list(scalars.values())), info).tolist()))

    def _report(
        self, logged: dict[str, float], epoch: int, lr: float, elapsed: float, metrics_fh: TextIO | None, bar: Any
    ) -> None:
        """The step's metrics row (when due), the heartbeat's progress and the progress bar."""
        ctx, config = self.ctx, self.ctx.config
        samples_per_s = self.global_batch / max(elapsed, 1e-9)
        if metrics_fh and (self.step % config.log_every == 0 or self.step == self.total_steps):
            row = {
                "step": self.step,
                "epoch": epoch + 1,
                "epoch_float": self.step / self.steps_per_epoch,
                **logged,
                "lr": lr,
                "samples_per_s": samples_per_s,
                "device": str(ctx.device),
                "world_size": ctx.info.world_size,
                **memory_fields(ctx.device),
                "time": time.time(),
            }
            if self.scaler.is_enabled():
                row["skipped_steps"] = self.skipped
            metrics_fh.write(json.dumps(row) + "\n")
            metrics_fh.flush()
        if ctx.heartbeat:
            ctx.heartbeat.progress = {
                "step": self.step,
                "total_steps": self.total_steps,
                "epoch": epoch + 1,
                "epochs": config.epochs,
                "loss": logged["loss"],
            }
        if bar:
            bar.set_description(f"epoch {epoch + 1}/{config.epochs}")
            bar.set_postfix(loss=f"{logged['loss']:.4f}", sps=f"{samples_per_s:.0f}")
            bar.update(1)

    def _forward_module(self) -> Callable:
        """What the loop calls on the two views: the method, wrapped for DDP and compiled as configured."""
        model: torch.nn.Module = self.method
        if self.ctx.info.enabled:
            device = self.ctx.device
            ids = [device.index] if device.type == "cuda" else None
            model = torch.nn.parallel.DistributedDataParallel(self.method, device_ids=ids)
        return torch.compile(model) if self.ctx.config.compile else model

    def _progress_bar(self) -> Any:
        if not (self.ctx.progress and self.ctx.info.is_main):
            return None
        from tqdm.auto import tqdm

        return tqdm(total=self.total_steps, initial=self.step, unit="step", dynamic_ncols=True, file=sys.stderr)

    # ------------------------------------------------------------------------------------------ state on disk
    def identity(self) -> dict[str, Any]:
        """What a checkpoint must share with this run to be resumed (see :mod:`aclecg.training.resume`)."""
        config = self.ctx.config
        return {
            "method": self.meta["method"],
            "hparams": self.meta["hparams"],
            "encoder_config": self.meta["encoder_config"],
            "data_fingerprint": self.data.fingerprint,
            "exclude_splits": list(config.exclude_splits),
            "exclude_folds": [int(f) for f in config.exclude_folds],
            "seed": int(config.seed),
        }

    def restore(self) -> None:
        """Continue from the newest usable checkpoint: rank 0 finds it, every rank loads the same state.

        Nothing in the run directory changes before the state is chosen and loaded: a damaged or foreign
        checkpoint ends the resume with one line, and ``metrics.jsonl`` is cut back only once the state is in.
        """
        ctx = self.ctx
        state, error = None, None
        if ctx.info.is_main:
            try:
                state = find_resume_checkpoint(ctx.run, ctx.log, self.identity(), self.total_steps, ctx.restart)
            except AclEcgError as exc:
                error = str(exc)
        state, error = broadcast_object((state, error), ctx.info)
        if error is not None:
            raise CheckpointError(error if ctx.info.is_main else f"rank 0 could not resume: {error}")
        if state is None:
            ctx.log("no usable checkpoint found: starting from scratch")
            if ctx.info.is_main:
                truncate_metrics(ctx.run.metrics, 0)  # the rows of the lost steps will be logged again
            return
        try:
            self.method.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            if state.get("scaler"):  # a run saved without loss scaling stores {}, which GradScaler refuses
                self.scaler.load_state_dict(state["scaler"])
            set_rng_state(state["rng"], ctx.device, self.aug_gen)
        except (KeyError, RuntimeError, TypeError, ValueError) as exc:
            raise CheckpointError(
                f"cannot resume {ctx.run.path} from step {state.get('step')}: its training state does not fit this "
                f"run ({ckpt.first_line(exc)})"
            ) from None
        if ctx.info.is_main:
            truncate_metrics(ctx.run.metrics, int(state["step"]))
        self.step, self.best = int(state["step"]), float(state["best"])
        ctx.log(f"resumed from step {self.step} (epoch {self.step // self.steps_per_epoch + 1})")

    def save(self, kind: str, loss_value: float) -> None:
        """A step checkpoint with the full training state (the oldest beyond ``keep_last`` go), and ``best.pt``
        when ``loss_value`` (the mean loss since the previous checkpoint) is the lowest yet."""
        ctx = self.ctx
        if not ctx.info.is_main:
            return
        payload = {
            **self.meta,
            "epoch": self.step // self.steps_per_epoch,
            "step": self.step,
            "best": min(self.best, loss_value),
            "model": self.method.state_dict(),
            "encoder": self.method.encoder.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": rng_state(ctx.device, self.aug_gen),
            "config": json.dumps(ctx.config.to_dict()),
            "provenance": self.provenance(),
        }
        path = ctx.run.checkpoints / f"step_{self.step:08d}.pt"
        ckpt.save_checkpoint(path, payload)
        for old in ctx.run.step_checkpoints()[ctx.config.keep_last :]:
            old.unlink(missing_ok=True)
            old.with_name(old.name + ".sha256").unlink(missing_ok=True)
        if loss_value < self.best:
            self.best = loss_value
            payload["best"] = self.best
            ckpt.save_checkpoint(ctx.run.checkpoints / "best.pt", payload)
        ctx.log(f"checkpoint ({kind}) at step {self.step}: {path.name}")

    def export(self) -> Path:
        """Write ``encoder.pt`` and the final status (main process); the path of the encoder."""
        ctx = self.ctx
        if ctx.info.is_main:
            export = {
                **self.meta,
                "epoch": ctx.config.epochs,
                "step": self.step,
                "encoder": self.method.encoder.state_dict(),
                "provenance": self.provenance(),
            }
            ckpt.save_checkpoint(ctx.run.encoder, export)
            ctx.run.write_status(
                state="finished",
                error=None,
                step=self.step,
                total_steps=self.total_steps,
                heartbeat=time.time(),
                finished=time.time(),
            )
            ctx.log(f"finished: {self.step} steps; encoder exported to {ctx.run.encoder}")
        return ctx.run.encoder
