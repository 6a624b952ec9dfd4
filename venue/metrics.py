"""Prometheus metrics of a running venue, served by the supervisor at http://<metrics.host>:<port>/metrics.

The engine and the gateways never serve HTTP and never take a lock for a metric: each writes its
counters into its own counter page in the run directory (venue/counter_page.py), off its hot path.
At each scrape the supervisor reads those pages, the rings' headers (command ring depth, the outcome
ring's published sequence and each reader's lag), the journal file's size, and each child's CPU
time and resident memory from /proc. A child that died keeps its last page until its restart
replaces it; `venue_process_up` says which processes are running now.

Names (all prefixed venue_):
    engine_*      the engine process: batches, commands, events, outcomes, refused requests, the
                  journal's last sequence numbers, and the time a batch takes from the moment it is
                  taken from the ring to its outcomes published (journal commit included)
    sbe_*         per gateway (label gateway="<id>"): connections, sessions, logons, messages in and
                  out, rejects by kind, requests published to the engine, outcomes read, laps
    process_*, command_ring_*, outcome_ring_*, journal_disk_bytes: read by the supervisor itself
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from core_cython.envelope import BATCH_BOUNDS_US
from venue.counter_page import read_page

PREFIX = "venue_"
ENGINE_PAGE = "engine.counters"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Family:
    name: str  # without the prefix; a counter's samples get _total
    kind: str  # "counter" | "gauge"
    help: str


ENGINE_FAMILIES = (
    Family("engine_batches", "counter", "Batches taken from the command ring and committed (group commits)"),
    Family("engine_commands", "counter", "Commands from the gateways sequenced, journaled and applied"),
    Family("engine_events", "counter", "Events of those commands (postings included)"),
    Family("engine_outcomes", "counter", "Outcomes published to the gateways (events but postings)"),
    Family("engine_refused_requests", "counter",
           "Requests from a gateway with an op other than order entry (rejected as UNKNOWN_OP)"),
    Family("engine_last_cmd_seq", "gauge", "Sequence number of the last journaled command"),
    Family("engine_last_event_seq", "gauge", "Sequence number of the last journaled event"),
)
# In the order of core_cython.envelope.BatchIO.counters(), then the journal's sequence numbers.
ENGINE_COUNTERS = ("engine_batches", "engine_commands", "engine_events", "engine_outcomes",
                   "engine_refused_requests", *(f"batch_le_{bound}us" for bound in BATCH_BOUNDS_US),
                   "batch_le_inf", "batch_ns_sum", "engine_last_cmd_seq", "engine_last_event_seq")

GATEWAY_FAMILIES = (
    Family("sbe_connections", "gauge", "Open TCP connections"),
    Family("sbe_sessions", "gauge", "Logged-on sessions"),
    Family("sbe_logons", "counter", "Logons accepted"),
    Family("sbe_logon_rejects", "counter", "Logons refused (bad signature, unknown key, ...)"),
    Family("sbe_sessions_closed", "counter", "Connections closed, for any reason"),
    Family("sbe_messages_received", "counter", "Whole SBE frames received"),
    Family("sbe_messages_sent", "counter", "SBE messages queued to clients"),
    Family("sbe_rejects", "counter",
           "Rejects and rejected ExecutionReports decided by the gateway itself (throttled, busy and "
           "bad frames included)"),
    Family("sbe_throttled", "counter", "Messages refused by the per-session throttle"),
    Family("sbe_busy", "counter", "Requests refused because the command ring was full (backpressure)"),
    Family("sbe_bad_frames", "counter", "Undecodable frames (bad header, template, version, length)"),
    Family("sbe_requests_published", "counter", "Requests written to the command ring"),
    Family("sbe_outcomes_read", "counter", "Outcomes read from the outcome ring (all accounts)"),
    Family("sbe_laps", "counter", "Times the outcome ring lapped this gateway (sessions logged out)"),
    Family("sbe_cancel_on_disconnect", "counter", "Cancel-on-disconnect mass cancels sent to the engine"),
    Family("sbe_pending_cancels", "gauge", "Cancel-on-disconnect mass cancels waiting for room in the ring"),
)
GATEWAY_COUNTERS = tuple(f.name for f in GATEWAY_FAMILIES)


def gateway_page(gateway_id: int) -> str:
    return f"sbe-gateway-{gateway_id}.counters"


# ---------------------------------------------------------------------------- the supervisor's side


@dataclass(frozen=True)
class ProcessView:
    """What the supervisor knows of one child: its label, pid (None: not started), whether it is
    running, and how often it was restarted."""

    name: str
    pid: int | None
    alive: bool
    restarts: int


def _family(family: Family, labels: tuple[str, ...] = ()) -> Metric:
    cls = CounterMetricFamily if family.kind == "counter" else GaugeMetricFamily
    return cls(PREFIX + family.name, family.help, labels=list(labels))


def _proc_usage(pid: int) -> tuple[float, int] | None:
    """(CPU seconds, resident bytes) of a live process, from /proc; None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rindex(b")") + 2:].split()
    # fields[0] is field 3 (state): utime and stime are fields 14 and 15, rss field 24 (pages)
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS, int(fields[21]) * PAGE_SIZE


class VenueCollector(Collector):
    """Reads everything at scrape time; `processes` gives the supervisor's current view."""

    def __init__(self, run_dir: Path, journal_path: str, processes: Callable[[], list[ProcessView]],
                 gateway_ids: Callable[[], list[int]], log: Callable[[str], None] | None = None) -> None:
        self.run_dir = run_dir
        self.journal_path = journal_path
        self.processes = processes
        self.gateway_ids = gateway_ids
        self.log = log or (lambda message: None)
        self._bad_pages: set[str] = set()

    def collect(self) -> Iterator[Metric]:
        views = self.processes()
        yield from self._processes(views)
        yield from self._engine()
        yield from self._gateways()
        yield from self._rings(views)
        yield from self._journal()

    def _read(self, name: str, counters: tuple[str, ...]) -> dict[str, int] | None:
        try:
            reading = read_page(self.run_dir / name, counters)
        except (OSError, ValueError) as exc:
            if name not in self._bad_pages:  # once per page, not once per scrape
                self._bad_pages.add(name)
                self.log(f"metrics: skipping {name}: {exc}")
            return None
        return None if reading is None else reading.values

    def _processes(self, views: list[ProcessView]) -> Iterator[Metric]:
        up = GaugeMetricFamily(PREFIX + "process_up", "1 if the process is running", labels=["process"])
        restarts = CounterMetricFamily(PREFIX + "process_restarts", "Restarts by the supervisor",
                                       labels=["process"])
        cpu = CounterMetricFamily(PREFIX + "process_cpu_seconds", "User and system CPU time",
                                  labels=["process"])
        rss = GaugeMetricFamily(PREFIX + "process_resident_memory_bytes", "Resident memory",
                                labels=["process"])
        for view in views:
            up.add_metric([view.name], 1.0 if view.alive else 0.0)
            restarts.add_metric([view.name], view.restarts)
            usage = _proc_usage(view.pid) if view.alive and view.pid else None
            if usage is not None:
                cpu.add_metric([view.name], usage[0])
                rss.add_metric([view.name], usage[1])
        yield from (up, restarts, cpu, rss)

    def _engine(self) -> Iterator[Metric]:
        values = self._read(ENGINE_PAGE, ENGINE_COUNTERS)
        if values is None:
            return
        for family in ENGINE_FAMILIES:
            metric = _family(family)
            metric.add_metric([], values[family.name])
            yield metric
        buckets, seen = [], 0
        for bound in BATCH_BOUNDS_US:
            seen += values[f"batch_le_{bound}us"]
            buckets.append((f"{bound / 1e6:g}", seen))
        seen += values["batch_le_inf"]
        buckets.append(("+Inf", seen))
        histogram = HistogramMetricFamily(
            PREFIX + "engine_batch_seconds",
            "Time of a batch: taken from the command ring -> applied, journaled (committed under the "
            "durability mode) and its outcomes published")
        histogram.add_metric([], buckets, values["batch_ns_sum"] / 1e9)
        yield histogram

    def _gateways(self) -> Iterator[Metric]:
        readings = [(str(i), v) for i in self.gateway_ids()
                    if (v := self._read(gateway_page(i), GATEWAY_COUNTERS)) is not None]
        for family in GATEWAY_FAMILIES:
            metric = _family(family, labels=("gateway",))
            for gateway, values in readings:
                metric.add_metric([gateway], values[family.name])
            yield metric

    def _rings(self, views: list[ProcessView]) -> Iterator[Metric]:
        from core_cython.broadcast import BroadcastMonitor
        from core_cython.ring import Ring
        from venue.engine_service import COMMANDS_RING, OUTCOMES_RING

        try:
            ring = Ring.attach(str(self.run_dir / COMMANDS_RING))
        except (OSError, ValueError):
            ring = None
        if ring is not None:
            try:
                claimed, consumed, capacity = ring.claimed, ring.consumed_seq, ring.capacity
            finally:
                ring.close()
            depth = GaugeMetricFamily(PREFIX + "command_ring_depth",
                                      "Requests in the command ring not yet taken by the engine")
            depth.add_metric([], claimed - consumed if claimed >= consumed else 0)
            slots = GaugeMetricFamily(PREFIX + "command_ring_slots", "Capacity of the command ring")
            slots.add_metric([], capacity)
            yield from (depth, slots)
        try:
            outcomes = BroadcastMonitor.open(str(self.run_dir / OUTCOMES_RING))
        except (OSError, ValueError):
            return
        try:
            published, consumers = outcomes.published, outcomes.consumers()
        finally:
            outcomes.close()
        total = CounterMetricFamily(PREFIX + "outcome_ring_published", "Outcomes ever published on this ring")
        total.add_metric([], published)
        names = {view.pid: view.name for view in views if view.pid}
        lag = GaugeMetricFamily(PREFIX + "outcome_ring_reader_lag",
                                "Outcomes published that this reader has not read yet", labels=["process"])
        for consumer in consumers:
            if consumer["alive"]:
                lag.add_metric([names.get(consumer["pid"], f"pid {consumer['pid']}")], consumer["lag"])
        yield from (total, lag)

    def _journal(self) -> Iterator[Metric]:
        try:
            stat = os.stat(os.path.join(self.journal_path, "data.mdb"))
        except OSError:
            return
        # Blocks, not st_size: the data file is sparse (its size is the map size, up to 1 TiB).
        metric = GaugeMetricFamily(PREFIX + "journal_disk_bytes",
                                   "Disk space the journal's LMDB data file takes")
        metric.add_metric([], stat.st_blocks * 512)
        yield metric


class MetricsServer:
    """prometheus-client's HTTP server on a daemon thread of the supervisor, with only our collector."""

    def __init__(self, collector: VenueCollector, host: str, port: int) -> None:
        from prometheus_client import start_http_server

        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(collector)
        self._server, self._thread = start_http_server(port, host, registry=self.registry)
        self.host = host
        self.port: int = self._server.server_address[1]

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5.0)


def serve_metrics(supervisor: Any, host: str, port: int) -> MetricsServer:
    """/metrics of the venue that `supervisor` (venue.supervisor.Supervisor) runs."""
    from core_cython.broadcast import pid_alive
    from venue.engine_service import run_dir

    def processes() -> list[ProcessView]:
        # Not Process.is_alive(): that reaps the child, which is the supervisor thread's business.
        views = []
        for child in supervisor.children():
            pid = child.process.pid if child.process is not None else None
            views.append(ProcessView(child.name.replace(" ", "-"), pid, bool(pid) and pid_alive(pid),
                                     child.restarts))
        return views

    collector = VenueCollector(run_dir(supervisor.config), supervisor.config.journal.path, processes,
                               supervisor.gateway_ids, supervisor.log)
    return MetricsServer(collector, host, port)
