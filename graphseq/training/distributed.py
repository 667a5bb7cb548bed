"""Multi-process training with PyTorch DistributedDataParallel, started by ``torchrun``.

``torchrun --nproc_per_node N -m graphseq train ... --set distributed=true``: every process
holds the whole graph, trains on its slice of each batch of users (gloo on CPU, nccl on
CUDA), gradients are averaged by DDP, every process evaluates (so early stopping agrees) and
only rank 0 writes the run directory.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

from graphseq.device import resolve_device


def setup(device: str) -> tuple[int, int, torch.device]:
    """Join the process group torchrun describes in the environment: (rank, world, device)."""
    if "RANK" not in os.environ:
        raise RuntimeError("distributed=true needs torchrun (RANK/WORLD_SIZE are not set)")
    cuda = resolve_device(device).type == "cuda"
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    if cuda:
        local = int(os.environ.get("LOCAL_RANK", rank))
        torch.cuda.set_device(local)
        return rank, world, torch.device("cuda", local)
    return rank, world, torch.device("cpu")


def shard(batches: list[torch.Tensor], rank: int, world: int) -> list[torch.Tensor]:
    """Rank ``rank``'s slice of every global batch (batches too small to split are skipped),
    so all ranks take the same number of steps."""
    if world == 1:
        return batches
    return [b.tensor_split(world)[rank] for b in batches if len(b) >= world]


def teardown() -> None:
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
