"""The engine-facing side of the admin commands (`venue accounts ...`): one batch of commands to the engine.

    events = submit_commands(config, cmds)       # one group commit; the batch's events (a copy)
    venue_running(config)                        # is <journal>/engine.lock held?
    lock = hold_engine_lock(config.journal.path) # the engine process, for its whole life

Two cases:
  the venue is not running  this process takes <journal path>/engine.lock, opens the journal with the
                            bootstrap of `venue run` (venue.run.open_venue: assets, instruments, fees and
                            limits defined first, so accounts and deposits can refer to them), submits the
                            batch as one group commit and closes the journal again.
  the venue is running      _submit_online(): for now a VenueError; the engine's owner replaces that one
                            function with a path through the command ring.
`cmds` may also be a function of the bootstrapped Venue returning the batch: it runs under the engine lock,
with the journal open, so ids it allocates from the journal's meta or the engine cannot be raced by
another admin command (account creation uses this).
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import numpy as np

from core_cython.records import COMMAND_DTYPE
from venue.bootstrap import VenueError
from venue.config import VenueConfig
from venue.run import Venue, open_venue

ENGINE_LOCK_FILE = "engine.lock"

CommandBuilder = Callable[[Venue], np.ndarray]


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


def submit_commands(config: VenueConfig, cmds: np.ndarray | CommandBuilder) -> np.ndarray:
    """Submit one batch (a COMMAND_DTYPE array, or a function of the bootstrapped Venue returning one) to
    the venue's engine as one group commit; returns a copy of its events. The caller checks them: a
    rejected command is an event, not an exception."""
    lock = _try_engine_lock(config.journal.path)
    if lock is None:
        return _submit_online(config, cmds)
    from journal.errors import JournalLockedError

    try:
        with open_venue(config) as venue:
            batch = cmds(venue) if callable(cmds) else cmds
            if batch.dtype != COMMAND_DTYPE:
                raise TypeError("cmds must be a COMMAND_DTYPE array")
            batch = np.ascontiguousarray(batch).copy()  # the sequencer stamps seq and ts in place
            return venue.engine.submit(batch, time.time_ns()).copy()  # a view until the next submit
    except JournalLockedError:
        # A venue that writes its journal without holding engine.lock (an older `venue run`): running.
        return _submit_online(config, cmds)
    finally:
        lock.close()


# ---------------------------------------------------------------------------- ONLINE ADMIN PATH
# The one place to replace when the engine takes admin commands through the command ring.


def _submit_online(config: VenueConfig, cmds: np.ndarray | CommandBuilder) -> np.ndarray:
    """Submit to the running engine. Not yet: the engine has no admin path; stop the venue to run admin
    commands. (A builder needs the engine's state: online, the engine side has to run it.)"""
    raise VenueError(f"the venue is running: its journal {config.journal.path} is in use by the engine; stop "
                     f"it to run admin commands (online admin path: not yet)")
