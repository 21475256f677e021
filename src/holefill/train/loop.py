"""The PConv training loop: Adam on the PConv loss, checkpoints, validation, logs, export.

Liu et al. [1]_ train in two phases: lr 2e-4 with batch normalisation everywhere, then lr 5e-5 with
the encoder's batch normalisation frozen (``optim.finetune_from_step``). For short budgets (a GPU
lease of minutes) ``optim.schedule=cosine`` warms up and then decays the learning rate over the
invocation's budget, and ``optim.finetune_from_fraction`` freezes the encoder's batch norms for the
last part of it. One step is one Adam update on a global batch of ``data.batch_size`` samples
(split over the DDP processes).

Run folder::

    config.yaml        the resolved configuration
    train.csv          step, time_s, lr, each loss term, images_per_s (every log_every steps)
    val.csv            step, bin, count, psnr, ssim (PConv hole-ratio bins, then "all")
    val/val_step{N}.png   rows: masked input | output (composited) | ground truth
    checkpoints/       see holefill.train.checkpoint
    model.safetensors  the exported network at the end of the run
    tb/                TensorBoard events, when tensorboard is installed

References
----------
.. [1] G. Liu, F. A. Reda, K. J. Shih, T.-C. Wang, A. Tao and B. Catanzaro, "Image Inpainting for
   Irregular Holes Using Partial Convolutions", ECCV 2018.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from holefill.errors import HolefillError, InputError, WeightsError
from holefill.train import checkpoint as ckpt
from holefill.train import distributed as ddp
from holefill.train.config import TrainConfig, save_config
from holefill.train.data import (
    MaskSource,
    ValidationSet,
    build_validation_set,
    training_loader,
)

LOSS_KEYS = ("valid", "hole", "perceptual", "style_out", "style_comp", "tv", "ssim", "total")
TRAIN_COLUMNS = ("step", "time_s", "lr", *LOSS_KEYS, "images_per_s")
VAL_COLUMNS = ("step", "bin", "count", "psnr", "ssim")
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


# ---------------------------------------------------------------------------------------------
# Validation metrics
# ---------------------------------------------------------------------------------------------


def image_metrics(truth: np.ndarray, result: np.ndarray) -> tuple[float, float]:
    """PSNR and SSIM of two ``(H, W, 3)`` float images in ``[0, 1]`` (scikit-image, data range 1;
    SSIM with a Gaussian-free 7x7 window, the scikit-image default)."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    with np.errstate(divide="ignore"):  # identical images: infinite PSNR, reported as 100
        psnr = peak_signal_noise_ratio(truth, result, data_range=1.0)
    ssim = structural_similarity(truth, result, data_range=1.0, channel_axis=-1)
    return float(min(psnr, 100.0)), float(ssim)


def metrics_by_bin(
    truths: np.ndarray, results: np.ndarray, bins: list[str]
) -> dict[str, dict[str, float]]:
    """Mean PSNR/SSIM per bin (in first-seen order) and over ``all``, from ``(N, H, W, 3)``."""
    per_image = [image_metrics(t, r) for t, r in zip(truths, results, strict=True)]
    table: dict[str, dict[str, float]] = {}
    for label in [*dict.fromkeys(bins), "all"]:
        chosen = [m for m, b in zip(per_image, bins, strict=True) if label in ("all", b)]
        table[label] = {
            "count": len(chosen),
            "psnr": float(np.mean([m[0] for m in chosen])),
            "ssim": float(np.mean([m[1] for m in chosen])),
        }
    return table


@torch.no_grad()
def predict(
    net: torch.nn.Module,
    images: torch.Tensor,
    holes: torch.Tensor,
    device: torch.device,
    batch_size: int = 16,
) -> torch.Tensor:
    """Composited fills of uint8 ``images``/``holes`` as float ``(N, 3, H, W)`` on the CPU."""
    outputs = []
    for first in range(0, len(images), batch_size):
        image = images[first : first + batch_size].to(device).float() / 255
        hole = holes[first : first + batch_size].to(device).float()
        output = net(image, 1 - hole).float().clamp(0, 1)
        outputs.append((hole * output + (1 - hole) * image).cpu())
    return torch.cat(outputs)


def validate(
    net: torch.nn.Module, valset: ValidationSet, device: torch.device, batch_size: int = 16
) -> tuple[dict[str, dict[str, float]], torch.Tensor]:
    """Metrics per bin of ``net`` (put in eval mode by the caller) and the composited outputs."""
    results = predict(net, valset.images, valset.holes, device, batch_size)
    truths = valset.images.float() / 255
    table = metrics_by_bin(_hwc(truths), _hwc(results), valset.bins)
    return table, results


def _hwc(batch: torch.Tensor) -> np.ndarray:
    return batch.permute(0, 2, 3, 1).double().numpy()


def save_grid(path: Path, valset: ValidationSet, results: torch.Tensor, rows: int = 6) -> None:
    """One row per pair (one per bin first): masked input (hole white) | output | ground truth."""
    from PIL import Image

    picks = list(dict.fromkeys(valset.bins[i] for i in range(len(valset))))
    indices = [valset.bins.index(label) for label in picks][:rows]
    lines = []
    for index in indices:
        truth = valset.images[index].float() / 255
        hole = valset.holes[index].float()
        masked = truth * (1 - hole) + hole
        lines.append(torch.cat([masked, results[index], truth], dim=2))
    grid = torch.cat(lines, dim=1).permute(1, 2, 0).clamp(0, 1).mul(255).round().byte().numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid).save(path)


# ---------------------------------------------------------------------------------------------
# Logs
# ---------------------------------------------------------------------------------------------


class CsvLog:
    """An append-only CSV file; on resume, rows past the resumed step are dropped."""

    def __init__(self, path: Path, columns: tuple[str, ...], *, keep_until: int | None) -> None:
        self.path, self.columns = path, columns
        rows = self._rows(keep_until) if keep_until is not None else []
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, columns, restval="")
            writer.writeheader()
            writer.writerows(rows)

    def _rows(self, keep_until: int) -> list[dict[str, str]]:
        """Rows up to ``keep_until``; a log of an older version keeps the columns it shares."""
        if not self.path.is_file():
            return []
        with self.path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames or not set(reader.fieldnames) <= set(self.columns):
                return []
            first = self.columns[0]
            return [row for row in reader if row.get(first) and int(row[first]) <= keep_until]

    def write(self, rows: list[dict[str, Any]]) -> None:
        with self.path.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, self.columns)
            writer.writerows(rows)


def _tensorboard(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # optional: tensorboard is not a dependency
        return None
    return SummaryWriter(str(run_dir / "tb"))


# ---------------------------------------------------------------------------------------------
# The trainer
# ---------------------------------------------------------------------------------------------


class Trainer:
    """One training run; :meth:`run` does it. Build with :func:`train`."""

    def __init__(
        self,
        config: TrainConfig,
        run_dir: Path,
        *,
        resume: bool,
        device: str = "auto",
        vgg_weights: str | os.PathLike | None = None,
    ) -> None:
        self.started = time.monotonic()
        self.config, self.run_dir = config, Path(run_dir)
        self.context = ddp.init_distributed(device)
        self.device = self.context.device
        self.cuda = self.device.type == "cuda"
        # bf16 autocast also runs on CPUs (1.9x the images/s of float32 on the AVX-512 BF16
        # development VM); float16 autocast is CUDA only.
        self.amp_dtype = _AMP_DTYPES.get(config.amp) if self.cuda or config.amp == "bf16" else None
        self.stop_signal = False
        self.compile_checked = False
        checkpoint_path = self._checkpoint_to_resume(resume)
        self._seed_everything()
        self._build_model(vgg_weights)
        self.step, self.samples_seen, self.train_seconds = 0, 0, 0.0
        self.time_fraction = 0.0  # of this invocation's max_minutes, the same on every rank
        state = ckpt.load_checkpoint(checkpoint_path) if checkpoint_path else None
        if state is not None:
            self._load_state(state, checkpoint_path)
        elif config.init_weights:
            self._load_weights(Path(config.init_weights))
        self.finetuning = self._finetune_due()
        self.lr = self._lr()
        self._check_config()
        self._wrap_model()
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

    # -- setup ------------------------------------------------------------------------------
    def _checkpoint_to_resume(self, resume: bool) -> Path | None:
        existing = ckpt.latest_checkpoint(self.run_dir)
        if existing is not None and not resume:
            raise InputError(
                f"{self.run_dir} already holds checkpoints; pass --resume to continue "
                "that run or choose another --out folder"
            )
        return existing if resume else None

    def _seed_everything(self) -> None:
        import random

        random.seed(self.config.seed)
        np.random.seed(self.config.seed)
        torch.manual_seed(self.config.seed)
        if self.cuda:
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
            torch.backends.cudnn.benchmark = True

    def _build_model(self, vgg_weights) -> None:
        from holefill.nn.losses import PConvLoss
        from holefill.nn.unet import PConvUNet
        from holefill.nn.vgg import build_feature_net

        config = self.config
        self.net = PConvUNet(config.model).to(self.device)
        feature_net = None  # pixel terms only: no VGG to load or run
        if config.loss.weights.perceptual or config.loss.weights.style:
            feature_net = build_feature_net(
                config.loss.feature_net,
                weights=_vgg_weights(config.loss.feature_net, vgg_weights),
                taps=config.loss.taps,
            )
        self.loss_fn = PConvLoss(feature_net, config.loss.weights).to(self.device)
        self.optimizer = torch.optim.Adam(
            self.net.parameters(),
            lr=config.optim.lr,
            betas=tuple(config.optim.betas),
            weight_decay=config.optim.weight_decay,
        )
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.cuda and config.amp == "fp16")

    def _load_state(self, state: dict[str, Any], path: Path) -> None:
        try:
            self.net.load_state_dict(state["model"])
        except RuntimeError as exc:
            raise WeightsError(
                f"{path} does not fit the configured model (did model.* change?): "
                f"{str(exc).splitlines()[0]}"
            ) from None
        self.optimizer.load_state_dict(state["optimizer"])
        if state["scaler"] and self.scaler.is_enabled():  # empty when saved without fp16
            self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
        self.samples_seen = int(state["samples_seen"])
        self.train_seconds = float(state.get("train_seconds", 0.0))

    def _load_weights(self, path: Path) -> None:
        """Network weights (only) from an export or a checkpoint: a warm start."""
        from holefill.methods.pconv import check_state, read_pconv

        if path.suffix == ".safetensors":
            file_config, weights, _ = read_pconv(path)
            if file_config != self.config.model:
                raise WeightsError(
                    f"{path} does not fit the configured model: it holds {file_config}, "
                    f"the run has {self.config.model} (set model.* to match)"
                )
        elif path.is_file():
            weights = ckpt.load_checkpoint(path)["model"]
        else:
            raise InputError(f"init_weights: {path} is not a file")
        own = self.net.state_dict()
        check_state(weights, own, str(path))
        self.net.load_state_dict({k: v.to(own[k].dtype) for k, v in weights.items()})

    def _check_config(self) -> None:
        config, multiple = self.config, int(self.net.size_multiple)
        if config.data.train_dir is None:
            raise InputError("no training photos: pass --data DIR")
        if config.data.size % multiple:
            raise InputError(
                f"data.size={config.data.size} must be a multiple of the model's "
                f"size_multiple {multiple} (2**model.layers)"
            )
        if config.data.batch_size % self.context.world_size:
            raise InputError(
                f"data.batch_size={config.data.batch_size} must be a multiple of the "
                f"number of processes ({self.context.world_size})"
            )

    def _wrap_model(self) -> None:
        """DDP and torch.compile around the network, in the current phase's train mode.

        Called again when fine-tuning starts: freezing the encoder's batch norms takes their
        parameters out of training, and DDP must be rebuilt to know which parameters get gradients.
        """
        if self.cuda and self.config.channels_last:
            self.net.to(memory_format=torch.channels_last)
            self.loss_fn.to(memory_format=torch.channels_last)
        self._set_train_mode()
        self.model = ddp.wrap_model(self.net, self.context)
        if self.config.compile:
            self.model = torch.compile(self.model)

    def _loader(self):
        data = self.config.data
        masks = MaskSource(data.masks, data.mask_dir, data.folder_mask_share)
        return training_loader(
            data,
            masks,
            seed=self.config.seed,
            start=self.samples_seen,
            context=self.context,
            pin_memory=self.cuda,
        )

    def _validation_set(self) -> ValidationSet | None:
        data = self.config.data
        if not self.context.is_main or not data.val_dir or self.config.val_images <= 0:
            return None
        return build_validation_set(data.val_dir, data.size, self.config.val_images)

    def _open_logs(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        save_config(self.config, self.run_dir / "config.yaml")
        keep = self.resumed_from
        self.train_log = CsvLog(self.run_dir / "train.csv", TRAIN_COLUMNS, keep_until=keep)
        self.val_log = CsvLog(self.run_dir / "val.csv", VAL_COLUMNS, keep_until=keep)
        self.board = _tensorboard(self.run_dir)

    # -- phases -----------------------------------------------------------------------------
    def _progress(self) -> float:
        """How much of this invocation's budget is spent: steps or time, whichever is further."""
        optim = self.config.optim
        return min(1.0, max(self.step / max(optim.max_steps, 1), self.time_fraction))

    def _finetune_due(self) -> bool:
        optim = self.config.optim
        by_step = optim.finetune_from_step is not None and self.step >= optim.finetune_from_step
        fraction = optim.finetune_from_fraction
        return by_step or (fraction is not None and self._progress() >= fraction)

    def _lr(self) -> float:
        """The learning rate of the next step."""
        optim = self.config.optim
        if optim.schedule == "constant":
            return optim.finetune_lr if self.finetuning else optim.lr
        warmup = min(1.0, (self.step + 1) / optim.warmup_steps) if optim.warmup_steps > 0 else 1.0
        cosine = 0.5 * (1 + math.cos(math.pi * self._progress()))
        return warmup * (optim.min_lr + (optim.lr - optim.min_lr) * cosine)

    def _set_train_mode(self) -> None:
        self.net.train()
        if self.finetuning:
            self.net.freeze_encoder_bn(True)

    # -- one step ---------------------------------------------------------------------------
    def _next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        images, holes = next(self.batches)
        image = images.to(self.device, non_blocking=True).float().div_(255)
        valid = 1 - holes.to(self.device, non_blocking=True).float()
        if self.cuda and self.config.channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
            valid = valid.contiguous(memory_format=torch.channels_last)
        return image, valid

    def _losses(
        self, image: torch.Tensor, valid: torch.Tensor, model: torch.nn.Module | None = None
    ) -> dict[str, torch.Tensor]:
        """The network under autocast (CUDA), the loss in float32 unless ``amp_loss``."""
        autocast = (
            torch.autocast(self.device.type, dtype=self.amp_dtype)
            if self.amp_dtype
            else contextlib.nullcontext()
        )
        loss_in_autocast = self.config.amp_loss and self.amp_dtype is not None and self.cuda
        with autocast:
            output = (self.model if model is None else model)(image, valid)
            if loss_in_autocast:
                return self.loss_fn(output, image, valid)
        return self.loss_fn(output.float(), image, valid)

    def _check_compiled_gradients(self, image: torch.Tensor, valid: torch.Tensor) -> None:
        """Refuse a compiled network whose gradients disagree with eager mode's.

        torch.compile has been seen to return near-zero gradients for this network on CUDA (a run
        that never learned); one extra step on the first batch catches that before a lease is spent.
        Single process only (under DDP the compiled gradients are averaged over ranks).
        """
        self.compile_checked = True
        if self.context.enabled:
            return
        saved = {name: value.clone() for name, value in self.net.state_dict().items()}
        gradients = []
        for model in (self.net, self.model):
            self.optimizer.zero_grad(set_to_none=True)
            self._losses(image, valid, model)["total"].backward()
            gradients.append(
                torch.cat(
                    [p.grad.float().flatten() for p in self.net.parameters() if p.grad is not None]
                )
            )
        self.net.load_state_dict(saved)  # the two passes moved the batch-norm statistics
        self.optimizer.zero_grad(set_to_none=True)
        eager, compiled = gradients
        error = ((compiled - eager).norm() / eager.norm().clamp_min(1e-12)).item()
        if not error < 0.5:
            raise HolefillError(
                f"torch.compile gives wrong gradients for this network here "
                f"(relative error {error:.2f} against eager mode); set compile=false"
            )

    def _train_step(self) -> torch.Tensor:
        """One Adam update; the detached loss terms in :data:`LOSS_KEYS` order."""
        if not self.finetuning and self._finetune_due():
            self.finetuning = True
            self._wrap_model()  # the paper's second phase starts here
        self.lr = self._lr()
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr
        image, valid = self._next_batch()
        if self.config.compile and not self.compile_checked:
            self._check_compiled_gradients(image, valid)
        losses = self._losses(image, valid)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(losses["total"]).backward()
        if self.config.optim.grad_clip:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.config.optim.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.step += 1
        self.samples_seen += self.config.data.batch_size
        return torch.stack([losses[key].detach().float() for key in LOSS_KEYS])

    # -- the run ----------------------------------------------------------------------------
    def run(self) -> TrainResult:
        """Train until ``optim.max_steps``, the time budget, SIGTERM or Ctrl-C; checkpoint and export."""
        config, main = self.config, self.context.is_main
        restore_signals = catch_stop_signals(self)
        progress = _Progress(main, self.step, config.optim.max_steps)
        window = _Window(self.step)
        stopped_by, last_losses, table, last_val_step = "max_steps", {}, None, None
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
        finally:
            progress.close()
            restore_signals()
            if getattr(self, "board", None) is not None:
                self.board.close()
            ddp.shutdown(self.context)
        if main:
            print(
                f"holefill train: stopped at step {self.step} ({stopped_by}); "
                f"run folder {self.run_dir}",
                file=sys.stderr,
            )
        return TrainResult(self.run_dir, self.step, stopped_by, last_losses, table, export_path)

    def _finish(self) -> Path | None:
        """The final checkpoint (unless this step has one) and the export (rank 0's path)."""
        fresh_and_unsaved = self.resumed_from is None and not self.saved_any
        if self.step != self.last_checkpoint_step or fresh_and_unsaved:
            self._save()
        export_path = self._export() if self.context.is_main else None
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
        losses = dict(zip(LOSS_KEYS, means, strict=True))
        rate = window.steps * self.config.data.batch_size / max(window.seconds(), 1e-9)
        window.reset(self.step)
        if self.context.is_main:
            row = {
                "step": self.step,
                "time_s": round(self._train_seconds(), 3),
                "lr": self.lr,
                **{k: f"{v:.6g}" for k, v in losses.items()},
                "images_per_s": round(rate, 2),
            }
            self.train_log.write([row])
            if self.board is not None:
                for key, value in losses.items():
                    self.board.add_scalar(f"loss/{key}", value, self.step)
                self.board.add_scalar("images_per_s", rate, self.step)
            progress.report(self.step, losses["total"], rate, self.lr)
        return losses

    def _train_seconds(self) -> float:
        return self.train_seconds + time.monotonic() - self.started

    def _validate(self) -> dict[str, dict[str, float]] | None:
        if self.valset is None:
            ddp.barrier(self.context)
            return None
        self.net.eval()
        table, results = validate(self.net, self.valset, self.device, self.config.val_batch_size)
        self._set_train_mode()
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
        ddp.barrier(self.context)
        return table

    def _state(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "samples_seen": self.samples_seen,
            "train_seconds": self._train_seconds(),
            "world_size": self.context.world_size,
            "config": self.config.to_dict(),
            "model": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": ckpt.capture_rng_state(),
        }

    def _save(self) -> None:
        if self.context.is_main:
            ckpt.save_checkpoint(self.run_dir, self._state(), keep=self.config.keep_checkpoints)
        self.last_checkpoint_step, self.last_checkpoint_time = self.step, time.monotonic()
        self.saved_any = True
        ddp.barrier(self.context)

    def _export(self) -> Path:
        return ckpt.write_export(
            self.net.state_dict(),
            self.config.to_dict(),
            self.step,
            self.run_dir / "model.safetensors",
            dtype=self.config.export_dtype,
        )

    def _debug_rank_state(self) -> None:
        """With ``debug_rank_state``: each rank writes its step and a hash of its weights."""
        ddp.sync_buffers(self.net, self.context)
        if not self.config.debug_rank_state:
            return
        from holefill.methods.pconv import weights_digest

        state = self.net.state_dict()
        record = {
            "rank": self.context.rank,
            "world_size": self.context.world_size,
            "step": self.step,
            "samples_seen": self.samples_seen,
            "state_sha256": weights_digest(state),
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


def _vgg_weights(feature_net: str, explicit: str | os.PathLike | None) -> Path | None:
    """The VGG file: ``--vgg-weights``, else ``$HOLEFILL_VGG_WEIGHTS``, else the shared VGG-19."""
    from holefill.paths import default_local_vgg19, vgg_weights_path

    chosen = vgg_weights_path(explicit)
    if chosen is None and feature_net == "vgg19" and default_local_vgg19().is_file():
        chosen = default_local_vgg19()
    return chosen


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
    config: TrainConfig,
    run_dir: str | os.PathLike,
    *,
    resume: bool = False,
    device: str = "auto",
    vgg_weights: str | os.PathLike | None = None,
) -> TrainResult:
    """Train a PConv U-Net as ``config`` says, writing everything into ``run_dir``.

    Parameters
    ----------
    config : TrainConfig
        The resolved configuration (``data.train_dir`` set).
    run_dir : path
        The run folder (created).
    resume : bool
        Continue from the run folder's latest checkpoint (a fresh start when it has none).
    device : {"auto", "cpu", "cuda"}
    vgg_weights : path, optional
        VGG file for the feature network (else ``$HOLEFILL_VGG_WEIGHTS``, else the shared VGG-19).

    Returns
    -------
    TrainResult
    """
    return Trainer(
        config, Path(run_dir), resume=resume, device=device, vgg_weights=vgg_weights
    ).run()


__all__ = [
    "train",
    "Trainer",
    "TrainResult",
    "validate",
    "metrics_by_bin",
    "image_metrics",
    "predict",
    "save_grid",
    "LOSS_KEYS",
    "catch_stop_signals",
]
