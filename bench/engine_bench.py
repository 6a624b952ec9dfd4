"""Section 1: the engine alone, in process, in core mode or in funds mode (risk + settlement).

Throughput comes from a run with no per-command timing (so timer calls do not inflate it); latency
from process_timed over the same workload on a fresh engine built from the same setup. The setup
(in funds mode: assets, accounts, deposits, fees, limits; then the preloaded book) is not measured.
"""

from __future__ import annotations

import gc
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from bench.stats import latency_summary, rate
from bench.workload import Workload
from core_cython.records import EventType, Op, Reason

if TYPE_CHECKING:
    from core_cython.engine import Engine

CHUNK = 65_536  # commands per process() call: bounds the engine's event buffer, as a sequencer would


def chunks(n: int, size: int = CHUNK) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def load_engine(setup: np.ndarray, funds: bool = False) -> tuple[Engine, dict[str, int]]:
    """A fresh engine that has applied the setup, and the setup's rejects by reason (none expected)."""
    from core_cython.engine import Engine  # lazily: generating a workload needs no compiled engine

    # Pre-size the order pool and event buffer so no realloc lands inside the measured run.
    # (Funds mode: a trade brings up to five postings, a new order a hold.)
    eng = Engine(initial_orders=max(1024, 2 * setup.size), initial_events=(8 if funds else 4) * CHUNK,
                 funds=funds)
    cmds = setup.copy()  # the engine stamps seq in place: keep the workload pristine
    reasons = np.zeros(256, dtype=np.int64)
    for s in chunks(cmds.size):
        eng.process(cmds[s])
        ev = eng.events()
        reasons += np.bincount(ev["reason"][ev["type"] == EventType.REJECTED], minlength=256)
    return eng, _by_reason(reasons)


def _by_reason(tally: np.ndarray) -> dict[str, int]:
    return {(Reason(r).name.lower() if r in Reason._value2member_map_ else str(r)): int(tally[r])
            for r in np.flatnonzero(tally)}


@dataclass
class EngineResult:
    funds: bool
    commands: int
    events: int
    seconds: float
    latency_ns: dict[str, int]
    timed_seconds: float
    live_orders_start: int
    live_orders_end: int
    same_state: bool  # both runs ended in the same state (determinism check)
    event_types: dict[str, int] = field(default_factory=dict)
    links: int = 0  # cancels + replaces in the stream
    links_live: float = 0.0  # share of them that found their order live
    rejects: dict[str, int] = field(default_factory=dict)  # REJECTED events of the stream by reason
    setup_commands: int = 0
    setup_rejects: dict[str, int] = field(default_factory=dict)  # of the untimed setup

    @property
    def postings(self) -> int:
        return self.event_types.get("posting", 0)

    def as_dict(self) -> dict[str, object]:
        return {
            "mode": "funds" if self.funds else "core",
            "commands": self.commands,
            "events": self.events,
            "seconds": self.seconds,
            "commands_per_s": rate(self.commands, self.seconds),
            "events_per_s": rate(self.events, self.seconds),
            "latency_ns": self.latency_ns,
            "timed_run_seconds": self.timed_seconds,
            "live_orders_start": self.live_orders_start,
            "live_orders_end": self.live_orders_end,
            "same_state": self.same_state,
            "event_types": self.event_types,
            "postings_per_command": self.postings / self.commands if self.commands else 0.0,
            "rejects": self.rejects,
            "setup_commands": self.setup_commands,
            "setup_rejects": self.setup_rejects,
            "cancels_replaces_live": self.links_live,
        }


def run_engine(wl: Workload, funds: bool = False) -> EngineResult:
    n = wl.commands.size
    links = int(np.count_nonzero((wl.commands["op"] == Op.CANCEL) | (wl.commands["op"] == Op.REPLACE)))
    # Untimed: the preloaded engines and copies of the stream for both runs.
    setup = wl.setup_for(funds)
    eng, setup_rejects = load_engine(setup, funds)
    live_start = eng.live_orders()
    eng_timed, _ = load_engine(setup, funds)
    cmds, cmds_timed = wl.commands.copy(), wl.commands.copy()
    lat = np.zeros(n, dtype=np.int64)
    slices = list(chunks(n))

    gc.disable()  # nothing in the loops allocates Python objects worth collecting
    try:
        events = 0
        t0 = time.perf_counter()
        for s in slices:
            events += eng.process(cmds[s])
        seconds = time.perf_counter() - t0

        # The tally runs between calls: it adds to this run's wall time, not to any command's latency.
        tally = np.zeros(256, dtype=np.int64)
        reasons = np.zeros(256, dtype=np.int64)
        missed = 0
        t0 = time.perf_counter()
        for s in slices:
            eng_timed.process_timed(cmds_timed[s], lat[s])
            ev = eng_timed.events()
            tally += np.bincount(ev["type"], minlength=256)
            reasons += np.bincount(ev["reason"][ev["type"] == EventType.REJECTED], minlength=256)
            unknown = (ev["type"] == EventType.REJECTED) & (ev["reason"] == Reason.UNKNOWN_ORDER)
            missed += int(np.count_nonzero(unknown & ((ev["op"] == Op.CANCEL) | (ev["op"] == Op.REPLACE))))
        timed_seconds = time.perf_counter() - t0
    finally:
        gc.enable()

    return EngineResult(
        funds=funds,
        commands=n,
        events=events,
        seconds=seconds,
        latency_ns=latency_summary(lat),
        timed_seconds=timed_seconds,
        live_orders_start=live_start,
        live_orders_end=eng.live_orders(),
        same_state=eng.state_hash() == eng_timed.state_hash(),
        event_types={t.name.lower(): int(tally[t]) for t in EventType},
        links=links,
        links_live=1 - missed / links if links else 0.0,
        rejects=_by_reason(reasons),
        setup_commands=setup.size,
        setup_rejects=setup_rejects,
    )


def memory_per_resting_order(funds: bool = False) -> float:
    """Bytes per resting order, measured in a fresh process (bench/memory.py): this one has freed
    memory that malloc would reuse without growing, which would hide part of the cost."""
    argv = [sys.executable, "-m", "bench.memory", *(["--funds"] if funds else [])]
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    return float(done.stdout.strip())
