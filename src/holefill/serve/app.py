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
memory -- the multipart body is parsed by :mod:`holefill.serve.forms` rather than by Starlette, which spools uploads over 1 MB
to temporary files -- so the server writes nothing to disk and never opens a path a client names.
"""

from __future__ import annotations

import io
import logging
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
from holefill.serve.forms import (
    MEGABYTE,
    Part,
    client_options,
    file_field,
    is_server_only,
    numbers_field,
    one_line,
    parse_form,
    read_body,
    text_field,
)
from holefill.serve.openapi import (
    GROW_OPENAPI,
    INPAINT_OPENAPI,
    INPAINT_RESPONSES,
    MASK_RESPONSES,
    MAX_GROW,
    SELECT_OPENAPI,
)
from holefill.serve.queue import FillQueue, ServerBusyError
from holefill.serve.security import TOKEN_HEADER, SecurityConfig, SecurityMiddleware

logger = logging.getLogger("holefill.serve")

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


@dataclass
class _FillJob:
    image: bytes
    mask: bytes
    method: str
    options: dict[str, Any]
    mask_options: MaskOptions = field(default_factory=MaskOptions)


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

    def job(self, form: dict[str, Part]) -> _FillJob:
        """Validate the form fields (method, options, files) without decoding the images."""
        method = text_field(form, "method") or self.config.method
        client = client_options(text_field(form, "options"))
        accepted = method_options(method)  # raises UnknownMethodError (422) for a bad name
        check_options(method, client, hidden=[name for name in accepted if is_server_only(name)])
        options = {name: value for name, value in self.config.options.items() if name in accepted}
        options.update(client)
        return _FillJob(file_field(form, "image"), file_field(form, "mask"), method, options)

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


def _select_job(form: dict[str, Part]) -> _MaskJob:
    point, box = numbers_field(form, "point", 2), numbers_field(form, "box", 4)
    if point is None and box is None:
        raise InputError("give a point (x,y) on the object or a box (left,top,right,bottom)")
    return _MaskJob(file_field(form, "image"), point=point, box=box)


def _grow_job(form: dict[str, Part]) -> _MaskJob:
    text = text_field(form, "pixels")
    if not text.lstrip("-").isdigit() or abs(int(text)) > MAX_GROW:
        raise InputError(
            f"pixels must be a whole number from -{MAX_GROW} to {MAX_GROW}, got {text!r}"
        )
    return _MaskJob(file_field(form, "mask"), pixels=int(text))


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
            if not is_server_only(name)
        }
        methods.append(
            {
                "name": entry.name,
                "summary": entry.summary,
                "options": settable,
                "server_options": sorted(n for n in options if is_server_only(n)),
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
            503, one_line(exc), headers={"Retry-After": str(exc.retry_after)}
        ) from None
    except ImageTooLargeError as exc:
        raise HTTPException(413, one_line(exc)) from None
    except HolefillError as exc:
        raise HTTPException(422, one_line(exc)) from None
    except Exception as exc:  # a bug or out of memory in a method: answer, keep serving
        logger.exception("%s failed", action)
        raise HTTPException(500, f"the {action} failed: {one_line(exc)}") from None


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
            body = await read_body(request, config.max_upload_bytes)
            job = prepare(parse_form(body, request.headers.get("content-type", "")))
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
        openapi_extra=INPAINT_OPENAPI,
        responses=INPAINT_RESPONSES,
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
        openapi_extra=SELECT_OPENAPI,
        responses=MASK_RESPONSES,
    )
    async def select(request: Request) -> Response:
        return await answer(request, "selection", _select_job, in_slot(_select))

    @app.post(
        "/api/grow",
        response_class=Response,
        summary="grow (or shrink) a mask by a number of pixels",
        description="Dilation (erosion for negative pixels) by an elliptical kernel of "
        "diameter 2 * pixels + 1, as cv2.dilate / cv2.erode (holefill.select.grow_mask).",
        openapi_extra=GROW_OPENAPI,
        responses=MASK_RESPONSES,
    )
    async def grow(request: Request) -> Response:
        return await answer(request, "grow", _grow_job, in_slot(_grow))

    return app
