"""The OpenAPI description of ``holefill serve``'s multipart endpoints (FastAPI cannot infer it
from the hand-parsed forms)."""

from __future__ import annotations

from typing import Any

#: the most pixels ``POST /api/grow`` grows or shrinks a mask by
MAX_GROW = 500


def form_body(required: list[str], properties: dict[str, tuple[str, str]]) -> dict[str, Any]:
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


IMAGE_FIELD = ("file", "the photograph (PNG, JPEG, WebP, BMP, TIFF)")
INPAINT_OPENAPI = form_body(
    ["image", "mask"],
    {
        "image": IMAGE_FIELD,
        "mask": ("file", "same size as the image; white = hole"),
        "method": ("string", "a name from /api/methods"),
        "options": ("string", 'JSON object of method options, e.g. {"radius": 5}'),
    },
)
SELECT_OPENAPI = form_body(
    ["image"],
    {
        "image": IMAGE_FIELD,
        "point": ("string", "a pixel on the object, x,y (column, row; after EXIF orientation)"),
        "box": ("string", "a box around the object, left,top,right,bottom in pixels"),
    },
)
GROW_OPENAPI = form_body(
    ["mask", "pixels"],
    {
        "mask": ("file", "a mask, white = hole"),
        "pixels": ("string", f"whole pixels to grow by (negative: shrink), at most {MAX_GROW}"),
    },
)
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "this server needs its access token (it listens beyond this computer)"},
    403: {"description": "Host or Origin not allowed (another web page cannot drive the server)"},
    413: {"description": "upload or image too large"},
    415: {"description": "not multipart/form-data"},
    503: {"description": "queue full; retry after the Retry-After header's seconds"},
}
INPAINT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"image/png": {}},
        "description": "the filled image, same size, grey and bit depth as the input; headers "
        "X-Holefill-Method and X-Holefill-Seconds say which method ran and how long it took; "
        "for an empty mask the image unchanged, with an X-Holefill-Warning header",
    },
    **ERRORS,
    422: {"description": "undecodable image, size mismatch, unknown method or option"},
}
MASK_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"image/png": {}},
        "description": "the mask, same size as the input: a grey + alpha PNG, white and opaque "
        "where the hole is; header X-Holefill-Box is its bounding box left,top,right,bottom "
        "(empty when nothing was selected)",
    },
    **ERRORS,
    422: {"description": "undecodable image or mask, a missing or malformed field"},
}
