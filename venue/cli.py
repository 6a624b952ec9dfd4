"""`venue`: one command line for the venue (run, match, bench, journal, ledger and accounts tools).

Every failure the user can cause (bad arguments, missing or bad files, a bad config) ends with a
one-line `venue ...: error: ...` on stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from venue.argtypes import non_negative_float, positive_int

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class CliError(Exception):
    """A user-facing failure: printed as one line, exit status 1."""


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error instead of usage + error."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="venue", description="Open-source crypto trading venue: matching engine, "
                     "event journal and tools.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser(
        "run", help="run the venue: engine and SBE gateway processes, plus a seeded demo order flow",
        description="Start the engine process (it opens or recovers the journal and defines the configured "
        "instruments if new) and the SBE gateway process, print the gateway's port, then run a seeded demo "
        "order flow through the gateway, printing each trade and a periodic summary. Stops after --duration "
        "seconds or --orders orders (default: demo.duration = 5 s from the config; 0 = until Ctrl-C); "
        "the journal is flushed on every exit. A gateway that dies is restarted; if the engine dies the "
        "venue stops.")
    run.add_argument("--config", metavar="PATH",
                     help="config file (default: ./config/venue.toml, else the one in the source tree)")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override any config value, e.g. journal.durability=async or "
                     "instruments.BTC-USDT.min_notional=5 (repeatable)")
    run.add_argument("--journal", metavar="PATH", help="journal directory (journal.path)")
    run.add_argument("--durability", choices=("sync", "async"), help="journal.durability")
    run.add_argument("--snapshot-interval", type=int, metavar="EVENTS", help="journal.snapshot_interval")
    run.add_argument("--duration", type=non_negative_float, metavar="S",
                     help="stop after S seconds, 0 = no time limit (demo.duration)")
    run.add_argument("--orders", type=int, metavar="N",
                     help="stop after N orders, 0 = no limit (demo.orders)")
    run.add_argument("--rate", type=non_negative_float, metavar="PER_S",
                     help="demo orders per second, 0 = as fast as possible (demo.rate)")
    run.add_argument("--seed", type=int, help="demo random seed (demo.seed)")
    run.add_argument("--quiet", action="store_true", help="print only summaries, not every trade")
    run.add_argument("--port", type=int, metavar="PORT",
                     help="SBE gateway port, 0 = any free port (sbe.port)")
    run.add_argument("--no-demo", action="store_true",
                     help="no demo flow: serve clients until --duration or Ctrl-C")

    match = commands.add_parser(
        "match", help="run the bare engine over a JSONL file of requests",
        description="Run the matching engine alone (no journal) over a JSONL file of requests "
        "(ops: instrument, new, cancel, replace, mass_cancel) and write one JSON event per line in "
        "event sequence order. Bad lines are reported on stderr with their line number; the run goes on. "
        "With --funds the engine checks funds: the config's assets are defined first, accounts are "
        "created when a deposit or order first names them, and the input may also hold the ops asset, "
        "create_account, deposit, withdraw_hold, withdraw_settle, withdraw_release, transfer, adjust, "
        "set_fees, set_fee_tier, account_status, trading_status and limits.")
    match.add_argument("--input", required=True, metavar="FILE",
                       help="requests, one JSON object a line (- = stdin)")
    match.add_argument("--output", metavar="FILE", help="events file (default: stdout)")
    match.add_argument("--book-out", metavar="FILE", help="write the final order books as JSON")
    match.add_argument("--batch", type=positive_int, default=4096, metavar="N",
                       help="commands per Engine.process call (default: 4096)")
    match.add_argument("--funds", action="store_true",
                       help="funds mode: balances, holds, fees and pre-trade risk; money ops in the input")
    match.add_argument("--config", metavar="PATH",
                       help="with --funds: the config whose [[assets]] and [accounts] defaults are used "
                       "(default: ./config/venue.toml, else the one in the source tree)")

    # Listed for the overview only: main() hands `venue bench ...` to the bench package's own parser.
    commands.add_parser("bench", help="benchmark the engine, journal and recovery (venue bench --help)")
    # Likewise: main() hands `venue loadgen ...` to bench.loadgen's own parser.
    commands.add_parser("loadgen", help="offer a paced order flow to the SBE gateway and measure round-trip "
                        "latency (venue loadgen --help)")

    journal = commands.add_parser(
        "journal", help="inspect, replay or verify a journal",
        description="Tools for an LMDB event journal (read-only: they never change it).")
    tools = journal.add_subparsers(dest="tool", metavar="TOOL", required=True)
    inspect = tools.add_parser("inspect", help="summary: seq ranges, batches, snapshots, instruments, size",
                               description="Print a readable summary of a journal.")
    inspect.add_argument("path", metavar="PATH", help="journal directory")
    replay = tools.add_parser("replay", help="rebuild the engine from the commands; print the state hash",
                              description="Replay the journal's commands into a fresh engine (with a "
                              "progress bar) and print the resulting state hash.")
    replay.add_argument("path", metavar="PATH", help="journal directory")
    replay.add_argument("--no-progress", action="store_true", help="no progress bar")
    verify = tools.add_parser("verify", help="check every record, checksum and snapshot; exit 1 on damage",
                              description="Check the journal end to end: checksums, seq continuity, "
                              "replayed events equal to the stored ones, snapshots equal to the replay.")
    verify.add_argument("path", metavar="PATH", help="journal directory")
    verify.add_argument("--no-progress", action="store_true", help="no progress bar")

    ledger = commands.add_parser(
        "ledger", help="account statements and ledger checks from a funds-mode journal",
        description="Read-only tools over the postings of a funds-mode journal (written by venue run).")
    ledger_tools = ledger.add_subparsers(dest="tool", metavar="TOOL", required=True)
    statement = ledger_tools.add_parser(
        "statement", help="an account's postings with the running balance after each",
        description="Print every posting of ACCOUNT (a name such as demo-1, @fees, or an account id), "
        "in sequence order, with the available and held balance after each.")
    statement.add_argument("account", metavar="ACCOUNT", help="account name or id")
    statement.add_argument("--asset", metavar="ASSET", help="only this asset's postings")
    statement.add_argument("--json", action="store_true", help="one JSON object per posting")
    check = ledger_tools.add_parser(
        "check", help="recover the engine and check every ledger invariant; exit 1 on a violation",
        description="Recover the engine from the journal and check the ledger invariants over the "
        "whole journal: balanced postings, no negative balance, held = holds of live orders and pending "
        "withdrawals, supply = deposits - withdrawals + adjustments, postings replay to the balances.")
    for tool in (statement, check):
        tool.add_argument("--journal", metavar="PATH",
                          help="journal directory (default: journal.path of the config)")
        tool.add_argument("--config", metavar="PATH", help="config file, for the default journal path")

    from venue import accounts_cli

    accounts = commands.add_parser(
        "accounts", help="create accounts with API keys; list them; add, disable or enable keys",
        description="Engine accounts (created and funded through the engine, named in the journal) and "
        "the API keys the gateways check at logon (keys.path; secrets encrypted at rest).")
    accounts_cli.add_arguments(accounts)
    return parser


def _run(args: argparse.Namespace) -> int:
    from venue import run

    return run.main(args)


def _match(args: argparse.Namespace) -> int:
    from venue import match

    return match.main(args.input, args.output, args.book_out, args.batch, funds=args.funds,
                      config_path=args.config)


def _bench(args: argparse.Namespace) -> int:
    from bench import runner  # its own options: parsed by its add_arguments, run by its run()

    parser = _Parser(prog="venue bench", description=(runner.__doc__ or "").strip().splitlines()[0])
    runner.add_arguments(parser)
    return runner.run(parser.parse_args(args.bench_args))


def _loadgen(args: argparse.Namespace) -> int:
    try:
        from bench import loadgen  # its own options and one-line errors
    except ImportError as exc:
        raise CliError(f"{exc} (build the extensions: python setup.py build_ext --inplace)") from None
    return loadgen.main(args.loadgen_args)


def _journal(args: argparse.Namespace) -> int:
    from venue import journal_tools

    return journal_tools.main(args.tool, args.path, progress=not getattr(args, "no_progress", False))


def _ledger(args: argparse.Namespace) -> int:
    from venue import ledger_cli

    path = args.journal
    if path is None:
        from venue.config import load_config

        path = load_config(args.config).journal.path
    if args.tool == "statement":
        return ledger_cli.statement(path, args.account, args.asset, as_json=args.json)
    return ledger_cli.check(path, progress=True)


def _accounts(args: argparse.Namespace) -> int:
    from venue import accounts_cli

    return accounts_cli.main(args)


HANDLERS = {"run": _run, "match": _match, "bench": _bench, "loadgen": _loadgen, "journal": _journal,
            "ledger": _ledger,
            "accounts": _accounts}


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exception types that are the user's problem (one line), not the program's (traceback)."""
    from venue.accounts_cli import AccountsError
    from venue.config import ConfigError
    from venue.ledger_cli import LedgerError
    from venue.match import MatchError
    from venue.run import VenueError

    errors: list[type[BaseException]] = [CliError, ConfigError, LedgerError, MatchError, VenueError, OSError,
                                         AccountsError]
    try:
        from venue.keys import KeyStoreError  # needs the cryptography package

        errors.append(KeyStoreError)
    except ImportError:
        pass
    try:
        from journal.errors import JournalError

        errors.append(JournalError)
    except ImportError:
        pass
    return tuple(errors)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:  # everything after `bench` belongs to the bench package's parser
        args = argparse.Namespace(command="bench", bench_args=argv[1:])
    elif argv[:1] == ["loadgen"]:  # likewise for `loadgen`
        args = argparse.Namespace(command="loadgen", loadgen_args=argv[1:])
    else:
        args = build_parser().parse_args(argv)
    user_errors = _user_errors()
    with_tool = ("journal", "ledger", "accounts")
    prog = f"venue {args.command}" + (f" {args.tool}" if args.command in with_tool else "")
    prog += f" {args.key_tool}" if getattr(args, "key_tool", None) else ""
    try:
        return HANDLERS[args.command](args)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `venue match ... | head`: the reader left, nothing to report
        # Point stdout at /dev/null so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR
    except ImportError as exc:
        if "core_cython" in str(exc):
            print(f"{prog}: error: the engine is not built (run: python setup.py build_ext --inplace)",
                  file=sys.stderr)
            return EXIT_ERROR
        raise
    except user_errors as exc:
        print(f"{prog}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    return " ".join(str(exc).split()) or type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
