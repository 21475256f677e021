"""Tests of holefill.masks: bins, hole ratio, border rule, generators and the mask-folder reader."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import SHARED
from PIL import Image

from holefill.errors import InputError
from holefill.masks import (
    BIN_LABELS,
    PCONV_BINS,
    MaskFolder,
    MaskRecord,
    bin_of,
    free_form_mask,
    hole_ratio,
    mask_in_bin,
    noise_mask,
    random_training_mask,
    rectangle_mask,
    touches_border,
)

SHARED_MASKS = SHARED / "data" / "masks" / "nvidia_irregular"
SEEDS = range(4)


def _frame_is_empty(hole_mask: np.ndarray, distance: int = 50) -> bool:
    inside = np.zeros_like(hole_mask)
    inside[distance:-distance, distance:-distance] = True
    return not hole_mask[~inside].any()


# --- bins and measures -------------------------------------------------------------------------


def test_bins_are_the_pconv_bins_with_csv_spelling():
    assert PCONV_BINS == ((0.01, 0.1), (0.1, 0.2), (0.2, 0.3), (0.3, 0.4), (0.4, 0.5), (0.5, 0.6))
    assert BIN_LABELS == ("0.01-0.1", "0.1-0.2", "0.2-0.3", "0.3-0.4", "0.4-0.5", "0.5-0.6")


@pytest.mark.parametrize(
    ("ratio", "label"),
    [
        (0.0, None),
        (0.01, None),
        (0.0100001, "0.01-0.1"),
        (0.05, "0.01-0.1"),
        (0.1, "0.01-0.1"),
        (0.1000001, "0.1-0.2"),
        (0.2, "0.1-0.2"),
        (0.35, "0.3-0.4"),
        (0.5, "0.4-0.5"),
        (0.6, "0.5-0.6"),
        (0.6000001, None),
        (1.0, None),
    ],
)
def test_bin_of_uses_half_open_intervals(ratio, label):
    assert bin_of(ratio) == label


def test_hole_ratio_against_hand_counts():
    hole_mask = np.zeros((4, 5), bool)
    hole_mask[0, :3] = True
    assert hole_ratio(hole_mask) == 3 / 20
    assert hole_ratio(np.ones((3, 3), bool)) == 1.0
    assert hole_ratio(np.eye(4, dtype=np.uint8)) == 0.25  # 0/1 integers are accepted


def test_hole_ratio_rejects_unbinarised_and_malformed_masks():
    with pytest.raises(InputError, match="binarise"):
        hole_ratio(np.full((4, 4), 255, np.uint8))
    with pytest.raises(InputError, match="2-D"):
        hole_ratio(np.zeros((4, 4, 3), bool))


@pytest.mark.parametrize(
    ("row", "col", "expected"),
    [
        (50, 50, False),  # 50 px from top and left: far enough
        (49, 200, True),
        (200, 49, True),
        (461, 200, False),  # 511 - 461 = 50 px from the bottom
        (462, 200, True),
        (200, 462, True),
        (256, 256, False),
    ],
)
def test_touches_border_at_the_50_px_edge(row, col, expected):
    hole_mask = np.zeros((512, 512), bool)
    hole_mask[row, col] = True
    assert touches_border(hole_mask) is expected


def test_touches_border_other_distances():
    hole_mask = np.zeros((64, 64), bool)
    hole_mask[1, 30] = True
    assert touches_border(hole_mask, 2)
    assert not touches_border(hole_mask, 1)  # distance 1: touching the very border only
    assert not touches_border(hole_mask, 0)
    assert touches_border(np.ones((64, 64), bool), 1)
    with pytest.raises(InputError):
        touches_border(hole_mask, -1)


# --- generators ----------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [256, 512])
@pytest.mark.parametrize(("label", "bounds"), list(zip(BIN_LABELS, PCONV_BINS, strict=True)))
def test_mask_in_bin_hits_every_bin(size, label, bounds):
    lo, hi = bounds
    for seed in SEEDS:
        hole_mask = mask_in_bin(size, size, label, rng=seed)
        assert hole_mask.shape == (size, size) and hole_mask.dtype == bool
        assert lo < np.mean(hole_mask) <= hi


@pytest.mark.parametrize("label", BIN_LABELS)
def test_mask_in_bin_away_from_border_leaves_the_frame_empty(label):
    lo, hi = PCONV_BINS[BIN_LABELS.index(label)]
    for seed in SEEDS:
        hole_mask = mask_in_bin(512, 512, label, rng=seed, border=False)
        assert _frame_is_empty(hole_mask)
        assert lo < np.mean(hole_mask) <= hi


def test_mask_in_bin_away_from_border_at_256_up_to_the_region_it_allows():
    # the 156x156 interior is 0.371 of a 256x256 mask
    for label in BIN_LABELS[:4]:
        hole_mask = mask_in_bin(256, 256, label, rng=7, border=False)
        assert _frame_is_empty(hole_mask)
        assert bin_of(np.mean(hole_mask)) == label
    for label in BIN_LABELS[4:]:
        with pytest.raises(InputError, match="larger image"):
            mask_in_bin(256, 256, label, rng=7, border=False)
    with pytest.raises(InputError, match="100 px"):
        mask_in_bin(90, 300, "0.01-0.1", border=False)


@pytest.mark.parametrize("label", BIN_LABELS)
def test_mask_in_bin_near_border_touches_the_frame(label):
    for seed in SEEDS:
        hole_mask = mask_in_bin(512, 512, label, rng=seed, border=True)
        frame = ~np.pad(np.ones((412, 412), bool), 50, constant_values=False)
        assert hole_mask[frame].any()


def test_mask_in_bin_is_seeded():
    first = mask_in_bin(256, 256, "0.2-0.3", rng=11)
    assert np.array_equal(first, mask_in_bin(256, 256, "0.2-0.3", rng=11))
    assert np.array_equal(first, mask_in_bin(256, 256, "0.2-0.3", rng=np.random.default_rng(11)))
    assert not np.array_equal(first, mask_in_bin(256, 256, "0.2-0.3", rng=12))


def test_mask_in_bin_other_intervals_and_bad_bins():
    hole_mask = mask_in_bin(100, 80, (0.25, 0.27), rng=0)
    assert 0.25 < np.mean(hole_mask) <= 0.27
    tiny = mask_in_bin(10, 10, (0.0, 0.01), rng=0)  # exactly one pixel fits
    assert tiny.sum() == 1
    with pytest.raises(InputError, match="unknown bin"):
        mask_in_bin(64, 64, "0.6-0.7")
    with pytest.raises(InputError):
        mask_in_bin(64, 64, (0.3, 0.2))
    with pytest.raises(InputError, match="no mask"):
        mask_in_bin(10, 10, (0.001, 0.005))  # no count of 100 pixels lies in that interval


def test_free_form_mask_is_seeded_and_made_of_strokes():
    first = free_form_mask(256, 192, rng=5)
    assert first.shape == (256, 192) and first.dtype == bool
    assert np.array_equal(first, free_form_mask(256, 192, rng=5))
    ratios = [np.mean(free_form_mask(256, 256, rng=seed)) for seed in range(20)]
    assert min(ratios) > 0 and max(ratios) < 0.9 and len(set(ratios)) == 20
    one = free_form_mask(128, 128, rng=0, max_strokes=1, max_vertices=1, brush_width=(5, 5))
    assert 0 < one.sum() < 128 * 128 / 2


def test_rectangle_mask_draws_filled_rectangles():
    for seed in range(10):
        hole_mask = rectangle_mask(120, 200, rng=seed, size_range=(0.2, 0.3))
        rows, cols = np.nonzero(hole_mask)
        box = hole_mask[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        assert box.all() and box.size == hole_mask.sum()
        assert 24 <= box.shape[0] <= 36 and 40 <= box.shape[1] <= 60
    assert not rectangle_mask(32, 32, rng=0, count=0).any()
    assert np.array_equal(
        rectangle_mask(64, 64, rng=3, count=3), rectangle_mask(64, 64, rng=3, count=3)
    )


def test_random_training_mask_covers_all_bins():
    ratios = np.array([np.mean(random_training_mask(96, 128, seed)) for seed in range(240)])
    assert ratios.min() > 0.01 and ratios.max() <= 0.6
    per_bin = [sum(bin_of(r) == label for r in ratios) for label in BIN_LABELS]
    assert min(per_bin) >= 20, per_bin  # about 40 each when uniform over 0.01-0.6
    assert np.array_equal(random_training_mask(64, 64, 9), random_training_mask(64, 64, 9))


@pytest.mark.parametrize("seed", range(12))
def test_noise_masks_hit_the_ratio(seed):
    ratio = 0.02 + 0.05 * seed
    hole_mask = noise_mask(120, 200, ratio, seed)
    assert hole_mask.dtype == bool and hole_mask.shape == (120, 200)
    assert abs(hole_mask.mean() - ratio) <= 1 / hole_mask.size
    assert np.array_equal(hole_mask, noise_mask(120, 200, ratio, seed))


def test_noise_masks_are_not_speckled():
    # a hole pixel with no hole among its 8 neighbours is noise, not a shape: thin bands leave a
    # few, a block cut by random tie-breaking would leave hundreds
    for seed in range(20):
        hole_mask = noise_mask(128, 128, 0.3, seed)
        neighbours = cv2.filter2D(hole_mask.astype(np.float32), -1, np.ones((3, 3), np.float32))
        isolated = hole_mask & (neighbours <= 1.5)
        assert isolated.sum() <= 0.01 * hole_mask.sum(), seed


def test_noise_mask_rejects_bad_ratios():
    with pytest.raises(InputError, match="ratio"):
        noise_mask(10, 10, 1.0)


@pytest.mark.parametrize("call", [lambda: free_form_mask(0, 5), lambda: rectangle_mask(5, -1)])
def test_generators_reject_bad_sizes(call):
    with pytest.raises(InputError):
        call()


# --- mask folders --------------------------------------------------------------------------------


def _write_masks(folder: Path) -> dict[str, np.ndarray]:
    masks = {
        "a.png": np.zeros((60, 60), bool),
        "b.png": np.zeros((60, 60), bool),
        "c.png": np.zeros((60, 60), bool),
    }
    masks["a.png"][20:26, 20:30] = True  # 60 px = 0.0167, inside: bin 0.01-0.1, no border
    masks["b.png"][:20, :27] = True  # 540 px = 0.15, touches the border
    masks["c.png"][0, 0] = True  # 1 px: outside all bins
    for name, hole_mask in masks.items():
        values = np.where(hole_mask, 200 if name == "b.png" else 255, 30).astype(np.uint8)
        image = Image.fromarray(values)
        if name == "a.png":  # 1-bit like the shared masks
            image = image.convert("1", dither=Image.Dither.NONE)
        image.save(folder / name)
    (folder / "notes.txt").write_text("not a mask")
    return masks


def test_mask_folder_without_csv_measures_the_files(tmp_path):
    masks = _write_masks(tmp_path)
    folder = MaskFolder(tmp_path, border_distance=10)
    assert len(folder) == 3
    assert [r.path.name for r in folder] == ["a.png", "b.png", "c.png"]
    records = {r.path.name: r for r in folder}
    assert records["a.png"] == MaskRecord(tmp_path / "a.png", 60 / 3600, "0.01-0.1", False)
    assert records["b.png"].hole_ratio == pytest.approx(0.15)
    assert records["b.png"].bin == "0.1-0.2" and records["b.png"].border
    assert records["c.png"].bin is None
    groups = folder.by_bin()
    assert list(groups) == list(BIN_LABELS)
    assert [r.path.name for r in groups["0.1-0.2"]] == ["b.png"]
    assert sum(len(v) for v in groups.values()) == 2
    for name, hole_mask in masks.items():
        assert np.array_equal(folder.load(records[name]), hole_mask)


def test_mask_folder_reads_the_csv_and_resizes_nearest(tmp_path):
    masks = _write_masks(tmp_path)
    with (tmp_path / "masks.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "hole_ratio", "bin", "border"])
        writer.writerow(["b.png", "0.15", "0.1-0.2", "1"])
        writer.writerow(["a.png", "0.016667", "0.01-0.1", "0"])
    folder = MaskFolder(tmp_path)
    assert [(r.path.name, r.hole_ratio, r.bin, r.border) for r in folder] == [
        ("b.png", 0.15, "0.1-0.2", True),
        ("a.png", 0.016667, "0.01-0.1", False),
    ]
    doubled = folder.load(folder[0], size=(120, 90))
    assert doubled.shape == (120, 90) and doubled.dtype == bool
    expected = masks["b.png"][np.arange(120) // 2][:, (np.arange(90) * 60) // 90]
    assert np.array_equal(doubled, expected)


def test_mask_folder_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        MaskFolder(tmp_path / "missing")
    with pytest.raises(InputError, match="no mask PNGs"):
        MaskFolder(tmp_path)
    _write_masks(tmp_path)
    (tmp_path / "masks.csv").write_text("file,hole_ratio,bin,border\nzzz.png,0.1,0.01-0.1,0\n")
    with pytest.raises(InputError, match="zzz.png"):
        MaskFolder(tmp_path)


@pytest.mark.skipif(not SHARED_MASKS.is_dir(), reason="shared NVIDIA masks not present")
def test_shared_nvidia_masks_per_bin_and_border_rule():
    folder = MaskFolder(SHARED_MASKS)
    assert len(folder) == 1200
    groups = folder.by_bin()
    assert {label: len(records) for label, records in groups.items()} == dict.fromkeys(
        BIN_LABELS, 200
    )
    for records in groups.values():
        assert sum(r.border for r in records) == 100
    for record in folder.records[::40]:  # 30 masks: the csv agrees with our own measures
        hole_mask = folder.load(record)
        assert hole_mask.shape == (512, 512)
        assert hole_ratio(hole_mask) == pytest.approx(record.hole_ratio, abs=1e-6)
        assert bin_of(hole_ratio(hole_mask)) == record.bin
        assert touches_border(hole_mask) == record.border


def test_training_masks_include_hairlines_and_dots_like_the_nvidia_masks():
    """The NVIDIA test masks are full of 1-4 px lines and specks; the training masks must show
    the network such holes too: small components and hole pixels 1 px from the known region."""
    from scipy import ndimage

    small_components = hairline_masks = 0
    for seed in range(60):
        hole = random_training_mask(256, 256, seed)
        labels, count = ndimage.label(hole)
        sizes = np.bincount(labels.ravel())[1:]
        small_components += int((sizes <= 50).sum())
        depth = ndimage.distance_transform_cdt(hole, metric="chessboard")
        lines = (depth == 1) & ~ndimage.binary_erosion(hole, np.ones((3, 3)), border_value=1)
        hairline_masks += bool(np.sum(lines & (ndimage.maximum_filter(depth, 5) <= 2)) > 50)
    assert small_components >= 300  # dots: about 15 per specked mask
    assert hairline_masks >= 15  # about half of the masks carry hairline strokes
