"""The PConv plug-in of the trainer: the partial-convolution U-Net, its loss, schedule and export.

Liu et al. [1]_ train in two phases: lr 2e-4 with batch normalisation everywhere, then lr 5e-5 with
the encoder's batch normalisation frozen (``optim.finetune_from_step``). For short budgets (a GPU
lease of minutes) ``optim.schedule=cosine`` warms up and then decays the learning rate over the
invocation's budget, and ``optim.finetune_from_fraction`` freezes the encoder's batch norms for the
last part of it. One step is one Adam update on a global batch of ``data.batch_size`` samples
(split over the DDP processes). The loop itself is :mod:`holefill.train.loop`.

References
----------
.. [1] G. Liu, F. A. Reda, K. J. Shih, T.-C. Wang, A. Tao and B. Catanzaro, "Image Inpainting for
   Irregular Holes Using Partial Convolutions", ECCV 2018.
"""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path
from typing import Any

import torch

from holefill.errors import HolefillError, InputError, WeightsError
from holefill.train import checkpoint as ckpt
from holefill.train import distributed as ddp
from holefill.train.config import TrainConfig

LOSS_KEYS = ("valid", "hole", "perceptual", "style_out", "style_comp", "tv", "ssim", "total")
#: how a user allows the VGG download, for the message when no VGG file is found
DOWNLOAD_HINT = "--download-vgg"


class PConvTask:
    """The partial-convolution U-Net as a plug-in of :class:`holefill.train.loop.Trainer`.

    Parameters
    ----------
    config : TrainConfig
    context : holefill.train.distributed.DistContext
        This process's rank, world size and device.
    amp_dtype : torch.dtype or None
        The autocast type the loop chose (None: float32).
    vgg_weights : path, optional
        VGG file of the perceptual and style terms (else ``$HOLEFILL_VGG_WEIGHTS``, else the torch
        hub cache; see :func:`holefill.weights.vgg19_file`).
    download_vgg : bool
        Download torchvision's VGG file into the torch hub cache when none is found.
    """

    kind = "pconv"
    loss_keys = LOSS_KEYS

    def __init__(
        self,
        config: TrainConfig,
        context: ddp.DistContext,
        amp_dtype: torch.dtype | None,
        *,
        vgg_weights: str | os.PathLike | None = None,
        download_vgg: bool = False,
    ) -> None:
        from holefill.nn.losses import PConvLoss
        from holefill.nn.unet import PConvUNet
        from holefill.nn.vgg import build_feature_net

        self.config, self.context, self.amp_dtype = config, context, amp_dtype
        self.device = context.device
        self.cuda = self.device.type == "cuda"
        self.net = PConvUNet(config.model).to(self.device)
        feature_net = None  # pixel terms only: no VGG to load or run
        if config.loss.weights.perceptual or config.loss.weights.style:
            feature_net = build_feature_net(
                config.loss.feature_net,
                weights=vgg_weights,
                taps=config.loss.taps,
                download=download_vgg,
                download_hint=DOWNLOAD_HINT,
            )
        self.loss_fn = PConvLoss(feature_net, config.loss.weights).to(self.device)
        self.optimizer = torch.optim.Adam(
            self.net.parameters(),
            lr=config.optim.lr,
            betas=tuple(config.optim.betas),
            weight_decay=config.optim.weight_decay,
        )
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.cuda and config.amp == "fp16")
        self.step, self.budget_fraction = 0, 0.0
        self.finetuning = False
        self.compile_checked = False
        self.lr = config.optim.lr

    # -- the loop's calls -------------------------------------------------------------------
    def check_config(self) -> None:
        """Raise :class:`InputError` for a training size the network cannot take."""
        multiple = int(self.net.size_multiple)
        if self.config.data.size % multiple:
            raise InputError(
                f"data.size={self.config.data.size} must be a multiple of the model's "
                f"size_multiple {multiple} (2**model.layers)"
            )

    def masks(self):
        """The training hole source (:class:`holefill.train.data.MaskSource`)."""
        from holefill.train.data import MaskSource

        data = self.config.data
        return MaskSource(data.masks, data.mask_dir, data.folder_mask_share)

    def validation_set(self):
        """64 (``val_images``) fixed photos with masks spread over the PConv bins."""
        from holefill.train.data import build_validation_set

        data = self.config.data
        return build_validation_set(data.val_dir, data.size, self.config.val_images)

    def start(self, step: int) -> None:
        """Set the phase and the learning rate for training from ``step`` on, and wrap the net."""
        self.step = step
        self.finetuning = self._finetune_due()
        self.lr = self._lr()
        self._wrap_model()

    def train_step(self, image: torch.Tensor, hole: torch.Tensor, fraction: float) -> torch.Tensor:
        """One Adam update on a batch; ``fraction`` is the share of the time budget spent.

        Returns the detached loss terms in :data:`LOSS_KEYS` order.
        """
        self.budget_fraction = fraction
        if not self.finetuning and self._finetune_due():
            self.finetuning = True
            self._wrap_model()  # the paper's second phase starts here
        self.lr = self._lr()
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr
        image, valid = self._inputs(image, hole)
        if self.config.compile and not self.compile_checked:
            self.check_compiled_gradients(image, valid)
        losses = self._losses(image, valid)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(losses["total"]).backward()
        if self.config.optim.grad_clip:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.config.optim.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.step += 1
        return torch.stack([losses[key].detach().float() for key in LOSS_KEYS])

    def set_train_mode(self) -> None:
        self.net.train()
        if self.finetuning:
            self.net.freeze_encoder_bn(True)

    @torch.no_grad()
    def predict(self, image: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        """The network's raw output for float ``image``/``hole`` on the device (eval mode)."""
        return self.net(image, 1 - hole)

    def state(self) -> dict[str, Any]:
        """The checkpoint entries of this plug-in (the loop adds step, config, RNG...)."""
        return {
            "kind": self.kind,
            "model": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
        }

    def load_state(self, state: dict[str, Any], path: Path) -> None:
        ckpt.load_model_state(self.net, state["model"], path)
        self.optimizer.load_state_dict(state["optimizer"])
        if state["scaler"] and self.scaler.is_enabled():  # empty when saved without fp16
            self.scaler.load_state_dict(state["scaler"])

    def load_init_weights(self, path: Path) -> None:
        """Network weights (only) from an export or a checkpoint: a warm start."""
        from holefill.methods.pconv import read_pconv
        from holefill.weights import check_state

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

    def export(self, path: Path, step: int, train_seconds: float) -> Path:
        """Write the network as ``holefill-pconv`` weights (and its ``.json`` beside)."""
        return ckpt.write_export(
            self.net.state_dict(),
            self.config.to_dict(),
            step,
            path,
            dtype=self.config.export_dtype,
        )

    # -- phases -----------------------------------------------------------------------------
    def _progress(self) -> float:
        """How much of this invocation's budget is spent: steps or time, whichever is further."""
        optim = self.config.optim
        return min(1.0, max(self.step / max(optim.max_steps, 1), self.budget_fraction))

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

    def _wrap_model(self) -> None:
        """DDP and torch.compile around the network, in the current phase's train mode.

        Called again when fine-tuning starts: freezing the encoder's batch norms takes their
        parameters out of training, and DDP must be rebuilt to know which parameters get gradients.
        """
        if self.cuda and self.config.channels_last:
            self.net.to(memory_format=torch.channels_last)
            self.loss_fn.to(memory_format=torch.channels_last)
        self.set_train_mode()
        self.model = ddp.wrap_model(self.net, self.context)
        if self.config.compile:
            self.model = torch.compile(self.model)

    # -- one step ---------------------------------------------------------------------------
    def _inputs(self, image: torch.Tensor, hole: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        valid = 1 - hole
        if self.cuda and self.config.channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
            valid = valid.contiguous(memory_format=torch.channels_last)
        return image, valid

    def _losses(
        self, image: torch.Tensor, valid: torch.Tensor, model: torch.nn.Module | None = None
    ) -> dict[str, torch.Tensor]:
        """The network under autocast, the loss in float32 unless ``amp_loss`` (CUDA)."""
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

    def check_compiled_gradients(self, image: torch.Tensor, valid: torch.Tensor) -> None:
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


__all__ = ["PConvTask", "LOSS_KEYS"]
