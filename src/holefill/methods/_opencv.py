"""Shared code of the two OpenCV methods (they differ only in the flag)."""

from __future__ import annotations

import numpy as np

from holefill.errors import InputError
from holefill.inpainter import NumpyInpainter


class OpenCVInpainter(NumpyInpainter):
    """``cv2.inpaint`` on the 8-bit RGB image, the form users compare against.

    OpenCV's float32 path returns values far outside the input range (OpenCV 5), so the image is
    rounded to 8 bits for the fill; only hole pixels come from it.
    """

    default_strategy = "crop"
    _flag_name = ""

    def __init__(
        self,
        *,
        radius: float = 3.0,
        strategy: str | None = None,
        max_side: int | None = None,
        margin: int = 16,
        seed: int = 0,
    ) -> None:
        super().__init__(strategy=strategy, max_side=max_side, margin=margin, seed=seed)
        if radius <= 0:
            raise InputError(f"radius must be > 0, got {radius}")
        self.radius = float(radius)

    def _fill_array(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        import cv2

        flag = getattr(cv2, self._flag_name)
        image8 = np.rint(np.clip(image, 0, 1) * 255).astype(np.uint8)
        filled = cv2.inpaint(image8, hole.astype(np.uint8), self.radius, flag)
        return filled.astype(np.float32) / 255.0
