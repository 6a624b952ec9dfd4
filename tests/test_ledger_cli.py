"""`venue ledger statement|check` on real `venue run` journals, through real subprocesses."""

from __future__ import annotations

import json
import subprocess
from decimal import Decimal
from pathlib import Path

import lmdb
import numpy as np
import pytest

pytest.importorskip("core_cython.engine", reason="the engine extension is not built")

from core_cython.records import EventType, PostingKind  # noqa: E402
from journal import Journal, JournaledEngine, RecordKind  # noqa: E402
from journal.flow import instrument_commands  # noqa: E402
from journal.format import batch_records, decode_batch_header, encode_batch, seq_key  # noqa: E402
from tests.venue_harness import venue_cli  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config" / "venue.toml"


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def run_journal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A journal of `venue run`: 4 funded demo accounts, 400 demo orders (it trades)."""
    cwd = tmp_path_factory.mktemp("run")
    result = venue_cli("run", "--config", str(CONFIG), "--journal", "j", "--orders", "400", "--rate", "0",
                   "--durability", "async", "--quiet", cwd=cwd)
    assert result.returncode == 0, result.stderr
    return cwd / "j"


def test_check_passes_on_a_venue_run_journal(run_journal: Path) -> None:
    result = venue_cli("ledger", "check", "--journal", str(run_journal), cwd=run_journal.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(f"OK: the ledger of {run_journal} holds every invariant (7 accounts, ")


def test_statement_lists_postings_with_running_balances(run_journal: Path) -> None:
    result = venue_cli("ledger", "statement", "demo-1", "--journal", str(run_journal), "--json",
                   cwd=run_journal.parent)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert {row["kind"] for row in rows} >= {"deposit", "hold", "trade"}  # funded, then traded
    # The funding deposits of `venue run`, one per asset of demo.funding, first.
    assert [(r["kind"], r["asset"], r["available_change"], r["available"], r["counterparty"])
            for r in rows[:3]] == [
        ("deposit", "BTC", "100.00000000", "100.00000000", "@external"),
        ("deposit", "ETH", "1000.00000000", "1000.00000000", "@external"),
        ("deposit", "USDT", "10000000.000000", "10000000.000000", "@external")]
    running: dict[str, list[Decimal]] = {}
    for row in rows:
        balance = running.setdefault(row["asset"], [Decimal(0), Decimal(0)])
        balance[0] += Decimal(row["available_change"])
        balance[1] += Decimal(row["held_change"])
        assert [Decimal(row["available"]), Decimal(row["held"])] == balance, row
        assert balance[0] >= 0 and balance[1] >= 0
    assert [r["seq"] for r in rows] == sorted(r["seq"] for r in rows)
    trades = [r for r in rows if r["kind"] == "trade"]
    assert all(r["counterparty"].startswith("demo-") for r in trades)
    assert any("fee" in r for r in trades if r["asset"] == "USDT")

    usdt = venue_cli("ledger", "statement", "demo-1", "--asset", "USDT", "--journal", str(run_journal),
                 cwd=run_journal.parent)
    assert usdt.returncode == 0, usdt.stderr
    lines = usdt.stdout.splitlines()
    assert lines[0].startswith("statement of demo-1 (account 16) in USDT: ")
    assert lines[1].split()[:4] == ["seq", "kind", "asset", "available"]
    body = lines[2:]
    assert len(body) == sum(r["asset"] == "USDT" for r in rows) and all(" USDT " in line for line in body)
    assert body[0].split()[:4] == [str(rows[2]["seq"]), "deposit", "USDT", "10000000.000000"]


def test_the_fee_account_collects(run_journal: Path) -> None:
    result = venue_cli("ledger", "statement", "@fees", "--journal", str(run_journal), "--json",
                   cwd=run_journal.parent)
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows and {r["kind"] for r in rows} == {"fee"}
    assert Decimal(rows[-1]["available"]) == sum(Decimal(r["available_change"]) for r in rows) > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["statement", "nobody"],
         "no account nobody in the journal (named ones: demo-1, demo-2, demo-3, demo-4"),
        (["statement", "demo-1", "--asset", "DOGE"],
         "no asset DOGE in the journal (assets: BTC, ETH, USDT)"),
    ],
)
def test_statement_errors_are_one_line(run_journal: Path, args: list[str], message: str) -> None:
    result = venue_cli("ledger", *args, "--journal", str(run_journal), cwd=run_journal.parent)
    assert one_line_error(result).startswith(f"venue ledger statement: error: {message}")


def test_ledger_tools_on_a_missing_or_core_journal(tmp_path: Path) -> None:
    missing = venue_cli("ledger", "check", "--journal", "nowhere", cwd=tmp_path)
    assert one_line_error(missing) == "venue ledger check: error: no journal at nowhere (missing data.mdb)"
    with JournaledEngine.open(tmp_path / "core", funds=False) as je:
        je.submit(instrument_commands(1), 1)
    core = venue_cli("ledger", "check", "--journal", "core", cwd=tmp_path)
    assert one_line_error(core) == ("venue ledger check: error: journal at core runs the engine in core "
                                    "mode: it has no ledger")


def doctor_first_deposit(path: Path) -> int:
    """Add one unit to the first DEPOSIT posting's available change, keeping the batch's crc valid (a
    writer bug, not bit rot: `venue journal verify` would see the replay differ, the ledger more)."""
    with Journal(path, readonly=True) as journal:
        for _, value in journal.raw_batches(RecordKind.EVENTS):
            header = decode_batch_header(value)
            records = batch_records(value, header).copy()
            deposits = (records["type"] == EventType.POSTING) & (records["reason"] == PostingKind.DEPOSIT)
            hit = np.flatnonzero(deposits)
            if len(hit):
                records["price"][hit[0]] += 1
                break
        else:
            raise AssertionError("no deposit posting")
    env = lmdb.open(str(path), max_dbs=4)
    with env.begin(write=True, db=env.open_db(b"events")) as txn:
        first = header.first_seq
        txn.put(seq_key(first), encode_batch(RecordKind.EVENTS, first, records))
    env.close()
    return int(records["seq"][hit[0]])


def test_check_fails_on_a_doctored_journal(tmp_path: Path) -> None:
    result = venue_cli("run", "--config", str(CONFIG), "--journal", "j", "--orders", "50", "--rate", "0",
                   "--durability", "async", "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    seq = doctor_first_deposit(tmp_path / "j")
    check = venue_cli("ledger", "check", "--journal", "j", cwd=tmp_path)
    assert check.returncode == 1, check.stdout
    lines = check.stdout.splitlines()
    assert lines[-1] == "DAMAGED: the ledger of j breaks its invariants (see above)"
    assert all(line.startswith("VIOLATION   ") for line in lines[:-1]) and len(lines) >= 2
    assert any(line.startswith("VIOLATION   1 (postings balance)") for line in lines)
    assert any(f"posting seq {seq}" in line for line in lines)  # invariant 5: its after-balance is off
