"""``holefill batch``: inputs, errors as rows, resume after SIGKILL, overwrite, the local engine."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import holefill
from holefill.batch import BatchJob, FillSettings, read_results, run_batch
from holefill.batch.cli import main as batch_main
from holefill.batch.local import run_local
from holefill.batch.manifest import BatchItem
from holefill.batch.ray_engine import ITEMS_PER_BLOCK, MAX_BLOCKS, _block_count, _pipeline_size
from holefill.batch.store import RESULT_COLUMNS, LocalStore
from holefill.cli import main as holefill_main
from holefill.errors import HolefillError

SIZE = 40


def _photo(rng: np.random.Generator, size: int = SIZE) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size]
    base = np.stack([xx * 4, yy * 5, (xx + yy) * 3], axis=2).astype(np.float64)
    return np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)


def _hole(rng: np.random.Generator, size: int = SIZE, fraction: float = 0.35) -> np.ndarray:
    hole = np.zeros((size, size), bool)
    side = int(size * fraction)
    top, left = rng.integers(1, size - side - 1, 2)
    hole[top : top + side, left : left + side] = True
    return hole


def _save_mask(hole: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((hole * 255).astype(np.uint8)).save(path)


def _save_photo(pixels: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def _expected(image_path: Path, hole: np.ndarray, method: str = "telea") -> np.ndarray:
    """An independent fill of one image through the public API."""
    pixels = np.asarray(Image.open(image_path).convert("RGB"))
    return holefill.inpaint(pixels, hole, method=method)


def _read(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def _rows(out: Path) -> list[dict[str, str]]:
    return read_results(out)


def _job(out: Path, **kwargs) -> BatchJob:
    settings = kwargs.pop("settings", FillSettings("telea"))
    return BatchJob(
        out=str(out), settings=settings, workers=kwargs.pop("workers", 0), progress=False, **kwargs
    )


def _temps(folder: Path) -> list[Path]:
    return [path for path in folder.rglob(".*") if path.name.endswith(".tmp")]


@pytest.fixture
def collection(tmp_path, rng):
    """images/{a.jpg, sub/b.png, sub/c.png} with masks/{a.png, sub/b.png, c_mask.png}."""
    images, masks, holes = tmp_path / "images", tmp_path / "masks", {}
    layout = {"a.jpg": "a.png", "sub/b.png": "sub/b.png", "sub/c.png": "c_mask.png"}
    for image_name, mask_name in layout.items():
        _save_photo(_photo(rng), images / image_name)
        holes[image_name] = _hole(rng)
        _save_mask(holes[image_name], masks / mask_name)
    return tmp_path, holes


def test_folders_masks_matched_by_relative_path_and_stem(collection):
    root, holes = collection
    summary = run_batch(
        _job(root / "out", images=[str(root / "images")], masks=str(root / "masks"))
    )
    assert (summary.done, summary.skipped, summary.failed) == (3, 0, 0)
    for image_name, hole in holes.items():
        output = root / "out" / Path(image_name).with_suffix(".png")
        assert np.array_equal(_read(output), _expected(root / "images" / image_name, hole))
    rows = _rows(root / "out")
    assert list(rows[0]) == RESULT_COLUMNS
    assert {row["status"] for row in rows} == {"ok"}
    ratios = {
        Path(row["input"]).relative_to(root / "images").as_posix(): float(row["hole_ratio"])
        for row in rows
    }
    assert ratios == pytest.approx({name: hole.mean() for name, hole in holes.items()}, abs=1e-5)


def test_one_mask_for_all_and_the_pool(collection, capsys):
    root, holes = collection
    mask = root / "masks" / "a.png"
    code = batch_main(
        [
            "--images",
            str(root / "images"),
            "--masks",
            str(mask),
            "--out",
            str(root / "out"),
            "--method",
            "telea",
            "--workers",
            "2",
        ]
    )
    assert code == 0
    assert "3 filled, 0 skipped, 0 failed" in capsys.readouterr().out
    expected = _expected(root / "images" / "sub" / "b.png", holes["a.jpg"])
    assert np.array_equal(_read(root / "out" / "sub" / "b.png"), expected)


def test_api_takes_one_folder_or_a_list(collection):
    root, holes = collection
    for images, out in ((root / "images", "one"), ([str(root / "images" / "sub")], "many")):
        summary = run_batch(_job(root / out, images=images, masks=str(root / "masks" / "a.png")))
        assert summary.failed == 0 and summary.done == (3 if out == "one" else 2)
    expected = _expected(root / "images" / "sub" / "c.png", holes["a.jpg"])
    assert np.array_equal(_read(root / "one" / "sub" / "c.png"), expected)


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_manifest(collection, kind):
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    root, holes = collection
    table = pa.table(
        {
            "image": ["images/a.jpg", str(root / "images" / "sub" / "b.png"), "images/sub/c.png"],
            "mask": ["masks/a.png", "masks/sub/b.png", "masks/c_mask.png"],
            "output": ["first.png", None, "deep/third.jpg"],
            "method": ["telea", "navier_stokes", None],
        }
    )
    manifest = root / f"jobs.{kind}"
    if kind == "csv":
        pa_csv.write_csv(table, manifest)
    else:
        pq.write_table(table, manifest)
    out = root / "out"
    summary = run_batch(_job(out, manifest=str(manifest)))
    assert (summary.done, summary.failed) == (3, 0)
    assert np.array_equal(
        _read(out / "first.png"), _expected(root / "images" / "a.jpg", holes["a.jpg"])
    )
    # no output column: the image's path beside the manifest, with the output suffix
    assert np.array_equal(
        _read(out / "images" / "sub" / "b.png"),
        _expected(root / "images" / "sub" / "b.png", holes["sub/b.png"], "navier_stokes"),
    )
    assert Image.open(out / "deep" / "third.jpg").format == "JPEG"
    assert {row["method"] for row in _rows(out)} == {"telea", "navier_stokes"}


def test_bad_inputs_become_error_rows_and_the_job_goes_on(tmp_path, rng, capsys):
    images, masks = tmp_path / "images", tmp_path / "masks"
    for name in ("good", "corrupt", "truncated", "wrongsize", "huge", "nomask"):
        _save_photo(_photo(rng, 48 if name == "huge" else SIZE), images / f"{name}.png")
        if name != "nomask":
            _save_mask(_hole(rng, 48 if name == "huge" else SIZE), masks / f"{name}.png")
    (images / "corrupt.png").write_bytes(b"this is not a PNG")
    data = (images / "truncated.png").read_bytes()
    (images / "truncated.png").write_bytes(data[: len(data) // 2])
    _save_mask(np.ones((10, 10), bool), masks / "wrongsize.png")
    code = holefill_main(
        [
            "batch",
            "--images",
            str(images),
            "--masks",
            str(masks),
            "--out",
            str(tmp_path / "out"),
            "-m",
            "telea",
            "--workers",
            "0",
            "--max-pixels",
            str(SIZE * SIZE),
        ]
    )
    assert code == 1
    assert "5 items failed" in capsys.readouterr().err
    errors = {
        Path(row["input"]).stem: row["error"]
        for row in _rows(tmp_path / "out")
        if row["status"] == "error"
    }
    assert "not an image file" in errors["corrupt"]
    assert "corrupt or truncated" in errors["truncated"]
    assert "mask is 10x10 but the image is 40x40" in errors["wrongsize"]
    assert "exceeds the limit" in errors["huge"]
    assert "no mask for" in errors["nomask"]
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["good.png"]


def test_duplicate_outputs_and_output_over_input(tmp_path, rng):
    images = tmp_path / "images"
    for name in ("same.jpg", "same.png"):
        _save_photo(_photo(rng), images / name)
    _save_mask(_hole(rng), tmp_path / "mask.png")
    summary = run_batch(
        _job(tmp_path / "out", images=[str(images)], masks=str(tmp_path / "mask.png"))
    )
    assert (summary.done, summary.failed) == (1, 1)
    error = next(row["error"] for row in _rows(tmp_path / "out") if row["status"] == "error")
    assert "also the output of" in error
    with pytest.raises(HolefillError, match="must not be"):
        run_batch(_job(images, images=[str(images)], masks=str(tmp_path / "mask.png")))


def test_resume_skips_and_overwrite_redoes(collection):
    root, holes = collection
    out = root / "out"
    job = dict(images=[str(root / "images")], masks=str(root / "masks"))
    run_batch(_job(out, **job))
    (out / "a.png").write_bytes(b"edited by the user")
    again = run_batch(_job(out, **job))
    assert (again.done, again.skipped) == (0, 3)
    assert (out / "a.png").read_bytes() == b"edited by the user"
    redone = run_batch(_job(out, overwrite=True, **job))
    assert redone.done == 3
    assert np.array_equal(
        _read(out / "a.png"), _expected(root / "images" / "a.jpg", holes["a.jpg"])
    )
    statuses = [row["status"] for row in _rows(out)]
    assert statuses == ["ok"] * 3 + ["skipped"] * 3 + ["ok"] * 3


def test_uri_output(collection):
    root, holes = collection
    uri = (root / "remote").as_uri()
    job = dict(images=[str(root / "images")], masks=str(root / "masks"))
    assert run_batch(_job(uri, **job)).done == 3
    assert run_batch(_job(uri, **job)).skipped == 3
    assert np.array_equal(
        _read(root / "remote" / "sub" / "c.png"),
        _expected(root / "images" / "sub" / "c.png", holes["sub/c.png"]),
    )
    assert [row["status"] for row in read_results(uri)] == ["ok"] * 3 + ["skipped"] * 3
    assert not _temps(root / "remote")


def test_stale_temps_removed_and_torn_row_trimmed(collection):
    root, _ = collection
    out = root / "out"
    job = dict(images=[str(root / "images")], masks=str(root / "masks"))
    run_batch(_job(out, **job))
    stale = out / "sub" / ".b.png.ab12_x9z.tmp"
    stale.write_bytes(b"half a png")
    user_file = out / ".notes.txt.ab12_x9z.tmp"  # not a name holefill writes: kept
    user_file.write_text("mine")
    with open(out / "results.csv", "a") as handle:
        handle.write("/torn/row,without,its")
    run_batch(_job(out, **job))
    assert not stale.exists() and user_file.exists()
    rows = list(csv.DictReader(io.StringIO((out / "results.csv").read_text())))
    assert len(rows) == 6 and all(row["status"] in ("ok", "skipped") for row in rows)


def test_one_job_per_output_folder(collection):
    root, _ = collection
    with LocalStore(root / "out").lock(), pytest.raises(HolefillError, match="another"):
        run_batch(_job(root / "out", images=[str(root / "images")], masks=str(root / "masks")))


def test_usage_errors_exit_2(collection, capsys):
    root, _ = collection
    base = [
        "batch",
        "--images",
        str(root / "images"),
        "--masks",
        str(root / "masks"),
        "--out",
        str(root / "out"),
    ]
    assert holefill_main(base + ["--method", "nope"]) == 2
    assert "unknown method" in capsys.readouterr().err
    assert holefill_main(base + ["--method", "telea", "-p", "colour=1"]) == 2
    assert "has no option colour" in capsys.readouterr().err
    assert holefill_main(base + ["--address", "auto"]) == 2
    assert not (root / "out" / "results.csv").exists()


def test_items_in_flight_are_bounded(tmp_path):
    # a job over a million images holds a few at a time: with one worker, at most 2 * 1 + 2
    # items are taken from the source and not yet reported (missing files: fast error rows)
    pulled, in_flight = [], []

    def source():
        for index in range(16):
            pulled.append(index)
            yield BatchItem(str(tmp_path / f"{index}.png"), str(tmp_path / "m.png"), f"{index}.png")

    def report(result):
        in_flight.append(len(pulled) - len(in_flight))
        assert result.status == "error" and "no such file" in result.error

    store = LocalStore(tmp_path / "out")
    run_local(source(), FillSettings("telea"), store, report, workers=1)
    assert len(in_flight) == len(pulled) == 16
    assert max(in_flight) <= 4 and in_flight[0] >= 2  # bounded, yet more than one at a time


def test_ray_blocks_and_actors_spread_the_items():
    # one input per item for the actor pool, then blocks of a few items; no idle actors
    assert [_block_count(n) for n in (1, 2, 30, MAX_BLOCKS)] == [1, 2, 30, MAX_BLOCKS]
    many = 100 * MAX_BLOCKS
    assert many / _block_count(many) <= ITEMS_PER_BLOCK
    assert [_pipeline_size(None, 2, 0.0, n) for n in (1, 2, 200)] == [1, 2, 2]


# -- a job killed with SIGKILL, then run again ---------------------------------------------------
KILL_COUNT, KILL_SIZE = 40, 112


def _parents() -> dict[int, int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return parents


def _descendants(pid: int) -> list[int]:
    parents = _parents()
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def _alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _signal_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def _freeze_when_written(job: subprocess.Popen, out: Path, count: int) -> list[int]:
    """Wait until ``count`` outputs exist, then stop the job and all its processes (SIGSTOP), so
    that nothing more is written while the test looks; returns the stopped processes."""
    deadline = time.monotonic() + 120
    while len(list(out.glob("*.png"))) < count and job.poll() is None:
        assert time.monotonic() < deadline, "the job wrote no outputs in 120 s"
        time.sleep(0.01)
    family = [job.pid, *_descendants(job.pid)]
    _signal_all(family, signal.SIGSTOP)
    written = len(list(out.glob("*.png")))
    assert job.poll() is None and written < KILL_COUNT, "the job finished before it was stopped"
    return family


def _pool_workers(job_pid: int) -> list[int]:
    """The job's pool workers: the children of its fork server (not the server itself, nor
    the resource tracker)."""
    parents = _parents()
    servers = [
        pid
        for pid, parent in parents.items()
        if parent == job_pid
        and b"forkserver" in Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    ]
    return [pid for pid, parent in parents.items() if parent in servers and _alive(pid)]


@pytest.fixture
def kill_collection(tmp_path):
    rng = np.random.default_rng(7)
    for index in range(KILL_COUNT):
        _save_photo(_photo(rng, KILL_SIZE), tmp_path / "images" / f"{index:02d}.png")
        _save_mask(_hole(rng, KILL_SIZE, 0.4), tmp_path / "masks" / f"{index:02d}.png")
    return tmp_path


def _batch_command(root: Path, out: Path, workers: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "holefill",
        "batch",
        "--images",
        str(root / "images"),
        "--masks",
        str(root / "masks"),
        "--out",
        str(out),
        "--method",
        "biharmonic",
        "--workers",
        str(workers),
        "--no-progress",
    ]


def test_resume_after_sigkill(kill_collection):
    root, out = kill_collection, kill_collection / "out"
    job = subprocess.Popen(
        _batch_command(root, out, 2), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    family = _freeze_when_written(job, out, 3)
    os.kill(job.pid, signal.SIGKILL)  # the job only: its workers must notice and die
    job.wait()
    workers = [pid for pid in family if pid != job.pid]
    _signal_all(workers, signal.SIGCONT)
    deadline = time.monotonic() + 15
    while [pid for pid in workers if _alive(pid)] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in workers if _alive(pid)], "workers outlived the killed job"
    done_before = {path: path.stat().st_mtime_ns for path in out.glob("*.png")}
    assert 3 <= len(done_before) < KILL_COUNT

    rerun = subprocess.run(
        _batch_command(root, out, 2), capture_output=True, text=True, timeout=300
    )
    assert rerun.returncode == 0, rerun.stderr
    fresh = root / "fresh"
    run_batch(
        _job(
            fresh,
            images=[str(root / "images")],
            masks=str(root / "masks"),
            settings=FillSettings("biharmonic"),
        )
    )
    outputs = sorted(path.name for path in out.glob("*.png"))
    assert outputs == [f"{index:02d}.png" for index in range(KILL_COUNT)]
    for name in outputs:
        Image.open(out / name).load()  # opens: nothing truncated
        assert (out / name).read_bytes() == (fresh / name).read_bytes()
    assert not _temps(out)
    for path, mtime in done_before.items():  # done once: not written again by the re-run
        assert path.stat().st_mtime_ns == mtime
    rows = _rows(out)
    ok = [row["output"] for row in rows if row["status"] == "ok"]
    assert len(ok) == len(set(ok))
    last_run = rows[-KILL_COUNT:]
    assert sorted(Path(row["output"]).name for row in last_run) == outputs
    assert {row["status"] for row in last_run} <= {"ok", "skipped"}


def test_a_script_without_a_main_guard_fails_instead_of_hanging(collection, tmp_path):
    # the workers re-import the script's main module, which starts the job again and fails:
    # multiprocessing.Pool would replace them forever; the job must stop with advice instead
    root, _ = collection
    script = tmp_path / "unguarded.py"
    script.write_text(
        "from holefill.batch import BatchJob, FillSettings, run_batch\n"
        f"run_batch(BatchJob(out={str(root / 'out')!r}, settings=FillSettings('telea'), "
        f"images={str(root / 'images')!r}, masks={str(root / 'masks')!r}, workers=2, "
        "progress=False))\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode != 0
    assert 'if __name__ == "__main__":' in done.stderr


def test_a_worker_killed_mid_job_stops_the_job_with_a_clear_error(kill_collection):
    root, out = kill_collection, kill_collection / "out"
    job = subprocess.Popen(
        _batch_command(root, out, 2), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    family = _freeze_when_written(job, out, 2)  # items remain: the job cannot finish by itself
    workers = _pool_workers(job.pid)
    assert workers, "no pool worker found among the job's processes"
    os.kill(workers[0], signal.SIGKILL)
    _signal_all([pid for pid in family if pid != workers[0]], signal.SIGCONT)
    _, stderr = job.communicate(timeout=60)  # without the check, a pool waits forever
    assert job.returncode == 2, stderr
    assert "a worker process died" in stderr and "Traceback" not in stderr
    assert len(read_results(out)) < KILL_COUNT  # rerunning resumes (tested above)
