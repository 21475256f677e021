"""Tests of ``holefill bench``: pairing, metrics against independent references, resume, failures,
report files and reproducibility, on tiny synthetic images and masks."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from holefill.bench import cli, run
from holefill.bench.metrics import (
    METRICS,
    HoleVGGDistance,
    VGGDistance,
    hole_texture_ratio,
    image_metrics,
    out_of_palette_pct,
)
from holefill.bench.pairs import draw_pairs, read_pairs
from holefill.bench.report import (
    PLOT_FILE,
    PLOT_SIZE,
    SCATTER_FILE,
    grid_size,
    scatter_points,
    summarize,
)
from holefill.errors import InputError

SIZE = 64
MASK_SIDE = 160  # large enough for the 50-px border rule to leave an interior


def _photo(seed: int, height: int = SIZE, width: int = SIZE) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    phase = rng.uniform(0, 2 * np.pi, 3)
    channels = [
        127 + 60 * np.sin(xx / (5 + 2 * c) + phase[c]) + 40 * np.cos(yy / 7 + c) for c in range(3)
    ]
    photo = np.stack(channels, axis=2) + rng.normal(0, 4, (height, width, 3))
    return np.clip(photo, 0, 255).astype(np.uint8)


def _square_mask(side: int, top: int, left: int, size: int = MASK_SIDE) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    mask[top : top + side, left : left + side] = 255
    return mask


#: name -> (mask, expected bin, expected border) at MASK_SIDE px with the 50-px rule
KNOWN_MASKS = {
    "n_small_a.png": (_square_mask(30, 65, 65), "0.01-0.1", False),  # 900 / 25600 = 0.035
    "n_small_b.png": (_square_mask(20, 60, 70), "0.01-0.1", False),  # 0.016
    "n_mid_a.png": (_square_mask(58, 51, 51), "0.1-0.2", False),  # 0.131, 51 px from the border
    "n_mid_b.png": (_square_mask(56, 52, 52), "0.1-0.2", False),  # 0.1225
    "b_small_a.png": (_square_mask(30, 0, 0), "0.01-0.1", True),
    "b_small_b.png": (_square_mask(25, 40, 100), "0.01-0.1", True),  # 40 px from the top
    "b_mid_a.png": (_square_mask(60, 100, 100), "0.1-0.2", True),  # reaches 160 - 160 = 0 px
    "b_big.png": (
        np.pad(np.full((56, MASK_SIDE), 255, np.uint8), ((0, 104), (0, 0))),
        "0.3-0.4",
        True,
    ),  # 0.35
}


@pytest.fixture
def data(tmp_path: Path) -> dict[str, Path]:
    images = tmp_path / "images"
    masks = tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    for number in range(8):
        Image.fromarray(_photo(number)).save(images / f"photo{number}.png")
    for name, (mask, _, _) in KNOWN_MASKS.items():
        Image.fromarray(mask).save(masks / name)
    return {"images": images, "masks": masks, "root": tmp_path}


@pytest.fixture
def pairs_file(data: dict[str, Path]) -> Path:
    """Four explicit pairs of 64-px images and 64-px masks (no resizing anywhere)."""
    exact = data["root"] / "exact_masks"
    exact.mkdir()
    rows = []
    for number, (top, left, side) in enumerate(
        [(20, 20, 12), (0, 0, 20), (10, 30, 25), (30, 5, 30)]
    ):
        path = exact / f"m{number}.png"
        Image.fromarray(_square_mask(side, top, left, SIZE)).save(path)
        rows.append((data["images"] / f"photo{number}.png", path))
    target = data["root"] / "pairs.csv"
    with target.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "mask"])
        writer.writerows(rows)
    return target


def _bench(out: Path, *extra: str, methods: str = "telea") -> int:
    return cli.main(
        [
            "--methods",
            methods,
            "--out",
            str(out),
            "--size",
            str(SIZE),
            "--no-vgg",
            "--no-progress",
            "--workers",
            "0",
            *extra,
        ]
    )


def _results(out: Path) -> list[dict[str, str]]:
    with (out / "results.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


# ---------------------------------------------------------------------------------------------
# Pairs
# ---------------------------------------------------------------------------------------------


def test_bins_and_borders_of_known_masks(data):
    pairs = draw_pairs(data["images"], data["masks"], seed=0)
    assert len(pairs) == len(KNOWN_MASKS)
    for pair in pairs:
        _, expected_bin, expected_border = KNOWN_MASKS[pair.mask.name]
        assert (pair.bin, pair.border) == (expected_bin, expected_border), pair.mask.name
        truth = np.asarray(Image.open(pair.mask)) > 127
        assert pair.mask_hole_ratio == pytest.approx(truth.mean(), abs=1e-6)


def test_masks_csv_labels_are_used(data):
    with (data["masks"] / "masks.csv").open("w") as handle:
        handle.write("file,hole_ratio,bin,border\n")
        handle.write("n_small_a.png,0.45,0.4-0.5,1\n")
    pairs = draw_pairs(data["images"], data["masks"], seed=0)
    assert [(p.mask.name, p.bin, p.border) for p in pairs] == [("n_small_a.png", "0.4-0.5", True)]


def test_pairing_is_seeded(data):
    def drawn(seed):
        pairs = draw_pairs(data["images"], data["masks"], per_bin=1, seed=seed)
        return [(p.image.name, p.mask.name) for p in pairs]

    assert drawn(0) == drawn(0)
    assert drawn(0) != drawn(1)
    first = draw_pairs(data["images"], data["masks"], per_bin=1, seed=0)
    assert [(p.bin, p.border) for p in first] == [
        ("0.01-0.1", False),
        ("0.01-0.1", True),
        ("0.1-0.2", False),
        ("0.1-0.2", True),
        ("0.3-0.4", True),
    ]
    assert len({p.image for p in first}) == len(first)  # a different image per pair


def test_written_pairs_read_back(data, tmp_path):
    out = tmp_path / "report"
    assert (
        _bench(
            out,
            "--images",
            str(data["images"]),
            "--masks",
            str(data["masks"]),
            "--per-bin",
            "1",
            "--grids",
            "0",
        )
        == 0
    )
    again = read_pairs(out / "pairs.csv")
    assert again == draw_pairs(data["images"], data["masks"], per_bin=1, seed=0)


# ---------------------------------------------------------------------------------------------
# Metrics against independent computations
# ---------------------------------------------------------------------------------------------


def test_telea_summary_matches_skimage_on_cv2_inpaint(pairs_file, tmp_path):
    out = tmp_path / "report"
    assert _bench(out, "--pairs", str(pairs_file), "--strategy", "original", "--grids", "0") == 0
    psnrs, ssims, l1s, ratios, palette = [], [], [], [], []
    for pair in read_pairs(pairs_file):
        truth = np.asarray(Image.open(pair.image).convert("RGB"))
        hole = np.asarray(Image.open(pair.mask)) > 127
        filled = cv2.inpaint(truth, hole.astype(np.uint8), 3.0, cv2.INPAINT_TELEA)
        psnrs.append(peak_signal_noise_ratio(truth, filled, data_range=255))
        ssims.append(structural_similarity(truth, filled, data_range=255, channel_axis=2))
        l1s.append(np.abs(truth.astype(float) - filled).mean() / 255 * 100)
        ratios.append(hole_texture_ratio(filled, truth, hole))
        palette.append(
            (out_of_palette_pct(filled, truth, hole), out_of_palette_pct(truth, truth, hole))
        )
    rows = _results(out)
    assert [float(r["psnr"]) for r in rows] == pytest.approx(psnrs, abs=1e-5)
    assert [float(r["texture_ratio"]) for r in rows] == pytest.approx(ratios, abs=1e-5)
    measured = [
        [float(r["out_of_palette_pct"]), float(r["truth_out_of_palette_pct"])] for r in rows
    ]
    assert np.allclose(measured, palette, atol=1e-5)
    assert all(r["vgg_hole"] == r["vgg_dist"] == "" for r in rows)  # --no-vgg
    summary = json.loads((out / "summary.json").read_text())
    assert summary["metrics"]["psnr"]["telea"]["all"]["all"] == pytest.approx(np.mean(psnrs))
    assert summary["metrics"]["ssim"]["telea"]["all"]["all"] == pytest.approx(np.mean(ssims))
    assert summary["metrics"]["l1_pct"]["telea"]["all"]["all"] == pytest.approx(np.mean(l1s))
    assert summary["counts"]["telea"]["all"]["all"] == 4
    texture = summary["metrics"]["texture_ratio"]["telea"]["all"]
    assert texture["all"] == pytest.approx(np.median(ratios), abs=1e-5)  # a median, not a mean
    assert np.median(ratios) != pytest.approx(np.mean(ratios), abs=1e-3)
    assert summary["aggregate"]["texture_ratio"] == "median"
    large = [i for i, r in enumerate(rows) if r["bin"] != "0.01-0.1"]
    assert 0 < len(large) < 4
    assert texture["0.1-0.6"] == pytest.approx(np.median([ratios[i] for i in large]), abs=1e-5)
    assert "vgg_hole" not in summary["metrics"]
    assert not (out / SCATTER_FILE).exists()
    assert "VGG distances (whole image and hole) not computed (--no-vgg)" in summary["notes"]


def test_hole_metrics():
    truth = _photo(1)
    filled = truth.copy()
    hole = np.zeros(truth.shape[:2], bool)
    hole[10:20, 10:30] = True
    filled[hole] = np.clip(filled[hole].astype(int) + 10, 0, 255)
    values = image_metrics(filled, truth, hole)
    mse = np.mean((filled[hole].astype(float) - truth[hole]) ** 2)
    assert values["psnr_hole"] == pytest.approx(10 * np.log10(255**2 / mse))
    _, ssim_map = structural_similarity(truth, filled, data_range=255, channel_axis=2, full=True)
    assert values["ssim_hole"] == pytest.approx(ssim_map[hole].mean())
    assert values["ssim_hole"] < values["ssim"] < 1
    assert values["l1_pct"] == pytest.approx(np.abs(filled.astype(float) - truth).mean() / 2.55)


def test_vgg_distance_is_the_lpips_baseline(shared):
    import torch
    import torch.nn.functional as F

    weights = shared / "weights" / "vgg19_to_relu3_1.pth"
    distance = VGGDistance(weights)
    truth = _photo(2, 48, 48)
    blurred = cv2.GaussianBlur(truth, (5, 5), 2)
    state = torch.load(weights, map_location="cpu", weights_only=True)

    def features(pixels):  # the weights README's loader, written out again
        x = torch.from_numpy(pixels[..., ::-1].astype(np.float32)).permute(2, 0, 1)[None]
        x = x - torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)
        taps = []
        for name in ["conv1_1", "conv1_2", "M", "conv2_1", "conv2_2", "M", "conv3_1"]:
            if name == "M":
                x = F.max_pool2d(x, 2)
                continue
            x = F.relu(F.conv2d(x, state[name + ".weight"], state[name + ".bias"], padding=1))
            if name.endswith("_1"):
                taps.append(x[0].numpy().astype(np.float64))
        return taps

    expected = []
    for a, b in zip(features(blurred), features(truth), strict=True):
        a = a / (np.sqrt((a**2).sum(axis=0)) + 1e-10)
        b = b / (np.sqrt((b**2).sum(axis=0)) + 1e-10)
        expected.append(((a - b) ** 2).sum(axis=0).mean())
    assert distance(blurred, truth) == pytest.approx(np.mean(expected), rel=1e-4)
    assert distance(truth, truth) == 0
    assert distance(cv2.GaussianBlur(truth, (9, 9), 4), truth) > distance(blurred, truth)


def test_bench_vgg_hole_distance_and_scatter_plot(pairs_file, tmp_path, shared):
    weights = shared / "weights" / "vgg19_to_relu4_1.pth"
    out = tmp_path / "report"
    args = ["--pairs", str(pairs_file), "--out", str(out), "--size", str(SIZE), "--grids", "0"]
    assert cli.main([*args, "--methods", "telea", "--strategy", "original", "--no-progress"]) == 0
    distance = HoleVGGDistance(weights)
    expected = []
    for pair in read_pairs(pairs_file):
        truth = np.asarray(Image.open(pair.image).convert("RGB"))
        hole = np.asarray(Image.open(pair.mask)) > 127
        filled = cv2.inpaint(truth, hole.astype(np.uint8), 3.0, cv2.INPAINT_TELEA)
        expected.append(distance(filled, truth, hole))
    assert [float(r["vgg_hole"]) for r in _results(out)] == pytest.approx(expected, rel=1e-4)
    with Image.open(out / SCATTER_FILE) as plot:
        assert plot.size == (700, 560)
    rows = _results(out)
    summary = summarize(rows, ["telea"], [m for m in METRICS if rows[0][m] != ""])
    bins, points = scatter_points(summary)
    large = [i for i, r in enumerate(rows) if r["bin"] != "0.01-0.1"]
    assert bins == "0.1-0.6"
    assert points == [
        (
            "telea",
            pytest.approx(np.mean([expected[i] for i in large])),
            pytest.approx(np.mean([float(rows[i]["psnr"]) for i in large])),
        )
    ]


def test_a_report_of_an_earlier_version_resumes(pairs_file, tmp_path, monkeypatch):
    """Rows written before the hole metrics keep them empty; the summary says so; new rows get
    them; nothing is refilled."""
    out = tmp_path / "report"
    assert _bench(out, "--pairs", str(pairs_file), "--grids", "0") == 0
    old_rows = _results(out)
    with (out / "results.csv").open("w", newline="") as handle:  # as an earlier version wrote it
        writer = csv.DictWriter(handle, run.LEGACY_RESULT_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(old_rows)
    record = json.loads((out / "run.json").read_text())
    record["metrics"] = ["l1_pct", "psnr", "ssim", "psnr_hole", "ssim_hole"]
    (out / "run.json").write_text(json.dumps(record))
    calls = []
    original = run.evaluate_task
    monkeypatch.setattr(run, "evaluate_task", lambda w, i, m: calls.append(m) or original(w, i, m))
    assert (
        _bench(out, "--pairs", str(pairs_file), "--grids", "0", methods="telea,navier_stokes") == 0
    )
    assert calls == ["navier_stokes"] * 4
    rows = _results(out)
    assert list(rows[0]) == list(run.RESULT_COLUMNS)
    assert [r["texture_ratio"] for r in rows if r["method"] == "telea"] == [""] * 4
    assert all(r["texture_ratio"] for r in rows if r["method"] == "navier_stokes")
    assert [r["psnr"] for r in rows if r["method"] == "telea"] == [r["psnr"] for r in old_rows]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["metrics"]["texture_ratio"]["telea"]["all"]["all"] is None
    assert summary["rows_without_metric"]["texture_ratio"] == {"telea": 4, "navier_stokes": 0}
    assert (
        "texture_ratio: 4 rows of telea come from an earlier holefill"
        in (out / "summary.md").read_text()
    )
    assert "texture_ratio" in json.loads((out / "run.json").read_text())["metrics"]


# ---------------------------------------------------------------------------------------------
# Running: resume, failures, report files, reproducibility
# ---------------------------------------------------------------------------------------------


def test_resume_skips_finished_rows(pairs_file, tmp_path, monkeypatch):
    out = tmp_path / "report"
    assert _bench(out, "--pairs", str(pairs_file), "--grids", "0") == 0
    calls = []
    original = run.evaluate_task

    def counting(worker, index, method):
        calls.append((index, method))
        return original(worker, index, method)

    monkeypatch.setattr(run, "evaluate_task", counting)
    assert (
        _bench(out, "--pairs", str(pairs_file), "--grids", "0", methods="telea,navier_stokes") == 0
    )
    assert sorted(calls) == [(index, "navier_stokes") for index in range(4)]
    calls.clear()
    assert (
        _bench(out, "--pairs", str(pairs_file), "--grids", "0", methods="telea,navier_stokes") == 0
    )
    assert calls == []
    rows = _results(out)
    assert [(r["method"], r["pair"]) for r in rows] == [
        (m, str(i)) for m in ("telea", "navier_stokes") for i in range(4)
    ]


def test_rerun_refills_a_method_whose_code_changed(pairs_file, tmp_path, monkeypatch):
    out = tmp_path / "report"
    assert _bench(out, "--pairs", str(pairs_file), "--grids", "0") == 0
    monkeypatch.setattr(run, "method_fingerprint", lambda method: "changed")
    calls = []
    original = run.evaluate_task
    monkeypatch.setattr(run, "evaluate_task", lambda w, i, m: calls.append(i) or original(w, i, m))
    with pytest.warns(UserWarning, match="--rerun telea"):
        assert _bench(out, "--pairs", str(pairs_file), "--grids", "0") == 0
    assert calls == []
    assert _bench(out, "--pairs", str(pairs_file), "--grids", "0", "--rerun", "telea") == 0
    assert calls == [0, 1, 2, 3]
    assert len(_results(out)) == 4
    assert json.loads((out / "run.json").read_text())["code"]["telea"] == "changed"


def test_interrupted_results_file_resumes(pairs_file, tmp_path):
    out = tmp_path / "report"
    assert _bench(out, "--pairs", str(pairs_file), "--grids", "0") == 0
    before = _results(out)
    text = (out / "results.csv").read_text()
    (out / "results.csv").write_text(text[: text.rindex("\n", 0, -1) + 12])  # a torn last row
    assert _bench(out, "--pairs", str(pairs_file), "--grids", "0") == 0
    after = _results(out)
    for row in before + after:
        del row["seconds"]
    assert after == before


def test_settings_change_is_refused(pairs_file, tmp_path):
    out = tmp_path / "report"
    assert _bench(out, "--pairs", str(pairs_file), "--grids", "0") == 0
    with pytest.raises(InputError, match="size"):
        cli.main(
            [
                "--methods",
                "telea",
                "--out",
                str(out),
                "--size",
                "32",
                "--no-vgg",
                "--pairs",
                str(pairs_file),
            ]
        )
    with pytest.raises(InputError, match="options"):
        _bench(out, "--pairs", str(pairs_file), "--radius", "5")


def test_failing_pair_is_recorded_and_the_run_goes_on(pairs_file, tmp_path, data):
    corrupt = data["root"] / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    lines = pairs_file.read_text().splitlines()
    mask = lines[1].split(",")[1]
    pairs_file.write_text("\n".join([*lines, f"{corrupt},{mask}"]) + "\n")
    out = tmp_path / "report"
    assert _bench(out, "--pairs", str(pairs_file), methods="telea,navier_stokes") == 1
    rows = _results(out)
    assert len(rows) == 10
    failed = [r for r in rows if r["status"] == "error"]
    assert {r["method"] for r in failed} == {"telea", "navier_stokes"}
    assert all(r["image"] == str(corrupt) and "InputError" in r["error"] for r in failed)
    assert all(r["psnr"] for r in rows if r["status"] == "ok")
    summary = (out / "summary.md").read_text()
    assert "## Failures (2)" in summary and "corrupt.png" in summary
    counts = json.loads((out / "summary.json").read_text())["counts"]
    assert counts["telea"]["all"]["all"] == 4


def test_plot_and_grids(data, tmp_path):
    out = tmp_path / "report"
    assert (
        _bench(
            out,
            "--images",
            str(data["images"]),
            "--masks",
            str(data["masks"]),
            "--grids",
            "2",
            methods="telea,navier_stokes",
        )
        == 0
    )
    with Image.open(out / PLOT_FILE) as plot:
        assert plot.size == PLOT_SIZE
    expected_rows = {"0.01-0.1": 2, "0.1-0.2": 2, "0.3-0.4": 1}
    assert sorted(p.stem for p in (out / "grids").glob("*.png")) == sorted(expected_rows)
    for label, n_rows in expected_rows.items():
        with Image.open(out / "grids" / f"{label}.png") as grid:
            assert grid.size == grid_size(n_rows, 4, SIZE)
            pixels = np.asarray(grid.convert("RGB"))
    # the last grid: its ground-truth tile is the pair's image
    pair = next(p for p in read_pairs(out / "pairs.csv") if p.bin == "0.3-0.4")
    truth, _ = run.prepare_pair(pair, SIZE)
    left = grid_size(1, 3, SIZE)[0]
    top = grid_size(0, 1, SIZE)[1]
    assert np.array_equal(pixels[top : top + SIZE, left : left + SIZE], truth)


def test_same_command_gives_identical_summary(data, tmp_path):
    args = [
        "--images",
        str(data["images"]),
        "--masks",
        str(data["masks"]),
        "--per-bin",
        "1",
        "--grids",
        "0",
    ]
    assert _bench(tmp_path / "a", *args, methods="telea,navier_stokes") == 0
    assert _bench(tmp_path / "b", *args, methods="telea,navier_stokes") == 0
    first = (tmp_path / "a" / "summary.md").read_bytes()
    assert first == (tmp_path / "b" / "summary.md").read_bytes()
    assert _bench(tmp_path / "a", *args, methods="telea,navier_stokes") == 0  # resumed: nothing new
    assert (tmp_path / "a" / "summary.md").read_bytes() == first


def test_native_size_and_centre_crop(tmp_path):
    image = _photo(3, 40, 80)
    Image.fromarray(image).save(tmp_path / "wide.png")
    Image.fromarray(_square_mask(20, 0, 0)).save(tmp_path / "mask.png")
    pair = read_pairs(_write_pairs(tmp_path, "wide.png", "mask.png"))[0]
    truth, hole = run.prepare_pair(pair, 0)
    assert truth.shape == (40, 80, 3) and hole.shape == (40, 80)
    assert np.array_equal(truth, image)
    truth, hole = run.prepare_pair(pair, 20)
    assert truth.shape == (20, 20, 3)
    expected = cv2.resize(image[:, 20:60], (20, 20), interpolation=cv2.INTER_AREA)
    assert np.array_equal(truth, expected)
    assert hole.mean() == pytest.approx((20 * 20) / 160**2, abs=0.01)


def _write_pairs(folder: Path, image: str, mask: str) -> Path:
    path = folder / "pairs.csv"
    path.write_text(f"image,mask\n{folder / image},{folder / mask}\n")
    return path


def test_method_options_scoping():
    options = cli.resolve_method_options(
        ["telea", "navier_stokes"], {"radius": 4.0, "telea.radius": 6.0}, seed=3
    )
    assert options == {
        "telea": {"radius": 6.0, "seed": 3},
        "navier_stokes": {"radius": 4.0, "seed": 3},
    }
    with pytest.raises(InputError, match="patch_size"):
        cli.resolve_method_options(["telea"], {"patch_size": 5}, seed=0)
    with pytest.raises(InputError, match="not among"):
        cli.resolve_method_options(["telea"], {"biharmonic.margin": 5}, seed=0)


def test_unknown_method_is_a_user_error(pairs_file, tmp_path):
    with pytest.raises(InputError, match="unknown method"):
        _bench(tmp_path / "r", "--pairs", str(pairs_file), methods="telea,nope")


@pytest.mark.slow
def test_workers_give_the_same_numbers(data, tmp_path):
    args = ["--images", str(data["images"]), "--masks", str(data["masks"]), "--grids", "1"]
    assert _bench(tmp_path / "one", *args, methods="telea,navier_stokes") == 0
    assert _bench(tmp_path / "two", *args, "--workers", "2", methods="telea,navier_stokes") == 0
    assert (tmp_path / "one" / "summary.md").read_bytes() == (
        tmp_path / "two" / "summary.md"
    ).read_bytes()
