"""Prometheus metrics (venue/metrics.py): counter pages in shared memory, read by the supervisor and
served over real HTTP from a real venue (engine and gateway processes, rings, TCP sessions)."""

from __future__ import annotations

import os
import signal
import socket
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from core_cython.envelope import BATCH_BOUNDS_US, batch_bucket
from sbe_gateway.client import LogonRefused
from sbe_schemas import codecs
from tests.venue_harness import frame, next_id, running_venue, venue_config, wait_until_stopped
from venue.counter_page import CounterPage, read_page
from venue.metrics import serve_metrics
from venue.run import start_metrics
from venue.supervisor import Supervisor

BTC = 1
MID = 6_000_000
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


# ---------------------------------------------------------------------------- the counter page


def test_a_counter_page_holds_whole_values_and_a_restart_starts_it_afresh(tmp_path: Path) -> None:
    path = tmp_path / "p.counters"
    assert read_page(path, ("a", "b")) is None  # no page yet: nothing to report, no error
    page = CounterPage(path, ("a", "b", "c"))
    page.set((7, 2**64 - 1, 2**64 + 5))  # taken modulo 2^64, as a u64 counter wraps
    reading = read_page(path, ("a", "b", "c"))
    assert reading is not None and reading.values == {"a": 7, "b": 2**64 - 1, "c": 5}
    assert reading.pid == os.getpid() and abs(reading.created_ns - time.time_ns()) < 60 * 10**9
    page.close()
    assert read_page(path, ("a", "b", "c")).values["a"] == 7  # a stopped process's last values stay
    CounterPage(path, ("a", "b", "c")).close()  # the process restarted: a fresh page, from zero
    assert read_page(path, ("a", "b", "c")).values == {"a": 0, "b": 0, "c": 0}
    with pytest.raises(ValueError, match="holds 3 counters, this venue expects 2"):
        read_page(path, ("a", "b"))
    path.write_bytes(b"VENUECTR" + bytes(20))
    with pytest.raises(ValueError, match="not a counter page"):
        read_page(path, ("a",))
    with pytest.raises(ValueError, match="unique"):
        CounterPage(path, ("a", "a"))


@given(st.integers(min_value=1, max_value=10**9))
def test_a_batch_time_lands_in_the_first_bucket_that_holds_it(took_ns: int) -> None:
    bounds_ns = [bound * 1000 for bound in BATCH_BOUNDS_US]
    # reference: bucket "le X µs" holds a time t when t rounded up to whole µs is <= X
    micros_ns = -(-took_ns // 1000) * 1000
    expected = next((i for i, bound in enumerate(bounds_ns) if micros_ns <= bound), len(bounds_ns))
    assert batch_bucket(took_ns) == expected


# ---------------------------------------------------------------------------- served by a real venue


def scrape(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=5) as answer:
        assert answer.headers["Content-Type"].startswith("text/plain")
        text = answer.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def scrape_until(url: str, ready: Callable[[Samples], bool], timeout: float = 5.0) -> Samples:
    """Counter pages are copied over every 100 ms (and when idle): wait for the expected values."""
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(url)
        if ready(samples) or time.monotonic() > deadline:
            return samples
        time.sleep(0.05)


GW = {"gateway": "1"}


def test_metrics_count_what_the_venue_did_and_follow_a_gateway_restart(tmp_path: Path) -> None:
    with running_venue(tmp_path) as venue:
        metrics = serve_metrics(venue.supervisor, "127.0.0.1", 0)
        try:
            url = metrics.url
            # (no heartbeats for a minute: every message the gateway receives is one of ours)
            maker = venue.client("demo-1", heartbeat_ms=60_000)
            taker = venue.client("demo-2", heartbeat_ms=60_000)
            with pytest.raises(LogonRefused, match="UNKNOWN_KEY"):
                venue.connect().logon(12345, b"x" * 32)
            sell = next_id()
            maker.new_order(cl_ord_id=sell, symbol_id=BTC, side=codecs.Side.SELL, qty=2, price=MID + 90_000)
            maker.new_order(cl_ord_id=next_id(), symbol_id=BTC, side=codecs.Side.SELL, qty=1,
                            price=MID + 95_000)
            buy = next_id()
            taker.new_order(cl_ord_id=buy, symbol_id=BTC, side=codecs.Side.BUY, qty=1, price=MID + 90_000)
            taker.wait_for(lambda m: m["template"] == "ExecutionReport" and m["cl_ord_id"] == buy)
            taker.send_raw(frame(99, bytes(8)))  # an unknown template: Reject, counted as a bad frame
            taker.wait_for(lambda m: m["template"] == "Reject")

            s = scrape_until(url, lambda s: value(s, "venue_sbe_bad_frames_total", **GW) == 1
                             and value(s, "venue_engine_commands_total") == 3)
            # The gateway's view: exactly what the clients did.
            assert value(s, "venue_sbe_logons_total", **GW) == 2
            assert value(s, "venue_sbe_logon_rejects_total", **GW) == 1
            assert value(s, "venue_sbe_sessions", **GW) == 2
            assert value(s, "venue_sbe_requests_published_total", **GW) == 3
            assert value(s, "venue_sbe_rejects_total", **GW) == 1
            # 3 logons (the refused one's session is closed: its count stays), 3 orders, the bad frame
            assert value(s, "venue_sbe_messages_received_total", **GW) == 7
            assert value(s, "venue_sbe_sessions_closed_total", **GW) == 1
            assert value(s, "venue_sbe_messages_sent_total", **GW) >= 2 + 3 + 1 + 1 + 1  # acks, reports
            # The engine's: the 3 orders and nothing else came through the ring; every outcome it
            # published is on the outcome ring, and the gateway read them all.
            assert value(s, "venue_engine_commands_total") == 3
            outcomes = value(s, "venue_engine_outcomes_total")
            assert outcomes >= 4 and value(s, "venue_outcome_ring_published_total") == outcomes
            assert value(s, "venue_sbe_outcomes_read_total", **GW) == outcomes
            assert value(s, "venue_outcome_ring_reader_lag", process="sbe-gateway-1") == 0
            batches = value(s, "venue_engine_batches_total")
            assert 1 <= batches <= 3 and value(s, "venue_engine_batch_seconds_count") == batches
            assert value(s, "venue_engine_batch_seconds_bucket", le="+Inf") == batches
            assert 0 < value(s, "venue_engine_batch_seconds_sum") < 10
            assert value(s, "venue_engine_last_cmd_seq") > 3  # the demo accounts' setup came first
            assert value(s, "venue_command_ring_depth") == 0
            for process in ("engine", "sbe-gateway-1"):
                assert value(s, "venue_process_up", process=process) == 1
                assert value(s, "venue_process_restarts_total", process=process) == 0
                assert value(s, "venue_process_resident_memory_bytes", process=process) > 10 << 20
            assert value(s, "venue_journal_disk_bytes") > 0

            # A stopped engine: requests wait in the command ring, and the depth says how many.
            engine = venue.supervisor.engine.process.pid
            os.kill(engine, signal.SIGSTOP)
            try:
                wait_until_stopped(engine)
                for _ in range(5):
                    maker.new_order(cl_ord_id=next_id(), symbol_id=BTC, side=codecs.Side.SELL, qty=1,
                                    price=MID + 99_000)
                s = scrape_until(url, lambda s: value(s, "venue_command_ring_depth") == 5)
                assert value(s, "venue_command_ring_depth") == 5
            finally:
                os.kill(engine, signal.SIGCONT)
            s = scrape_until(url, lambda s: value(s, "venue_engine_commands_total") == 8)
            assert value(s, "venue_engine_commands_total") == 8 and value(s, "venue_command_ring_depth") == 0

            # A killed gateway: down, then restarted; its counters start again from zero.
            gateway = venue.supervisor.gateways[0]
            os.kill(gateway.process.pid, signal.SIGKILL)
            gateway.process.join(5)
            assert value(scrape(url), "venue_process_up", process="sbe-gateway-1") == 0
            deadline = time.monotonic() + 15
            while gateway.restarts == 0 and time.monotonic() < deadline:
                assert venue.supervisor.check() is None
                time.sleep(0.05)
            venue.clients.clear()  # their connections died with the gateway
            s = scrape_until(url, lambda s: value(s, "venue_sbe_logons_total", **GW) == 0)
            assert value(s, "venue_process_restarts_total", process="sbe-gateway-1") == 1
            assert value(s, "venue_process_up", process="sbe-gateway-1") == 1
            assert value(s, "venue_sbe_logons_total", **GW) == 0
            assert value(s, "venue_engine_commands_total") == 8  # the engine carried on, untouched
        finally:
            metrics.close()


def test_a_taken_metrics_port_costs_the_metrics_not_the_venue(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = venue_config(tmp_path, [f"metrics.port={port}"])
        lines: list[str] = []
        supervisor = Supervisor(config, lines.append)  # nothing started: only the metrics are tried
        assert start_metrics(supervisor, lines.append) is None
        assert lines == [f"metrics: cannot listen on 127.0.0.1:{port} (Address already in use); "
                         "running without /metrics"]
    disabled = Supervisor(venue_config(tmp_path, ["metrics.enabled=false"]), lines.append)
    assert start_metrics(disabled, lines.append) is None and len(lines) == 1
