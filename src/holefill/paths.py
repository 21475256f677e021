"""Where holefill finds files: options and environment variables only, never the repository layout.

The package works the same from a clone and from a wheel: data and weights that are not shipped in
the package come through an option (``--vgg-weights``) or an environment variable
(``HOLEFILL_VGG_WEIGHTS``). Tests, benchmarks and scripts find the project's shared data folder
themselves (``tests/conftest.py``, ``benchmarks/shared_data.py``): that is a property of a clone,
not of holefill.
"""

from __future__ import annotations

import os
from pathlib import Path


def vgg_weights_path(explicit: str | os.PathLike | None = None) -> Path | None:
    """A VGG weights file the user named: ``explicit``, else ``$HOLEFILL_VGG_WEIGHTS``, else None.

    One mechanism for every feature network in holefill (``--vgg-weights PATH`` on the CLI);
    :func:`holefill.weights.vgg19_file` adds the torch hub cache and the optional download.
    """
    value = explicit or os.environ.get("HOLEFILL_VGG_WEIGHTS")
    return Path(value).expanduser() if value else None


def package_weights_dir() -> Path:
    """The folder of the weights files shipped in the package (``holefill/weights``)."""
    return Path(__file__).resolve().parent / "weights"
