"""The registry as users meet it: fresh interpreters, `holefill methods`, readiness and its reasons.

Each method registers itself in its own file; these tests run holefill in new processes, because
pytest's own imports (``importlib.util``, torch...) hide what a user's interpreter lacks.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import holefill
from holefill.errors import InputError, UnknownMethodError
from holefill.registry import MethodName, describe_methods, list_methods

ALL_METHODS = {
    "biharmonic",
    "criminisi",
    "navier_stokes",
    "neural_patch",
    "patchmatch",
    "pconv",
    "telea",
}


def _environment(tmp_path: Path, vgg: str | None = None) -> dict[str, str]:
    """A user's environment: no VGG file named, an empty torch hub cache, one thread."""
    env = {k: v for k, v in os.environ.items() if k != "HOLEFILL_VGG_WEIGHTS"}
    env.update(TORCH_HOME=str(tmp_path / "torch-home"), OMP_NUM_THREADS="1")
    if vgg:
        env["HOLEFILL_VGG_WEIGHTS"] = vgg
    return env


def _python(code: str, tmp_path: Path) -> list[str]:
    """Lines printed by ``python -c code`` in a user's environment (exit status 0 checked)."""
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=_environment(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.splitlines()


def test_list_methods_in_a_fresh_interpreter(tmp_path):
    """``import holefill`` imports no method (nor torch, nor OpenCV); ``list_methods()`` then
    lists all seven, every one ready with no VGG-19 file anywhere (neural_patch's default texture
    comes from the photo's patches; only ``texture="neural"`` needs VGG-19), with no download."""
    code = (
        "import sys, holefill\n"
        "print(sorted(m for m in ('torch', 'cv2', 'numba', 'holefill.methods.telea')"
        " if m in sys.modules))\n"
        "methods = holefill.list_methods()\n"
        "print(methods)\n"
        "for m in methods: print(m, m.ready, m.reason, sep='|')\n"
    )
    lines = _python(code, tmp_path)
    assert lines[0] == "[]"  # import holefill is light
    assert "not ready" not in lines[1]
    status = {line.split("|")[0]: line.split("|")[1:] for line in lines[2:]}
    assert set(status) == ALL_METHODS
    assert {name for name, (ready, _) in status.items() if ready == "True"} == ALL_METHODS
    assert not (tmp_path / "torch-home").exists()  # nothing was downloaded


def test_a_missing_vgg19_file_is_a_reason_that_says_how_to_fix_it(tmp_path, monkeypatch):
    """The VGG-19 requirement (``texture="neural"``, training losses) explains itself: no file
    named, an empty torch hub cache -> the flags and the download option; a named file -> none."""
    from holefill.registry import VGG19File

    monkeypatch.delenv("HOLEFILL_VGG_WEIGHTS", raising=False)
    monkeypatch.setattr("torch.hub.get_dir", lambda: str(tmp_path))
    reason = VGG19File().problem()
    for part in ("--vgg-weights", "HOLEFILL_VGG_WEIGHTS", "download_vgg=true"):
        assert part in reason
    vgg = tmp_path / "vgg19_to_relu4_1.pth"
    vgg.write_bytes(b"any file: readiness only looks for one")
    monkeypatch.setenv("HOLEFILL_VGG_WEIGHTS", str(vgg))
    assert VGG19File().problem() is None
    assert sorted(path.name for path in tmp_path.iterdir()) == [vgg.name]  # nothing downloaded


def test_create_inpainter_and_inpaint_in_a_fresh_interpreter(tmp_path):
    """The first thing a user runs: no torch imported beforehand, a method found by name."""
    code = (
        "import numpy as np, holefill\n"
        "image = np.full((24, 24, 3), 90, np.uint8); hole = np.zeros((24, 24), bool)\n"
        "hole[8:12, 8:12] = True\n"
        "print(holefill.inpaint(image, hole, method='telea')[10, 10].tolist())\n"
        "print(type(holefill.create_inpainter('criminisi', patch_size=9)).__name__)\n"
    )
    assert _python(code, tmp_path) == ["[90, 90, 90]", "CriminisiInpainter"]


def test_holefill_methods_command_says_ready_or_why_not(tmp_path):
    """The console script, as installed, with no VGG-19 file: every method ready, each with its
    options (neural_patch's VGG-19 download stays off unless asked for)."""
    command = shutil.which("holefill", path=str(Path(sys.executable).parent)) or "holefill"
    done = subprocess.run(
        [command, "methods"], env=_environment(tmp_path), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    rows = {line.split()[0]: line for line in lines if line and not line.startswith(" ")}
    assert set(rows) == ALL_METHODS
    for row in rows.values():
        assert row.split()[1] == "ready", row
    assert "NOT READY" not in done.stdout
    assert "options: " in done.stdout and "download_vgg=False" in done.stdout
    assert "texture='patch'" in done.stdout


def test_a_method_whose_package_is_missing_is_listed_as_not_ready(tmp_path):
    """Without numba (blocked in a fresh interpreter), patchmatch and criminisi say so; the others
    still work."""
    code = (
        "import sys; sys.modules['numba'] = None\n"  # makes `import numba` fail
        "import holefill\n"
        "for m in holefill.list_methods(): print(m, m.ready, m.reason, sep='|')\n"
        "try:\n"
        "    holefill.create_inpainter('patchmatch')\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc, sep='|')\n"
    )
    status = {line.split("|")[0]: line.split("|")[1:] for line in _python(code, tmp_path)}
    for name in ("patchmatch", "criminisi"):
        ready, reason = status[name]
        assert ready == "False" and "cannot be imported" in reason and "numba" in reason
    assert status["telea"][0] == "True"
    assert status["InputError"][0].startswith("method 'patchmatch' cannot be imported")


def test_names_are_plain_strings_that_carry_readiness():
    methods = list_methods()
    assert methods == sorted(methods) and set(methods) >= ALL_METHODS
    telea = methods[methods.index("telea")]
    assert isinstance(telea, MethodName) and telea == "telea" and repr(telea) == "'telea'"
    assert telea.ready and telea.reason == "" and "Telea" in telea.summary
    waiting = MethodName("x", ready=False, reason="needs y")
    assert repr(waiting) == "'x' (not ready: needs y)" and {waiting: 1}["x"] == 1
    entries = {entry.name: entry for entry in describe_methods()}
    assert entries["pconv"].target == "holefill.methods.pconv:PConvInpainter"
    assert [str(need) for need in entries["pconv"].needs] == ["packaged pconv_default.safetensors"]


def test_unknown_names_and_options_are_one_line_errors():
    with pytest.raises(UnknownMethodError, match="unknown method 'nope'; available: biharmonic"):
        holefill.create_inpainter("nope")
    with pytest.raises(UnknownMethodError, match="unknown method"):
        holefill.create_inpainter("../telea")
    with pytest.raises(InputError, match="method 'telea' has no option patch_size; options: "):
        holefill.create_inpainter("telea", patch_size=3)


def test_a_missing_packaged_weights_file_makes_pconv_not_ready(monkeypatch, tmp_path):
    import holefill.paths

    monkeypatch.setattr(holefill.paths, "package_weights_dir", lambda: tmp_path)
    pconv = next(name for name in list_methods() if name == "pconv")
    assert not pconv.ready
    assert "pconv_default.safetensors are not installed" in pconv.reason
    assert "--weights FILE" in pconv.reason


def test_a_method_without_its_vgg_file_fails_in_one_line(tmp_path, monkeypatch):
    """What `holefill fill -m neural_patch -p texture=neural` says with no VGG-19 anywhere: no
    download."""
    from holefill.errors import WeightsError

    monkeypatch.delenv("HOLEFILL_VGG_WEIGHTS", raising=False)
    monkeypatch.setattr("torch.hub.get_dir", lambda: str(tmp_path))
    with pytest.raises(WeightsError) as info:
        holefill.create_inpainter("neural_patch", texture="neural")
    message = str(info.value)
    assert message.startswith("neural_patch: needs a VGG-19 file: pass --vgg-weights PATH")
    assert "download_vgg=true" in message and "\n" not in message
    assert list(tmp_path.iterdir()) == []
