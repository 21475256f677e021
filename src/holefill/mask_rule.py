"""The mask rule: which mask values are holes, for arrays, tensors, PIL images and files alike.

Every mask holefill is given -- a numpy array, a torch tensor, a PIL image or an image file -- is
read by this one rule. Files and PIL images are first decoded into the array they hold
(:func:`holefill.io.read_mask_values`), so a mask means the same however it arrives.

A pixel is a **hole** when its value, on the 8-bit scale, is above ``threshold`` (127 by default;
``--mask-threshold``, ``mask_threshold=``):

* ``bool``: True = hole (the threshold does not apply);
* ``uint8`` and other integer types (values 0-255): above ``threshold``, so 128 and up at 127;
* ``uint16``: scaled to 8 bits (``value / 257``), so 32768 and up at 127;
* float (arrays and tensors, values in [0, 1]): scaled by 255, so above 0.5 (= 127.5 / 255) at 127.

Exactly: hole where ``level > threshold + 0.5`` with ``level`` the value on the 0-255 scale, which
for integers is "above ``threshold``". A mask of value 50 is known as an array, as a tensor and as
a file. White (255) is a hole and black (0) is known; ``invert`` swaps them.

Colour masks (``(H, W, 3)`` arrays, RGB files) use their luminance (ITU-R 601-2, as Pillow's "L"
conversion computes it). A mask with an alpha channel whose colour is one uniform value and whose
alpha varies (a brush painted on a transparent layer) uses the alpha: painted = hole; otherwise its
luminance. With ``--mask-from-alpha`` the image's own transparent pixels (alpha at or below the
threshold) are the hole.

After the rule, :func:`grow_hole` grows the hole by ``dilate`` pixels (or shrinks it, negative):
a morphological dilation (erosion) with an elliptical kernel of diameter ``2 * |dilate| + 1``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from holefill.errors import InputError

DEFAULT_THRESHOLD = 127
#: what an empty mask does, everywhere: one warning, and the image comes back unchanged
EMPTY_MASK_MESSAGE = "the mask is empty: nothing to fill, returning the image unchanged"
#: Pillow's integer weights of ITU-R 601-2 luma (``L = (19595 R + 38470 G + 7471 B + 2**15) >> 16``)
_LUMA_WEIGHTS = (19595, 38470, 7471)


def check_threshold(threshold: int) -> int:
    """``threshold`` as an int in 0-255, or :class:`InputError`."""
    if (
        isinstance(threshold, bool)
        or not float(threshold).is_integer()
        or not 0 <= threshold <= 255
    ):
        raise InputError(f"the mask threshold must be an integer from 0 to 255, got {threshold!r}")
    return int(threshold)


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Luma of ``(..., 3)`` RGB, in the input's dtype: Pillow's exact integers for uint8, else
    ``0.299 R + 0.587 G + 0.114 B`` (rounded for integer types)."""
    if rgb.dtype == np.uint8:
        weights = np.asarray(_LUMA_WEIGHTS, dtype=np.uint32)
        return ((rgb.astype(np.uint32) @ weights + 0x8000) >> 16).astype(np.uint8)
    luma = rgb.astype(np.float64) @ np.asarray([0.299, 0.587, 0.114])
    if rgb.dtype.kind in "ui":
        top = np.iinfo(rgb.dtype).max
        return np.clip(np.rint(luma), 0, top).astype(rgb.dtype)
    return luma.astype(rgb.dtype)


def _single_channel(values: np.ndarray) -> np.ndarray:
    """One value per pixel: grey as is, colour by luminance, a painted layer by its alpha."""
    if values.ndim == 2:
        return values
    if values.ndim != 3 or values.shape[2] not in (1, 2, 3, 4):
        raise InputError(f"a mask must be (H, W) or (H, W, 1/3/4), got shape {values.shape}")
    channels = values.shape[2]
    if channels == 1:
        return values[..., 0]
    colour = values[..., 0] if channels == 2 else values[..., :3]
    if channels in (2, 4):
        alpha = values[..., -1]
        uniform = colour.min() == colour.max()
        if uniform and alpha.min() != alpha.max():
            return alpha
    if values.dtype == np.bool_:
        return colour.any(axis=2) if channels != 2 else colour
    return colour if channels == 2 else luminance(colour)


def to_hole(values: Any, *, threshold: int = DEFAULT_THRESHOLD, invert: bool = False):
    """Apply the mask rule: a bool hole mask (True = hole) from mask values.

    Parameters
    ----------
    values : numpy.ndarray or torch.Tensor
        A numpy mask ``(H, W)`` or ``(H, W, 1/3/4)`` (channels are reduced as the module
        docstring says), or a torch tensor of any shape (each element on its own).
    threshold : int
        0-255: a value above it, on the 8-bit scale, is a hole.
    invert : bool
        Swap hole and known (black = hole).

    Returns
    -------
    numpy.ndarray or torch.Tensor
        bool, ``(H, W)`` for numpy input, the tensor's shape for a tensor.
    """
    threshold = check_threshold(threshold)
    if _is_tensor(values):
        hole = _tensor_hole(values, threshold)
    else:
        array = _single_channel(np.asarray(values))
        hole = _array_hole(array, threshold)
    return ~hole if invert else hole


def _array_hole(array: np.ndarray, threshold: int) -> np.ndarray:
    kind = array.dtype.kind
    if kind == "b":
        return array.astype(bool, copy=False)
    if array.dtype == np.uint16:
        return array > 257 * threshold + 128  # value / 257 > threshold + 0.5
    if kind in "ui":
        if array.size and (array.min() < 0 or array.max() > 255):
            raise InputError(
                f"an integer mask of type {array.dtype} must hold values 0-255 (or be uint16), "
                f"got {array.min()}..{array.max()}; use bool for True = hole"
            )
        return array > threshold
    if kind == "f":
        if not np.isfinite(array).all():
            raise InputError("the mask contains NaN or infinity")
        return array > (threshold + 0.5) / 255.0
    raise InputError(f"unsupported mask type {array.dtype}; use bool, uint8, uint16 or float")


def _is_tensor(values: Any) -> bool:
    return type(values).__module__.startswith("torch") and hasattr(values, "detach")


def _tensor_hole(tensor, threshold: int):
    import torch

    if tensor.dtype == torch.bool:
        return tensor
    if tensor.is_floating_point():
        return tensor > (threshold + 0.5) / 255.0
    if tensor.dtype == torch.uint16:
        return tensor.to(torch.int32) > 257 * threshold + 128
    return tensor > threshold


def peak_level(values: Any) -> float:
    """The largest mask value on the 0-255 scale (for the empty-mask hint)."""
    array = np.asarray(values.detach().cpu() if _is_tensor(values) else values)
    if array.size == 0 or array.dtype.kind not in "uif":
        return 0.0
    top = float(np.nanmax(array))
    if array.dtype == np.uint16:
        return top / 257.0
    return top * 255.0 if array.dtype.kind == "f" else top


def grow_hole(hole: np.ndarray, pixels: int) -> np.ndarray:
    """Grow the hole by ``pixels`` (shrink it when negative): a dilation (erosion) of the bool
    mask with an elliptical kernel of diameter ``2 * |pixels| + 1`` (OpenCV). Pixels outside
    the image count as neither hole nor known."""
    if not pixels:
        return hole
    import cv2

    size = 2 * abs(int(pixels)) + 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    operation = cv2.dilate if pixels > 0 else cv2.erode
    return operation(hole.astype(np.uint8), kernel).astype(bool)


def warn_empty_mask(hint: str = "") -> str:
    """Emit the one empty-mask warning; returns its text (entry points report it too)."""
    message = EMPTY_MASK_MESSAGE + (f" ({hint})" if hint else "")
    warnings.warn(message, UserWarning, stacklevel=3)
    return message


def empty_mask_hint(peak: float, threshold: int) -> str:
    """Why a mask with some nonzero values came out empty."""
    if peak <= 0:
        return ""
    return (
        f"its largest value is {peak:g} on the 0-255 scale, not above the threshold {threshold}; "
        "a 0/1 mask must be bool, or use 255 for holes"
    )


__all__ = [
    "DEFAULT_THRESHOLD",
    "EMPTY_MASK_MESSAGE",
    "check_threshold",
    "empty_mask_hint",
    "grow_hole",
    "luminance",
    "peak_level",
    "to_hole",
    "warn_empty_mask",
]
