"""Shared fixtures: small synthetic images and the shared data folder.

The tests (not holefill) find the project's shared data at ``$HOLEFILL_SHARED``, else ``../shared``
beside the clone, and point ``HOLEFILL_VGG_WEIGHTS`` at its VGG-19 when that variable is unset, so
the tests (and the holefill processes they start) use it; tests that need it skip without it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

SHARED = Path(os.environ.get("HOLEFILL_SHARED") or Path(__file__).resolve().parents[2] / "shared")
SHARED_VGG19 = SHARED / "weights" / "vgg19_to_relu4_1.pth"
if SHARED_VGG19.is_file():
    os.environ.setdefault("HOLEFILL_VGG_WEIGHTS", str(SHARED_VGG19))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def smooth_image(rng) -> np.ndarray:
    """A 48x64 uint8 RGB image with gradients and some noise."""
    yy, xx = np.mgrid[0:48, 0:64]
    base = np.stack([xx * 3, yy * 4, (xx + yy) * 2], axis=2).astype(np.float64)
    return np.clip(base + rng.normal(0, 3, base.shape), 0, 255).astype(np.uint8)


@pytest.fixture
def square_hole() -> np.ndarray:
    hole = np.zeros((48, 64), bool)
    hole[18:28, 24:36] = True
    return hole


@pytest.fixture
def shared():
    if not SHARED.is_dir():
        pytest.skip(f"shared data not found at {SHARED}")
    return SHARED


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny tensors: one thread is faster than two on a shared 2-core machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def bench_select():
    """``benchmarks/bench_select.py`` as a module: its synthetic disc photo, clicks and IoU."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_select.py"
    spec = importlib.util.spec_from_file_location("bench_select", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
