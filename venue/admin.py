"""The engine-facing side of the admin commands (`venue accounts ...`): one operation to the engine.

    events, info = run_admin(config, "create_account", params)  # one group commit; its events (a copy)
    venue_running(config)                        # is <journal>/engine.lock held?
    lock = hold_engine_lock(config.journal.path) # the engine process, for its whole life

Two cases, the same operation code (venue.admin_ops) in both:
  the venue is not running  this process takes <journal path>/engine.lock, opens the journal with the
                            bootstrap of `venue run` (venue.run.open_venue: assets, instruments, fees and
                            limits defined first, so accounts and deposits can refer to them), runs the
                            operation as one group commit and closes the journal again.
  the venue is running      the operation's name and parameters go to the engine process over its admin
                            socket (venue.admin_channel); the engine runs it between two batches.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO, Any

import numpy as np

from venue.admin_channel import request
from venue.admin_ops import run_operation
from venue.bootstrap import VenueError
from venue.config import VenueConfig
from venue.run import open_venue

ENGINE_LOCK_FILE = "engine.lock"


def engine_lock_path(journal_path: str | os.PathLike[str]) -> Path:
    return Path(journal_path) / ENGINE_LOCK_FILE


def _try_engine_lock(journal_path: str | os.PathLike[str]) -> IO[str] | None:
    """The engine lock, taken without waiting; None if another process holds it."""
    path = engine_lock_path(journal_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # CLOEXEC: a child exec'ed by the holder must not keep the lock alive after the holder exits.
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    file = os.fdopen(fd, "r+")
    file.truncate(0)
    file.write(f"{os.getpid()}\n")  # who holds it, for an operator reading the file
    file.flush()
    return file


def hold_engine_lock(journal_path: str | os.PathLike[str]) -> IO[str]:
    """Take the venue's engine lock (flock LOCK_EX on <journal path>/engine.lock) for the calling process:
    the running engine holds it for its whole life, so admin commands know to go online. Returns the open
    file (closing it, or the process ending, releases the lock); a VenueError if it is held already."""
    file = _try_engine_lock(journal_path)
    if file is None:
        raise VenueError(f"the venue is already running: {engine_lock_path(journal_path)} is held by another "
                         f"process (the engine, or an admin command writing to its journal)")
    return file


def venue_running(config: VenueConfig) -> bool:
    """Whether a process holds the engine lock of the config's journal (tested without taking it for long;
    a journal directory that does not exist yet is not running)."""
    path = engine_lock_path(config.journal.path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also releases the lock if we got it
    return False


def run_admin(config: VenueConfig, operation: str,
              params: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
    """Run one admin operation (venue.admin_ops) on the venue's engine, stopped or running: one group
    commit. Returns (a copy of its events, the operation's info); the caller checks the events (a
    rejected command is an event, not an exception)."""
    lock = _try_engine_lock(config.journal.path)
    if lock is None:
        return request(config, operation, params)
    from journal.errors import JournalLockedError

    try:
        with open_venue(config) as venue:
            return run_operation(venue, operation, params)
    except JournalLockedError:
        # A venue that writes its journal without holding engine.lock (an older `venue run`): running.
        return request(config, operation, params)
    finally:
        lock.close()
