"""The PConv trainer under torchrun: two CPU processes (gloo) train one model in step."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from holefill.train import checkpoint as ckpt

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _photos(folder: Path, count: int) -> Path:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:40, 0:48]
    folder.mkdir(parents=True)
    for index in range(count):
        base = np.stack([xx * 4 + index * 9, yy * 5, (xx + yy) * 2 + index * 4], axis=2)
        pixels = np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{index}.png")
    return folder


def _train(launcher: list[str], data: Path, run_dir: Path, *overrides: str) -> None:
    command = [
        *launcher,
        "-m",
        "holefill.train.cli",
        "pconv",
        "--data",
        str(data),
        "--config",
        "pconv_tiny",
        "--out",
        str(run_dir),
        "--device",
        "cpu",
        "val_every=0",
        "ckpt_every=0",
        "log_every=2",
        "debug_rank_state=true",
        "optim.finetune_from_step=6",
        *overrides,
    ]
    done = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]


def test_two_gloo_processes_keep_identical_weights_and_learn(tmp_path):
    torchrun = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
    ]
    data, run_dir = _photos(tmp_path / "photos", 8), tmp_path / "run"
    _train(torchrun, data, run_dir, "optim.max_steps=10")

    ranks = [json.loads((run_dir / "debug" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert ranks[0]["step"] == ranks[1]["step"] == 10
    assert ranks[0]["state_sha256"] == ranks[1]["state_sha256"]  # parameters and BN statistics
    with (run_dir / "train.csv").open(newline="") as handle:
        totals = [float(row["total"]) for row in csv.DictReader(handle)]
    assert len(totals) == 5 and totals[-1] < 0.8 * totals[0]  # rank 0 logs the mean over ranks
    state = ckpt.load_checkpoint(ckpt.latest_checkpoint(run_dir))
    assert state["world_size"] == 2 and state["samples_seen"] == 10 * 4  # global batch 4

    # the run continues in one process: same global batch, same stream position
    _train([sys.executable], data, run_dir, "optim.max_steps=12", "--resume")
    state = ckpt.load_checkpoint(ckpt.latest_checkpoint(run_dir))
    assert state["step"] == 12 and state["samples_seen"] == 12 * 4 and state["world_size"] == 1
    assert all(torch.isfinite(t).all() for t in state["model"].values() if t.is_floating_point())


@pytest.mark.parametrize("world_size", [3])
def test_global_batch_must_split_evenly(world_size):
    from holefill.errors import InputError
    from holefill.train.data import StreamSampler

    with pytest.raises(InputError, match="multiple of the number of processes"):
        StreamSampler(4, world_size=world_size)
