"""The README as users run it: every code block and every command, outside pytest's process.

Python blocks run verbatim in a fresh interpreter (``python -c``) with a clean environment: no
variables but ``PATH``, ``HOME`` and ``PYTHONPATH`` (this checkout's ``src``), so nothing pytest or
its plugins import can hide a missing import (issue 18: ``importlib.util``). Shell commands run
verbatim as subprocesses -- the ``holefill`` console script -- in a sandbox folder that holds the
files they name (``photo.jpg``, ``photos/``, ...). Every command of the README is either run
verbatim or listed below with what runs instead and why: training and the server run until
stopped, so their ``--help`` answers for them; pip, pytest, ruff and CI are the development
setup, run by CI itself. A README command in neither list fails :func:`test_every_command_is_covered`.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SCRIPT_DIR = Path(sys.executable).parent

#: README command -> the command run instead, and why
VARIANTS: dict[str, tuple[str, str]] = {
    "holefill serve": ("holefill serve --help", "the server runs until stopped"),
    "holefill serve --host 0.0.0.0": (
        "holefill serve --help",
        "the server runs until stopped; test_serve_security.py starts it bound to 0.0.0.0",
    ),
    "holefill train pconv --data photos/ --val val/ --config pconv_default --out runs/pconv": (
        "holefill train pconv --help",
        "training runs for hours",
    ),
    "holefill train pconv --data ../shared/data/train/imagenette224 --val "
    "../shared/data/val/imagenet256 --config pconv_default --out runs/pconv --device cuda": (
        "holefill train pconv --help",
        "training runs for hours on a GPU",
    ),
    "torchrun --nproc_per_node 4 -m holefill.train.cli pconv ...": (
        "python -m holefill.train.cli pconv --help",
        "training runs for hours on several GPUs",
    ),
    "holefill train pconv ... --init pconv.safetensors --out runs/pconv2": (
        "holefill train pconv --help",
        "training runs for hours",
    ),
    "holefill train export runs/pconv -o pconv.safetensors": (
        "holefill train export --help",
        "needs a training run",
    ),
    "holefill batch --manifest jobs.parquet --out s3://bucket/filled --engine ray --address auto": (
        "holefill batch --manifest jobs.parquet --out manifest_out",
        "needs a Ray cluster and a bucket; the Ray engine is tested in test_batch_ray.py",
    ),
}
#: README commands not run here, and why
NOT_RUN = {
    "pip install -c constraints.txt .": "installs the package (the wheel test installs one)",
    'pip install -c constraints.txt -e ".[test]"': "the development install this suite runs in",
    "python -m pytest": "this test suite",
    "python -m pytest -m slow": "this test suite's slow checks",
    "ruff check .": "the lint check CI runs",
    "ruff format --check .": "the format check CI runs",
    "bash .ci/run": "CI itself",
}


def _blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", README.read_text(), re.S | re.M)


def _commands(block: str) -> list[str]:
    """The commands of a shell block: continuation lines joined, comments and ``&&`` split."""
    joined = re.sub(r"\\\n\s*", " ", block)
    commands = []
    for line in joined.splitlines():
        line = re.split(r"(?:^|\s+)#\s", line, maxsplit=1)[0].strip()
        commands += [part.strip() for part in line.split("&&") if part.strip()]
    return [" ".join(command.split()) for command in commands]


def _env(home: Path) -> dict[str, str]:
    env = {
        "PATH": f"{SCRIPT_DIR}{os.pathsep}/usr/bin{os.pathsep}/bin",
        "HOME": str(home),
        "PYTHONPATH": str(ROOT / "src"),
        "PYTHONNOUSERSITE": "1",
        "LANG": "C.UTF-8",
    }
    if "HOLEFILL_SHARED" in os.environ:
        env["HOLEFILL_SHARED"] = os.environ["HOLEFILL_SHARED"]
    return env


def _run(command: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    argv = shlex.split(command)
    if argv[0] in ("holefill", "python"):
        argv[0] = str(SCRIPT_DIR / argv[0]) if argv[0] == "holefill" else sys.executable
    return subprocess.run(
        argv, cwd=cwd, env=_env(cwd), capture_output=True, text=True, timeout=timeout
    )


def _small(path: Path, size: int) -> Image.Image:
    with Image.open(path) as image:
        return image.resize((size, size), Image.NEAREST if image.mode == "L" else Image.BICUBIC)


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """The files README commands name: photo.jpg, mask.png, photo.png (transparent hole),
    photos/ and masks/ matched by name (holes in two PConv bins), jobs.parquet, the example,
    and pconv.safetensors (a copy of the shipped weights)."""
    folder = tmp_path_factory.mktemp("readme")
    shutil.copytree(ROOT / "examples", folder / "examples")
    _small(ROOT / "examples" / "astronaut.jpg", 96).save(folder / "photo.jpg")
    _small(ROOT / "examples" / "astronaut_mask.png", 96).convert("L").save(folder / "mask.png")
    rgba = np.dstack([np.asarray(Image.open(folder / "photo.jpg")), np.full((96, 96), 255)])
    rgba[30:50, 40:60, 3] = 0
    Image.fromarray(rgba.astype(np.uint8), "RGBA").save(folder / "photo.png")
    (folder / "photos").mkdir()
    (folder / "masks").mkdir()
    for name, side in (("a", 20), ("b", 36)):  # hole ratios 0.04 and 0.14 of 96 x 96
        Image.open(folder / "photo.jpg").rotate(90 * (name == "b")).save(
            folder / f"photos/{name}.jpg"
        )
        hole = np.zeros((96, 96), np.uint8)
        hole[30 : 30 + side, 30 : 30 + side] = 255
        Image.fromarray(hole).save(folder / "masks" / f"{name}.png")
    pytest.importorskip("pyarrow")
    import pyarrow
    import pyarrow.parquet

    table = pyarrow.table({"image": ["photos/a.jpg", "photos/b.jpg"], "mask": ["masks/a.png"] * 2})
    pyarrow.parquet.write_table(table, folder / "jobs.parquet")
    shipped = ROOT / "src" / "holefill" / "weights" / "pconv_default.safetensors"
    if shipped.is_file():
        shutil.copy(shipped, folder / "pconv.safetensors")
    return folder


@pytest.fixture
def sandbox(template, tmp_path) -> Path:
    folder = tmp_path / "sandbox"
    shutil.copytree(template, folder)
    return folder


def _section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"\n## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def _section_commands(title: str) -> list[str]:
    blocks = re.findall(r"^```bash\n(.*?)^```", _section(title), re.S | re.M)
    return [command for block in blocks for command in _commands(block)]


def _run_all(commands: list[str], cwd: Path) -> None:
    for command in commands:
        if command in NOT_RUN:
            continue
        actual = VARIANTS.get(command, (command, ""))[0]
        done = _run(actual, cwd)
        assert done.returncode == 0, f"{actual}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        assert "Traceback" not in done.stderr, f"{actual}\n{done.stderr[-3000:]}"


# -- the tests -------------------------------------------------------------------------------------


#: the sections whose commands the tests below run (the first block is run too)
RUN_SECTIONS = (
    "Using it",
    "Quality: the PConv protocol",
    "Filling a large collection",
    "Training PConv",
    "Web page",
)


def test_every_command_is_covered():
    commands = [command for block in _blocks("bash") for command in _commands(block)]
    assert len(commands) >= 20
    run = set(_commands(_blocks("bash")[0]))
    for title in RUN_SECTIONS:
        run.update(_section_commands(title))
    uncovered = set(commands) - run - set(NOT_RUN)
    assert not uncovered, f"README commands no test runs: {uncovered}"
    stale = (set(VARIANTS) | set(NOT_RUN)) - set(commands)
    assert not stale, f"listed here but no longer in the README: {stale}"


def test_python_blocks_run_verbatim_in_a_fresh_interpreter(sandbox):
    blocks = _blocks("python")
    assert blocks, "the README has no Python example"
    for block in blocks:
        probe = block + "\nimport holefill as _h, sys as _s\nprint('FROM', _h.__file__)\n"
        done = subprocess.run(
            [sys.executable, "-c", probe],
            cwd=sandbox,
            env=_env(sandbox),
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, f"{block}\n{done.stderr[-3000:]}"
        assert f"FROM {ROOT / 'src' / 'holefill'}" in done.stdout  # this checkout, not another
    assert (sandbox / "astronaut_filled.png").is_file()


def test_first_command_writes_an_ignored_filled_png(sandbox):
    commands = _commands(_blocks("bash")[0])
    _run_all(commands, sandbox)
    with Image.open(sandbox / "filled.png") as panel:
        assert panel.size == (3 * 512, 512)  # input | mask | result
    if (ROOT / ".git").exists() and shutil.which("git"):
        ignored = subprocess.run(["git", "check-ignore", "-q", "filled.png"], cwd=ROOT)
        assert ignored.returncode == 0, "filled.png (the README's first command) is not ignored"


def test_using_it_commands(sandbox):
    """Every command of "Using it" but the bench (20 s: a pool of two processes that each import
    torch), which :func:`test_using_it_bench_command` runs among the slow checks."""
    commands = _section_commands("Using it")
    assert any("--dilate" in command for command in commands)
    _run_all([command for command in commands if not command.startswith("holefill bench")], sandbox)
    for name in ("out.png", "out.jpg", "grown.png", "filled/a.png", "filled/b.png", "opaque.png"):
        assert (sandbox / name).is_file(), name
    assert sorted(p.name for p in (sandbox / "batch_out").glob("*.png")) == ["a.png", "b.png"]


@pytest.mark.slow
def test_using_it_bench_command(sandbox):
    _run_all([c for c in _section_commands("Using it") if c.startswith("holefill bench")], sandbox)
    assert (sandbox / "report" / "summary.md").is_file()


@pytest.mark.slow
def test_collection_and_training_commands(sandbox):
    _run_all(_section_commands("Filling a large collection"), sandbox)
    assert (sandbox / "filled" / "a.png").is_file()
    assert (sandbox / "manifest_out" / "photos" / "b.png").is_file()
    _run_all(_section_commands("Training PConv"), sandbox)
    assert (sandbox / "out.png").is_file()  # the fill with --weights pconv.safetensors


def test_web_page_commands(sandbox):
    _run_all(_section_commands("Web page"), sandbox)


@pytest.mark.slow
def test_bench_command_in_a_small_variant(sandbox):
    """The README's bench command with one pair per group and one method, on the shared data."""
    shared = Path(os.environ.get("HOLEFILL_SHARED", ROOT.parent / "shared"))
    if not (shared / "data" / "masks" / "nvidia_irregular").is_dir():
        pytest.skip("no shared data")
    (command,) = _section_commands("Quality: the PConv protocol")
    small = command.replace("--per-bin 10", "--per-bin 1").replace("--grids 2", "--grids 0")
    small = re.sub(r"--methods \S+", "--methods telea", small).replace("../shared", str(shared))
    done = _run(small + " --no-vgg", sandbox)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (sandbox / "runs" / "bench256" / "summary.md").is_file()
