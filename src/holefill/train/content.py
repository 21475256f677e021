"""Training the content network of neural patch synthesis (``holefill train content``).

The network (:class:`~holefill.nn.content.ContentNet`) learns to predict a 128x128 photo from the
photo with a hole, with the Context Encoder's joint loss [1]_ as Yang et al. use it [2]_::

    L = 0.999 * L2 + 0.001 * adversarial

``L2`` is the mean squared error on the ``[-1, 1]`` scale of the Context Encoder (4x the error in
``[0, 1]``) over the hole, plus ``loss.known_weight`` times the same over the known pixels (the
network predicts the whole image); the adversarial term is the non-saturating GAN loss of a DCGAN
discriminator (:class:`~holefill.nn.content.Discriminator`) that sees the composited image.
Holes are, by default, half centred rectangles (the paper's setting) and half free-form strokes.

The machinery is the PConv trainer's: its config tree, YAML and ``key=value`` overrides
(:mod:`holefill.train.config`), the resumable sample stream (:mod:`holefill.train.data`), atomic
checkpoints with exact resume (:mod:`holefill.train.checkpoint`) and torchrun DDP
(:mod:`holefill.train.distributed`).

Usage::

    holefill train content --data DIR [--val DIR] --out RUN [--config FILE.yaml] [--resume]
                           [--device cpu|cuda|auto] [--export FILE.safetensors] [key=value ...]
    holefill train content export RUN_OR_CKPT -o FILE.safetensors [--dtype float16]

Run folder: ``config.yaml``, ``train.csv``, ``val.csv`` (PSNR/SSIM for centred and free-form holes),
``val/val_step{N}.png``, ``checkpoints/``, ``model.safetensors`` (the exported network).

References
----------
.. [1] D. Pathak, P. Krahenbuhl, J. Donahue, T. Darrell and A. A. Efros, "Context Encoders: Feature
   Learning by Inpainting", CVPR 2016.
.. [2] C. Yang, X. Lu, Z. Lin, E. Shechtman, O. Wang and H. Li, "High-Resolution Image Inpainting
   using Multi-Scale Neural Patch Synthesis", CVPR 2017.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from holefill.errors import HolefillError, InputError, WeightsError
from holefill.nn.content import ContentNet, ContentNetConfig, Discriminator
from holefill.train import checkpoint as ckpt
from holefill.train import distributed as ddp

KIND = "content"
LOSS_KEYS = ("l2", "adv", "d_loss", "total")
TRAIN_COLUMNS = ("step", "time_s", "lr", *LOSS_KEYS, "images_per_s")
VAL_COLUMNS = ("step", "bin", "count", "psnr", "ssim")
_AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------


@dataclass
class ContentDataConfig:
    """Photos, augmentation and holes. ``batch_size`` is the global batch (split over DDP)."""

    train_dir: str | None = None  #: set by ``--data``
    val_dir: str | None = None  #: set by ``--val``
    size: int = 128  #: must equal ``model.size``
    crop_scale: list[float] = field(default_factory=lambda: [0.6, 1.0])
    flip: bool = True
    batch_size: int = 32
    workers: int = 0  #: DataLoader processes (0 = load in the training process)
    centre_share: float = 0.5  #: share of centred rectangles; the rest are free-form strokes
    centre_side: list[float] = field(default_factory=lambda: [0.3, 0.55])  #: side / size range
    centre_jitter: float = 0.06  #: largest shift of the rectangle's centre, as a share of size


@dataclass
class ContentOptimConfig:
    """Adam for both networks (DCGAN betas) and when to stop."""

    lr: float = 2e-4
    d_lr: float = 2e-4
    betas: list[float] = field(default_factory=lambda: [0.5, 0.999])
    max_steps: int = 100_000
    #: wall-clock budget of one invocation in minutes: checkpoint, export and stop when exceeded
    max_minutes: float | None = None
    grad_clip: float | None = None


@dataclass
class ContentLossConfig:
    """The Context Encoder's joint loss weights."""

    l2: float = 0.999
    adversarial: float = 0.001
    known_weight: float = 0.1  #: L2 weight of the known pixels relative to the hole's


@dataclass
class ContentTrainConfig:
    """Everything a content-network run needs, saved with every checkpoint."""

    model: ContentNetConfig = field(default_factory=ContentNetConfig)
    data: ContentDataConfig = field(default_factory=ContentDataConfig)
    optim: ContentOptimConfig = field(default_factory=ContentOptimConfig)
    loss: ContentLossConfig = field(default_factory=ContentLossConfig)
    amp: Literal["none", "bf16", "fp16"] = "bf16"  #: autocast on CUDA (the CPU trains in float32)
    threads: int | None = None  #: CPU threads of torch (``torch.set_num_threads``); null = default
    ckpt_every: int = 1000
    ckpt_every_minutes: float | None = 10.0
    keep_checkpoints: int = 2
    val_every: int = 1000  #: 0 = only at the end
    val_images: int = 64
    val_batch_size: int = 32
    log_every: int = 50
    seed: int = 0
    export_dtype: Literal["float16", "bfloat16", "float32"] = "float16"

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))


def load_content_config(
    path: str | os.PathLike | None = None,
    overrides: list[str] = (),
    *,
    base: dict[str, Any] | None = None,
    values: dict[str, Any] | None = None,
) -> ContentTrainConfig:
    """Defaults (or ``base``), then a YAML file, then ``values``, then ``key=value`` overrides.

    The same rules as the PConv trainer's :func:`holefill.train.config.load_config`: unknown keys
    and wrongly typed values raise :class:`~holefill.errors.InputError` naming the key.
    """
    from holefill.train.config import _build, _merge, _nest, parse_override, read_yaml

    tree = ContentTrainConfig().to_dict()
    updates = [base, read_yaml(path) if path is not None else None, values]
    updates += [_nest(*parse_override(item)) for item in overrides]
    for update in updates:
        if update is not None:
            _merge(tree, update, "", tree)
    return _build(ContentTrainConfig, tree, "")


# ---------------------------------------------------------------------------------------------
# Holes
# ---------------------------------------------------------------------------------------------


def centred_rectangle(
    size: int,
    rng: np.random.Generator,
    side: tuple[float, float] = (0.3, 0.55),
    jitter: float = 0.06,
) -> np.ndarray:
    """A rectangle near the centre (the Context Encoder's and the paper's hole), bool (size, size)."""
    height = max(1, round(size * rng.uniform(*side)))
    width = max(1, round(size * rng.uniform(*side)))
    shift = round(size * jitter)
    top = int(np.clip((size - height) // 2 + rng.integers(-shift, shift + 1), 0, size - height))
    left = int(np.clip((size - width) // 2 + rng.integers(-shift, shift + 1), 0, size - width))
    hole = np.zeros((size, size), bool)
    hole[top : top + height, left : left + width] = True
    return hole


class ContentMasks:
    """Training holes: a centred rectangle with probability ``centre_share``, else free-form
    strokes (:func:`holefill.masks.random_training_mask`). Picklable for DataLoader workers."""

    def __init__(
        self,
        centre_share: float = 0.5,
        side: tuple[float, float] = (0.3, 0.55),
        jitter: float = 0.06,
    ) -> None:
        lo, hi = side
        if not 0 <= centre_share <= 1 or not 0 < lo <= hi <= 1 or not 0 <= jitter < 0.5:
            raise InputError(
                "data.centre_share must be in [0, 1], data.centre_side within (0, 1] "
                "and data.centre_jitter in [0, 0.5)"
            )
        self.centre_share, self.side, self.jitter = float(centre_share), (lo, hi), float(jitter)

    def __call__(self, size: int, rng: np.random.Generator) -> np.ndarray:
        if rng.random() < self.centre_share:
            return centred_rectangle(size, rng, self.side, self.jitter)
        from holefill.masks import random_training_mask

        for _ in range(10):  # the generator rejects a few ratios near its top at small sizes
            try:
                return random_training_mask(size, size, rng)
            except InputError:
                continue
        return centred_rectangle(size, rng, self.side, self.jitter)


def build_content_validation(root: str | os.PathLike, size: int, count: int):
    """The PConv trainer's fixed validation photos, every other hole replaced by a centred square
    of half the side (the paper's test hole); bins ``centre`` and ``free-form``."""
    from holefill.train.data import build_validation_set

    valset = build_validation_set(root, size, count)
    quarter = size // 4
    for index in range(0, len(valset), 2):
        valset.holes[index].zero_()
        valset.holes[index, :, quarter : size - quarter, quarter : size - quarter] = 1
    valset.bins = ["centre" if i % 2 == 0 else "free-form" for i in range(len(valset))]
    return valset


# ---------------------------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------------------------


def export_content(
    run_dir_or_ckpt: str | os.PathLike, out_path: str | os.PathLike, *, dtype: str = "float16"
) -> Path:
    """Export a run's latest checkpoint (or a checkpoint file) as content-network weights."""
    state = _load_state(ckpt.resolve_checkpoint(run_dir_or_ckpt))
    return _write_export(
        state["model"],
        state["config"],
        int(state["step"]),
        float(state.get("train_seconds", 0.0)),
        out_path,
        dtype,
    )


def _write_export(
    model_state: dict[str, torch.Tensor],
    train_config: dict[str, Any],
    step: int,
    seconds: float,
    out_path: str | os.PathLike,
    dtype: str,
) -> Path:
    from holefill import __version__
    from holefill.methods.neural_patch import save_content

    metadata = {
        "step": str(step),
        "train_seconds": f"{seconds:.0f}",
        "train_config": json.dumps(train_config),
        "holefill_version": __version__,
    }
    return save_content(
        model_state,
        ContentNetConfig.from_dict(train_config["model"]),
        out_path,
        dtype=dtype,
        metadata=metadata,
    )


def _load_state(path: Path) -> dict[str, Any]:
    state = ckpt.load_checkpoint(path)
    if state.get("kind") != KIND:
        raise WeightsError(f"{path}: not a content-network checkpoint (a PConv run?)")
    return state


# ---------------------------------------------------------------------------------------------
# The trainer
# ---------------------------------------------------------------------------------------------


@dataclass
class ContentTrainResult:
    """What a run did: last step, why it stopped, last losses and validation, the export."""

    run_dir: Path
    step: int
    stopped_by: str
    losses: dict[str, float]
    validation: dict[str, dict[str, float]] | None
    export_path: Path | None


class ContentTrainer:
    """One content-network training run; :meth:`run` does it."""

    def __init__(
        self,
        config: ContentTrainConfig,
        run_dir: Path,
        *,
        resume: bool = False,
        device: str = "auto",
    ) -> None:
        self.started = time.monotonic()
        self.config, self.run_dir = config, Path(run_dir)
        if config.threads:
            torch.set_num_threads(int(config.threads))
        self.context = ddp.init_distributed(device)
        self.device = self.context.device
        self.cuda = self.device.type == "cuda"
        self.amp_dtype = _AMP_DTYPES.get(config.amp) if self.cuda else None
        self.stop_signal = False
        self._check_config()
        existing = ckpt.latest_checkpoint(self.run_dir)
        if existing is not None and not resume:
            raise InputError(
                f"{self.run_dir} already holds checkpoints; pass --resume to continue "
                "that run or choose another --out folder"
            )
        torch.manual_seed(config.seed)
        np.random.seed(config.seed)
        self._build()
        self.step, self.samples_seen, self.train_seconds = 0, 0, 0.0
        state = _load_state(existing) if resume and existing is not None else None
        if state is not None:
            self._restore(state, existing)
        self.resumed_from = self.step if state is not None else None
        self.generator = ddp.wrap_model(self.net, self.context)
        self.critic = ddp.wrap_model(self.discriminator, self.context)
        self.batches = iter(self._loader())
        if state is not None:
            ckpt.restore_rng_state(state["rng"])
        self.valset = self._validation_set()
        self.last_checkpoint_step, self.last_checkpoint_time = self.step, time.monotonic()
        if self.context.is_main:
            self._open_logs()

    # -- setup ------------------------------------------------------------------------------
    def _check_config(self) -> None:
        config = self.config
        if config.data.train_dir is None:
            raise InputError("no training photos: pass --data DIR")
        if config.data.size != config.model.size:
            raise InputError(
                f"data.size={config.data.size} must equal model.size={config.model.size}"
            )
        if config.data.batch_size % self.context.world_size:
            raise InputError(
                f"data.batch_size={config.data.batch_size} must be a multiple of the "
                f"number of processes ({self.context.world_size})"
            )

    def _build(self) -> None:
        config = self.config
        self.net = ContentNet(config.model).to(self.device)
        self.discriminator = Discriminator(config.model).to(self.device)
        betas = tuple(config.optim.betas)
        self.opt_g = torch.optim.Adam(self.net.parameters(), lr=config.optim.lr, betas=betas)
        self.opt_d = torch.optim.Adam(
            self.discriminator.parameters(), lr=config.optim.d_lr, betas=betas
        )
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.cuda and config.amp == "fp16")

    def _restore(self, state: dict[str, Any], path: Path) -> None:
        try:
            self.net.load_state_dict(state["model"])
            self.discriminator.load_state_dict(state["discriminator"])
        except RuntimeError as exc:
            raise WeightsError(
                f"{path} does not fit the configured model (did model.* change?): "
                f"{str(exc).splitlines()[0]}"
            ) from None
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        for optimizer, lr in (
            (self.opt_g, self.config.optim.lr),
            (self.opt_d, self.config.optim.d_lr),
        ):
            for group in optimizer.param_groups:  # a resumed run may be given new rates
                group["lr"] = lr
        self.scaler.load_state_dict(state["scaler"])
        self.step, self.samples_seen = int(state["step"]), int(state["samples_seen"])
        self.train_seconds = float(state.get("train_seconds", 0.0))

    def _loader(self):
        from holefill.train.data import training_loader

        data = self.config.data
        masks = ContentMasks(data.centre_share, tuple(data.centre_side), data.centre_jitter)
        return training_loader(
            data,
            masks,
            seed=self.config.seed,
            start=self.samples_seen,
            context=self.context,
            pin_memory=self.cuda,
        )

    def _validation_set(self):
        data = self.config.data
        if not self.context.is_main or not data.val_dir or self.config.val_images <= 0:
            return None
        return build_content_validation(data.val_dir, data.size, self.config.val_images)

    def _open_logs(self) -> None:
        from holefill.train.config import save_config
        from holefill.train.loop import CsvLog

        self.run_dir.mkdir(parents=True, exist_ok=True)
        save_config(self.config, self.run_dir / "config.yaml")
        keep = self.resumed_from
        self.train_log = CsvLog(self.run_dir / "train.csv", TRAIN_COLUMNS, keep_until=keep)
        self.val_log = CsvLog(self.run_dir / "val.csv", VAL_COLUMNS, keep_until=keep)

    # -- one step ---------------------------------------------------------------------------
    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast("cuda", dtype=self.amp_dtype)

    def _train_step(self) -> torch.Tensor:
        """One discriminator and one generator update; the detached losses in LOSS_KEYS order."""
        images, holes = next(self.batches)
        image = images.to(self.device, non_blocking=True).float().div_(255)
        hole = holes.to(self.device, non_blocking=True).float()
        loss_config = self.config.loss
        with self._autocast():
            predicted = self.generator(image, hole)
        predicted = predicted.float()
        composite = hole * predicted + (1 - hole) * image
        d_loss = self._discriminator_step(image, composite.detach())
        with self._autocast():
            fake_logits = self.critic(composite).float()
        adv = F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
        l2 = masked_l2(predicted, image, hole, loss_config.known_weight)
        total = loss_config.l2 * l2 + loss_config.adversarial * adv
        self.opt_g.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        self._clip(self.opt_g, self.net)
        self.scaler.step(self.opt_g)
        self.scaler.update()
        self.step += 1
        self.samples_seen += self.config.data.batch_size
        return torch.stack([l2.detach(), adv.detach(), d_loss, total.detach()])

    def _discriminator_step(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        with self._autocast():
            logits = self.critic(torch.cat([real, fake])).float()
        half = real.shape[0]
        labels = torch.cat([torch.ones(half), torch.zeros(half)]).to(logits.device)
        loss = F.binary_cross_entropy_with_logits(logits, labels)
        self.opt_d.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self._clip(self.opt_d, self.discriminator)
        self.scaler.step(self.opt_d)
        return loss.detach()

    def _clip(self, optimizer: torch.optim.Optimizer, module: torch.nn.Module) -> None:
        if self.config.optim.grad_clip:
            self.scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(module.parameters(), self.config.optim.grad_clip)

    # -- the run ----------------------------------------------------------------------------
    def run(self) -> ContentTrainResult:
        """Train until ``optim.max_steps``, the time budget, SIGTERM or Ctrl-C; checkpoint and export."""
        from holefill.train.loop import catch_stop_signals

        config = self.config
        restore_signals = catch_stop_signals(self)
        stopped_by, losses, table, last_val = "max_steps", {}, None, None
        window, window_start, window_steps = None, time.monotonic(), 0
        try:
            while self.step < config.optim.max_steps:
                step_losses = self._train_step()
                window = step_losses if window is None else window + step_losses
                window_steps += 1
                if self.step % max(1, config.log_every) == 0:
                    losses = self._log(
                        window / window_steps, window_steps, time.monotonic() - window_start
                    )
                    window, window_start, window_steps = None, time.monotonic(), 0
                stop, time_ckpt = self._time_flags()
                if _due(self.step, config.ckpt_every) or (time_ckpt and not stop):
                    self._save()
                if _due(self.step, config.val_every):
                    table, last_val = self._validate(), self.step
                if stop:
                    stopped_by = "signal" if self.stop_signal else "max_minutes"
                    break
            if window_steps:
                losses = self._log(
                    window / window_steps, window_steps, time.monotonic() - window_start
                )
            if self.step != last_val:
                table = self._validate()
            if self.step != self.last_checkpoint_step or self.resumed_from is None:
                self._save()
            export_path = self._export() if self.context.is_main else None
        finally:
            restore_signals()
            ddp.shutdown(self.context)
        if self.context.is_main:
            print(
                f"holefill train content: stopped at step {self.step} ({stopped_by}); run "
                f"folder {self.run_dir}",
                file=sys.stderr,
                flush=True,
            )
        return ContentTrainResult(self.run_dir, self.step, stopped_by, losses, table, export_path)

    def _train_time(self) -> float:
        return self.train_seconds + time.monotonic() - self.started

    def _time_flags(self) -> tuple[bool, bool]:
        from holefill.train.loop import budget_flags

        stop, time_ckpt, _ = budget_flags(
            self.context,
            self.started,
            self.config.optim.max_minutes,
            self.stop_signal,
            self.last_checkpoint_time,
            self.config.ckpt_every_minutes,
        )
        return stop, time_ckpt

    def _log(self, mean: torch.Tensor, steps: int, seconds: float) -> dict[str, float]:
        values = ddp.mean_over_ranks(self.context, mean.to(self.device)).tolist()
        losses = dict(zip(LOSS_KEYS, values, strict=True))
        rate = steps * self.config.data.batch_size / max(seconds, 1e-9)
        if self.context.is_main:
            self.train_log.write(
                [
                    {
                        "step": self.step,
                        "time_s": round(self._train_time(), 1),
                        "lr": self.config.optim.lr,
                        **{k: f"{v:.6g}" for k, v in losses.items()},
                        "images_per_s": round(rate, 2),
                    }
                ]
            )
            print(
                f"step {self.step}: l2 {losses['l2']:.4f}, adv {losses['adv']:.3f}, "
                f"d {losses['d_loss']:.3f}, {rate:.1f} images/s",
                file=sys.stderr,
                flush=True,
            )
        return losses

    def _validate(self) -> dict[str, dict[str, float]] | None:
        if self.valset is None:
            ddp.barrier(self.context)
            return None
        from holefill.train.loop import metrics_by_bin, save_grid

        self.net.eval()
        results = predict_content(
            self.net, self.valset.images, self.valset.holes, self.device, self.config.val_batch_size
        )
        self.net.train()
        truths = self.valset.images.float() / 255
        table = metrics_by_bin(_hwc(truths), _hwc(results), self.valset.bins)
        self.val_log.write(
            [
                {
                    "step": self.step,
                    "bin": label,
                    "count": v["count"],
                    "psnr": f"{v['psnr']:.4f}",
                    "ssim": f"{v['ssim']:.5f}",
                }
                for label, v in table.items()
            ]
        )
        save_grid(self.run_dir / "val" / f"val_step{self.step}.png", self.valset, results)
        print(
            f"step {self.step}: validation PSNR "
            + ", ".join(f"{label} {v['psnr']:.2f} dB" for label, v in table.items()),
            file=sys.stderr,
            flush=True,
        )
        ddp.barrier(self.context)
        return table

    def _state(self) -> dict[str, Any]:
        return {
            "kind": KIND,
            "step": self.step,
            "samples_seen": self.samples_seen,
            "train_seconds": self._train_time(),
            "world_size": self.context.world_size,
            "config": self.config.to_dict(),
            "model": self.net.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": ckpt.capture_rng_state(),
        }

    def _save(self) -> None:
        if self.context.is_main:
            ckpt.save_checkpoint(self.run_dir, self._state(), keep=self.config.keep_checkpoints)
        self.last_checkpoint_step, self.last_checkpoint_time = self.step, time.monotonic()
        ddp.barrier(self.context)

    def _export(self) -> Path:
        return _write_export(
            self.net.state_dict(),
            self.config.to_dict(),
            self.step,
            self._train_time(),
            self.run_dir / "model.safetensors",
            self.config.export_dtype,
        )


def masked_l2(
    predicted: torch.Tensor, image: torch.Tensor, hole: torch.Tensor, known_weight: float
) -> torch.Tensor:
    """Mean squared error on the ``[-1, 1]`` scale over the hole, plus ``known_weight`` times the
    same over the known pixels."""
    error = (2 * (predicted - image)) ** 2
    channels = image.shape[1]
    in_hole = (error * hole).sum() / (hole.sum() * channels).clamp_min(1)
    known = 1 - hole
    in_known = (error * known).sum() / (known.sum() * channels).clamp_min(1)
    return in_hole + known_weight * in_known


@torch.no_grad()
def predict_content(
    net: torch.nn.Module,
    images: torch.Tensor,
    holes: torch.Tensor,
    device: torch.device,
    batch_size: int = 32,
) -> torch.Tensor:
    """Composited predictions for uint8 ``images``/``holes``, float ``(N, 3, H, W)`` on the CPU."""
    outputs = []
    for first in range(0, len(images), batch_size):
        image = images[first : first + batch_size].to(device).float() / 255
        hole = holes[first : first + batch_size].to(device).float()
        predicted = net(image, hole).float()
        outputs.append((hole * predicted + (1 - hole) * image).cpu())
    return torch.cat(outputs)


def _hwc(batch: torch.Tensor) -> np.ndarray:
    return batch.permute(0, 2, 3, 1).double().numpy()


def _due(step: int, every: int) -> bool:
    return every > 0 and step % every == 0


def train_content(
    config: ContentTrainConfig,
    run_dir: str | os.PathLike,
    *,
    resume: bool = False,
    device: str = "auto",
) -> ContentTrainResult:
    """Train a content network as ``config`` says, writing everything into ``run_dir``."""
    return ContentTrainer(config, Path(run_dir), resume=resume, device=device).run()


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="holefill train content",
        description="Train the content network of neural patch synthesis (Yang et al. 2017).",
        epilog="Overrides use dotted config keys, e.g. optim.max_minutes=45 threads=1 "
        "data.batch_size=64 amp=bf16 (shorthands: device=cuda, max_minutes=N, max_steps=N, "
        "lr=X). See src/holefill/configs/content_default.yaml. "
        "`holefill train content export RUN -o FILE.safetensors` exports a run.",
    )
    parser.add_argument("--data", help="folder of training photos (searched recursively)")
    parser.add_argument("--val", help="folder of validation photos")
    parser.add_argument(
        "--config",
        help="YAML config (any subset of the config tree) or a "
        "packaged recipe name (content_default)",
    )
    parser.add_argument("--out", required=True, help="run folder (checkpoints, logs, export)")
    parser.add_argument(
        "--resume", action="store_true", help="continue from the run folder's latest checkpoint"
    )
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    parser.add_argument("--export", help="also copy the exported weights to this .safetensors file")
    return parser


def _export_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="holefill train content export",
        description="Export a content-network run as safetensors.",
    )
    parser.add_argument("source", help="run folder or checkpoint file")
    parser.add_argument("-o", "--out", required=True, help="output .safetensors file")
    parser.add_argument("--dtype", default="float16", choices=("float16", "bfloat16", "float32"))
    return parser


def _shorthands(args: argparse.Namespace, overrides: list[str]) -> list[str]:
    """``device=cuda`` sets ``--device``; ``max_minutes=N`` means ``optim.max_minutes=N``."""
    kept = []
    for item in overrides:
        key, _, value = item.partition("=")
        if key == "device":
            args.device = value
        elif key in ("max_minutes", "max_steps", "lr"):
            kept.append(f"optim.{item}")
        else:
            kept.append(item)
    return kept


def _config_path(name: str | None) -> Path | None:
    """A YAML file, or the name of a recipe in ``holefill/configs`` (``content_default``)."""
    if name is None or Path(name).is_file():
        return None if name is None else Path(name)
    packaged = Path(__file__).resolve().parents[1] / "configs" / f"{name}.yaml"
    if packaged.is_file():
        return packaged
    raise InputError(f"config {name!r} is neither a file nor a packaged recipe (content_default)")


def _train_from_args(argv: list[str]) -> int:
    args, extra = _parser().parse_known_args(argv)
    extra = _shorthands(args, extra)
    stray = [item for item in extra if item.startswith("-") or "=" not in item]
    if stray:
        _parser().error(f"unrecognized arguments: {' '.join(stray)}")
    from holefill.train.config import read_yaml

    saved = Path(args.out) / "config.yaml"
    base = read_yaml(saved) if args.resume and args.config is None and saved.is_file() else None
    paths = {
        key: str(Path(value).resolve())
        for key, value in (("train_dir", args.data), ("val_dir", args.val))
        if value is not None
    }
    config = load_content_config(
        _config_path(args.config), extra, base=base, values={"data": paths}
    )
    result = train_content(config, args.out, resume=args.resume, device=args.device)
    if result.validation:
        print(
            "validation PSNR "
            + ", ".join(f"{label} {v['psnr']:.2f} dB" for label, v in result.validation.items()),
            file=sys.stderr,
        )
    if args.export and result.export_path is not None:
        from holefill.io import atomic_write_bytes

        atomic_write_bytes(args.export, result.export_path.read_bytes())
        print(args.export)
    return 0


def main_content(argv: list[str] | None = None) -> int:
    """Entry point of ``holefill train content`` (train, or ``export``); returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        if argv and argv[0] == "export":
            args = _export_parser().parse_args(argv[1:])
            print(export_content(args.source, args.out, dtype=args.dtype))
            return 0
        return _train_from_args(argv)
    except HolefillError as exc:
        print(f"holefill: error: {exc}", file=sys.stderr)
        return 2


__all__ = [
    "ContentTrainConfig",
    "ContentDataConfig",
    "ContentOptimConfig",
    "ContentLossConfig",
    "ContentMasks",
    "ContentTrainer",
    "ContentTrainResult",
    "centred_rectangle",
    "load_content_config",
    "train_content",
    "export_content",
    "masked_l2",
    "predict_content",
    "main_content",
]

if __name__ == "__main__":
    raise SystemExit(main_content())
