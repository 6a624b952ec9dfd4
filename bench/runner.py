"""Benchmark the engine alone, behind the journal (async and sync), recovery, and the shared-memory
ring; targets beside results.

Each section runs in core mode (matching only) and in funds mode (accounts, pre-trade risk, holds,
fees and settlement postings) on the same measured order flow, side by side (--funds picks).

Entry points for the CLI: add_arguments(parser) and run(args) -> exit status. main(argv) runs it
standalone (python -m bench).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import engine_bench, journal_bench, ring_bench, step_bench
from bench.machine import machine_info
from bench.report import (
    E2E_LATENCY_TARGET,
    E2E_THROUGHPUT_TARGET,
    ENGINE_TARGET,
    JOURNAL_SYNC_TARGET,
    RECOVERY_TARGET,
    RING_TARGET,
    Printer,
    Target,
    fmt_ns,
    fmt_num,
    target_line,
)
from bench.workload import (
    FEES,
    MAKER_TIER_ACCOUNTS,
    MAX_NOTIONAL_LOTS,
    Workload,
    WorkloadConfig,
    generate,
    mix,
)
from bench.workload_file import WorkloadFileError, load_workload_file
from venue.argtypes import count, positive_int

SECTIONS = ("engine", "journal", "recovery", "ring", "step", "e2e")
# (producers, consumer wait strategy, planned messages/s in all; 0 = flat out)
RING_RUNS = ((1, "spin", 0), (4, "block", 0), (1, "block", 100_000))
RING_MESSAGES = 4_000_000
STEP_ORDERS = 20_000
STEP_THRASH_MB = (0.0, 1.0)  # memory touched between two steps: none (warm), about a gateway's share
# (label, journal durability, orders/s offered over 4 sessions, seconds, config overrides)
# (label, durability, rate, seconds, venue overrides, load generator options). "pinned": the venue
# (engine + gateway) on CPU 1, sharing it so that their hand-offs are plain context switches (and
# the engine does not spin: that would only delay the gateway), the load generator busy-polling on
# CPU 0 as a trading client on its own machine would (no timer wake-ups of its own).
_PINNED = ("engine.cpus=1", "sbe.cpus=1", "engine.spin_us=0")
_BUSY_CLIENT = {"busy_poll": True, "client_cpus": "0"}
_ENGINE_CORE = ("engine.cpus=1", "engine.spin_us=1000", "sbe.cpus=0", "sbe.busy_poll=true")
E2E_RUNS = (("latency", "async", 10_000, 10.0, (), {}),
            ("pinned", "async", 10_000, 10.0, _PINNED, _BUSY_CLIENT),
            ("pinned+polls", "async", 10_000, 10.0, (*_PINNED, "sbe.busy_poll=true"), _BUSY_CLIENT),
            # the engine alone on CPU 1, never sleeping at this rate; gateway (polling) and a
            # sleeping client share CPU 0: no wake-up is left but the client's own timer
            ("engine core", "async", 10_000, 10.0, _ENGINE_CORE, {"client_cpus": "0"}),
            ("all polling", "async", 10_000, 10.0, _ENGINE_CORE, _BUSY_CLIENT),  # no one sleeps
            ("latency", "sync", 10_000, 10.0, (), {}),
            ("throughput", "async", 150_000, 5.0, (), {}))
DEFAULT_BATCH = 2048
DEFAULTS = WorkloadConfig()
FUNDS_CHOICES = {"off": (False,), "on": (True,), "both": (False, True)}
MODE_KEY = {False: "core", True: "funds"}
MODE_HEADING = {False: "core only", True: "risk + settlement"}
TARGETS: dict[str, Target] = {"engine_commands_per_s": ENGINE_TARGET,
                              "journal_sync_events_per_s": JOURNAL_SYNC_TARGET,
                              "recovery_s_per_million_events": RECOVERY_TARGET}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=count, default=DEFAULTS.seed,
                        help="workload seed (default %(default)s)")
    parser.add_argument("--commands", type=positive_int, default=DEFAULTS.commands, metavar="N",
                        help="measured commands (default %(default)s; at least 1000)")
    parser.add_argument("--batch", type=positive_int, default=DEFAULT_BATCH, metavar="N",
                        help="commands per journal group commit (default %(default)s)")
    parser.add_argument("--only", choices=SECTIONS, help="run one section only")
    parser.add_argument("--funds", choices=tuple(FUNDS_CHOICES), default="both",
                        help="engine mode of every section: off = core matching only, on = funds mode "
                             "(pre-trade risk, holds, fees, settlement postings), both = side by side "
                             "(default %(default)s)")
    parser.add_argument("--json", nargs="?", const="-", metavar="FILE",
                        help="also write machine-readable results (to FILE, or stdout after the text)")
    parser.add_argument("--workload", metavar="FILE",
                        help="measure a `venue match` JSONL command file instead of the synthetic flow "
                             "(core mode only)")
    parser.add_argument("--preload", type=count, default=DEFAULTS.preload, metavar="N",
                        help="resting orders placed before measuring (default %(default)s)")
    parser.add_argument("--symbols", type=positive_int, default=DEFAULTS.symbols, metavar="N",
                        help="instruments of the synthetic flow (default %(default)s)")
    parser.add_argument("--accounts", type=positive_int, default=DEFAULTS.accounts, metavar="N",
                        help="accounts of the synthetic flow (default %(default)s)")
    parser.add_argument("--snapshot-every", type=count, default=None, metavar="EVENTS",
                        help="journal snapshot interval in events (default: the journal's; 0 = none)")
    parser.add_argument("--dir", metavar="DIR",
                        help="parent of the run's fresh journal directory (default: the system temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the journals after the run")
    parser.add_argument("--e2e-seconds", type=float, default=None, metavar="S",
                        help="seconds of each end-to-end run (default: 10 for latency, 5 for throughput)")
    parser.add_argument("--ring-messages", type=positive_int, default=RING_MESSAGES, metavar="N",
                        help="messages per flat-out ring run (default %(default)s; a paced run sends "
                             "at most 3 s worth)")
    parser.add_argument("--step-orders", type=positive_int, default=STEP_ORDERS, metavar="N",
                        help="orders of each engine-step run, one per step (default %(default)s)")


def _workload(args: argparse.Namespace) -> Workload:
    if args.workload:
        return load_workload_file(args.workload)
    return generate(WorkloadConfig(seed=args.seed, commands=args.commands, symbols=args.symbols,
                                   accounts=args.accounts, preload=args.preload))


def _modes(args: argparse.Namespace, wl: Workload) -> tuple[bool, ...]:
    modes = FUNDS_CHOICES[args.funds]
    if wl.funds_setup is None:
        if args.funds == "on":
            raise ValueError("funds mode needs the synthetic flow (a workload file brings no deposits)")
        return (False,)
    return modes


def _snapshot_every(args: argparse.Namespace) -> int:
    if args.snapshot_every is not None:
        return args.snapshot_every
    from journal.sequencer import DEFAULT_SNAPSHOT_EVERY_EVENTS

    return DEFAULT_SNAPSHOT_EVERY_EVENTS


def _funds_setup_text(wl: Workload) -> str:
    c, fc = wl.config, wl.funds_counts
    assert c is not None
    tiers = ", ".join(f"tier {t} maker {m:+d} / taker {k} bps" for t, (m, k) in sorted(FEES.items()))
    return (f"{fc['assets']} assets; {c.symbols} instruments with exact base/quote multipliers; fees {tiers} "
            f"(tier 1: the {MAKER_TIER_ACCOUNTS} most active accounts); max notional per order "
            f"{MAX_NOTIONAL_LOTS:,} lots at 2x the starting mid; {fc['accounts']:,} accounts created and "
            f"funded by {fc['deposits']:,} deposits with what their orders would hold, "
            f"{fc['underfunded_accounts']:,} of them ({c.underfunded:.0%}, seeded) with a random fraction "
            f"of their stream's needs; {fc['setup']:,} setup commands incl. the preload, untimed")


def _config(args: argparse.Namespace, wl: Workload, sections: tuple[str, ...], modes: tuple[bool, ...],
            work_dir: str, gen_seconds: float) -> dict[str, Any]:
    shares = mix(wl.commands)
    config: dict[str, Any] = {"sections": ",".join(sections)}
    config["engine modes"] = " and ".join(
        "core only (funds off)" if not f else "risk + settlement (funds on)" for f in modes)
    if wl.config is not None:
        c = wl.config
        config |= {"workload": f"synthetic, seed {c.seed}, generated in {gen_seconds:.2f} s before timing",
                   "measured commands": f"{c.commands:,}" + (", the same stream in both modes"
                                                             if len(modes) > 1 else ""),
                   "preloaded orders": f"{c.preload:,} resting (untimed)",
                   "instruments": c.symbols, "accounts": f"{c.accounts:,}"}
        if True in modes:
            config["funds setup"] = _funds_setup_text(wl)
    else:
        config |= {"workload": f"file {wl.source}, decoded in {gen_seconds:.2f} s before timing",
                   "measured commands": f"{wl.commands.size:,} "
                                        f"({wl.counts.get('bad_lines', 0)} bad lines skipped)",
                   "instruments": wl.instruments}
        if args.funds == "both":
            config["engine modes"] += " (a workload file has no funds setup)"
    config["command mix"] = " ".join(f"{k} {v:.1%}" for k, v in shares.items())
    config["engine calls"] = f"{engine_bench.CHUNK:,} commands per process() call"
    if "journal" in sections or "recovery" in sections:
        config["journal batch"] = f"{args.batch:,} commands per group commit"
        config["durability"] = "async and sync" if "journal" in sections else "async (recovery input only)"
        every = _snapshot_every(args)
        config["snapshots"] = f"every {every:,} events" if every else "none"
        config["journal dir"] = f"{work_dir} ({journal_bench.fs_type(work_dir)})"
    return config


def _target_key(name: str, funds: bool) -> str:
    head, _, tail = name.partition("_")
    return f"{head}_funds_{tail}" if funds else name


def _verdict(result: dict[str, Any], name: str, funds: bool, value: float) -> str:
    target = TARGETS[name]
    result["targets"][_target_key(name, funds)] = target.verdict(value)
    return "met" if target.met(value) else "NOT MET"


def run(args: argparse.Namespace) -> int:
    sections = SECTIONS if args.only is None else (args.only,)
    out = Printer()
    t0 = time.perf_counter()
    try:
        wl = _workload(args)
        modes = _modes(args, wl)
    except (WorkloadFileError, ValueError) as exc:
        print(f"venue bench: error: {exc}", file=sys.stderr)
        return 1
    gen_seconds = time.perf_counter() - t0

    try:
        if args.dir:
            Path(args.dir).mkdir(parents=True, exist_ok=True)
        work_dir = tempfile.mkdtemp(prefix="venue-bench-", dir=args.dir)  # fresh: never recovers old data
    except OSError as exc:
        print(f"venue bench: error: cannot create a journal directory in {args.dir}: {exc.strerror}",
              file=sys.stderr)
        return 1
    machine = machine_info()
    config = _config(args, wl, sections, modes, work_dir, gen_seconds)
    result: dict[str, Any] = {"machine": machine, "config": config, "modes": [MODE_KEY[f] for f in modes],
                              "targets": {}}
    if wl.config is not None:
        result["workload"] = {"seed": wl.config.seed, "commands": wl.commands.size,
                              "preload": wl.config.preload, "symbols": wl.config.symbols,
                              "accounts": wl.config.accounts, "mix": mix(wl.commands)}
        if True in modes:
            result["workload"]["funds_setup"] = dict(wl.funds_counts, underfunded_share=wl.config.underfunded)
    else:
        result["workload"] = {"file": wl.source, "commands": wl.commands.size, "mix": mix(wl.commands)}
    out.header(machine, config)
    try:
        if "engine" in sections:
            _section_engine(out, wl, modes, result)
        sync_journals: dict[bool, journal_bench.JournalResult] = {}
        if "journal" in sections:
            sync_journals = _section_journal(out, wl, modes, args, work_dir, result)
        if "recovery" in sections:
            _section_recovery(out, wl, modes, args, work_dir, sync_journals, result)
        if "ring" in sections:
            _section_ring(out, result, args.ring_messages)
        if "step" in sections:
            _section_step(out, result, args.step_orders, args.seed)
        if "e2e" in sections:
            _section_e2e(out, result, args.seed, args.e2e_seconds)
    finally:
        if args.keep:
            out.emit(f"\njournals kept in {work_dir}")
        else:
            shutil.rmtree(work_dir, ignore_errors=True)
    _summary(out, result)
    if args.json:
        text = json.dumps(result, indent=2, default=str)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n", encoding="utf-8")
    return 0


def _share(n: int, of: int) -> str:
    return f"{n:,} ({n / of:.1%})" if n else "-"


LATENCIES = ("p50", "p99", "p99.9", "max")


def _engine_cells(r: engine_bench.EngineResult, d: dict[str, Any], reasons: list[str],
                  types: list[str]) -> list[str]:
    """One column of section [1]; rows as in _section_engine."""
    return [
        fmt_num(d["commands_per_s"]),
        fmt_num(d["events_per_s"]),
        f"{r.commands:,} -> {r.events:,}",
        f"{r.seconds:.3f} s",
        f"{d['postings_per_command']:.2f}",
        *(fmt_ns(r.latency_ns[k]) for k in LATENCIES),
        f"{r.live_orders_start:,}",
        f"{r.live_orders_end:,}",
        "yes" if r.same_state else "NO",
        f"{sum(r.setup_rejects.values()):,} of {r.setup_commands:,}",
        f"{r.links_live:.1%}" if r.links else "-",
        f"{d['bytes_per_resting_order']:,.0f} bytes",
        _share(sum(r.rejects.values()), r.commands),
        *(_share(r.rejects.get(k, 0), r.commands) for k in reasons),
        "",
        *(f"{r.event_types[t]:,}" if r.event_types.get(t) else "-" for t in types),
    ]


def _section_engine(out: Printer, wl: Workload, modes: tuple[bool, ...], result: dict[str, Any]) -> None:
    runs = [engine_bench.run_engine(wl, f) for f in modes]
    dicts = [r.as_dict() for r in runs]
    for f, d in zip(modes, dicts, strict=True):
        d["bytes_per_resting_order"] = engine_bench.memory_per_resting_order(f)
    # Reject reasons and event types seen in any mode, most frequent first.
    reasons = sorted({k for r in runs for k in r.rejects},
                     key=lambda k: -max(r.rejects.get(k, 0) for r in runs))
    types = [t for t in runs[0].event_types if any(r.event_types.get(t) for r in runs)]
    labels = ["commands/s", "events/s", "commands -> events", "untimed run", "postings per command",
              *(f"latency {k}" for k in LATENCIES), "live orders before", "live orders after",
              "both runs same state", "setup rejects (untimed)", "cancels/replaces live",
              "memory/resting order", "rejected (of commands)", *(f"  {k}" for k in reasons),
              "events by type", *(f"  {t}" for t in types)]
    columns = [_engine_cells(r, d, reasons, types) for r, d in zip(runs, dicts, strict=True)]
    rows = [(label, list(cells)) for label, *cells in zip(labels, *columns, strict=True)]
    rows.append((f"target {ENGINE_TARGET.describe()}",
                 [_verdict(result, "engine_commands_per_s", r.funds, d["commands_per_s"])
                  for r, d in zip(runs, dicts, strict=True)]))
    out.section("[1] engine in-process (no journal)")
    out.table([MODE_HEADING[f] for f in modes], rows)
    out.emit("  throughput from a run without timers; latency per command from process_timed on a fresh "
             "engine, same setup and flow")
    result["engine"] = {MODE_KEY[f]: d for f, d in zip(modes, dicts, strict=True)}


def _section_journal(out: Printer, wl: Workload, modes: tuple[bool, ...], args: argparse.Namespace,
                     work_dir: str, result: dict[str, Any]) -> dict[bool, journal_bench.JournalResult]:
    runs: dict[tuple[str, bool], journal_bench.JournalResult] = {}
    for f in modes:
        for durability in ("async", "sync"):
            path = str(Path(work_dir) / f"journal-{MODE_KEY[f]}-{durability}")
            runs[durability, f] = journal_bench.run_journal(wl, durability, args.batch, path,
                                                            _snapshot_every(args), f)
            if durability == "async" and not args.keep:
                shutil.rmtree(path, ignore_errors=True)  # only the sync journal is recovered in [3]
    rows: list[tuple[str, list[str]]] = []
    for durability in ("async", "sync"):
        what = "OS page cache, fsync every 50 ms" if durability == "async" else "fsync per batch"
        rows.append((f"{durability} ({what})", []))
        mine = [runs[durability, f] for f in modes]
        rows += [
            ("  events/s", [fmt_num(r.as_dict()["events_per_s"]) for r in mine]),
            ("  commands/s", [fmt_num(r.as_dict()["commands_per_s"]) for r in mine]),
            ("  commands -> events", [f"{r.commands:,} -> {r.events:,}" for r in mine]),
            ("  batches, seconds", [f"{r.batches:,} in {r.seconds:.3f} s" for r in mine]),
        ]
        rows += [(f"  latency {k}", [fmt_ns(r.latency_ns[k]) for r in mine]) for k in LATENCIES]
        rows += [
            ("  snapshots in the run", [f"{r.snapshots}" for r in mine]),
            ("  journal size", [f"{r.journal_bytes / 2**20:,.0f} MiB" for r in mine]),
        ]
    rows.append((f"target sync {JOURNAL_SYNC_TARGET.describe()}",
                 [_verdict(result, "journal_sync_events_per_s", f, runs["sync", f].as_dict()["events_per_s"])
                  for f in modes]))
    out.section(f"[2] engine + journal, group commit of {args.batch:,} commands "
                "(latency = batch start -> batch committed)")
    out.table([MODE_HEADING[f] for f in modes], rows)
    result["journal"] = {MODE_KEY[f]: {d: runs[d, f].as_dict() for d in ("async", "sync")} for f in modes}
    return {f: runs["sync", f] for f in modes}


def _section_recovery(out: Printer, wl: Workload, modes: tuple[bool, ...], args: argparse.Namespace,
                      work_dir: str, sync_journals: dict[bool, journal_bench.JournalResult],
                      result: dict[str, Any]) -> None:
    runs: dict[bool, journal_bench.RecoveryResult] = {}
    for f in modes:
        if f in sync_journals:
            j = sync_journals[f]
            path, expected, source = j.path, j.state_hash, "the sync journal of [2]"
        else:
            path = str(Path(work_dir) / f"journal-{MODE_KEY[f]}-recovery")
            expected = journal_bench.build_journal(wl, path, args.batch, _snapshot_every(args), f)
            source = "a journal of the workload built untimed"
        runs[f] = journal_bench.run_recovery(path, expected, source, f)
    mine = [runs[f] for f in modes]
    rows = [
        ("journal", [("sync journal of [2]" if f in sync_journals else "built untimed") for f in modes]),
        ("events (commands)", [f"{r.events:,} ({r.commands:,})" for r in mine]),
        ("full replay", [f"{r.replay_seconds:.3f} s" for r in mine]),
        ("s per million events", [f"{r.seconds_per_million:.3f}" for r in mine]),
        ("commands replayed/s", [fmt_num(r.commands / r.replay_seconds) if r.replay_seconds else "-"
                                 for r in mine]),
        ("open(): snapshot + tail", [f"{r.snapshot_seconds:.3f} s" for r in mine]),
        ("same state as journaled", ["yes" if r.same_state else "NO" for r in mine]),
        (f"target {RECOVERY_TARGET.describe()}",
         [_verdict(result, "recovery_s_per_million_events", r.funds, r.seconds_per_million) for r in mine]),
    ]
    out.section("[3] recovery from the journal (warm page cache; open() is what a restart does)")
    out.table([MODE_HEADING[f] for f in modes], rows)
    result["recovery"] = {MODE_KEY[f]: runs[f].as_dict() for f in modes}


def _section_ring(out: Printer, result: dict[str, Any], messages: int) -> None:
    """Gateway processes -> engine: request slots from producer processes to this one."""
    runs = [ring_bench.run_ring(p, messages if not rate else min(messages, rate * 3), wait, rate)
            for p, wait, rate in RING_RUNS]
    headings = [f"{r.producers} producer{'s' * (r.producers > 1)}, {r.wait}"
                + (f", {fmt_num(r.rate)}/s" if r.rate else ", flat out") for r in runs]
    rows = [("messages/s", [fmt_num(r.messages_per_s) for r in runs]),
            ("messages", [f"{r.messages:,}" for r in runs]),
            *((f"latency {k}", [fmt_ns(r.latency_ns[k]) for r in runs]) for k in LATENCIES),
            ("ring full: retries", [f"{r.full_retries:,}" for r in runs]),
            ("dropped / skipped", [f"{r.dropped} / {r.skipped}" for r in runs])]
    result["targets"]["ring_messages_per_s"] = RING_TARGET.verdict(runs[0].messages_per_s)
    rows.append((f"target {RING_TARGET.describe()}",
                 ["met" if RING_TARGET.met(runs[0].messages_per_s) else "NOT MET", "", ""]))
    out.section(f"[4] shared-memory ring, {ring_bench.RING_CAPACITY:,} slots of 112-byte requests "
                "(producer processes -> this process)")
    out.table(headings, rows, width=34)
    out.emit("  latency = planned (paced) or actual publish time -> taken by the consumer; flat out it is "
             "mostly queueing in a full ring")
    result["ring"] = [r.as_dict() for r in runs]


def _section_step(out: Printer, result: dict[str, Any], orders: int, seed: int) -> None:
    """The engine process's step() in this process, one order per step."""
    runs = [step_bench.run_step(mb, orders, seed) for mb in STEP_THRASH_MB]
    headings = ["warm (tight loop)" if not r.thrash_mb else f"{r.thrash_mb:g} MB touched between steps"
                for r in runs]
    rows = [("steps/s (busy)", [fmt_num(r.steps_per_s) for r in runs]),
            ("orders (one per step)", [f"{r.steps:,}" for r in runs]),
            ("events", [f"{r.events:,}" for r in runs]),
            *((f"latency {k}", [fmt_ns(r.latency_ns[k]) for r in runs]) for k in LATENCIES)]
    out.section(f"[5] engine step: take a request from the command ring, match, async journal commit, "
                f"publish the outcomes (one order a step, seed {seed})")
    out.table(headings, rows, width=34)
    out.emit("  latency = one EngineService.step() in this process; memory touched between steps stands "
             "in for a gateway sharing the engine's core")
    result["step"] = [r.as_dict() for r in runs]


def _section_e2e(out: Printer, result: dict[str, Any], seed: int, seconds: float | None) -> None:
    """venue loadgen against engine + SBE gateway processes, started as `venue run` starts them."""
    from bench import e2e_bench
    from bench.stalls import measure_stalls as stall_floor

    runs = [e2e_bench.run_e2e(label, durability=durability, rate=rate, duration=seconds or duration,
                              seed=seed, extra=list(extra), **client)
            for label, durability, rate, duration, extra, client in E2E_RUNS]
    headings = [f"{r.label} {r.rate / 1000:g}k/s {r.durability}" for r in runs]
    lat = [r.latency_us for r in runs]
    lg = [r.loadgen for r in runs]
    rows = [("orders sent / answered", [f"{x['sent']:,} / {x['answered']:,}" for x in lg]),
            ("orders answered per s", [fmt_num(round(r.answered_per_s)) for r in runs]),
            *((f"round trip {k}", [f"{x[k]:,.0f} us" for x in lat]) for k in ("p50", "p99", "p99.9", "max")),
            ("to the engine p50 / p99", [_pair(x["to_engine_us"]) for x in lg]),
            ("back from it p50 / p99", [_pair(x["from_engine_us"]) for x in lg]),
            ("client send lag p99", [f"{x['send_lag_us']['p99']:,.0f} us" for x in lg]),
            ("trades", [f"{x['trades']:,}" for x in lg]),
            ("engine batches (commands each)", [_batches(r.engine) for r in runs]),
            ("unanswered / busy / throttled", [f"{x['unanswered']} / {x['responses'].get('busy', 0)} / "
                                               f"{x['responses'].get('throttled', 0)}" for x in lg])]
    # The target is judged on the best placement of the async journal (each run says which it is).
    latency = min((r for r in runs if r.rate == 10_000 and r.durability == "async"),
                  key=lambda r: r.latency_us["p99"])
    throughput = next(r for r in runs if r.label == "throughput")
    result["targets"]["e2e_p99_us"] = E2E_LATENCY_TARGET.verdict(latency.latency_us["p99"]) | {
        "run": latency.label}
    result["targets"]["e2e_orders_per_s"] = E2E_THROUGHPUT_TARGET.verdict(throughput.answered_per_s)
    out.section(f"[6] end to end over loopback: venue loadgen -> SBE gateway -> rings -> engine + journal "
                f"-> back (4 sessions, seed {seed})")
    out.table(headings, rows, width=30)
    stalls = stall_floor(seconds or 5.0)
    for cpu in stalls:
        counts = ", ".join(f"{k}: {v}" for k, v in cpu.stalls.items())
        out.emit(f"  machine floor, CPU {cpu.cpu}: a thread that never sleeps lost {cpu.lost_percent:.1f}%"
                 f" of {cpu.seconds:.0f} s to stalls ({counts}; "
                 f"longest {cpu.longest_us:,.0f} us); an event at a random instant waits p99 "
                 f"{cpu.event_delay_us['p99']:,.0f} us, p99.9 {cpu.event_delay_us['p99.9']:,.0f} us")
    result["machine_stalls"] = [cpu.as_dict() for cpu in stalls]
    if stalls:  # the round trip crosses both CPUs: no placement beats the worse one's floor
        worst = max(stalls, key=lambda cpu: cpu.event_delay_us["p99"])
        result["targets"]["e2e_p99_us"]["machine_floor"] = {"cpu": worst.cpu,
                                                            "p99_us": worst.event_delay_us["p99"]}
    out.emit("  round trip = planned send time of a NewOrder -> its first answer at the client (no "
             "coordinated omission), split at the engine's transactTime stamp; loadgen, gateway and "
             "engine share the machine's cores; pinned = engine + gateway on CPU 1 (engine.cpus, "
             "sbe.cpus, engine.spin_us=0), the load generator busy-polling on CPU 0 (--busy-poll "
             "--cpus 0); +polls = and the gateway polls (sbe.busy_poll); engine core = the engine alone on "
             "CPU 1 spinning (engine.spin_us=1000), the polling gateway and a sleeping client on CPU 0; all "
             "polling = the same with the client busy-polling too (both yield between rounds)")
    result["e2e"] = [r.as_dict() for r in runs]


def _pair(summary: dict[str, float]) -> str:
    return f"{summary['p50']:,.0f} / {summary['p99']:,.0f} us"


def _batches(engine: dict[str, Any]) -> str:
    batches = engine.get("batches", 0)
    return f"{batches:,} ({engine.get('commands', 0) / max(1, batches):.1f})"


def _summary(out: Printer, result: dict[str, Any]) -> None:
    if not result["targets"]:
        return
    out.section("targets")
    ring = result["targets"].get("ring_messages_per_s")
    if ring is not None:
        out.emit(f"  {RING_TARGET.name:<46} {target_line(RING_TARGET, ring['measured'])}")
    for key, target in (("e2e_p99_us", E2E_LATENCY_TARGET), ("e2e_orders_per_s", E2E_THROUGHPUT_TARGET)):
        verdict = result["targets"].get(key)
        if verdict is not None:
            run = f" (best run: {verdict['run']})" if "run" in verdict else ""
            out.emit(f"  {target.name:<46} {target_line(target, verdict['measured'])}{run}")
            floor = verdict.get("machine_floor")
            if floor is not None:
                above = floor["p99_us"] >= target.threshold
                out.emit(f"  {'':<46} machine floor: an event at a random instant waits p99 "
                         f"{floor['p99_us']:,.0f} us on CPU {floor['cpu']}"
                         + (" -> the target is out of reach on this host now" if above else ""))
    for name, target in TARGETS.items():
        for funds in (False, True):
            verdict = result["targets"].get(_target_key(name, funds))
            if verdict is not None:
                label = f"{target.name} ({MODE_HEADING[funds]})"
                out.emit(f"  {label:<46} {target_line(target, verdict['measured'])}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="venue bench", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))
