"""The PConv trainer: config, data stream, checkpoints, exact resume, validation, export."""

from __future__ import annotations

import csv
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from holefill.errors import InputError, WeightsError
from holefill.train import checkpoint as ckpt
from holefill.train.cli import main as train_main
from holefill.train.config import load_config, packaged_config, save_config
from holefill.train.data import (
    MaskSource,
    StreamSampler,
    TrainingSet,
    list_training_images,
)
from holefill.train.loop import Trainer, train
from holefill.train.pconv import LOSS_KEYS
from holefill.train.records import metrics_by_bin, validate

TINY = "pconv_tiny"
SUBPROCESS_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _photos(folder: Path, count: int, size: tuple[int, int] = (40, 48), seed: int = 0) -> Path:
    """Smooth synthetic photos (learnable in a few steps) plus files the trainer must ignore."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : size[0], 0 : size[1]]
    for index in range(count):
        base = np.stack([xx * 4 + index * 9, yy * 5, (xx + yy) * 2 + index * 4], axis=2)
        pixels = np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)
        sub = folder / f"class{index % 2}"
        sub.mkdir(parents=True, exist_ok=True)
        suffix = (".png", ".JPEG", ".jpg", ".webp")[index % 4]
        Image.fromarray(pixels).save(sub / f"photo{index}{suffix}", quality=95)
    (folder / "README.md").write_text("not an image")
    (folder / "MANIFEST.tsv").write_text("file\tclass\n")
    return folder


@pytest.fixture(scope="module")
def data_dirs(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("photos")
    return _photos(root / "train", 12), _photos(root / "val", 6, seed=1)


def _tiny(train_dir: Path, val_dir: Path | None = None, *overrides: str):
    values = {"data": {"train_dir": str(train_dir), "val_dir": str(val_dir) if val_dir else None}}
    return load_config(TINY, list(overrides), values=values)


@pytest.fixture(scope="module")
def trained_run(data_dirs, tmp_path_factory):
    """A 20-step tiny run with validation every 10 steps."""
    run_dir = tmp_path_factory.mktemp("run")
    config = _tiny(*data_dirs, "optim.max_steps=20", "val_every=10", "log_every=5")
    result = train(config, run_dir, device="cpu")
    return run_dir, result


# ---------------------------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------------------------


def test_config_file_then_overrides(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("optim:\n  lr: 1.0e-3\n  max_steps: 7\ndata:\n  size: 64\namp: fp16\n")
    config = load_config(
        path,
        [
            "optim.lr=1e-4",
            "data.crop_scale=[0.5, 1]",
            "optim.max_steps=5e3",
            "loss.weights.style=100",
            "optim.max_minutes=null",
        ],
    )
    assert config.optim.lr == pytest.approx(1e-4)  # YAML 1.1 reads "1e-4" as text: converted
    assert config.optim.max_steps == 5000 and isinstance(config.optim.max_steps, int)
    assert config.data.size == 64 and config.amp == "fp16"
    assert config.data.crop_scale == [0.5, 1.0]
    assert config.loss.weights.style == 100.0 and config.loss.weights.hole == 6.0
    assert config.optim.max_minutes is None


@pytest.mark.parametrize(
    "override, message",
    [
        ("optim.lrr=1", "unknown config key 'optim.lrr'; did you mean 'optim.lr'"),
        ("nonsense=1", "unknown config key 'nonsense'"),
        ("amp=fp8", "'amp' must be one of"),
        ("model.layers=2.5", "'model.layers' must be int"),
        ("data=3", "'data' is a section"),
        ("channels_last=maybe", "'channels_last' must be bool"),
        ("optim.lr", "must look like dotted.key=value"),
        ("max_minutes=4", "did you mean 'optim.max_minutes'"),
    ],
)
def test_config_errors_name_the_key(override, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        load_config(None, [override])


def test_config_round_trips_through_yaml(tmp_path):
    config = load_config(TINY, ["seed=3", "optim.finetune_from_step=10"])
    save_config(config, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == config


@pytest.mark.parametrize("name", ["pconv_tiny", "pconv_default", "pconv_finetune"])
def test_packaged_recipes_are_consistent(name):
    from holefill.nn.unet import PConvUNet

    assert packaged_config(name).is_file()
    config = load_config(name)
    multiple = PConvUNet(config.model).size_multiple
    assert config.data.size % multiple == 0


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


def test_listing_is_recursive_sorted_and_ignores_other_files(data_dirs):
    files = list_training_images(data_dirs[0])
    assert len(files) == 12
    assert {p.suffix for p in files} == {".png", ".JPEG", ".jpg", ".webp"}
    assert files == sorted(files, key=lambda p: p.relative_to(data_dirs[0]).as_posix())
    empty = data_dirs[0].parent / "empty"
    empty.mkdir(exist_ok=True)
    (empty / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="no images"):
        list_training_images(empty)


def test_stream_depends_only_on_seed_and_position(data_dirs):
    files = list_training_images(data_dirs[0])
    first = TrainingSet(files, 32, seed=5)
    second = TrainingSet(files, 32, seed=5)
    for position in (17, 3, 40, 3):  # any access order, a fresh dataset: same sample
        a_image, a_hole = first[position]
        b_image, b_hole = second[position]
        assert torch.equal(a_image, b_image) and torch.equal(a_hole, b_hole)
    image, hole = first[0]
    assert image.dtype == torch.uint8 and image.shape == (3, 32, 32)
    assert hole.dtype == torch.uint8 and hole.shape == (1, 32, 32) and 0 < hole.float().mean() < 1
    other_seed = TrainingSet(files, 32, seed=6)
    assert not torch.equal(first[0][1], other_seed[0][1])
    # each epoch is a permutation of every photo
    epoch = [first.photo_index(p) for p in range(len(files), 2 * len(files))]
    assert sorted(epoch) == list(range(len(files)))


def test_small_photos_are_resized_up(tmp_path):
    _photos(tmp_path / "small", 2, size=(20, 24))
    dataset = TrainingSet(list_training_images(tmp_path / "small"), 64, seed=0)
    assert dataset[1][0].shape == (3, 64, 64)


def test_sampler_shards_the_same_global_batches():
    single = list(StreamSampler(8, start=16, steps=3))
    ranks = [list(StreamSampler(8, start=16, rank=r, world_size=2, steps=3)) for r in range(2)]
    assert single == list(range(16, 40))
    for step in range(3):  # step k of rank r: the r-th half of global batch k
        assert (
            ranks[0][4 * step : 4 * step + 4] + ranks[1][4 * step : 4 * step + 4]
            == single[8 * step : 8 * step + 8]
        )
    with pytest.raises(InputError, match="multiple of the number of processes"):
        StreamSampler(6, world_size=4)


def test_folder_masks_are_augmented_to_size(tmp_path):
    folder = tmp_path / "masks"
    folder.mkdir()
    for index in range(3):
        mask = np.zeros((64, 64), np.uint8)
        mask[10 : 30 + index * 5, 5:40] = 255
        Image.fromarray(mask).save(folder / f"{index}.png")
    source = MaskSource("folder", folder)
    hole_mask = source(32, np.random.default_rng(0))
    assert hole_mask.shape == (32, 32) and hole_mask.dtype == bool and 0 < hole_mask.mean() < 1
    with pytest.raises(InputError, match="needs data.mask_dir"):
        MaskSource("both")


# ---------------------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------------------


def test_checkpoints_are_atomic_and_pruned(tmp_path, monkeypatch):
    for step in (1, 2, 3):
        ckpt.save_checkpoint(tmp_path, {"step": step, "weights": torch.full((4,), step)}, keep=2)
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == [
        "step_00000002.pt",
        "step_00000003.pt",
    ]
    assert ckpt.latest_checkpoint(tmp_path).name == "step_00000003.pt"

    def crash(obj, handle, *args, **kwargs):
        handle.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        ckpt.save_checkpoint(tmp_path, {"step": 4}, keep=2)
    monkeypatch.undo()
    folder = tmp_path / ckpt.CHECKPOINT_DIR
    assert sorted(p.name for p in folder.iterdir()) == [
        "latest",
        "step_00000002.pt",
        "step_00000003.pt",
    ]  # no temp file, nothing replaced
    state = ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path))
    assert state["step"] == 3 and torch.equal(state["weights"], torch.full((4,), 3))
    (folder / "latest").unlink()  # a missing pointer falls back to the highest step
    assert ckpt.latest_checkpoint(tmp_path).name == "step_00000003.pt"


def test_rng_states_round_trip():
    import random

    saved = ckpt.capture_rng_state()
    expected = (random.random(), np.random.rand(), torch.rand(1))
    random.random(), np.random.rand(), torch.rand(1)
    ckpt.restore_rng_state(saved)
    assert (random.random(), np.random.rand()) == expected[:2]
    assert torch.equal(torch.rand(1), expected[2])


# ---------------------------------------------------------------------------------------------
# Training, validation, export
# ---------------------------------------------------------------------------------------------


def _column(path: Path, name: str) -> list[float]:
    with path.open(newline="") as handle:
        return [float(row[name]) for row in csv.DictReader(handle)]


def test_training_lowers_the_loss_and_writes_the_run_folder(trained_run):
    run_dir, result = trained_run
    totals = _column(run_dir / "train.csv", "total")
    assert len(totals) == 4 and totals[-1] < 0.7 * totals[0]
    assert result.step == 20 and result.stopped_by == "max_steps"
    with (run_dir / "train.csv").open() as handle:
        assert handle.readline().strip().split(",") == [
            "step",
            "time_s",
            "lr",
            *LOSS_KEYS,
            "images_per_s",
        ]
    psnr = {
        int(s): p
        for s, p, b in zip(
            _column(run_dir / "val.csv", "step"),
            _column(run_dir / "val.csv", "psnr"),
            _bins(run_dir / "val.csv"),
            strict=True,
        )
        if b == "all"
    }
    assert sorted(psnr) == [10, 20] and psnr[20] > psnr[10]
    for step in (10, 20):
        grid = Image.open(run_dir / "val" / f"val_step{step}.png")
        assert grid.size == (3 * 32, 6 * 32)  # 6 bins x (masked | output | truth)
    assert (run_dir / "model.safetensors").is_file() and (run_dir / "model.json").is_file()
    assert load_config(run_dir / "config.yaml").optim.max_steps == 20


def _bins(path: Path) -> list[str]:
    with path.open(newline="") as handle:
        return [row["bin"] for row in csv.DictReader(handle)]


def test_validation_metrics_equal_scikit_image():
    """The validation table: per-image PSNR/SSIM of the 8-bit composites (scikit-image on uint8,
    the evaluation's convention), averaged per bin."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    from holefill.train.data import ValidationSet

    rng = np.random.default_rng(0)
    images = torch.from_numpy(rng.integers(0, 256, (4, 3, 24, 24), dtype=np.uint8))
    holes = torch.zeros(4, 1, 24, 24, dtype=torch.uint8)
    holes[:, :, 6:14, 8:20] = 1
    valset = ValidationSet(images, holes, ["a", "b", "a", "b"], ["0", "1", "2", "3"])

    def grey(image, hole):  # a network that fills every pixel with 0.5
        return torch.full_like(image, 0.5)

    table, results = validate(grey, valset, torch.device("cpu"), batch_size=3)
    truth = images.permute(0, 2, 3, 1).numpy()
    hole = holes.permute(0, 2, 3, 1).numpy().astype(bool)
    composite = np.where(hole, 0.5, truth / 255.0)  # independent of the trainer's compositing
    assert np.allclose(results.permute(0, 2, 3, 1).numpy(), composite, atol=1e-6)
    composite8 = np.where(hole, 128, truth).astype(np.uint8)  # 127.5 rounds to even
    reference = [
        (
            peak_signal_noise_ratio(t, c, data_range=255),
            structural_similarity(t, c, data_range=255, channel_axis=-1),
        )
        for t, c in zip(truth, composite8, strict=True)
    ]
    for label, members in (("a", [0, 2]), ("b", [1, 3]), ("all", [0, 1, 2, 3])):
        assert table[label]["count"] == len(members)
        assert table[label]["psnr"] == pytest.approx(
            np.mean([reference[i][0] for i in members]), abs=1e-6
        )
        assert table[label]["ssim"] == pytest.approx(
            np.mean([reference[i][1] for i in members]), abs=1e-6
        )
    # identical images: the evaluation's convention, infinite PSNR (not a capped 100)
    same = metrics_by_bin(truth[:1], truth[:1], hole[:1, ..., 0], ["x"])["x"]
    assert same["count"] == 1 and same["psnr"] == math.inf and same["ssim"] == pytest.approx(1.0)


@pytest.mark.parametrize("dtype, tolerance", [("float32", 0.0), ("float16", 2e-2)])
def test_export_round_trip_through_pconv_inpainter(trained_run, tmp_path, dtype, tolerance):
    from holefill.methods.pconv import PConvInpainter, read_pconv
    from holefill.nn.unet import PConvUNet

    run_dir, result = trained_run
    out = ckpt.export_pconv(run_dir, tmp_path / "tiny.safetensors", dtype=dtype)
    state = ckpt.load_checkpoint(ckpt.latest_checkpoint(run_dir))
    config, tensors, header = read_pconv(out)
    assert (
        header["step"] == "20" and header["dtype"] == dtype and len(header["weights_sha256"]) == 64
    )
    assert str(tensors[next(iter(tensors))].dtype) == f"torch.{dtype}"
    net = PConvUNet(config)
    net.load_state_dict(state["model"])
    net.eval()
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, 32, 32, generator=generator)
    hole = torch.zeros(1, 1, 32, 32)
    hole[..., 8:20, 10:24] = 1
    with torch.no_grad():
        expected = torch.where(hole > 0, net(image, 1 - hole).clamp(0, 1), image)
    filled = PConvInpainter(
        weights=str(out), strategy="original", tta=False, seam=0, precision="float32"
    ).fill(image, hole)
    assert (filled - expected).abs().max().item() <= tolerance


def test_export_command_and_errors(trained_run, tmp_path, capsys):
    run_dir, _ = trained_run
    out = tmp_path / "cli.safetensors"
    assert train_main(["export", str(run_dir), "-o", str(out)]) == 0
    assert out.is_file() and out.with_suffix(".json").is_file()
    assert train_main(["export", str(tmp_path / "nope"), "-o", str(out)]) == 2
    assert "no such run folder" in capsys.readouterr().err
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError):
        ckpt.load_checkpoint(tmp_path / "bad.pt")


def test_cli_refuses_to_overwrite_a_run_and_reports_bad_keys(trained_run, data_dirs, capsys):
    run_dir, _ = trained_run
    args = [
        "pconv",
        "--data",
        str(data_dirs[0]),
        "--config",
        TINY,
        "--out",
        str(run_dir),
        "--device",
        "cpu",
    ]
    assert train_main(args) == 2
    assert "pass --resume" in capsys.readouterr().err
    assert train_main([*args, "optim.lrr=1"]) == 2
    assert "unknown config key 'optim.lrr'" in capsys.readouterr().err


def test_time_budget_stops_checkpoints_and_exports(data_dirs, tmp_path):
    config = _tiny(
        data_dirs[0], None, "optim.max_steps=1000", "optim.max_minutes=0.0001", "ckpt_every=0"
    )
    result = train(config, tmp_path / "run", device="cpu")
    assert result.stopped_by == "max_minutes" and result.step == 1
    assert ckpt.latest_checkpoint(tmp_path / "run").name == "step_00000001.pt"
    assert (tmp_path / "run" / "model.safetensors").is_file()
    again = train(config, tmp_path / "run", resume=True, device="cpu")
    assert again.step == 2  # the budget is per invocation: one more step, then stop


def test_a_run_of_the_former_pconv_trainer_resumes_exactly(data_dirs, tmp_path):
    """Run folders written before the two trainers became one loop (checkpoints without a
    ``kind`` entry, config.yaml without ``threads``) resume where they stopped and end exactly
    where an uninterrupted run ends."""
    steps = ("log_every=1", "ckpt_every=3", "optim.finetune_from_step=4")
    straight = tmp_path / "straight"
    train(_tiny(data_dirs[0], None, "optim.max_steps=6", *steps), straight, device="cpu")
    old = tmp_path / "old"
    train(_tiny(data_dirs[0], None, "optim.max_steps=3", *steps), old, device="cpu")
    path = ckpt.latest_checkpoint(old)  # rewritten as the former trainer wrote it
    state = torch.load(path, weights_only=True)
    del state["kind"], state["config"]["threads"]
    assert set(state) == {
        "format",
        "step",
        "samples_seen",
        "train_seconds",
        "world_size",
        "config",
        "model",
        "optimizer",
        "scaler",
        "rng",
    }
    torch.save(state, path)
    saved = (old / "config.yaml").read_text()
    (old / "config.yaml").write_text(saved.replace("threads: null\n", ""))
    assert "threads" not in (old / "config.yaml").read_text()

    assert (
        train_main(["pconv", "--out", str(old), "--resume", "--device", "cpu", "max_steps=6"]) == 0
    )
    resumed = ckpt.load_checkpoint(ckpt.latest_checkpoint(old), kind="pconv")
    reference = ckpt.load_checkpoint(ckpt.latest_checkpoint(straight))
    assert resumed["step"] == reference["step"] == 6 and resumed["kind"] == "pconv"
    for name, tensor in reference["model"].items():
        assert torch.equal(resumed["model"][name], tensor), name
    assert _losses(old) == _losses(straight)


def test_pixel_loss_run_loads_no_feature_network(data_dirs, tmp_path):
    missing = tmp_path / "no-such-vgg.pth"
    vgg = ("loss.feature_net=vgg19", "loss.taps=null", "optim.max_steps=2")
    with pytest.raises(WeightsError):  # a loss with feature terms needs the file
        Trainer(
            _tiny(data_dirs[0], None, *vgg),
            tmp_path / "vgg",
            resume=False,
            device="cpu",
            vgg_weights=missing,
        )
    config = _tiny(data_dirs[0], None, *vgg, "loss.weights.perceptual=0", "loss.weights.style=0")
    trainer = Trainer(config, tmp_path / "run", resume=False, device="cpu", vgg_weights=missing)
    assert trainer.task.loss_fn.feature_net is None
    assert trainer.run().step == 2
    rows = list(csv.DictReader((tmp_path / "run" / "train.csv").open()))
    assert rows and all(float(row["style_out"]) == float(row["perceptual"]) == 0 for row in rows)
    assert all(float(row["hole"]) > 0 for row in rows)


def test_init_weights_start_a_fresh_run_from_an_export(trained_run, data_dirs, tmp_path):
    from safetensors.torch import load_file

    export = trained_run[0] / "model.safetensors"
    config = _tiny(data_dirs[0], None, f"init_weights={export}")
    trainer = Trainer(config, tmp_path / "run", resume=False, device="cpu")
    exported = load_file(export)
    state = trainer.net.state_dict()
    assert trainer.step == 0 and set(state) == set(exported)
    for key, value in exported.items():
        assert torch.equal(state[key], value.to(state[key].dtype)), key
    wrong = _tiny(data_dirs[0], None, f"init_weights={export}", "model.layers=4")
    with pytest.raises(WeightsError, match="does not fit"):
        Trainer(wrong, tmp_path / "other", resume=False, device="cpu")


def test_cosine_schedule_warms_up_decays_and_freezes_the_encoder_bn(data_dirs, tmp_path):
    config = _tiny(
        data_dirs[0],
        None,
        "optim.max_steps=10",
        "optim.schedule=cosine",
        "optim.lr=1e-3",
        "optim.min_lr=1e-5",
        "optim.warmup_steps=4",
        "optim.finetune_from_fraction=0.7",
        "log_every=1",
        "ckpt_every=0",
    )
    train(config, tmp_path / "run", device="cpu")
    lrs = _column(tmp_path / "run" / "train.csv", "lr")

    def expected(step: int) -> float:  # worked by hand: the lr used by step 0..9
        warmup = min(1.0, (step + 1) / 4)
        return warmup * (1e-5 + (1e-3 - 1e-5) * 0.5 * (1 + math.cos(math.pi * step / 10)))

    assert lrs == pytest.approx([expected(step) for step in range(10)], rel=1e-6)
    assert lrs[3] == max(lrs)  # the warm-up ends at step 3, then the cosine falls


def test_finetune_by_fraction_freezes_the_encoder_batch_norms(data_dirs, tmp_path):
    config = _tiny(
        data_dirs[0], None, "optim.max_steps=4", "optim.finetune_from_fraction=0.5", "ckpt_every=0"
    )
    trainer = Trainer(config, tmp_path / "run", resume=False, device="cpu")

    def bn_modes() -> list[bool]:
        return [m.training for m in trainer.net.modules() if isinstance(m, torch.nn.BatchNorm2d)]

    assert not trainer.task.finetuning and all(bn_modes())
    for _ in range(2):
        trainer._train_step()
    assert not trainer.task.finetuning  # checked before each step: 2/4 not yet seen
    trainer._train_step()
    assert trainer.task.finetuning
    modes = bn_modes()
    assert not all(modes) and any(modes)  # the encoder's are frozen, the decoder's still train


# ---------------------------------------------------------------------------------------------
# Exact resume after SIGKILL (real subprocesses)
# ---------------------------------------------------------------------------------------------


def _command(data_dir: Path, run_dir: Path, *overrides: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "holefill.train.cli",
        "pconv",
        "--data",
        str(data_dir),
        "--config",
        TINY,
        "--out",
        str(run_dir),
        "--device",
        "cpu",
        "log_every=1",
        "val_every=0",
        "ckpt_every=3",
        "optim.finetune_from_step=5",
        *overrides,
    ]


def _start(command: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        command,
        env=SUBPROCESS_ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _finish(process: subprocess.Popen) -> None:
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output.decode()[-3000:]


def _losses(run_dir: Path) -> list[tuple[str, ...]]:
    with (run_dir / "train.csv").open(newline="") as handle:
        return [
            (row["step"], row["lr"], *(row[k] for k in LOSS_KEYS)) for row in csv.DictReader(handle)
        ]


def test_resume_after_sigkill_matches_an_uninterrupted_run(data_dirs, tmp_path):
    """SIGKILL once a checkpoint exists (whichever step that turns out to be), then --resume to 4
    steps past it; a run straight to the same step (another data-loader setup) is identical."""
    killed_dir = tmp_path / "killed"
    killed = _start(_command(data_dirs[0], killed_dir, "optim.max_steps=100000", "data.workers=1"))
    deadline = time.monotonic() + 120
    try:
        while ckpt.latest_checkpoint(killed_dir) is None:
            assert killed.poll() is None, "the trainer exited before it was killed"
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.01)
    finally:
        os.killpg(killed.pid, signal.SIGKILL)  # the trainer and its data worker
        killed.communicate()
    assert killed.returncode == -signal.SIGKILL  # killed mid-run, not finished
    killed_at = ckpt.load_checkpoint(ckpt.latest_checkpoint(killed_dir))["step"]
    assert killed_at >= 3 and killed_at % 3 == 0
    target = killed_at + 4  # past one more checkpoint, ending between two
    resumed_run = _start(
        _command(
            data_dirs[0], killed_dir, f"optim.max_steps={target}", "data.workers=1", "--resume"
        )
    )
    straight = _start(_command(data_dirs[0], tmp_path / "straight", f"optim.max_steps={target}"))
    _finish(resumed_run)
    _finish(straight)

    resumed = ckpt.load_checkpoint(ckpt.latest_checkpoint(killed_dir))
    reference = ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path / "straight"))
    assert resumed["step"] == reference["step"] == target
    assert resumed["samples_seen"] == reference["samples_seen"]
    assert resumed["model"].keys() == reference["model"].keys()
    for name, tensor in reference["model"].items():
        assert torch.equal(resumed["model"][name], tensor), name
    for key, value in reference["optimizer"]["state"].items():
        for field_name, tensor in value.items():
            assert torch.equal(resumed["optimizer"]["state"][key][field_name], tensor)
    # the logs agree step by step too (rows the killed run wrote past its checkpoint are dropped)
    assert _losses(killed_dir) == _losses(tmp_path / "straight")


def test_a_compiled_network_with_wrong_gradients_is_refused(data_dirs, tmp_path):
    from holefill.errors import HolefillError

    trainer = Trainer(_tiny(data_dirs[0]), tmp_path / "run", resume=False, device="cpu")
    task = trainer.task
    image, hole = trainer._next_batch()
    valid = 1 - hole
    before = {k: v.clone() for k, v in task.net.state_dict().items()}
    task.check_compiled_gradients(image, valid)  # eager against itself: accepted
    net = task.net

    class NoGradient(torch.nn.Module):  # the values of the network, none of its gradients
        def forward(self, image, valid):
            return net(image, valid).detach() + 0 * sum(p.sum() for p in net.parameters())

    task.model = NoGradient()
    with pytest.raises(HolefillError, match="set compile=false"):
        task.check_compiled_gradients(image, valid)
    after = task.net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN statistics restored


def test_csv_log_resume_keeps_the_history_of_an_older_column_set(tmp_path):
    from holefill.train.records import CsvLog

    path = tmp_path / "train.csv"
    path.write_text("step,lr,total\n10,0.1,3.5\n20,0.1,2.5\n30,0.1,1.5\n")  # before 'ssim'
    log = CsvLog(path, ("step", "lr", "ssim", "total"), keep_until=20)
    log.write([{"step": 30, "lr": 0.05, "ssim": 0.2, "total": 1.0}])
    rows = list(csv.DictReader(path.open(newline="")))
    assert [(r["step"], r["ssim"], r["total"]) for r in rows] == [
        ("10", "", "3.5"),
        ("20", "", "2.5"),
        ("30", "0.2", "1.0"),
    ]
    path.write_text("epoch,loss\n1,2.0\n")  # not a log of this trainer: starts afresh
    CsvLog(path, ("step", "lr", "ssim", "total"), keep_until=20)
    assert path.read_text().splitlines() == ["step,lr,ssim,total"]


def test_ctrl_c_checkpoints_and_exports_then_resume_continues(data_dirs, tmp_path):
    """Ctrl-C reaches the whole process group (trainer and data worker): the trainer finishes
    the step, checkpoints, exports and exits 0; --resume goes on from that step."""
    run_dir = tmp_path / "run"
    command = _command(data_dirs[0], run_dir, "optim.max_steps=100000", "data.workers=1")
    process = _start(command)
    deadline = time.monotonic() + 120
    try:
        while len(_losses(run_dir) if (run_dir / "train.csv").is_file() else []) < 2:
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        os.killpg(process.pid, signal.SIGINT)
        output, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    text = output.decode()
    assert process.returncode == 0, text[-3000:]
    assert "Traceback" not in text and "(signal)" in text
    stopped = ckpt.load_checkpoint(ckpt.latest_checkpoint(run_dir))["step"]
    assert stopped >= 2 and (run_dir / "model.safetensors").is_file()
    _finish(_start([*command[:-2], f"optim.max_steps={stopped + 2}", "--resume"]))
    assert ckpt.load_checkpoint(ckpt.latest_checkpoint(run_dir))["step"] == stopped + 2
