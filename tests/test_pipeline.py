"""The one path from input to output: the mask rule, grow/shrink, grey and 16-bit photos, the empty
mask, the pixel limit and the flags, checked through every entry point (CLI, API, serve, batch)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

import holefill
from holefill.batch import BatchJob, FillSettings, read_results, run_batch
from holefill.cli import main
from holefill.errors import InputError
from holefill.mask_rule import to_hole
from holefill.pipeline import MaskOptions, OutputOptions, fill_image, read_hole

ROOT = Path(__file__).resolve().parents[1]


def _cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _serve_client(method: str):
    pytest.importorskip("fastapi")
    pytest.importorskip("python_multipart")
    from fastapi.testclient import TestClient

    from holefill.serve import ServeConfig, create_app

    return TestClient(create_app(ServeConfig(method=method)), base_url="http://127.0.0.1:8080")


def _png(array: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", array[..., ::-1] if array.ndim == 3 else array)
    assert ok
    return data.tobytes()


def _serve(method: str, image: bytes, mask: bytes, **data):
    with _serve_client(method) as client:
        files = {"image": ("i.png", image, "image/png"), "mask": ("m.png", mask, "image/png")}
        return client.post("/api/inpaint", files=files, data=data)


def _batch(tmp_path: Path, image: Path, mask: Path, method: str, suffix: str = ".png") -> Path:
    out = tmp_path / "batch_out"
    job = BatchJob(
        out=str(out),
        settings=FillSettings(method, suffix=suffix),
        images=[str(image)],
        masks=str(mask),
        workers=0,
        progress=False,
    )
    assert run_batch(job).failed == 0
    return out / image.with_suffix(suffix).name


# -- the mask rule -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [  # hand-worked: above 127 on the 8-bit scale is a hole
        (np.array([0, 50, 127, 128, 255], np.uint8), [0, 0, 0, 1, 1]),
        (np.array([0, 50 * 257, 32767, 32768, 65535], np.uint16), [0, 0, 0, 1, 1]),
        (np.array([0.0, 50 / 255, 0.5, 0.5001, 1.0], np.float32), [0, 0, 0, 1, 1]),
        (np.array([0, 50, 127, 128, 255], np.int64), [0, 0, 0, 1, 1]),
        (np.array([False, True]), [0, 1]),
        (torch.tensor([0.0, 50 / 255, 0.5, 0.51, 1.0]), [0, 0, 0, 1, 1]),
        (torch.tensor([0, 50, 127, 128, 255], dtype=torch.uint8), [0, 0, 0, 1, 1]),
        (torch.tensor([False, True]), [0, 1]),
    ],
)
def test_the_mask_rule_on_every_kind(values, expected):
    hole = to_hole(values[None] if isinstance(values, np.ndarray) else values)
    assert np.asarray(hole).reshape(-1).astype(int).tolist() == expected
    inverted = to_hole(values[None] if isinstance(values, np.ndarray) else values, invert=True)
    assert np.asarray(inverted).reshape(-1).astype(int).tolist() == [1 - v for v in expected]


def test_a_mask_of_value_50_means_the_same_as_array_file_pil_and_tensor(tmp_path, smooth_image):
    values = np.full((48, 64), 50, np.uint8)
    values[18:28, 24:36] = 200
    expected = values > 127
    Image.fromarray(values).save(tmp_path / "m8.png")
    cv2.imwrite(str(tmp_path / "m16.png"), values.astype(np.uint16) * 257)
    Image.fromarray(np.dstack([values] * 3)).save(tmp_path / "rgb.png")
    kinds = {
        "uint8 array": values,
        "uint16 array": values.astype(np.uint16) * 257,
        "float array": values / 255.0,
        "tensor": torch.from_numpy(values / 255.0),
        "8-bit file": tmp_path / "m8.png",
        "16-bit file": tmp_path / "m16.png",
        "RGB file": tmp_path / "rgb.png",
        "PIL image": Image.fromarray(values),
        "file bytes": (tmp_path / "m8.png").read_bytes(),
    }
    for kind, mask in kinds.items():
        assert np.array_equal(read_hole(mask)[0], expected), kind
    by_array = holefill.inpaint(smooth_image, values, method="telea")
    by_file = holefill.inpaint(smooth_image, tmp_path / "m8.png", method="telea")
    assert np.array_equal(by_array, by_file)
    assert np.array_equal(by_array[~expected], smooth_image[~expected])
    assert not np.array_equal(by_array[expected], smooth_image[expected])


def test_colour_masks_use_pillows_luminance(tmp_path, rng):
    colour = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    reference = np.asarray(Image.fromarray(colour).convert("L")) > 127
    Image.fromarray(colour).save(tmp_path / "c.png")
    assert np.array_equal(to_hole(colour), reference)
    assert np.array_equal(read_hole(tmp_path / "c.png")[0], reference)


def test_integer_masks_out_of_range_are_refused():
    with pytest.raises(InputError, match="values 0-255"):
        to_hole(np.array([[0, 300]]))
    with pytest.raises(InputError, match="NaN"):
        to_hole(np.array([[0.0, np.nan]]))


# -- grow / shrink --------------------------------------------------------------------------------


def _blobs() -> np.ndarray:
    hole = np.zeros((60, 80), np.uint8)
    cv2.circle(hole, (25, 30), 9, 1, -1)
    cv2.rectangle(hole, (50, 10), (70, 22), 1, -1)
    hole[45, 60] = 1  # a single pixel: gone after shrinking
    return hole


@pytest.mark.parametrize("dilate", [3, -2, 0])
def test_dilate_grows_and_shrinks_as_opencv_does(dilate, smooth_image):
    hole = _blobs()
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * abs(dilate) + 1,) * 2)
    if dilate > 0:
        expected = cv2.dilate(hole, kernel).astype(bool)
    elif dilate < 0:
        expected = cv2.erode(hole, kernel).astype(bool)
    else:
        expected = hole.astype(bool)
    photo = cv2.resize(smooth_image, (80, 60))
    result = fill_image(photo, hole.astype(bool), "telea", mask_options=MaskOptions(dilate=dilate))
    assert np.array_equal(result.hole, expected)
    assert np.array_equal(result.pixels[~expected], photo[~expected])
    out = holefill.inpaint(photo, hole.astype(bool), method="telea", dilate=dilate)
    assert np.array_equal(out, result.pixels)


def test_dilate_on_the_command_line(tmp_path, capsys, smooth_image):
    photo = cv2.resize(smooth_image, (80, 60))
    Image.fromarray(photo).save(tmp_path / "p.png")
    Image.fromarray(_blobs() * 255).save(tmp_path / "m.png")
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))
    expected = cv2.dilate(_blobs(), kernel).astype(bool)
    code, _, err = _cli(
        capsys, "fill", tmp_path / "p.png", "--mask", tmp_path / "m.png", "-o",
        tmp_path / "o.png", "-m", "telea", "--dilate", "4", "--concat", "--quiet",
    )  # fmt: skip
    assert code == 0, err
    panel = np.asarray(Image.open(tmp_path / "o.png"))
    assert np.array_equal(panel[:, 80:160, 0] == 255, expected)  # the mask panel
    with pytest.raises(InputError, match="whole number"):
        MaskOptions(dilate=1.5)


# -- grey in, grey out ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gray_photo(tmp_path_factory) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    """A 128x128 grey astronaut with a 40x40 hole on the face, as files and arrays."""
    folder = tmp_path_factory.mktemp("gray")
    gray = Image.open(ROOT / "examples" / "astronaut.jpg").convert("L").resize((128, 128))
    gray.save(folder / "gray.png")
    hole = np.zeros((128, 128), bool)
    hole[20:60, 40:80] = True
    Image.fromarray(hole.astype(np.uint8) * 255).save(folder / "hole.png")
    return folder / "gray.png", folder / "hole.png", np.asarray(gray), hole


def _is_gray(image: Image.Image) -> bool:
    rgb = np.asarray(image.convert("RGB")).astype(int)
    return image.mode in ("L", "I;16", "LA") and np.array_equal(rgb[..., 0], rgb[..., 2])


def test_pconv_alone_puts_colour_into_a_grey_photo(gray_photo):
    """Why the pipeline converts the hole back: the network fills grey with colours."""
    _, _, gray, hole = gray_photo
    image = torch.from_numpy(np.repeat(gray[None] / 255.0, 3, axis=0)).float()[None]
    out = holefill.create_inpainter("pconv").fill(image, torch.from_numpy(hole)[None, None])
    spread = (out.max(dim=1).values - out.min(dim=1).values)[0][torch.from_numpy(hole)]
    assert spread.max() * 255 > 2


def test_a_grey_photo_comes_back_grey_through_cli_api_serve_and_batch(gray_photo, tmp_path, capsys):
    image_path, mask_path, gray, hole = gray_photo
    code, _, err = _cli(
        capsys, "fill", image_path, "--mask", mask_path, "-o", tmp_path / "cli.png", "-m", "pconv"
    )
    assert code == 0, err
    outputs = {"cli": Image.open(tmp_path / "cli.png")}
    outputs["api path"] = holefill.inpaint(image_path, mask_path, method="pconv")
    outputs["api PIL"] = holefill.inpaint(Image.open(image_path), hole, method="pconv")
    response = _serve("pconv", image_path.read_bytes(), mask_path.read_bytes())
    assert response.status_code == 200, response.text
    outputs["serve"] = Image.open(io.BytesIO(response.content))
    outputs["batch"] = Image.open(_batch(tmp_path, image_path, mask_path, "pconv"))
    for where, image in outputs.items():
        assert _is_gray(image), f"{where}: mode {image.mode}"
        pixels = np.asarray(image)
        assert np.array_equal(pixels[~hole], gray[~hole]), where
        assert np.array_equal(pixels, np.asarray(outputs["cli"])), f"{where}: not one path"
    as_array = holefill.inpaint(gray, hole, method="pconv")
    assert as_array.shape == gray.shape and np.array_equal(as_array, np.asarray(outputs["cli"]))
    stored_rgb = holefill.inpaint(np.dstack([gray] * 3), hole, method="pconv")  # grey in RGB
    assert np.array_equal(stored_rgb[..., 0], stored_rgb[..., 1])
    assert np.array_equal(stored_rgb[..., 1], stored_rgb[..., 2])


# -- 16-bit in, 16-bit out --------------------------------------------------------------------------


@pytest.fixture
def photo16(tmp_path, smooth_image, square_hole) -> tuple[Path, Path, np.ndarray]:
    fine = smooth_image.astype(np.uint16) * 257 + np.arange(48)[:, None, None].astype(np.uint16)
    cv2.imwrite(str(tmp_path / "p16.png"), fine[..., ::-1])
    Image.fromarray(square_hole.astype(np.uint8) * 255).save(tmp_path / "m.png")
    return tmp_path / "p16.png", tmp_path / "m.png", fine


def _read16(data: bytes | Path) -> np.ndarray:
    raw = data.read_bytes() if isinstance(data, Path) else data
    decoded = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_UNCHANGED)
    return decoded[..., ::-1] if decoded.ndim == 3 else decoded


def _check16(pixels: np.ndarray, fine: np.ndarray, hole: np.ndarray, where: str) -> None:
    assert pixels.dtype == np.uint16, where
    assert np.array_equal(pixels[~hole], fine[~hole]), where
    assert (pixels[hole] % 257 != 0).any(), f"{where}: the fill has only 8-bit levels"


def test_a_16_bit_png_comes_back_16_bit_through_cli_api_serve_and_batch(
    photo16, tmp_path, capsys, square_hole
):
    image_path, mask_path, fine = photo16
    code, out, err = _cli(
        capsys, "fill", image_path, "--mask", mask_path, "-o", tmp_path / "o.png",
        "-m", "biharmonic",
    )  # fmt: skip
    assert code == 0, err
    _check16(_read16(tmp_path / "o.png"), fine, square_hole, "cli")
    _check16(holefill.inpaint(fine, square_hole, method="biharmonic"), fine, square_hole, "api")
    response = _serve("biharmonic", image_path.read_bytes(), mask_path.read_bytes())
    assert response.status_code == 200, response.text
    _check16(_read16(response.content), fine, square_hole, "serve")
    batch_out = _batch(tmp_path, image_path, mask_path, "biharmonic")
    _check16(_read16(batch_out), fine, square_hole, "batch")
    # where the format has 8 bits: rounded, value / 257 to the nearest level
    code, _, err = _cli(
        capsys, "fill", image_path, "--mask", mask_path, "-o", tmp_path / "o.bmp",
        "-m", "biharmonic",
    )  # fmt: skip
    eight = np.asarray(Image.open(tmp_path / "o.bmp"))
    assert code == 0 and eight.dtype == np.uint8
    assert np.array_equal(eight[~square_hole], np.rint(fine[~square_hole] / 257).astype(np.uint8))


def test_16_bit_grey_stays_16_bit_in_pil(tmp_path, square_hole):
    gray = (np.arange(48 * 64).reshape(48, 64) * 13 % 65536).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "g16.png"), gray)
    result = holefill.inpaint(tmp_path / "g16.png", square_hole, method="biharmonic")
    assert result.mode == "I;16"
    assert np.array_equal(np.asarray(result)[~square_hole], gray[~square_hole])


def test_16_bit_colour_in_pil_is_8_bit_with_a_warning(photo16, square_hole):
    image_path, _, fine = photo16
    with pytest.warns(UserWarning, match="16-bit colour"):
        result = holefill.inpaint(image_path, square_hole, method="telea")
    assert result.mode == "RGB"
    expected = np.rint(fine[~square_hole] / 257).astype(np.uint8)
    assert np.array_equal(np.asarray(result)[~square_hole], expected)


# -- the empty mask ------------------------------------------------------------------------------


def test_an_empty_mask_is_one_warning_and_the_image_unchanged_everywhere(
    tmp_path, capsys, smooth_image
):
    Image.fromarray(smooth_image).save(tmp_path / "p.png")
    Image.fromarray(np.zeros((48, 64), np.uint8)).save(tmp_path / "m.png")
    with pytest.warns(UserWarning, match="the mask is empty") as caught:
        out = holefill.inpaint(smooth_image, np.zeros((48, 64), bool), method="telea")
    assert len(caught) == 1 and np.array_equal(out, smooth_image)
    code, _, err = _cli(
        capsys, "fill", tmp_path / "p.png", "--mask", tmp_path / "m.png", "-o", tmp_path / "o.png"
    )
    assert code == 0
    assert err.count("holefill: warning:") == 1 and "the mask is empty" in err
    assert np.array_equal(np.asarray(Image.open(tmp_path / "o.png")), smooth_image)
    response = _serve("telea", (tmp_path / "p.png").read_bytes(), (tmp_path / "m.png").read_bytes())
    assert response.status_code == 200
    assert "the mask is empty" in response.headers["x-holefill-warning"]
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(response.content))), smooth_image)
    out = _batch(tmp_path, tmp_path / "p.png", tmp_path / "m.png", "telea")
    assert np.array_equal(np.asarray(Image.open(out)), smooth_image)
    (row,) = read_results(out.parent)
    assert row["status"] == "ok" and row["error"].startswith("warning: the mask is empty")


def test_a_0_1_uint8_mask_is_empty_and_the_warning_says_why(smooth_image, square_hole):
    with pytest.warns(UserWarning, match="largest value is 1 .* must be bool"):
        holefill.inpaint(smooth_image, square_hole.astype(np.uint8), method="telea")


# -- the pixel limit ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def huge_png(tmp_path_factory) -> tuple[Path, Path]:
    """A flat 10,000 x 9,500 (95-megapixel) grey PNG with a white square where the mask's hole
    is; both compress to a few hundred KB. (Navier-Stokes fills a flat surround exactly flat;
    OpenCV's Telea leaves levels 99-103 there.)"""
    folder = tmp_path_factory.mktemp("huge")
    photo = Image.new("L", (10_000, 9_500), 100)
    photo.paste(255, (5000, 4000, 5020, 4020))
    photo.save(folder / "huge.png")
    mask = Image.new("L", photo.size, 0)
    mask.paste(255, (5000, 4000, 5020, 4020))
    mask.save(folder / "mask.png")
    return folder / "huge.png", folder / "mask.png"


@pytest.mark.timeout(300)
def test_a_95_megapixel_png_fills_with_a_raised_limit(huge_png, tmp_path):
    photo, mask = huge_png
    command = [
        sys.executable, "-m", "holefill", "fill", str(photo), "--mask", str(mask),
        "-o", str(tmp_path / "out.png"), "-m", "navier_stokes", "--strategy", "crop",
        "--max-pixels", "200000000",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "decompression" not in done.stderr.lower()
    with Image.open(tmp_path / "out.png") as out:
        assert out.size == (10_000, 9_500) and out.mode == "L"
        assert out.getextrema() == (100, 100)  # the white square was the hole: filled flat


def test_over_the_limit_is_one_line_in_holefills_words(huge_png, tmp_path, capsys):
    photo, mask = huge_png
    code, _, err = _cli(
        capsys, "fill", photo, "--mask", mask, "-o", tmp_path / "o.png", "--max-pixels", 90_000_000
    )
    assert code == 2 and err.count("\n") == 1
    assert "95,000,000 pixels exceeds the limit of 90,000,000 (raise it with --max-pixels)" in err
    assert not (tmp_path / "o.png").exists()


def test_pillows_guard_is_only_ever_raised(tmp_path, smooth_image):
    from holefill.io import allow_pixels_in_pillow, read_image

    before = Image.MAX_IMAGE_PIXELS
    Image.fromarray(smooth_image).save(tmp_path / "p.png")
    read_image(tmp_path / "p.png", max_pixels=1000 * 1000)
    allow_pixels_in_pillow(10)
    assert before == Image.MAX_IMAGE_PIXELS
    allow_pixels_in_pillow(before + 1)
    assert before + 1 == Image.MAX_IMAGE_PIXELS


# -- outputs and flags -------------------------------------------------------------------------------


@pytest.fixture
def files(tmp_path, smooth_image, square_hole) -> Path:
    Image.fromarray(smooth_image).save(tmp_path / "p.png")
    Image.fromarray(square_hole.astype(np.uint8) * 255).save(tmp_path / "m.png")
    return tmp_path


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-o", "out.xyz"], "unsupported output format .xyz"),
        (["-o", "out.gif"], "unsupported output format .gif"),
        (["-o", "out.jpg", "--quality", "500"], "quality must be from 1 to 100, got 500"),
        (["-o", "out.jpg", "--quality", "0"], "quality must be from 1 to 100, got 0"),
        (["-o", "out.png", "--mask-threshold", "300"], "threshold must be an integer from 0"),
    ],
)
def test_bad_outputs_are_exit_2_one_line_and_create_nothing(files, args, expected):
    before = sorted(files.iterdir())
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "holefill",
            "fill",
            "p.png",
            "--mask",
            "m.png",
            "-m",
            "telea",
            *args,
        ],
        cwd=files,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("holefill: error:")
    assert expected in done.stderr
    assert sorted(files.iterdir()) == before


def test_one_line_per_filled_file_unless_quiet(files, capsys):
    (files / "in").mkdir()
    for name in ("a", "b"):
        Image.open(files / "p.png").save(files / "in" / f"{name}.png")
    code, out, _ = _cli(capsys, "fill", "--images", files / "in", "--masks", files / "m.png",
                        "-o", files / "out", "-m", "telea")  # fmt: skip
    lines = out.strip().splitlines()
    assert code == 0 and len(lines) == 2
    for line, name in zip(lines, ("a", "b"), strict=True):
        path, method, seconds, unit = line.split()
        assert path == str(files / "out" / f"{name}.png") and method == "telea"
        assert float(seconds) >= 0 and unit == "s"
    code, out, _ = _cli(capsys, "fill", files / "p.png", "--mask", files / "m.png",
                        "-o", files / "q.png", "-m", "telea", "--quiet")  # fmt: skip
    assert code == 0 and out == ""


def test_mask_from_alpha_makes_the_fill_opaque(tmp_path, smooth_image):
    alpha = np.full((48, 64), 255, np.uint8)
    alpha[10:20, 10:30] = 0
    Image.fromarray(np.dstack([smooth_image, alpha]), "RGBA").save(tmp_path / "t.png")
    result = fill_image(
        tmp_path / "t.png", None, "telea", mask_options=MaskOptions(from_alpha=True)
    )
    assert np.array_equal(result.hole, alpha == 0) and (result.alpha == 255).all()


def test_shared_flags_have_one_name_meaning_and_default():
    from holefill.batch.cli import build_parser as batch_parser
    from holefill.bench.cli import build_parser as bench_parser
    from holefill.cli import _build_parser
    from holefill.serve.cli import _build_parser as serve_parser

    fill = _build_parser()._subparsers._group_actions[0].choices["fill"]
    parsers = {
        "fill": fill,
        "batch": batch_parser(),
        "bench": bench_parser(),
        "serve": serve_parser(),
    }

    def flags(parser):
        return {
            option: (action.dest, action.default)
            for action in parser._actions
            for option in action.option_strings
        }

    every = [flags(parser) for parser in parsers.values()]
    for option in ("--max-pixels", "--device", "--method", "--strategy", "--seed", "-p"):
        assert len({table[option] for table in every}) == 1, option
    assert every[0]["--max-pixels"][1] == 100_000_000
    trio = [flags(parsers[name]) for name in ("fill", "batch", "bench")]
    for option in ("--images", "--masks", "-o", "--out", "--quiet"):
        assert all(option in table for table in trio), option
    for option in ("--workers",):
        assert flags(parsers["batch"])[option] == flags(parsers["bench"])[option]
    for option in ("--quality", "--format", "--overwrite", "--dilate", "--mask-threshold"):
        assert flags(parsers["fill"])[option] == flags(parsers["batch"])[option], option


def test_importing_holefill_leaves_the_umask_alone(tmp_path):
    probe = (
        "import os; os.umask(0o027); import holefill.io as io, holefill; "
        "assert os.umask(0o027) == 0o027; "
        f"io.atomic_write_bytes({str(tmp_path / 'f.bin')!r}, b'x'); "
        f"print(oct(os.stat({str(tmp_path / 'f.bin')!r}).st_mode & 0o777))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0o640"  # 0666 less the umask, like any new file
    assert os.listdir(tmp_path) == ["f.bin"]


def test_output_options_check_their_values():
    assert OutputOptions.for_path("x.JPG").format == "JPEG"
    assert OutputOptions("png").format == "PNG"
    with pytest.raises(InputError, match="unsupported output format"):
        OutputOptions.for_path("x.gif")
