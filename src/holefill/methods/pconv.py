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

import hashlib
import json
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch

from holefill.errors import InputError, WeightsError
from holefill.inpainter import Inpainter
from holefill.paths import package_weights_dir

FORMAT = "holefill-pconv"
DEFAULT_WEIGHTS_NAME = "pconv_default.safetensors"
_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}
_CACHE: OrderedDict[tuple, torch.nn.Module] = OrderedDict()
_CACHE_SIZE = 4


def default_weights_path() -> Path:
    """The packaged weights (``holefill/weights/pconv_default.safetensors``)."""
    return package_weights_dir() / DEFAULT_WEIGHTS_NAME


# ---------------------------------------------------------------------------------------------
# The file format
# ---------------------------------------------------------------------------------------------


def weights_digest(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over the tensors' names, dtypes, shapes and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def save_pconv(
    state_dict: dict[str, torch.Tensor],
    config: Any,
    path: str | os.PathLike,
    *,
    dtype: str = "float16",
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write a network's weights as safetensors with its config in the header (atomically).

    Parameters
    ----------
    state_dict : dict
        ``PConvUNet.state_dict()``; floating tensors are stored as ``dtype``, others unchanged.
    config : PConvConfig
        The network's configuration.
    path : path
        Output ``.safetensors`` file.
    dtype : {"float16", "bfloat16", "float32"}
    metadata : dict of str, optional
        Extra header entries (``step``, ``train_config``...).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    return write_weights(state_dict, config, path, FORMAT, dtype=dtype, metadata=metadata)


def write_weights(
    state_dict: dict[str, torch.Tensor],
    config: Any,
    path: str | os.PathLike,
    file_format: str,
    *,
    dtype: str = "float16",
    metadata: dict[str, str] | None = None,
) -> Path:
    """A holefill weights file (PConv, content network): safetensors whose header holds
    ``format``, the network's ``config`` (JSON), ``dtype`` and ``weights_sha256``; written
    atomically."""
    from safetensors.torch import save

    from holefill.io import atomic_write_bytes

    if dtype not in _DTYPES:
        raise InputError(f"unknown export dtype {dtype!r}; use {', '.join(_DTYPES)}")
    tensors = {
        name: (
            t.detach().to("cpu", _DTYPES[dtype]) if t.is_floating_point() else t.detach().cpu()
        ).contiguous()
        for name, t in state_dict.items()
    }
    header = {
        **(metadata or {}),
        "format": file_format,
        "config": json.dumps(config.to_dict()),
        "dtype": dtype,
        "weights_sha256": weights_digest(tensors),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, save(tensors, metadata={k: str(v) for k, v in header.items()}))
    return path


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


def read_weights(
    path: str | os.PathLike,
    file_format: str,
    config_type: Any,
    *,
    what: str,
    export_hint: str,
    kind: str | None = None,
) -> tuple[Any, dict[str, torch.Tensor], dict[str, str]]:
    """``(config, tensors, header)`` of a :func:`write_weights` file of ``file_format``;
    :class:`WeightsError` for a missing (``what`` names it), unreadable or foreign file (not a
    holefill ``kind`` file; default ``what``)."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: {what} file not found")
    try:
        with safe_open(str(path), framework="pt") as handle:
            header = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
    except Exception as exc:  # noqa: BLE001 - safetensors raises several types for bad files
        raise WeightsError(f"{path}: not a readable safetensors file ({exc})") from None
    if header.get("format") != file_format or "config" not in header:
        raise WeightsError(
            f"{path}: not a holefill {kind or what} file (no {file_format} header); {export_hint}"
        )
    try:
        config = config_type.from_dict(json.loads(header["config"]))
    except (ValueError, TypeError) as exc:
        raise WeightsError(f"{path}: the config in the header is invalid ({exc})") from None
    return config, tensors, header


def check_state(
    tensors: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], source: str
) -> None:
    """Raise :class:`WeightsError` unless ``tensors`` has exactly the expected names and shapes."""
    missing = [name for name in expected if name not in tensors]
    if missing:
        raise WeightsError(
            f"{source}: tensor {missing[0]!r} is missing "
            f"({len(missing)} missing); the file does not match its config"
        )
    for name, reference in expected.items():
        if tuple(tensors[name].shape) != tuple(reference.shape):
            raise WeightsError(
                f"{source}: tensor {name!r} has shape {tuple(tensors[name].shape)}, "
                f"the config needs {tuple(reference.shape)}"
            )
    extra = [name for name in tensors if name not in expected]
    if extra:
        raise WeightsError(
            f"{source}: unexpected tensor {extra[0]!r} ({len(extra)} extra); "
            "the file does not match its config"
        )


def load_pconv(path: str | os.PathLike, device: str | torch.device = "cpu"):
    """Build a :class:`~holefill.nn.unet.PConvUNet` from a weights file, in eval mode, float32.

    Raises
    ------
    WeightsError
        Missing or unreadable file, or tensors that do not match the config in its header.
    """
    from holefill.nn.unet import PConvUNet

    config, tensors, _ = read_pconv(path)
    net = PConvUNet(config)
    expected = net.state_dict()
    check_state(tensors, expected, str(path))
    net.load_state_dict({name: tensors[name].to(expected[name].dtype) for name in expected})
    return net.to(device).eval().requires_grad_(False)


def _cached_net(path: Path, device: torch.device):
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size, str(device))
    net = _CACHE.get(key)
    if net is None:
        net = load_pconv(path, device)
        _CACHE[key] = net
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    _CACHE.move_to_end(key)
    return net


def _resolve_device(request: str) -> torch.device:
    if request == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if request.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("device cuda was asked for but no CUDA GPU is available")
    try:
        return torch.device(request)
    except RuntimeError:
        raise InputError(f"unknown device {request!r}; use cpu, cuda or auto") from None


# ---------------------------------------------------------------------------------------------
# The method
# ---------------------------------------------------------------------------------------------


class PConvInpainter(Inpainter):
    """Fill holes with a partial-convolution U-Net [1]_.

    Parameters
    ----------
    weights : str or None
        A ``.safetensors`` file written by ``holefill train export`` (or at the end of a training
        run). Default: the packaged ``holefill/weights/pconv_default.safetensors``.
    device : str
        ``cpu``, ``cuda`` or ``auto`` (cuda when available).
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
        self.device = _resolve_device(device)
        self.net = _cached_net(path, self.device)
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
