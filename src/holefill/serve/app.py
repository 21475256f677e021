"""The FastAPI application of ``holefill serve``: the painting page and the fill API.

Endpoints
---------
``GET /``                the page (``static/index.html``): paint a mask, fill, compare, download.
``GET /api/health``      liveness and queue state.
``GET /api/methods``     the registered methods, their summaries and the options a client may set.
``POST /api/inpaint``    multipart ``image`` + ``mask`` (white = hole), optional ``method`` and
                         ``options`` (a JSON object) -> the filled image as PNG, same size as the image.
``POST /api/select``     multipart ``image`` + ``point`` (``x,y``) or ``box`` (``left,top,right,bottom``)
                         -> the mask of the object there (:func:`holefill.select.select_object`).
``POST /api/grow``       multipart ``mask`` + ``pixels`` -> the mask grown (or shrunk, if negative).
``GET /docs``            the OpenAPI page (Swagger UI from the installed ``fastapi-offline``: no network).

Who may use it -- the Host and Origin checks, the token, CORS -- is :mod:`holefill.serve.security`.

Safety: uploads are limited in bytes (the ``Content-Length`` header and the bytes actually read) and
in pixels (read from the header before decoding); at most ``workers`` fills run at once and at most
``queue_size`` more wait, later requests get 503 with ``Retry-After``. Requests are decoded from
memory -- the multipart body is parsed here rather than by Starlette, which spools uploads over 1 MB
to temporary files -- so the server writes nothing to disk and never opens a path a client names.
"""

from __future__ import annotations

import io
import json
import logging
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, Response
from fastapi_offline import FastAPIOffline
from PIL import Image
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from holefill.errors import HolefillError, ImageTooLargeError, InputError
from holefill.io import DEFAULT_MAX_PIXELS
from holefill.pipeline import (
    MaskOptions,
    OutputOptions,
    decode_image,
    default_method,
    fill_image,
    read_hole,
)
from holefill.registry import check_options, describe_methods, method_options
from holefill.select import grow_mask, select_object
from holefill.serve.security import TOKEN_HEADER, SecurityConfig, SecurityMiddleware

try:  # python-multipart >= 0.0.13 is imported as python_multipart
    from python_multipart.exceptions import MultipartParseError
    from python_multipart.multipart import MultipartParser, parse_options_header
except ImportError:  # pragma: no cover - older python-multipart
    from multipart.exceptions import MultipartParseError
    from multipart.multipart import MultipartParser, parse_options_header

logger = logging.getLogger("holefill.serve")

MEGABYTE = 1024 * 1024
#: Options a client may never set: they name files or hardware, chosen when the server starts.
SERVER_ONLY_OPTIONS = frozenset({"weights", "vgg_weights", "device"})
_SERVER_ONLY_SUFFIXES = ("weights", "_path", "_dir", "_file")
_MAX_FORM_PARTS = 16
#: Largest grow/shrink, in pixels.
MAX_GROW = 500
#: Response headers a page on another origin (--cors-origin) may read.
_EXPOSED_HEADERS = [
    "X-Holefill-Method",
    "X-Holefill-Seconds",
    "X-Holefill-Box",
    "X-Holefill-Warning",
    "Retry-After",
]


@dataclass
class ServeConfig:
    """Settings of one server.

    Parameters
    ----------
    method : str, optional
        Method used when a request names none; default :func:`holefill.pipeline.default_method`.
    options : dict
        Method options given when the server started (``--radius 5``, ``--device cuda``, ...);
        applied to every method that accepts them. Clients may override those that are not
        server-only.
    max_upload_mb : float
        Largest request body, in MiB.
    max_pixels : int
        Largest image (and mask), in pixels, checked on the file header before decoding
        (``--max-pixels``, the same limit and default as every holefill command).
    workers : int
        Fills running at once.
    queue_size : int
        Requests allowed to wait for a worker; beyond that the server answers 503.
    """

    method: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    max_upload_mb: float = 50.0
    max_pixels: int = DEFAULT_MAX_PIXELS
    workers: int = 1
    queue_size: int = 4

    def __post_init__(self) -> None:
        if self.max_upload_mb <= 0:
            raise InputError(f"max_upload_mb must be > 0, got {self.max_upload_mb}")
        if self.max_pixels <= 0:
            raise InputError(f"max_pixels must be > 0, got {self.max_pixels}")
        if self.workers < 1:
            raise InputError(f"workers must be >= 1, got {self.workers}")
        if self.queue_size < 0:
            raise InputError(f"queue_size must be >= 0, got {self.queue_size}")
        self.method = self.method or default_method()

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * MEGABYTE)


class ServerBusyError(HolefillError):
    """Every worker is busy and the waiting line is full; retry after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class FillQueue:
    """At most ``workers`` fills at once and ``waiting`` more in line; anyone else is turned away.

    A request takes a :meth:`ticket` before it reads its upload (so a full server refuses at once,
    without buffering the body) and holds it to the end; the fill itself runs inside :meth:`slot`,
    which blocks the calling worker thread -- never the event loop -- until a worker is free.
    Thread-based, so it works whatever event loop (or none) its callers run on.
    """

    def __init__(self, workers: int = 1, waiting: int = 4) -> None:
        self.workers = workers
        self.waiting = waiting
        self._lock = threading.Lock()
        self._admitted = 0
        self._slots = threading.BoundedSemaphore(workers)
        self._mean_seconds = 2.0  # running mean of fill times, for Retry-After

    @property
    def admitted(self) -> int:
        """Requests holding a ticket now (running or waiting)."""
        return self._admitted

    def retry_after(self) -> int:
        """Seconds after which a retry has a fair chance: the line's expected drain time."""
        seconds = self._mean_seconds * max(1, self._admitted) / self.workers
        return int(min(600, max(1, math.ceil(seconds))))

    @contextmanager
    def ticket(self) -> Iterator[None]:
        """Enter the line, or raise :class:`ServerBusyError` when it is full."""
        with self._lock:
            if self._admitted >= self.workers + self.waiting:
                raise ServerBusyError(
                    f"the server is busy ({self.workers} running, {self.waiting} waiting); "
                    "try again shortly",
                    self.retry_after(),
                )
            self._admitted += 1
        try:
            yield
        finally:
            with self._lock:
                self._admitted -= 1

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Wait for a free worker (blocking this thread), run, and record the duration."""
        with self._slots:
            start = time.monotonic()
            try:
                yield
            finally:
                elapsed = time.monotonic() - start
                with self._lock:
                    self._mean_seconds = 0.7 * self._mean_seconds + 0.3 * elapsed


# -- request parsing ---------------------------------------------------------------------------


@dataclass
class _Part:
    name: str = ""
    filename: str | None = None
    data: bytearray = field(default_factory=bytearray)


class _FormCollector:
    """Callbacks of python-multipart's streaming parser that keep every part in memory."""

    def __init__(self) -> None:
        self.parts: list[_Part] = []
        self._header_field = b""
        self._header_value = b""

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self._part_begin,
            "on_part_data": self._part_data,
            "on_header_field": self._field,
            "on_header_value": self._value,
            "on_header_end": self._header_end,
        }

    def _part_begin(self) -> None:
        if len(self.parts) >= _MAX_FORM_PARTS:
            raise InputError(f"the form has more than {_MAX_FORM_PARTS} fields")
        self.parts.append(_Part())

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        self.parts[-1].data.extend(data[start:end])

    def _field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def _value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        if self._header_field.lower() == b"content-disposition":
            _, params = parse_options_header(self._header_value)
            part = self.parts[-1]
            part.name = params.get(b"name", b"").decode("utf-8", "replace")
            if b"filename" in params:
                part.filename = params[b"filename"].decode("utf-8", "replace")
        self._header_field = b""
        self._header_value = b""


def _parse_form(body: bytes, content_type: str) -> dict[str, _Part]:
    """Parse a ``multipart/form-data`` body held in memory into ``{field name: part}``."""
    kind, params = parse_options_header(content_type)
    if kind != b"multipart/form-data" or not params.get(b"boundary"):
        raise HTTPException(415, "send multipart/form-data with the files 'image' and 'mask'")
    collector = _FormCollector()
    parser = MultipartParser(params[b"boundary"], collector.callbacks())
    try:
        parser.write(body)
        parser.finalize()
    except MultipartParseError as exc:
        raise InputError(f"the request is not valid multipart/form-data ({exc})") from None
    return {part.name: part for part in collector.parts}


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 past ``limit`` bytes (declared or actually sent)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise HTTPException(400, f"invalid Content-Length {declared!r}")
        if int(declared) > limit:
            raise HTTPException(413, _too_large(int(declared), limit))
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise HTTPException(413, _too_large(len(body), limit, at_least=True))
    return bytes(body)


def _too_large(size: int, limit: int, *, at_least: bool = False) -> str:
    amount = f"{'more than ' if at_least else ''}{size / MEGABYTE:.1f} MB"
    return (
        f"the upload is {amount}; this server accepts at most {limit / MEGABYTE:.1f} MB "
        "(start it with a larger --max-upload-mb)"
    )


def _is_server_only(option: str) -> bool:
    return option in SERVER_ONLY_OPTIONS or option.endswith(_SERVER_ONLY_SUFFIXES)


def _client_options(text: str) -> dict[str, Any]:
    """Parse the ``options`` field: a JSON object of plain values, no server-only options."""
    if not text.strip():
        return {}
    try:
        options = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f'options must be a JSON object such as {{"radius": 5}} ({exc})') from None
    if not isinstance(options, dict):
        raise InputError(f"options must be a JSON object, not {type(options).__name__}")
    fixed = sorted(name for name in options if _is_server_only(name))
    if fixed:
        raise InputError(f"option {', '.join(fixed)} can only be set when the server starts")
    for name, value in options.items():
        if not isinstance(value, str | int | float | bool | type(None)):
            raise InputError(f"option {name} must be a number, a string, true/false or null")
        if isinstance(value, str) and ("/" in value or "\\" in value):
            raise InputError(f"option {name}: file paths cannot be given to the server")
    return options


@dataclass
class _FillJob:
    image: bytes
    mask: bytes
    method: str
    options: dict[str, Any]
    mask_options: MaskOptions = field(default_factory=MaskOptions)


def _text_field(form: dict[str, _Part], name: str) -> str:
    part = form.get(name)
    return part.data.decode("utf-8", "replace").strip() if part is not None else ""


def _file_field(form: dict[str, _Part], name: str) -> bytes:
    part = form.get(name)
    if part is None or not part.data:
        raise InputError(f"the request has no {name!r} file (multipart field {name!r})")
    return bytes(part.data)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


# -- the fill service ----------------------------------------------------------------------------


class FillService:
    """Decodes an upload, runs the method and encodes the result, one request at a time per worker."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.queue = FillQueue(config.workers, config.queue_size)
        self._methods: dict[str, Any] | None = None

    def methods(self) -> dict[str, Any]:
        """What ``GET /api/methods`` answers; computed once (it imports every method's module)."""
        if self._methods is None:
            self._methods = _describe(self.config)
        return self._methods

    def job(self, form: dict[str, _Part]) -> _FillJob:
        """Validate the form fields (method, options, files) without decoding the images."""
        method = _text_field(form, "method") or self.config.method
        client = _client_options(_text_field(form, "options"))
        accepted = method_options(method)  # raises UnknownMethodError (422) for a bad name
        check_options(method, client, hidden=[name for name in accepted if _is_server_only(name)])
        options = {name: value for name, value in self.config.options.items() if name in accepted}
        options.update(client)
        return _FillJob(_file_field(form, "image"), _file_field(form, "mask"), method, options)

    def run(self, job: _FillJob) -> FillOutcome:
        """Fill ``job`` as PNG bytes; blocks the calling thread until a worker is free."""
        with self.queue.slot():
            return self._fill(job)

    def _fill(self, job: _FillJob) -> FillOutcome:
        """The pipeline on one request: the PNG keeps 16 bits, grey stays grey; an empty mask
        is not an error (the image comes back unchanged, with the pipeline's warning)."""
        result = fill_image(
            _named(job.image, "image"),
            _named(job.mask, "mask"),
            job.method,
            job.options,
            mask_options=job.mask_options,
            output=OutputOptions("PNG", compress_level=1),  # a local answer: fast over small
            max_pixels=self.config.max_pixels,
        )
        return FillOutcome(result.data, result.warning)


@dataclass
class FillOutcome:
    """A filled PNG and the warning the fill gave, if any (an empty mask)."""

    png: bytes
    warning: str | None = None


def _named(data: bytes, name: str) -> io.BytesIO:
    """An in-memory file whose name makes decoding errors read "image: ..." or "mask: ..."."""
    buffer = io.BytesIO(data)
    buffer.name = name
    return buffer


# -- selecting and growing masks ------------------------------------------------------------------


@dataclass
class _MaskJob:
    """A ``/api/select`` or ``/api/grow`` request, validated but not decoded."""

    upload: bytes
    point: tuple[float, ...] | None = None
    box: tuple[float, ...] | None = None
    pixels: int = 0


def _numbers_field(form: dict[str, _Part], name: str, count: int) -> tuple[float, ...] | None:
    text = _text_field(form, name)
    if not text:
        return None
    try:
        numbers = tuple(float(item) for item in text.replace(",", " ").split())
    except ValueError:
        numbers = ()
    if len(numbers) != count or not all(math.isfinite(number) for number in numbers):
        example = "x,y" if count == 2 else "left,top,right,bottom"
        raise InputError(
            f"{name} must be {count} numbers in image pixels ({example}), got {text!r}"
        )
    return numbers


def _select_job(form: dict[str, _Part]) -> _MaskJob:
    point, box = _numbers_field(form, "point", 2), _numbers_field(form, "box", 4)
    if point is None and box is None:
        raise InputError("give a point (x,y) on the object or a box (left,top,right,bottom)")
    return _MaskJob(_file_field(form, "image"), point=point, box=box)


def _grow_job(form: dict[str, _Part]) -> _MaskJob:
    text = _text_field(form, "pixels")
    if not text.lstrip("-").isdigit() or abs(int(text)) > MAX_GROW:
        raise InputError(
            f"pixels must be a whole number from -{MAX_GROW} to {MAX_GROW}, got {text!r}"
        )
    return _MaskJob(_file_field(form, "mask"), pixels=int(text))


def _mask_answer(hole: np.ndarray) -> tuple[bytes, dict[str, str]]:
    """A mask as PNG, grey + alpha: white and opaque on the hole, black and transparent elsewhere.

    Read as a grey image it is a holefill mask (white = hole); drawn on a page it is an overlay.
    The ``X-Holefill-Box`` header is its bounding box ``left,top,right,bottom`` (empty: no hole).
    """
    values = hole.astype(np.uint8) * 255
    buffer = io.BytesIO()
    Image.fromarray(np.dstack([values, values]), "LA").save(buffer, "PNG", compress_level=1)
    rows, cols = np.any(hole, axis=1), np.any(hole, axis=0)
    box = ""
    if rows.any():
        top, bottom = np.argmax(rows), len(rows) - np.argmax(rows[::-1])
        left, right = np.argmax(cols), len(cols) - np.argmax(cols[::-1])
        box = f"{left},{top},{right},{bottom}"
    return buffer.getvalue(), {"X-Holefill-Box": box}


def _select(job: _MaskJob, max_pixels: int) -> tuple[bytes, dict[str, str]]:
    loaded = decode_image(_named(job.upload, "image"), max_pixels=max_pixels)
    return _mask_answer(select_object(loaded.pixels, point=job.point, box=job.box))


def _grow(job: _MaskJob, max_pixels: int) -> tuple[bytes, dict[str, str]]:
    hole, _ = read_hole(_named(job.upload, "mask"), max_pixels=max_pixels)
    return _mask_answer(grow_mask(hole, job.pixels))


# -- the application ----------------------------------------------------------------------------


def _form_body(required: list[str], properties: dict[str, tuple[str, str]]) -> dict[str, Any]:
    """OpenAPI ``requestBody`` of a multipart form: ``{name: ("file" | "string", description)}``."""
    schema = {
        name: {
            "type": "string",
            "description": text,
            **({"format": "binary"} if kind == "file" else {}),
        }
        for name, (kind, text) in properties.items()
    }
    content = {
        "multipart/form-data": {
            "schema": {"type": "object", "required": required, "properties": schema}
        }
    }
    return {"requestBody": {"required": True, "content": content}}


_IMAGE_FIELD = ("file", "the photograph (PNG, JPEG, WebP, BMP, TIFF)")
_INPAINT_OPENAPI = _form_body(
    ["image", "mask"],
    {
        "image": _IMAGE_FIELD,
        "mask": ("file", "same size as the image; white = hole"),
        "method": ("string", "a name from /api/methods"),
        "options": ("string", 'JSON object of method options, e.g. {"radius": 5}'),
    },
)
_SELECT_OPENAPI = _form_body(
    ["image"],
    {
        "image": _IMAGE_FIELD,
        "point": ("string", "a pixel on the object, x,y (column, row; after EXIF orientation)"),
        "box": ("string", "a box around the object, left,top,right,bottom in pixels"),
    },
)
_GROW_OPENAPI = _form_body(
    ["mask", "pixels"],
    {
        "mask": ("file", "a mask, white = hole"),
        "pixels": ("string", f"whole pixels to grow by (negative: shrink), at most {MAX_GROW}"),
    },
)
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "this server needs its access token (it listens beyond this computer)"},
    403: {"description": "Host or Origin not allowed (another web page cannot drive the server)"},
    413: {"description": "upload or image too large"},
    415: {"description": "not multipart/form-data"},
    503: {"description": "queue full; retry after the Retry-After header's seconds"},
}
_INPAINT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"image/png": {}},
        "description": "the filled image, same size, grey and bit depth as the input; headers "
        "X-Holefill-Method and X-Holefill-Seconds say which method ran and how long it took; "
        "for an empty mask the image unchanged, with an X-Holefill-Warning header",
    },
    **_ERRORS,
    422: {"description": "undecodable image, size mismatch, unknown method or option"},
}
_MASK_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"image/png": {}},
        "description": "the mask, same size as the input: a grey + alpha PNG, white and opaque "
        "where the hole is; header X-Holefill-Box is its bounding box left,top,right,bottom "
        "(empty when nothing was selected)",
    },
    **_ERRORS,
    422: {"description": "undecodable image or mask, a missing or malformed field"},
}


def _json_safe(value: Any) -> Any:
    if isinstance(value, str | int | float | bool | type(None)):
        return value
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return str(value)


def _describe(config: ServeConfig) -> dict[str, Any]:
    methods = []
    for entry in describe_methods():
        try:
            options = method_options(entry.name)
        except Exception as exc:  # noqa: BLE001 - one broken optional method must not hide others
            logger.warning("method %s is unavailable: %s", entry.name, exc)
            continue
        settable = {
            name: {"default": _json_safe(spec["default"]), "type": spec["type"]}
            for name, spec in options.items()
            if not _is_server_only(name)
        }
        methods.append(
            {
                "name": entry.name,
                "summary": entry.summary,
                "options": settable,
                "server_options": sorted(n for n in options if _is_server_only(n)),
            }
        )
    return {
        "default": config.method,
        "methods": methods,
        "limits": {"max_upload_mb": config.max_upload_mb, "max_pixels": config.max_pixels},
    }


def _page() -> str:
    return resources.files("holefill.serve").joinpath("static/index.html").read_text("utf-8")


@contextmanager
def _http_errors(action: str) -> Iterator[None]:
    """Turn holefill's errors into HTTP answers with one line each (422, 413, 503, 500)."""
    try:
        yield
    except HTTPException:
        raise
    except ClientDisconnect:
        raise HTTPException(400, "the client disconnected during the upload") from None
    except ServerBusyError as exc:
        raise HTTPException(
            503, _one_line(exc), headers={"Retry-After": str(exc.retry_after)}
        ) from None
    except ImageTooLargeError as exc:
        raise HTTPException(413, _one_line(exc)) from None
    except HolefillError as exc:
        raise HTTPException(422, _one_line(exc)) from None
    except Exception as exc:  # a bug or out of memory in a method: answer, keep serving
        logger.exception("%s failed", action)
        raise HTTPException(500, f"the {action} failed: {_one_line(exc)}") from None


def create_app(
    config: ServeConfig | None = None, security: SecurityConfig | None = None
) -> FastAPI:
    """Build the application. Models are loaded on the first fill (or by the CLI at start) and reused.

    Parameters
    ----------
    config : ServeConfig, optional
        Limits, default method and options; the defaults of :class:`ServeConfig` otherwise.
    security : SecurityConfig, optional
        Who may use the server; by default a server on 127.0.0.1 (Host and Origin checks, no
        token, no CORS). See :mod:`holefill.serve.security`.
    """
    from holefill import __version__

    config = config or ServeConfig()
    security = security or SecurityConfig()
    service = FillService(config)
    page = _page()
    app = FastAPIOffline(
        title="holefill",
        version=__version__,
        description="Fill holes in photographs. Masks: white = hole. Servers listening beyond "
        f"this computer need their access token: the {TOKEN_HEADER} header, "
        "`Authorization: Bearer TOKEN` or `?token=`.",
        favicon_url="data:,",
    )
    app.state.service = service
    app.state.security = security
    app.add_middleware(SecurityMiddleware, config=security)
    if security.cors_origins:  # outermost, so refusals carry CORS headers the caller can read
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(security.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=[TOKEN_HEADER, "Authorization"],
            expose_headers=_EXPOSED_HEADERS,
        )

    async def answer(request: Request, action: str, prepare, run) -> Response:
        """Read and check the form (``prepare``), then ``run`` it on a worker: PNG + headers."""
        start = time.monotonic()
        with _http_errors(action), service.queue.ticket():
            body = await _read_body(request, config.max_upload_bytes)
            job = prepare(_parse_form(body, request.headers.get("content-type", "")))
            del body
            data, headers = await run_in_threadpool(run, job)
        headers = {**headers, "X-Holefill-Seconds": f"{time.monotonic() - start:.3f}"}
        return Response(
            data, media_type="image/png", headers={"Cache-Control": "no-store", **headers}
        )

    def in_slot(work):
        def run(job):
            with service.queue.slot():
                return work(job, config.max_pixels)

        return run

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse(page, headers={"Cache-Control": "no-cache"})

    @app.get("/api/health", summary="liveness and queue state")
    def health() -> dict[str, Any]:
        queue = service.queue
        return {
            "status": "ok",
            "version": __version__,
            "method": config.method,
            "queue": {
                "workers": queue.workers,
                "waiting": queue.waiting,
                "admitted": queue.admitted,
            },
        }

    @app.get("/api/methods", summary="registered methods, summaries and options")
    def methods() -> dict[str, Any]:
        return service.methods()

    @app.post(
        "/api/inpaint",
        response_class=Response,
        summary="fill the white area of the mask",
        openapi_extra=_INPAINT_OPENAPI,
        responses=_INPAINT_RESPONSES,
    )
    async def inpaint(request: Request) -> Response:
        def run(job: _FillJob) -> tuple[bytes, dict[str, str]]:
            outcome = service.run(job)
            headers = {"X-Holefill-Method": job.method}
            if outcome.warning:
                headers["X-Holefill-Warning"] = outcome.warning
            return outcome.png, headers

        return await answer(request, "fill", service.job, run)

    @app.post(
        "/api/select",
        response_class=Response,
        summary="the mask of the object under a point or inside a box",
        description="GrabCut seeded by the point or the box, refined on SLIC superpixels "
        "(holefill.select.select_object). A point selects the object whose colours differ "
        "from the photo's border; for an object coloured like its surroundings, send a box.",
        openapi_extra=_SELECT_OPENAPI,
        responses=_MASK_RESPONSES,
    )
    async def select(request: Request) -> Response:
        return await answer(request, "selection", _select_job, in_slot(_select))

    @app.post(
        "/api/grow",
        response_class=Response,
        summary="grow (or shrink) a mask by a number of pixels",
        description="Dilation (erosion for negative pixels) by an elliptical kernel of "
        "diameter 2 * pixels + 1, as cv2.dilate / cv2.erode (holefill.select.grow_mask).",
        openapi_extra=_GROW_OPENAPI,
        responses=_MASK_RESPONSES,
    )
    async def grow(request: Request) -> Response:
        return await answer(request, "grow", _grow_job, in_slot(_grow))

    return app
