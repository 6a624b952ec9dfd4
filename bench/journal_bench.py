"""Sections 2 and 3: the engine behind the journal (group commit), and recovery from a journal.

Group commit: the stream is cut into batches of `batch` commands; one JournaledEngine.submit() per
batch stamps, applies and commits it. Every command of a batch is acknowledged when the batch
commits, so its latency is the batch's: from the start of submit() to its return (in sync mode that
includes the fsync, in async mode the commit reaches the OS page cache). In funds mode the journal
also holds the setup's money commands and every POSTING event (about three per command).
"""

from __future__ import annotations

import gc
import os
import time
from dataclasses import dataclass

import numpy as np

from bench.engine_bench import CHUNK, chunks
from bench.stats import latency_summary, rate
from bench.workload import Workload


@dataclass
class JournalResult:
    funds: bool
    durability: str
    batch: int
    commands: int
    events: int
    batches: int
    seconds: float
    latency_ns: dict[str, int]
    snapshots: int  # taken inside the measured run (each one lengthens its batch)
    journal_bytes: int
    path: str
    state_hash: str

    def as_dict(self) -> dict[str, object]:
        return {
            "mode": "funds" if self.funds else "core",
            "durability": self.durability,
            "batch": self.batch,
            "commands": self.commands,
            "events": self.events,
            "batches": self.batches,
            "seconds": self.seconds,
            "commands_per_s": rate(self.commands, self.seconds),
            "events_per_s": rate(self.events, self.seconds),
            "latency_ns": self.latency_ns,
            "snapshots_in_run": self.snapshots,
            "journal_bytes": self.journal_bytes,
        }


def _preload(je, setup: np.ndarray) -> None:  # je: JournaledEngine
    cmds = setup.copy()
    for s in chunks(cmds.size, CHUNK):
        je.submit(cmds[s], int(cmds["ts"][s.start]))
    je.flush()  # the measured run starts with nothing pending


def run_journal(wl: Workload, durability: str, batch: int, path: str, snapshot_every: int,
                funds: bool = False) -> JournalResult:
    from journal.sequencer import JournaledEngine

    n = wl.commands.size
    je = JournaledEngine.open(path, durability=durability, snapshot_every_events=snapshot_every, funds=funds)
    try:
        _preload(je, wl.setup_for(funds))
        snapshots_before = len(je.journal.snapshots())
        cmds = wl.commands.copy()
        slices = list(chunks(n, batch))
        per_batch = np.empty(len(slices), dtype=np.int64)
        clock = time.perf_counter_ns
        gc.disable()
        try:
            events = 0
            t0 = clock()
            for i, s in enumerate(slices):
                b0 = clock()
                events += len(je.submit(cmds[s], time.time_ns()))  # the sequencer stamps wall time
                per_batch[i] = clock() - b0
            je.flush()  # async: the tail reaches the disk before the clock stops
            seconds = (clock() - t0) / 1e9
        finally:
            gc.enable()
        snapshots = len(je.journal.snapshots()) - snapshots_before
        state_hash = je.state_hash()
        size = je.journal.file_size()
    finally:
        je.close()
    sizes = np.fromiter((s.stop - s.start for s in slices), dtype=np.int64, count=len(slices))
    return JournalResult(
        funds=funds,
        durability=durability,
        batch=batch,
        commands=n,
        events=events,
        batches=len(slices),
        seconds=seconds,
        latency_ns=latency_summary(np.repeat(per_batch, sizes)),
        snapshots=snapshots,
        journal_bytes=size,
        path=path,
        state_hash=state_hash,
    )


@dataclass
class RecoveryResult:
    commands: int
    events: int
    replay_seconds: float  # full replay from the first command (no snapshot): the target's figure
    snapshot_seconds: float  # what open() does: newest snapshot + replay of the tail
    same_state: bool
    source: str
    funds: bool = False

    @property
    def seconds_per_million(self) -> float:
        return self.replay_seconds * 1e6 / self.events if self.events else float("nan")

    def as_dict(self) -> dict[str, object]:
        return {
            "mode": "funds" if self.funds else "core",
            "journal": self.source,
            "commands": self.commands,
            "events": self.events,
            "full_replay_seconds": self.replay_seconds,
            "seconds_per_million_events": self.seconds_per_million,
            "events_per_s": rate(self.events, self.replay_seconds),
            "snapshot_plus_tail_seconds": self.snapshot_seconds,
            "same_state": self.same_state,
        }


def build_journal(wl: Workload, path: str, batch: int, snapshot_every: int, funds: bool = False) -> str:
    """A journal of the whole workload, written untimed (async: only its content matters here)."""
    return run_journal(wl, "async", batch, path, snapshot_every, funds).state_hash


def run_recovery(path: str, expected_hash: str, source: str, funds: bool = False) -> RecoveryResult:
    from journal.replay import recover_engine
    from journal.store import Journal

    timings = {}
    hashes = []
    for use_snapshot in (False, True):
        gc.collect()
        t0 = time.perf_counter()
        with Journal(path, readonly=True) as journal:
            engine = recover_engine(journal, use_snapshot=use_snapshot)
            commands, events = journal.last_cmd_seq, journal.last_event_seq
        timings[use_snapshot] = time.perf_counter() - t0
        hashes.append(engine.state_hash())
        del engine
    return RecoveryResult(
        commands=commands,
        events=events,
        replay_seconds=timings[False],
        snapshot_seconds=timings[True],
        same_state=all(h == expected_hash for h in hashes),
        source=source,
        funds=funds,
    )


def fs_type(path: str) -> str:
    """Filesystem of a path (a tmpfs fsync costs nothing: sync figures would mean little there)."""
    path = os.path.realpath(path)
    best, kind = "", "unknown"
    try:
        with open("/proc/mounts", encoding="utf-8") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and (path == parts[1] or path.startswith(parts[1].rstrip("/") + "/")):
                    if len(parts[1]) > len(best):
                        best, kind = parts[1], parts[2]
    except OSError:
        pass
    return kind
