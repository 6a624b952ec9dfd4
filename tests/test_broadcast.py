"""The SPMC broadcast ring (engine -> gateways): every consumer process sees every record once and in
order, a slow consumer is lapped (never handed a torn or wrong record) without holding the producer
back, a SIGKILLed consumer changes nothing for the others and its table entry is reclaimed, fd
wake-ups cross processes without timeouts (and cost no syscall when nobody sleeps), epochs, start
sequences and bad files.

Records are 120 bytes (the venue's outcome size): seq, 13 words derived from seq, and a checksum,
so a record mixing two writes, or any record but the expected one, is caught."""

from __future__ import annotations

import multiprocessing as mp
import os
import select
import signal
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core_cython.broadcast import LAPPED, MAX_READERS, Broadcast, BroadcastReader
from core_cython.ring import Ring

SLOT = 120
REC = np.dtype([("seq", "<u8"), ("body", "<u8", (13,)), ("check", "<u8")])
CTX = mp.get_context("spawn")
WORD_MUL = np.arange(1, 14, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
WAIT = 30.0   # generous bound on every cross-process handshake, never reached when things work


def body_of(seq: np.ndarray) -> np.ndarray:
    return seq[:, None] * WORD_MUL + np.arange(13, dtype=np.uint64)


def make(first: int, n: int) -> np.ndarray:
    recs = np.zeros(n, REC)
    recs["seq"] = np.arange(first, first + n, dtype=np.uint64)
    recs["body"] = body_of(recs["seq"])
    recs["check"] = np.bitwise_xor.reduce(recs["body"], axis=1) ^ recs["seq"]
    return recs


def intact(recs: np.ndarray) -> bool:
    body = body_of(recs["seq"])
    check = np.bitwise_xor.reduce(body, axis=1) ^ recs["seq"]
    return bool((recs["body"] == body).all() and (recs["check"] == check).all())


def seqs(recs: np.ndarray) -> list[int]:
    return [int(s) for s in recs["seq"]]


@pytest.fixture
def path(tmp_path: Path) -> str:
    return str(tmp_path / "outcomes")


@pytest.fixture
def spawn() -> Iterator[Callable[..., Any]]:
    procs: list[Any] = []

    def start(target: Callable[..., None], *args: Any) -> Any:
        p = CTX.Process(target=target, args=args, daemon=True)
        p.start()
        procs.append(p)
        return p

    yield start
    for p in procs:
        if p.is_alive():
            p.kill()
        p.join(5)


# ---------------------------------------------------------------- child processes (spawned)

def paced_producer(path: str, total: int, readers: int, created: Any, go: Any, done: Any,
                   results: Any) -> None:
    """The engine: creates the ring, publishes `total` records in batches. The test keeps every
    consumer within the ring by looking at their cursors (the ring itself never waits)."""
    b = Broadcast.create(path, capacity=4096, slot_size=SLOT)
    recs = make(0, total)
    created.set()
    go.wait(WAIT)
    i = 0
    while i < total:
        cursors = [c["cursor"] for c in b.consumers()]
        if len(cursors) == readers and i - min(cursors) > b.capacity - 512:
            time.sleep(0.0002)
            continue
        b.publish_many(recs[i:i + 256])
        i += 256
    results.put(("producer", b.published))
    done.wait(WAIT)
    b.close()


def read_everything(path: str, total: int, ready: Any, results: Any) -> None:
    r = BroadcastReader.attach(path, start=0)
    ready.set()
    out = np.zeros(1024, REC)
    expected = 0
    while expected < total:
        n = r.take(out)
        if n == LAPPED:
            results.put(("lapped", r.index, expected))
            return
        if n == 0:
            r.wait(1.0)
            continue
        got = out[:n]
        if seqs(got[[0, -1]]) != [expected, expected + n - 1] or not intact(got):
            results.put(("wrong record", r.index, expected))
            return
        expected += n
    results.put(("ok", r.index, expected))
    r.close()


def slow_reader(path: str, ready: Any, read5: Any, go: Any, results: Any) -> None:
    r = BroadcastReader.attach(path)
    ready.set()
    out = np.zeros(64, REC)
    seen: list[int] = []
    while len(seen) < 5:
        n = r.take(out, max_n=5 - len(seen))
        if n > 0 and intact(out[:n]):
            seen += seqs(out[:n])
        elif n == 0:
            r.wait(1.0)
        else:
            results.put(("bad", n))
            return
    read5.set()
    go.wait(WAIT)   # slow: asleep while the producer runs many times round the ring
    n = r.take(out)
    results.put(("after sleep", seen, n, r.laps, r.lag))
    results.put(("rejoined", r.rejoin(), r.cursor))
    later: list[int] = []
    while len(later) < 10:
        n = r.take(out)
        if n < 0 or (n > 0 and not intact(out[:n])):
            results.put(("bad", n))
            return
        later += seqs(out[:n])
        if n == 0:
            r.wait(1.0)
    results.put(("after rejoin", later))


def racing_producer(path: str, ready: Any, stop: Any, results: Any) -> None:
    """Publishes flat out until told to stop. The payloads cycle through 2^16 precomputed records,
    so the seq field is the sequence mod 2^16 (a stale or torn record still fails the check)."""
    b = Broadcast.attach_producer(path)
    block = make(0, 1 << 16)
    ready.set()
    j = 0
    while not stop.is_set():
        for _ in range(256):
            b.publish_many(block[j:j + 16])
            j = (j + 16) & 0xFFFF
    results.put(b.published)


def spinning_reader(path: str, ready: Any, results: Any) -> None:
    """Reads flat out (no waits) until killed; reports any wrong record."""
    r = BroadcastReader.attach(path, start=0)
    ready.set()
    out = np.zeros(256, REC)
    while True:
        n = r.take(out)
        if n == LAPPED:
            r.rejoin()
        elif n > 0 and not intact(out[:n]):
            results.put("wrong record")


def sleeping_reader(path: str, ready: Any) -> None:
    r = BroadcastReader.attach(path)
    ready.set()
    while True:
        r.wait(None)
        r.rejoin()


def producer_when_asleep(path: str, rounds: int, ready: Any, results: Any) -> None:
    """Publishes one record per round, each only once a reader has gone to sleep: the publish,
    not a timeout, must be what ends the reader's wait."""
    b = Broadcast.attach_producer(path)
    ready.set()
    for k in range(rounds):
        deadline = time.monotonic() + WAIT
        while not any(c["sleeping"] for c in b.consumers()):
            if time.monotonic() > deadline:
                results.put("the reader never went to sleep")
                return
            time.sleep(0.001)
        b.publish(make(k, 1))
    results.put(b.wakeups_sent)


# ---------------------------------------------------------------- tests

def test_three_consumer_processes_see_every_record_once_in_order(path: str, spawn: Any) -> None:
    total, readers = 200_000, 3
    created, go, done = CTX.Event(), CTX.Event(), CTX.Event()
    results = CTX.Queue()
    spawn(paced_producer, path, total, readers, created, go, done, results)
    assert created.wait(WAIT)
    ready = [CTX.Event() for _ in range(readers)]
    for ev in ready:
        spawn(read_everything, path, total, ev, results)
    assert all(ev.wait(WAIT) for ev in ready)
    go.set()
    got = sorted(results.get(timeout=WAIT) for _ in range(readers + 1))
    done.set()
    assert got == [("ok", 0, total), ("ok", 1, total), ("ok", 2, total), ("producer", total)]


def test_a_slow_consumer_is_lapped_without_holding_the_producer_back(path: str, spawn: Any) -> None:
    b = Broadcast.create(path, capacity=1024, slot_size=SLOT)
    ready, read5, go = CTX.Event(), CTX.Event(), CTX.Event()
    results = CTX.Queue()
    slow = spawn(slow_reader, path, ready, read5, go, results)
    assert ready.wait(WAIT)
    b.publish_many(make(0, 5))
    assert read5.wait(WAIT)
    recs = make(5, 100_000)
    t0 = time.perf_counter()
    for i in range(0, len(recs), 100):
        b.publish_many(recs[i:i + 100])
    elapsed = time.perf_counter() - t0
    # The producer is done, ~100 laps ahead, and the slow consumer has still read only 5.
    [entry] = [c for c in b.consumers() if c["pid"] == slow.pid]
    assert (entry["cursor"], entry["laps"], b.published) == (5, 0, 100_005)
    assert elapsed < 2.0
    go.set()
    assert results.get(timeout=WAIT) == ("after sleep", [0, 1, 2, 3, 4], LAPPED, 1, 100_000)
    assert results.get(timeout=WAIT) == ("rejoined", 100_000, 100_005)
    b.publish_many(make(100_005, 10))
    assert results.get(timeout=WAIT) == ("after rejoin", list(range(100_005, 100_015)))


def test_a_lapped_consumer_racing_the_producer_never_gets_a_torn_record(path: str, spawn: Any) -> None:
    Broadcast.create(path, capacity=16, slot_size=SLOT).close()   # the child becomes the producer
    r = BroadcastReader.attach(path, start=0)
    ready, stop = CTX.Event(), CTX.Event()
    results = CTX.Queue()
    spawn(racing_producer, path, ready, stop, results)
    assert ready.wait(WAIT)
    out = np.zeros(16, REC)
    delivered = skipped = 0
    final = -1
    race_until = time.monotonic() + 0.5          # a tiny ring and a flat-out producer: constant laps
    while final < 0 or r.cursor < final:
        if final < 0 and time.monotonic() > race_until:
            stop.set()
            final = results.get(timeout=WAIT)
        first = r.cursor
        n = r.take(out)
        if n == LAPPED:
            skipped += r.rejoin()
        elif n == 0:
            r.wait(0.1)
        else:
            got = out[:n]
            assert intact(got), f"torn record in {first}..{first + n - 1}"
            assert (got["seq"] == np.arange(first, first + n, dtype=np.uint64) % (1 << 16)).all()
            delivered += n
    assert delivered + skipped == final and delivered > 0 and r.laps > 0


def test_a_killed_consumer_affects_neither_producer_nor_others_and_its_entry_is_reclaimed(
        path: str, spawn: Any) -> None:
    b = Broadcast.create(path, capacity=1024, slot_size=SLOT)
    survivor = BroadcastReader.attach(path, start=0)
    ready1, ready2 = CTX.Event(), CTX.Event()
    results = CTX.Queue()
    spinner = spawn(spinning_reader, path, ready1, results)
    assert ready1.wait(WAIT)
    sleeper = spawn(sleeping_reader, path, ready2)
    assert ready2.wait(WAIT)
    assert [c["index"] for c in b.consumers()] == [0, 1, 2]
    out = np.zeros(1024, REC)
    seq = 0

    def publish_and_check(n: int) -> None:
        nonlocal seq
        b.publish_many(make(seq, n))
        assert survivor.take(out) == n and seqs(out[[0, n - 1]]) == [seq, seq + n - 1]
        assert intact(out[:n])
        seq += n

    deadline = time.monotonic() + WAIT
    while b.consumers()[1]["cursor"] < 20_000 and time.monotonic() < deadline:
        publish_and_check(64)
    os.kill(spinner.pid, signal.SIGKILL)   # while it reads flat out
    spinner.join(WAIT)
    while not b.consumers()[2]["sleeping"] and time.monotonic() < deadline:
        time.sleep(0.001)
    os.kill(sleeper.pid, signal.SIGKILL)   # asleep on its wake socket, its sleeping bit set
    sleeper.join(WAIT)
    sent = b.wakeups_sent
    for _ in range(100):
        publish_and_check(100)
    # at most one byte to the dead sleeper's vanished socket (ECONNREFUSED, ignored), then none
    assert sent <= b.wakeups_sent <= sent + 1 and not b.consumers()[2]["sleeping"]
    assert results.empty()              # the spinner never saw a wrong record
    assert [(c["index"], c["alive"]) for c in b.consumers()] == [(0, True), (1, False), (2, False)]
    again = [BroadcastReader.attach(path), BroadcastReader.attach(path)]
    assert [r.index for r in again] == [1, 2]
    me = os.getpid()
    assert [(c["index"], c["pid"], c["alive"]) for c in b.consumers()] == [(i, me, True) for i in range(3)]


def test_a_reader_waiting_on_its_fd_is_woken_by_another_process(path: str, spawn: Any) -> None:
    Broadcast.create(path, capacity=64, slot_size=SLOT).close()
    r = BroadcastReader.attach(path)
    ready = CTX.Event()
    results = CTX.Queue()
    spawn(producer_when_asleep, path, 2, ready, results)
    assert ready.wait(WAIT)
    out = np.zeros(8, REC)
    t0 = time.monotonic()
    assert r.wait(WAIT)                                   # wait(): prepare_wait + poll + drain
    assert time.monotonic() - t0 < 1.0                    # woken by the publish, not the timeout
    assert r.take(out) == 1 and seqs(out[:1]) == [0]
    assert r.prepare_wait()                               # what a gateway's epoll loop does
    t0 = time.monotonic()
    readable, _, _ = select.select([r.fileno()], [], [], WAIT)
    assert readable and time.monotonic() - t0 < 1.0
    assert r.drain_wakeups() == 1 and r.take(out) == 1 and seqs(out[:1]) == [1]
    assert results.get(timeout=WAIT) == 2                 # one wake-up per sleep, no more


def test_publishing_makes_no_syscall_unless_someone_sleeps(path: str) -> None:
    b = Broadcast.create(path, capacity=64, slot_size=SLOT)
    r = BroadcastReader.attach(path)
    out = np.zeros(64, REC)
    for first in range(0, 10_000, 50):
        b.publish_many(make(first, 50))
        assert r.take(out) == 50
    assert b.wakeups_sent == 0                          # a reader that never sleeps costs nothing
    assert r.prepare_wait()
    for k in range(3):
        b.publish(make(10_000 + k, 1))
    assert b.wakeups_sent == 1                          # the first publish takes the bit: one byte
    assert select.select([r.fileno()], [], [], 0)[0]
    assert r.drain_wakeups() == 1 and r.take(out) == 3
    b.publish(make(10_003, 1))
    assert not r.prepare_wait()                         # data already there: don't block
    b.publish(make(10_004, 1))
    assert b.wakeups_sent == 1 and r.drain_wakeups() == 0
    assert r.wait(0) and r.take(out) == 2
    # A reader that woke for something else says so: publishing then costs no wake byte.
    assert r.prepare_wait()
    r.awake()
    b.publish(make(10_005, 1))
    assert b.wakeups_sent == 1 and not select.select([r.fileno()], [], [], 0)[0]
    assert r.take(out) == 1 and seqs(out[:1]) == [10_005]


def test_a_publish_wakes_every_sleeping_reader_by_its_socket_name(path: str) -> None:
    # The producer spells each reader's socket name in C: two-digit indexes and the ring id's hex.
    b = Broadcast.create(path, capacity=64, slot_size=SLOT)
    readers = [BroadcastReader.attach(path) for _ in range(12)]
    assert all(r.prepare_wait() for r in readers)
    b.publish(make(0, 1))
    assert b.wakeups_sent == 12
    fds = [r.fileno() for r in readers]
    assert sorted(select.select(fds, [], [], WAIT)[0]) == sorted(fds)
    assert [r.drain_wakeups() for r in readers] == [1] * 12


def test_drain_wakeups_empties_a_full_wake_socket(path: str) -> None:
    Broadcast.create(path, capacity=64, slot_size=SLOT)
    r = BroadcastReader.attach(path)
    with socket.socket(fileno=os.dup(r.fileno())) as mine:
        name = mine.getsockname()
    sent = 0
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.setblocking(False)
        try:
            while sent < 100:  # until the queue is full (net.unix.max_dgram_qlen, 10 by default)
                s.sendto(b"\1", name)
                sent += 1
        except BlockingIOError:
            pass
    assert sent > 1 and r.drain_wakeups() == sent
    assert not select.select([r.fileno()], [], [], 0)[0] and r.drain_wakeups() == 0


def test_recreate_changes_epoch_and_wakes_old_readers(path: str) -> None:
    b = Broadcast.create(path, capacity=64, slot_size=SLOT)
    old = BroadcastReader.attach(path)
    assert (old.epoch, old.producer_pid, old.stale()) == (b.epoch, os.getpid(), False)
    assert old.prepare_wait()
    b2 = Broadcast.create(path, capacity=128, slot_size=SLOT)   # the engine restarted
    assert select.select([old.fileno()], [], [], WAIT)[0]      # the old reader is told at once
    assert old.stale() and old.superseded and not old.prepare_wait()
    new = BroadcastReader.attach(path)
    assert new.epoch > old.epoch and new.capacity == 128 and not new.stale()
    b.close()
    b2.close()                                   # a clean producer exit: pid 0, readers stale
    assert new.producer_pid == 0 and new.stale() and not new.prepare_wait()
    p = Broadcast.attach_producer(path)          # a restarted engine carrying on the same stream
    assert (p.epoch, p.published, new.stale()) == (new.epoch, 0, False)
    with open(path, "r+b") as f:                 # pretend a live process (our parent) produces
        f.seek(40)
        f.write(os.getppid().to_bytes(8, "little"))
    with pytest.raises(ValueError, match=rf"already has a live producer \(pid {os.getppid()}\)"):
        Broadcast.attach_producer(path)


def test_start_sequences(path: str) -> None:
    b = Broadcast.create(path, capacity=64, slot_size=SLOT)
    b.publish_many(make(0, 100))
    out = np.zeros(128, REC)
    r = BroadcastReader.attach(path, start=50)
    assert r.take(out) == 50 and seqs(out[:50]) == list(range(50, 100)) and intact(out[:50])
    assert r.take(out) == 0 and (r.cursor, r.lag, r.published) == (100, 0, 100)
    gone = BroadcastReader.attach(path, start=10)    # no longer in the ring
    assert gone.take(out) == LAPPED and gone.take(out) == LAPPED and gone.laps == 1
    assert gone.rejoin() == 90 and gone.take(out) == 0
    earliest = BroadcastReader.attach(path, start="earliest")
    assert earliest.take(out, max_n=10) == 10 and seqs(out[:10]) == list(range(36, 46))
    latest = BroadcastReader.attach(path)
    b.publish(make(100, 1))
    assert latest.take(out) == 1 and seqs(out[:1]) == [100]
    with pytest.raises(ValueError, match=r"start seq 102 is outside 0..published \(101\)"):
        BroadcastReader.attach(path, start=102)
    with pytest.raises(ValueError, match="start must be"):
        BroadcastReader.attach(path, start="newest")


def test_reader_entries_are_freed_by_close_and_limited(path: str) -> None:
    Broadcast.create(path, capacity=8, slot_size=SLOT)
    readers = [BroadcastReader.attach(path) for _ in range(MAX_READERS)]
    with pytest.raises(RuntimeError, match="all 16 consumer entries are in use"):
        BroadcastReader.attach(path)
    readers[3].close()
    readers[3].close()                               # idempotent
    assert BroadcastReader.attach(path).index == 3
    with pytest.raises(ValueError, match="is closed"):
        readers[3].take(bytearray(SLOT))


def test_bad_arguments_and_files_are_refused(path: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="capacity must be a power of two >= 2, not 12"):
        Broadcast.create(path, capacity=12)
    with pytest.raises(ValueError, match="capacity must be a power of two >= 2, not 1"):
        Broadcast.create(path, capacity=1)
    with pytest.raises(ValueError, match="slot_size must be > 0"):
        Broadcast.create(path, capacity=8, slot_size=0)
    ring = str(tmp_path / "command-ring")
    Ring.create(ring, capacity=8).close()
    with pytest.raises(ValueError, match="is not a broadcast ring file"):
        BroadcastReader.attach(ring)
    (tmp_path / "tiny").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"is not a broadcast ring file \(only 1 bytes\)"):
        BroadcastReader.attach(str(tmp_path / "tiny"))
    b = Broadcast.create(path, capacity=8, slot_size=SLOT)
    with pytest.raises(ValueError, match="payload must be 120 bytes, not 5"):
        b.publish(b"short")
    with pytest.raises(ValueError, match="whole number of 120-byte records"):
        b.publish_many(bytes(SLOT * 2 + 1))
    r = BroadcastReader.attach(path)
    with pytest.raises(ValueError, match="at least one 120-byte record"):
        r.take(bytearray(SLOT - 1))
    with open(path, "r+b") as f:
        f.seek(8)
        f.write((2).to_bytes(4, "little"))
    with pytest.raises(ValueError, match="is a broadcast ring of version 2, this code reads 1"):
        BroadcastReader.attach(path)
    Broadcast.create(path, capacity=8, slot_size=SLOT)
    with open(path, "ab") as f:
        f.write(bytes(64))
    with pytest.raises(ValueError, match="has the wrong size for its header"):
        BroadcastReader.attach(path)
