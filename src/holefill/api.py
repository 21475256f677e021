"""``inpaint()``: the one-call API. Accepts paths, PIL images or numpy arrays; returns the same kind.

The work is :func:`holefill.pipeline.fill_image`; this module only shapes its result as the input
was: an array for an array, a PIL image for a path or a PIL image.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from PIL import Image

from holefill.io import DEFAULT_MAX_PIXELS
from holefill.mask_rule import DEFAULT_THRESHOLD
from holefill.pipeline import (
    FillResult,
    MaskOptions,
    default_method,
    fill_image,
    fill_pixels,
    load_method,
    to_8bit,
)

#: the name older code imports: one inpainter per (method, options), reused
get_inpainter = load_method


def inpaint(
    image: Any,
    mask: Any,
    method: str | None = None,
    *,
    invert_mask: bool = False,
    mask_threshold: int = DEFAULT_THRESHOLD,
    resize_mask: bool = False,
    dilate: int = 0,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    **options: Any,
):
    """Fill the holes of ``image`` marked by ``mask``.

    Parameters
    ----------
    image : path, PIL.Image or numpy.ndarray
        ``(H, W, 3)`` uint8/uint16, float in [0, 1], grayscale ``(H, W)`` or RGBA ``(H, W, 4)``.
    mask : path, PIL.Image, numpy.ndarray or torch.Tensor
        ``(H, W)``, read by holefill's one mask rule (:mod:`holefill.mask_rule`): bool True =
        hole; uint8 (and files) above ``mask_threshold`` = hole; uint16 scaled to 8 bits; float
        above 0.5 = hole. So white = hole, and a value of 50 is known as an array and as a file.
    method : str, optional
        A name from :func:`holefill.list_methods`; default ``pconv`` when its weights are
        installed, else ``telea``.
    invert_mask : bool
        Treat black as hole instead.
    mask_threshold : int
        0-255, on the 8-bit scale (127).
    resize_mask : bool
        Resize a mask of another size to the image (nearest) instead of raising.
    dilate : int
        Grow the hole by this many pixels (negative: shrink it), with an elliptical kernel.
    max_pixels : int
        Refuse larger images (100 megapixels), checked before decoding.
    **options
        The method's options (see ``holefill methods``), e.g. ``patch_size=7`` or ``strategy="crop"``.

    Returns
    -------
    The same kind as ``image``: an array of the same dtype and shape for an array; a PIL image
    for a PIL image or a path (grey stays grey, 16-bit grey stays 16-bit ``I;16``; 16-bit colour,
    which a PIL image cannot hold, comes back as 8-bit RGB with a warning). Known pixels come
    back bit-identical; alpha, EXIF and ICC are kept. An empty mask gives a warning and the
    image unchanged.

    Examples
    --------
    >>> import numpy as np, holefill
    >>> image = np.zeros((32, 32, 3), np.uint8); mask = np.zeros((32, 32), bool); mask[8:12, 8:12] = 1
    >>> holefill.inpaint(image, mask, method="telea").shape
    (32, 32, 3)
    """
    mask_options = MaskOptions(
        threshold=mask_threshold, invert=invert_mask, resize=resize_mask, dilate=dilate
    )
    result = fill_image(
        image, mask, method, options, mask_options=mask_options, max_pixels=max_pixels
    )
    if isinstance(image, np.ndarray):
        return _as_array(result, image)
    return _as_pil(result)


def _as_array(result: FillResult, image: np.ndarray) -> np.ndarray:
    pixels = result.pixels
    if image.ndim == 3 and image.shape[2] == 4:
        pixels = np.dstack([pixels, result.alpha])
    return pixels.astype(image.dtype, copy=False)


def _as_pil(result: FillResult) -> Image.Image:
    pixels, alpha = result.pixels, result.alpha
    if pixels.dtype == np.uint16 and (pixels.ndim == 3 or alpha is not None):
        warnings.warn(
            "a PIL image cannot hold 16-bit colour: returning 8 bits per channel "
            "(holefill.pipeline.fill_image keeps 16 bits)",
            UserWarning,
            stacklevel=3,
        )
        pixels, alpha = to_8bit(pixels), None if alpha is None else to_8bit(alpha)
    if alpha is None:
        image = Image.fromarray(pixels)  # L, I;16 or RGB
    else:
        mode = "LA" if pixels.ndim == 2 else "RGBA"
        image = Image.fromarray(np.dstack([pixels, to_8bit(alpha)]), mode)
    if result.source.exif:
        image.info["exif"] = result.source.exif
    if result.source.icc:
        image.info["icc_profile"] = result.source.icc
    return image


__all__ = ["inpaint", "fill_pixels", "get_inpainter", "default_method"]
