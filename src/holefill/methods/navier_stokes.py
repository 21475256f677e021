"""Navier-Stokes inpainting, through OpenCV.

References
----------
M. Bertalmio, A. L. Bertozzi, G. Sapiro, "Navier-Stokes, Fluid Dynamics, and Image and Video
Inpainting", CVPR 2001.
"""

from holefill.methods._opencv import OpenCVInpainter
from holefill.registry import Package, register_method


@register_method(
    "navier_stokes",
    summary="OpenCV Navier-Stokes inpainting (Bertalmio et al. 2001)",
    needs=(Package("cv2", "opencv-python-headless"),),
)
class NavierStokesInpainter(OpenCVInpainter):
    """Propagate isophotes into the hole as a fluid flow (``cv2.INPAINT_NS``)."""

    name = "navier_stokes"
    _flag_name = "INPAINT_NS"
