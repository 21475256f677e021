"""Training data: photos with random crops and flips, hole masks, a resumable sample stream.

Determinism
-----------
Every sample is addressed by its **global position** ``p`` in the run's stream (0, 1, 2, ...): step
``s`` of a run with global batch ``B`` consumes positions ``s*B ... s*B + B - 1``, and under DDP
rank ``r`` of ``N`` takes the ``r``-th slice of ``B/N`` of them. Position ``p`` is photo
``perm_e[p mod n]`` of epoch ``e = p // n`` (``perm_e`` a permutation seeded by ``(seed, e)``), and
its crop, flip and mask come from a generator seeded by ``(seed, p)``. So the stream depends only on
the seed and the position -- not on the number of workers or processes -- and a run resumes exactly
from the position stored in its checkpoint, even on another number of processes.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Sampler

from holefill.errors import InputError

#: photo suffixes the trainer reads (case-insensitive); every other file is ignored
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})
#: seed of the fixed validation masks, the same for every run so runs compare
VALIDATION_SEED = 2018

# stream tags that keep the generators of epochs and of samples apart
_EPOCH_STREAM = 0
_SAMPLE_STREAM = 1


def list_training_images(root: str | os.PathLike) -> list[Path]:
    """Photo files under ``root``, recursively, sorted by relative path (hidden files skipped)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: image folder not found")
    files = sorted(
        (
            p
            for p in root.rglob("*")
            if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()
        ),
        key=lambda p: p.relative_to(root).as_posix(),
    )
    if not files:
        raise InputError(f"{root}: no images (jpg, jpeg, png, webp) in this folder")
    return files


def sample_generator(seed: int, position: int) -> np.random.Generator:
    """The random source of the sample at global ``position`` of a run seeded ``seed``."""
    return np.random.default_rng([int(seed), _SAMPLE_STREAM, int(position)])


def epoch_permutation(seed: int, epoch: int, count: int) -> np.ndarray:
    """The photo order of ``epoch``."""
    return np.random.default_rng([int(seed), _EPOCH_STREAM, int(epoch)]).permutation(count)


# ---------------------------------------------------------------------------------------------
# Augmentation
# ---------------------------------------------------------------------------------------------


def random_crop_resize(
    photo: Image.Image,
    size: int,
    rng: np.random.Generator,
    crop_scale: tuple[float, float] = (0.75, 1.0),
    flip: bool = True,
) -> Image.Image:
    """A random square crop, resized to ``size`` x ``size``, flipped left-right half the time.

    The crop side is a fraction in ``crop_scale`` of the photo's shorter side; a photo (or crop)
    smaller than ``size`` is resized up.
    """
    width, height = photo.size
    short = min(width, height)
    side = max(1, min(short, round(short * rng.uniform(*crop_scale))))
    left = int(rng.integers(0, width - side + 1))
    top = int(rng.integers(0, height - side + 1))
    out = photo.resize(
        (size, size), Image.Resampling.BICUBIC, box=(left, top, left + side, top + side)
    )
    if flip and rng.random() < 0.5:
        out = out.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return out


def augment_mask(hole_mask: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A random rotation (by 90 degrees), flip and square crop of a mask, nearest-resized to
    ``size`` x ``size``."""
    import cv2

    hole_mask = np.rot90(hole_mask, int(rng.integers(4)))
    if rng.random() < 0.5:
        hole_mask = hole_mask[:, ::-1]
    height, width = hole_mask.shape
    short = min(height, width)
    side = max(1, round(short * rng.uniform(0.5, 1.0)))
    top = int(rng.integers(0, height - side + 1))
    left = int(rng.integers(0, width - side + 1))
    crop = np.ascontiguousarray(hole_mask[top : top + side, left : left + side], dtype=np.uint8)
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_NEAREST).astype(bool)


class MaskSource:
    """Training hole masks: generated (``random_training_mask``), from a mask folder, or both.

    Parameters
    ----------
    kind : {"generated", "folder", "both"}
    mask_dir : path or None
        Folder of mask PNGs (white = hole) for ``folder`` and ``both``.
    folder_share : float
        Share of folder masks when ``kind`` is ``both``.
    """

    def __init__(
        self,
        kind: str = "generated",
        mask_dir: str | os.PathLike | None = None,
        folder_share: float = 0.5,
    ) -> None:
        if kind not in ("generated", "folder", "both"):
            raise InputError(f"unknown mask source {kind!r}; use generated, folder or both")
        self.kind = kind
        self.folder_share = float(folder_share)
        self.folder = None
        if kind != "generated":
            if mask_dir is None:
                raise InputError(f"data.masks={kind} needs data.mask_dir (a folder of mask PNGs)")
            from holefill.masks import MaskFolder

            self.folder = MaskFolder(mask_dir)

    def __call__(self, size: int, rng: np.random.Generator) -> np.ndarray:
        """A bool ``(size, size)`` hole mask (True = hole)."""
        use_folder = self.kind == "folder" or (
            self.kind == "both" and rng.random() < self.folder_share
        )
        if use_folder:
            record = self.folder[int(rng.integers(len(self.folder)))]
            return augment_mask(self.folder.load(record), size, rng)
        from holefill.masks import random_training_mask

        return random_training_mask(size, size, rng)


# ---------------------------------------------------------------------------------------------
# The stream
# ---------------------------------------------------------------------------------------------


class TrainingSet(Dataset):
    """Photos and hole masks addressed by global stream position (see the module docstring).

    ``dataset[p]`` is ``(image, hole)``: ``image`` uint8 ``(3, size, size)``, ``hole`` uint8
    ``(1, size, size)`` with 1 = missing. (Bytes travel from the workers; the loop converts to float
    on the device.)
    """

    def __init__(
        self,
        files: list[Path],
        size: int,
        *,
        seed: int = 0,
        crop_scale: tuple[float, float] = (0.75, 1.0),
        flip: bool = True,
        masks: MaskSource | None = None,
    ) -> None:
        if not files:
            raise InputError("the training set has no images")
        lo, hi = crop_scale
        if not 0 < lo <= hi <= 1:
            raise InputError(f"data.crop_scale must satisfy 0 < lo <= hi <= 1, got {crop_scale}")
        self.files = list(files)
        self.size = int(size)
        self.seed = int(seed)
        self.crop_scale = (float(lo), float(hi))
        self.flip = bool(flip)
        self.masks = masks or MaskSource()
        self._orders: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        """Photos per epoch (the stream itself is endless)."""
        return len(self.files)

    def photo_index(self, position: int) -> int:
        """Which photo the stream shows at ``position``."""
        epoch, offset = divmod(int(position), len(self.files))
        order = self._orders.get(epoch)
        if order is None:
            if len(self._orders) > 2:  # a batch spans at most two epochs
                self._orders.pop(min(self._orders))
            order = self._orders[epoch] = epoch_permutation(self.seed, epoch, len(self.files))
        return int(order[offset])

    def __getitem__(self, position: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = sample_generator(self.seed, position)
        path = self.files[self.photo_index(position)]
        try:
            with Image.open(path) as photo:
                photo.draft("RGB", (self._draft_side(), self._draft_side()))
                photo = photo.convert("RGB")
        except OSError as exc:
            raise InputError(f"{path}: cannot read this image ({exc})") from None
        crop = random_crop_resize(photo, self.size, rng, self.crop_scale, self.flip)
        hole_mask = self.masks(self.size, rng)
        image = torch.from_numpy(np.asarray(crop, dtype=np.uint8).transpose(2, 0, 1).copy())
        hole = torch.from_numpy(hole_mask.astype(np.uint8)[None])
        return image, hole

    def _draft_side(self) -> int:
        """JPEG decoding may shrink big photos down to this side without losing crop detail."""
        return math.ceil(self.size / self.crop_scale[0])


class StreamSampler(Sampler[int]):
    """Global stream positions of this rank, step after step, from ``start``.

    Step ``k`` (counted from ``start``) yields ``start + k*B + rank*b ... + b - 1`` with ``B`` the
    global batch and ``b = B / world_size``.
    """

    def __init__(
        self,
        global_batch: int,
        *,
        start: int = 0,
        rank: int = 0,
        world_size: int = 1,
        steps: int | None = None,
    ) -> None:
        if global_batch % world_size:
            raise InputError(
                f"data.batch_size={global_batch} must be a multiple of the number of "
                f"processes ({world_size})"
            )
        self.global_batch = int(global_batch)
        self.per_rank = self.global_batch // world_size
        self.start, self.rank, self.steps = int(start), int(rank), steps

    def __iter__(self) -> Iterator[int]:
        step = 0
        while self.steps is None or step < self.steps:
            first = self.start + step * self.global_batch + self.rank * self.per_rank
            yield from range(first, first + self.per_rank)
            step += 1

    def __len__(self) -> int:
        if self.steps is None:
            raise TypeError("an endless stream has no length")
        return self.steps * self.per_rank


def _worker_init(_worker_id: int) -> None:
    import signal

    import cv2

    cv2.setNumThreads(1)  # the workers are the parallelism; OpenCV threads would oversubscribe
    # Ctrl-C reaches the whole process group; the trainer decides when to stop (it checkpoints
    # first), so a worker must not die of it mid-batch.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def make_loader(
    dataset: TrainingSet, sampler: StreamSampler, *, workers: int, pin_memory: bool = False
) -> DataLoader:
    """A DataLoader over ``sampler``'s positions, ``sampler.per_rank`` samples a batch."""
    return DataLoader(
        dataset,
        batch_size=sampler.per_rank,
        sampler=sampler,
        num_workers=workers,
        pin_memory=pin_memory,
        drop_last=False,
        worker_init_fn=_worker_init if workers else None,
        prefetch_factor=4 if workers else None,
        persistent_workers=False,
    )


def training_loader(data, masks, *, seed: int, start: int, context, pin_memory: bool) -> DataLoader:
    """The stream of training batches of a trainer: ``data`` is its data config (``train_dir``,
    ``size``, ``crop_scale``, ``flip``, ``batch_size``, ``workers``), ``masks`` its hole source,
    ``start`` the samples already seen and ``context`` the DDP context (rank, world size)."""
    dataset = TrainingSet(
        list_training_images(data.train_dir),
        data.size,
        seed=seed,
        crop_scale=tuple(data.crop_scale),
        flip=data.flip,
        masks=masks,
    )
    sampler = StreamSampler(
        data.batch_size, start=start, rank=context.rank, world_size=context.world_size
    )
    return make_loader(dataset, sampler, workers=data.workers, pin_memory=pin_memory)


# ---------------------------------------------------------------------------------------------
# Validation pairs
# ---------------------------------------------------------------------------------------------


@dataclass
class ValidationSet:
    """A fixed set of (photo, mask) pairs: uint8 ``images (N, 3, S, S)``, ``holes (N, 1, S, S)``
    (1 = missing) and each mask's PConv bin."""

    images: torch.Tensor
    holes: torch.Tensor
    bins: list[str]
    names: list[str]

    def __len__(self) -> int:
        return len(self.bins)


def build_validation_set(
    root: str | os.PathLike, size: int, count: int = 64, seed: int = VALIDATION_SEED
) -> ValidationSet:
    """``count`` photos spread evenly over the sorted folder, centre-cropped and resized to
    ``size``, each with a ``mask_in_bin`` mask, the bins taken in turn (so 64 pairs give 10 or 11
    per bin).
    """
    from holefill.masks import BIN_LABELS, mask_in_bin

    files = list_training_images(root)
    picks = np.unique(np.linspace(0, len(files) - 1, min(count, len(files))).round().astype(int))
    images, holes, bins = [], [], []
    for i, index in enumerate(picks):
        with Image.open(files[index]) as photo:
            photo = photo.convert("RGB")
        width, height = photo.size
        side = min(width, height)
        box = (
            (width - side) // 2,
            (height - side) // 2,
            (width - side) // 2 + side,
            (height - side) // 2 + side,
        )
        photo = photo.resize((size, size), Image.Resampling.BICUBIC, box=box)
        images.append(np.asarray(photo, dtype=np.uint8).transpose(2, 0, 1))
        label = BIN_LABELS[i % len(BIN_LABELS)]
        holes.append(mask_in_bin(size, size, label, rng=np.random.default_rng([seed, i]))[None])
        bins.append(label)
    return ValidationSet(
        torch.from_numpy(np.stack(images)),
        torch.from_numpy(np.stack(holes).astype(np.uint8)),
        bins,
        [files[i].name for i in picks],
    )


__all__ = [
    "IMAGE_SUFFIXES",
    "list_training_images",
    "random_crop_resize",
    "augment_mask",
    "MaskSource",
    "TrainingSet",
    "StreamSampler",
    "make_loader",
    "training_loader",
    "ValidationSet",
    "build_validation_set",
    "sample_generator",
    "epoch_permutation",
]
