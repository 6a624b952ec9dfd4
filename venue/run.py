"""`venue run`: the journaled engine, in funds mode, with a seeded demo order flow.

The pieces compose so that later gateways can replace or join the demo:
    open_venue(config)            -> JournaledEngine (recovered) + Edge with the assets, instruments,
                                     fees and limits defined (venue.bootstrap)
    open_accounts(...)            -> the demo accounts, created and funded once per journal
    StopSignal                    -> SIGINT/SIGTERM set a flag; the loop finishes its batch and exits
    run_flow(venue, source, ...)  -> submits request batches at a rate, prints trades and summaries
The journal is flushed and closed on every exit path (normal end, signal, error).
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, TextIO

import numpy as np

from core_cython.records import EventType, new_commands
from venue.bootstrap import VenueError, apply_markets, define_assets, define_instruments, open_accounts
from venue.config import ConfigError, VenueConfig, load_config
from venue.demo import DemoFlow, demo_account
from venue.edge import Edge, RequestError

__all__ = ["Venue", "VenueError", "main", "open_venue", "run_flow"]

MAX_BATCH = 1024  # requests per group commit when unthrottled
TICK_S = 0.01  # loop granularity when throttled: one batch per tick


@dataclass
class Venue:
    engine: Any  # journal.JournaledEngine
    edge: Edge
    config: VenueConfig
    recovered_at: tuple[int, int] = (0, 0)  # (cmd seq, event seq) found in the journal
    newly_defined: list[str] = field(default_factory=list)  # symbols this start added to the engine


@dataclass
class FlowStats:
    requests: int = 0
    events: int = 0
    trades: int = 0
    rejected: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


class StopSignal:
    """A flag that SIGINT and SIGTERM set (instead of raising mid-commit)."""

    def __init__(self) -> None:
        self.reason: str | None = None

    def __bool__(self) -> bool:
        return self.reason is not None

    def set(self, reason: str) -> None:
        self.reason = self.reason or reason

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.set(signal.Signals(signum).name)

    @contextmanager
    def installed(self) -> Iterator[StopSignal]:
        previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


# ---------------------------------------------------------------------------- opening the venue


@contextmanager
def open_venue(config: VenueConfig, *, progress: bool = False) -> Iterator[Venue]:
    """The recovered journaled engine and an edge that knows its instruments; flushed and closed after."""
    from journal import JournaledEngine  # the compiled engine is imported only when a venue runs

    settings = config.journal
    engine = JournaledEngine.open(settings.path, durability=settings.durability,  # type: ignore[arg-type]
                                  snapshot_every_events=settings.snapshot_interval, progress=progress,
                                  funds=True)
    try:
        recovered_at = (engine.last_cmd_seq, engine.last_event_seq)
        # Every integer order id used so far is <= the last cmd seq (one new id per command at most).
        edge = Edge(first_order_id=engine.last_cmd_seq + 1, funds=True,
                    account_defaults=(config.accounts.max_open_orders, config.accounts.tier))
        define_assets(engine, edge, config.assets)
        defined = define_instruments(engine, edge, config.instruments)
        apply_markets(engine, edge, config.markets)
        yield Venue(engine, edge, config, recovered_at, defined)
        engine.flush()
    finally:
        engine.close()


# ---------------------------------------------------------------------------- running a flow


def format_trade(trade: dict[str, Any]) -> str:
    return (f"trade #{trade['seq']:<8} {trade['symbol']:<10} {trade['side']:<4} {trade['qty']:>12} @ "
            f"{trade['price']:<12} taker {trade['taker_order']} ({trade['taker_account']})  "
            f"maker {trade['maker_order']} ({trade['maker_account']})")


def format_summary(venue: Venue, stats: FlowStats) -> str:
    elapsed = max(stats.elapsed, 1e-9)
    return (f"[{elapsed:7.1f}s] {stats.requests:,} requests  {stats.events:,} events "
            f"({stats.events / elapsed:,.0f}/s)  {stats.trades:,} trades  {stats.rejected:,} rejected  "
            f"last seq {venue.engine.last_event_seq:,}  live orders {venue.engine.engine.live_orders():,}")


def submit_requests(venue: Venue, requests: list[dict[str, Any]]) -> np.ndarray:
    """One group commit of requests; unusable ones are reported on stderr and skipped."""
    cmds = new_commands(2 * len(requests))  # a request may bring its account's creation along
    count = 0
    for request in requests:
        try:
            records, _problem = venue.edge.encode_records(request)
        except RequestError as exc:
            print(f"venue run: skipped request {request}: {exc}", file=sys.stderr)
            continue
        for record, _origin in records:
            cmds[count] = record
            count += 1
    events = venue.engine.submit(cmds[:count], time.time_ns())
    venue.edge.observe(events)
    return events


def run_flow(
    venue: Venue,
    next_requests: Callable[[int], list[dict[str, Any]]],
    stop: StopSignal,
    *,
    duration: float = 0.0,
    max_requests: int = 0,
    rate: float = 0.0,
    summary_every: float = 1.0,
    out: TextIO = sys.stdout,
    print_trades: bool = True,
) -> FlowStats:
    """Submit requests (rate per second, 0 = unthrottled) until stop, duration or max_requests."""
    stats = FlowStats()
    next_summary = summary_every
    while not stop:
        elapsed = stats.elapsed
        if duration and elapsed >= duration:
            stop.set(f"duration {duration:g} s reached")
            break
        if max_requests and stats.requests >= max_requests:
            stop.set(f"{max_requests:,} requests sent")
            break
        due = MAX_BATCH if not rate else min(MAX_BATCH, int(elapsed * rate) + 1 - stats.requests)
        if max_requests:
            due = min(due, max_requests - stats.requests)
        if due > 0:
            events = submit_requests(venue, next_requests(due))
            stats.requests += due
            stats.events += len(events)
            kinds = events["type"]
            trades = kinds == EventType.TRADE
            stats.trades += int(trades.sum())
            stats.rejected += int((kinds == EventType.REJECTED).sum())
            if print_trades and trades.any():
                for event in events[trades].tolist():
                    print(format_trade(venue.edge.decode(event)), file=out)
        else:
            time.sleep(min(TICK_S, max(0.0, (stats.requests + 1) / rate - elapsed)))
        if stats.elapsed >= next_summary:
            print(format_summary(venue, stats), file=out, flush=True)
            next_summary += summary_every * max(1, int((stats.elapsed - next_summary) / summary_every) + 1)
    return stats


# ---------------------------------------------------------------------------- the command


def overrides_from_args(args: argparse.Namespace) -> list[str]:
    """--set values, then the specific flags (which win)."""
    overrides = list(args.overrides or [])
    specific = {
        "journal.path": args.journal, "journal.durability": args.durability,
        "journal.snapshot_interval": args.snapshot_interval, "demo.duration": args.duration,
        "demo.orders": args.orders, "demo.rate": args.rate, "demo.seed": args.seed,
    }
    if args.orders is not None and args.duration is None:
        specific["demo.duration"] = 0  # --orders alone means "stop after N", not "or after 5 s"
    overrides += [f"{key}={value}" for key, value in specific.items() if value is not None]
    return overrides


def main(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    config = load_config(args.config, overrides_from_args(args))
    demo = config.demo
    stop = StopSignal()
    with stop.installed(), open_venue(config, progress=sys.stderr.isatty()) as venue:
        # Demo account ids are kept in the journal's meta: stable across runs.
        names = [demo_account(n) for n in range(1, demo.accounts + 1)]
        created = open_accounts(venue.engine, venue.edge, names, config.accounts, demo.funding)
        try:
            # Order "d<n>" gets engine id n: the demo's names match the journal's integers.
            flow = DemoFlow(demo, list(config.instruments), first_order=venue.edge.orders.next_number)
        except ValueError as exc:
            raise ConfigError(f"{config.source}: {exc}") from None
        symbols = ", ".join(i.symbol for _, i in venue.edge.instruments)
        new = f" (new: {', '.join(venue.newly_defined)})" if venue.newly_defined else ""
        print(f"venue run: journal {config.journal.path} ({config.journal.durability}) recovered at cmd seq "
              f"{venue.recovered_at[0]:,}, event seq {venue.recovered_at[1]:,}; instruments {symbols}{new}",
              file=out, flush=True)
        if created:
            funding = ", ".join(f"{amount} {asset}" for asset, amount in demo.funding.items()) or "nothing"
            print(f"venue run: created {', '.join(created)}, each funded with {funding}", file=out,
                  flush=True)
        stats = run_flow(venue, flow.requests, stop, duration=demo.duration, max_requests=demo.orders,
                         rate=demo.rate, summary_every=demo.summary_every, out=out,
                         print_trades=not args.quiet)
        print("total " + format_summary(venue, stats), file=out)
        venue.engine.flush()
        print(f"venue run: stopped ({stop.reason}); journal flushed at cmd seq "
              f"{venue.engine.last_cmd_seq:,}, event seq {venue.engine.last_event_seq:,}; "
              f"state hash {venue.engine.state_hash()}", file=out, flush=True)
    return 0
