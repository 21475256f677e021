"""Biharmonic inpainting, through scikit-image.

References
----------
S. B. Damelin and N. S. Hoang, "On Surface Completion and Image Inpainting by Biharmonic
Functions: Numerical Aspects", International Journal of Mathematics and Mathematical Sciences, 2018.
"""

from __future__ import annotations

import numpy as np

from holefill.inpainter import NumpyInpainter
from holefill.registry import Package, register_method


@register_method(
    "biharmonic",
    summary="Biharmonic equation inpainting (scikit-image, Damelin & Hoang 2018)",
    needs=(Package("skimage", "scikit-image"),),
)
class BiharmonicInpainter(NumpyInpainter):
    """Solve the biharmonic equation in each hole region (``skimage.restoration.inpaint_biharmonic``).

    Smooth fills; cost grows with the hole area, so large images default to ``crop`` windows.
    """

    name = "biharmonic"
    default_strategy = "crop"
    default_max_side = 1024

    def __init__(
        self,
        *,
        strategy: str | None = None,
        max_side: int | None = None,
        margin: int = 8,
        seed: int = 0,
    ) -> None:
        super().__init__(strategy=strategy, max_side=max_side, margin=margin, seed=seed)

    def _fill_array(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        from skimage.restoration import inpaint_biharmonic

        return inpaint_biharmonic(image, hole, channel_axis=-1).astype(np.float32)
