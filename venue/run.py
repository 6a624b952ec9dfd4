"""`venue run`: the venue's processes, and a seeded demo order flow through its SBE gateway.

    supervisor (this process) -> engine process (venue.engine_service: journal + engine, funds mode)
                              -> SBE gateway process (sbe_gateway.server), restarted if it dies
                              -> the demo flow (venue.demo_client), a client of the gateway
The pieces it uses:
    open_venue(config)            -> JournaledEngine (recovered) + Edge with the assets, instruments,
                                     fees and limits defined (venue.bootstrap); the engine process
                                     and offline admin commands open the journal this way
    prepare_demo_accounts(...)    -> the demo accounts, created and funded once per journal
    StopSignal                    -> SIGINT/SIGTERM set a flag; everything stops in order
The journal is flushed and closed on every exit path of the engine (normal end, signal, error).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, TextIO

import numpy as np

from core_cython.records import new_commands
from venue.bootstrap import VenueError, apply_markets, define_assets, define_instruments, open_accounts
from venue.config import VenueConfig, load_config
from venue.demo import demo_account
from venue.edge import Edge, RequestError
from venue.supervisor import StopSignal

__all__ = ["Venue", "VenueError", "main", "open_venue", "prepare_demo_accounts", "submit_requests"]


@dataclass
class Venue:
    engine: Any  # journal.JournaledEngine
    edge: Edge
    config: VenueConfig
    recovered_at: tuple[int, int] = (0, 0)  # (cmd seq, event seq) found in the journal
    newly_defined: list[str] = field(default_factory=list)  # symbols this start added to the engine


# ---------------------------------------------------------------------------- opening the venue


def _writemap(setting: str, durability: str) -> bool | None:
    """journal.writemap: auto = the journal decides (async mode, a filesystem where it is safe); on =
    in async mode whatever the filesystem; off = never."""
    if setting == "auto":
        return None
    return setting == "on" and durability == "async"


@contextmanager
def open_venue(config: VenueConfig, *, progress: bool = False) -> Iterator[Venue]:
    """The recovered journaled engine and an edge that knows its instruments; flushed and closed after."""
    from journal import JournaledEngine  # the compiled engine is imported only when a venue runs

    settings = config.journal
    engine = JournaledEngine.open(settings.path, durability=settings.durability,  # type: ignore[arg-type]
                                  snapshot_every_events=settings.snapshot_interval, progress=progress,
                                  funds=True, writemap=_writemap(settings.writemap, settings.durability))
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


# ---------------------------------------------------------------------------- requests in process


def submit_requests(venue: Venue, requests: list[dict[str, Any]]) -> np.ndarray:
    """One group commit of requests in the input vocabulary (tools and tests that own the journal);
    unusable ones are reported on stderr and skipped."""
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


def prepare_demo_accounts(venue: Venue, config: VenueConfig) -> tuple[list[str], dict[str, int]]:
    """Create and fund the demo accounts once per journal; returns (created now, name -> account id)."""
    names = [demo_account(n) for n in range(1, config.demo.accounts + 1)]
    created = open_accounts(venue.engine, venue.edge, names, config.accounts, config.demo.funding)
    return created, {name: venue.edge.accounts.id(name) for name in names}


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


def start_metrics(supervisor: Any, log: Callable[[str], None]) -> Any:
    """The supervisor's /metrics (venue.metrics), if enabled; a port that is taken costs the venue its
    metrics, not its trading."""
    from venue.metrics import serve_metrics

    settings = supervisor.config.metrics
    if not settings.enabled:
        return None
    try:
        server = serve_metrics(supervisor, settings.host, settings.port)
    except OSError as exc:
        log(f"metrics: cannot listen on {settings.host}:{settings.port} ({exc.strerror or exc}); "
            "running without /metrics")
        return None
    log(f"metrics at {server.url}")
    return server


def main(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    from sbe_gateway.server import gateway_main
    from venue.demo_client import DemoClient
    from venue.supervisor import Supervisor

    config = load_config(args.config, overrides_from_args(args))
    if args.port is not None:
        config = replace(config, sbe=replace(config.sbe, port=args.port))
    demo = config.demo

    def log(message: str) -> None:
        print(f"venue run: {message}", file=out, flush=True)

    stop = StopSignal()
    supervisor = Supervisor(config, log)
    failure: str | None = None
    metrics = None
    with stop.installed():
        try:
            ready = supervisor.start_engine()
            symbols = ", ".join(ready["instruments"])
            new = f" (new: {', '.join(ready['newly_defined'])})" if ready["newly_defined"] else ""
            recovered = ready["recovered_at"]
            log(f"journal {config.journal.path} ({config.journal.durability}) recovered at cmd seq "
                f"{recovered[0]:,}, event seq {recovered[1]:,}; instruments {symbols}{new}")
            if ready["demo_accounts_created"]:
                funding = ", ".join(f"{amount} {asset}" for asset, amount in demo.funding.items())
                funding = funding or "nothing"
                log(f"created {', '.join(ready['demo_accounts_created'])}, each funded with {funding}")
            log(f"engine running (pid {ready['pid']}), rings in {ready['run_dir']}")
            if ready["discarded_requests"]:
                log(f"discarded {ready['discarded_requests']:,} requests left in the command ring by a "
                    "previous run that did not stop cleanly (their sessions are gone)")
            gateway = supervisor.start_gateway(1, gateway_main, port=config.sbe.port)
            log(f"sbe gateway listening on {gateway['host']}:{gateway['port']} (pid {gateway['pid']})")
            metrics = start_metrics(supervisor, log)
            stats = None
            if not args.no_demo:
                # Order "d<n>" is clOrdId n: above every earlier run's, as the journal's cmd seq is.
                client = DemoClient(config, gateway["host"], gateway["port"], ready["demo_accounts"],
                                    ready["symbol_ids"], first_order=ready["next_order"], out=out,
                                    print_trades=not args.quiet)

                def tick() -> None:
                    message = supervisor.check()
                    if message:
                        raise VenueError(message)

                stats = client.run(stop, tick, duration=demo.duration, max_requests=demo.orders,
                                   rate=demo.rate, summary_every=demo.summary_every)
                print("total " + stats.summary(), file=out)
            while not stop:
                if demo.duration and stats is None and time.monotonic() - supervisor.started >= demo.duration:
                    stop.set(f"duration {demo.duration:g} s reached")
                    break
                message = supervisor.check()
                if message:
                    failure = message
                    break
                supervisor.wait(0.2)
        except VenueError as exc:
            if supervisor.engine is None or supervisor.engine.process is None:
                raise
            failure = str(exc)
        except (ConnectionError, TimeoutError) as exc:  # the demo lost its gateway
            failure = f"demo flow: {exc}"
        finally:
            final = supervisor.stop()  # whatever happened: gateways, then the engine (journal flushed)
            if metrics is not None:
                metrics.close()
            if final and not failure:  # a clean stop: nothing in the rings is needed any more
                from venue.engine_service import remove_run_dir

                remove_run_dir(config)
    if failure:
        print(f"venue run: error: {failure}", file=sys.stderr)
        return 1
    if final:
        print(f"venue run: stopped ({stop.reason}); journal flushed at cmd seq {final['cmd_seq']:,}, "
              f"event seq {final['event_seq']:,}; state hash {final['state_hash']}", file=out, flush=True)
    return 0
