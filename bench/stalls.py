"""How much this machine stalls a thread that never sleeps: the floor under any latency figure.

One process per CPU, pinned, spins reading the clock (bench/stallloop.pyx) and records every gap
longer than 5 µs: time it did not run (timer interrupts, other tasks, the hypervisor descheduling
the virtual CPU). From those gaps: how many and how long, the share of time lost, and the delay a
stream of events at 10,000/s would meet on that CPU if it arrived at a random instant (an event
that lands in a gap waits for its end). Nothing else of the venue runs meanwhile.
"""

from __future__ import annotations

import multiprocessing
import os
from dataclasses import asdict, dataclass
from itertools import pairwise
from typing import Any

import numpy as np

THRESHOLD_NS = 5_000
BUCKETS_US = (5, 20, 50, 100, 300, 1000)
EVENT_RATE = 10_000


@dataclass
class CpuStalls:
    cpu: int
    seconds: float
    stalls: dict[str, int]  # by length bucket, in µs
    lost_percent: float
    longest_us: float
    event_delay_us: dict[str, float]  # p99 / p99.9 of the wait an event at a random instant meets

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _spin_on(cpu: int, seconds: float, out: Any) -> None:
    from bench.stallloop import record_stalls

    os.sched_setaffinity(0, {cpu})
    out.send(record_stalls(seconds, THRESHOLD_NS))


def _summarise(cpu: int, starts: np.ndarray, lengths: np.ndarray, begin: int, end: int) -> CpuStalls:
    span = max(1, end - begin)
    edges = [b * 1000 for b in BUCKETS_US] + [np.iinfo(np.int64).max]
    names = [*(f"{a}-{b} us" for a, b in pairwise(BUCKETS_US)), f">{BUCKETS_US[-1]} us"]
    stalls = {name: int(((lengths >= low) & (lengths < high)).sum())
              for low, high, name in zip(edges[:-1], edges[1:], names, strict=True)}
    # Events every 1/EVENT_RATE s: one that lands inside a stall waits until the stall ends.
    events = np.arange(begin, end, 1_000_000_000 // EVENT_RATE, dtype=np.int64)
    if len(starts) == 0:  # a quiet CPU
        starts, lengths = np.array([begin], dtype=np.int64), np.zeros(1, dtype=np.int64)
    ends = starts + lengths
    i = np.searchsorted(starts, events, side="right") - 1  # the last stall starting at or before
    inside = (i >= 0) & (events < ends[np.maximum(i, 0)])
    delays = np.where(inside, ends[np.maximum(i, 0)] - events, 0) / 1000
    return CpuStalls(cpu=cpu, seconds=span / 1e9, stalls=stalls,
                     lost_percent=100.0 * float(lengths.sum()) / span,
                     longest_us=float(lengths.max()) / 1000 if len(lengths) else 0.0,
                     event_delay_us={"p99": float(np.percentile(delays, 99)),
                                     "p99.9": float(np.percentile(delays, 99.9))})


def measure_stalls(seconds: float = 5.0, cpus: list[int] | None = None) -> list[CpuStalls]:
    """Spin on every CPU at once (as the venue and a busy client do) and summarise each."""
    cpus = sorted(os.sched_getaffinity(0)) if cpus is None else cpus
    ctx = multiprocessing.get_context("spawn")
    pipes, procs = [], []
    for cpu in cpus:
        parent, child = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_spin_on, args=(cpu, seconds, child), daemon=True)
        proc.start()
        child.close()  # only the child writes: its death then shows as EOF here, not a hang
        pipes.append(parent)
        procs.append(proc)
    results = []
    for cpu, pipe, proc in zip(cpus, pipes, procs, strict=True):
        try:
            starts, lengths, begin, end = pipe.recv()
        except EOFError:
            proc.join()
            raise RuntimeError(f"the stall probe on CPU {cpu} died (exit code {proc.exitcode})") from None
        proc.join()
        results.append(_summarise(cpu, starts, lengths, begin, end))
    return results
