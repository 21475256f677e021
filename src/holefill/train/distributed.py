"""Process groups for data-parallel training: one process per GPU (or per CPU worker) via torchrun.

The same command runs alone or under ``torchrun --nproc_per_node N``: torchrun's environment
(``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR``...) switches on DDP, with the NCCL backend
on GPUs and gloo on CPUs. Rank 0 alone logs, validates, checkpoints and exports; every rank reads
the checkpoint on resume.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from holefill.weights import resolve_device


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: its rank among ``world_size`` and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device_request: str = "auto") -> DistContext:
    """Join torchrun's process group when launched by it; a single-process context otherwise.

    The device is :func:`holefill.weights.resolve_device` of ``device_request`` for this process's
    ``LOCAL_RANK`` (``cuda`` means the GPU of that rank)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_request, local_rank)
    if world_size > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(
            backend=backend, rank=rank, world_size=world_size, timeout=timedelta(minutes=10)
        )
    return DistContext(rank, world_size, local_rank, device)


def shutdown(context: DistContext, owner: object = None, *, clean: bool = True) -> None:
    """Leave the process group. ``owner``'s DDP wrappers are unwrapped first and, after a clean
    run, the ranks meet at a barrier: a DDP reducer or a peer's pending collective outliving the
    group makes the C++ side abort at exit ("terminate called without an active exception")."""
    if not (context.enabled and dist.is_initialized()):
        return
    from torch.nn.parallel import DistributedDataParallel

    for name, value in list(vars(owner).items()) if owner is not None else ():
        if isinstance(value, DistributedDataParallel):
            setattr(owner, name, value.module)
    gc.collect()
    if clean:
        dist.barrier()
    dist.destroy_process_group()


def barrier(context: DistContext) -> None:
    if context.enabled:
        dist.barrier()


def max_over_ranks(context: DistContext, values: list[float]) -> list[float]:
    """Element-wise maximum of numbers over all ranks (one small all-reduce); on booleans, OR."""
    if not context.enabled:
        return values
    tensor = torch.tensor([float(v) for v in values], device=context.device, dtype=torch.float64)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return tensor.tolist()


def mean_over_ranks(context: DistContext, values: torch.Tensor) -> torch.Tensor:
    """The mean of a tensor over all ranks."""
    if not context.enabled:
        return values
    values = values.clone()
    dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values / context.world_size


def sync_buffers(model: torch.nn.Module, context: DistContext) -> None:
    """Copy rank 0's buffers (batch-norm statistics) to every rank.

    DDP broadcasts them before each forward pass, so after the last step each rank still holds the
    statistics of its own last batch; this makes every rank's model identical to the saved one.
    """
    if not context.enabled:
        return
    for buffer in model.buffers():
        dist.broadcast(buffer.data, src=0)


def wrap_model(model: torch.nn.Module, context: DistContext) -> torch.nn.Module:
    """DDP around ``model`` when several processes train; the model itself otherwise."""
    if not context.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [context.device.index] if context.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


__all__ = [
    "DistContext",
    "init_distributed",
    "resolve_device",
    "shutdown",
    "barrier",
    "max_over_ranks",
    "mean_over_ranks",
    "sync_buffers",
    "wrap_model",
]
