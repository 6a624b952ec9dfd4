"""The journal's hot path: journal/codec.pyx must write the bytes of journal/format.py, and the
writemap mode of journal/store.py must keep the data file allocated ahead of LMDB (no SIGBUS)."""

from __future__ import annotations

import errno
import os
import time
import zlib
from pathlib import Path

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given, settings

pytest.importorskip("journal.codec")

import journal.store as store  # noqa: E402
from core_cython.records import COMMAND_DTYPE, EVENT_DTYPE  # noqa: E402
from journal import Journal, JournaledEngine, JournalError, JournalFullError, RecordKind  # noqa: E402
from journal.codec import check_seqs, crc32, encode_batch, encode_group, stamp_commands  # noqa: E402
from journal.flow import instrument_commands, random_flow  # noqa: E402
from journal.format import encode_batch as reference_encode_batch  # noqa: E402
from journal.format import seq_key  # noqa: E402

DTYPES = {RecordKind.COMMANDS: COMMAND_DTYPE, RecordKind.EVENTS: EVENT_DTYPE}
CODEC = settings(max_examples=300, deadline=None)


def random_records(kind: RecordKind, data: bytes) -> np.ndarray:
    dtype = DTYPES[kind]
    n = len(data) // dtype.itemsize
    return np.frombuffer(data[: n * dtype.itemsize], dtype=dtype).copy()


def with_seqs(dtype: np.dtype, first: int, n: int) -> np.ndarray:
    out = np.zeros(n, dtype)
    out["seq"] = np.arange(first, first + n, dtype=np.uint64)
    return out


# Up to ~20 events: on both sides of the crc's switch from the C table to zlib (512 bytes).
RECORD_BYTES = st.binary(min_size=0, max_size=2200)
SEQS = st.integers(min_value=0, max_value=2**64 - 1)


@CODEC
@given(st.sampled_from(list(RecordKind)), SEQS, RECORD_BYTES)
def test_encode_batch_writes_the_reference_bytes(kind: RecordKind, first_seq: int, data: bytes) -> None:
    records = random_records(kind, data)
    assert encode_batch(kind, first_seq, records) == reference_encode_batch(kind, first_seq, records)


@CODEC
@given(st.binary(max_size=3000), st.integers(min_value=0, max_value=2**32 - 1))
def test_table_crc32_is_zlibs(data: bytes, start: int) -> None:
    assert crc32(data, start) == zlib.crc32(data, start)


@CODEC
@given(st.integers(min_value=0, max_value=2**63), st.integers(min_value=1, max_value=2**63),
       st.integers(min_value=1, max_value=12), st.integers(min_value=0, max_value=30))
def test_encode_group_is_keys_and_reference_batches(first_cmd: int, first_event: int, n_cmds: int,
                                                    n_events: int) -> None:
    cmds, events = with_seqs(COMMAND_DTYPE, first_cmd, n_cmds), with_seqs(EVENT_DTYPE, first_event, n_events)
    cmds["ts"], events["price"] = 123, -5
    cmd_key, cmd_value, event_key, event_value = encode_group(cmds, events, first_cmd, first_event)
    assert cmd_key == seq_key(first_cmd)
    assert cmd_value == reference_encode_batch(RecordKind.COMMANDS, first_cmd, cmds)
    if n_events:
        assert event_key == seq_key(first_event)
        assert event_value == reference_encode_batch(RecordKind.EVENTS, first_event, events)
    else:
        assert event_key is None and event_value is None


def test_encode_group_refuses_gaps_and_wrong_arrays() -> None:
    cmds, events = with_seqs(COMMAND_DTYPE, 5, 4), with_seqs(EVENT_DTYPE, 9, 3)
    encode_group(cmds, events, 5, 9)
    for bad_first in (4, 6):
        with pytest.raises(JournalError, match=r"command seqs 5\.\.8 do not continue the journal"):
            encode_group(cmds, events, bad_first, 9)
    gap = events.copy()
    gap["seq"][1] = 99  # first and last right, a hole in the middle
    with pytest.raises(JournalError, match=r"event seqs 9\.\.11 do not continue"):
        encode_group(cmds, gap, 5, 9)
    with pytest.raises(JournalError):
        check_seqs(gap, 9, "event")
    check_seqs(events, 9, "event")
    for not_commands in (events, cmds[::2], cmds.reshape(2, 2), cmds.tolist()):
        with pytest.raises(ValueError, match="commands must be a C-contiguous 96-byte record array"):
            encode_group(not_commands, events, 5, 9)
    with pytest.raises(ValueError, match="events must be"):
        encode_group(cmds, cmds, 5, 9)
    with pytest.raises(ValueError, match="unknown batch kind"):
        encode_batch(3, 1, cmds)
    # an equal dtype that is another object is fine (the identity test is only a shortcut)
    other = np.dtype(COMMAND_DTYPE.descr)
    assert other == COMMAND_DTYPE and other is not COMMAND_DTYPE
    assert encode_batch(RecordKind.COMMANDS, 5, cmds.view(other)) == \
        encode_batch(RecordKind.COMMANDS, 5, cmds)


def test_stamp_commands_is_the_numpy_assignment() -> None:
    cmds = with_seqs(COMMAND_DTYPE, 1, 5)
    assert stamp_commands(cmds, 2**62 + 7) == 5 and cmds["ts"].tolist() == [2**62 + 7] * 5
    per_command = np.arange(5, dtype=np.int64) * -3
    stamp_commands(cmds, per_command)
    assert cmds["ts"].tolist() == per_command.tolist()
    stamp_commands(cmds, np.int64(9))
    assert cmds["ts"].tolist() == [9] * 5
    assert cmds["seq"].tolist() == [1, 2, 3, 4, 5]  # nothing else touched
    assert stamp_commands(cmds[:0], 1) == 0
    readonly = cmds.copy()
    readonly.flags.writeable = False
    for bad in (readonly, cmds[::2], with_seqs(EVENT_DTYPE, 1, 2), cmds.tobytes()):
        with pytest.raises(TypeError, match="writable, C-contiguous COMMAND_DTYPE"):
            stamp_commands(bad, 1)
    with pytest.raises(OverflowError):
        stamp_commands(cmds, 2**63)


# ------------------------------------------------------------------------------------------ writemap

def allocated(path: Path) -> int:
    return os.stat(path / "data.mdb").st_blocks * 512


def used_bytes(journal: Journal) -> int:
    return (journal.env.info()["last_pgno"] + 1) * journal.env.stat()["psize"]


def fill(journal: Journal, batches: int, n_cmds: int = 50, n_events: int = 100) -> None:
    for _ in range(batches):
        journal.append(with_seqs(COMMAND_DTYPE, journal.last_cmd_seq + 1, n_cmds),
                       with_seqs(EVENT_DTYPE, journal.last_event_seq + 1, n_events))


def test_writemap_only_in_async_mode_on_a_preallocating_filesystem(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    preallocating = store.filesystem_type(str(tmp_path)) in store.WRITEMAP_FILESYSTEMS
    with Journal(tmp_path / "a", durability="async") as journal:
        assert journal.writemap is preallocating
    with Journal(tmp_path / "s", durability="sync") as journal:
        assert journal.writemap is False
    monkeypatch.setattr(store, "WRITEMAP_FILESYSTEMS", frozenset())
    with Journal(tmp_path / "b", durability="async") as journal:
        assert journal.writemap is False
    assert store.filesystem_type("/proc") == "proc"


def test_writemap_journal_holds_the_same_bytes_and_replays(tmp_path: Path) -> None:
    hashes, events = [], []
    for name, writemap in (("plain", False), ("writemap", True)):
        rng = np.random.default_rng(5)
        with JournaledEngine.open(tmp_path / name, durability="async", snapshot_every_events=2000,
                                  writemap=writemap) as je:
            assert je.journal.writemap is writemap
            je.submit(instrument_commands(2), 1)
            for start in range(0, 3000, 100):
                je.submit(random_flow(rng, 100, n_symbols=2, first_order_id=start + 1), start)
            hashes.append(je.state_hash())
        with Journal(tmp_path / name, readonly=True) as journal:
            events.append(journal.read_events(1, journal.last_event_seq).tobytes())
        with JournaledEngine.open(tmp_path / name, durability="sync", verify_events=True) as je:
            assert je.state_hash() == hashes[-1]
    assert hashes[0] == hashes[1] and events[0] == events[1]


def test_writemap_keeps_the_file_written_ahead_of_lmdb(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "_HEADROOM_MIN", 1 << 20)
    path = tmp_path / "j"
    with Journal(path, durability="async", writemap=True, sync_interval_s=3600) as journal:
        headroom = journal._headroom
        start = headroom.written
        assert start >= 1 << 20 and allocated(path) >= start  # written ahead when opened
        for _ in range(150):  # ~150 x 16 KiB, past the first MiB: the writer writes more itself
            fill(journal, 1)
            assert headroom.written >= used_bytes(journal)
        assert used_bytes(journal) > start and allocated(path) >= headroom.written
        used, map_end = headroom.measure(journal.env)
        headroom.top_up(used, map_end)  # what the flusher does after each sync
        assert headroom.written >= used_bytes(journal) + (1 << 20)
        # the apparent size is the whole map (a hole); file_size() is what it takes on disk
        assert os.path.getsize(path / "data.mdb") == journal.map_size()
        assert journal.file_size() == allocated(path) < journal.map_size()
    with Journal(path, durability="async", writemap=True, sync_interval_s=0.01) as journal:
        used = used_bytes(journal)
        fill(journal, 1)
        deadline = time.monotonic() + 5  # the flusher tops the headroom up
        while journal._headroom.written < used_bytes(journal) + (1 << 20) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert journal._headroom.written >= used + (1 << 20)


def test_writemap_headroom_is_written_in_whole_pages(tmp_path: Path) -> None:
    with Journal(tmp_path / "j", durability="async", writemap=True, sync_interval_s=3600) as journal:
        headroom, env = journal._headroom, journal.env
        page = env.stat()["psize"]
        used, _ = headroom.measure(env)
        for extra in (1, 100, page - 1, page, page + 1):
            # a commit that needs `extra` bytes past a page boundary that is written already
            headroom.written = used + headroom._overhead + 3 * page  # (lower than true: safe)
            headroom._room = 0.0
            headroom.reserve(env, 3 * page + extra)
            assert headroom.written >= used + headroom._overhead + 3 * page + extra
            assert headroom.written % page == 0
    # a map that ends inside a page (the map grows by 4 x a batch's bytes): zeros up to its last page
    with Journal(tmp_path / "k", durability="async", writemap=True, map_size=(1 << 20) + 100,
                 sync_interval_s=3600) as journal:
        headroom, env = journal._headroom, journal.env
        used, map_end = headroom.measure(env)
        assert map_end % page != 0
        headroom.written, headroom._room = used, 0.0
        headroom.reserve(env, map_end - used)  # past the map's end: LMDB will say MapFullError
        assert headroom.written == map_end // page * page


def test_writemap_full_disk_is_a_journal_full_error_before_anything_is_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "_HEADROOM_MIN", 1 << 20)
    path = tmp_path / "j"
    journal = Journal(path, durability="async", writemap=True, sync_interval_s=3600)
    fill(journal, 3)

    def no_space(fd: int, data: bytes, offset: int) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "pwrite", no_space)
    with pytest.raises(JournalFullError, match="no disk space"):
        fill(journal, 200)
    committed = (journal.last_cmd_seq, journal.last_event_seq)
    assert journal._headroom.written >= used_bytes(journal)
    journal.close()
    monkeypatch.undo()
    with Journal(path, readonly=True) as journal:
        assert (journal.last_cmd_seq, journal.last_event_seq) == committed
        assert len(journal.read_commands(1, committed[0])) == committed[0]


def test_writemap_map_growth(tmp_path: Path) -> None:
    path = tmp_path / "j"
    with Journal(path, durability="async", writemap=True, map_size=1 << 20, max_map_size=1 << 26,
                 sync_interval_s=0.001) as journal:  # the flusher syncs while the map grows
        fill(journal, 20, 1000, 500)
        assert journal.map_size() > 1 << 20
        assert journal._headroom.written >= used_bytes(journal)
    with Journal(path, readonly=True) as journal:
        assert journal.last_cmd_seq == 20_000 and len(journal.read_commands(1, 20_000)) == 20_000
    # a big batch grows the map by 4 x its size: to a size that is not a whole number of pages
    with Journal(tmp_path / "k", durability="async", writemap=True, map_size=1 << 20, max_map_size=1 << 28,
                 sync_interval_s=3600) as journal:
        fill(journal, 1, 8000, 4000)
        grown = journal.map_size()
        assert grown % journal.env.stat()["psize"] != 0
        while journal.map_size() == grown:  # up to that map's end (zeros in whole pages) and past it
            fill(journal, 1, 1000, 500)
        assert journal._headroom.written >= used_bytes(journal)
    with Journal(path, durability="async", writemap=True, map_size=1 << 20, max_map_size=1 << 20) as journal:
        with pytest.raises(JournalFullError, match="is full"):
            fill(journal, 200, 1000, 500)
