"""Exceptions of the journal package; every message is one line, fit for a CLI error."""

from __future__ import annotations


class JournalError(Exception):
    """Base class: anything wrong with a journal or its use."""


class JournalNotFoundError(JournalError):
    """The path holds no journal."""


class JournalCorruptError(JournalError):
    """Stored bytes fail a check (magic, version, length, crc32, seq continuity, replay mismatch)."""


class JournalFullError(JournalError):
    """The LMDB map is full and may not grow further (max_map_size reached)."""


class JournalLockedError(JournalError):
    """Another process has the journal open for writing."""
