"""The `venue` command line: help, one-line errors, `venue run` and the journal tools, as subprocesses
(and a resumed venue's naming, in process)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.venue_harness import FREE_PORTS, venue_cli

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config" / "venue.toml"

needs_engine = pytest.mark.skipif(
    not any((ROOT / "core_cython").glob("engine*.so")), reason="the engine extension is not built"
)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize(
    "args",
    [["--help"], ["run", "--help"], ["match", "--help"], ["bench", "--help"], ["journal", "--help"],
     ["journal", "inspect", "--help"], ["journal", "replay", "--help"], ["journal", "verify", "--help"],
     ["ledger", "--help"], ["ledger", "statement", "--help"], ["ledger", "check", "--help"]],
)
def test_help_for_every_command(tmp_path: Path, args: list[str]) -> None:
    result = venue_cli(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: venue")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], "venue: error: the following arguments are required: COMMAND"),
        (["launch"], "venue: error: argument COMMAND: invalid choice: 'launch'"),
        (["match"], "venue match: error: the following arguments are required: --input"),
        (["match", "--input", "x", "--batch", "0"],
         "venue match: error: argument --batch: 0 must be at least 1"),
        (["run", "--duration", "soon"], "venue run: error: argument --duration: 'soon' is not a number"),
        (["run", "--durability", "maybe"],
         "venue run: error: argument --durability: invalid choice: 'maybe'"),
        (["run", "--frobnicate"], "venue: error: unrecognized arguments: --frobnicate"),
        (["journal"], "venue journal: error: the following arguments are required: TOOL"),
        (["journal", "verify"], "venue journal verify: error: the following arguments are required: PATH"),
        (["journal", "explode", "x"], "venue journal: error: argument TOOL: invalid choice: 'explode'"),
        (["ledger"], "venue ledger: error: the following arguments are required: TOOL"),
        (["ledger", "statement"],
         "venue ledger statement: error: the following arguments are required: ACCOUNT"),
        (["bench", "--commands", "none"], "venue bench: error: argument --commands"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(tmp_path: Path, args: list[str], expected: str) -> None:
    result = venue_cli(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert one_line_error(result).startswith(expected)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "--config", "missing.toml"], "venue run: error: config file missing.toml not found"),
        (["run", "--config", str(CONFIG), "--set", "journal.durability=fast"],
         "journal.durability must be one of sync, async, not 'fast'"),
        (["run", "--config", str(CONFIG), "--set", "nonsense"], "is not of the form section.key=value"),
        (["run", "--config", str(CONFIG), "--set", "assets.USDT.decimals=1"],
         "instruments.BTC-USDT: tick_size 0.01 x lot_size 0.0001 is finer than USDT's 1 decimals"),
        (["match", "--funds", "--input", "-", "--config", "missing.toml"],
         "venue match: error: config file missing.toml not found"),
    ],
)
def test_bad_config_is_one_line(tmp_path: Path, args: list[str], expected: str) -> None:
    result = venue_cli(*args, cwd=tmp_path)
    assert result.returncode == 1
    assert expected in one_line_error(result)


@needs_engine
@pytest.mark.parametrize("tool", ["inspect", "replay", "verify"])
def test_journal_tools_on_a_missing_journal(tmp_path: Path, tool: str) -> None:
    result = venue_cli("journal", tool, "nowhere", cwd=tmp_path)
    assert result.returncode == 1
    assert one_line_error(result) == f"venue journal {tool}: error: no journal at nowhere (missing data.mdb)"


def final_hash(stdout: str) -> str:
    match = re.search(r"state hash\s+([0-9a-f]{64})", stdout)
    assert match, stdout
    return match.group(1)


@needs_engine
def test_run_for_a_second_leaves_a_journal_that_verifies(tmp_path: Path) -> None:
    from venue.config import load_config
    from venue.engine_service import run_dir

    result = venue_cli("run", "--config", str(CONFIG), "--duration", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    out = result.stdout
    assert "trade #" in out  # the demo flow visibly trades
    assert re.search(r"\[\s*1\.\ds\] \d+ requests", out)
    assert "stopped (duration 1 s reached); journal flushed" in out
    assert re.search(r"metrics at http://127\.0\.0\.1:\d+/metrics", out)
    journal = tmp_path / "var" / "journal"  # journal.path of the shipped config, relative to the cwd
    assert (journal / "data.mdb").is_file()
    rings = run_dir(load_config(CONFIG, [f"journal.path={journal}"]))
    assert f"rings in {rings}" in out and not rings.exists()  # a clean stop leaves no rings in /dev/shm

    verify = venue_cli("journal", "verify", str(journal), cwd=tmp_path)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "OK: every check passed" in verify.stdout
    assert final_hash(verify.stdout) == final_hash(out)

    replay = venue_cli("journal", "replay", str(journal), cwd=tmp_path)
    assert replay.returncode == 0
    assert replay.stdout == f"state hash {final_hash(out)}\n"

    ledger = venue_cli("ledger", "check", cwd=tmp_path)  # the config's journal.path, as venue run
    assert ledger.returncode == 0, ledger.stdout + ledger.stderr
    assert ledger.stdout.startswith("OK: the ledger of var/journal holds every invariant")

    inspect = venue_cli("journal", "inspect", str(journal), cwd=tmp_path)
    assert inspect.returncode == 0
    assert re.search(r"^commands +seq 1\.\.", inspect.stdout, re.M)
    assert re.search(r"^ +1 +BTC-USDT +tick 0\.01 +lot 0\.0001$", inspect.stdout, re.M)


@needs_engine
def test_run_by_order_count_and_resume(tmp_path: Path) -> None:
    args = ["run", "--config", str(CONFIG), "--journal", "j", "--orders", "500", "--rate", "0", "--quiet"]
    first = venue_cli(*args, "--durability", "async", "--seed", "1", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "trade #" not in first.stdout  # --quiet
    assert "stopped (500 requests sent)" in first.stdout
    assert "recovered at cmd seq 0, event seq 0; instruments BTC-USDT, ETH-USDT (new: BTC-USDT, ETH-USDT)" \
        in first.stdout
    assert "created demo-1, demo-2, demo-3, demo-4, each funded with 100 BTC, 1000 ETH, 10000000 USDT" \
        in first.stdout
    # A second run recovers the journal, keeps the instruments and accounts and continues the sequence.
    second = venue_cli(*args, "--snapshot-interval", "100", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    # Setup, once: 3 assets, 2 instruments, 3 fee tiers + 2 limits, 4 accounts x (create + 3 deposits) = 26
    # commands, then 500 requests; nothing new to define or fund.
    assert "recovered at cmd seq 526, event seq" in second.stdout and "(new:" not in second.stdout
    assert "created" not in second.stdout
    verify = venue_cli("journal", "verify", "j", cwd=tmp_path)
    assert verify.returncode == 0, verify.stdout
    assert final_hash(verify.stdout) == final_hash(second.stdout)
    assert "snapshots   0 checked" not in verify.stdout  # snapshots were taken and checked


@needs_engine
def test_a_journal_rejects_a_changed_instrument(tmp_path: Path) -> None:
    base = ["run", "--config", str(CONFIG), "--journal", "j", "--orders", "10", "--rate", "0", "--quiet"]
    assert venue_cli(*base, cwd=tmp_path).returncode == 0
    changed = venue_cli(*base, "--set", "instruments.BTC-USDT.lot_size=0.001",
                    "--set", "instruments.BTC-USDT.min_qty=0.001", cwd=tmp_path)
    assert changed.returncode == 1
    assert "instrument BTC-USDT: config has lot_size 0.001, the journal 0.0001" in one_line_error(changed)


@needs_engine
def test_a_journal_rejects_a_changed_asset_and_resends_changed_fees(tmp_path: Path) -> None:
    base = ["run", "--config", str(CONFIG), "--journal", "j", "--orders", "10", "--rate", "0", "--quiet"]
    assert venue_cli(*base, cwd=tmp_path).returncode == 0
    changed = venue_cli(*base, "--set", "assets.BTC.decimals=6", cwd=tmp_path)
    assert "asset BTC: config has decimals 6, the journal 8; a defined asset cannot change" \
        in one_line_error(changed)
    # Fees and limits may change: only the differences are sent (2 tiers + limits of BTC-USDT).
    fees = venue_cli(*base, "--set", "instruments.BTC-USDT.fees.0.taker_bps=7", cwd=tmp_path)
    assert fees.returncode == 0, fees.stderr
    inspect = venue_cli("journal", "inspect", "j", cwd=tmp_path)
    assert "'BTC-USDT': {'fees': {'0': [2, 7], '1': [-1, 4]}" in inspect.stdout
    same = venue_cli(*base, "--set", "instruments.BTC-USDT.fees.0.taker_bps=7", cwd=tmp_path)
    before = int(re.search(r"recovered at cmd seq (\d+)", fees.stdout).group(1))
    after = int(re.search(r"recovered at cmd seq (\d+)", same.stdout).group(1))
    assert after == before + 3 + 10  # the change once, then the orders; the same again sends nothing
    assert "stopped (10 requests sent)" in same.stdout and f"cmd seq {after + 10:,}" in same.stdout


@needs_engine
def test_run_refuses_a_core_mode_journal(tmp_path: Path) -> None:
    from journal import JournaledEngine

    JournaledEngine.open(tmp_path / "j", funds=False).close()
    result = venue_cli("run", "--config", str(CONFIG), "--journal", "j", "--orders", "1", cwd=tmp_path)
    assert one_line_error(result) == ("venue run: error: journal at j was created in core mode (no funds); "
                                      "it cannot be opened in funds mode")


@needs_engine
def test_sigint_stops_cleanly_with_the_journal_flushed(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "venue", "run", "--config", str(CONFIG), "--journal", "j",
               "--duration", "0", "--quiet", *FREE_PORTS]
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "j" / "data.mdb").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "stopped (SIGINT); journal flushed" in out
    verify = venue_cli("journal", "verify", "j", cwd=tmp_path)
    assert verify.returncode == 0 and final_hash(verify.stdout) == final_hash(out)


@needs_engine
def test_a_resumed_venue_never_reuses_a_pending_withdrawal_id_or_a_ticket(tmp_path: Path) -> None:
    from core_cython.records import EventType, Op, Reason
    from venue.bootstrap import open_accounts
    from venue.config import load_config
    from venue.run import open_venue, submit_requests

    config = load_config(CONFIG, [f"journal.path={tmp_path / 'j'}", "journal.durability=async"])

    def session(withdrawal: str, ticket: str) -> tuple[list[tuple[int, int, int]], dict]:
        with open_venue(config) as venue:
            open_accounts(venue.engine, venue.edge, ["a1"], config.accounts, {"USDT": "100"})
            events = submit_requests(venue, [
                {"op": "withdraw_hold", "id": withdrawal, "account": "a1", "asset": "USDT", "amount": "1"},
                {"op": "adjust", "account": "a1", "asset": "USDT", "amount": "1", "reason": "refund",
                 "ticket": ticket}])
            outcome = [(int(e["type"]), int(e["op"]), int(e["order_id"])) for e in events
                       if e["type"] in (EventType.APPLIED, EventType.REJECTED)]
            assert not (events["reason"] == Reason.DUPLICATE_WITHDRAWAL).any()
            return outcome, venue.engine.engine.withdrawals()

    first, _ = session("w1", "T-1")
    second, pending = session("w2", "T-2")  # w1 is still pending
    applied = (int(EventType.APPLIED), int(EventType.APPLIED))
    assert tuple(kind for kind, _, _ in first + second) == applied * 2
    assert [op for _, op, _ in first] == [Op.WITHDRAW_HOLD, Op.ADJUST]
    assert second[0][2] != first[0][2] and second[1][2] != first[1][2]  # new integers, not 1 again
    assert sorted(pending) == sorted([first[0][2], second[0][2]])
