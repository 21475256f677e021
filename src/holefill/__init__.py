"""holefill: fill holes in photographs.

Public API: :func:`inpaint`, :func:`list_methods`, :func:`create_inpainter`.
"""

from holefill.api import inpaint
from holefill.registry import create_inpainter, list_methods

__version__ = "0.1.0"
__all__ = ["inpaint", "list_methods", "create_inpainter", "__version__"]
