"""The machine-floor probe's arithmetic (bench/stalls.py): stalls by length and the wait they impose."""

from __future__ import annotations

import numpy as np

from bench.stalls import _summarise


def test_an_event_inside_a_stall_waits_for_its_end() -> None:
    # one second; a 1 ms stall starting at 0.5 s: 10 of the 10,000 events (every 100 µs) land in it
    begin, end = 0, 1_000_000_000
    starts, lengths = np.array([500_000_000], dtype=np.int64), np.array([1_000_000], dtype=np.int64)
    got = _summarise(0, starts, lengths, begin, end)
    assert got.stalls[">1000 us"] == 1 and sum(got.stalls.values()) == 1  # buckets include their low end
    assert abs(got.lost_percent - 0.1) < 1e-9
    assert got.longest_us == 1000.0
    assert got.event_delay_us["p99"] == 0.0  # 0.1% of events wait
    assert 0 < got.event_delay_us["p99.9"] <= 1000.0


def test_a_quiet_cpu_has_no_stalls_and_no_waits() -> None:
    empty = np.zeros(0, dtype=np.int64)
    got = _summarise(1, empty, empty, 0, 100_000_000)
    assert sum(got.stalls.values()) == 0 and got.lost_percent == 0 and got.longest_us == 0
    assert got.event_delay_us == {"p99": 0.0, "p99.9": 0.0}
