"""The one path from input to output: decode -> mask rule -> checks -> fill -> composite -> encode.

:func:`fill_image` is that path. Every entry point calls it and only shapes its own arguments and
its own output: ``holefill fill`` (one call per file), :func:`holefill.inpaint`, ``holefill serve``
(one call per request), ``holefill batch`` (one call per item, in a worker process or a Ray actor)
and ``holefill bench`` (:func:`decode_image` and :func:`decode_hole` to prepare a pair, then one
call per fill).

decode
    Paths, file objects, bytes and PIL images through :func:`holefill.io.read_image` (EXIF
    orientation applied; any mode; 16-bit PNG kept 16-bit; alpha, EXIF and ICC kept); arrays
    ``(H, W)`` grey, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA, uint8, uint16 or float in [0, 1].
    The pixel limit (``max_pixels``) is checked on the header, before decoding.
mask rule
    :mod:`holefill.mask_rule`, one rule for arrays, tensors, PIL images and files; the mask is
    resized to the image when asked (nearest), then grown or shrunk by ``dilate`` pixels.
checks
    the mask's size; the method and its options (:func:`load_method`); an empty mask gives one
    warning and the image back unchanged; a full mask is an error (nothing to fill from).
fill
    the method on float tensors in [0, 1] -- only the part it reads (the windows around the holes
    with the ``crop`` strategy), so a small hole in a huge photo costs little.
composite
    known pixels come back bit-identical; in a grey photo (one grey channel, or three equal
    channels) the hole is brought back to luminance, so no colour appears; with
    ``from_alpha`` the filled pixels become opaque.
encode
    the format by name, 16 bits kept where the format has them (PNG, TIFF) and rounded to 8 bits
    elsewhere (:func:`to_8bit`); grey written as grey; alpha, EXIF and ICC where the format allows.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from holefill.errors import HolefillError, InputError
from holefill.io import (
    DEFAULT_MAX_PIXELS,
    LoadedImage,
    match_mask,
    output_format,
    read_image,
    read_mask_values,
)
from holefill.mask_rule import (
    DEFAULT_THRESHOLD,
    check_threshold,
    empty_mask_hint,
    grow_hole,
    luminance,
    peak_level,
    to_hole,
    warn_empty_mask,
)

FALLBACK_METHOD = "telea"
QUALITY_RANGE = (1, 100)


@dataclass(frozen=True)
class MaskOptions:
    """How a mask becomes the hole (see :mod:`holefill.mask_rule`).

    Parameters
    ----------
    threshold : int
        0-255: values above it, on the 8-bit scale, are holes (127).
    invert : bool
        Black = hole instead of white.
    resize : bool
        Resize a mask of another size to the image (nearest) instead of refusing it.
    from_alpha : bool
        The image's transparent pixels are the hole (no mask is given).
    dilate : int
        Grow the hole by this many pixels; negative shrinks it (an elliptical kernel of
        diameter ``2 * |dilate| + 1``).
    """

    threshold: int = DEFAULT_THRESHOLD
    invert: bool = False
    resize: bool = False
    from_alpha: bool = False
    dilate: int = 0

    def __post_init__(self) -> None:
        check_threshold(self.threshold)
        if isinstance(self.dilate, bool) or not isinstance(self.dilate, int | np.integer):
            raise InputError(f"dilate must be a whole number of pixels, got {self.dilate!r}")


@dataclass(frozen=True)
class OutputOptions:
    """What :func:`fill_image` encodes: ``format`` None keeps arrays only, else a Pillow format
    name (``"PNG"``, ``"JPEG"``, ...; :meth:`for_path` picks it by suffix)."""

    format: str | None = None
    quality: int = 95
    concat: bool = False
    compress_level: int | None = None  # PNG only (0-9); None: Pillow's default

    def __post_init__(self) -> None:
        low, high = QUALITY_RANGE
        if isinstance(self.quality, bool) or not low <= self.quality <= high:
            raise InputError(f"quality must be from {low} to {high}, got {self.quality}")
        if self.format is not None:  # a Pillow name or a suffix: "PNG", "png", "jpg"
            object.__setattr__(self, "format", output_format(f"x.{self.format.lower()}"))

    @classmethod
    def for_path(cls, path, *, quality: int = 95, concat: bool = False) -> OutputOptions:
        """The format of ``path``'s suffix; :class:`InputError` for a suffix holefill cannot write."""
        return cls(output_format(path), quality, concat)


@dataclass
class FillResult:
    """What :func:`fill_image` made.

    ``pixels`` are in the input's layout and dtype: ``(H, W)`` for a grey source, ``(H, W, 3)``
    otherwise (alpha apart, in ``alpha``). ``data`` holds the encoded output when a format was
    asked for. ``seconds`` is the method's own time (0 for an empty mask); ``warning`` the text of
    the warning given (an empty mask), for entry points that report it their own way.
    """

    pixels: np.ndarray
    alpha: np.ndarray | None
    hole: np.ndarray
    source: LoadedImage
    method: str
    seconds: float = 0.0
    warning: str | None = None
    data: bytes | None = None
    format: str | None = None

    @property
    def empty(self) -> bool:
        """The mask had no hole pixel: the image came back unchanged."""
        return not self.hole.any()

    @property
    def hole_ratio(self) -> float:
        return float(self.hole.mean())


# -- the method -----------------------------------------------------------------------------------


def default_method() -> str:
    """``pconv`` when its packaged weights exist, else ``telea``."""
    from holefill.paths import package_weights_dir

    if (package_weights_dir() / "pconv_default.safetensors").is_file():
        return "pconv"
    return FALLBACK_METHOD


def _build_method(method: str, options: dict[str, Any]):
    from holefill.registry import create_inpainter

    try:
        return create_inpainter(method, **options)
    except (TypeError, ValueError) as exc:  # a constructor refusing a value's type or range
        if isinstance(exc, HolefillError):
            raise
        raise InputError(f"invalid options for {method}: {exc}") from None


def method_settings(method: str | None, options: Mapping[str, Any] | None = None):
    """``(name, options)`` as the pipeline runs them: the default method for None, ``device``
    ``auto`` (CUDA when available, else CPU) unless given, unknown options refused."""
    from holefill.registry import check_options, method_options

    name = method or default_method()
    resolved = dict(options or {})
    check_options(name, resolved)
    if "device" in method_options(name):
        resolved.setdefault("device", "auto")
    return name, resolved


def load_method(method: str | None = None, **options: Any):
    """The inpainter of ``method`` with ``options``. Cheap to call again: the networks it holds
    come from :func:`holefill.weights.cached_network`, holefill's one model cache.

    Raises :class:`~holefill.errors.UnknownMethodError` or :class:`InputError` for an unknown
    method, an unknown option or a value the method refuses.
    """
    return _build_method(*method_settings(method, options))


# -- decode and the mask rule --------------------------------------------------------------------


def decode_image(image: Any, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Decode ``image`` (path, file object, bytes, PIL image or array) for the pipeline."""
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
        raise InputError(f"the pixel limit must be a positive number, got {max_pixels!r}")
    if isinstance(image, np.ndarray):
        return _from_array(image)
    if _is_tensor(image):
        raise InputError(
            "inpaint() takes paths, PIL images and numpy arrays; for tensors use "
            "holefill.create_inpainter(method).fill(image, hole)"
        )
    return read_image(image, max_pixels=max_pixels)


def _is_tensor(value: Any) -> bool:
    return type(value).__module__.startswith("torch")


def _from_array(array: np.ndarray) -> LoadedImage:
    if array.size == 0:
        raise InputError("image has zero size")
    if array.dtype.kind == "f":
        if not np.isfinite(array).all():
            raise InputError("float image contains NaN or infinity")
        if array.min() < 0 or array.max() > 1:
            raise InputError("float images must have values in [0, 1]")
    elif array.dtype not in (np.uint8, np.uint16):
        raise InputError(f"unsupported image dtype {array.dtype}; use uint8, uint16 or float")
    if array.ndim == 2:
        return LoadedImage(np.repeat(array[..., None], 3, axis=2), source_mode="L", gray=True)
    if array.ndim == 3 and array.shape[2] == 3:
        return LoadedImage(np.ascontiguousarray(array))
    if array.ndim == 3 and array.shape[2] == 4:
        return LoadedImage(
            np.ascontiguousarray(array[..., :3]), np.ascontiguousarray(array[..., 3]), "RGBA"
        )
    raise InputError(f"image array must be (H, W), (H, W, 3) or (H, W, 4), got {array.shape}")


def read_hole(
    mask: Any,
    *,
    threshold: int = DEFAULT_THRESHOLD,
    invert: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[np.ndarray, float]:
    """The mask rule on a mask of any kind (path, file object, bytes, PIL image, array, tensor).

    Returns the bool ``(H, W)`` hole and the mask's largest value on the 0-255 scale, which
    explains an empty result.
    """
    if mask is None:
        raise InputError("no mask given: pass a mask (or use the image's alpha channel)")
    if _is_tensor(mask):
        mask = mask.detach().cpu().numpy()
    if not isinstance(mask, np.ndarray):
        mask = read_mask_values(mask, max_pixels=max_pixels)
    if mask.ndim == 3 and mask.shape[0] == 1:  # a (1, H, W) tensor
        mask = mask[0]
    hole = to_hole(mask, threshold=threshold, invert=invert)
    return hole, 0.0 if invert else peak_level(mask)


def decode_hole(
    mask: Any,
    image: LoadedImage,
    options: MaskOptions = MaskOptions(),
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[np.ndarray, float]:
    """The hole of ``image``: the mask rule (:func:`read_hole`, or the image's alpha with
    ``from_alpha``), the size check (or resize), then ``dilate``; and the mask's peak value."""
    if options.from_alpha:
        if image.alpha is None:
            raise InputError("the image has no alpha channel to use as the mask")
        hole = to_hole(image.alpha, threshold=options.threshold, invert=not options.invert)
        peak = 0.0
    else:
        hole, peak = read_hole(
            mask, threshold=options.threshold, invert=options.invert, max_pixels=max_pixels
        )
    hole = match_mask(hole, image.size, resize=options.resize)
    return grow_hole(hole, options.dilate), peak


# -- fill and composite -------------------------------------------------------------------------


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
    """Fill ``hole`` (bool, True = missing) in ``(H, W, 3)`` pixels with ``inpainter``; known
    pixels come back bit-identical. Only the part the inpainter reads is converted."""
    import torch

    window = inpainter.context_window(hole)
    rows, cols = window.slices if window is not None else (slice(None), slice(None))
    part, part_hole = pixels[rows, cols], hole[rows, cols]
    hole_tensor = torch.from_numpy(np.ascontiguousarray(part_hole))[None, None]
    filled = tensor_to_pixels(inpainter.fill(pixels_to_tensor(part), hole_tensor), pixels.dtype)
    out = pixels.copy()
    out[rows, cols] = np.where(part_hole[..., None], filled, part)
    return out


def is_gray(pixels: np.ndarray, hole: np.ndarray) -> bool:
    """True when every known pixel has three equal channels (a grey photo stored as RGB)."""
    equal = (pixels[..., 0] == pixels[..., 1]) & (pixels[..., 1] == pixels[..., 2])
    return bool(equal.all() or (equal | hole).all())


def to_8bit(values: np.ndarray) -> np.ndarray:
    """uint16 → uint8, rounding ``value / 257`` to the nearest level (65535 → 255)."""
    if values.dtype != np.uint16:
        return values
    return ((values.astype(np.uint32) + 128) // 257).astype(np.uint8)


def _composite(source: LoadedImage, hole: np.ndarray, filled: np.ndarray, options: MaskOptions):
    """Grey back to grey in the hole; the pixels in the source's layout; alpha made opaque where
    the alpha was the hole."""
    gray = source.gray or is_gray(source.pixels, hole)
    if gray:
        filled = filled.copy()
        filled[hole] = luminance(filled[hole])[:, None]
    pixels = filled[..., 0] if source.gray else filled
    alpha = source.alpha
    if alpha is not None and options.from_alpha:
        alpha = np.where(hole, _opaque(alpha.dtype), alpha).astype(alpha.dtype)
    return pixels, alpha


def _opaque(dtype: np.dtype):
    return 1.0 if np.dtype(dtype).kind == "f" else np.iinfo(dtype).max


# -- encode ---------------------------------------------------------------------------------------


def concat_panel(shown: np.ndarray, hole: np.ndarray, filled: np.ndarray) -> np.ndarray:
    """``input | mask | result`` side by side (the input shows the hole in white)."""
    top = _opaque(shown.dtype)
    hole_view = hole if shown.ndim == 2 else hole[..., None]
    marked = np.where(hole_view, top, shown).astype(shown.dtype)
    mask_panel = np.broadcast_to(np.where(hole_view, top, 0).astype(shown.dtype), shown.shape)
    return np.concatenate([marked, mask_panel, filled], axis=1)


def encode_result(result: FillResult, output: OutputOptions) -> bytes:
    """Encode a fill as ``output`` says: 16 bits where the format has them, else 8."""
    from holefill.io import encode_image

    pixels, alpha = result.pixels, result.alpha
    if pixels.dtype.kind == "f":
        pixels = np.rint(np.clip(pixels, 0, 1) * 255).astype(np.uint8)
        alpha = None if alpha is None else np.rint(np.clip(alpha, 0, 1) * 255).astype(np.uint8)
    if pixels.dtype == np.uint16 and output.format not in ("PNG", "TIFF"):
        pixels, alpha = to_8bit(pixels), None if alpha is None else to_8bit(alpha)
    if output.concat:
        shown = result.source.pixels[..., 0] if result.source.gray else result.source.pixels
        shown = to_8bit(shown) if pixels.dtype == np.uint8 else shown
        if shown.dtype.kind == "f":
            shown = np.rint(shown * 255).astype(np.uint8)
        pixels, alpha = concat_panel(shown.astype(pixels.dtype), result.hole, pixels), None
    return encode_image(
        pixels,
        output.format,
        alpha=alpha,
        quality=output.quality,
        compress_level=output.compress_level,
        exif=result.source.exif or None,
        icc=result.source.icc,
    )


# -- the pipeline ---------------------------------------------------------------------------------


def fill_image(
    image: Any,
    mask: Any = None,
    method: str | None = None,
    options: Mapping[str, Any] | None = None,
    *,
    mask_options: MaskOptions = MaskOptions(),
    output: OutputOptions = OutputOptions(),
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> FillResult:
    """Fill the holes of one image: decode -> mask rule -> checks -> fill -> composite -> encode.

    Parameters
    ----------
    image : path, file object, bytes, PIL.Image or numpy.ndarray
        The photo. Arrays: ``(H, W)``, ``(H, W, 3)`` or ``(H, W, 4)``; uint8, uint16 or float
        in [0, 1].
    mask : path, file object, bytes, PIL.Image, numpy.ndarray or torch.Tensor, optional
        Where the holes are, read by the mask rule (:mod:`holefill.mask_rule`: white / True /
        above 0.5 = hole). Not needed with ``mask_options.from_alpha``.
    method : str, optional
        A name from :func:`holefill.list_methods`; default :func:`default_method`.
    options : mapping, optional
        The method's options (``holefill methods`` lists them); unknown ones are refused.
    mask_options : MaskOptions
        Threshold, invert, resize, from_alpha, dilate.
    output : OutputOptions
        Encode to ``output.format`` (bytes in ``FillResult.data``); None keeps arrays only.
    max_pixels : int
        Refuse larger images (and masks), checked on the header before decoding.

    Returns
    -------
    FillResult
        The filled pixels in the input's layout and dtype, the hole, the method and its time,
        the warning given (an empty mask), and the encoded bytes when asked for.

    Raises
    ------
    holefill.errors.InputError
        Unreadable input, a mask of another size, a full mask, an unknown method or option,
        an image over ``max_pixels``, a format that cannot be written.

    Examples
    --------
    >>> import numpy as np
    >>> from holefill.pipeline import fill_image
    >>> photo = np.full((32, 32, 3), 120, np.uint8); hole = np.zeros((32, 32), bool)
    >>> hole[10:14, 10:14] = True
    >>> result = fill_image(photo, hole, "telea")
    >>> result.pixels.shape, result.hole_ratio
    ((32, 32, 3), 0.015625)
    """
    source = decode_image(image, max_pixels=max_pixels)
    hole, peak = decode_hole(mask, source, mask_options, max_pixels=max_pixels)
    name, resolved = method_settings(method, options)
    inpainter = _build_method(name, resolved)
    warning, seconds = None, 0.0
    if hole.any():
        start = time.perf_counter()
        filled = fill_pixels(source.pixels, hole, inpainter)
        seconds = time.perf_counter() - start
    else:
        warning = warn_empty_mask(empty_mask_hint(peak, mask_options.threshold))
        filled = source.pixels
    pixels, alpha = _composite(source, hole, filled, mask_options)
    result = FillResult(pixels, alpha, hole, source, name, seconds, warning)
    if output.format is not None:
        result.data, result.format = encode_result(result, output), output.format
    return result


__all__ = [
    "FillResult",
    "MaskOptions",
    "OutputOptions",
    "decode_hole",
    "decode_image",
    "default_method",
    "fill_image",
    "fill_pixels",
    "is_gray",
    "load_method",
    "method_settings",
    "read_hole",
    "to_8bit",
]
