"""Every read and write of images and masks: EXIF orientation, modes, 16-bit, limits, atomic writes."""

from __future__ import annotations

import io
import os
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from holefill.errors import ImageTooLargeError, InputError
from holefill.mask_rule import DEFAULT_THRESHOLD, to_hole

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

#: modes Pillow reads as one grey channel (with or without alpha)
_GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "F", "I;16", "I;16B", "I;16L", "I;16N"})

Source = str | os.PathLike | IO[bytes] | bytes | Image.Image

_PILLOW_LIMIT_LOCK = threading.Lock()


@dataclass
class LoadedImage:
    """An image as holefill works with it.

    ``pixels`` is ``(H, W, 3)`` uint8 or uint16 RGB (float in [0, 1] for float arrays); ``alpha``
    is ``(H, W)`` of the same dtype or None; ``gray`` says the source had one grey channel (its
    three channels here are equal); ``exif``/``icc`` are kept to write back where the output
    format allows.
    """

    pixels: np.ndarray
    alpha: np.ndarray | None = None
    exif: bytes | None = None
    icc: bytes | None = None
    source_mode: str = "RGB"
    info: dict[str, Any] = field(default_factory=dict)
    gray: bool = False

    @property
    def size(self) -> tuple[int, int]:
        """``(height, width)``."""
        return self.pixels.shape[0], self.pixels.shape[1]


def _name(source: Source) -> str:
    if isinstance(source, str | os.PathLike):
        return str(source)
    if isinstance(source, bytes | Image.Image):
        return "<image>"
    return getattr(source, "name", "<image>")


def allow_pixels_in_pillow(max_pixels: int | None) -> None:
    """Let Pillow's own decompression-bomb guard admit images up to ``max_pixels``.

    holefill checks the pixel count itself, on the header, before decoding; Pillow's guard
    (``Image.MAX_IMAGE_PIXELS``, 89.5 MP by default) must not refuse what that limit allows. The
    guard is only ever raised, under a lock, never lowered or restored, so concurrent reads
    (threads of ``holefill serve``) never see it lower than their own limit.
    """
    with _PILLOW_LIMIT_LOCK:
        current = Image.MAX_IMAGE_PIXELS
        if current is not None and (not max_pixels or max_pixels > current):
            Image.MAX_IMAGE_PIXELS = max_pixels or None


def _too_large(name: str, pixels: str, max_pixels: int) -> ImageTooLargeError:
    return ImageTooLargeError(
        f"{name}: {pixels} pixels exceeds the limit of {max_pixels:,} (raise it with --max-pixels)"
    )


def _open(source: Source, max_pixels: int) -> Image.Image:
    if isinstance(source, Image.Image):
        image = source
    else:
        if isinstance(source, str | os.PathLike) and not Path(source).is_file():
            raise InputError(f"{source}: no such file")
        allow_pixels_in_pillow(max_pixels)
        try:
            image = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
        except Image.DecompressionBombError:
            raise _too_large(_name(source), "more than twice that many", max_pixels) from None
        except UnidentifiedImageError:
            raise InputError(f"{_name(source)}: not an image file holefill can read") from None
        except OSError as exc:
            raise InputError(f"{_name(source)}: cannot read image ({exc})") from None
    width, height = image.size
    if width == 0 or height == 0:
        raise InputError(f"{_name(source)}: image has zero size ({width}x{height})")
    if max_pixels and width * height > max_pixels:
        raise _too_large(_name(source), f"{width}x{height} = {width * height:,}", max_pixels)
    return image


def _load_pixels(image: Image.Image, name: str) -> Image.Image:
    try:
        image.load()
        return ImageOps.exif_transpose(image) or image
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{name}: image data is corrupt or truncated ({exc})") from None


def _encoded_bytes(source: Source) -> bytes | None:
    """The file's bytes, for decoders other than Pillow (``None`` for a PIL image)."""
    if isinstance(source, bytes):
        return source
    if isinstance(source, str | os.PathLike):
        return Path(source).read_bytes()
    if hasattr(source, "read") and hasattr(source, "seek"):
        source.seek(0)
        return source.read()
    return None


def _png_bit_depth(image: Image.Image) -> int | None:
    """Bit depth from a PNG's IHDR (PIL reduces 16-bit colour PNGs to 8 bits)."""
    if image.format != "PNG" or image.fp is None:
        return None
    position = image.fp.tell()
    image.fp.seek(0)
    head = image.fp.read(26)
    image.fp.seek(position)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or len(head) < 26:
        return None
    return head[24]


def _read_png16(data: bytes, name: str) -> tuple[np.ndarray, np.ndarray | None]:
    import cv2

    data = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if data is None:
        raise InputError(f"{name}: cannot decode 16-bit PNG")
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
    """Read an image file, its bytes or a PIL image into RGB pixels, applying EXIF orientation.

    Grayscale, palette, RGBA, 16-bit PNG and CMYK JPEG are read correctly; 16-bit stays 16-bit.
    Raises :class:`InputError` for unreadable, truncated or zero-size files and
    :class:`ImageTooLargeError` above ``max_pixels`` (checked on the header, before decoding).
    """
    name = _name(source)
    image = _open(source, max_pixels)
    exif = image.info.get("exif")
    icc = image.info.get("icc_profile")
    mode = image.mode
    gray = mode in _GRAY_MODES
    sixteen_bit = not isinstance(source, Image.Image) and _png_bit_depth(image) == 16
    if sixteen_bit and mode not in ("I;16", "I", "I;16B"):
        pixels, alpha = _read_png16(_encoded_bytes(source), name)
        orientation = image.getexif().get(0x0112, 1)
        if orientation != 1:
            pixels, alpha = _read_via_pil_orientation(image, pixels, alpha, name)
    else:
        image = _load_pixels(image, name)
        pixels, alpha = _to_rgb(image)
    if exif:
        exif = _reset_orientation(exif)
    return LoadedImage(
        np.ascontiguousarray(pixels), alpha, exif, icc, mode, dict(image.info), gray=gray
    )


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


def read_mask_values(source: Source, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode a mask file (or PIL image) into the array it holds, for :func:`holefill.mask_rule.to_hole`.

    Grey masks come back ``(H, W)`` uint8 (uint16 for 16-bit files); colour masks ``(H, W, 3)``;
    masks with transparency ``(H, W, 4)`` RGBA, all with EXIF orientation applied.
    """
    name = _name(source)
    image = _load_pixels(_open(source, max_pixels), name)
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        values = np.asarray(image)
        if mode == "F" or values.max(initial=0) > 255:
            return np.clip(values, 0, 65535).astype(np.uint16)
        return np.clip(values, 0, 255).astype(np.uint8)
    if mode in ("RGBA", "LA", "PA", "La", "RGBa") or (mode == "P" and "transparency" in image.info):
        return np.asarray(image.convert("RGBA"))
    if mode in ("1", "L"):
        return np.asarray(image.convert("L"))
    return np.asarray(image.convert("RGB"))


def read_mask(
    source: Source,
    *,
    threshold: int = DEFAULT_THRESHOLD,
    invert: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Read a mask file as a bool ``(H, W)`` array, **True = hole**, by the mask rule
    (:mod:`holefill.mask_rule`: white = hole; values above ``threshold`` on the 8-bit scale)."""
    values = read_mask_values(source, max_pixels=max_pixels)
    return to_hole(values, threshold=threshold, invert=invert)


def mask_from_alpha(loaded: LoadedImage, *, threshold: int = DEFAULT_THRESHOLD) -> np.ndarray:
    """Hole mask from the image's alpha channel: transparent (alpha at or below ``threshold``, on
    the 8-bit scale of the mask rule) = hole."""
    if loaded.alpha is None:
        raise InputError("the image has no alpha channel to use as the mask")
    return to_hole(loaded.alpha, threshold=threshold, invert=True)


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
            f"the mask is {hole.shape[1]}x{hole.shape[0]} but the image is "
            f"{image_size[1]}x{image_size[0]} (width x height); resize the mask to the image "
            "(--resize-mask, resize_mask=True) or give one of the same size"
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
    """Encode ``(H, W, 3)`` RGB or ``(H, W)`` grey pixels, uint8 or uint16, as ``fmt`` bytes.

    ``alpha`` (same dtype) is written where the format has one (PNG, WebP, TIFF); EXIF and ICC
    where the format carries them (8-bit only: 16-bit PNG/TIFF are written by OpenCV).

    ``compress_level`` (PNG only, 0-9) trades size for speed; None keeps Pillow's default (6).
    """
    if pixels.dtype == np.uint16:
        return _encode_16bit(pixels, fmt, alpha)
    keep_alpha = alpha is not None and fmt in ("PNG", "WEBP", "TIFF")
    if keep_alpha and pixels.ndim == 2:
        image = Image.fromarray(np.dstack([pixels, alpha]), "LA")
    elif keep_alpha:
        image = Image.fromarray(np.dstack([pixels, alpha]), "RGBA")
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
    if alpha is not None and pixels.ndim == 2:  # OpenCV writes 1, 3 or 4 channels
        pixels = np.repeat(pixels[..., None], 3, axis=2)
    bgr = pixels[..., ::-1] if pixels.ndim == 3 else pixels
    if alpha is not None:
        bgr = np.dstack([bgr, alpha.astype(np.uint16)])
    ok, data = cv2.imencode(".png" if fmt == "PNG" else ".tiff", np.ascontiguousarray(bgr))
    if not ok:
        raise InputError("could not encode the 16-bit image")
    return data.tobytes()


def _create_temp(path: Path) -> tuple[int, str]:
    """A new temp file ``.<name>.<8 hex digits>.tmp`` beside ``path``, created with mode 0666 so
    the process umask applies as for any new file (no umask is read or changed)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        name = str(path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(name, flags, 0o666), name
        except FileExistsError:
            continue


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, overwrite: bool = True) -> None:
    """Write ``data`` to a temp file beside ``path`` and rename it into place.

    A reader never sees a half-written file, and a crash leaves the old file (if any) intact. With
    ``overwrite=False`` an existing file is never replaced (the rename is done with ``os.link``,
    which fails if the target exists).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = _create_temp(path)
    try:
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
