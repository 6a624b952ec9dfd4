"""The shared-memory MPSC ring: backpressure, laps, real producer processes (none lost, duplicated
or reordered per producer), a producer killed mid-claim, a slow producer told its slot was
skipped, a consumer re-attaching, and the futex wake-up across processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from core_cython.records import COMMAND_DTYPE, COMMAND_SIZE, new_commands
from core_cython.ring import DROPPED, FULL, OK, Ring

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def ring_path(tmp_path: Path) -> str:
    return str(tmp_path / "ring")


def records(ids: range, account: int = 0) -> np.ndarray:
    out = new_commands(len(ids))
    out["order_id"] = np.array(ids, dtype=np.uint64)
    out["account"] = account
    return out


def take_all(ring: Ring, n: int, **kw: int) -> np.ndarray:
    out = new_commands(max(n, 1))
    got = ring.take(out, **kw)
    return out[:got]


def child(code: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)


def test_publish_take_round_trip_and_backpressure(ring_path: str) -> None:
    ring = Ring.create(ring_path, capacity=8, slot_size=COMMAND_SIZE)
    batch = records(range(10))
    assert [ring.publish(batch[i:i + 1]) for i in range(10)] == [OK] * 8 + [FULL] * 2
    got = take_all(ring, 16)
    assert got.tobytes() == batch[:8].tobytes()           # every byte of every record, in order
    assert ring.publish_many(records(range(9))) == 0      # a batch that does not fit waits whole
    assert ring.publish_many(records(range(100, 108))) == 8
    assert list(take_all(ring, 16)["order_id"]) == list(range(100, 108))


def test_many_laps_keep_order(ring_path: str) -> None:
    ring = Ring.create(ring_path, capacity=16, slot_size=COMMAND_SIZE)
    seen: list[int] = []
    for start in range(0, 1000, 7):
        assert ring.publish_many(records(range(start, start + 7))) == 7
        seen += list(take_all(ring, 16)["order_id"])
    assert seen == list(range(0, 1001 + 6))[:len(seen)] and len(seen) == 1001
    assert ring.claimed == ring.consumed_seq == 1001


def test_bad_files_are_refused(ring_path: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        Ring.create(ring_path, capacity=12)
    other = tmp_path / "not-a-ring"
    other.write_bytes(b"\0" * 4096)
    with pytest.raises(ValueError, match="not a ring file"):
        Ring.attach(str(other))
    Ring.create(ring_path, capacity=8)
    with open(ring_path, "ab") as f:
        f.write(b"\0" * 64)
    with pytest.raises(ValueError, match="wrong size"):
        Ring.attach(ring_path)
    ring = Ring.create(ring_path, capacity=8)
    with pytest.raises(ValueError):
        ring.publish(b"short")


def test_concurrent_producer_processes_lose_nothing(ring_path: str) -> None:
    producers, each = 3, 40_000
    ring = Ring.create(ring_path, capacity=1024, slot_size=COMMAND_SIZE)
    code = ("import numpy as np, sys; from core_cython.ring import Ring; from bench.ringloop import pump;"
            "from core_cython.records import new_commands;"
            f"r = Ring.attach({ring_path!r}); p = int(sys.argv[1]) if len(sys.argv) > 1 else 0;"
            f"recs = new_commands({each}); recs['order_id'] = np.arange({each}); recs['account'] = %d;"
            f"n, full, dropped = pump(r, recs, {each}, ts_offset=8); assert (n, dropped) == ({each}, 0)")
    procs = [child(code % (p + 1)) for p in range(producers)]
    got = []
    out = new_commands(4096)
    deadline = time.monotonic() + 60
    while sum(len(g) for g in got) < producers * each and time.monotonic() < deadline:
        n = ring.take(out, timeout_ns=100_000_000, wait="block")
        got.append(out[:n].copy())
    assert [p.wait(timeout=30) for p in procs] == [0] * producers
    received = np.concatenate(got)
    assert received.size == producers * each and ring.skipped == 0
    for p in range(1, producers + 1):
        ids = received["order_id"][received["account"] == p]
        assert np.array_equal(ids, np.arange(each)), f"producer {p}: lost, duplicated or reordered"


def test_a_producer_killed_mid_claim_does_not_stall_the_consumer(ring_path: str) -> None:
    ring = Ring.create(ring_path, capacity=64, slot_size=COMMAND_SIZE)
    assert ring.publish_many(records(range(3))) == 3
    victim = child("import time; from core_cython.ring import Ring;"
                   f"r = Ring.attach({ring_path!r}); assert r.claim_without_publishing() == 3;"
                   "print('claimed', flush=True); time.sleep(60)")
    while ring.claimed < 4:
        time.sleep(0.01)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    assert ring.publish_many(records(range(4, 8))) == 4   # others go on publishing behind the hole
    first = take_all(ring, 16, stall_ns=20_000_000)
    assert list(first["order_id"]) == [0, 1, 2]           # stops at the unpublished slot...
    time.sleep(0.03)
    rest = take_all(ring, 16, stall_ns=20_000_000)
    assert list(rest["order_id"]) == [4, 5, 6, 7]         # ...and skips it after the deadline
    assert ring.skipped == 1 and ring.consumed_seq == 8


def test_a_live_writer_is_waited_for_and_a_dead_one_skipped(ring_path: str) -> None:
    ring = Ring.create(ring_path, capacity=8, slot_size=COMMAND_SIZE)
    # A producer paused in the middle of its copy (this process: alive) is never skipped, however
    # long it takes: its late copy must not land on the slot's next use.
    seq = ring.reserve_without_writing()
    for _ in range(3):
        assert take_all(ring, 8, stall_ns=1_000_000).size == 0
        time.sleep(0.003)
    assert ring.skipped == 0 and ring.consumed_seq == seq
    ring.close()
    # The same in a process killed mid-copy: its slot is skipped after the deadline.
    ring = Ring.create(ring_path, capacity=8, slot_size=COMMAND_SIZE)
    victim = child("import time; from core_cython.ring import Ring;"
                   f"r = Ring.attach({ring_path!r}); assert r.reserve_without_writing() == 0;"
                   "print('reserved', flush=True); time.sleep(60)")
    while ring.claimed < 1:
        time.sleep(0.01)
    assert take_all(ring, 8, stall_ns=1_000_000).size == 0
    time.sleep(0.005)
    assert take_all(ring, 8, stall_ns=1_000_000).size == 0 and ring.skipped == 0  # alive: waited for
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    assert ring.publish(records(range(5, 6))) == OK
    got = take_all(ring, 8, stall_ns=1_000_000)  # its deadline has long passed: skipped now
    if got.size == 0:
        time.sleep(0.005)
        got = take_all(ring, 8, stall_ns=1_000_000)
    assert list(got["order_id"]) == [5] and ring.skipped == 1


def test_a_slow_producer_learns_its_slot_was_skipped(ring_path: str) -> None:
    ring = Ring.create(ring_path, capacity=8, slot_size=COMMAND_SIZE)
    seq = ring.claim_without_publishing()
    assert take_all(ring, 8, stall_ns=1_000_000).size == 0
    time.sleep(0.005)
    assert take_all(ring, 8, stall_ns=1_000_000).size == 0 and ring.skipped == 1
    assert ring.fill_claimed(seq, records(range(1))) == DROPPED   # never delivered, and it knows
    assert ring.publish(records(range(9, 10))) == OK
    assert list(take_all(ring, 8)["order_id"]) == [9]


def test_a_restarted_consumer_resumes_where_it_stopped(ring_path: str) -> None:
    ring = Ring.create(ring_path, capacity=32, slot_size=COMMAND_SIZE)
    ring.publish_many(records(range(10)))
    out = new_commands(4)
    assert ring.take(out) == 4
    ring.close()
    again = Ring.attach(ring_path)
    assert list(take_all(again, 32)["order_id"]) == list(range(4, 10))


@pytest.mark.parametrize("wait", ["spin", "yield", "block"])
def test_a_waiting_consumer_wakes_for_another_process(ring_path: str, wait: str) -> None:
    ring = Ring.create(ring_path, capacity=8, slot_size=COMMAND_SIZE)
    producer = child("import time, numpy as np; from core_cython.ring import Ring;"
                     "from core_cython.records import new_commands;"
                     f"r = Ring.attach({ring_path!r}); time.sleep(0.2); c = new_commands(1);"
                     "c['order_id'] = 42; assert r.publish(c) == 0")
    out = np.zeros(1, dtype=COMMAND_DTYPE)
    t0 = time.monotonic()
    n = ring.take(out, timeout_ns=10_000_000_000, wait=wait)
    assert n == 1 and out["order_id"][0] == 42
    assert time.monotonic() - t0 < 5   # woken by the publish, not by the 10 s timeout
    assert producer.wait(timeout=10) == 0


def _context_switches() -> int:
    """This thread's voluntary context switches so far (each sleep on the futex is one)."""
    status = Path(f"/proc/self/task/{threading.get_native_id()}/status").read_text()
    return int(status.split("voluntary_ctxt_switches:")[1].split()[0])


def test_a_blocked_consumer_of_an_empty_ring_sleeps_until_the_timeout(ring_path: str) -> None:
    ring = Ring.create(ring_path, capacity=8, slot_size=COMMAND_SIZE)
    before, t0 = _context_switches(), time.monotonic()
    assert len(take_all(ring, 1, timeout_ns=300_000_000, wait="block", spin_ns=0)) == 0
    assert time.monotonic() - t0 >= 0.3
    assert _context_switches() - before < 20  # one sleep, not one every millisecond (300)


def test_a_blocked_consumer_still_skips_a_dead_claim_in_time(ring_path: str) -> None:
    # Behind an unpublished claim the consumer re-checks every millisecond, so the stall deadline
    # (20 ms here) frees the records behind it well within one take's timeout.
    ring = Ring.create(ring_path, capacity=8, slot_size=COMMAND_SIZE)
    assert ring.claim_without_publishing() == 0  # what a producer that died mid-claim leaves
    assert ring.publish_many(records(range(1, 3))) == 2
    t0 = time.monotonic()
    got = take_all(ring, 4, timeout_ns=5_000_000_000, wait="block", stall_ns=20_000_000, spin_ns=0)
    assert list(got["order_id"]) == [1, 2] and ring.skipped == 1
    assert time.monotonic() - t0 < 2.5  # not the 5 s timeout


def test_a_claim_that_dies_while_the_consumer_sleeps_is_skipped_once_it_wakes(ring_path: str) -> None:
    # The consumer sleeps on an empty ring; a producer claims a slot and dies, another publishes
    # behind it: that publish wakes the consumer, which then watches the hole's deadline (20 ms).
    ring = Ring.create(ring_path, capacity=8, slot_size=COMMAND_SIZE)

    def producers() -> None:
        other = Ring.attach(ring_path)
        time.sleep(0.1)
        assert other.claim_without_publishing() == 0
        time.sleep(0.1)
        assert other.publish_many(records(range(1, 2))) == 1
        other.close()

    thread = threading.Thread(target=producers)
    thread.start()
    t0 = time.monotonic()
    got = take_all(ring, 4, timeout_ns=5_000_000_000, wait="block", stall_ns=20_000_000, spin_ns=0)
    thread.join()
    assert list(got["order_id"]) == [1] and ring.skipped == 1
    assert time.monotonic() - t0 < 2.5  # not the 5 s timeout


def test_a_take_may_wait_without_limit(ring_path: str) -> None:
    # The largest timeout is "no limit", not an overflowed deadline: the consumer, waking every ms
    # behind a dead claim, must keep waiting until the record behind it comes.
    ring = Ring.create(ring_path, capacity=8, slot_size=COMMAND_SIZE)
    assert ring.claim_without_publishing() == 0
    timer = threading.Timer(0.1, lambda: ring.publish_many(records(range(5, 6))))
    timer.start()
    got = take_all(ring, 1, timeout_ns=(1 << 63) - 1, wait="block", stall_ns=20_000_000, spin_ns=0)
    timer.join()
    assert list(got["order_id"]) == [5] and ring.skipped == 1
