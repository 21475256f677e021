"""The project's shared data folder, for benchmarks and scripts run from a clone.

``$HOLEFILL_SHARED``, else ``../shared`` beside the repository. holefill itself never looks there
(it finds files through options and environment variables only); importing this module points
``HOLEFILL_VGG_WEIGHTS`` at the shared VGG-19 when that variable is unset and the file exists, as
``tests/conftest.py`` does for the tests.
"""

from __future__ import annotations

import os
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """``$HOLEFILL_SHARED``, else ``../shared`` beside the repository."""
    return Path(os.environ.get("HOLEFILL_SHARED") or REPOSITORY.parent / "shared")


def shared_vgg19() -> Path:
    """The shared VGG-19 (conv1_1 ... conv4_1, original Caffe weights)."""
    return shared_dir() / "weights" / "vgg19_to_relu4_1.pth"


if shared_vgg19().is_file():
    os.environ.setdefault("HOLEFILL_VGG_WEIGHTS", str(shared_vgg19()))
