"""CPU pinning of venue processes (venue/cpu.py) and its config check."""

from __future__ import annotations

import os

import pytest

from tests.venue_harness import CONFIG
from venue.config import ConfigError, load_config
from venue.cpu import CpuListError, parse_cpu_list, use_cpus


def test_cpu_lists_read_like_tasksets() -> None:
    assert parse_cpu_list("") == frozenset()
    assert parse_cpu_list("1") == {1}
    assert parse_cpu_list("0, 2-4") == {0, 2, 3, 4}
    for bad in ("x", "3-1", "-1", "1-"):
        with pytest.raises(CpuListError):
            parse_cpu_list(bad)


def test_a_bad_cpu_list_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="engine.cpus"):
        load_config(CONFIG, ["engine.cpus=two"])
    assert load_config(CONFIG, ["sbe.cpus=0-1"]).sbe.cpus == "0-1"


def test_pinning_keeps_to_the_cpus_this_process_may_use() -> None:
    before = os.sched_getaffinity(0)
    first = min(before)
    try:
        use_cpus(str(first))
        assert os.sched_getaffinity(0) == {first}
        use_cpus(f"{first},100000")  # a CPU the machine does not have is dropped
        assert os.sched_getaffinity(0) == {first}
        notes: list[str] = []
        use_cpus("100000", notes.append)  # none usable: left as it was, and said so
        assert os.sched_getaffinity(0) == {first} and "no CPU" in notes[0]
    finally:
        os.sched_setaffinity(0, before)


def test_a_real_time_process_may_not_poll() -> None:
    with pytest.raises(ConfigError, match="busy_poll"):
        load_config(CONFIG, ["sbe.rt_priority=10", "sbe.busy_poll=true"])
    with pytest.raises(ConfigError, match="wait_strategy"):
        load_config(CONFIG, ["engine.rt_priority=10", "engine.wait_strategy=spin"])
    assert load_config(CONFIG, ["engine.rt_priority=10", "sbe.busy_poll=true"]).sbe.busy_poll
