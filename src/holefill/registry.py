"""Name -> inpainting method, resolved lazily so `import holefill` stays fast.

Adding a method touches one line here and one file under ``holefill/methods``.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from dataclasses import dataclass
from typing import Any

from holefill.errors import InputError, UnknownMethodError


@dataclass(frozen=True)
class MethodEntry:
    name: str
    target: str  # "module:Class"
    summary: str


_REGISTRY: dict[str, MethodEntry] = {}


def register(name: str, target: str, summary: str) -> None:
    """Register ``target`` ("package.module:Class") under ``name``."""
    _REGISTRY[name] = MethodEntry(name, target, summary)


register(
    "pconv",
    "holefill.methods.pconv:PConvInpainter",
    "Partial-convolution U-Net (Liu et al. 2018), weights trained by holefill",
)
register(
    "neural_patch",
    "holefill.methods.neural_patch:NeuralPatchInpainter",
    "Multi-scale neural patch synthesis (Yang et al. 2017): content net + VGG-19 texture optimisation",
)
register(
    "patchmatch",
    "holefill.methods.patchmatch:PatchMatchInpainter",
    "PatchMatch (Barnes et al. 2009) inside coarse-to-fine EM completion (Wexler et al. 2007)",
)
register(
    "criminisi",
    "holefill.methods.criminisi:CriminisiInpainter",
    "Exemplar-based filling by fill-front priority (Criminisi et al. 2004)",
)
register(
    "telea", "holefill.methods.telea:TeleaInpainter", "OpenCV fast-marching inpainting (Telea 2004)"
)
register(
    "navier_stokes",
    "holefill.methods.navier_stokes:NavierStokesInpainter",
    "OpenCV Navier-Stokes inpainting (Bertalmio et al. 2001)",
)
register(
    "biharmonic",
    "holefill.methods.biharmonic:BiharmonicInpainter",
    "Biharmonic equation inpainting (scikit-image, Damelin & Hoang 2018)",
)


def _available(entry: MethodEntry) -> bool:
    module = entry.target.split(":")[0]
    return importlib.util.find_spec(module) is not None


def list_methods() -> list[str]:
    """Names of the registered methods whose implementation is installed."""
    return [name for name, entry in _REGISTRY.items() if _available(entry)]


def describe_methods() -> list[MethodEntry]:
    return [_REGISTRY[name] for name in list_methods()]


def get_method_class(name: str) -> type:
    entry = _REGISTRY.get(name)
    if entry is None or not _available(entry):
        raise UnknownMethodError(f"unknown method {name!r}; available: {', '.join(list_methods())}")
    module_name, class_name = entry.target.split(":")
    return getattr(importlib.import_module(module_name), class_name)


def method_options(name: str) -> dict[str, dict[str, Any]]:
    """Keyword options a method accepts: ``{option: {"default": ..., "type": "int"}}``."""
    cls = get_method_class(name)
    options: dict[str, dict[str, Any]] = {}
    for klass in reversed(cls.__mro__):
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        for param in inspect.signature(init).parameters.values():
            if param.kind is not inspect.Parameter.KEYWORD_ONLY:
                continue
            default = param.default if param.default is not inspect.Parameter.empty else None
            annotation = (
                param.annotation
                if isinstance(param.annotation, str)
                else getattr(param.annotation, "__name__", str(param.annotation))
            )
            options[param.name] = {"default": default, "type": annotation}
    return options


def check_options(name: str, options: Any, *, hidden: Any = ()) -> None:
    """Refuse options ``name`` does not take: the one unknown-option check of holefill.

    Raises :class:`UnknownMethodError` for an unknown method and :class:`InputError` naming the
    unknown options and the known ones (less ``hidden``, options a caller may not set).
    """
    known = method_options(name)
    unknown = sorted(set(options) - set(known))
    if unknown:
        shown = sorted(set(known) - set(hidden))
        raise InputError(
            f"method {name!r} has no option {', '.join(unknown)}; "
            f"options: {', '.join(shown) or '(none)'}"
        )


def create_inpainter(name: str, **options: Any):
    """Build the inpainter registered under ``name`` with keyword ``options``."""
    check_options(name, options)
    return get_method_class(name)(**options)
