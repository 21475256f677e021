"""Where holefill finds shared data and weights: settings with defaults, overridable by env vars."""

from __future__ import annotations

import os
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parents[2]


def shared_dir() -> Path:
    """The shared data folder: ``$HOLEFILL_SHARED``, else ``../shared`` beside the repository."""
    return Path(os.environ.get("HOLEFILL_SHARED", _REPO_ROOT.parent / "shared"))


def vgg_weights_path(explicit: str | os.PathLike | None = None) -> Path | None:
    """A local VGG weights file: the explicit path, else ``$HOLEFILL_VGG_WEIGHTS``, else None.

    One mechanism for every feature network in holefill (``--vgg-weights PATH`` on the CLI).
    """
    value = explicit or os.environ.get("HOLEFILL_VGG_WEIGHTS")
    return Path(value) if value else None


def default_local_vgg19() -> Path:
    """The VGG-19 (to relu4_1) file of the shared folder, used in tests and training here."""
    return shared_dir() / "weights" / "vgg19_to_relu4_1.pth"


def package_weights_dir() -> Path:
    return Path(__file__).resolve().parent / "weights"
