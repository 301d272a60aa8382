"""DistributedDataParallel set-up for torchrun launches (gloo on CPU, nccl on CUDA).

Without torchrun's environment (WORLD_SIZE unset or 1) everything is a no-op and training runs in
one process."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as tdist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from models.device import pick_device


@dataclass
class DistState:
    active: bool
    rank: int
    world_size: int
    device: torch.device | None

    def wrap(self, net: nn.Module) -> nn.Module:
        """net wrapped in DDP when active (gradients all-reduced), else net itself."""
        if not self.active:
            return net
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(net, device_ids=ids)

    def gather_objects(self, obj: Any) -> list[Any]:
        """[obj of rank 0, obj of rank 1, ...] on every rank (just [obj] without DDP)."""
        if not self.active:
            return [obj]
        out: list[Any] = [None] * self.world_size
        tdist.all_gather_object(out, obj)
        return out

    def params_in_sync(self, net: nn.Module) -> bool:
        """True when every rank holds the same parameters (compares a float64 checksum)."""
        if not self.active:
            return True
        total = sum(float(p.detach().double().sum()) + float((p.detach().double() ** 2).sum())
                    for p in net.parameters())
        sums = self.gather_objects(total)
        return all(abs(s - sums[0]) <= 1e-9 * max(1.0, abs(sums[0])) for s in sums)

    def teardown(self) -> None:
        if self.active and tdist.is_initialized():
            tdist.barrier()
            tdist.destroy_process_group()


def exit_rank(rc: int) -> None:
    """End a rank's process with `rc` without the interpreter's finalization. gloo's threads can
    still be joinable when Python tears down, even after destroy_process_group, and the process
    then aborts ("terminate called without an active exception", exit -6) after its work is done
    and saved, which torchrun reports as a failed rank. Output is flushed first."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed or broken pipe: nothing left to keep
            pass
    os._exit(rc)


def launched_ranks() -> int:
    """WORLD_SIZE of a torchrun-style launch (1 without one)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def setup(device: str | torch.device | None = None) -> DistState:
    """Join the process group torchrun describes (env RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR).
    Each rank uses cuda:LOCAL_RANK when CUDA is present and not overridden to cpu, else cpu."""
    world = launched_ranks()
    if world <= 1:
        return DistState(False, 0, 1, None)
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    base = pick_device(device)
    dev = torch.device("cuda", local) if base.type == "cuda" else torch.device("cpu")
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if not tdist.is_initialized():
        tdist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return DistState(True, rank, world, dev)
