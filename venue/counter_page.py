"""A process's counters in shared memory, read by the supervisor's /metrics (venue/metrics.py).

Each process of the venue (the engine, each gateway) owns a small file in the run directory holding
its counters, as Aeron's counters file does: a header, then one u64 per counter at a fixed slot, in
the order of the names the page was created with. The owner stores whole aligned 8-byte words,
which x86-64 and arm64 never tear, so the supervisor maps the file and reads each value whole,
without a lock and without asking the owner anything. The owner's hot path does not touch the page:
it counts in ordinary variables and copies them over now and then (the engine at most every
PUBLISH_NS and when idle, a gateway on its timer), so a value may be that much old.

A restarted process creates a fresh page (renamed over the old one): its counters start again from
0, which is what Prometheus expects of a restarted process's counters.

    0   magic "VENUECTR", version u32, count u32, pid u64, created (unix ns) u64
    64  count x u64 (little-endian)
"""

from __future__ import annotations

import mmap
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

MAGIC = b"VENUECTR"
VERSION = 1
HEADER = 64
PUBLISH_NS = 100_000_000  # how stale a busy owner lets its page get


@dataclass(frozen=True)
class PageReading:
    pid: int
    created_ns: int
    values: dict[str, int]


class CounterPage:
    """The owner's handle: set() copies its counts into the shared file."""

    def __init__(self, path: Path, names: Sequence[str]) -> None:
        if len(set(names)) != len(names):
            raise ValueError("counter names must be unique")
        self.path = path
        self.names = tuple(names)
        header = bytearray(HEADER)
        header[0:8] = MAGIC
        header[8:12] = VERSION.to_bytes(4, "little")
        header[12:16] = len(self.names).to_bytes(4, "little")
        header[16:24] = os.getpid().to_bytes(8, "little")
        header[24:32] = time.time_ns().to_bytes(8, "little")
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            f.write(bytes(header) + bytes(8 * len(self.names)))
        os.replace(tmp, path)  # a reader sees the old page or the whole new one
        with open(path, "r+b") as f:
            self._mm = mmap.mmap(f.fileno(), 0)
        self._values = memoryview(self._mm)[HEADER:].cast("Q")

    def set(self, values: Sequence[int]) -> None:
        """Store every counter, in the order of `names` (values are taken modulo 2^64)."""
        slots = self._values
        for i, value in enumerate(values):
            slots[i] = value & 0xFFFF_FFFF_FFFF_FFFF

    def close(self) -> None:
        """Unmap; the file stays, so the supervisor still sees the last values of a stopped process."""
        if self._mm.closed:
            return
        self._values.release()
        self._mm.close()


def read_page(path: Path, names: Sequence[str]) -> PageReading | None:
    """The values of the page at path (None if there is none); ValueError if it is not a page of
    these names (another version of the venue wrote it)."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return None
    with f:
        size = os.fstat(f.fileno()).st_size
        if size < HEADER:
            raise ValueError(f"{path} is not a counter page ({size} bytes)")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            head = mm[:HEADER]
            count = int.from_bytes(head[12:16], "little")
            if head[0:8] != MAGIC or int.from_bytes(head[8:12], "little") != VERSION:
                raise ValueError(f"{path} is not a counter page of version {VERSION}")
            if count != len(names) or size != HEADER + 8 * count:
                raise ValueError(f"{path} holds {count} counters, this venue expects {len(names)}")
            slots = memoryview(mm)[HEADER:].cast("Q")
            try:
                values = dict(zip(names, slots.tolist(), strict=True))  # 8-byte loads: never torn
            finally:
                slots.release()
    return PageReading(pid=int.from_bytes(head[16:24], "little"),
                       created_ns=int.from_bytes(head[24:32], "little"), values=values)
