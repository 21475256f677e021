"""``holefill batch --engine ray``: the same outputs as the local engine, byte for byte.

Starts a local Ray with 2 CPUs once (tens of seconds on 2 cores); part of the default suite, and
skipped where Ray Data is not installed.
"""

from __future__ import annotations

import csv

import pytest

from holefill.batch import BatchJob, FillSettings, ray_engine, read_results, run_batch
from holefill.pipeline import MaskOptions

pytest.importorskip("ray")
pytest.importorskip("ray.data")

pytestmark = pytest.mark.ray

COUNT = 30


@pytest.fixture
def manifest(shared, tmp_path):
    """30 shared photos (256²) with NVIDIA masks (512², resized), plus one corrupt image."""
    photos = sorted((shared / "data" / "val" / "imagenet256").glob("*"))[:COUNT]
    masks = sorted((shared / "data" / "masks" / "nvidia_irregular").glob("*.png"))[::37][:COUNT]
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8 not really a JPEG")
    path = tmp_path / "jobs.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "mask", "output"])
        for index, (photo, mask) in enumerate(zip(photos, masks, strict=True)):
            writer.writerow([photo, mask, f"{index:02d}.png"])
        writer.writerow([corrupt, masks[0], "corrupt.png"])
    return path


def _job(out, manifest, engine: str) -> BatchJob:
    settings = FillSettings("telea", mask=MaskOptions(resize=True))
    return BatchJob(
        out=str(out),
        settings=settings,
        manifest=str(manifest),
        engine=engine,
        workers=2,
        progress=False,
    )


def _must_not_start(*args, **kwargs):
    raise AssertionError("Ray started for a job with nothing to fill")


def test_ray_matches_local_byte_for_byte(manifest, tmp_path, monkeypatch):
    local = run_batch(_job(tmp_path / "local", manifest, "local"))
    ray = run_batch(_job(tmp_path / "ray", manifest, "ray"))
    assert (local.done, local.failed) == (COUNT, 1)
    assert (ray.done, ray.failed) == (COUNT, 1)
    for index in range(COUNT):
        name = f"{index:02d}.png"
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()
    rows = {row["output"].rsplit("/", 1)[1]: row for row in read_results(tmp_path / "ray")}
    assert "not an image file" in rows["corrupt.png"]["error"]
    assert all(float(rows[f"{i:02d}.png"]["hole_ratio"]) > 0 for i in range(COUNT))
    assert not list((tmp_path / "ray").glob(".*.tmp"))

    # resume: with the failed row left out, every item is done and Ray is not even started
    rows = manifest.read_text().splitlines()[:-1]
    done = manifest.with_name("done.csv")
    done.write_text("\n".join(rows) + "\n")
    monkeypatch.setattr(ray_engine, "_start_ray", _must_not_start)
    again = run_batch(_job(tmp_path / "ray", done, "ray"))
    assert (again.done, again.skipped, again.failed) == (0, COUNT, 0)
