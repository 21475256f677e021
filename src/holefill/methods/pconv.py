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

from holefill.errors import WeightsError
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
        device: str = "cpu",
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
        self.weights = path
        self.device = resolve_device(device)
        self.net = cached_network("pconv", path, self.device, lambda: load_pconv(path, self.device))
        self.size_multiple = int(self.net.size_multiple)  # overrides the class attribute

    def __repr__(self) -> str:
        return (
            f"PConvInpainter(weights={str(self.weights)!r}, device={str(self.device)!r}, "
            f"strategy={self.strategy!r}, max_side={self.max_side}, margin={self.margin})"
        )

    def _fill(self, image: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        valid = 1.0 - hole
        with torch.no_grad():
            output = self.net(image.to(self.device), valid.to(self.device))
        return output.float().to(image.device)


__all__ = [
    "PConvInpainter",
    "load_pconv",
    "read_pconv",
    "save_pconv",
    "check_state",
    "default_weights_path",
    "weights_digest",
]
