"""Request parsing of ``holefill serve``: the multipart body read from memory (never spooled to
disk), its fields, and the method options a client may set."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from fastapi import HTTPException, Request

from holefill.errors import InputError

try:  # python-multipart >= 0.0.13 is imported as python_multipart
    from python_multipart.exceptions import MultipartParseError
    from python_multipart.multipart import MultipartParser, parse_options_header
except ImportError:  # pragma: no cover - older python-multipart
    from multipart.exceptions import MultipartParseError
    from multipart.multipart import MultipartParser, parse_options_header

MEGABYTE = 1024 * 1024
#: Options a client may never set: they name files or hardware, chosen when the server starts.
SERVER_ONLY_OPTIONS = frozenset({"weights", "vgg_weights", "device"})
_SERVER_ONLY_SUFFIXES = ("weights", "_path", "_dir", "_file")
_MAX_FORM_PARTS = 16


@dataclass
class Part:
    name: str = ""
    filename: str | None = None
    data: bytearray = field(default_factory=bytearray)


class FormCollector:
    """Callbacks of python-multipart's streaming parser that keep every part in memory."""

    def __init__(self) -> None:
        self.parts: list[Part] = []
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
        self.parts.append(Part())

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


def parse_form(body: bytes, content_type: str) -> dict[str, Part]:
    """Parse a ``multipart/form-data`` body held in memory into ``{field name: part}``."""
    kind, params = parse_options_header(content_type)
    if kind != b"multipart/form-data" or not params.get(b"boundary"):
        raise HTTPException(415, "send multipart/form-data with the files 'image' and 'mask'")
    collector = FormCollector()
    parser = MultipartParser(params[b"boundary"], collector.callbacks())
    try:
        parser.write(body)
        parser.finalize()
    except MultipartParseError as exc:
        raise InputError(f"the request is not valid multipart/form-data ({exc})") from None
    return {part.name: part for part in collector.parts}


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 past ``limit`` bytes (declared or actually sent)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise HTTPException(400, f"invalid Content-Length {declared!r}")
        if int(declared) > limit:
            raise HTTPException(413, too_large(int(declared), limit))
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise HTTPException(413, too_large(len(body), limit, at_least=True))
    return bytes(body)


def too_large(size: int, limit: int, *, at_least: bool = False) -> str:
    amount = f"{'more than ' if at_least else ''}{size / MEGABYTE:.1f} MB"
    return (
        f"the upload is {amount}; this server accepts at most {limit / MEGABYTE:.1f} MB "
        "(start it with a larger --max-upload-mb)"
    )


def is_server_only(option: str) -> bool:
    return option in SERVER_ONLY_OPTIONS or option.endswith(_SERVER_ONLY_SUFFIXES)


def client_options(text: str) -> dict[str, Any]:
    """Parse the ``options`` field: a JSON object of plain values, no server-only options."""
    if not text.strip():
        return {}
    try:
        options = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f'options must be a JSON object such as {{"radius": 5}} ({exc})') from None
    if not isinstance(options, dict):
        raise InputError(f"options must be a JSON object, not {type(options).__name__}")
    fixed = sorted(name for name in options if is_server_only(name))
    if fixed:
        raise InputError(f"option {', '.join(fixed)} can only be set when the server starts")
    for name, value in options.items():
        if not isinstance(value, str | int | float | bool | type(None)):
            raise InputError(f"option {name} must be a number, a string, true/false or null")
        if isinstance(value, str) and ("/" in value or "\\" in value):
            raise InputError(f"option {name}: file paths cannot be given to the server")
    return options


def text_field(form: dict[str, Part], name: str) -> str:
    part = form.get(name)
    return part.data.decode("utf-8", "replace").strip() if part is not None else ""


def file_field(form: dict[str, Part], name: str) -> bytes:
    part = form.get(name)
    if part is None or not part.data:
        raise InputError(f"the request has no {name!r} file (multipart field {name!r})")
    return bytes(part.data)


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def numbers_field(form: dict[str, Part], name: str, count: int) -> tuple[float, ...] | None:
    text = text_field(form, name)
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
