"""Partial-convolution U-Net inpainting with weights trained by ``holefill train pconv``.

The weights file is a ``safetensors`` file whose header carries everything needed to rebuild the
network: ``format`` (``holefill-pconv``), ``config`` (the :class:`~holefill.nn.unet.PConvConfig` as
JSON), ``step`` (training steps), ``weights_sha256`` (of the stored tensors), ``train_config``.

References
----------
.. [1] G. Liu, F. A. Reda, K. J. Shih, T.-C. Wang, A. Tao and B. Catanzaro, "Image Inpainting for
   Irregular Holes Using Partial Convolutions", ECCV 2018.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from holefill.errors import InputError, WeightsError
from holefill.inpainter import Inpainter
from holefill.registry import PackagedWeights, register_method
from holefill.weights import (  # noqa: F401 - check_state, weights_digest: old import paths
    cached_network,
    check_state,
    load_network,
    packaged_file,
    read_weights,
    resolve_device,
    weights_digest,
    write_weights,
)

FORMAT = "holefill-pconv"
DEFAULT_WEIGHTS_NAME = "pconv_default.safetensors"


def default_weights_path() -> Path:
    """The packaged weights (``holefill/weights/pconv_default.safetensors``)."""
    return packaged_file(DEFAULT_WEIGHTS_NAME)


# ---------------------------------------------------------------------------------------------
# The file format (holefill.weights, with format holefill-pconv)
# ---------------------------------------------------------------------------------------------


def save_pconv(
    state_dict: dict[str, torch.Tensor],
    config: Any,
    path: str | os.PathLike,
    *,
    dtype: str = "float16",
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write a :class:`~holefill.nn.unet.PConvUNet`'s ``state_dict`` and ``config`` as a
    ``holefill-pconv`` weights file: :func:`holefill.weights.write_weights`, whose parameters
    these are."""
    return write_weights(state_dict, config, path, FORMAT, dtype=dtype, metadata=metadata)


def read_pconv(path: str | os.PathLike) -> tuple[Any, dict[str, torch.Tensor], dict[str, str]]:
    """``(config, tensors, header)`` of a weights file, without building the network."""
    from holefill.nn.unet import PConvConfig

    return read_weights(
        path,
        FORMAT,
        PConvConfig,
        what="PConv weights",
        export_hint="export one with `holefill train export RUN_DIR -o FILE.safetensors`",
    )


def load_pconv(path: str | os.PathLike, device: str | torch.device = "cpu"):
    """Build a :class:`~holefill.nn.unet.PConvUNet` from a weights file, in eval mode, float32.

    Raises
    ------
    WeightsError
        Missing or unreadable file, or tensors that do not match the config in its header.
    """
    from holefill.nn.unet import PConvUNet

    return load_network(path, read_pconv, PConvUNet, device)


# ---------------------------------------------------------------------------------------------
# The method
# ---------------------------------------------------------------------------------------------


@register_method(
    "pconv",
    summary="Partial-convolution U-Net (Liu et al. 2018), weights trained by holefill",
    needs=(PackagedWeights(DEFAULT_WEIGHTS_NAME),),
)
class PConvInpainter(Inpainter):
    """Fill holes with a partial-convolution U-Net [1]_.

    Parameters
    ----------
    weights : str or None
        A ``.safetensors`` file written by ``holefill train export`` (or at the end of a training
        run). Default: the packaged ``holefill/weights/pconv_default.safetensors``.
    device : str
        ``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (cuda when available).
    tta : bool
        Test-time augmentation: average the fill with the mirrored image's fill (both in one batch).
        +0.07 dB over the bins 0.2-0.6 on the shared ImageNet pairs at 256 px, +0.08 dB on CBSD68.
    seam : float
        Width in pixels of the blend with OpenCV Telea at the hole's edge (0: off). Hole pixels at
        distance ``d`` from the known region take ``seam_weight * exp(-(d - 1) / seam)`` of
        Telea's fill, which is more accurate than the network's within a few pixels of the edge.
    seam_weight : float
        Telea's share at the edge itself (``d = 1``), in [0, 1].
    precision : {"auto", "float32", "bfloat16"}
        Arithmetic of the network. ``auto``: bfloat16 on CUDA and on CPUs with native bfloat16
        (AVX-512 BF16 / AMX; 1.6x faster here, within 0.01 dB), else float32.
    strategy, max_side, margin, seed
        See :class:`~holefill.inpainter.Inpainter`. The network sees at most 512 px by default.

    Notes
    -----
    The network needs sides that are multiples of ``2**layers`` (:attr:`size_multiple`, read from
    the weights); the base pads with hole pixels and crops back. Weights load once per file and
    device and are shared by every instance.
    """

    name = "pconv"
    default_strategy = "crop"
    default_max_side = 512

    def __init__(
        self,
        *,
        weights: str | None = None,
        device: str = "auto",
        tta: bool = True,
        seam: float = 2.0,
        seam_weight: float = 0.75,
        precision: str = "auto",
        strategy: str | None = None,
        max_side: int | None = None,
        margin: int = 32,
        seed: int = 0,
    ) -> None:
        super().__init__(strategy=strategy, max_side=max_side, margin=margin, seed=seed)
        path = Path(weights) if weights else default_weights_path()
        if not weights and not path.is_file():
            raise WeightsError(
                f"no PConv weights: {path} is not installed; pass --weights FILE.safetensors "
                "or train one with `holefill train pconv` and export it"
            )
        if seam < 0:
            raise InputError(f"seam must be >= 0 pixels, got {seam}")
        if not 0 <= seam_weight <= 1:
            raise InputError(f"seam_weight must be in [0, 1], got {seam_weight}")
        self.weights = path
        self.device = resolve_device(device)
        self.tta = bool(tta)
        self.seam = float(seam)
        self.seam_weight = float(seam_weight)
        self.compute_dtype = _compute_dtype(precision, self.device)
        self.net = cached_network("pconv", path, self.device, lambda: load_pconv(path, self.device))
        self.size_multiple = int(self.net.size_multiple)  # overrides the class attribute

    def __repr__(self) -> str:
        return (
            f"PConvInpainter(weights={str(self.weights)!r}, device={str(self.device)!r}, "
            f"tta={self.tta}, seam={self.seam}, seam_weight={self.seam_weight}, "
            f"precision={str(self.compute_dtype).removeprefix('torch.')!r}, "
            f"strategy={self.strategy!r}, max_side={self.max_side}, margin={self.margin})"
        )

    def _fill(self, image: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        output = self._network_fill(image, hole)
        if self.seam > 0 and self.seam_weight > 0:
            output = torch.stack(
                [self._blend_seam(image[i], hole[i, 0], output[i]) for i in range(len(image))]
            )
        return output

    def _network_fill(self, image: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        valid = 1.0 - hole.to(self.device)
        image = image.to(self.device) * valid
        if self.tta:  # the fill and the mirrored image's fill, in one batch
            image = torch.cat([image, image.flip(-1)])
            valid = torch.cat([valid, valid.flip(-1)])
        autocast = torch.autocast(
            self.device.type,
            dtype=self.compute_dtype,
            enabled=self.compute_dtype != torch.float32,
        )
        with torch.no_grad(), autocast:
            output = self.net(image, valid).float()
        if self.tta:
            half = len(output) // 2
            output = 0.5 * (output[:half] + output[half:].flip(-1))
        return output.to(hole.device)

    def _blend_seam(
        self, image: torch.Tensor, hole: torch.Tensor, output: torch.Tensor
    ) -> torch.Tensor:
        """Blend Telea's fill into ``output`` within a few ``seam`` widths of the hole's edge."""
        import cv2
        import numpy as np

        hole_u8 = (hole > 0.5).cpu().numpy().astype(np.uint8)
        distance = cv2.distanceTransform(hole_u8, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        share = self.seam_weight * np.exp(-(distance - 1.0) / self.seam) * hole_u8
        reach = (hole_u8 > 0) & (share > 1e-3)
        if not reach.any():
            return output
        pixels = np.rint(image.permute(1, 2, 0).cpu().numpy().clip(0, 1) * 255).astype(np.uint8)
        telea = cv2.inpaint(pixels, hole_u8, 3.0, cv2.INPAINT_TELEA)
        telea = torch.from_numpy(telea).permute(2, 0, 1).to(output) / 255.0
        weight = torch.from_numpy(share.astype(np.float32)).to(output)
        return output + weight * (telea - output)


def _compute_dtype(precision: str, device: torch.device) -> torch.dtype:
    if precision not in ("auto", "float32", "bfloat16"):
        raise InputError(f"unknown precision {precision!r}; use auto, float32 or bfloat16")
    if precision == "auto":
        return torch.bfloat16 if _native_bfloat16(device) else torch.float32
    return torch.bfloat16 if precision == "bfloat16" else torch.float32


def _native_bfloat16(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return (
        device.type == "cpu"
        and bool(torch.backends.mkldnn.is_available())
        and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    )


__all__ = [
    "PConvInpainter",
    "load_pconv",
    "read_pconv",
    "save_pconv",
    "check_state",
    "default_weights_path",
    "weights_digest",
]
