"""The command line: exit codes, one-line errors, nothing written on failure."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from holefill.cli import main


@pytest.fixture
def files(tmp_path, smooth_image, square_hole):
    Image.fromarray(smooth_image).save(tmp_path / "photo.png")
    Image.fromarray((square_hole * 255).astype(np.uint8)).save(tmp_path / "mask.png")
    return tmp_path


def _run(args, capsys):
    code = main([str(a) for a in args])
    return code, capsys.readouterr()


def test_fill_one_image(files, capsys, smooth_image, square_hole):
    code, _ = _run(
        [
            "fill",
            files / "photo.png",
            "--mask",
            files / "mask.png",
            "-o",
            files / "out.png",
            "--method",
            "telea",
        ],
        capsys,
    )
    assert code == 0
    out = np.asarray(Image.open(files / "out.png"))
    assert np.array_equal(out[~square_hole], smooth_image[~square_hole])


def test_fill_concat_and_options(files, capsys):
    code, _ = _run(
        [
            "fill",
            files / "photo.png",
            "--mask",
            files / "mask.png",
            "-o",
            files / "c.jpg",
            "--method",
            "telea",
            "--radius",
            "5",
            "--concat",
            "--quality",
            "80",
        ],
        capsys,
    )
    assert code == 0 and Image.open(files / "c.jpg").size == (64 * 3, 48)


def test_fill_folder_with_mask_folder(files, capsys, smooth_image):
    (files / "in" / "sub").mkdir(parents=True)
    (files / "masks" / "sub").mkdir(parents=True)
    for name in ("a", "b"):
        Image.fromarray(smooth_image).save(files / "in" / "sub" / f"{name}.jpg")
        Image.open(files / "mask.png").save(files / "masks" / "sub" / f"{name}.png")
    code, _ = _run(
        [
            "fill",
            files / "in",
            "--mask",
            files / "masks",
            "-o",
            files / "out",
            "-m",
            "navier_stokes",
        ],
        capsys,
    )
    assert code == 0
    assert sorted(p.name for p in (files / "out" / "sub").iterdir()) == ["a.png", "b.png"]


@pytest.mark.parametrize(
    "problem, expected",
    [
        ("missing_image", "no such file"),
        ("bad_image", "not an image"),
        ("size_mismatch", "mask is 10x10 but the image is 64x48"),
        ("full_mask", "nothing to fill from"),
        ("bad_method", "unknown method"),
        ("bad_option", "has no option"),
        ("exists", "exists; pass --overwrite"),
    ],
)
def test_errors_exit_2_with_one_line_and_write_nothing(files, capsys, problem, expected):
    image, mask, out = files / "photo.png", files / "mask.png", files / "result.png"
    extra: list[str] = ["--method", "telea"]
    if problem == "missing_image":
        image = files / "nope.png"
    elif problem == "bad_image":
        image = files / "bad.png"
        image.write_bytes(b"\x89PNG garbage")
    elif problem == "size_mismatch":
        Image.new("L", (10, 10), 255).save(mask := files / "small.png")
    elif problem == "full_mask":
        Image.new("L", (64, 48), 255).save(mask := files / "full.png")
    elif problem == "bad_method":
        extra = ["--method", "magic"]
    elif problem == "bad_option":
        extra = ["--method", "telea", "-p", "patch_size=5"]
    elif problem == "exists":
        out.write_bytes(b"precious")
    before = sorted(p.name for p in files.iterdir())
    code, captured = _run(["fill", image, "--mask", mask, "-o", out, *extra], capsys)
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("holefill: error:") and expected in lines[0]
    assert sorted(p.name for p in files.iterdir()) == before
    if problem == "exists":
        assert out.read_bytes() == b"precious"


def test_methods_lists_each_with_options(capsys):
    code, captured = _run(["methods"], capsys)
    assert code == 0 and "telea" in captured.out and "radius=3.0" in captured.out


def test_help_is_fast_and_light():
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "holefill", "--help"], capture_output=True, text=True, check=True
    )
    assert time.perf_counter() - start < 3.0 and "fill" in result.stdout
    probe = (
        "import sys, holefill.cli; holefill.cli._build_parser(); "
        "print(sorted(m for m in ('torch', 'cv2', 'skimage') if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "[]"
