"""kill -9 at any moment loses nothing committed; recovery equals an uninterrupted run.

Real processes: tests/journal_crash_writer.py appends seeded random flow to one journal and is
SIGKILL'ed at random times (and right inside snapshot writes), restarted, killed again...
Then the committed commands are replayed by a fresh in-memory engine and compared. In funds mode
the writer also moves money (holds, settlement, fees), and the recovered ledger must check clean.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core_cython.engine import Engine
from journal import Journal, JournaledEngine, RecordKind, replay, verify
from journal.ledger import check_ledger

REPO = Path(__file__).resolve().parent.parent
WRITER = Path(__file__).resolve().parent / "journal_crash_writer.py"


def start_writer(path: Path, acks: Path, seed: int, *extra: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen(
        [sys.executable, str(WRITER), str(path), str(acks), "--seed", str(seed), *extra],
        env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def ack_lines(acks: Path) -> list[list[str]]:
    return [line.split() for line in acks.read_text().splitlines()] if acks.exists() else []


def wait_for(acks: Path, proc: subprocess.Popen[bytes], predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate(ack_lines(acks)):
        if proc.poll() is not None:
            raise AssertionError(f"writer exited early: {proc.stderr.read().decode()[-2000:]}")
        if time.monotonic() > deadline:
            raise AssertionError("writer made no progress")
        time.sleep(0.001)


def kill(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    proc.stderr.close()


def max_acked(acks: Path) -> tuple[int, int]:
    acked = [(int(f[1]), int(f[2])) for f in ack_lines(acks) if f[0] == "ack"]
    return max(acked, default=(0, 0))


def check_against_uninterrupted_run(path: Path, acked: tuple[int, int], *, funds: bool = False) -> None:
    with Journal(path, readonly=True) as journal:
        # Nothing acknowledged was lost.
        assert journal.last_cmd_seq >= acked[0] and journal.last_event_seq >= acked[1]
        commands = journal.read(RecordKind.COMMANDS, 1, journal.last_cmd_seq)
        stored_events = journal.read(RecordKind.EVENTS, 1, journal.last_event_seq)
        n_snapshots = len(journal.snapshots())
    # Gap-free: the records carry exactly 1..last.
    assert (commands["seq"] == range(1, len(commands) + 1)).all()
    assert (stored_events["seq"] == range(1, len(stored_events) + 1)).all()
    fresh = Engine(funds=funds)
    fresh.process(commands.copy())
    expected_hash = fresh.state_hash()
    assert fresh.last_event_seq == len(stored_events)
    report = verify(path)
    assert report.ok, report.problems
    assert report.snapshots_checked == n_snapshots > 0
    assert replay(path, progress=False) == expected_hash
    assert replay(path, progress=False, from_snapshot=True) == expected_hash
    with JournaledEngine.open(path, verify_events=True) as recovered:
        assert recovered.state_hash() == expected_hash
        assert recovered.funds == funds  # the journal's recorded mode, without being told
        if funds:
            assert check_ledger(recovered.engine, [stored_events]) == []


@pytest.mark.parametrize("funds", [False, True], ids=["core", "funds"])
def test_sigkill_at_random_moments_loses_nothing(tmp_path: Path, funds: bool) -> None:
    rng = random.Random(20240611)
    path, acks = tmp_path / "journal", tmp_path / "acks.txt"
    common = ["--batch", "1000", "--snapshot-every", "15000", "--explicit-snapshot-every", "7",
              "--book", "30000", *(["--funds"] if funds else [])]
    kills_in_snapshot = 0
    for round_no in range(10 if not funds else 6):
        acks.unlink(missing_ok=True)
        # One round in async mode: a process crash loses nothing there either (data is in the kernel).
        durability = "async" if round_no == 3 else "sync"
        proc = start_writer(path, acks, 1000 + round_no, "--durability", durability, *common)
        try:
            wait_for(acks, proc, lambda lines: any(f[0] == "ack" for f in lines))
            if round_no % 3 == 2:
                # Aim inside an explicit snapshot transaction (a 3 MB snapshot takes a few ms).
                begun = sum(f[0] == "snap-begin" for f in ack_lines(acks))
                wait_for(acks, proc, lambda lines, b=begun: sum(f[0] == "snap-begin" for f in lines) > b)
            else:
                time.sleep(rng.uniform(0.0, 0.4))
        finally:
            kill(proc)
        lines = ack_lines(acks)
        if lines and lines[-1][0] == "snap-begin":
            kills_in_snapshot += 1
        acked = max_acked(acks)
        # Recovery in this process must see every acknowledged batch.
        with Journal(path, readonly=True) as journal:
            assert journal.last_cmd_seq >= acked[0] and journal.last_event_seq >= acked[1]
    assert kills_in_snapshot >= 1
    check_against_uninterrupted_run(path, acked, funds=funds)


@pytest.mark.parametrize(("durability", "funds"), [("sync", False), ("async", False), ("sync", True)])
def test_writer_restarts_after_kill_and_continues(tmp_path: Path, durability: str, funds: bool) -> None:
    path, acks = tmp_path / "journal", tmp_path / "acks.txt"
    for round_no in range(2):
        proc = start_writer(path, acks, round_no, "--durability", durability, "--batch", "500",
                            "--snapshot-every", "3000", *(["--funds"] if funds else []))
        try:
            wait_for(acks, proc, lambda lines, r=round_no: sum(f[0] == "ack" for f in lines) > 20 * (r + 1))
        finally:
            kill(proc)
    ready = [f for f in ack_lines(acks) if f[0] == "ready"]
    assert ready[0][1:] == ["0", "0"] and int(ready[1][1]) > 0
    check_against_uninterrupted_run(path, max_acked(acks), funds=funds)

