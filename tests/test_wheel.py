"""holefill as a user installs it: a wheel built from this checkout, installed into a fresh virtual
environment outside the clone, fills the bundled example with every method that needs no download.

The wheel is built offline (``pip wheel --no-deps --no-build-isolation``) from a copy of the
package files, and installed with ``--no-deps --no-index``; the fresh environment reaches the
already-installed dependencies (torch, OpenCV, ...) through a ``.pth`` line naming this
environment's site-packages, which does not bring this checkout's editable install along (the
test checks where ``holefill`` is imported from). ``neural_patch`` runs with its default
``texture="patch"`` (no VGG-19 file needed).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: every method that fills with what the wheel ships
OFFLINE_METHODS = (
    "pconv",
    "neural_patch",
    "telea",
    "navier_stokes",
    "biharmonic",
    "patchmatch",
    "criminisi",
)

pytestmark = pytest.mark.slow  # about a minute: a build, an install, numba compiling afresh


def _check(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, **kwargs)
    assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh virtual environment with holefill installed from a wheel; returns its folder."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    shutil.copytree(ROOT / "src", source / "src", ignore=ignore)
    pip = [sys.executable, "-m", "pip"]
    _check([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
            "-w", str(work / "dist"), str(source)])  # fmt: skip
    (wheel,) = (work / "dist").glob("holefill-*.whl")
    venv = work / "venv"
    _check([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    site = _check([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"])
    deps = Path(sysconfig.get_path("purelib"))  # this environment's dependencies
    (Path(site.stdout.strip()) / "_holefill_test_deps.pth").write_text(f"{deps}\n")
    _check([*pip, "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)])
    return venv


def test_the_wheel_fills_the_example_with_every_offline_method(installed, tmp_path):
    examples = tmp_path / "examples"  # a user's folder, outside the clone
    shutil.copytree(ROOT / "examples", examples)
    env = {"PATH": f"{installed / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    python = str(installed / "bin" / "python")
    where = _check([python, "-c", "import holefill; print(holefill.__file__)"], env=env)
    assert where.stdout.strip().startswith(str(installed)), where.stdout
    listed = _check([str(installed / "bin" / "holefill"), "methods"], env=env, cwd=tmp_path)
    for method in OFFLINE_METHODS:
        assert method in listed.stdout
    for method in OFFLINE_METHODS:
        done = _check(
            [str(installed / "bin" / "holefill"), "fill", "examples/astronaut.jpg",
             "--mask", "examples/astronaut_mask.png", "-o", f"{method}.png", "-m", method],
            env=env,
            cwd=tmp_path,
        )  # fmt: skip
        assert done.stdout.split()[:2] == [f"{method}.png", method]
    from PIL import Image

    for method in OFFLINE_METHODS:
        with Image.open(tmp_path / f"{method}.png") as image:
            assert image.size == (512, 512) and image.mode == "RGB"
