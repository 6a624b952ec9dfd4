"""The engine process's step, one order per batch: what the engine spends on each order of a paced flow.

`EngineService.step()` as the engine process runs it (take from the command ring, journal group commit
in async mode, match, publish outcomes to the broadcast ring), one NewOrder at a time, in this
process, with the venue's bootstrap and demo accounts. Between two steps this process touches
`thrash_mb` of other memory first (0: warm caches, the step in a tight loop; 1 MB: roughly what a
gateway running in between leaves of the caches), untimed. Orders: a seeded flow of limit orders
around the mid from two accounts, so about half of them trade.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.e2e_bench import e2e_config
from bench.stats import latency_summary, rate
from core_cython.records import REQUEST_DTYPE, Op, Side
from core_cython.ring import Ring

MID = 6_000_000  # ticks of the first shipped instrument (60000.00)


@dataclass
class StepResult:
    thrash_mb: float
    steps: int
    steps_per_s: float  # busy throughput: steps / time spent inside step()
    events: int
    latency_ns: dict[str, int]  # p50/p99/p99.9/max of one step()
    seed: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _requests(accounts: list[int], steps: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    reqs = np.zeros(steps, REQUEST_DTYPE)
    cmd = reqs["cmd"]
    who = np.arange(steps) % 2
    cmd["op"], cmd["symbol"] = Op.NEW, 1
    cmd["account"] = np.asarray(accounts)[who]
    cmd["side"] = np.where(who == 0, Side.SELL, Side.BUY)
    serial = np.arange(1, steps + 1, dtype=np.uint64)
    cmd["order_id"] = (cmd["account"].astype(np.uint64) << np.uint64(40)) | serial
    cmd["price"] = MID + rng.integers(-3, 4, steps)
    cmd["qty"] = rng.integers(1, 6, steps)
    cmd["ord_type"], cmd["tif"] = 1, 1  # limit, GTC
    reqs["request_id"] = np.arange(1, steps + 1)
    reqs["session"], reqs["gateway"] = 1, 1
    return reqs


def run_step(thrash_mb: float, steps: int = 20_000, seed: int = 42) -> StepResult:
    from venue.engine_service import COMMANDS_RING, EngineService, run_dir
    from venue.run import open_venue, prepare_demo_accounts

    directory = Path(tempfile.mkdtemp(prefix="venue-step-"))
    config = e2e_config(directory, "async", 2, ["engine.command_ring_slots=1024",
                                                "engine.outcome_ring_slots=65536"])
    junk = np.ones(int(thrash_mb * (1 << 20)) // 8 + 1, np.int64)
    try:
        with open_venue(config) as venue:
            _, demo = prepare_demo_accounts(venue, config)
            service = EngineService(venue.engine, config)
            ring = Ring.attach(str(run_dir(config) / COMMANDS_RING))
            try:
                reqs = _requests(sorted(demo.values())[:2], steps, seed)
                one = [reqs[i:i + 1].tobytes() for i in range(steps)]
                lat = np.zeros(steps, np.int64)
                clock = time.perf_counter_ns
                for i in range(steps):
                    if thrash_mb:
                        junk += 1  # every cache line of it, untimed
                    ring.publish_many(one[i])
                    start = clock()
                    service.step(0)
                    lat[i] = clock() - start
                events = service.stats.events_done
            finally:
                ring.close()
                service.close()
    finally:
        shutil.rmtree(run_dir(config), ignore_errors=True)
        shutil.rmtree(directory, ignore_errors=True)
    return StepResult(thrash_mb=thrash_mb, steps=steps, steps_per_s=rate(steps, lat.sum() / 1e9),
                      events=events, latency_ns=latency_summary(lat), seed=seed)
