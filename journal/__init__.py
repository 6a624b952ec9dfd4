"""Event sourcing in LMDB: every command and event of the engine, group-committed in batches.

Public API:
    JournaledEngine  journal/sequencer.py  the engine + its journal: submit(), open() = recover
    Journal          journal/store.py      the LMDB store: append(), read/seek, snapshots, meta
    inspect, replay, verify, VerifyReport  journal/tools.py  (behind `venue journal ...`)
    JournalError and subclasses            journal/errors.py
"""

from journal.errors import (
    JournalCorruptError,
    JournalError,
    JournalFullError,
    JournalLockedError,
    JournalNotFoundError,
)
from journal.format import RecordKind
from journal.sequencer import JournaledEngine
from journal.store import Journal
from journal.tools import VerifyReport, inspect, replay, verify

__all__ = [
    "Journal",
    "JournalCorruptError",
    "JournalError",
    "JournalFullError",
    "JournalLockedError",
    "JournalNotFoundError",
    "JournaledEngine",
    "RecordKind",
    "VerifyReport",
    "inspect",
    "replay",
    "verify",
]
