"""The shared-memory ring alone: producer processes publish 112-byte requests (a command record and
its origin, what the gateways publish), this process consumes them; messages/s and publish-to-take
latency (both clocks are CLOCK_MONOTONIC)."""

from __future__ import annotations

import multiprocessing
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from bench.ringloop import drain, pump
from bench.stats import latency_summary
from bench.stats import rate as per_second
from core_cython.records import REQUEST_DTYPE
from core_cython.ring import Ring

RING_CAPACITY = 1 << 16


@dataclass
class RingResult:
    producers: int
    wait: str
    rate: int  # planned messages/s across all producers; 0 = as fast as they can
    capacity: int
    messages: int
    seconds: float
    messages_per_s: float
    latency_ns: dict[str, int]
    full_retries: int
    dropped: int
    skipped: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _producer(path: str, count: int, interval_ns: int, start: Any, results: Any) -> None:
    ring = Ring.attach(path)
    records = np.zeros(1024, REQUEST_DTYPE)  # pump() stamps the send time into cmd.ts (offset 8)
    records["cmd"]["order_id"] = np.arange(1024)
    start.wait()
    results.put(pump(ring, records, count, interval_ns=interval_ns))
    ring.close()


def run_ring(producers: int, messages: int, wait: str, rate: int = 0,
             capacity: int = RING_CAPACITY) -> RingResult:
    """One run: `producers` processes share `messages` equally, flat out (rate 0: throughput, where
    latency is mostly queueing in a full ring) or paced at `rate` messages/s in all (latency)."""
    path = os.path.join("/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir(),
                        f"venue-bench-ring-{os.getpid()}")
    ring = Ring.create(path, capacity=capacity, slot_size=REQUEST_DTYPE.itemsize)
    ctx = multiprocessing.get_context("spawn")  # no inherited state: like separate gateway processes
    start = ctx.Event()
    results = ctx.Queue()
    share = messages // producers
    interval_ns = producers * 1_000_000_000 // rate if rate else 0
    procs = [ctx.Process(target=_producer, args=(path, share, interval_ns, start, results))
             for _ in range(producers)]
    lat = np.zeros(share * producers, dtype=np.int64)
    try:
        for p in procs:
            p.start()
        time.sleep(0.3)  # let them attach; the clock starts when they are released
        t0 = time.perf_counter()
        start.set()
        got = drain(ring, lat.size, lat, wait=wait)
        seconds = time.perf_counter() - t0
        stats = [results.get(timeout=30) for _ in procs]
        for p in procs:
            p.join(timeout=30)
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
        skipped = ring.skipped
        ring.close()
        os.unlink(path)
    if got != lat.size:
        raise RuntimeError(f"ring bench: consumed {got} of {lat.size} messages (a producer failed?)")
    return RingResult(producers=producers, wait=wait, rate=rate, capacity=capacity, messages=got,
                      seconds=seconds, messages_per_s=per_second(got, seconds),
                      latency_ns=latency_summary(lat),
                      full_retries=sum(s[1] for s in stats), dropped=sum(s[2] for s in stats),
                      skipped=skipped)
