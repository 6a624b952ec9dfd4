"""The journaled engine: sequence + timestamp a batch, apply it, group-commit commands and events.

    with JournaledEngine.open("var/shard1", durability="sync") as je:   # recovers if it exists
        events = je.submit(cmds, time.time_ns())                        # durable when this returns

The engine mode (funds=True: accounts and balances; False: core matching) is recorded in the
journal's meta when it is created; recovery, replay and verify use it, and opening a journal in the
other mode is a JournalError.

Time enters here (Command.ts), never inside the engine, so a replay reproduces the same events.
A batch is acknowledged only after its transaction committed (and, in sync mode, was fsync'ed):
kill -9 at any moment loses nothing that submit() returned for. Durability modes are described
in journal/store.py.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np

from core_cython.engine import Engine
from journal.codec import stamp_commands
from journal.errors import JournalError
from journal.replay import recover_engine, settle_funds_mode
from journal.store import DEFAULT_MAP_SIZE, DEFAULT_MAX_MAP_SIZE, DEFAULT_SYNC_INTERVAL_S, Durability, Journal

DEFAULT_SNAPSHOT_EVERY_EVENTS = 1_000_000


class JournaledEngine:
    """Owns an Engine and the Journal that makes its state durable and recoverable."""

    def __init__(self, engine: Engine, journal: Journal, *,
                 snapshot_every_events: int = DEFAULT_SNAPSHOT_EVERY_EVENTS) -> None:
        if (engine.last_cmd_seq, engine.last_event_seq) != (journal.last_cmd_seq, journal.last_event_seq):
            raise JournalError(f"engine at cmd/event seq {engine.last_cmd_seq}/{engine.last_event_seq} does "
                               f"not match the journal ({journal.last_cmd_seq}/{journal.last_event_seq})")
        self.engine = engine
        self.journal = journal
        self.snapshot_every_events = snapshot_every_events  # 0 = only explicit snapshot() calls
        latest = journal.latest_snapshot()
        self._snapshot_event_seq = latest[0].last_event_seq if latest else 0
        self._failure: str | None = None

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        durability: Durability = "sync",
        snapshot_every_events: int = DEFAULT_SNAPSHOT_EVERY_EVENTS,
        verify_events: bool = False,
        progress: bool = False,
        map_size: int = DEFAULT_MAP_SIZE,
        max_map_size: int = DEFAULT_MAX_MAP_SIZE,
        sync_interval_s: float = DEFAULT_SYNC_INTERVAL_S,
        funds: bool | None = None,
        writemap: bool | None = None,
    ) -> JournaledEngine:
        """Open (creating if needed) and recover: newest valid snapshot + replay of the command tail.

        verify_events: also check that the replayed events equal the journaled ones byte for byte.
        funds: the engine mode; None = the journal's (core for a new journal). A new journal records
        it; an existing one in the other mode raises JournalError.
        writemap: see Journal (None: where it is safe, in async mode).
        """
        journal = Journal(path, durability=durability, map_size=map_size, max_map_size=max_map_size,
                          sync_interval_s=sync_interval_s, writemap=writemap)
        try:
            funds = settle_funds_mode(journal, funds)
            engine = recover_engine(journal, verify_events=verify_events, progress=progress, funds=funds)
            return cls(engine, journal, snapshot_every_events=snapshot_every_events)
        except BaseException:
            journal.close()
            raise

    @property
    def last_cmd_seq(self) -> int:
        return self.engine.last_cmd_seq

    @property
    def last_event_seq(self) -> int:
        return self.engine.last_event_seq

    @property
    def funds(self) -> bool:
        return bool(self.engine.funds)

    def state_hash(self) -> str:
        return self.engine.state_hash()

    def submit(self, cmds: np.ndarray, now_ns: int | np.ndarray) -> np.ndarray:
        """Stamp, apply and durably journal one batch of commands (one group commit).

        cmds: writable, C-contiguous COMMAND_DTYPE array; its `ts` (= now_ns, one value or one per
        command) and `seq` fields are filled in place. Returns the batch's events: a view into the
        engine valid until the next submit(). When this returns, the batch is committed.
        """
        if self._failure is not None:
            self._check_usable()
        engine = self.engine
        # The type checks and the ts stamp in one C call (TypeError as the numpy checks raised).
        if stamp_commands(cmds, now_ns) == 0:
            return engine.events()[:0]
        try:
            engine.process(cmds)
            events = engine.events()
            snapshot = None
            every = self.snapshot_every_events
            if every and engine.last_event_seq - self._snapshot_event_seq >= every:
                snapshot = self._snapshot_blob()
            self.journal.append(cmds, events, snapshot=snapshot)
        except BaseException as exc:
            # The engine may now be ahead of the journal: refuse further work, recovery re-syncs them.
            self._failure = f"{type(exc).__name__}: {exc}"
            raise
        if snapshot is not None:
            self._snapshot_event_seq = self.engine.last_event_seq
        return events

    def snapshot(self) -> str:
        """Store a snapshot of the current state now (own transaction); returns its state hash."""
        self._check_usable()
        blob, state_hash = self._snapshot_blob()
        self.journal.put_snapshot(blob, state_hash, cmd_seq=self.engine.last_cmd_seq,
                                  last_event_seq=self.engine.last_event_seq)
        self._snapshot_event_seq = self.engine.last_event_seq
        return state_hash

    def _check_usable(self) -> None:
        if self._failure is not None:
            raise JournalError(f"journaled engine stopped after a failure ({self._failure}); reopen it")

    def _snapshot_blob(self) -> tuple[bytes, str]:
        blob = self.engine.snapshot()
        # Engine.state_hash() is BLAKE2b-256 of snapshot(): hash this blob rather than serialise twice.
        return blob, hashlib.blake2b(blob, digest_size=32).hexdigest()

    def flush(self) -> None:
        self.journal.flush()

    def close(self) -> None:
        self.journal.close()

    def __enter__(self) -> JournaledEngine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
