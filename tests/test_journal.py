"""The LMDB journal: format, storage, seek, group commit, snapshots, recovery, tools, failures."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import lmdb
import numpy as np
import pytest

from core_cython.engine import Engine
from core_cython.records import COMMAND_DTYPE, EVENT_DTYPE, Op
from journal import (
    Journal,
    JournalCorruptError,
    JournaledEngine,
    JournalError,
    JournalFullError,
    JournalLockedError,
    JournalNotFoundError,
    RecordKind,
    inspect,
    replay,
    verify,
)
from journal.flow import instrument_commands, random_flow
from journal.format import (
    BATCH_HEADER_SIZE,
    FORMAT_VERSION,
    batch_records,
    decode_batch_header,
    decode_snapshot,
    encode_batch,
    encode_snapshot,
    seq_key,
)
from journal.replay import mode_name, recover_engine
from journal.store import META_FORMAT


def records(dtype: np.dtype, first_seq: int, n: int) -> np.ndarray:
    """n records with seqs first_seq.. and a recognisable payload."""
    out = np.zeros(n, dtype=dtype)
    out["seq"] = np.arange(first_seq, first_seq + n)
    out["ts"] = out["seq"] * 7
    return out


def build(path: Path, n_cmds: int, *, batch: int = 1000, durability: str = "sync",
          snapshot_every: int = 0, seed: int = 1) -> tuple[str, np.ndarray]:
    """A journal of instruments + n_cmds random commands; returns (state hash, all commands)."""
    rng = np.random.default_rng(seed)
    submitted = []
    with JournaledEngine.open(path, durability=durability, snapshot_every_events=snapshot_every) as je:
        submitted.append(instrument_commands(4))
        je.submit(submitted[-1], 1)
        for start in range(0, n_cmds, batch):
            submitted.append(random_flow(rng, min(batch, n_cmds - start), first_order_id=start + 1))
            je.submit(submitted[-1], 1_000 + start)
        return je.state_hash(), np.concatenate(submitted)


def rewrite_value(path: Path, db_name: bytes, key: bytes, change) -> None:
    """Tamper with one stored value behind the journal's back (simulates bit rot or a bad writer)."""
    env = lmdb.open(str(path), max_dbs=4)
    db = env.open_db(db_name)
    with env.begin(write=True, db=db) as txn:
        txn.put(key, change(bytearray(txn.get(key))))
    env.close()


# ------------------------------------------------------------------------------------------ format

def test_batch_encoding_round_trips_and_crc_catches_a_flipped_bit() -> None:
    cmds = records(COMMAND_DTYPE, 41, 3)
    value = encode_batch(RecordKind.COMMANDS, 41, cmds)
    assert len(value) == BATCH_HEADER_SIZE + 3 * COMMAND_DTYPE.itemsize
    header = decode_batch_header(value)
    assert (header.kind, header.first_seq, header.count, header.last_seq) == (RecordKind.COMMANDS, 41, 3, 43)
    assert batch_records(value, header).tobytes() == cmds.tobytes()
    for offset in (10, BATCH_HEADER_SIZE + 100):  # header and payload are both covered
        broken = bytearray(value)
        broken[offset] ^= 0x01
        with pytest.raises(JournalCorruptError):
            decode_batch_header(bytes(broken))
    with pytest.raises(JournalCorruptError, match="length"):
        decode_batch_header(value[:-1])


def test_snapshot_encoding_round_trips() -> None:
    blob = b"engine state" * 100
    value = encode_snapshot(12, 34, blob, "ab" * 32)
    header, out = decode_snapshot(value)
    assert (header.cmd_seq, header.last_event_seq, header.state_hash, out) == (12, 34, "ab" * 32, blob)
    with pytest.raises(JournalCorruptError, match="crc32"):
        decode_snapshot(value[:-1] + b"X")


# ------------------------------------------------------------------------------------------ store

def test_append_read_round_trip_and_seek(tmp_path: Path) -> None:
    path = tmp_path / "j"
    sizes = [(3, 5), (1, 0), (10, 17), (4, 2)]  # (commands, events) per batch; a batch may have no events
    all_cmds, all_events = [], []
    with Journal(path) as journal:
        for n_cmds, n_events in sizes:
            all_cmds.append(records(COMMAND_DTYPE, journal.last_cmd_seq + 1, n_cmds))
            all_events.append(records(EVENT_DTYPE, journal.last_event_seq + 1, n_events))
            journal.append(all_cmds[-1], all_events[-1])
    cmds, events = np.concatenate(all_cmds), np.concatenate(all_events)
    with Journal(path, readonly=True) as journal:
        assert (journal.last_cmd_seq, journal.last_event_seq) == (18, 24)
        assert journal.batch_count(RecordKind.COMMANDS) == 4 and journal.batch_count(RecordKind.EVENTS) == 3
        assert journal.read_commands(1, 18).tobytes() == cmds.tobytes()
        assert journal.read_events(1, 24).tobytes() == events.tobytes()
        for seq in range(1, 19):  # every seq, inside and on the edges of batches
            assert journal.command(seq).tobytes() == cmds[seq - 1].tobytes()
            assert journal.read_commands(seq, 18).tobytes() == cmds[seq - 1:].tobytes()
        assert journal.read_events(5, 7).tobytes() == events[4:7].tobytes()
        header = journal.find_batch(RecordKind.COMMANDS, 9)
        assert (header.first_seq, header.count) == (5, 10)
        assert journal.find_batch(RecordKind.COMMANDS, 19) is None
        assert len(journal.read_commands(17, 100)) == 2  # clipped at the end
        with pytest.raises(KeyError):
            journal.command(19)
        with pytest.raises(KeyError):
            journal.event(25)


def test_append_refuses_a_seq_gap_and_leaves_the_journal_unchanged(tmp_path: Path) -> None:
    with Journal(tmp_path / "j") as journal:
        journal.append(records(COMMAND_DTYPE, 1, 2), records(EVENT_DTYPE, 1, 2))
        with pytest.raises(JournalError, match="do not continue"):
            journal.append(records(COMMAND_DTYPE, 4, 2), records(EVENT_DTYPE, 3, 2))
        with pytest.raises(JournalError, match="do not continue"):
            journal.append(records(COMMAND_DTYPE, 3, 2), records(EVENT_DTYPE, 4, 2))
        assert (journal.last_cmd_seq, journal.last_event_seq) == (2, 2)


def test_meta_is_json_and_survives_reopen(tmp_path: Path) -> None:
    with Journal(tmp_path / "j") as journal:
        journal.set_meta("instruments", {"1": {"name": "BTC-USD", "tick": "0.01"}})
    with Journal(tmp_path / "j", readonly=True) as journal:
        assert journal.get_meta("instruments") == {"1": {"name": "BTC-USD", "tick": "0.01"}}
        assert journal.get_meta("durability") == "sync"


# ------------------------------------------------------------------------------------------ group commit

@pytest.mark.parametrize("durability", ["sync", "async"])
def test_group_commit_stamps_sequences_and_journals_each_batch(tmp_path: Path, durability: str) -> None:
    path = tmp_path / "j"
    with JournaledEngine.open(path, durability=durability, sync_interval_s=0.0) as je:
        instruments = instrument_commands(2)
        events = je.submit(instruments, 111)
        assert list(instruments["seq"]) == [1, 2] and list(instruments["ts"]) == [111, 111]
        assert list(events["seq"]) == [1, 2]
        flow = random_flow(np.random.default_rng(3), 500, n_symbols=2)
        per_command_ts = np.arange(500, dtype=np.int64) + 10_000
        events = je.submit(flow, per_command_ts)
        assert list(flow["ts"]) == list(per_command_ts) and flow["seq"][-1] == 502
        stored = je.journal.read_events(3, je.last_event_seq)
        assert stored.tobytes() == events.tobytes()
        assert len(je.submit(np.zeros(0, dtype=COMMAND_DTYPE), 0)) == 0
        expected_hash = je.state_hash()
    summary = inspect(path)
    assert summary["durability"] == durability
    assert summary["commands"] == {"first_seq": 1, "last_seq": 502, "count": 502, "batches": 2, "gaps": 0}
    assert summary["events"]["last_seq"] == summary["events"]["count"] > 502
    assert replay(path, progress=False) == expected_hash


def test_sync_and_async_journals_hold_the_same_bytes(tmp_path: Path) -> None:
    hash_sync, _ = build(tmp_path / "s", 3000, durability="sync")
    hash_async, _ = build(tmp_path / "a", 3000, durability="async")
    assert hash_sync == hash_async
    with Journal(tmp_path / "s", readonly=True) as a, Journal(tmp_path / "a", readonly=True) as b:
        assert a.read_events(1, a.last_event_seq).tobytes() == b.read_events(1, b.last_event_seq).tobytes()


def test_submit_rejects_a_non_command_array(tmp_path: Path) -> None:
    with JournaledEngine.open(tmp_path / "j") as je:
        with pytest.raises(TypeError):
            je.submit(np.zeros(3, dtype=EVENT_DTYPE), 0)
        readonly = instrument_commands(1)
        readonly.flags.writeable = False
        with pytest.raises(TypeError):
            je.submit(readonly, 0)


@pytest.mark.parametrize(("durability", "interval", "expected_flushes"),
                         [("sync", 0.0, 0), ("async", 0.0, 5), ("async", 3600.0, 0)])
def test_async_mode_syncs_on_its_period(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, durability: str,
                                        interval: float, expected_flushes: int) -> None:
    flushes = []
    monkeypatch.setattr(Journal, "flush", lambda self: flushes.append(1))
    journal = Journal(tmp_path / "j", durability=durability, sync_interval_s=interval)
    for _ in range(5):
        journal.append(records(COMMAND_DTYPE, journal.last_cmd_seq + 1, 10),
                       records(EVENT_DTYPE, journal.last_event_seq + 1, 10))
    assert len(flushes) == expected_flushes
    journal.close()  # close always syncs (through env.sync, not the patched flush)


def test_async_mode_syncs_in_the_background_off_the_commit_path(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    flushes = []
    monkeypatch.setattr(Journal, "flush", lambda self: flushes.append(1))
    journal = Journal(tmp_path / "j", durability="async", sync_interval_s=0.02)
    synced_before = journal._last_sync
    journal.append(records(COMMAND_DTYPE, 1, 10), records(EVENT_DTYPE, 1, 10))
    assert flushes == []  # append never syncs
    deadline = time.monotonic() + 5
    while journal._last_sync == synced_before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert journal._last_sync > synced_before  # the flusher thread ran env.sync
    journal.close()
    assert journal._flusher is None  # stopped and joined by close()


# ------------------------------------------------------------------------------------ snapshots, recovery

def test_snapshot_plus_tail_equals_full_replay_equals_live_engine(tmp_path: Path) -> None:
    path = tmp_path / "j"
    live_hash, commands = build(path, 20_000, snapshot_every=5_000)
    with Journal(path, readonly=True) as journal:
        snapshots = journal.snapshots()
        assert len(snapshots) >= 5 and snapshots[-1].cmd_seq < journal.last_cmd_seq  # a tail to replay
    fresh = Engine()
    fresh.process(commands.copy())
    assert fresh.state_hash() == live_hash
    assert replay(path, progress=False) == live_hash
    assert replay(path, progress=False, from_snapshot=True) == live_hash
    with JournaledEngine.open(path, verify_events=True) as je:
        assert je.state_hash() == live_hash
        je.submit(random_flow(np.random.default_rng(9), 100, first_order_id=10**9), 5)  # and it goes on
        extra_hash = je.state_hash()
        assert je.snapshot() == extra_hash
    assert replay(path, progress=False) == extra_hash
    assert inspect(path)["snapshots"][-1]["state_hash"] == extra_hash


def test_recovery_skips_a_corrupt_latest_snapshot(tmp_path: Path) -> None:
    path = tmp_path / "j"
    live_hash, _ = build(path, 8_000, snapshot_every=4_000)
    with Journal(path, readonly=True) as journal:
        latest = journal.snapshots()[-1]
    rewrite_value(path, b"snapshots", seq_key(latest.cmd_seq), lambda v: v[:-1] + bytes([v[-1] ^ 0xFF]))
    with Journal(path, readonly=True) as journal:
        engine = recover_engine(journal)
        assert engine.state_hash() == live_hash
    report = verify(path)
    assert not report.ok and any("crc32" in p for p in report.problems)


def test_recovery_of_a_million_events_is_fast(tmp_path: Path) -> None:
    path = tmp_path / "j"
    live_hash, _ = build(path, 520_000, batch=10_000, durability="async")
    with Journal(path, readonly=True) as journal:
        assert journal.last_event_seq >= 1_000_000
        started = time.perf_counter()
        engine = recover_engine(journal, use_snapshot=False)  # no snapshot: replay every command
        elapsed = time.perf_counter() - started
    assert engine.state_hash() == live_hash
    assert elapsed < 3.0, f"recovery of {engine.last_event_seq} events took {elapsed:.2f}s"


# ------------------------------------------------------------------------------------------ verify

def test_verify_passes_a_sound_journal(tmp_path: Path) -> None:
    path = tmp_path / "j"
    live_hash, _ = build(path, 6_000, snapshot_every=3_000)
    report = verify(path)
    assert report.ok and report.problems == []
    assert report.state_hash == live_hash and report.snapshots_checked >= 2
    assert report.commands == 6_004 and report.events > report.commands


def test_verify_detects_a_flipped_byte_in_a_command_batch(tmp_path: Path) -> None:
    path = tmp_path / "j"
    build(path, 3_000)
    rewrite_value(path, b"commands", seq_key(5), lambda v: v[:200] + bytes([v[200] ^ 0x40]) + v[201:])
    report = verify(path)
    assert not report.ok
    assert any("commands batch at seq 5: crc32 mismatch" in p for p in report.problems)
    assert any("replay stopped" in p for p in report.problems)
    with pytest.raises(JournalCorruptError, match="crc32"):
        JournaledEngine.open(path)


def test_a_damaged_last_batch_header_stops_the_writer_but_not_verify(tmp_path: Path) -> None:
    path = tmp_path / "j"
    build(path, 3_000)
    with Journal(path, readonly=True) as journal:
        last = journal.find_batch(RecordKind.COMMANDS, journal.last_cmd_seq).first_seq
    rewrite_value(path, b"commands", seq_key(last), lambda v: b"XXXX" + v[4:])
    with pytest.raises(JournalCorruptError, match="bad batch magic"):
        JournaledEngine.open(path)
    report = verify(path)
    assert not report.ok and any(f"key {last}: bad batch magic" in p for p in report.problems)
    assert inspect(path)["commands"]["last_seq"] == last - 1


def test_verify_detects_stored_events_that_replay_does_not_produce(tmp_path: Path) -> None:
    path = tmp_path / "j"
    build(path, 3_000, snapshot_every=2_000)

    def forge(value: bytearray) -> bytes:  # a well-formed batch (valid crc) with one wrong quantity
        header = decode_batch_header(bytes(value))
        events = batch_records(bytes(value), header).copy()
        events["qty"][10] += 1
        return encode_batch(RecordKind.EVENTS, header.first_seq, events)

    with Journal(path, readonly=True) as journal:
        first_seq = journal.find_batch(RecordKind.EVENTS, 2_000).first_seq
    rewrite_value(path, b"events", seq_key(first_seq), forge)
    report = verify(path)
    assert not report.ok
    assert len(report.problems) == 1
    expected = f"replayed events differ from the journal at event seq {first_seq + 10} "
    assert report.problems[0].startswith(expected)
    with pytest.raises(JournalCorruptError, match="replayed events differ"):
        with Journal(path, readonly=True) as journal:
            recover_engine(journal, use_snapshot=False, verify_events=True)


def test_verify_detects_a_snapshot_whose_hash_is_wrong(tmp_path: Path) -> None:
    path = tmp_path / "j"
    build(path, 3_000, snapshot_every=2_000)
    with Journal(path, readonly=True) as journal:
        header, blob = journal.load_snapshot(journal.snapshots()[0].cmd_seq)
    other_state = Engine().snapshot()  # a consistent snapshot of the wrong state
    rewrite_value(path, b"snapshots", seq_key(header.cmd_seq),
                  lambda v: encode_snapshot(header.cmd_seq, header.last_event_seq, other_state,
                                            Engine().state_hash()))
    report = verify(path)
    assert not report.ok
    assert any(f"snapshot at cmd seq {header.cmd_seq}: state hash differs" in p for p in report.problems)


# ------------------------------------------------------------------------------------------ map full

def test_map_full_grows_the_map_and_retries(tmp_path: Path) -> None:
    path = tmp_path / "j"
    with Journal(path, map_size=1 << 20, max_map_size=1 << 26) as journal:
        for _ in range(20):  # ~2.6 MB of records into a 1 MiB map
            journal.append(records(COMMAND_DTYPE, journal.last_cmd_seq + 1, 1000),
                           records(EVENT_DTYPE, journal.last_event_seq + 1, 500))
        assert journal.map_size() > 1 << 20
    with Journal(path, readonly=True) as journal:
        assert journal.last_cmd_seq == 20_000 and len(journal.read_commands(1, 20_000)) == 20_000


def test_map_full_at_the_limit_fails_loudly_and_keeps_what_was_committed(tmp_path: Path) -> None:
    path = tmp_path / "j"
    rng = np.random.default_rng(4)
    je = JournaledEngine.open(path, map_size=1 << 20, max_map_size=1 << 20, snapshot_every_events=0)
    je.submit(instrument_commands(4), 1)
    with pytest.raises(JournalFullError, match="is full"):
        for start in range(0, 100_000, 2000):
            je.submit(random_flow(rng, 2000, first_order_id=start + 1), 2)
            committed = (je.journal.last_cmd_seq, je.state_hash())
    with pytest.raises(JournalError, match="reopen"):  # the engine is ahead of the journal now
        je.submit(random_flow(rng, 10), 3)
    je.close()
    with JournaledEngine.open(path, max_map_size=1 << 30) as je:
        assert (je.last_cmd_seq, je.state_hash()) == committed
        je.submit(random_flow(rng, 2000, first_order_id=10**9), 4)


# ------------------------------------------------------------------------------------------ misuse, bad paths

def test_tools_on_a_missing_path_raise_not_found(tmp_path: Path) -> None:
    for tool in (inspect, replay, verify):
        with pytest.raises(JournalNotFoundError, match="no journal"):
            tool(tmp_path / "nowhere")


def test_a_garbage_or_foreign_file_is_reported_as_corrupt(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "data.mdb").write_bytes(os.urandom(64 * 1024))
    with pytest.raises(JournalCorruptError):
        inspect(garbage)
    foreign = tmp_path / "foreign"
    env = lmdb.open(str(foreign))
    with env.begin(write=True) as txn:
        txn.put(b"hello", b"world")
    env.close()
    with pytest.raises(JournalCorruptError, match="not a journal"):
        verify(foreign)


def test_a_journal_of_an_older_format_is_refused_by_name(tmp_path: Path) -> None:
    with Journal(tmp_path / "j") as journal:
        old = {**journal.get_meta(META_FORMAT), "format_version": FORMAT_VERSION - 1, "event_size": 104}
        journal.set_meta(META_FORMAT, old)
    for open_it in (lambda: Journal(tmp_path / "j"), lambda: Journal(tmp_path / "j", readonly=True)):
        with pytest.raises(JournalCorruptError, match=f"format version {FORMAT_VERSION - 1}; .* version "
                                                      f"{FORMAT_VERSION} only"):
            open_it()


def test_only_one_writer_at_a_time(tmp_path: Path) -> None:
    with Journal(tmp_path / "j"):
        with pytest.raises(JournalLockedError):
            Journal(tmp_path / "j")
    Journal(tmp_path / "j").close()  # released on close


def test_a_journal_refuses_use_after_fork(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j")
    pid = os.fork()
    if pid == 0:  # child: must not touch the parent's environment
        try:
            journal.append(records(COMMAND_DTYPE, 1, 1), records(EVENT_DTYPE, 1, 1))
            os._exit(1)
        except JournalError:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    journal.append(records(COMMAND_DTYPE, 1, 1), records(EVENT_DTYPE, 1, 1))  # the parent still can
    journal.close()


def test_engine_and_journal_must_agree(tmp_path: Path) -> None:
    build(tmp_path / "j", 100)
    journal = Journal(tmp_path / "j")
    with pytest.raises(JournalError, match="does not match"):
        JournaledEngine(Engine(), journal)
    journal.close()
    assert Op.NEW == 1  # records' enums are part of the journal format


# ------------------------------------------------------------------------------------- engine mode

def test_the_engine_mode_is_recorded_and_a_journal_refuses_the_other(tmp_path: Path) -> None:
    for funds in (False, True):
        path = tmp_path / f"journal-{funds}"
        with JournaledEngine.open(path, funds=funds) as je:
            assert je.funds == funds and je.engine.funds == funds
            je.submit(instrument_commands(1), 1)
            state = je.state_hash()
        expected = f"was created in {mode_name(funds)}; it cannot be opened in {mode_name(not funds)}"
        with pytest.raises(JournalError, match=re.escape(expected)):
            JournaledEngine.open(path, funds=not funds)
        with JournaledEngine.open(path) as je:  # no mode given: the journal's own
            assert je.funds == funds
        with Journal(path, readonly=True) as journal:  # replay and verify use it too
            assert recover_engine(journal, use_snapshot=False).funds == funds
        assert verify(path).ok
        assert replay(path, progress=False) == state


def test_a_snapshot_of_the_other_mode_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "j"
    with JournaledEngine.open(path, funds=True) as je:
        je.submit(instrument_commands(1), 1)
        state = je.state_hash()
        # A core engine at the same seqs, stored as if it were this journal's snapshot.
        core = Engine()
        core.process(instrument_commands(1))
        je.journal.put_snapshot(core.snapshot(), core.state_hash(), cmd_seq=1, last_event_seq=1)
    with JournaledEngine.open(path) as je:  # recovery replays from scratch instead
        assert je.funds and je.state_hash() == state
