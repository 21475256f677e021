"""The ``Inpainter`` base: input checks, the high-resolution strategy, and compositing.

Tensor conventions, stated once and checked here at the boundary (kornia style):

* ``image``: ``(B, 3, H, W)`` float in ``[0, 1]``;
* ``hole``:  ``(B, 1, H, W)``, **1 (True) where pixels are missing**, 0 where known; read by the
  mask rule of :mod:`holefill.mask_rule` (float: above 0.5; bool; uint8: above 127).

A method subclasses :class:`Inpainter` (torch methods) or :class:`NumpyInpainter` (one image at a
time as numpy arrays) and implements only its algorithm. Everything else -- validation, cropping
windows around hole regions, working at a limited resolution, pasting known pixels back -- lives
here once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F

from holefill.errors import InputError, NothingToFillFromError
from holefill.mask_rule import to_hole, warn_empty_mask

Strategy = Literal["original", "crop", "resize"]
STRATEGIES = ("original", "crop", "resize")


@dataclass(frozen=True)
class Window:
    """A half-open pixel box ``[top:bottom, left:right]``."""

    top: int
    left: int
    bottom: int
    right: int

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.top, self.bottom), slice(self.left, self.right)

    def overlaps(self, other: Window) -> bool:
        return not (
            self.bottom <= other.top
            or other.bottom <= self.top
            or self.right <= other.left
            or other.right <= self.left
        )

    def union(self, other: Window) -> Window:
        return Window(
            min(self.top, other.top),
            min(self.left, other.left),
            max(self.bottom, other.bottom),
            max(self.right, other.right),
        )


def hole_windows(hole: np.ndarray, margin: int, min_context: float = 0.5) -> list[Window]:
    """Windows around each connected hole region, grown by context, merged where they overlap.

    Each region's bounding box grows by ``max(margin, min_context * its longest side)`` pixels on
    every side (clipped to the image), so a method sees enough known texture around the hole.
    """
    import cv2

    height, width = hole.shape
    count, _, stats, _ = cv2.connectedComponentsWithStats(hole.astype(np.uint8), connectivity=8)
    windows: list[Window] = []
    for x, y, w, h, _area in stats[1:count]:
        grow = max(margin, int(np.ceil(min_context * max(w, h))))
        windows.append(
            Window(
                max(0, y - grow),
                max(0, x - grow),
                min(height, y + h + grow),
                min(width, x + w + grow),
            )
        )
    merged = True
    while merged:  # merge until no two windows overlap
        merged = False
        result: list[Window] = []
        for window in windows:
            for i, other in enumerate(result):
                if window.overlaps(other):
                    result[i] = other.union(window)
                    merged = True
                    break
            else:
                result.append(window)
        windows = result
    return windows


def check_inputs(image: torch.Tensor, hole: torch.Tensor) -> None:
    """Raise :class:`InputError` unless ``image``/``hole`` follow the tensor conventions."""
    if not isinstance(image, torch.Tensor) or not isinstance(hole, torch.Tensor):
        raise InputError("image and hole must be torch tensors")
    if image.ndim != 4 or image.shape[1] != 3:
        raise InputError(f"image must have shape (B, 3, H, W), got {tuple(image.shape)}")
    if hole.ndim != 4 or hole.shape[1] != 1:
        raise InputError(f"hole mask must have shape (B, 1, H, W), got {tuple(hole.shape)}")
    if image.shape[0] != hole.shape[0] or image.shape[2:] != hole.shape[2:]:
        raise InputError(
            f"image {tuple(image.shape)} and hole mask {tuple(hole.shape)} differ in batch or size"
        )
    if image.shape[2] == 0 or image.shape[3] == 0:
        raise InputError("image has zero size")
    if not image.is_floating_point():
        raise InputError(f"image must be a float tensor in [0, 1], got {image.dtype}")


def bounding_window(windows: list[Window]) -> Window:
    """The smallest window holding all of ``windows``."""
    box = windows[0]
    for window in windows[1:]:
        box = box.union(window)
    return box


def _downscale(image: torch.Tensor, hole: torch.Tensor, max_side: int):
    """Shrink so the longest side is ``max_side``; a low-res pixel is hole if any source pixel was."""
    height, width = image.shape[-2:]
    scale = max_side / max(height, width)
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    small_image = F.interpolate(image, size=size, mode="area")
    small_hole = (F.interpolate(hole, size=size, mode="area") > 0).to(image.dtype)
    return small_image, small_hole


class Inpainter:
    """Base of every method. Subclasses implement :meth:`_fill`.

    Parameters
    ----------
    strategy : {"original", "crop", "resize"}, optional
        High-resolution strategy. ``original`` runs the method on the whole image; ``crop`` runs it
        on a window around each hole region (a small blemish in a 24-megapixel photo costs about as
        much as a small image); ``resize`` works at a longest side of ``max_side`` and upscales only
        the fill. ``crop`` windows larger than ``max_side`` are also worked on at ``max_side``.
        Default: the method's ``default_strategy``.
    max_side : int, optional
        Longest side the method works at (``resize`` and large ``crop`` windows). Default: the
        method's ``default_max_side``; 0 means no limit.
    margin : int
        Minimum context, in pixels, around each hole region for ``crop``.
    """

    name: ClassVar[str] = "base"
    default_strategy: ClassVar[Strategy] = "crop"
    default_max_side: ClassVar[int] = 0
    #: spatial multiple the method needs (e.g. a U-Net); the base pads with hole pixels
    size_multiple: ClassVar[int] = 1

    def __init__(
        self,
        *,
        strategy: str | None = None,
        max_side: int | None = None,
        margin: int = 32,
        seed: int = 0,
    ) -> None:
        strategy = strategy or self.default_strategy
        if strategy not in STRATEGIES:
            raise InputError(
                f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}"
            )
        if max_side is not None and max_side < 0:
            raise InputError(f"max_side must be >= 0, got {max_side}")
        if margin < 0:
            raise InputError(f"margin must be >= 0, got {margin}")
        self.strategy = strategy
        self.max_side = self.default_max_side if max_side is None else int(max_side)
        self.margin = int(margin)
        self.seed = int(seed)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(strategy={self.strategy!r}, max_side={self.max_side}, "
            f"margin={self.margin}, seed={self.seed})"
        )

    # -- the algorithm ---------------------------------------------------------------------
    def _fill(self, image: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        """Return ``(B, 3, H, W)`` with the hole filled. Known pixels may be anything."""
        raise NotImplementedError

    # -- the public call -------------------------------------------------------------------
    @torch.no_grad()
    def fill(self, image: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        """Fill ``hole`` (1 = missing) in ``image``; known pixels come back unchanged."""
        check_inputs(image, hole)
        image = image.float().clamp(0, 1)
        hole = to_hole(hole).float()
        out = image.clone()
        for index in range(image.shape[0]):
            sample_hole = hole[index : index + 1]
            if not sample_hole.any():
                warn_empty_mask()
                continue
            if sample_hole.all():
                raise NothingToFillFromError(
                    "the mask covers the whole image: nothing to fill from (no known pixels)"
                )
            out[index : index + 1] = self._fill_one(image[index : index + 1], sample_hole)
        return out

    __call__ = fill

    def context_window(self, hole: np.ndarray) -> Window | None:
        """The part of an image that :meth:`fill` reads for ``hole`` (bool ``(H, W)``): the box
        around the ``crop`` windows, or None when it reads the whole image. Filling just that
        part gives the same pixels, so a caller may convert only it (a small hole in a huge
        photo)."""
        if self.strategy != "crop" or not hole.any():
            return None
        windows = hole_windows(hole, self.margin)
        if any(hole[window.slices].all() for window in windows):
            return None  # a window without context falls back to the whole image
        return bounding_window(windows)

    def _fill_one(self, image: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        if self.strategy == "crop":
            out = image.clone()
            hole_np = hole[0, 0].cpu().numpy() > 0.5
            for window in hole_windows(hole_np, self.margin):
                rows, cols = window.slices
                crop_hole = hole[..., rows, cols]
                if crop_hole.all():  # the window holds no context: use the whole image instead
                    return self._fill_at_max_side(image, hole)
                out[..., rows, cols] = self._fill_at_max_side(image[..., rows, cols], crop_hole)
            return out
        if self.strategy == "resize":
            return self._fill_at_max_side(image, hole)
        return self._composite(image, hole, self._fill_padded(image, hole))

    def _fill_at_max_side(self, image: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        height, width = image.shape[-2:]
        if not self.max_side or max(height, width) <= self.max_side:
            return self._composite(image, hole, self._fill_padded(image, hole))
        small_image, small_hole = _downscale(image, hole, self.max_side)
        if small_hole.all():
            raise NothingToFillFromError(
                f"at max_side={self.max_side} the hole covers everything; raise max_side"
            )
        small_filled = self._composite(
            small_image, small_hole, self._fill_padded(small_image, small_hole)
        )
        filled = F.interpolate(
            small_filled, size=(height, width), mode="bicubic", align_corners=False
        ).clamp(0, 1)
        return self._composite(image, hole, filled)

    def _fill_padded(self, image: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        multiple = self.size_multiple
        height, width = image.shape[-2:]
        pad_h, pad_w = (-height) % multiple, (-width) % multiple
        if not (pad_h or pad_w):
            return self._fill(image, hole)
        image = F.pad(image, (0, pad_w, 0, pad_h))
        hole = F.pad(hole, (0, pad_w, 0, pad_h), value=1.0)  # padding counts as hole
        return self._fill(image, hole)[..., :height, :width]

    @staticmethod
    def _composite(image: torch.Tensor, hole: torch.Tensor, filled: torch.Tensor) -> torch.Tensor:
        filled = filled.to(image.dtype).clamp(0, 1)
        return torch.where(hole > 0.5, filled, image)


class NumpyInpainter(Inpainter):
    """Base for methods written on numpy: one image at a time.

    Subclasses implement :meth:`_fill_array` on ``image`` ``(H, W, 3)`` float32 in ``[0, 1]`` and
    ``hole`` ``(H, W)`` bool (True = missing).
    """

    def _fill_array(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _fill(self, image: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        results = []
        for index in range(image.shape[0]):
            array = np.ascontiguousarray(
                image[index].permute(1, 2, 0).cpu().numpy(), dtype=np.float32
            )
            hole_array = hole[index, 0].cpu().numpy() > 0.5
            filled = np.asarray(self._fill_array(array, hole_array), dtype=np.float32)
            results.append(torch.from_numpy(filled).permute(2, 0, 1))
        return torch.stack(results).to(image.device)
