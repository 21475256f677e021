"""The content-network plug-in of the trainer (``holefill train content``).

The network (:class:`~holefill.nn.content.ContentNet`) learns to predict a 128x128 photo from the
photo with a hole, with the Context Encoder's joint loss [1]_ as Yang et al. use it [2]_::

    L = 0.999 * L2 + 0.001 * adversarial

``L2`` is the mean squared error on the ``[-1, 1]`` scale of the Context Encoder (4x the error in
``[0, 1]``) over the hole, plus ``loss.known_weight`` times the same over the known pixels (the
network predicts the whole image); the adversarial term is the non-saturating GAN loss of a DCGAN
discriminator (:class:`~holefill.nn.content.Discriminator`) that sees the composited image.
Holes are, by default, half centred rectangles (the paper's setting) and half free-form strokes.

Everything else is the one trainer's: the loop (:mod:`holefill.train.loop`), the configuration
(:class:`~holefill.train.config.ContentTrainConfig`, YAML and ``key=value`` overrides), the
resumable sample stream, checkpoints and DDP. Usage::

    holefill train content --data DIR [--val DIR] --out RUN [--config FILE.yaml] [--resume]
                           [--device cpu|cuda|auto] [--export FILE.safetensors] [key=value ...]
    holefill train export RUN_OR_CKPT -o FILE.safetensors [--dtype float16]

Validation: PSNR/SSIM for centred (bin ``centre``) and free-form (``free-form``) holes.

References
----------
.. [1] D. Pathak, P. Krahenbuhl, J. Donahue, T. Darrell and A. A. Efros, "Context Encoders: Feature
   Learning by Inpainting", CVPR 2016.
.. [2] C. Yang, X. Lu, Z. Lin, E. Shechtman, O. Wang and H. Li, "High-Resolution Image Inpainting
   using Multi-Scale Neural Patch Synthesis", CVPR 2017.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from holefill.errors import InputError
from holefill.nn.content import ContentNet, ContentNetConfig, Discriminator
from holefill.train import checkpoint as ckpt
from holefill.train import distributed as ddp
from holefill.train.config import (
    ContentDataConfig,
    ContentLossConfig,
    ContentOptimConfig,
    ContentTrainConfig,
    load_config,
)

KIND = "content"
LOSS_KEYS = ("l2", "adv", "d_loss", "total")


def load_content_config(
    path: str | os.PathLike | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    *,
    base: dict[str, Any] | None = None,
    values: dict[str, Any] | None = None,
) -> ContentTrainConfig:
    """:func:`holefill.train.config.load_config` for a :class:`ContentTrainConfig`."""
    return load_config(path, overrides, base=base, values=values, schema=ContentTrainConfig)


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


# ---------------------------------------------------------------------------------------------
# The plug-in
# ---------------------------------------------------------------------------------------------


class ContentTask:
    """The content network and its discriminator as a plug-in of
    :class:`holefill.train.loop.Trainer`: one discriminator and one generator update per step."""

    kind = KIND
    loss_keys = LOSS_KEYS

    def __init__(
        self, config: ContentTrainConfig, context: ddp.DistContext, amp_dtype: torch.dtype | None
    ) -> None:
        self.config, self.context, self.amp_dtype = config, context, amp_dtype
        self.device = context.device
        self.net = ContentNet(config.model).to(self.device)
        self.discriminator = Discriminator(config.model).to(self.device)
        betas = tuple(config.optim.betas)
        self.opt_g = torch.optim.Adam(self.net.parameters(), lr=config.optim.lr, betas=betas)
        self.opt_d = torch.optim.Adam(
            self.discriminator.parameters(), lr=config.optim.d_lr, betas=betas
        )
        cuda_fp16 = self.device.type == "cuda" and config.amp == "fp16"
        self.scaler = torch.amp.GradScaler("cuda", enabled=cuda_fp16)
        self.lr = config.optim.lr

    # -- the loop's calls -------------------------------------------------------------------
    def check_config(self) -> None:
        config = self.config
        if config.data.size != config.model.size:
            raise InputError(
                f"data.size={config.data.size} must equal model.size={config.model.size}"
            )

    def masks(self) -> ContentMasks:
        data = self.config.data
        return ContentMasks(data.centre_share, tuple(data.centre_side), data.centre_jitter)

    def validation_set(self):
        data = self.config.data
        return build_content_validation(data.val_dir, data.size, self.config.val_images)

    def start(self, step: int) -> None:
        self.generator = ddp.wrap_model(self.net, self.context)
        self.critic = ddp.wrap_model(self.discriminator, self.context)
        self.set_train_mode()

    def set_train_mode(self) -> None:
        self.net.train()
        self.discriminator.train()

    def train_step(self, image: torch.Tensor, hole: torch.Tensor, fraction: float) -> torch.Tensor:
        """One discriminator and one generator update; the detached losses in LOSS_KEYS order."""
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
        return torch.stack([l2.detach(), adv.detach(), d_loss, total.detach()])

    @torch.no_grad()
    def predict(self, image: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        """The network's prediction for float ``image``/``hole`` on the device (eval mode)."""
        return self.net(image, hole)

    def state(self) -> dict[str, Any]:
        return {
            "kind": KIND,
            "model": self.net.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "scaler": self.scaler.state_dict(),
        }

    def load_state(self, state: dict[str, Any], path: Path) -> None:
        ckpt.load_model_state(self.net, state["model"], path)
        ckpt.load_model_state(self.discriminator, state["discriminator"], path)
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        for optimizer, lr in (
            (self.opt_g, self.config.optim.lr),
            (self.opt_d, self.config.optim.d_lr),
        ):
            for group in optimizer.param_groups:  # a resumed run may be given new rates
                group["lr"] = lr
        self.scaler.load_state_dict(state["scaler"])

    def load_init_weights(self, path: Path) -> None:
        raise InputError("init_weights is a PConv option; the content trainer has no --init")

    def export(self, path: Path, step: int, train_seconds: float) -> Path:
        return write_content_export(
            self.net.state_dict(),
            self.config.to_dict(),
            step,
            train_seconds,
            path,
            self.config.export_dtype,
        )

    # -- helpers ----------------------------------------------------------------------------
    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

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


def write_content_export(
    model_state: dict[str, torch.Tensor],
    train_config: dict[str, Any],
    step: int,
    seconds: float,
    out_path: str | os.PathLike,
    dtype: str,
) -> Path:
    """Write a content network as ``holefill-content`` weights with its training record."""
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


def export_content(
    run_dir_or_ckpt: str | os.PathLike, out_path: str | os.PathLike, *, dtype: str = "float16"
) -> Path:
    """Export a run's latest checkpoint (or a checkpoint file) as content-network weights."""
    state = ckpt.load_checkpoint(ckpt.resolve_checkpoint(run_dir_or_ckpt), kind=KIND)
    return write_content_export(
        state["model"],
        state["config"],
        int(state["step"]),
        float(state.get("train_seconds", 0.0)),
        out_path,
        dtype,
    )


def train_content(
    config: ContentTrainConfig,
    run_dir: str | os.PathLike,
    *,
    resume: bool = False,
    device: str = "auto",
):
    """Train a content network as ``config`` says (:func:`holefill.train.loop.train`)."""
    from holefill.train.loop import train

    return train(config, run_dir, resume=resume, device=device)


def main_content(argv: list[str] | None = None) -> int:
    """``holefill train content ARGS`` (the one trainer CLI, :func:`holefill.train.cli.main`)."""
    import sys

    from holefill.train.cli import main

    return main(["content", *(sys.argv[1:] if argv is None else argv)])


__all__ = [
    "ContentTask",
    "ContentTrainConfig",
    "ContentDataConfig",
    "ContentOptimConfig",
    "ContentLossConfig",
    "ContentMasks",
    "centred_rectangle",
    "build_content_validation",
    "load_content_config",
    "train_content",
    "write_content_export",
    "export_content",
    "masked_l2",
    "main_content",
    "LOSS_KEYS",
]

if __name__ == "__main__":
    raise SystemExit(main_content())
