"""The base: windows around holes, the resize strategy, padding to a multiple, checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from holefill.errors import InputError
from holefill.inpainter import Inpainter, Window, hole_windows


class _Recorder(Inpainter):
    """Fills with the window's mean known colour and records each call's size."""

    name = "recorder"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.calls: list[tuple[int, int]] = []

    def _fill(self, image, hole):
        self.calls.append(tuple(image.shape[-2:]))
        known = 1 - hole
        mean = (image * known).sum((2, 3), keepdim=True) / known.sum((2, 3), keepdim=True)
        return mean.expand_as(image)


def test_hole_windows_grow_clip_and_merge():
    hole = np.zeros((100, 100), bool)
    hole[10:14, 10:14] = True  # near the corner: clipped at 0
    hole[60:70, 60:64] = True
    hole[60:70, 66:70] = True  # close to the previous: windows merge
    windows = hole_windows(hole, margin=5)
    assert Window(5, 5, 19, 19) in windows
    assert Window(55, 55, 75, 75) in windows and len(windows) == 2


def test_crop_processes_small_windows_on_a_huge_image():
    image = torch.rand(1, 3, 2000, 3000)
    hole = torch.zeros(1, 1, 2000, 3000)
    hole[..., 1000:1010, 1500:1520] = 1
    recorder = _Recorder(strategy="crop", margin=16)
    out = recorder.fill(image, hole)
    assert recorder.calls == [(42, 52)]  # 10x20 box grown by 16 on each side
    assert torch.equal(out[hole.expand_as(out) == 0], image[hole.expand_as(image) == 0])


def test_resize_works_at_max_side_and_keeps_known_pixels():
    image = torch.rand(1, 3, 400, 200)
    hole = torch.zeros(1, 1, 400, 200)
    hole[..., 100:150, 50:90] = 1
    recorder = _Recorder(strategy="resize", max_side=100)
    out = recorder.fill(image, hole)
    assert recorder.calls == [(100, 50)]
    assert torch.equal(out[hole.expand_as(out) == 0], image[hole.expand_as(image) == 0])


def test_padding_to_a_multiple_counts_as_hole():
    class _Multiple(_Recorder):
        size_multiple = 16

        def _fill(self, image, hole):
            assert hole[..., -1, -1].item() == 1  # padding is hole
            return super()._fill(image, hole)

    recorder = _Multiple(strategy="original")
    image = torch.rand(1, 3, 33, 47)
    hole = torch.zeros(1, 1, 33, 47)
    hole[..., 5:9, 5:9] = 1
    assert recorder.fill(image, hole).shape == image.shape
    assert recorder.calls == [(48, 48)]


def test_checks():
    recorder = _Recorder()
    with pytest.raises(InputError, match=r"\(B, 3, H, W\)"):
        recorder.fill(torch.rand(3, 8, 8), torch.zeros(1, 1, 8, 8))
    with pytest.raises(InputError, match="differ"):
        recorder.fill(torch.rand(1, 3, 8, 8), torch.zeros(1, 1, 8, 9))
    with pytest.raises(InputError, match="unknown strategy"):
        _Recorder(strategy="tile")
