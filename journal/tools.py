"""Operator tools behind `venue journal inspect|replay|verify` (read-only; safe on a live journal).

All three raise JournalNotFoundError / JournalCorruptError (subclasses of JournalError, one-line
messages) when the path holds no journal or one that cannot be opened.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from core_cython.engine import Engine
from journal.errors import JournalCorruptError
from journal.format import RecordKind, SnapshotHeader, batch_records, decode_batch_header
from journal.replay import journal_funds_mode, recover_engine, replay_commands
from journal.store import META_DURABILITY, META_FORMAT, Journal

MAX_LISTED_PROBLEMS = 50


def inspect(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A summary: seq ranges and counts, batches, snapshots, sizes, durability, metadata."""
    with Journal(path, readonly=True) as journal:
        meta = journal.meta()
        snapshots = [
            {"error": str(item)} if isinstance(item, Exception) else
            {"cmd_seq": item.cmd_seq, "last_event_seq": item.last_event_seq, "state_hash": item.state_hash,
             "size": item.blob_size}
            for item in journal.snapshots()
        ]
        return {
            "path": os.path.abspath(journal.path),
            "format_version": meta.get(META_FORMAT, {}).get("format_version"),
            "durability": meta.get(META_DURABILITY),
            "file_size": journal.file_size(),
            "commands": _seq_summary(journal, RecordKind.COMMANDS),
            "events": _seq_summary(journal, RecordKind.EVENTS),
            "snapshots": snapshots,
            "meta": {k: v for k, v in meta.items() if k not in (META_FORMAT, META_DURABILITY)},
        }


def _seq_summary(journal: Journal, kind: RecordKind) -> dict[str, int | None]:
    """First/last seq and counts from the batch headers alone (crc checks are verify's job)."""
    first = last = None
    count = batches = gaps = 0
    for key, value in journal.raw_batches(kind):
        try:
            header = decode_batch_header(value, check_crc=False)
        except JournalCorruptError:
            gaps += 1
            continue
        if first is None:
            first = key
        elif last is not None and header.first_seq != last + 1:
            gaps += 1
        last = header.last_seq
        count += header.count
        batches += 1
    return {"first_seq": first, "last_seq": last, "count": count, "batches": batches, "gaps": gaps}


def replay(path: str | os.PathLike[str], progress: bool = True, *, from_snapshot: bool = False,
           verify_events: bool = False) -> str:
    """Rebuild the state (from scratch, or from the newest snapshot) and return its state hash."""
    with Journal(path, readonly=True) as journal:
        engine = recover_engine(journal, use_snapshot=from_snapshot, verify_events=verify_events,
                                progress=progress)
        return engine.state_hash()


@dataclass
class VerifyReport:
    """The outcome of verify(); `problems` lists every failed check (first MAX_LISTED_PROBLEMS)."""

    path: str
    ok: bool = True
    commands: int = 0
    events: int = 0
    command_batches: int = 0
    event_batches: int = 0
    snapshots_checked: int = 0
    state_hash: str | None = None
    problems: list[str] = field(default_factory=list)
    problems_not_listed: int = 0

    def add(self, problem: str) -> None:
        self.ok = False
        if len(self.problems) < MAX_LISTED_PROBLEMS:
            self.problems.append(problem)
        else:
            self.problems_not_listed += 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def verify(path: str | os.PathLike[str], progress: bool = False) -> VerifyReport:
    """Check everything: batch checksums and layout, gap-free seqs, replayed events == stored
    events, and every snapshot's hash == the replayed state's hash at its cmd seq."""
    with Journal(path, readonly=True) as journal:
        report = VerifyReport(path=os.path.abspath(journal.path))
        _check_batches(journal, RecordKind.COMMANDS, report)
        _check_batches(journal, RecordKind.EVENTS, report)
        snapshots = _check_snapshots(journal, report)
        _check_replay(journal, snapshots, report, progress)
        return report


def _check_batches(journal: Journal, kind: RecordKind, report: VerifyReport) -> None:
    name = kind.name.lower()
    expected = 1
    last_cmd_seq = 0
    for key, value in journal.raw_batches(kind):
        try:
            header = decode_batch_header(value)
        except JournalCorruptError as exc:
            report.add(f"{name} batch under key {key}: {exc}")
            continue
        if kind is RecordKind.COMMANDS:
            report.command_batches += 1
            report.commands += header.count
        else:
            report.event_batches += 1
            report.events += header.count
        if header.first_seq != key:
            report.add(f"{name} batch under key {key} says first seq {header.first_seq}")
        if header.first_seq != expected:
            report.add(f"{name} seqs jump from {expected - 1} to {header.first_seq}")
        records = batch_records(value, header)
        seqs = records["seq"]
        if header.count and np.any(seqs != np.arange(header.first_seq, header.first_seq + header.count,
                                                     dtype=seqs.dtype)):
            report.add(f"{name} batch at seq {header.first_seq}: records carry other seqs")
        if kind is RecordKind.EVENTS and header.count:
            cmd_seqs = records["cmd_seq"]
            if cmd_seqs[0] < last_cmd_seq or np.any(np.diff(cmd_seqs.astype(np.int64)) < 0):
                report.add(f"event batch at seq {header.first_seq}: cmd_seq goes backwards")
            last_cmd_seq = int(cmd_seqs[-1])
        expected = header.last_seq + 1


def _check_snapshots(journal: Journal, report: VerifyReport) -> dict[int, SnapshotHeader]:
    """Snapshots whose bytes are sound (crc, blob hash), by cmd seq; problems for the others."""
    sound: dict[int, SnapshotHeader] = {}
    for item in journal.snapshots():
        if isinstance(item, Exception):
            report.add(str(item))
            continue
        header, blob = journal.load_snapshot(item.cmd_seq)
        if hashlib.blake2b(blob, digest_size=32).hexdigest() != header.state_hash:
            report.add(f"snapshot at cmd seq {header.cmd_seq}: blob does not hash to its stored state hash")
        elif header.cmd_seq > journal.last_cmd_seq:
            report.add(f"snapshot at cmd seq {header.cmd_seq} is beyond the last command "
                       f"{journal.last_cmd_seq}")
        else:
            sound[header.cmd_seq] = header
    return sound


def _check_replay(journal: Journal, snapshots: dict[int, SnapshotHeader], report: VerifyReport,
                  progress: bool) -> None:
    engine = Engine(funds=bool(journal_funds_mode(journal)))
    problems: list[str] = []

    def check_snapshot(engine: Engine) -> None:
        header = snapshots[engine.last_cmd_seq]
        report.snapshots_checked += 1
        if engine.state_hash() != header.state_hash:
            problems.append(f"snapshot at cmd seq {header.cmd_seq}: state hash differs from the replay's")
        elif engine.last_event_seq != header.last_event_seq:
            problems.append(f"snapshot at cmd seq {header.cmd_seq}: last event seq {header.last_event_seq}, "
                            f"replay has {engine.last_event_seq}")

    try:
        replay_commands(engine, journal, compare_events=True, checkpoints=list(snapshots),
                        on_checkpoint=check_snapshot, problems=problems, progress=progress)
    except JournalCorruptError as exc:
        problems.append(f"replay stopped at cmd seq {engine.last_cmd_seq}: {exc}")
    for problem in problems:
        report.add(problem)
    if engine.last_cmd_seq == journal.last_cmd_seq and engine.last_event_seq != journal.last_event_seq:
        report.add(f"replay produced events up to seq {engine.last_event_seq}, the journal holds "
                   f"up to {journal.last_event_seq}")
    report.state_hash = engine.state_hash()

