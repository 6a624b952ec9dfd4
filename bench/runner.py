"""Benchmark the engine alone, behind the journal (async and sync), and recovery; targets beside results.

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

from bench import engine_bench, journal_bench
from bench.machine import machine_info
from bench.report import (
    ENGINE_TARGET,
    JOURNAL_SYNC_TARGET,
    RECOVERY_TARGET,
    Printer,
    fmt_latency,
    fmt_num,
    target_line,
)
from bench.workload import Workload, WorkloadConfig, generate, mix
from bench.workload_file import WorkloadFileError, load_workload_file
from venue.argtypes import count, positive_int

SECTIONS = ("engine", "journal", "recovery")
DEFAULT_BATCH = 2048
DEFAULTS = WorkloadConfig()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=count, default=DEFAULTS.seed,
                        help="workload seed (default %(default)s)")
    parser.add_argument("--commands", type=positive_int, default=DEFAULTS.commands, metavar="N",
                        help="measured commands (default %(default)s; at least 1000)")
    parser.add_argument("--batch", type=positive_int, default=DEFAULT_BATCH, metavar="N",
                        help="commands per journal group commit (default %(default)s)")
    parser.add_argument("--only", choices=SECTIONS, help="run one section only")
    parser.add_argument("--json", nargs="?", const="-", metavar="FILE",
                        help="also write machine-readable results (to FILE, or stdout after the text)")
    parser.add_argument("--workload", metavar="FILE",
                        help="measure a `venue match` JSONL command file instead of the synthetic flow")
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


def _workload(args: argparse.Namespace) -> Workload:
    if args.workload:
        return load_workload_file(args.workload)
    return generate(WorkloadConfig(seed=args.seed, commands=args.commands, symbols=args.symbols,
                                   accounts=args.accounts, preload=args.preload))


def _snapshot_every(args: argparse.Namespace) -> int:
    if args.snapshot_every is not None:
        return args.snapshot_every
    from journal.sequencer import DEFAULT_SNAPSHOT_EVERY_EVENTS

    return DEFAULT_SNAPSHOT_EVERY_EVENTS


def _config(args: argparse.Namespace, wl: Workload, sections: tuple[str, ...], work_dir: str,
            gen_seconds: float) -> dict[str, Any]:
    shares = mix(wl.commands)
    config: dict[str, Any] = {"sections": ",".join(sections)}
    if wl.config is not None:
        c = wl.config
        config |= {"workload": f"synthetic, seed {c.seed}, generated in {gen_seconds:.2f} s before timing",
                   "measured commands": f"{c.commands:,}",
                   "preloaded orders": f"{c.preload:,} resting (untimed)",
                   "instruments": c.symbols, "accounts": f"{c.accounts:,}"}
    else:
        config |= {"workload": f"file {wl.source}, decoded in {gen_seconds:.2f} s before timing",
                   "measured commands": f"{wl.commands.size:,} "
                                        f"({wl.counts.get('bad_lines', 0)} bad lines skipped)",
                   "instruments": wl.instruments}
    config["command mix"] = " ".join(f"{k} {v:.1%}" for k, v in shares.items())
    config["engine calls"] = f"{engine_bench.CHUNK:,} commands per process() call"
    if "journal" in sections or "recovery" in sections:
        config["journal batch"] = f"{args.batch:,} commands per group commit"
        config["durability"] = "async and sync" if "journal" in sections else "async (recovery input only)"
        every = _snapshot_every(args)
        config["snapshots"] = f"every {every:,} events" if every else "none"
        config["journal dir"] = f"{work_dir} ({journal_bench.fs_type(work_dir)})"
    return config


def _event_tally(engine_events: dict[str, int]) -> str:
    return "  ".join(f"{k} {v:,}" for k, v in engine_events.items() if v)


def run(args: argparse.Namespace) -> int:
    sections = SECTIONS if args.only is None else (args.only,)
    out = Printer()
    t0 = time.perf_counter()
    try:
        wl = _workload(args)
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
    config = _config(args, wl, sections, work_dir, gen_seconds)
    result: dict[str, Any] = {"machine": machine, "config": config, "targets": {}}
    if wl.config is not None:
        result["workload"] = {"seed": wl.config.seed, "commands": wl.commands.size,
                              "preload": wl.config.preload, "symbols": wl.config.symbols,
                              "accounts": wl.config.accounts, "mix": mix(wl.commands)}
    else:
        result["workload"] = {"file": wl.source, "commands": wl.commands.size, "mix": mix(wl.commands)}
    out.header(machine, config)
    try:
        if "engine" in sections:
            _section_engine(out, wl, result)
        sync_journal: journal_bench.JournalResult | None = None
        if "journal" in sections:
            sync_journal = _section_journal(out, wl, args, work_dir, result)
        if "recovery" in sections:
            _section_recovery(out, wl, args, work_dir, sync_journal, result)
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


def _section_engine(out: Printer, wl: Workload, result: dict[str, Any]) -> None:
    r = engine_bench.run_engine(wl)
    d = r.as_dict()
    out.section("[1] engine in-process (no journal)")
    out.line("throughput", f"{fmt_num(d['commands_per_s'])} commands/s, "
             f"{fmt_num(d['events_per_s'])} events/s "
             f"({r.commands:,} commands -> {r.events:,} events in {r.seconds:.3f} s, untimed run)")
    out.line("latency", f"{fmt_latency(r.latency_ns)} per command (process_timed, fresh engine, same flow)")
    out.line("book", f"{r.live_orders_start:,} live orders before, {r.live_orders_end:,} after; "
             f"both runs end in the same state: {'yes' if r.same_state else 'NO'}")
    out.line("events", _event_tally(r.event_types))
    if r.links:
        out.line("cancels", f"{r.links_live:.1%} of cancels/replaces found their order live "
                 "(the rest had filled first)")
    per_order = engine_bench.memory_per_resting_order()
    out.line("memory", f"{per_order:,.0f} bytes per resting order (RSS growth with 1,000,000 resting "
             "orders over 6,000 levels)")
    d["bytes_per_resting_order"] = per_order
    out.line("", target_line(ENGINE_TARGET, d["commands_per_s"]))
    result["engine"] = d
    result["targets"]["engine_commands_per_s"] = ENGINE_TARGET.verdict(d["commands_per_s"])


def _section_journal(out: Printer, wl: Workload, args: argparse.Namespace, work_dir: str,
                     result: dict[str, Any]) -> journal_bench.JournalResult:
    out.section(f"[2] engine + journal, group commit of {args.batch:,} commands "
                "(latency = batch start -> batch committed)")
    result["journal"] = {}
    sync: journal_bench.JournalResult | None = None
    for mode in ("async", "sync"):
        r = journal_bench.run_journal(wl, mode, args.batch, str(Path(work_dir) / f"journal-{mode}"),
                                      _snapshot_every(args))
        d = r.as_dict()
        what = "committed to the OS, fsync every 50 ms" if mode == "async" else "fsync per batch"
        out.line(mode, f"{fmt_num(d['events_per_s'])} events/s, {fmt_num(d['commands_per_s'])} commands/s "
                 f"({r.commands:,} commands, {r.events:,} events, {r.batches:,} batches "
                 f"in {r.seconds:.3f} s; {what})")
        out.line("", f"latency {fmt_latency(r.latency_ns)} per command; "
                 f"{r.snapshots} snapshot(s) in the run; journal {r.journal_bytes / 2**20:,.0f} MiB")
        result["journal"][mode] = d
        if mode == "sync":
            sync = r
            out.line("", target_line(JOURNAL_SYNC_TARGET, d["events_per_s"]))
            result["targets"]["journal_sync_events_per_s"] = JOURNAL_SYNC_TARGET.verdict(d["events_per_s"])
    assert sync is not None
    return sync


def _section_recovery(out: Printer, wl: Workload, args: argparse.Namespace, work_dir: str,
                      sync_journal: journal_bench.JournalResult | None, result: dict[str, Any]) -> None:
    if sync_journal is not None:
        path, expected, source = sync_journal.path, sync_journal.state_hash, "the sync journal of [2]"
    else:
        path = str(Path(work_dir) / "journal-recovery")
        expected = journal_bench.build_journal(wl, path, args.batch, _snapshot_every(args))
        source = "a journal of the workload built untimed"
    r = journal_bench.run_recovery(path, expected, source)
    d = r.as_dict()
    out.section(f"[3] recovery of {source} (warm page cache)")
    out.line("full replay", f"{r.replay_seconds:.3f} s for {r.events:,} events ({r.commands:,} commands) "
             f"= {r.seconds_per_million:.3f} s per million events")
    out.line("open()", f"{r.snapshot_seconds:.3f} s from the newest snapshot + tail (what a restart does)")
    out.line("state", f"recovered state equals the journaled engine's: {'yes' if r.same_state else 'NO'}")
    out.line("", target_line(RECOVERY_TARGET, r.seconds_per_million))
    result["recovery"] = d
    result["targets"]["recovery_s_per_million_events"] = RECOVERY_TARGET.verdict(r.seconds_per_million)


def _summary(out: Printer, result: dict[str, Any]) -> None:
    if not result["targets"]:
        return
    out.section("targets")
    names = {"engine_commands_per_s": ENGINE_TARGET, "journal_sync_events_per_s": JOURNAL_SYNC_TARGET,
             "recovery_s_per_million_events": RECOVERY_TARGET}
    for key, verdict in result["targets"].items():
        target = names[key]
        out.emit(f"  {target.name:<26} {target_line(target, verdict['measured'])}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="venue bench", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))

