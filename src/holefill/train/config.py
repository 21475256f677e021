"""The trainer's configuration: a tree of dataclasses that reads and writes plain YAML.

One mechanism for both networks: :class:`TrainConfig` (the PConv U-Net) and
:class:`ContentTrainConfig` (the content network of ``neural_patch``). A run's configuration is
built in three layers, each overriding the one before:

1. the defaults below (the model and loss sections are the networks' and the loss module's own
   dataclasses: :class:`~holefill.nn.unet.PConvConfig`, :class:`~holefill.nn.content.ContentNetConfig`,
   :class:`~holefill.nn.losses.LossWeights`);
2. a YAML file (``--config``), any subset of the tree;
3. ``key=value`` overrides with dotted keys (``optim.lr=1e-4``), each value parsed by
   ``yaml.safe_load`` (so ``amp=bf16``, ``data.crop_scale=[0.8,1]``, ``optim.max_minutes=null``).

Unknown keys and values of the wrong type raise :class:`~holefill.errors.InputError` naming the key.
The resolved tree is saved as ``config.yaml`` in the run folder.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from holefill.errors import InputError
from holefill.nn.content import ContentNetConfig
from holefill.nn.losses import LossWeights
from holefill.nn.unet import PConvConfig

AmpMode = Literal["none", "bf16", "fp16"]
MaskSource = Literal["generated", "folder", "both"]
ExportDtype = Literal["float16", "bfloat16", "float32"]


@dataclass
class DataConfig:
    """Training photos, augmentation and masks.

    ``batch_size`` is the **global** batch: under DDP each of N processes takes ``batch_size / N``
    samples per step, so a run means the same thing on any number of processes.
    """

    train_dir: str | None = None  #: set by ``--data``
    val_dir: str | None = None  #: set by ``--val``
    size: int = 256  #: square training size; a multiple of the model's ``size_multiple``
    crop_scale: list[float] = field(default_factory=lambda: [0.75, 1.0])  #: crop side / short side
    flip: bool = True
    batch_size: int = 16
    workers: int = 4
    masks: MaskSource = "generated"
    mask_dir: str | None = None  #: mask PNG folder for ``masks: folder|both``
    folder_mask_share: float = 0.5  #: share of folder masks when ``masks: both``


@dataclass
class OptimConfig:
    """Adam, the paper's two phases, and when to stop."""

    lr: float = 2e-4
    finetune_lr: float = 5e-5
    #: first step of the fine-tuning phase (lr ``finetune_lr``, encoder BN frozen); null = never
    finetune_from_step: int | None = None
    #: ``constant``: the paper's two phases (``lr``, then ``finetune_lr``). ``cosine``: linear
    #: warm-up over ``warmup_steps``, then a cosine from ``lr`` down to ``min_lr`` over this
    #: invocation's budget (``max_steps`` or ``max_minutes``, whichever ends first)
    schedule: Literal["constant", "cosine"] = "constant"
    warmup_steps: int = 0
    min_lr: float = 0.0
    #: fine-tune (encoder BN frozen) from this fraction of the budget on; null = by step only
    finetune_from_fraction: float | None = None
    max_steps: int = 100_000
    #: wall-clock budget of one invocation in minutes: checkpoint, export and stop when exceeded
    max_minutes: float | None = None
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    weight_decay: float = 0.0
    grad_clip: float | None = None  #: max global gradient norm; null = no clipping


@dataclass
class LossConfig:
    """The PConv loss: its feature network and term weights."""

    feature_net: str = "vgg19"  #: vgg19, vgg16 or random (tests)
    taps: list[str] | None = None  #: feature taps; null = the loss module's default
    weights: LossWeights = field(default_factory=LossWeights)


@dataclass
class TrainConfig:
    """Everything a PConv training run needs, saved with every checkpoint."""

    model: PConvConfig = field(default_factory=PConvConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    amp: AmpMode = "bf16"  #: autocast dtype (bf16 on CUDA and CPUs, fp16 on CUDA only)
    threads: int | None = None  #: CPU threads of torch (``torch.set_num_threads``); null = default
    #: run the loss's feature network under autocast too (its terms are still summed in float32)
    amp_loss: bool = False
    channels_last: bool = True  #: on CUDA only
    compile: bool = False  #: torch.compile the network
    ckpt_every: int = 1000  #: steps between checkpoints; 0 = only by time and at the end
    ckpt_every_minutes: float | None = 15.0
    keep_checkpoints: int = 2
    val_every: int = 1000  #: steps between validations; 0 = only at the end
    val_images: int = 64
    val_batch_size: int = 16
    log_every: int = 50
    seed: int = 0
    #: start a fresh run from these network weights (an exported ``.safetensors`` or a checkpoint
    #: ``.pt``), with a new optimiser; ignored when resuming a run that has checkpoints
    init_weights: str | None = None
    export_dtype: ExportDtype = "float16"
    debug_rank_state: bool = False  #: each rank writes ``debug/rank{r}.json`` (DDP tests)

    def to_dict(self) -> dict[str, Any]:
        """The tree as plain data (lists, dicts, numbers, strings)."""
        return _plain(dataclasses.asdict(self))


@dataclass
class ContentDataConfig:
    """Photos, augmentation and holes. ``batch_size`` is the global batch (split over DDP)."""

    train_dir: str | None = None  #: set by ``--data``
    val_dir: str | None = None  #: set by ``--val``
    size: int = 128  #: must equal ``model.size``
    crop_scale: list[float] = field(default_factory=lambda: [0.6, 1.0])
    flip: bool = True
    batch_size: int = 32
    workers: int = 0  #: DataLoader processes (0 = load in the training process)
    centre_share: float = 0.5  #: share of centred rectangles; the rest are free-form strokes
    centre_side: list[float] = field(default_factory=lambda: [0.3, 0.55])  #: side / size range
    centre_jitter: float = 0.06  #: largest shift of the rectangle's centre, as a share of size


@dataclass
class ContentOptimConfig:
    """Adam for both networks (DCGAN betas) and when to stop."""

    lr: float = 2e-4
    d_lr: float = 2e-4
    betas: list[float] = field(default_factory=lambda: [0.5, 0.999])
    max_steps: int = 100_000
    #: wall-clock budget of one invocation in minutes: checkpoint, export and stop when exceeded
    max_minutes: float | None = None
    grad_clip: float | None = None


@dataclass
class ContentLossConfig:
    """The Context Encoder's joint loss weights."""

    l2: float = 0.999
    adversarial: float = 0.001
    known_weight: float = 0.1  #: L2 weight of the known pixels relative to the hole's


@dataclass
class ContentTrainConfig:
    """Everything a content-network run needs, saved with every checkpoint."""

    model: ContentNetConfig = field(default_factory=ContentNetConfig)
    data: ContentDataConfig = field(default_factory=ContentDataConfig)
    optim: ContentOptimConfig = field(default_factory=ContentOptimConfig)
    loss: ContentLossConfig = field(default_factory=ContentLossConfig)
    amp: AmpMode = "bf16"  #: autocast dtype (bf16 on CUDA and CPUs, fp16 on CUDA only)
    threads: int | None = None  #: CPU threads of torch (``torch.set_num_threads``); null = default
    ckpt_every: int = 1000
    ckpt_every_minutes: float | None = 10.0
    keep_checkpoints: int = 2
    val_every: int = 1000  #: 0 = only at the end
    val_images: int = 64
    val_batch_size: int = 32
    log_every: int = 50
    seed: int = 0
    export_dtype: ExportDtype = "float16"

    def to_dict(self) -> dict[str, Any]:
        """The tree as plain data (lists, dicts, numbers, strings)."""
        return _plain(dataclasses.asdict(self))


#: the configuration tree of each trainer plug-in, by the name of ``holefill train NAME``
SCHEMAS: dict[str, type] = {"pconv": TrainConfig, "content": ContentTrainConfig}


# ---------------------------------------------------------------------------------------------
# Building, merging, saving
# ---------------------------------------------------------------------------------------------


def load_config(
    path: str | os.PathLike | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    *,
    base: dict[str, Any] | None = None,
    values: dict[str, Any] | None = None,
    schema: type = TrainConfig,
):
    """Build a configuration (:class:`TrainConfig` or another ``schema``) from ``base`` (a saved
    tree) or the defaults, a YAML file and ``key=value`` overrides.

    Parameters
    ----------
    path : path or None
        YAML file holding any subset of the tree.
    overrides : list of str
        ``"dotted.key=value"`` items applied last; values are parsed with ``yaml.safe_load``.
    base : dict or None
        Starting tree instead of the defaults (``--resume`` starts from the run's saved config).
    values : dict or None
        A partial tree applied after the file and before the overrides (command-line flags).
    schema : type
        The configuration dataclass: :class:`TrainConfig` (PConv) or :class:`ContentTrainConfig`.

    Returns
    -------
    TrainConfig or ContentTrainConfig

    Raises
    ------
    InputError
        Unknown key, wrong value type, unreadable file.
    """
    tree = schema().to_dict()
    updates = [base, read_yaml(path) if path is not None else None, values]
    updates += [_nest(*parse_override(item)) for item in overrides]
    for update in updates:
        if update is not None:
            _merge(tree, update, "", tree)
    return _build(schema, tree, "")


def packaged_config(name: str) -> Path:
    """A recipe shipped in ``holefill/configs`` (``"pconv_default"``, ``"content_default"``...)."""
    return Path(__file__).resolve().parents[1] / "configs" / f"{name}.yaml"


def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """A YAML mapping from ``path`` (an empty file is an empty mapping); a name that is not a file
    but a packaged recipe (``pconv_default``) reads the recipe."""
    path = Path(path)
    if not path.exists():
        if not packaged_config(str(path)).is_file():
            recipes = sorted(p.stem for p in packaged_config("x").parent.glob("*.yaml"))
            raise InputError(
                f"config {str(path)!r} is neither a file nor a packaged recipe "
                f"({', '.join(recipes)})"
            )
        path = packaged_config(str(path))
    try:
        loaded = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise InputError(f"cannot read config {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"config {path} is not valid YAML: {exc}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise InputError(f"config {path} must hold a mapping of keys, not {type(loaded).__name__}")
    return loaded


def save_config(config: Any, path: str | os.PathLike) -> None:
    """Write the resolved tree as YAML (key order as declared)."""
    from holefill.io import atomic_write_bytes

    text = yaml.safe_dump(config.to_dict(), sort_keys=False, default_flow_style=None)
    atomic_write_bytes(path, text.encode())


def parse_override(item: str) -> tuple[list[str], Any]:
    """``"optim.lr=1e-4"`` -> ``(["optim", "lr"], 0.0001)``."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise InputError(f"override {item!r} must look like dotted.key=value (e.g. optim.lr=1e-4)")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        value = text
    return key.split("."), value


def _nest(keys: list[str], value: Any) -> dict[str, Any]:
    for key in reversed(keys):
        value = {key: value}
    return value


def _merge(tree: dict[str, Any], update: dict[str, Any], prefix: str, root: dict[str, Any]) -> None:
    """Merge ``update`` into ``tree`` in place; only keys the tree has are allowed."""
    for key, value in update.items():
        name = f"{prefix}{key}"
        if key not in tree:
            raise InputError(f"unknown config key {name!r}{_suggest(str(key), tree, prefix, root)}")
        if isinstance(tree[key], dict):
            if not isinstance(value, dict):
                raise InputError(
                    f"config key {name!r} is a section; give its keys "
                    f"({', '.join(tree[key])}), not {value!r}"
                )
            _merge(tree[key], value, f"{name}.", root)
        else:
            tree[key] = value


def _suggest(key: str, tree: dict[str, Any], prefix: str, root: dict[str, Any]) -> str:
    elsewhere = [path for path in _leaf_paths(root, "") if path.rsplit(".", 1)[-1] == key]
    if elsewhere:  # max_minutes=4 -> optim.max_minutes
        return f"; did you mean {elsewhere[0]!r}?"
    close = difflib.get_close_matches(key, list(tree), n=1)
    if close:
        return f"; did you mean {prefix + close[0]!r}?"
    return f"; keys here: {', '.join(prefix + k for k in tree)}"


def _leaf_paths(tree: dict[str, Any], prefix: str) -> list[str]:
    paths = []
    for key, value in tree.items():
        if isinstance(value, dict):
            paths += _leaf_paths(value, f"{prefix}{key}.")
        else:
            paths.append(f"{prefix}{key}")
    return paths


def _build(cls: type, values: dict[str, Any], prefix: str):
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for spec in dataclasses.fields(cls):
        if spec.name in values:
            kwargs[spec.name] = _coerce(values[spec.name], hints[spec.name], prefix + spec.name)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"invalid config section {prefix.rstrip('.') or 'root'!r}: {exc}"
        ) from None


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """``value`` checked against (and, for numbers written as text, converted to) ``hint``."""
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise InputError(f"config key {key!r} is a section, got {value!r}")
        return _build(hint, value, f"{key}.")
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, option, key)
            except InputError as exc:
                errors.append(str(exc))
        raise InputError(
            errors[0]
            if len(errors) == 1
            else f"config key {key!r}: {value!r} matches none of {hint}"
        )
    if origin is Literal:
        if value not in args:
            raise InputError(
                f"config key {key!r} must be one of {', '.join(map(repr, args))}, got {value!r}"
            )
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise InputError(f"config key {key!r} must be a list, got {value!r}")
        return [_coerce(item, args[0] if args else Any, key) for item in value]
    return _coerce_scalar(value, hint, key)


def _coerce_scalar(value: Any, hint: Any, key: str) -> Any:
    if hint is Any:
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        number = _number(value)
        if number is not None and float(number).is_integer():
            return int(number)
    elif hint is float:
        number = _number(value)
        if number is not None:
            return float(number)
    elif hint is str:
        if isinstance(value, str):
            return value
    elif isinstance(value, hint):
        return value
    name = getattr(hint, "__name__", str(hint))
    raise InputError(f"config key {key!r} must be {name}, got {value!r}")


def _number(value: Any) -> float | int | None:
    """Numbers, and numbers YAML 1.1 leaves as text (``1e-4``, ``5e4``)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


__all__ = [
    "TrainConfig",
    "ContentTrainConfig",
    "ContentDataConfig",
    "ContentOptimConfig",
    "ContentLossConfig",
    "SCHEMAS",
    "DataConfig",
    "OptimConfig",
    "LossConfig",
    "load_config",
    "packaged_config",
    "save_config",
    "read_yaml",
    "parse_override",
]
