"""Name -> inpainting method. Each method registers itself in its own file; the registry collects.

A method's file says its name, a one-line summary and what it needs (as timm's ``register_model``)::

    @register_method("pconv", summary="...", needs=(PackagedWeights("pconv_default.safetensors"),))
    class PConvInpainter(Inpainter): ...

Nothing is imported until it is needed, so ``import holefill`` stays light: asking for one method
imports its module (``holefill.methods.<name>``), listing the methods imports them all. A method
whose module cannot be imported (a missing package) is still listed, as not ready, with the reason.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from holefill.errors import InputError, UnknownMethodError, WeightsError

METHODS_PACKAGE = "holefill.methods"


# ---------------------------------------------------------------------------------------------
# What a method needs
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Package:
    """An importable Python package (``module``), installed with ``pip install {pip}``."""

    module: str
    pip: str | None = None

    def problem(self) -> str | None:
        if importlib.util.find_spec(self.module) is not None:
            return None
        return f"needs the {self.module} package: pip install {self.pip or self.module}"

    def __str__(self) -> str:
        return self.pip or self.module


@dataclass(frozen=True)
class PackagedWeights:
    """A weights file shipped in the package (``holefill/weights/{filename}``); ``option`` names
    the method option (and CLI flag) that gives another file."""

    filename: str
    option: str = "weights"

    def problem(self) -> str | None:
        from holefill.paths import package_weights_dir

        path = package_weights_dir() / self.filename
        if path.is_file():
            return None
        flag = "--" + self.option.replace("_", "-")
        return (
            f"its packaged weights {path} are not installed: reinstall holefill, "
            f"or pass {self.option}=FILE ({flag} FILE)"
        )

    def __str__(self) -> str:
        return f"packaged {self.filename}"


@dataclass(frozen=True)
class VGG19File:
    """A VGG-19 weights file (:func:`holefill.weights.vgg19_file`): ``--vgg-weights``,
    ``$HOLEFILL_VGG_WEIGHTS`` or torchvision's file in the torch hub cache."""

    download_hint: str = "-p download_vgg=true (download_vgg=True in Python)"

    def problem(self) -> str | None:
        from holefill.weights import vgg19_file

        try:
            vgg19_file(download_hint=self.download_hint)
        except WeightsError as exc:
            return str(exc)
        return None

    def __str__(self) -> str:
        return "a VGG-19 file"


Requirement = Package | PackagedWeights | VGG19File


# ---------------------------------------------------------------------------------------------
# Entries
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MethodEntry:
    """A registered method: its name, summary, class and requirements."""

    name: str
    summary: str
    cls: type | None
    needs: tuple[Requirement, ...] = ()
    import_error: str | None = None  #: why the module could not be imported, if it could not

    @property
    def target(self) -> str:
        """``"module:Class"``."""
        return f"{self.cls.__module__}:{self.cls.__qualname__}" if self.cls else ""

    @property
    def reason(self) -> str:
        """Why the method cannot run with its defaults, and how to fix it; "" when it can."""
        if self.import_error is not None:
            return self.import_error
        return "; ".join(p for p in (need.problem() for need in self.needs) if p)

    @property
    def ready(self) -> bool:
        return not self.reason


class MethodName(str):
    """A method's name, a plain ``str``, that also says whether the method is ready to run.

    Attributes
    ----------
    ready : bool
        The method runs with its default options on this installation.
    reason : str
        Why not, and how to fix it ("" when ready).
    summary : str
        What the method is, in one line.
    """

    ready: bool
    reason: str
    summary: str

    def __new__(cls, name: str, *, ready: bool = True, reason: str = "", summary: str = ""):
        self = super().__new__(cls, name)
        self.ready, self.reason, self.summary = ready, reason, summary
        return self

    def __repr__(self) -> str:
        plain = str.__repr__(self)
        return plain if self.ready else f"{plain} (not ready: {self.reason})"


_REGISTRY: dict[str, MethodEntry] = {}
_UNIMPORTABLE: dict[str, MethodEntry] = {}


def register_method(
    name: str, *, summary: str, needs: tuple[Requirement, ...] = ()
) -> Callable[[type], type]:
    """Class decorator: register an :class:`~holefill.inpainter.Inpainter` under ``name``.

    Parameters
    ----------
    name : str
        The method's name (``-m NAME``); by convention its module is ``holefill.methods.NAME``.
    summary : str
        One line: what the method is, with its paper.
    needs : tuple
        What it needs beyond holefill's dependencies: :class:`Package`, :class:`PackagedWeights`,
        :class:`VGG19File`.
    """

    def register(cls: type) -> type:
        _REGISTRY[name] = MethodEntry(name, summary, cls, tuple(needs))
        return cls

    return register


def _import_method_module(module_name: str) -> None:
    """Import one method module; a failure is recorded as a not-ready method of that name."""
    try:
        importlib.import_module(module_name)
    except ImportError as exc:
        name = module_name.rsplit(".", 1)[-1]
        missing = getattr(exc, "name", None)
        fix = f": pip install {missing}" if missing else ""
        _UNIMPORTABLE[name] = MethodEntry(
            name, "", None, import_error=f"cannot be imported ({exc}){fix}"
        )


def _import_all() -> None:
    package = importlib.import_module(METHODS_PACKAGE)
    for module in pkgutil.iter_modules(package.__path__):
        if not module.name.startswith("_"):
            _import_method_module(f"{METHODS_PACKAGE}.{module.name}")


def _entry(name: str) -> MethodEntry:
    """The entry of ``name``, importing its module (or, for another name, every module)."""
    if name not in _REGISTRY and isinstance(name, str) and name.isidentifier():
        if importlib.util.find_spec(f"{METHODS_PACKAGE}.{name}") is not None:
            _import_method_module(f"{METHODS_PACKAGE}.{name}")
        if name not in _REGISTRY and name not in _UNIMPORTABLE:
            _import_all()
    entry = _REGISTRY.get(name) or _UNIMPORTABLE.get(name)
    if entry is None:
        raise UnknownMethodError(f"unknown method {name!r}; available: {', '.join(list_methods())}")
    return entry


def describe_methods() -> list[MethodEntry]:
    """Every method, registered or found unimportable, in name order."""
    _import_all()
    entries = {**_UNIMPORTABLE, **_REGISTRY}
    return [entries[name] for name in sorted(entries)]


def list_methods() -> list[MethodName]:
    """The names of every method, in name order; each says whether it is ready and why not.

    Returns
    -------
    list of MethodName
        Plain strings (``"telea" in list_methods()`` works); ``name.ready`` is False for a
        method that cannot run on this installation with its default options, and
        ``name.reason`` says why and how to fix it (the list's repr shows it too).

    Examples
    --------
    >>> import holefill
    >>> "telea" in holefill.list_methods()
    True
    >>> [name for name in holefill.list_methods() if not name.ready]  # doctest: +SKIP
    ['pconv' (not ready: its packaged weights ... are not installed: reinstall holefill, ...)]
    """
    return [
        MethodName(entry.name, ready=entry.ready, reason=entry.reason, summary=entry.summary)
        for entry in describe_methods()
    ]


def get_method_class(name: str) -> type:
    """The inpainter class registered under ``name``.

    Raises
    ------
    UnknownMethodError
        No such method.
    InputError
        The method's module cannot be imported here (the message says why).
    """
    entry = _entry(name)
    if entry.cls is None:
        raise InputError(f"method {name!r} {entry.import_error}")
    return entry.cls


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
    """Build the inpainter registered under ``name`` with keyword ``options``.

    Raises
    ------
    UnknownMethodError
        No such method.
    InputError
        An option the method does not have (the message lists the ones it has).
    WeightsError
        Weights it needs are missing or damaged; the message starts with the method's name.
    """
    check_options(name, options)
    cls = get_method_class(name)
    try:
        return cls(**options)
    except WeightsError as exc:  # "neural_patch: needs a VGG-19 file: pass --vgg-weights ..."
        # (texture="neural" with no VGG-19 file)
        raise WeightsError(f"{name}: {exc}") from None


def methods_report() -> str:
    """What ``holefill methods`` prints: each method, ready or not (why, how to fix), options."""
    lines = []
    for entry in describe_methods():
        state = "ready" if entry.ready else "NOT READY"
        lines.append(f"{entry.name:14s} {state:9s}  {entry.summary}".rstrip())
        if not entry.ready:
            lines.append(f"{'':14s}   {entry.reason}")
        if entry.cls is None:
            continue
        if entry.needs:
            lines.append(f"{'':14s}   needs: {', '.join(map(str, entry.needs))}")
        shown = ", ".join(f"{k}={v['default']!r}" for k, v in method_options(entry.name).items())
        lines.append(f"{'':14s}   options: {shown}")
    return "\n".join(lines)


__all__ = [
    "register_method",
    "Package",
    "PackagedWeights",
    "VGG19File",
    "MethodEntry",
    "MethodName",
    "list_methods",
    "describe_methods",
    "get_method_class",
    "method_options",
    "check_options",
    "create_inpainter",
    "methods_report",
]
