"""Every read and write of images and masks: EXIF orientation, modes, 16-bit, limits, atomic writes."""

from __future__ import annotations

import io
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from holefill.errors import ImageTooLargeError, InputError

#: Images with more pixels than this are refused (decompression-bomb guard). 100 megapixels.
DEFAULT_MAX_PIXELS = 100_000_000
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
_PIL_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}

Source = str | os.PathLike | IO[bytes] | Image.Image

_UMASK = os.umask(0)
os.umask(_UMASK)


@dataclass
class LoadedImage:
    """An image as holefill works with it.

    ``pixels`` is ``(H, W, 3)`` uint8 or uint16 RGB; ``alpha`` is ``(H, W)`` of the same dtype or
    None; ``exif``/``icc`` are kept to write back where the output format allows.
    """

    pixels: np.ndarray
    alpha: np.ndarray | None = None
    exif: bytes | None = None
    icc: bytes | None = None
    source_mode: str = "RGB"
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> tuple[int, int]:
        """``(height, width)``."""
        return self.pixels.shape[0], self.pixels.shape[1]


def _name(source: Source) -> str:
    if isinstance(source, str | os.PathLike):
        return str(source)
    return getattr(source, "name", "<image>") if not isinstance(source, Image.Image) else "<image>"


def _open(source: Source, max_pixels: int) -> Image.Image:
    if isinstance(source, Image.Image):
        image = source
    else:
        if isinstance(source, str | os.PathLike) and not Path(source).is_file():
            raise InputError(f"{source}: no such file")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                image = Image.open(source)
        except (
            UnidentifiedImageError,
            Image.DecompressionBombWarning,
            Image.DecompressionBombError,
        ) as exc:
            if "decompression" in str(exc).lower() or "exceeds limit" in str(exc).lower():
                raise ImageTooLargeError(f"{_name(source)}: {exc}") from None
            raise InputError(f"{_name(source)}: not an image file holefill can read") from None
        except OSError as exc:
            raise InputError(f"{_name(source)}: cannot read image ({exc})") from None
    width, height = image.size
    if width == 0 or height == 0:
        raise InputError(f"{_name(source)}: image has zero size ({width}x{height})")
    if max_pixels and width * height > max_pixels:
        raise ImageTooLargeError(
            f"{_name(source)}: {width}x{height} = {width * height:,} pixels exceeds the limit of "
            f"{max_pixels:,} (raise it with --max-pixels)"
        )
    return image


def _load_pixels(image: Image.Image, name: str) -> Image.Image:
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None  # our own limit was checked on the header already
    try:
        image.load()
        return ImageOps.exif_transpose(image) or image
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{name}: image data is corrupt or truncated ({exc})") from None
    finally:
        Image.MAX_IMAGE_PIXELS = previous


def _png_bit_depth(source: Source) -> int | None:
    """Bit depth from a PNG's IHDR (PIL reduces 16-bit colour PNGs to 8 bits)."""
    if isinstance(source, Image.Image):
        return None
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as handle:
            head = handle.read(26)
    else:  # an open file (an upload in memory): PIL reads it from the start too
        source.seek(0)
        head = source.read(26)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or len(head) < 26:
        return None
    return head[24]


def _read_png16(source: str | os.PathLike | IO[bytes]) -> tuple[np.ndarray, np.ndarray | None]:
    import cv2

    if isinstance(source, str | os.PathLike):
        data = cv2.imread(str(source), cv2.IMREAD_UNCHANGED)
    else:
        source.seek(0)
        data = cv2.imdecode(np.frombuffer(source.read(), np.uint8), cv2.IMREAD_UNCHANGED)
    if data is None:
        raise InputError(f"{_name(source)}: cannot decode 16-bit PNG")
    if data.ndim == 2:
        return np.repeat(data[..., None], 3, axis=2), None
    if data.shape[2] == 4:
        return np.ascontiguousarray(data[..., 2::-1]), np.ascontiguousarray(data[..., 3])
    return np.ascontiguousarray(data[..., ::-1]), None


def _to_rgb(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        gray = np.asarray(image, dtype=np.uint16)
        return np.repeat(gray[..., None], 3, axis=2), None
    if mode in ("I", "F"):
        gray = np.asarray(image, dtype=np.float64)
        top = 65535 if gray.max(initial=0) > 255 else 255
        dtype = np.uint16 if top == 65535 else np.uint8
        gray = np.clip(np.rint(gray), 0, top).astype(dtype)
        return np.repeat(gray[..., None], 3, axis=2), None
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        mode == "P" and "transparency" in image.info
    )
    if has_alpha:
        rgba = np.asarray(image.convert("RGBA"))
        return np.ascontiguousarray(rgba[..., :3]), np.ascontiguousarray(rgba[..., 3])
    return np.asarray(image.convert("RGB")), None  # L, 1, P, CMYK, YCbCr, LAB, HSV


def read_image(source: Source, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Read an image file (or PIL image) into RGB pixels, applying EXIF orientation.

    Grayscale, palette, RGBA, 16-bit PNG and CMYK JPEG are read correctly; 16-bit stays 16-bit.
    Raises :class:`InputError` for unreadable, truncated or zero-size files and
    :class:`ImageTooLargeError` above ``max_pixels``.
    """
    name = _name(source)
    image = _open(source, max_pixels)
    exif = image.info.get("exif")
    icc = image.info.get("icc_profile")
    mode = image.mode
    if (
        image.format == "PNG"
        and _png_bit_depth(source) == 16
        and mode not in ("I;16", "I", "I;16B")
    ):
        orientation = image.getexif().get(0x0112, 1)
        pixels, alpha = _read_png16(source)
        if orientation != 1:
            pixels, alpha = _read_via_pil_orientation(image, pixels, alpha, name)
    else:
        image = _load_pixels(image, name)
        pixels, alpha = _to_rgb(image)
    if exif:
        exif = _reset_orientation(exif)
    return LoadedImage(np.ascontiguousarray(pixels), alpha, exif, icc, mode, dict(image.info))


def _read_via_pil_orientation(image, pixels, alpha, name):
    """Apply EXIF orientation to arrays read outside PIL (16-bit PNG)."""
    orientation = image.getexif().get(0x0112, 1)
    ops = {
        2: [np.fliplr],
        3: [lambda a: np.rot90(a, 2)],
        4: [np.flipud],
        5: [lambda a: np.rot90(a, 1), np.flipud],
        6: [lambda a: np.rot90(a, -1)],
        7: [lambda a: np.rot90(a, -1), np.flipud],
        8: [lambda a: np.rot90(a, 1)],
    }
    for op in ops.get(orientation, []):
        pixels = op(pixels)
        alpha = op(alpha) if alpha is not None else None
    return np.ascontiguousarray(pixels), None if alpha is None else np.ascontiguousarray(alpha)


def _reset_orientation(exif: bytes) -> bytes:
    """EXIF with Orientation = 1, since the pixels are already upright."""
    parsed = Image.Exif()
    try:
        parsed.load(exif)
    except Exception:  # noqa: BLE001 - malformed EXIF is dropped, never fatal
        return b""
    if 0x0112 in parsed:
        parsed[0x0112] = 1
    return parsed.tobytes()


def binarize_mask(values: np.ndarray, *, threshold: int = 127, invert: bool = False) -> np.ndarray:
    """Hole mask (True = hole) from 8-bit values: above ``threshold`` is hole (or below, inverted)."""
    hole = values > threshold
    return ~hole if invert else hole


def read_mask(
    source: Source,
    *,
    threshold: int = 127,
    invert: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Read a mask of any mode as a bool ``(H, W)`` array, **True = hole** (white = hole).

    Colour masks use their luminance; 16-bit masks are scaled to 8 bits; a mask with an alpha
    channel and a uniform colour uses the alpha (painted = hole).
    """
    name = _name(source)
    image = _load_pixels(_open(source, max_pixels), name)
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        values = values / 257.0 if values.max(initial=0) > 255 else values
    elif image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = np.asarray(image.convert("RGBA"))
        luminance = np.asarray(image.convert("RGBA").convert("L"), dtype=np.float64)
        alpha = rgba[..., 3]
        uniform = luminance.min() == luminance.max()
        values = alpha.astype(np.float64) if uniform and alpha.min() != alpha.max() else luminance
    else:
        values = np.asarray(image.convert("L"), dtype=np.float64)
    return binarize_mask(values, threshold=threshold, invert=invert)


def mask_from_alpha(loaded: LoadedImage, *, threshold: int = 127) -> np.ndarray:
    """Hole mask from the image's alpha channel: transparent (alpha <= threshold) = hole."""
    if loaded.alpha is None:
        raise InputError("the image has no alpha channel to use as the mask")
    alpha = loaded.alpha.astype(np.float64)
    if loaded.alpha.dtype == np.uint16:
        alpha = alpha / 257.0
    return alpha <= threshold


def resize_mask(hole: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a bool mask to ``(height, width)``."""
    import cv2

    height, width = size
    resized = cv2.resize(hole.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST)
    return resized.astype(bool)


def match_mask(
    hole: np.ndarray, image_size: tuple[int, int], *, resize: bool = False
) -> np.ndarray:
    """Check that the mask has the image's size, or resize it (nearest) when ``resize``."""
    if hole.shape == tuple(image_size):
        return hole
    if not resize:
        raise InputError(
            f"mask is {hole.shape[1]}x{hole.shape[0]} but the image is "
            f"{image_size[1]}x{image_size[0]} (width x height); pass --resize-mask to resize it"
        )
    return resize_mask(hole, image_size)


def output_format(path: str | os.PathLike) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in _PIL_FORMATS:
        raise InputError(
            f"{path}: unsupported output format {suffix or '(none)'}; use one of "
            f"{', '.join(sorted(_PIL_FORMATS))}"
        )
    return _PIL_FORMATS[suffix]


def encode_image(
    pixels: np.ndarray,
    fmt: str,
    *,
    alpha: np.ndarray | None = None,
    quality: int = 95,
    exif: bytes | None = None,
    icc: bytes | None = None,
    compress_level: int | None = None,
) -> bytes:
    """Encode ``(H, W, 3)`` uint8/uint16 (or ``(H, W)``) pixels as ``fmt`` bytes.

    ``compress_level`` (PNG only, 0-9) trades size for speed; None keeps Pillow's default (6).
    """
    if pixels.dtype == np.uint16:
        return _encode_16bit(pixels, fmt, alpha)
    if alpha is not None and fmt in ("PNG", "WEBP", "TIFF"):
        image = Image.fromarray(np.dstack([pixels, alpha.astype(np.uint8)]), "RGBA")
    else:
        image = Image.fromarray(pixels)
    options: dict[str, Any] = {}
    if fmt in ("JPEG", "WEBP"):
        options["quality"] = int(quality)
    if exif and fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
        options["exif"] = exif
    if icc and fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
        options["icc_profile"] = icc
    if compress_level is not None and fmt == "PNG":
        options["compress_level"] = int(compress_level)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _encode_16bit(pixels: np.ndarray, fmt: str, alpha: np.ndarray | None) -> bytes:
    import cv2

    if fmt not in ("PNG", "TIFF"):
        raise InputError(f"16-bit images can be written as PNG or TIFF, not {fmt}")
    bgr = pixels[..., ::-1] if pixels.ndim == 3 else pixels
    if alpha is not None and pixels.ndim == 3:
        bgr = np.dstack([bgr, alpha.astype(np.uint16)])
    ok, data = cv2.imencode(".png" if fmt == "PNG" else ".tiff", np.ascontiguousarray(bgr))
    if not ok:
        raise InputError("could not encode the 16-bit image")
    return data.tobytes()


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, overwrite: bool = True) -> None:
    """Write ``data`` to a temp file beside ``path`` and rename it into place.

    A reader never sees a half-written file, and a crash leaves the old file (if any) intact. With
    ``overwrite=False`` an existing file is never replaced (the rename is done with ``os.link``,
    which fails if the target exists).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(handle, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(handle, "wb") as temp_file:
            temp_file.write(data)
            temp_file.flush()
            os.fsync(temp_file.fileno())
        if overwrite:
            os.replace(temp_name, path)
        else:
            try:
                os.link(temp_name, path)
            except FileExistsError:
                raise InputError(f"{path} exists; refusing to overwrite it") from None
            os.unlink(temp_name)
    except BaseException:
        if os.path.exists(temp_name):
            os.unlink(temp_name)
        raise


def write_image(
    path: str | os.PathLike,
    pixels: np.ndarray,
    *,
    alpha: np.ndarray | None = None,
    quality: int = 95,
    exif: bytes | None = None,
    icc: bytes | None = None,
    overwrite: bool = False,
) -> Path:
    """Encode by the file's suffix and write atomically. Refuses to replace a file unless asked."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise InputError(f"{path} exists; pass --overwrite to replace it")
    data = encode_image(
        pixels, output_format(path), alpha=alpha, quality=quality, exif=exif, icc=icc
    )
    atomic_write_bytes(path, data, overwrite=overwrite)
    return path


def list_images(folder: str | os.PathLike, *, recursive: bool = True) -> list[Path]:
    """Image files under ``folder`` (by suffix), sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder")
    pattern = "**/*" if recursive else "*"
    return sorted(
        p
        for p in folder.glob(pattern)
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    )
