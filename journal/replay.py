"""Rebuilding engine state from a journal: latest snapshot + replay of the command tail.

Commands are decoded straight from the stored batches into one big numpy chunk and fed to
Engine.process() (tens of thousands of commands per call), so replay runs at engine speed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence

import numpy as np
from tqdm import tqdm

from core_cython.engine import Engine
from core_cython.records import COMMAND_DTYPE, EVENT_DTYPE
from journal.errors import JournalCorruptError, JournalError
from journal.format import RecordKind
from journal.store import META_ENGINE, Journal

log = logging.getLogger("journal")

DEFAULT_CHUNK = 65_536  # commands per Engine.process() call during replay


class _EventStream:
    """The journal's stored events in seq order, handed out n at a time."""

    def __init__(self, journal: Journal, start_seq: int) -> None:
        self._batches: Iterator[np.ndarray] = journal.batches(RecordKind.EVENTS, start_seq)
        self._pending = np.zeros(0, dtype=EVENT_DTYPE)

    def take(self, n: int) -> np.ndarray:
        parts: list[np.ndarray] = []
        while n > 0:
            if len(self._pending) == 0:
                self._pending = next(self._batches, None)
                if self._pending is None:
                    self._pending = np.zeros(0, dtype=EVENT_DTYPE)
                    break
            part, self._pending = self._pending[:n], self._pending[n:]
            parts.append(part)
            n -= len(part)
        if len(parts) == 1:
            return parts[0]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=EVENT_DTYPE)

    def close(self) -> None:
        self._batches.close()  # type: ignore[attr-defined]


def journal_funds_mode(journal: Journal) -> bool | None:
    """The engine mode the journal was created with: True = funds, False = core, None = not yet recorded
    (a new journal; one written before modes existed has commands and no record: core)."""
    stored = journal.get_meta(META_ENGINE)
    if stored is None:
        return False if journal.last_cmd_seq else None
    if not isinstance(stored, dict) or not isinstance(stored.get("funds"), bool):
        raise JournalCorruptError(f"journal at {journal.path}: meta {META_ENGINE!r} is not "
                                  f"{{\"funds\": true|false}}")
    return stored["funds"]


def mode_name(funds: bool) -> str:
    return "funds mode" if funds else "core mode (no funds)"


def settle_funds_mode(journal: Journal, funds: bool | None) -> bool:
    """The mode to run a writable journal in: the recorded one, else `funds` (default core), which a
    new journal records now. A mode that differs from the recorded one is a JournalError."""
    recorded = journal_funds_mode(journal)
    if recorded is not None and funds is not None and funds != recorded:
        raise JournalError(f"journal at {journal.path} was created in {mode_name(recorded)}; it cannot be "
                           f"opened in {mode_name(funds)}")
    mode = bool(funds) if recorded is None else recorded
    if journal.get_meta(META_ENGINE) is None:  # new, or written without a mode (core)
        journal.set_meta(META_ENGINE, {"funds": mode})
    return mode


def first_difference(produced: np.ndarray, stored: np.ndarray) -> int | None:
    """Index of the first record that differs byte for byte (or where one array ends), else None."""
    n = min(len(produced), len(stored))
    a = produced[:n].view(np.uint8).reshape(n, EVENT_DTYPE.itemsize)
    b = stored[:n].view(np.uint8).reshape(n, EVENT_DTYPE.itemsize)
    if not np.array_equal(a, b):
        return int(np.flatnonzero((a != b).any(axis=1))[0])
    return None if len(produced) == len(stored) else n


def replay_commands(
    engine: Engine,
    journal: Journal,
    *,
    stop_seq: int | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    compare_events: bool = False,
    checkpoints: Sequence[int] = (),
    on_checkpoint: Callable[[Engine], None] | None = None,
    problems: list[str] | None = None,
    progress: bool = False,
) -> int:
    """Apply the journaled commands after engine.last_cmd_seq up to stop_seq (default: all).

    compare_events: check that the events the engine produces equal the stored ones byte for byte.
    checkpoints: cmd seqs at which on_checkpoint(engine) is called (chunks are cut there).
    problems: if given, event mismatches are appended to it and replay goes on; otherwise the first
    mismatch raises JournalCorruptError. Corrupt command batches always raise.
    Returns the number of commands applied.
    """
    start = engine.last_cmd_seq + 1
    stop = journal.last_cmd_seq if stop_seq is None else min(stop_seq, journal.last_cmd_seq)
    if stop < start:
        return 0
    checkpoint_set = {seq for seq in checkpoints if start <= seq <= stop}
    cuts = sorted(checkpoint_set | {stop})
    events = _EventStream(journal, engine.last_event_seq + 1) if compare_events else None
    chunk = np.empty(chunk_size, dtype=COMMAND_DTYPE)
    filled = 0
    applied = 0
    bar = tqdm(total=stop - start + 1, unit="cmd", unit_scale=True, disable=not progress, desc="replay")

    def apply(n: int) -> None:
        nonlocal applied
        cmds = chunk[:n]
        expected = engine.last_cmd_seq + 1
        if cmds["seq"][0] != expected or cmds["seq"][-1] != expected + n - 1:
            raise JournalCorruptError(f"command records at seq {expected} carry seqs "
                                      f"{int(cmds['seq'][0])}..{int(cmds['seq'][-1])}")
        produced_first = engine.last_event_seq + 1
        engine.process(cmds)
        if events is not None:
            produced = engine.events()
            stored = events.take(len(produced))
            diff = first_difference(produced, stored)
            if diff is not None:
                message = (f"replayed events differ from the journal at event seq {produced_first + diff} "
                           f"(commands {expected}..{expected + n - 1})")
                if problems is None:
                    raise JournalCorruptError(message)
                problems.append(message)
        applied += n
        bar.update(n)
        if on_checkpoint is not None and engine.last_cmd_seq in checkpoint_set:
            on_checkpoint(engine)

    batches = journal.batches(RecordKind.COMMANDS, start)
    try:
        cut_index = 0
        for records in batches:
            while len(records):
                next_seq = start + applied + filled
                take = min(len(records), chunk_size - filled, cuts[cut_index] - next_seq + 1)
                chunk[filled:filled + take] = records[:take]
                filled += take
                records = records[take:]
                if filled == chunk_size or next_seq + take - 1 == cuts[cut_index]:
                    apply(filled)
                    filled = 0
                    if engine.last_cmd_seq == cuts[cut_index]:
                        cut_index += 1
                        if cut_index == len(cuts):
                            return applied
    finally:
        batches.close()  # type: ignore[attr-defined]
        if events is not None:
            events.close()
        bar.close()
    if engine.last_cmd_seq != stop:
        raise JournalCorruptError(f"journal ends at cmd seq {engine.last_cmd_seq}, expected {stop}")
    return applied


def engine_from_snapshot(journal: Journal, *, at_or_before: int | None = None,
                         funds: bool | None = None) -> Engine | None:
    """An engine restored from the newest usable snapshot (crc, hash, seqs and, if given, the funds
    mode checked), else None."""
    limit = at_or_before
    while True:
        found = journal.latest_snapshot(at_or_before=limit)
        if found is None:
            return None
        header, blob = found
        try:
            engine = Engine.from_snapshot(blob)
            if engine.state_hash() != header.state_hash:
                raise ValueError("state hash differs from the stored one")
            if (engine.last_cmd_seq, engine.last_event_seq) != (header.cmd_seq, header.last_event_seq):
                raise ValueError("seqs differ from the snapshot header")
            if header.cmd_seq > journal.last_cmd_seq:
                raise ValueError("snapshot is newer than the journal's commands")
            if funds is not None and engine.funds != funds:
                raise ValueError(f"snapshot is of an engine in {mode_name(engine.funds)}, the journal's is "
                                 f"{mode_name(funds)}")
            return engine
        except ValueError as exc:
            log.warning("journal %s: skipping snapshot at cmd seq %d: %s", journal.path, header.cmd_seq, exc)
        if header.cmd_seq <= 1:
            return None
        limit = header.cmd_seq - 1


def recover_engine(
    journal: Journal, *, use_snapshot: bool = True, verify_events: bool = False, progress: bool = False,
    funds: bool | None = None,
) -> Engine:
    """The engine state after every journaled command: newest snapshot (if allowed) + replay of the rest.

    verify_events: compare the replayed events with the journaled ones (raises on a mismatch).
    funds: the engine mode (default: the one the journal records; core if none).
    """
    if funds is None:
        funds = bool(journal_funds_mode(journal))
    engine = engine_from_snapshot(journal, funds=funds) if use_snapshot else None
    if engine is None:
        engine = Engine(funds=funds)
    replay_commands(engine, journal, compare_events=verify_events, progress=progress)
    if engine.last_event_seq != journal.last_event_seq:
        raise JournalCorruptError(f"replay ends at event seq {engine.last_event_seq} but the journal "
                                  f"holds events up to {journal.last_event_seq}")
    return engine
