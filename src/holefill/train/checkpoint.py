"""Training checkpoints: written atomically, the last few kept, a ``latest`` pointer.

Layout of a run folder::

    RUN/checkpoints/step_00001000.pt   model, optimiser, grad scaler, RNG states, step, stream,
                                       the plug-in's ``kind`` (``pconv`` when absent)
    RUN/checkpoints/latest             the name of the newest complete checkpoint

A checkpoint is written to a temporary file beside its final name, flushed to disk and renamed
into place (``os.replace``), then the pointer is replaced the same way, so a run killed at any
moment leaves the previous checkpoint intact. Files hold only tensors and plain data, so they load
with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
import random
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from holefill.errors import InputError, WeightsError

CHECKPOINT_DIR = "checkpoints"
LATEST = "latest"
FORMAT = "holefill-pconv-train"
_NAME = re.compile(r"^step_(\d+)\.pt$")


def checkpoint_name(step: int) -> str:
    return f"step_{int(step):08d}.pt"


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temp file beside ``path``, fsync, then rename into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as temp_file:
            torch.save(obj, temp_file)
            temp_file.flush()
            os.fsync(temp_file.fileno())
        os.replace(temp_name, path)
    except BaseException:
        if os.path.exists(temp_name):
            os.unlink(temp_name)
        raise
    _fsync_dir(path.parent)
    return path


def _atomic_text(path: Path, text: str) -> None:
    from holefill.io import atomic_write_bytes

    atomic_write_bytes(path, text.encode())
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_checkpoint(run_dir: str | os.PathLike, state: dict[str, Any], *, keep: int = 2) -> Path:
    """Write ``state`` (with an integer ``"step"``) as the run's newest checkpoint.

    The ``latest`` pointer moves to it, then all but the ``keep`` newest checkpoints are deleted.
    """
    folder = Path(run_dir) / CHECKPOINT_DIR
    path = atomic_save({"format": FORMAT, **state}, folder / checkpoint_name(state["step"]))
    _atomic_text(folder / LATEST, path.name + "\n")
    for old in list_checkpoints(run_dir)[: -max(1, keep)]:
        if old != path:
            old.unlink(missing_ok=True)
    return path


def list_checkpoints(run_dir: str | os.PathLike) -> list[Path]:
    """The run's checkpoint files, oldest step first."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The checkpoint ``latest`` names, else the highest-step file, else None."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    pointer = folder / LATEST
    if pointer.is_file():
        target = folder / pointer.read_text().strip()
        if target.is_file():
            return target
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def load_checkpoint(
    path: str | os.PathLike,
    map_location: str | torch.device = "cpu",
    *,
    kind: str | None = None,
) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Parameters
    ----------
    path : path
    map_location : str or torch.device
    kind : str, optional
        The trainer plug-in the checkpoint must come from (``"pconv"``, ``"content"``). A
        checkpoint without a ``kind`` entry is a PConv one (written before plug-ins had names).

    Raises
    ------
    InputError
        No such file.
    WeightsError
        Not a readable holefill training checkpoint, or one of another kind.
    """
    path = Path(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise InputError(f"{path}: checkpoint not found") from None
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        raise WeightsError(f"{path}: not a readable checkpoint ({exc})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise WeightsError(f"{path}: not a holefill training checkpoint")
    found = checkpoint_kind(state)
    if kind is not None and found != kind:
        raise WeightsError(f"{path}: a {found} checkpoint, not a {kind} one (a {found} run?)")
    return state


def checkpoint_kind(state: dict[str, Any]) -> str:
    """The plug-in a checkpoint comes from; PConv for checkpoints older than the ``kind`` entry."""
    return str(state.get("kind", "pconv"))


def run_kind(run_dir: str | os.PathLike) -> str | None:
    """The plug-in of a run folder's latest checkpoint (memory-mapped, not read); None if none."""
    path = latest_checkpoint(run_dir)
    if path is None:
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        raise WeightsError(f"{path}: not a readable checkpoint ({exc})") from None
    return checkpoint_kind(state) if isinstance(state, dict) else None


def load_model_state(net: torch.nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    """``net.load_state_dict(state)`` of a checkpoint; a mismatch is a one-line
    :class:`WeightsError` naming the checkpoint."""
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise WeightsError(
            f"{path} does not fit the configured model (did model.* change?): "
            f"{str(exc).splitlines()[0]}"
        ) from None


def resolve_checkpoint(run_dir_or_ckpt: str | os.PathLike) -> Path:
    """A checkpoint file itself, or the latest checkpoint of a run folder."""
    path = Path(run_dir_or_ckpt)
    if path.is_file():
        return path
    if path.is_dir():
        found = latest_checkpoint(path)
        if found is not None:
            return found
        raise InputError(f"{path}: this run folder has no checkpoint yet")
    raise InputError(f"{path}: no such run folder or checkpoint")


# ---------------------------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------------------------


def write_export(
    state_dict: dict[str, torch.Tensor],
    train_config: dict[str, Any],
    step: int,
    out_path: str | os.PathLike,
    *,
    dtype: str = "float16",
) -> Path:
    """Write the network as safetensors (config, step and hash in the header) plus a JSON file
    beside it (same name, ``.json``) with the config needed to rebuild it."""
    import json

    from holefill import __version__
    from holefill.methods.pconv import read_pconv, save_pconv
    from holefill.nn.unet import PConvConfig

    model_config = PConvConfig.from_dict(train_config["model"])
    metadata = {
        "step": str(step),
        "train_config": json.dumps(train_config),
        "holefill_version": __version__,
    }
    out_path = save_pconv(state_dict, model_config, out_path, dtype=dtype, metadata=metadata)
    _, _, header = read_pconv(out_path)
    sidecar = {
        "format": header["format"],
        "config": model_config.to_dict(),
        "step": step,
        "dtype": dtype,
        "weights_sha256": header["weights_sha256"],
    }
    _atomic_text(out_path.with_suffix(".json"), json.dumps(sidecar, indent=2) + "\n")
    return out_path


def export_pconv(
    run_dir_or_ckpt: str | os.PathLike, out_path: str | os.PathLike, dtype: str = "float16"
) -> Path:
    """Export a run's latest checkpoint (or a checkpoint file) as PConv inference weights.

    Parameters
    ----------
    run_dir_or_ckpt : path
        A run folder (its ``latest`` checkpoint is used) or a checkpoint file.
    out_path : path
        The ``.safetensors`` file to write; a ``.json`` with the network config goes beside it.
    dtype : {"float16", "bfloat16", "float32"}
        Storage type of the floating tensors.

    Returns
    -------
    pathlib.Path
        ``out_path``.
    """
    state = load_checkpoint(resolve_checkpoint(run_dir_or_ckpt), kind="pconv")
    return write_export(state["model"], state["config"], int(state["step"]), out_path, dtype=dtype)


# ---------------------------------------------------------------------------------------------
# Random states
# ---------------------------------------------------------------------------------------------


def capture_rng_state() -> dict[str, Any]:
    """Python, numpy, torch (and CUDA) global random states as checkpointable plain data."""
    numpy_state = np.random.get_state(legacy=False)
    state = {
        "python": random.getstate(),
        "numpy": {
            **numpy_state,
            "state": {
                "key": numpy_state["state"]["key"].tolist(),
                "pos": int(numpy_state["state"]["pos"]),
            },
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Undo :func:`capture_rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy_state = dict(state["numpy"])
    numpy_state["state"] = {
        "key": np.asarray(numpy_state["state"]["key"], dtype=np.uint32),
        "pos": numpy_state["state"]["pos"],
    }
    np.random.set_state(numpy_state)
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = state["cuda"][: torch.cuda.device_count()]
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda_states])


__all__ = [
    "save_checkpoint",
    "load_checkpoint",
    "checkpoint_kind",
    "run_kind",
    "load_model_state",
    "latest_checkpoint",
    "list_checkpoints",
    "resolve_checkpoint",
    "atomic_save",
    "export_pconv",
    "write_export",
    "capture_rng_state",
    "restore_rng_state",
]
