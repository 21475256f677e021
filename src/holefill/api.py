"""``inpaint()``: the one-call API. Accepts paths, PIL images or numpy arrays; returns the same kind."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

import numpy as np
from PIL import Image

from holefill.errors import InputError
from holefill.io import DEFAULT_MAX_PIXELS, binarize_mask, match_mask, read_image, read_mask
from holefill.registry import create_inpainter

DEFAULT_METHOD = "telea"


def default_method() -> str:
    """``pconv`` when its packaged weights exist, else ``telea``."""
    from holefill.paths import package_weights_dir

    if (package_weights_dir() / "pconv_default.safetensors").is_file():
        return "pconv"
    return DEFAULT_METHOD


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value


@lru_cache(maxsize=4)
def _cached_inpainter(method: str, frozen_options: tuple):
    return create_inpainter(method, **dict(frozen_options))


def get_inpainter(method: str, **options: Any):
    """An inpainter for ``method``, reused across calls with the same options (models load once)."""
    try:
        return _cached_inpainter(method, _freeze(options))
    except TypeError:  # unhashable option value
        return create_inpainter(method, **options)


def pixels_to_tensor(pixels: np.ndarray):
    """``(H, W, 3)`` uint8/uint16/float array → ``(1, 3, H, W)`` float32 tensor in [0, 1]."""
    import torch

    if pixels.dtype == np.uint8:
        scaled = pixels.astype(np.float32) / 255.0
    elif pixels.dtype == np.uint16:
        scaled = pixels.astype(np.float32) / 65535.0
    else:
        scaled = np.clip(pixels.astype(np.float32), 0.0, 1.0)
    return torch.from_numpy(np.ascontiguousarray(scaled.transpose(2, 0, 1)))[None]


def tensor_to_pixels(tensor, dtype: np.dtype) -> np.ndarray:
    """``(1, 3, H, W)`` tensor in [0, 1] → ``(H, W, 3)`` array of ``dtype`` (rounded)."""
    array = tensor[0].detach().float().cpu().clamp(0, 1).permute(1, 2, 0).numpy()
    if dtype == np.uint8:
        return np.rint(array * 255.0).astype(np.uint8)
    if dtype == np.uint16:
        return np.rint(array * 65535.0).astype(np.uint16)
    return array.astype(dtype)


def fill_pixels(pixels: np.ndarray, hole: np.ndarray, inpainter) -> np.ndarray:
    """Fill ``hole`` (bool, True = missing) in ``(H, W, 3)`` pixels; known pixels bit-identical."""
    import torch

    if not hole.any():
        import warnings

        warnings.warn("the mask is empty: nothing to fill, returning the input", stacklevel=2)
        return pixels.copy()
    image = pixels_to_tensor(pixels)
    hole_tensor = torch.from_numpy(hole.astype(np.float32))[None, None]
    filled = tensor_to_pixels(inpainter.fill(image, hole_tensor), pixels.dtype)
    return np.where(hole[..., None], filled, pixels)


def _array_to_rgb(array: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    if array.ndim == 2:
        return np.repeat(array[..., None], 3, axis=2), None
    if array.ndim == 3 and array.shape[2] == 3:
        return array, None
    if array.ndim == 3 and array.shape[2] == 4:
        return array[..., :3], array[..., 3]
    raise InputError(f"image array must be (H, W), (H, W, 3) or (H, W, 4), got {array.shape}")


def _check_array(array: np.ndarray) -> None:
    if array.size == 0:
        raise InputError("image has zero size")
    if array.dtype.kind == "f":
        if not np.isfinite(array).all():
            raise InputError("float image contains NaN or infinity")
        if array.min() < 0 or array.max() > 1:
            raise InputError("float images must have values in [0, 1]")
    elif array.dtype not in (np.uint8, np.uint16):
        raise InputError(f"unsupported image dtype {array.dtype}; use uint8, uint16 or float")


def _mask_to_bool(mask: Any, *, threshold: int, invert: bool) -> np.ndarray:
    if isinstance(mask, str | os.PathLike | Image.Image):
        return read_mask(mask, threshold=threshold, invert=invert)
    array = np.asarray(mask)
    if array.ndim == 3 and array.shape[2] in (1, 3, 4):
        array = array[..., 0] if array.shape[2] == 1 else array[..., :3].max(axis=2)
    if array.ndim != 2:
        raise InputError(f"mask must be (H, W), got shape {array.shape}")
    hole = array != 0  # arrays: nonzero = hole
    return ~hole if invert else hole


def inpaint(
    image: Any,
    mask: Any,
    method: str | None = None,
    *,
    invert_mask: bool = False,
    mask_threshold: int = 127,
    resize_mask: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    **options: Any,
):
    """Fill the holes of ``image`` marked by ``mask``.

    Parameters
    ----------
    image : path, PIL.Image or numpy.ndarray
        ``(H, W, 3)`` uint8/uint16, float in [0, 1], grayscale ``(H, W)`` or RGBA ``(H, W, 4)``.
    mask : path, PIL.Image or numpy.ndarray
        ``(H, W)``; **nonzero / white = hole**. Images and paths are binarised at
        ``mask_threshold``; arrays at nonzero.
    method : str, optional
        A name from :func:`holefill.list_methods`; default ``pconv`` when its weights are
        installed, else ``telea``.
    invert_mask : bool
        Treat black as hole instead.
    resize_mask : bool
        Resize a mask of another size to the image (nearest) instead of raising.
    **options
        The method's options (see ``holefill methods``), e.g. ``patch_size=7`` or ``strategy="crop"``.

    Returns
    -------
    The same kind as ``image``: a PIL image for a PIL image or a path, an array of the same dtype and
    shape for an array. Known pixels come back bit-identical; alpha is kept.

    Examples
    --------
    >>> import numpy as np, holefill
    >>> image = np.zeros((32, 32, 3), np.uint8); mask = np.zeros((32, 32), bool); mask[8:12, 8:12] = 1
    >>> holefill.inpaint(image, mask, method="telea").shape
    (32, 32, 3)
    """
    method = method or default_method()
    inpainter = get_inpainter(method, **options)
    if isinstance(image, np.ndarray):
        _check_array(image)
        rgb, alpha = _array_to_rgb(image)
        hole = match_mask(
            _mask_to_bool(mask, threshold=mask_threshold, invert=invert_mask),
            rgb.shape[:2],
            resize=resize_mask,
        )
        filled = fill_pixels(np.ascontiguousarray(rgb), hole, inpainter)
        if image.ndim == 2:
            filled = np.where(
                hole,
                np.rint(filled.astype(np.float64).mean(axis=2)).astype(image.dtype)
                if image.dtype.kind != "f"
                else filled.mean(axis=2),
                image,
            )
            return filled.astype(image.dtype)
        if alpha is not None:
            filled = np.dstack([filled, alpha])
        return filled.astype(image.dtype)
    if not isinstance(image, str | os.PathLike | Image.Image):
        raise InputError(f"image must be a path, a PIL image or a numpy array, not {type(image)}")
    loaded = read_image(image, max_pixels=max_pixels)
    hole = match_mask(
        _mask_to_bool(mask, threshold=mask_threshold, invert=invert_mask),
        loaded.size,
        resize=resize_mask,
    )
    filled = fill_pixels(loaded.pixels, hole, inpainter)
    if filled.dtype == np.uint16:
        filled = (filled // 257).astype(np.uint8)
    if isinstance(image, Image.Image) and image.mode in ("L", "1"):
        return Image.fromarray(
            np.where(
                hole, filled.mean(axis=2).round().astype(np.uint8), np.asarray(image.convert("L"))
            )
        )
    if loaded.alpha is not None:
        alpha = loaded.alpha if loaded.alpha.dtype == np.uint8 else (loaded.alpha // 257)
        result = Image.fromarray(np.dstack([filled, alpha.astype(np.uint8)]), "RGBA")
    else:
        result = Image.fromarray(filled, "RGB")
    if loaded.exif:
        result.info["exif"] = loaded.exif
    if loaded.icc:
        result.info["icc_profile"] = loaded.icc
    return result


__all__ = ["inpaint", "fill_pixels", "get_inpainter", "default_method", "binarize_mask"]
