"""Weights of holefill's networks: the file format, checksums, the one network cache, devices.

**The file format.** Every network holefill trains (the PConv U-Net, the content network of
``neural_patch``) is stored as a ``safetensors`` file whose header carries what rebuilds it:

- ``format``: which network (``holefill-pconv``, ``holefill-content``);
- ``config``: the network's configuration dataclass as JSON;
- ``dtype``: the storage type of the floating tensors (``float16``, ``bfloat16``, ``float32``);
- ``weights_sha256``: :func:`weights_digest` of the stored tensors, checked on every read;
- anything else the writer adds (``step``, ``train_config``, ``holefill_version``...).

**Checksums.** Two kinds: the header's ``weights_sha256`` (of the tensors, survives re-packing) and
the sha256 of a whole file (:func:`file_sha256`). Files shipped in the package are checked against
the ``file sha256`` row of their provenance note (``holefill/weights/NAME.md``); published files
from torchvision carry a hash prefix in their name (``vgg19-dcbb9e9d.pth``), torch hub's convention.

**One cache.** :func:`cached_network` keeps the last few loaded networks (PConv, content, VGG
features), keyed by file, its modification time and size, the device and the builder's options, so
every inpainter built on the same file shares one network.

**One device choice.** :func:`resolve_device` turns ``"auto"``, ``"cpu"``, ``"cuda"`` or
``"cuda:N"`` into a :class:`torch.device`, for inference and training alike.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import OrderedDict
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

import torch

from holefill.errors import InputError, WeightsError

__all__ = [
    "resolve_device",
    "file_sha256",
    "verify_file",
    "weights_digest",
    "write_weights",
    "read_weights",
    "check_state",
    "load_network",
    "packaged_file",
    "published_file",
    "name_hash_prefix",
    "vgg19_file",
    "vgg16_file",
    "cached_network",
    "clear_cache",
    "DTYPES",
    "VGG16_URL",
    "VGG19_URL",
]

DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}
VGG16_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"
VGG19_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
#: how a user supplies a VGG file, for every message that asks for one
VGG_HINT = "pass --vgg-weights PATH or set HOLEFILL_VGG_WEIGHTS=PATH"
CACHE_SIZE = 8


# ---------------------------------------------------------------------------------------------
# Devices
# ---------------------------------------------------------------------------------------------


def resolve_device(request: str | torch.device = "auto", local_rank: int = 0) -> torch.device:
    """The device a request names, checked against the machine.

    Parameters
    ----------
    request : str or torch.device
        ``"auto"`` (a CUDA GPU when there is one, else the CPU), ``"cpu"``, ``"cuda"`` or
        ``"cuda:N"``.
    local_rank : int
        The process's rank on its machine under torchrun: ``"cuda"`` and ``"auto"`` then mean GPU
        ``local_rank`` (modulo the GPU count), so each process gets its own.

    Returns
    -------
    torch.device

    Raises
    ------
    InputError
        An unknown name, CUDA asked for without a CUDA GPU, or a GPU index past the last GPU.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    text = str(request).strip().lower()
    if text == "auto":
        text = "cuda" if torch.cuda.is_available() else "cpu"
    if text == "cpu":
        return torch.device("cpu")
    if re.fullmatch(r"cuda(:\d+)?", text) is None:
        raise InputError(f"unknown device {str(request)!r}; use cpu, cuda, cuda:N or auto")
    if not torch.cuda.is_available():
        raise InputError(f"device {text} was asked for but no CUDA GPU is available")
    count = torch.cuda.device_count()
    index = int(text[5:]) if ":" in text else local_rank % count
    if index >= count:
        raise InputError(f"device {text} was asked for but this machine has {count} CUDA GPU(s)")
    return torch.device("cuda", index)


# ---------------------------------------------------------------------------------------------
# Checksums
# ---------------------------------------------------------------------------------------------


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(path: str | os.PathLike, sha256: str, *, what: str = "weights file") -> Path:
    """Raise :class:`WeightsError` unless the file's sha256 starts with ``sha256`` (a full hash or
    a prefix, as in torch hub's ``name-<prefix>.pth``).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: {what} not found")
    actual = file_sha256(path)
    if not actual.startswith(sha256.lower()):
        raise WeightsError(
            f"{path}: sha256 {actual[:16]}... is not the expected {sha256[:16]}...; "
            f"the {what} is corrupt or not the published one: delete it or replace it"
        )
    return path


def weights_digest(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over the tensors' names, dtypes, shapes and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------
# The file format
# ---------------------------------------------------------------------------------------------


def write_weights(
    state_dict: dict[str, torch.Tensor],
    config: Any,
    path: str | os.PathLike,
    file_format: str,
    *,
    dtype: str = "float16",
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write a network as a holefill weights file (atomically: temp file, then rename).

    Parameters
    ----------
    state_dict : dict of str to torch.Tensor
        The network's ``state_dict()``; floating tensors are stored as ``dtype``, others unchanged.
    config : dataclass with ``to_dict()``
        The network's configuration, stored as JSON in the header.
    path : path
        The ``.safetensors`` file to write (its folder is created).
    file_format : str
        The header's ``format`` (``holefill-pconv``, ``holefill-content``).
    dtype : {"float16", "bfloat16", "float32"}
    metadata : dict of str, optional
        Extra header entries (``step``, ``train_config``...).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    from safetensors.torch import save

    from holefill.io import atomic_write_bytes

    if dtype not in DTYPES:
        raise InputError(f"unknown export dtype {dtype!r}; use {', '.join(DTYPES)}")
    tensors = {
        name: (
            t.detach().to("cpu", DTYPES[dtype]) if t.is_floating_point() else t.detach().cpu()
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


def read_weights(
    path: str | os.PathLike,
    file_format: str,
    config_type: Any,
    *,
    what: str,
    export_hint: str,
    kind: str | None = None,
) -> tuple[Any, dict[str, torch.Tensor], dict[str, str]]:
    """``(config, tensors, header)`` of a :func:`write_weights` file, without building a network.

    Parameters
    ----------
    path : path
    file_format : str
        The ``format`` the header must name.
    config_type : type
        Dataclass with ``from_dict`` that the header's ``config`` becomes.
    what : str
        What the file is, for messages (``"PConv weights"``).
    export_hint : str
        How to make a right file, appended to the message for a foreign file.
    kind : str, optional
        The name in "not a holefill KIND file" (default ``what``).

    Raises
    ------
    WeightsError
        A missing, unreadable or foreign file, an invalid config, or tensors whose digest is not
        the header's ``weights_sha256`` (a damaged file).
    """
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
    expected = header.get("weights_sha256")
    if expected is not None and weights_digest(tensors) != expected:
        raise WeightsError(
            f"{path}: the tensors do not match the header's weights_sha256; the file is damaged"
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


def load_network(
    path: str | os.PathLike,
    read: Callable[[str | os.PathLike], tuple[Any, dict[str, torch.Tensor], dict[str, str]]],
    network: Callable[[Any], torch.nn.Module],
    device: str | torch.device = "cpu",
) -> torch.nn.Module:
    """Build a network from a weights file: frozen, in eval mode, float32, on ``device``.

    Parameters
    ----------
    path : path
    read : callable
        The format's reader, ``path -> (config, tensors, header)`` (a :func:`read_weights` call).
    network : callable
        ``config -> torch.nn.Module``, the untrained network of that config.
    device : str or torch.device

    Raises
    ------
    WeightsError
        The reader's errors, or tensors that do not fit the network (:func:`check_state`).
    """
    config, tensors, _ = read(path)
    net = network(config)
    expected = net.state_dict()
    check_state(tensors, expected, str(path))
    net.load_state_dict({name: tensors[name].to(expected[name].dtype) for name in expected})
    return net.to(device).eval().requires_grad_(False)


# ---------------------------------------------------------------------------------------------
# Files that come with the package or from a publisher
# ---------------------------------------------------------------------------------------------


def packaged_file(name: str) -> Path:
    """A weights file shipped in the package (``holefill/weights/NAME``), whether it exists or not."""
    from holefill.paths import package_weights_dir

    return package_weights_dir() / name


def _packaged_sha256(path: Path) -> str | None:
    """The ``file sha256`` its provenance note (``NAME.md`` beside it) records, if any."""
    note = path.with_suffix(".md")
    if not note.is_file():
        return None
    found = re.search(r"file sha256 \| `([0-9a-f]{64})`", note.read_text(encoding="utf-8"))
    return found.group(1) if found else None


def _check_packaged(path: Path) -> None:
    """A shipped file must be the one its provenance note describes (a damaged install fails)."""
    if path.parent != packaged_file("x").parent:
        return
    expected = _packaged_sha256(path)
    if expected is not None:
        verify_file(path, expected, what="packaged weights file (reinstall holefill)")


#: torchvision's published files: URL and size, for the message that offers the download
PUBLISHED = {
    "VGG-19": (VGG19_URL, "548 MB"),
    "VGG-16": (VGG16_URL, "528 MB"),
}


def name_hash_prefix(path: str | os.PathLike) -> str | None:
    """The sha256 prefix in a torch hub file name (``vgg19-dcbb9e9d.pth`` -> ``dcbb9e9d``)."""
    found = re.fullmatch(r".+-([0-9a-f]{8,})\.pth?", Path(path).name)
    return found.group(1) if found else None


def published_file(label: str, *, download: bool = False, download_hint: str = "") -> Path:
    """torchvision's published weights file ``label`` in the torch hub cache.

    Parameters
    ----------
    label : {"VGG-19", "VGG-16"}
    download : bool
        Download the file into the cache (checking its hash) when it is absent. Without it an
        absent file is a :class:`WeightsError` saying how to provide one.
    download_hint : str
        How the caller's user allows the download, for that message (``--download-vgg``).

    Returns
    -------
    pathlib.Path
        The cached file. Its hash is checked when it is loaded (:func:`name_hash_prefix`).
    """
    url, size = PUBLISHED[label]
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name
    if cached.is_file():
        return cached
    if not download:
        allow = f", or allow the download ({size} from {url}) with {download_hint}"
        raise WeightsError(f"needs a {label} file: {VGG_HINT}{allow if download_hint else ''}")
    cached.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(url, str(cached), hash_prefix=name_hash_prefix(cached))
    except Exception as exc:  # offline, proxy, disk or hash failure
        raise WeightsError(
            f"{label} weights are not in {cached.parent} and could not be downloaded from "
            f"{url} ({exc}). Download that file yourself and {VGG_HINT} "
            "(or put it in the torch hub cache)."
        ) from exc
    return cached


def _explicit_vgg(explicit: str | os.PathLike | None) -> Path | None:
    """The explicit path, else ``$HOLEFILL_VGG_WEIGHTS``, else None; a named file must exist."""
    from holefill.paths import vgg_weights_path

    path = vgg_weights_path(explicit)
    if path is None:
        return None
    if not path.is_file():
        source = "--vgg-weights" if explicit else "HOLEFILL_VGG_WEIGHTS"
        raise WeightsError(f"{path}: VGG weights file not found (given by {source})")
    return path


def vgg19_file(
    explicit: str | os.PathLike | None = None, *, download: bool = False, download_hint: str = ""
) -> Path:
    """The VGG-19 file to use: ``explicit``, else ``$HOLEFILL_VGG_WEIGHTS``, else torchvision's
    ``vgg19-dcbb9e9d.pth`` in the torch hub cache (downloaded there only with ``download``).

    Either layout works with :func:`holefill.nn.vgg.build_feature_net`: holefill's Caffe VGG-19
    (``conv1_1.weight`` ..., e.g. ``vgg19_to_relu4_1.pth``) or torchvision's (``features.N``).

    Raises
    ------
    WeightsError
        No file found (the message says how to give one), or a named file that does not exist.
    """
    found = _explicit_vgg(explicit)
    return found or published_file("VGG-19", download=download, download_hint=download_hint)


def vgg16_file(
    explicit: str | os.PathLike | None = None, *, download: bool = False, download_hint: str = ""
) -> Path:
    """The VGG-16 file (torchvision's ``vgg16-397923af.pth``), found as :func:`vgg19_file` does."""
    found = _explicit_vgg(explicit)
    return found or published_file("VGG-16", download=download, download_hint=download_hint)


# ---------------------------------------------------------------------------------------------
# The network cache
# ---------------------------------------------------------------------------------------------

_NETWORKS: OrderedDict[tuple, torch.nn.Module] = OrderedDict()


def cached_network(
    kind: str,
    path: str | os.PathLike | None,
    device: torch.device,
    build: Callable[[], torch.nn.Module],
    *options: Hashable,
) -> torch.nn.Module:
    """The network ``build()`` makes, built once per file version, device and options.

    The key is ``kind``, the file's resolved path, modification time and size (a rewritten file
    is loaded again), the device and ``options``; the :data:`CACHE_SIZE` most recently used
    networks are kept. A file shipped in the package is checked against its provenance note's
    sha256 the first time it is loaded.

    Parameters
    ----------
    kind : str
        What is built (``"pconv"``, ``"content"``, ``"vgg19"``).
    path : path or None
        The weights file (None for a network without one).
    device : torch.device
    build : callable
        ``() -> torch.nn.Module``, run on a cache miss.
    *options : hashable
        Anything else the network depends on (e.g. VGG taps).
    """
    file_key: tuple = ()
    if path is not None:
        path = Path(path).resolve()
        if not path.is_file():
            raise WeightsError(f"{path}: weights file not found")
        stat = path.stat()
        file_key = (str(path), stat.st_mtime_ns, stat.st_size)
    key = (kind, *file_key, str(device), *options)
    network = _NETWORKS.get(key)
    if network is None:
        if path is not None:
            _check_packaged(path)
        network = _NETWORKS[key] = build()
        while len(_NETWORKS) > CACHE_SIZE:
            _NETWORKS.popitem(last=False)
    _NETWORKS.move_to_end(key)
    return network


def clear_cache() -> None:
    """Forget every cached network (their memory is freed once no inpainter holds them)."""
    _NETWORKS.clear()
