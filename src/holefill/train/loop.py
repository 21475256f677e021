"""The one training loop: checkpoints, exact resume, validation, logs, export, DDP, time budgets.

What is trained is a plug-in chosen by the configuration's type: :class:`~holefill.train.pconv.PConvTask`
for a :class:`~holefill.train.config.TrainConfig` (the PConv U-Net),
:class:`~holefill.train.content.ContentTask` for a :class:`~holefill.train.config.ContentTrainConfig`
(the content network of ``neural_patch``). A plug-in builds its networks and optimisers, does one
update per step, predicts for validation, and says what goes into a checkpoint and an export; the
loop does everything else, the same way for both.

Run folder::

    config.yaml        the resolved configuration
    train.csv          step, time_s, lr, each loss term, images_per_s (every log_every steps)
    val.csv            step, bin, count, psnr, ssim (per bin of the validation holes, then "all")
    val/val_step{N}.png   rows: masked input | output (composited) | ground truth
    checkpoints/       see holefill.train.checkpoint
    model.safetensors  the exported network at the end of the run
    tb/                TensorBoard events, when tensorboard is installed
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from holefill.errors import InputError
from holefill.train import checkpoint as ckpt
from holefill.train import distributed as ddp
from holefill.train.config import ContentTrainConfig, TrainConfig, save_config
from holefill.train.records import (
    VAL_COLUMNS,
    CsvLog,
    save_grid,
    tensorboard,
    validate,
    validation_line,
)

_AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class TrainResult:
    """What a run did: its last step, why it stopped, its last logged losses and validation."""

    run_dir: Path
    step: int
    stopped_by: str  # "max_steps", "max_minutes" or "signal"
    losses: dict[str, float]
    validation: dict[str, dict[str, float]] | None
    export_path: Path | None


def make_task(config: Any, context: ddp.DistContext, amp_dtype: torch.dtype | None, **options):
    """The plug-in that trains what ``config`` describes (``options``: the plug-in's own)."""
    if isinstance(config, TrainConfig):
        from holefill.train.pconv import PConvTask

        return PConvTask(config, context, amp_dtype, **options)
    if isinstance(config, ContentTrainConfig):
        from holefill.train.content import ContentTask

        if options.get("vgg_weights") or options.get("download_vgg"):
            raise InputError("the content trainer uses no VGG network (--vgg-weights is for pconv)")
        return ContentTask(config, context, amp_dtype)
    raise InputError(f"no trainer for a {type(config).__name__}")


def amp_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast type of ``amp`` on ``device``: bf16 on CUDA and CPUs (1.9x the images/s of
    float32 on the AVX-512 BF16 development VM), fp16 on CUDA only; None means float32."""
    if device.type == "cuda" or amp == "bf16":
        return _AMP_DTYPES.get(amp)
    return None


# ---------------------------------------------------------------------------------------------
# The trainer
# ---------------------------------------------------------------------------------------------


class Trainer:
    """One training run of the plug-in ``config`` calls for; :meth:`run` does it.

    Parameters
    ----------
    config : TrainConfig or ContentTrainConfig
        The resolved configuration (``data.train_dir`` set).
    run_dir : path
        The run folder (created).
    resume : bool
        Continue from the run folder's latest checkpoint (a fresh start when it has none).
    device : str
        ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (:func:`holefill.weights.resolve_device`).
    **options
        The plug-in's own: ``vgg_weights``, ``download_vgg`` (PConv).
    """

    def __init__(
        self,
        config: Any,
        run_dir: str | os.PathLike,
        *,
        resume: bool = False,
        device: str = "auto",
        **options: Any,
    ) -> None:
        self.started = time.monotonic()
        self.config, self.run_dir = config, Path(run_dir)
        if config.threads:
            torch.set_num_threads(int(config.threads))
        self.context = ddp.init_distributed(device)
        self.device = self.context.device
        self.amp_dtype = amp_dtype(config.amp, self.device)
        self.stop_signal = False
        self._check_config()
        checkpoint_path = self._checkpoint_to_resume(resume)
        self._seed_everything()
        self.task = make_task(config, self.context, self.amp_dtype, **options)
        self.task.check_config()
        self.step, self.samples_seen, self.train_seconds = 0, 0, 0.0
        self.time_fraction = 0.0  # of this invocation's max_minutes, the same on every rank
        state = (
            ckpt.load_checkpoint(checkpoint_path, kind=self.task.kind) if checkpoint_path else None
        )
        if state is not None:
            self._load_state(state, checkpoint_path)
        elif getattr(config, "init_weights", None):
            self.task.load_init_weights(Path(config.init_weights))
        self.task.start(self.step)
        self.batches = iter(self._loader())  # before the RNG restore: it draws a worker seed
        if state is not None:
            ckpt.restore_rng_state(state["rng"])
        self.valset = self._validation_set()
        self.resumed_from = self.step if state is not None else None
        self.last_checkpoint_step = self.step
        self.last_checkpoint_time = time.monotonic()
        self.saved_any = False
        if self.context.is_main:
            self._open_logs()

    @property
    def net(self) -> torch.nn.Module:
        """The network being trained (the one exported)."""
        return self.task.net

    # -- setup ------------------------------------------------------------------------------
    def _check_config(self) -> None:
        data = self.config.data
        if data.train_dir is None:
            raise InputError("no training photos: pass --data DIR")
        if data.batch_size % self.context.world_size:
            raise InputError(
                f"data.batch_size={data.batch_size} must be a multiple of the "
                f"number of processes ({self.context.world_size})"
            )

    def _checkpoint_to_resume(self, resume: bool) -> Path | None:
        existing = ckpt.latest_checkpoint(self.run_dir)
        if existing is not None and not resume:
            raise InputError(
                f"{self.run_dir} already holds checkpoints; pass --resume to continue "
                "that run or choose another --out folder"
            )
        return existing if resume else None

    def _seed_everything(self) -> None:
        random.seed(self.config.seed)
        np.random.seed(self.config.seed)
        torch.manual_seed(self.config.seed)
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
            torch.backends.cudnn.benchmark = True

    def _load_state(self, state: dict[str, Any], path: Path) -> None:
        self.task.load_state(state, path)
        self.step = int(state["step"])
        self.samples_seen = int(state["samples_seen"])
        self.train_seconds = float(state.get("train_seconds", 0.0))

    def _loader(self):
        from holefill.train.data import training_loader

        return training_loader(
            self.config.data,
            self.task.masks(),
            seed=self.config.seed,
            start=self.samples_seen,
            context=self.context,
            pin_memory=self.device.type == "cuda",
        )

    def _validation_set(self):
        if not self.context.is_main or not self.config.data.val_dir or self.config.val_images <= 0:
            return None
        return self.task.validation_set()

    def _open_logs(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        save_config(self.config, self.run_dir / "config.yaml")
        keep = self.resumed_from
        columns = ("step", "time_s", "lr", *self.task.loss_keys, "images_per_s")
        self.train_log = CsvLog(self.run_dir / "train.csv", columns, keep_until=keep)
        self.val_log = CsvLog(self.run_dir / "val.csv", VAL_COLUMNS, keep_until=keep)
        self.board = tensorboard(self.run_dir)

    # -- one step ---------------------------------------------------------------------------
    def _next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The next global batch's share of this process: float image and hole on the device."""
        images, holes = next(self.batches)
        image = images.to(self.device, non_blocking=True).float().div_(255)
        hole = holes.to(self.device, non_blocking=True).float()
        return image, hole

    def _train_step(self) -> torch.Tensor:
        """One update of the plug-in; its detached loss terms."""
        image, hole = self._next_batch()
        losses = self.task.train_step(image, hole, self.time_fraction)
        self.step += 1
        self.samples_seen += self.config.data.batch_size
        return losses

    # -- the run ----------------------------------------------------------------------------
    def run(self) -> TrainResult:
        """Train until ``optim.max_steps``, the time budget, SIGTERM or Ctrl-C; checkpoint and export."""
        config, main = self.config, self.context.is_main
        restore_signals = catch_stop_signals(self)
        progress = _Progress(main, self.step, config.optim.max_steps)
        window = _Window(self.step)
        stopped_by, last_losses, table, last_val_step = "max_steps", {}, None, None
        clean = False
        try:
            while self.step < config.optim.max_steps:
                window.add(self._train_step())
                if self.step % max(1, config.log_every) == 0:
                    last_losses = self._log(window, progress)
                stop, time_ckpt = self._time_flags()
                paused = time.monotonic()
                if self._due(config.ckpt_every) or (time_ckpt and not stop):
                    self._save()
                if self._due(config.val_every):
                    table, last_val_step = self._validate(), self.step
                window.exclude(time.monotonic() - paused)
                progress.update(self.step)
                if stop:
                    stopped_by = "signal" if self.stop_signal else "max_minutes"
                    break
            if self.step % max(1, config.log_every) and window.steps:
                last_losses = self._log(window, progress)
            if self.step != last_val_step:
                table = self._validate()
            export_path = self._finish()
            clean = True
        finally:
            progress.close()
            restore_signals()
            if getattr(self, "board", None) is not None:
                self.board.close()
            ddp.shutdown(self.context, self.task, clean=clean)
        if main:
            print(
                f"holefill train {self.task.kind}: stopped at step {self.step} ({stopped_by}); "
                f"run folder {self.run_dir}",
                file=sys.stderr,
            )
        return TrainResult(self.run_dir, self.step, stopped_by, last_losses, table, export_path)

    def _finish(self) -> Path | None:
        """The final checkpoint (unless this step has one) and the export (rank 0's path)."""
        fresh_and_unsaved = self.resumed_from is None and not self.saved_any
        if self.step != self.last_checkpoint_step or fresh_and_unsaved:
            self._save()
        export_path = None
        if self.context.is_main:
            export_path = self.task.export(
                self.run_dir / "model.safetensors", self.step, self._train_seconds()
            )
        self._debug_rank_state()
        return export_path

    def _due(self, every: int) -> bool:
        return every > 0 and self.step % every == 0

    def _time_flags(self) -> tuple[bool, bool]:
        """``(stop, checkpoint)``: the time budget or a signal, and the checkpoint clock; decided
        on rank 0 and shared, so every rank acts on the same step."""
        stop, time_ckpt, fraction = budget_flags(
            self.context,
            self.started,
            self.config.optim.max_minutes,
            self.stop_signal,
            self.last_checkpoint_time,
            self.config.ckpt_every_minutes,
        )
        self.time_fraction = min(fraction, 1.0)
        return stop, time_ckpt

    def _log(self, window: _Window, progress: _Progress) -> dict[str, float]:
        means = ddp.mean_over_ranks(self.context, window.mean().to(self.device)).tolist()
        losses = dict(zip(self.task.loss_keys, means, strict=True))
        rate = window.steps * self.config.data.batch_size / max(window.seconds(), 1e-9)
        window.reset(self.step)
        if self.context.is_main:
            row = {
                "step": self.step,
                "time_s": round(self._train_seconds(), 3),
                "lr": self.task.lr,
                **{k: f"{v:.6g}" for k, v in losses.items()},
                "images_per_s": round(rate, 2),
            }
            self.train_log.write([row])
            if self.board is not None:
                for key, value in losses.items():
                    self.board.add_scalar(f"loss/{key}", value, self.step)
                self.board.add_scalar("images_per_s", rate, self.step)
            progress.report(self.step, losses["total"], rate, self.task.lr)
        return losses

    def _train_seconds(self) -> float:
        return self.train_seconds + time.monotonic() - self.started

    def _validate(self) -> dict[str, dict[str, float]] | None:
        if self.valset is None:
            ddp.barrier(self.context)
            return None
        self.task.net.eval()
        table, results = validate(
            self.task.predict, self.valset, self.device, self.config.val_batch_size
        )
        self.task.set_train_mode()
        rows = [
            {
                "step": self.step,
                "bin": label,
                "count": v["count"],
                "psnr": f"{v['psnr']:.4f}",
                "ssim": f"{v['ssim']:.5f}",
            }
            for label, v in table.items()
        ]
        self.val_log.write(rows)
        save_grid(self.run_dir / "val" / f"val_step{self.step}.png", self.valset, results)
        if self.board is not None:
            self.board.add_scalar("val/psnr", table["all"]["psnr"], self.step)
            self.board.add_scalar("val/ssim", table["all"]["ssim"], self.step)
        print(f"step {self.step}: {validation_line(table)}", file=sys.stderr, flush=True)
        ddp.barrier(self.context)
        return table

    def _state(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "samples_seen": self.samples_seen,
            "train_seconds": self._train_seconds(),
            "world_size": self.context.world_size,
            "config": self.config.to_dict(),
            **self.task.state(),
            "rng": ckpt.capture_rng_state(),
        }

    def _save(self) -> None:
        if self.context.is_main:
            ckpt.save_checkpoint(self.run_dir, self._state(), keep=self.config.keep_checkpoints)
        self.last_checkpoint_step, self.last_checkpoint_time = self.step, time.monotonic()
        self.saved_any = True
        ddp.barrier(self.context)

    def _debug_rank_state(self) -> None:
        """With ``debug_rank_state``: each rank writes its step and a hash of its weights."""
        ddp.sync_buffers(self.net, self.context)
        if not getattr(self.config, "debug_rank_state", False):
            return
        from holefill.weights import weights_digest

        record = {
            "rank": self.context.rank,
            "world_size": self.context.world_size,
            "step": self.step,
            "samples_seen": self.samples_seen,
            "state_sha256": weights_digest(self.net.state_dict()),
            "params_sha256": weights_digest(dict(self.net.named_parameters())),
        }
        path = self.run_dir / "debug" / f"rank{self.context.rank}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=1))


def budget_flags(
    context,
    started: float,
    max_minutes: float | None,
    stop_signal: bool,
    last_checkpoint_time: float,
    ckpt_every_minutes: float | None,
) -> tuple[bool, bool, float]:
    """``(stop, checkpoint, fraction)`` of a trainer after a step: the time budget or a signal,
    the checkpoint clock and the share of ``max_minutes`` spent since ``started``. Decided on
    rank 0 and shared (one small all-reduce), so every rank acts on the same step."""
    stop = time_ckpt = False
    fraction = 0.0
    if context.is_main:
        now = time.monotonic()
        if max_minutes is not None:
            fraction = (now - started) / max(max_minutes * 60, 1e-9)
        stop = stop_signal or fraction >= 1.0
        every = ckpt_every_minutes
        time_ckpt = every is not None and now - last_checkpoint_time >= every * 60
    stop, time_ckpt, fraction = ddp.max_over_ranks(
        context, [float(stop or stop_signal), float(time_ckpt), fraction]
    )
    return bool(stop), bool(time_ckpt), fraction


def catch_stop_signals(trainer: Any) -> Callable[[], None]:
    """Make SIGTERM (a lease ending, torchrun stopping) and the first Ctrl-C (SIGINT) finish the
    step, checkpoint and export: they set ``trainer.stop_signal``. A second Ctrl-C interrupts at
    once. Returns a function that restores the previous handlers (a no-op off the main thread)."""
    previous: dict[int, Any] = {}

    def handler(signum, frame):
        if signum == signal.SIGINT and trainer.stop_signal:
            raise KeyboardInterrupt
        if signum == signal.SIGINT:
            print(
                "\nholefill train: stopping after this step (checkpoint and export); "
                "Ctrl-C again to abort",
                file=sys.stderr,
                flush=True,
            )
        trainer.stop_signal = True

    try:
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, handler)
    except ValueError:  # not the main thread
        pass

    def restore() -> None:
        for signum, old in previous.items():
            signal.signal(signum, old)

    return restore


class _Window:
    """Loss sums and wall time since the last log line (checkpoint and validation time excluded)."""

    def __init__(self, step: int) -> None:
        self.reset(step)

    def reset(self, step: int) -> None:
        self.first_step, self.steps, self.total = step, 0, None
        self.start, self.excluded = time.monotonic(), 0.0

    def add(self, losses: torch.Tensor) -> None:
        self.total = losses if self.total is None else self.total + losses
        self.steps += 1

    def mean(self) -> torch.Tensor:
        return self.total / max(1, self.steps)

    def exclude(self, seconds: float) -> None:
        self.excluded += seconds

    def seconds(self) -> float:
        return time.monotonic() - self.start - self.excluded


class _Progress:
    """tqdm on a terminal; one log line per ``log_every`` steps otherwise (rank 0 only)."""

    def __init__(self, enabled: bool, step: int, total: int) -> None:
        self.enabled = enabled
        self.bar = None
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=step, unit="step", dynamic_ncols=True)
        self.step = step

    def update(self, step: int) -> None:
        if self.bar is not None:
            self.bar.update(step - self.step)
        self.step = step

    def report(self, step: int, loss: float, rate: float, lr: float) -> None:
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{loss:.4g}", img_s=f"{rate:.1f}", lr=f"{lr:.1e}")
        elif self.enabled:
            print(
                f"step {step}: loss {loss:.4g}, {rate:.1f} images/s, lr {lr:.1e}",
                file=sys.stderr,
                flush=True,
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def train(
    config: Any,
    run_dir: str | os.PathLike,
    *,
    resume: bool = False,
    device: str = "auto",
    **options: Any,
) -> TrainResult:
    """Train the network ``config`` describes, writing everything into ``run_dir``.

    Parameters
    ----------
    config : TrainConfig or ContentTrainConfig
        The resolved configuration (``data.train_dir`` set): a PConv U-Net or a content network.
    run_dir : path
        The run folder (created).
    resume : bool
        Continue from the run folder's latest checkpoint (a fresh start when it has none).
    device : {"auto", "cpu", "cuda", "cuda:N"}
    **options
        PConv: ``vgg_weights`` (VGG file of the feature terms, else ``$HOLEFILL_VGG_WEIGHTS``,
        else torchvision's in the torch hub cache) and ``download_vgg`` (allow its download).

    Returns
    -------
    TrainResult
    """
    return Trainer(config, run_dir, resume=resume, device=device, **options).run()


__all__ = [
    "train",
    "Trainer",
    "TrainResult",
    "make_task",
    "amp_dtype",
    "budget_flags",
    "catch_stop_signals",
]
