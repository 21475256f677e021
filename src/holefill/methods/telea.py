"""Telea's fast-marching inpainting, through OpenCV.

References
----------
A. Telea, "An Image Inpainting Technique Based on the Fast Marching Method",
Journal of Graphics Tools 9(1), 2004.
"""

from holefill.methods._opencv import OpenCVInpainter
from holefill.registry import Package, register_method


@register_method(
    "telea",
    summary="OpenCV fast-marching inpainting (Telea 2004)",
    needs=(Package("cv2", "opencv-python-headless"),),
)
class TeleaInpainter(OpenCVInpainter):
    """Fill by fast marching from the hole boundary inwards, each pixel a weighted average of its
    known neighbourhood within ``radius`` (``cv2.INPAINT_TELEA``)."""

    name = "telea"
    _flag_name = "INPAINT_TELEA"
