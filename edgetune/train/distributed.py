"""Data-parallel fine-tuning on PyTorch's own engine: torch.distributed + DistributedDataParallel.

A job is N processes (ranks) started by torchrun, or by `edgetune finetune --nproc N`, which calls
torchrun's launcher (edgetune.train.launcher). The contract, the same for classify and kws:

- Every rank reads the whole data set and builds the same model from the same seed.
- `--batch` stays the *global* batch, as in a 1-process run: every rank draws the same epoch order
  and augments the whole batch from the same random stream (a few per cent of a step), then keeps
  its own slice (`shard`) for the forward and backward pass. DDP averages the gradients, and the
  loss is scaled so that the average is the mean over the global batch (`global_mean`). So N
  processes take the optimisation steps one process takes, up to float summation order, dropout
  masks and BatchNorm batch statistics (per rank: SyncBatchNorm needs CUDA, and the classifier's
  pretrained BN statistics are frozen by default anyway).
- Rank 0 alone runs what is done once (the linear probe, validation, resume's checkpoint read) and
  broadcasts the result (`on_main`), so every rank takes the same early-stopping decision. Rank 0
  alone writes the run directory and logs; a run made with N processes is an ordinary run
  (it exports, benches and resumes with 1).
- An input error is raised by every rank at the same point (`together` agrees on it), and only
  rank 0 prints it; a rank that dies makes the others' collectives fail (`PeerFailed`).
"""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

from edgetune.errors import DataError, EdgetuneError, ExitCode, UsageError
from edgetune.train.launcher import echo, env_int

T = TypeVar("T")
TIMEOUT = datetime.timedelta(hours=1)  # rank 0's validation or probe on a large set may take a while


class PeerFailed(EdgetuneError):
    """A collective failed because another process of the job stopped."""

    exit_code = ExitCode.INTERNAL
    _edgetune_echo = True  # the rank whose end caused it (or the launcher) says why
    _edgetune_peer = True


@dataclass(frozen=True)
class Dist:
    """This process's place in the job (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def record(self) -> dict[str, int]:
        """What the fine-tune's result says of the job ({} for one process)."""
        return {"processes": self.world} if self.active else {}

    def device(self, device: torch.device) -> torch.device:
        """CUDA ranks on one node take one GPU each (LOCAL_RANK), as torchrun intends."""
        return torch.device("cuda", self.local_rank) if self.active and device.type == "cuda" else device

    def shard(self, batch: T) -> T:
        """This rank's slice of a global batch (indices, or a tensor's first axis)."""
        return batch[self.rank:: self.world] if self.active else batch  # type: ignore[index]

    def global_mean(self, local_mean: torch.Tensor, local_count: int, global_count: int) -> torch.Tensor:
        """The loss whose gradient, averaged over ranks by DDP, is that of the global batch's mean
        (slices may differ in size by one). One process: `local_mean` itself, bit for bit."""
        return local_mean * (local_count * self.world / global_count) if self.active else local_mean

    def sum(self, *values: float) -> list[float]:
        """Sum floats over ranks (an epoch's loss total: each rank adds its slices' part)."""
        if not self.active:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64)
        _collective(torch.distributed.all_reduce, t)
        return t.tolist()

    def gather_parts(self, parts: dict[int, T]) -> list[T]:
        """Every rank's numbered parts (e.g. batches it computed), merged in number order on
        every rank."""
        if self.active:
            gathered: list[Any] = [None] * self.world
            _collective(torch.distributed.all_gather_object, gathered, parts)
            parts = {k: v for got in gathered for k, v in got.items()}
        return [parts[k] for k in sorted(parts)]

    def wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        """DistributedDataParallel around `module` (itself when not distributed). Parameters are
        broadcast from rank 0 here, so every rank starts from rank 0's weights."""
        if not self.active:
            return module
        from torch.nn.parallel import DistributedDataParallel as DDP

        dev = next(module.parameters()).device
        return DDP(module, device_ids=[dev.index] if dev.type == "cuda" else None)

    def on_main(self, fn: Callable[[], T]) -> T:
        """`fn()` on rank 0, its result (or its EdgetuneError) broadcast to every rank."""
        if not self.active:
            return fn()
        box: list[Any] = [None]
        if self.is_main:
            try:
                box[0] = ("ok", fn())
            except EdgetuneError as exc:
                box[0] = ("error", exc)
        _collective(torch.distributed.broadcast_object_list, box, src=0)
        kind, value = box[0]
        if kind == "error":
            raise value if self.is_main else echo(value)
        return value

    def check_same(self, value: str, what: str, hint: str) -> None:
        """Every rank must hold the same `value` (the data hash: the same files at the same path
        on every node); a rank that differs is named, in one DataError on every rank."""
        if not self.active:
            return
        values: list[Any] = [None] * self.world
        _collective(torch.distributed.all_gather_object, values, value)
        odd = [r for r, v in enumerate(values) if v != values[0]]
        if odd:
            err = DataError(f"{what} differs between rank 0 and rank(s) {', '.join(map(str, odd))}", hint=hint)
            raise err if self.is_main else echo(err)

    def check_same_data(self, data_hash: str, data: object) -> None:
        """The trainers' check: every rank read the same files from `--data`."""
        self.check_same(data_hash, f"the data in {data} (its hash)", hint="every node needs the same files at the same path")

    @contextlib.contextmanager
    def together(self) -> Iterator[None]:
        """A stage every rank runs (reading the data, building the model): an EdgetuneError on any
        rank is raised on all of them, the lowest failing rank's, so the job ends with one message.
        No collective may run inside it (a rank that failed early would pair it with this one's)."""
        if not self.active:
            yield
            return
        error: EdgetuneError | None = None
        try:
            yield
        except EdgetuneError as exc:
            error = exc
        errors: list[Any] = [None] * self.world
        _collective(torch.distributed.all_gather_object, errors, error)
        first = next((e for e in errors if e is not None), None)
        if first is not None:
            raise first if self.is_main else echo(first)


SINGLE = Dist()  # one process: every collective is the identity


def _peer_failed(exc: BaseException) -> PeerFailed:
    return PeerFailed(f"another process of the distributed job stopped ({str(exc).splitlines()[0][:120]})",
                      hint="its own message, or the launcher's, says why")


def _collective(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except RuntimeError as exc:  # DistBackendError, gloo's "Connection closed by peer"
        raise _peer_failed(exc) from None


@contextlib.contextmanager
def peer_failures() -> Iterator[None]:
    """DDP's own collectives (inside backward) failing because a rank died: one typed error."""
    try:
        yield
    except RuntimeError as exc:
        if not (torch.distributed.is_initialized() and _is_comm_error(exc)):
            raise
        raise _peer_failed(exc) from None


def _is_comm_error(exc: RuntimeError) -> bool:
    backend_error = getattr(torch.distributed, "DistBackendError", ())
    text = str(exc).lower()
    return isinstance(exc, backend_error) or any(s in text for s in ("gloo", "nccl", "connection", "peer"))


def job(device_name: str) -> Dist:
    """The job this process belongs to, from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK,
    LOCAL_WORLD_SIZE, MASTER_ADDR/PORT); the process group is created here: gloo on CPU, NCCL on
    CUDA. No WORLD_SIZE, or 1: not distributed, nothing initialised."""
    world = env_int("WORLD_SIZE", 1)
    if world <= 1:
        return Dist()
    dist = Dist(rank=env_int("RANK", 0), world=world, local_rank=env_int("LOCAL_RANK", 0),
                local_world=env_int("LOCAL_WORLD_SIZE", world))
    if not torch.distributed.is_initialized():
        cuda = device_name.startswith("cuda") or (device_name == "auto" and torch.cuda.is_available())
        if cuda and device_name not in ("auto", "cuda"):
            err = UsageError(f"--device {device_name} under torchrun: each process takes the GPU of its LOCAL_RANK",
                             hint="pass --device cuda (or auto), and CUDA_VISIBLE_DEVICES to choose the GPUs")
            raise echo(err) if dist.rank else err
        if cuda:
            torch.cuda.set_device(dist.local_rank)
        _collective(torch.distributed.init_process_group, backend="nccl" if cuda else "gloo", timeout=TIMEOUT,
                    rank=dist.rank, world_size=world)
    return dist


def start(device_name: str, threads: int | None, quiet: bool) -> tuple[Dist, bool]:
    """A trainer's first step: join the job, give this process its share of the cores (torch
    threads), and keep every rank but 0 quiet. Returns (the job, quiet)."""
    from edgetune.cpu import usable_cores

    dist = job(device_name)
    torch.set_num_threads(threads or max(1, usable_cores() // dist.local_world))
    return dist, quiet or not dist.is_main


def finish() -> None:
    """Leave the process group: after the last collective (rank 0 has written the run), or on the way
    out with an error. Python's exit with the group still up can end in `terminate called without
    an active exception` (SIGABRT), which the launcher would report instead of the error."""
    if torch.distributed.is_initialized():
        try:
            torch.distributed.destroy_process_group()
        except RuntimeError:  # a broken group (a peer died): nothing left to close cleanly
            pass

