"""Where a venue process runs: CPU affinity and real-time priority, both optional (config).

On a small machine the engine and a gateway that share a core hand work to each other with a plain
context switch; on different cores every hand-off is a cross-core wake-up, which on a VM means
waking a halted virtual CPU (tens of µs). Operators pin the hot processes; the default is to let
the kernel place them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable

_RANGE = re.compile(r"(\d+)(?:-(\d+))?")


class CpuListError(ValueError):
    pass


def parse_cpu_list(text: str) -> frozenset[int]:
    """"" = no pinning (empty set); else taskset's list syntax: "1", "0,1", "0-3,6"."""
    cpus: set[int] = set()
    for part in filter(None, (p.strip() for p in text.split(","))):
        match = _RANGE.fullmatch(part)
        if match is None or int(match[2] or match[1]) < int(match[1]):
            raise CpuListError(f"not a CPU list: {text!r} (e.g. \"1\", \"0,1\" or \"0-3\")")
        cpus.update(range(int(match[1]), int(match[2] or match[1]) + 1))
    return frozenset(cpus)


def use_cpus(text: str, log: Callable[[str], None] | None = None) -> None:
    """Pin this process (and the threads it starts later) to the CPUs of `text` ("" = leave it).
    CPUs this machine does not have are dropped; if none is left, the pinning is skipped."""
    wanted = parse_cpu_list(text)
    if not wanted:
        return
    usable = wanted & os.sched_getaffinity(0)
    if not usable:
        if log:
            log(f"CPU list {text!r} names no CPU this process may use; not pinned")
        return
    os.sched_setaffinity(0, usable)


def use_rt_priority(priority: int, log: Callable[[str], None] | None = None) -> None:
    """SCHED_FIFO for this process (0: leave it). With the engine, the gateways and clients on
    2 cores, CFS wake-up preemption and time slices were most of the e2e p99.9."""
    if priority <= 0:
        return
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except OSError as exc:
        if log:
            log(f"SCHED_FIFO {priority} refused ({exc.strerror}); running with normal scheduling")
