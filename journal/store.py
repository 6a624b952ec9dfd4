"""LMDB storage of the journal: batches of commands and events, snapshots, metadata.

Layout (one LMDB environment = one directory):
    commands   key = big-endian first cmd seq of a batch,   value = batch (journal/format.py)
    events     key = big-endian first event seq of a batch, value = batch
    snapshots  key = big-endian cmd seq,                    value = snapshot
    meta       key = utf-8 name,                            value = JSON (never on the hot path)
A group commit writes one command batch, the batch of events it produced and, sometimes, a
snapshot in ONE write transaction: after a crash either all of them exist or none does.

Durability modes (the trade-off):
    "sync"   every commit is fsync'ed before append() returns (LMDB sync=True). A command that was
             acknowledged after append() survives kill -9, a kernel panic and a power cut. Cost: one
             fsync per batch, so throughput comes from batching: the fsync is paid per batch, not
             per event (thousands of events per batch reach several hundred thousand events/s).
    "async"  commits are written to the OS page cache without fsync (sync=False, metasync=False);
             env.sync() runs every `sync_interval_s` on a background thread (py-lmdb releases the
             GIL around mdb_env_sync), on flush() and on close(): the writer never waits for it
             (interval 0: after every commit, on the writer's thread).
             kill -9 of the process still loses nothing committed (the data is in the kernel), but
             an OS crash or power cut loses up to the last interval and, per LMDB's documentation
             of MDB_NOSYNC, may leave the database unusable. Faster per batch, and small batches
             stay cheap; use it when a hot standby holds the events, or for tests and benchmarks.
             Where it is safe (see _Headroom) async mode also writes through LMDB's shared map
             (MDB_WRITEMAP): a commit then makes no write syscall at all (~2 µs instead of ~10 µs
             of pwrite/writev per commit); what is committed and when it reaches the disk is
             unchanged, only the copy into the page cache moves from pwrite to the map.

One process may write a journal at a time (an flock on <dir>/writer.lock); readers may open it
read-only at any time. An environment must not be used across fork(): every method checks that this
is not a child of os.fork() (a fork counter, then the pid).
"""

from __future__ import annotations

import errno
import fcntl
import json
import math
import os
import re
import threading
import time
from collections.abc import Iterator
from typing import Any, Literal

import lmdb
import numpy as np

from journal.codec import encode_group
from journal.errors import (
    JournalCorruptError,
    JournalError,
    JournalFullError,
    JournalLockedError,
    JournalNotFoundError,
)
from journal.format import (
    FORMAT_VERSION,
    RECORD_DTYPES,
    BatchHeader,
    RecordKind,
    SnapshotHeader,
    batch_records,
    decode_batch_header,
    decode_snapshot,
    encode_snapshot,
    key_seq,
    seq_key,
)

Durability = Literal["sync", "async"]

DEFAULT_MAP_SIZE = 1 << 40  # only address space (the file grows as data is written): 1 TiB
DEFAULT_MAX_MAP_SIZE = 1 << 44
DEFAULT_SYNC_INTERVAL_S = 0.05

META_FORMAT = "format"
META_DURABILITY = "durability"
META_INSTRUMENTS = "instruments"  # {symbol id: {"name": ..., ...}} for the edges; the engine never reads it
META_ENGINE = "engine"  # {"funds": bool}: the engine mode, fixed when the journal is created

_DB_NAMES = {RecordKind.COMMANDS: b"commands", RecordKind.EVENTS: b"events"}
_SNAPSHOTS_DB = b"snapshots"
_META_DB = b"meta"
_DATA_FILE = "data.mdb"
_WRITER_LOCK_FILE = "writer.lock"

# writemap (async mode) only on filesystems that overwrite a written block in place: a copy-on-write
# one (btrfs, zfs) may need a new block for every page LMDB rewrites (see _Headroom); so may xfs,
# once a reflink copy (cp --reflink, the default of newer coreutils) shares the file's extents.
WRITEMAP_FILESYSTEMS = frozenset({"ext2", "ext3", "ext4", "tmpfs"})
# How far ahead of LMDB's last page the data file is kept written: a 16th of the journal, within
# these bounds (the flusher tops it up every sync_interval_s; one-command batches take ~430 bytes
# each, so 4 MiB is a second of 10k orders/s).
_HEADROOM_MIN, _HEADROOM_MAX = 4 << 20, 64 << 20
# Bound on the pages one commit may add at the end of the file beyond its values: in each of the
# five trees it can touch (commands, events, snapshots, main, free list) it copies the path to a leaf
# and may split every page on it, 2 x depth + 1 pages; depth 5 holds billions of records. Plus a
# partly filled page per value.
_TXN_OVERHEAD_PAGES = 64
_ZEROS = memoryview(bytes(1 << 20))  # the headroom is written in chunks of this
_MOUNTINFO_ESCAPE = re.compile(r"\\([0-7]{3})")  # mountinfo writes space, tab, \n and \\ as \ooo


_forks = 0  # bumped in every child of os.fork(): cheaper than an os.getpid() syscall per commit


def _count_fork() -> None:
    global _forks
    _forks += 1


os.register_at_fork(after_in_child=_count_fork)


def _format_meta() -> dict[str, int]:
    return {
        "format_version": FORMAT_VERSION,
        "command_size": RECORD_DTYPES[RecordKind.COMMANDS].itemsize,
        "event_size": RECORD_DTYPES[RecordKind.EVENTS].itemsize,
    }


class Journal:
    """An LMDB event-sourcing journal. Open for writing (the default) or with readonly=True."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        readonly: bool = False,
        durability: Durability = "sync",
        map_size: int = DEFAULT_MAP_SIZE,
        max_map_size: int = DEFAULT_MAX_MAP_SIZE,
        sync_interval_s: float = DEFAULT_SYNC_INTERVAL_S,
        writemap: bool | None = None,
    ) -> None:
        """writemap: write through LMDB's shared map (MDB_WRITEMAP) instead of pwrite. None (the
        default): in async mode on a filesystem that preallocates (WRITEMAP_FILESYSTEMS); never in
        sync mode, where the fsync costs a hundred times more than the write."""
        if durability not in ("sync", "async"):
            raise ValueError(f"durability must be 'sync' or 'async', not {durability!r}")
        self.path = os.fspath(path)
        self.readonly = readonly
        self.durability: Durability = durability
        self.max_map_size = max(max_map_size, map_size)
        self.sync_interval_s = sync_interval_s
        self._pid = os.getpid()
        self._forks = _forks
        self._lock_fd: int | None = None
        self._env: lmdb.Environment | None = None
        self._last_sync = time.monotonic()
        self._flusher: threading.Thread | None = None
        self._stop_flusher = threading.Event()
        # set_mapsize remaps the environment: no sync may run meanwhile (with writemap a sync is an
        # msync of the map, which must not race the munmap; the flusher drops the GIL for it).
        self._map_lock = threading.Lock()
        self._headroom: _Headroom | None = None
        self.writemap = False
        if readonly:
            self._open_readonly(map_size)
        else:
            self._open_writer(map_size, writemap)
            if durability == "async" and sync_interval_s > 0:
                self._flusher = threading.Thread(target=self._flush_loop, name="journal-flush", daemon=True)
                self._flusher.start()
        try:
            self._last_cmd_seq = self._scan_last_seq(RecordKind.COMMANDS)
            self._last_event_seq = self._scan_last_seq(RecordKind.EVENTS)
        except BaseException:
            self.close()
            raise

    # ---------------------------------------------------------------- opening and closing

    def _open_readonly(self, map_size: int) -> None:
        if not os.path.isfile(os.path.join(self.path, _DATA_FILE)):
            raise JournalNotFoundError(f"no journal at {self.path} (missing {_DATA_FILE})")
        try:
            # A read-only open maps at least the stored map size, whatever we pass.
            self._env = lmdb.open(self.path, readonly=True, max_dbs=4, map_size=min(map_size, 1 << 30))
            self._dbs = {kind: self._env.open_db(name, create=False) for kind, name in _DB_NAMES.items()}
            self._snapshots_db = self._env.open_db(_SNAPSHOTS_DB, create=False)
            self._meta_db = self._env.open_db(_META_DB, create=False)
            self._check_format(self.get_meta(META_FORMAT))
        except lmdb.NotFoundError as exc:
            self._close_env()
            raise JournalCorruptError(f"{self.path} is an LMDB environment but not a journal") from exc
        except lmdb.Error as exc:
            self._close_env()
            raise JournalCorruptError(f"cannot open journal at {self.path}: {exc}") from exc
        except BaseException:
            self._close_env()
            raise

    def _open_writer(self, map_size: int, writemap: bool | None) -> None:
        try:
            os.makedirs(self.path, exist_ok=True)
            # CLOEXEC: a child exec'ed by the writer must not keep the writer lock alive.
            self._lock_fd = os.open(os.path.join(self.path, _WRITER_LOCK_FILE),
                                    os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise JournalError(f"cannot create a journal at {self.path}: {exc.strerror}") from exc
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(self._lock_fd)
            self._lock_fd = None
            raise JournalLockedError(f"journal at {self.path} is open for writing elsewhere") from exc
        synced = self.durability == "sync"
        if writemap is None:
            writemap = not synced and filesystem_type(self.path) in WRITEMAP_FILESYSTEMS
        try:
            self._env = lmdb.open(self.path, map_size=map_size, max_dbs=4, sync=synced, metasync=synced,
                                  writemap=writemap)
            self.writemap = writemap
            if writemap:
                self._headroom = _Headroom(self.path, self._env)
            self._env.reader_check()  # free reader slots left by killed processes
            self._dbs = {kind: self._env.open_db(name) for kind, name in _DB_NAMES.items()}
            self._cmd_db, self._event_db = self._dbs[RecordKind.COMMANDS], self._dbs[RecordKind.EVENTS]
            self._snapshots_db = self._env.open_db(_SNAPSHOTS_DB)
            self._meta_db = self._env.open_db(_META_DB)
            stored = self.get_meta(META_FORMAT)
            if stored is None:
                self.set_meta(META_FORMAT, _format_meta())
            else:
                self._check_format(stored)
            if self.get_meta(META_DURABILITY) != self.durability:
                self.set_meta(META_DURABILITY, self.durability)
        except lmdb.Error as exc:
            self.close()
            raise JournalCorruptError(f"cannot open journal at {self.path}: {exc}") from exc
        except BaseException:
            self.close()
            raise

    def _check_format(self, stored: Any) -> None:
        if stored != _format_meta():
            if isinstance(stored, dict) and stored.get("format_version") != FORMAT_VERSION:
                raise JournalCorruptError(
                    f"journal at {self.path} is format version {stored.get('format_version')}; this venue "
                    f"reads version {FORMAT_VERSION} only (no converter: start a new journal)")
            raise JournalCorruptError(f"journal at {self.path} has an unsupported format: {stored!r}")

    def _close_env(self) -> None:
        if self._env is not None:
            self._env.close()
            self._env = None

    def _flush_loop(self) -> None:
        """Async mode: fdatasync the environment every sync_interval_s, off the commit path."""
        env = self._env
        while not self._stop_flusher.wait(self.sync_interval_s):
            with self._map_lock:
                try:
                    env.sync(True)  # mdb_env_sync takes no LMDB lock; py-lmdb drops the GIL around it
                except lmdb.Error:
                    return  # closed under us; close() syncs anyway
                self._last_sync = time.monotonic()
                if self._headroom is not None:
                    used, map_end = self._headroom.measure(env)
            if self._headroom is not None:  # off the map lock: a growing map need not wait for it
                self._headroom.top_up(used, map_end)  # so that the writer seldom writes zeros itself

    def close(self) -> None:
        """Flush (async mode), close the environment and release the writer lock. Idempotent."""
        if self._flusher is not None:
            self._stop_flusher.set()
            self._flusher.join()
            self._flusher = None
        if self._env is not None and os.getpid() == self._pid:
            if not self.readonly:
                self._env.sync(True)
            self._close_env()
        self._env = None
        if self._headroom is not None:
            self._headroom.close()
            self._headroom = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def env(self) -> lmdb.Environment:
        """The LMDB environment, after checking it is open and belongs to this process."""
        if self._env is None:
            raise JournalError(f"journal at {self.path} is closed")
        if _forks != self._forks and os.getpid() != self._pid:
            raise JournalError(f"journal at {self.path} belongs to pid {self._pid}; reopen it after fork()")
        return self._env

    # ---------------------------------------------------------------- writing

    @property
    def last_cmd_seq(self) -> int:
        return self._last_cmd_seq

    @property
    def last_event_seq(self) -> int:
        return self._last_event_seq

    def append(
        self,
        commands: np.ndarray,
        events: np.ndarray,
        *,
        snapshot: tuple[bytes, str] | None = None,
    ) -> None:
        """Group commit: one transaction with a command batch, its events and optionally a snapshot.

        `commands` must continue the journal's command seqs without a gap, `events` likewise (it
        may be empty). `snapshot` = (engine blob, state hash) of the state after these commands.
        Returns once committed (and fsync'ed in sync mode).
        """
        if self.readonly:
            raise JournalError(f"journal at {self.path} is open read-only")
        n_cmds, n_events = len(commands), len(events)
        if n_cmds == 0:
            raise ValueError("a batch needs at least one command")
        first_cmd, first_event = self._last_cmd_seq + 1, self._last_event_seq + 1
        # One C call checks both arrays and their seqs and builds the keys and values
        # (journal/format.py's encode_batch is the reference for the bytes).
        cmd_key, cmd_value, event_key, event_value = encode_group(commands, events, first_cmd, first_event)
        last_cmd, last_event = first_cmd + n_cmds - 1, first_event + n_events - 1
        size = len(cmd_value) if event_value is None else len(cmd_value) + len(event_value)
        # The common case (no snapshot, the map has room) is committed without a list of puts.
        if snapshot is not None or not self._commit_batch(cmd_key, cmd_value, event_key, event_value, size):
            puts = [(self._cmd_db, cmd_key, cmd_value, True)]
            if event_value is not None:
                puts.append((self._event_db, event_key, event_value, True))
            if snapshot is not None:
                blob, state_hash = snapshot
                value = encode_snapshot(last_cmd, last_event, blob, state_hash)
                puts.append((self._snapshots_db, seq_key(last_cmd), value, False))
                size += len(value)
            self._write(puts, size)
        self._last_cmd_seq = last_cmd
        self._last_event_seq = last_event
        if self.durability == "async" and self.sync_interval_s <= 0:
            self.flush()  # interval 0: every commit is synced here (no background thread)

    def put_snapshot(self, blob: bytes, state_hash: str, *, cmd_seq: int, last_event_seq: int) -> None:
        """Store a snapshot on its own (its seqs must be the journal's current ones)."""
        if (cmd_seq, last_event_seq) != (self._last_cmd_seq, self._last_event_seq):
            raise ValueError(f"snapshot at cmd seq {cmd_seq}/event seq {last_event_seq} does not match the "
                             f"journal ({self._last_cmd_seq}/{self._last_event_seq})")
        value = encode_snapshot(cmd_seq, last_event_seq, blob, state_hash)
        self._write([(self._snapshots_db, seq_key(cmd_seq), value, False)], len(value))

    def _commit_batch(self, cmd_key: bytes, cmd_value: bytes, event_key: bytes | None,
                      event_value: bytes | None, size: int) -> bool:
        """_write() of one batch (commands, maybe events) on the engine's hot path: no list of puts.
        False when the map is full: the caller then goes through _write(), which grows it."""
        env = self.env
        if self._headroom is not None:
            self._headroom.reserve(env, size)  # JournalFullError, never a SIGBUS, when the disk is full
        try:
            with env.begin(write=True) as txn:
                if not txn.put(cmd_key, cmd_value, db=self._cmd_db, append=True):
                    raise JournalCorruptError(f"key {cmd_key.hex()} is already in the journal")
                if event_value is not None and not txn.put(event_key, event_value, db=self._event_db,
                                                           append=True):
                    raise JournalCorruptError(f"key {event_key.hex()} is already in the journal")
        except lmdb.MapFullError:
            return False
        return True

    def _write(self, puts: list[tuple[Any, bytes, bytes, bool]], size: int) -> None:
        """One write transaction (`size`: bytes of its values); on MapFullError grow the map and
        retry, up to max_map_size."""
        env = self.env
        headroom = self._headroom
        while True:
            if headroom is not None:
                headroom.reserve(env, size)  # JournalFullError, never a SIGBUS, when the disk is full
            try:
                with env.begin(write=True) as txn:
                    for db, key, value, append in puts:
                        if not txn.put(key, value, db=db, append=append):
                            raise JournalCorruptError(f"key {key.hex()} is already in the journal")
                return
            except lmdb.MapFullError:
                self._grow_map(size)

    def _grow_map(self, needed: int) -> None:
        current = self.env.info()["map_size"]
        if current >= self.max_map_size:
            raise JournalFullError(
                f"journal at {self.path} is full: map_size {current} bytes reached max_map_size; "
                "reopen with a larger max_map_size (or free disk space)"
            )
        with self._map_lock:
            self.env.set_mapsize(min(self.max_map_size, max(2 * current, current + 4 * needed)))
        if self._headroom is not None:
            self._headroom.remeasure()  # the map (and, with writemap, the file) grew

    def flush(self) -> None:
        """Force committed transactions to disk (a no-op cost in sync mode)."""
        env = self.env
        with self._map_lock:
            env.sync(True)
        self._last_sync = time.monotonic()

    # ---------------------------------------------------------------- metadata

    def get_meta(self, name: str, default: Any = None) -> Any:
        with self.env.begin(db=self._meta_db) as txn:
            raw = txn.get(name.encode())
        if raw is None:
            return default
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise JournalCorruptError(f"meta {name!r} is not valid JSON") from exc

    def set_meta(self, name: str, value: Any) -> None:
        if self.readonly:
            raise JournalError(f"journal at {self.path} is open read-only")
        raw = json.dumps(value, sort_keys=True).encode()
        self._write([(self._meta_db, name.encode(), raw, False)], len(raw))

    def meta(self) -> dict[str, Any]:
        """All metadata; a value that is not JSON is returned as the string '<invalid JSON>'."""
        out: dict[str, Any] = {}
        with self.env.begin(db=self._meta_db) as txn:
            for key, raw in txn.cursor():
                try:
                    out[key.decode()] = json.loads(raw)
                except ValueError:
                    out[key.decode()] = "<invalid JSON>"
        return out

    # ---------------------------------------------------------------- reading batches

    def _scan_last_seq(self, kind: RecordKind) -> int:
        """Last seq from the last batch's header. A writer must not guess past a damaged header;
        a reader (inspect, verify) steps back to the last readable one and lets verify report."""
        with self.env.begin(db=self._dbs[kind]) as txn, txn.cursor() as cur:
            found = cur.last()
            while found:
                try:
                    return decode_batch_header(cur.value(), check_crc=False).last_seq
                except JournalCorruptError:
                    if not self.readonly:
                        raise
                found = cur.prev()
            return 0

    def raw_batches(self, kind: RecordKind) -> Iterator[tuple[int, bytes]]:
        """Every (key seq, value) of a kind, undecoded: for tools that must survive corrupt values."""
        with self.env.begin(db=self._dbs[kind]) as txn:
            for key, value in txn.cursor():
                yield key_seq(key), value

    def find_batch(self, kind: RecordKind, seq: int) -> BatchHeader | None:
        """Header of the batch that holds `seq`, or None if no batch does."""
        with self.env.begin(db=self._dbs[kind]) as txn, txn.cursor() as cur:
            if not _seek_batch(cur, seq):
                return None
            header = decode_batch_header(cur.value(), check_crc=False)
        return header if header.first_seq <= seq <= header.last_seq else None

    def batches(
        self, kind: RecordKind, start_seq: int = 1, *, check_crc: bool = True
    ) -> Iterator[np.ndarray]:
        """Records from `start_seq` on, one read-only array per stored batch (the first one sliced).

        Validates every header, crc32 and the seq continuity between batches; raises
        JournalCorruptError at the first problem. Holds one read transaction while iterating.
        """
        expected = start_seq
        with self.env.begin(db=self._dbs[kind]) as txn, txn.cursor() as cur:
            if not _seek_batch(cur, start_seq):
                return
            for key, value in cur:
                header = decode_batch_header(value, check_crc=check_crc)
                if header.first_seq != key_seq(key):
                    raise JournalCorruptError(f"{kind.name.lower()} batch under key {key_seq(key)} "
                                              f"says first seq {header.first_seq}")
                if header.last_seq < expected:  # the batch before start_seq found by the seek
                    continue
                if header.first_seq > expected:
                    raise JournalCorruptError(f"{kind.name.lower()} seqs {expected}..{header.first_seq - 1} "
                                              "are missing")
                yield batch_records(value, header)[expected - header.first_seq:]
                expected = header.last_seq + 1

    def read(self, kind: RecordKind, first_seq: int, last_seq: int) -> np.ndarray:
        """A writable copy of the records first_seq..last_seq (fewer if the journal ends sooner)."""
        want = max(0, last_seq - first_seq + 1)
        out = np.empty(want, dtype=RECORD_DTYPES[kind])
        filled = 0
        if want:
            batches = self.batches(kind, first_seq)
            for records in batches:
                take = min(len(records), want - filled)
                out[filled:filled + take] = records[:take]
                filled += take
                if filled == want:
                    batches.close()  # ends the read transaction now
                    break
        return out[:filled]

    def read_commands(self, first_seq: int, last_seq: int) -> np.ndarray:
        return self.read(RecordKind.COMMANDS, first_seq, last_seq)

    def read_events(self, first_seq: int, last_seq: int) -> np.ndarray:
        return self.read(RecordKind.EVENTS, first_seq, last_seq)

    def command(self, seq: int) -> np.void:
        """The command with this seq (seek: finds the batch that holds it); KeyError if absent."""
        return self._one(RecordKind.COMMANDS, seq)

    def event(self, seq: int) -> np.void:
        return self._one(RecordKind.EVENTS, seq)

    def _one(self, kind: RecordKind, seq: int) -> np.void:
        records = self.read(kind, seq, seq)
        if len(records) == 0:
            raise KeyError(f"no {kind.name.lower()[:-1]} with seq {seq}")
        return records[0]

    def batch_count(self, kind: RecordKind) -> int:
        with self.env.begin() as txn:
            return txn.stat(self._dbs[kind])["entries"]

    # ---------------------------------------------------------------- snapshots

    def snapshots(self) -> list[SnapshotHeader | JournalCorruptError]:
        """Every stored snapshot's header, oldest first; a corrupt one appears as its error."""
        out: list[SnapshotHeader | JournalCorruptError] = []
        with self.env.begin(db=self._snapshots_db) as txn:
            for key, value in txn.cursor():
                try:
                    header, _ = decode_snapshot(value)
                    if header.cmd_seq != key_seq(key):
                        raise JournalCorruptError(f"snapshot under key {key_seq(key)} says cmd seq "
                                                  f"{header.cmd_seq}")
                    out.append(header)
                except JournalCorruptError as exc:
                    out.append(exc)
        return out

    def load_snapshot(self, cmd_seq: int) -> tuple[SnapshotHeader, bytes]:
        """The snapshot taken at cmd_seq (header, engine blob); KeyError if there is none."""
        with self.env.begin(db=self._snapshots_db) as txn:
            value = txn.get(seq_key(cmd_seq))
        if value is None:
            raise KeyError(f"no snapshot at cmd seq {cmd_seq}")
        return decode_snapshot(value)

    def latest_snapshot(self, *, at_or_before: int | None = None) -> tuple[SnapshotHeader, bytes] | None:
        """The newest snapshot that passes its checks (older ones are tried if the newest is corrupt)."""
        with self.env.begin(db=self._snapshots_db) as txn, txn.cursor() as cur:
            found = cur.last() if at_or_before is None else _seek_at_or_before(cur, at_or_before)
            while found:
                try:
                    header, blob = decode_snapshot(cur.value())
                    if header.cmd_seq == key_seq(cur.key()):
                        return header, blob
                except JournalCorruptError:
                    pass
                found = cur.prev()
        return None

    # ---------------------------------------------------------------- sizes

    def file_size(self) -> int:
        """Bytes the data file takes on disk. (A journal written with writemap has the map's size
        as its apparent size, mostly a hole: its allocated blocks are what it takes.)"""
        st = os.stat(os.path.join(self.path, _DATA_FILE))
        return min(st.st_size, st.st_blocks * 512)

    def map_size(self) -> int:
        return self.env.info()["map_size"]


class _Headroom:
    """Writemap mode: keeps the data file written (with zeros) ahead of LMDB's last page.

    With MDB_WRITEMAP LMDB sizes the file to the whole map with ftruncate, a hole, and writes pages
    through the shared mapping. A page fault that needs a new disk block when the disk is full
    cannot fail like a pwrite (ENOSPC, an lmdb.Error): the kernel kills the process with SIGBUS.
    Holes are not the only such pages: on ext4 even a write to fallocate'd (unwritten) blocks can
    need a new extent-tree block, so fallocate is not enough (it SIGBUSes on a full ext4); blocks
    that were written once are overwritten in place on the filesystems of WRITEMAP_FILESYSTEMS.

    So the file is written with zeros ahead of LMDB, and no commit starts unless it stays below
    that: LMDB takes new pages only at the end of the file (last_pgno; freed pages inside it are
    reused), and one commit takes fewer than its values + _TXN_OVERHEAD_PAGES of them. reserve()
    spends that estimate against the room measured at the last check and only then measures again
    (env.info(), ~1 µs); when the room is short it writes more zeros itself, and if the disk is
    full that is a JournalFullError before anything is written. The flusher thread keeps a headroom
    (a 16th of the journal, 4 to 64 MiB) written ahead after each sync, so the writer seldom writes
    zeros. Zeros are written only past `written`, in whole pages, under a lock, and `written` moves
    only past zeros already written: LMDB (below `written`) and the zeroing never touch the same
    page. Committed data is as safe as without writemap: a commit is the meta page's pointer flip,
    and a page being written is never one a committed tree uses.
    """

    def __init__(self, path: str, env: lmdb.Environment) -> None:
        self.path = path
        self._fd = os.open(os.path.join(path, _DATA_FILE), os.O_RDWR | os.O_CLOEXEC)
        self._page = env.stat()["psize"]
        self._overhead = _TXN_OVERHEAD_PAGES * self._page
        self._lock = threading.Lock()  # one zero-writer at a time (the writer or the flusher)
        self._room = 0.0               # writer thread only: bytes it may spend before measuring again
        self._spent = 0
        try:
            used, map_end = self.measure(env)
            self.written = used  # [0, written): written by LMDB or by us; only ever grows
            # Opening a new journal commits LMDB's own transactions (open_db) outside reserve():
            # room for them must be written now, or a full disk fails the open here, not by SIGBUS.
            headroom = min(_HEADROOM_MAX, max(_HEADROOM_MIN, used // 16))
            self._extend(used + headroom, used + self._overhead, map_end)
        except BaseException:
            self.close()
            raise

    def measure(self, env: lmdb.Environment) -> tuple[int, int]:
        """(end of LMDB's last page, end of the map) in bytes."""
        info = env.info()
        return (info["last_pgno"] + 1) * self._page, info["map_size"]

    def _extend(self, end: int, at_least: int, map_end: int) -> None:
        """Write zeros up to `end`, a chunk at a time, each under the lock (so that the other thread
        waits for one chunk at most); JournalFullError if not even up to `at_least`. Whole pages
        only (a partly written page may still lack blocks), and none past the map's last."""
        page = self._page
        end = min(-(-end // page) * page, map_end // page * page)
        at_least = min(at_least, end)
        while True:
            with self._lock:
                start = self.written
                if start >= end:
                    return
                try:
                    done = os.pwrite(self._fd, _ZEROS[: min(end - start, len(_ZEROS))], start)
                    if done < page:  # a short write: the disk is full
                        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                except OSError as exc:
                    if start >= at_least and exc.errno in (errno.ENOSPC, errno.EDQUOT):
                        return
                    raise JournalFullError(f"journal at {self.path}: no disk space for its data file "
                                           f"({exc.strerror})") from exc
                self.written = start + done // page * page

    def reserve(self, env: lmdb.Environment, size: int) -> None:
        """Before a commit whose values take `size` bytes (writer thread)."""
        cost = size + self._overhead
        if self._spent + cost > self._room:
            used, map_end = self.measure(env)
            need = min(used + cost, map_end)
            if self.written < need:  # the flusher fell behind: a little more than needed, now
                self._extend(need + len(_ZEROS), need, map_end)
            # Written to the map's last page: LMDB cannot go further (MapFullError).
            map_full = self.written >= map_end // self._page * self._page
            self._room = math.inf if map_full else self.written - used
            self._spent = 0
        self._spent += cost

    def remeasure(self) -> None:
        """After the map grew: the next reserve() measures again."""
        self._room = 0.0

    def top_up(self, used: int, map_end: int) -> None:
        """Keep the headroom written ahead of `used` (a full disk is left to the writer's reserve)."""
        headroom = min(_HEADROOM_MAX, max(_HEADROOM_MIN, used // 16))
        if self.written - used < headroom // 2:
            try:
                self._extend(used + headroom, 0, map_end)
            except JournalError:
                pass

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def filesystem_type(path: str) -> str | None:
    """The type of the filesystem that holds `path` ("ext4", "tmpfs", ...), from /proc/self/mountinfo;
    None where there is no such file."""
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    target = os.fsdecode(os.path.realpath(path))
    best, best_type = "", None
    for line in lines:
        fields = line.split(" ")
        try:
            mount_point = _MOUNTINFO_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), fields[4])
            fs_type = fields[fields.index("-", 6) + 1]
        except (IndexError, ValueError):
            continue
        inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= len(best):  # the last of equal ones is on top
            best, best_type = mount_point, fs_type
    return best_type


def _seek_at_or_before(cur: lmdb.Cursor, seq: int) -> bool:
    """Position on the greatest key <= seq."""
    if not cur.set_range(seq_key(seq)):
        return cur.last()
    if key_seq(cur.key()) > seq:
        return cur.prev()
    return True


def _seek_batch(cur: lmdb.Cursor, seq: int) -> bool:
    """Position on the batch that would hold `seq` (greatest first seq <= seq), else the first batch."""
    return _seek_at_or_before(cur, seq) or cur.first()
