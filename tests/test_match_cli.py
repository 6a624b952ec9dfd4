"""`venue match` end to end, through a real subprocess, on small JSONL files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("core_cython.engine", reason="the engine extension is not built")

ROOT = Path(__file__).resolve().parent.parent


def venue(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "venue", *args], cwd=cwd, env=env, input=stdin,
                          capture_output=True, text=True, timeout=120)


def jsonl(*lines: object) -> str:
    return "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)


BTC = {"op": "instrument", "symbol": "BTC-USDT", "base": "BTC", "quote": "USDT", "tick_size": "0.01",
       "lot_size": "0.0001"}
ETH = {"op": "instrument", "symbol": "ETH-USDT", "base": "ETH", "quote": "USDT", "tick_size": "0.05",
       "lot_size": "0.01", "min_qty": "0.1"}


def new(order_id: str, account: str, side: str, price: str | None, qty: str, symbol: str = "BTC-USDT",
        **extra: object) -> dict[str, object]:
    request: dict[str, object] = {"op": "new", "id": order_id, "account": account, "symbol": symbol,
                                  "side": side, "type": "limit" if price else "market", "qty": qty,
                                  "tif": "gtc"}
    if price:
        request["price"] = price
    return {**request, **extra}


SESSION = jsonl(
    BTC,
    ETH,
    new("s1", "a1", "sell", "100.00", "1"),
    new("s2", "a2", "sell", "100.50", "2", display_qty="0.5"),  # iceberg
    new("s3", "a1", "sell", "100.5", "0.25"),
    '{"op":"new", "id": "broken"',  # line 6: bad JSON, the run goes on
    new("b1", "a3", "buy", "100.50", "1.6"),
    new("x1", "a3", "buy", "99.995", "1"),  # off tick
    {k: v for k, v in new("x2", "a3", "buy", "99.00", "1").items() if k != "qty"},  # line 9: no qty
    {"op": "teleport", "id": "x3"},  # line 10: unknown op
    new("e1", "a4", "buy", "10.05", "0.5", symbol="ETH-USDT"),
    new("e2", "a4", "buy", "10.03", "0.5", symbol="ETH-USDT"),  # off the 0.05 tick
    new("e3", "a5", "sell", None, "0.2", symbol="ETH-USDT", tif="ioc"),
    {"op": "replace", "id": "e1", "price": "10.10", "qty": "1"},
    {"op": "cancel", "id": "s3", "account": "a2"},  # not a2's order
    {"op": "cancel", "id": "s3"},
    {"op": "mass_cancel", "account": "a4"},
    new("b2", "a2", "buy", "100.50", "1", stp="cancel_taker"),  # would trade with a2's own s2
)


def order(kind: str, seq: int, oid: str, account: str, symbol: str, side: str, price: str | None, qty: str,
          leaves: str, filled: str, reason: str | None = None) -> dict[str, object]:
    event: dict[str, object] = {"type": kind, "seq": seq}
    if reason:
        event["reason"] = reason
    event.update(id=oid, account=account, symbol=symbol, side=side)
    if price:
        event["price"] = price
    event.update(qty=qty, leaves=leaves, filled=filled)
    return event


def trade(seq: int, symbol: str, side: str, price: str, qty: str, taker: str, taker_account: str, maker: str,
          maker_account: str, taker_leaves: str, maker_leaves: str) -> dict[str, object]:
    return {"type": "trade", "seq": seq, "symbol": symbol, "side": side, "price": price, "qty": qty,
            "taker_order": taker, "taker_account": taker_account, "maker_order": maker,
            "maker_account": maker_account, "taker_leaves": taker_leaves, "maker_leaves": maker_leaves}


EXPECTED_EVENTS = [
    {"type": "instrument_added", "seq": 1, "symbol": "BTC-USDT"},
    {"type": "instrument_added", "seq": 2, "symbol": "ETH-USDT"},
    order("accepted", 3, "s1", "a1", "BTC-USDT", "sell", "100.00", "1.0000", "1.0000", "0.0000"),
    order("accepted", 4, "s2", "a2", "BTC-USDT", "sell", "100.50", "2.0000", "2.0000", "0.0000"),
    order("accepted", 5, "s3", "a1", "BTC-USDT", "sell", "100.50", "0.2500", "0.2500", "0.0000"),
    order("accepted", 6, "b1", "a3", "BTC-USDT", "buy", "100.50", "1.6000", "1.6000", "0.0000"),
    trade(7, "BTC-USDT", "buy", "100.00", "1.0000", "b1", "a3", "s1", "a1", "0.6000", "0.0000"),
    # the iceberg shows 0.5, refills and goes behind s3 at its level
    trade(8, "BTC-USDT", "buy", "100.50", "0.5000", "b1", "a3", "s2", "a2", "0.1000", "1.5000"),
    trade(9, "BTC-USDT", "buy", "100.50", "0.1000", "b1", "a3", "s3", "a1", "0.0000", "0.1500"),
    {"type": "rejected", "seq": 10, "reason": "off_tick", "op": "new", "id": "x1", "account": "a3",
     "symbol": "BTC-USDT", "side": "buy", "order_type": "limit", "qty": "1", "tif": "gtc", "price": "99.995"},
    {"type": "rejected", "seq": 11, "reason": "malformed", "op": "new", "id": "x2", "account": "a3",
     "symbol": "BTC-USDT", "side": "buy", "order_type": "limit", "tif": "gtc", "price": "99.00"},
    order("accepted", 12, "e1", "a4", "ETH-USDT", "buy", "10.05", "0.50", "0.50", "0.00"),
    {"type": "rejected", "seq": 13, "reason": "off_tick", "op": "new", "id": "e2", "account": "a4",
     "symbol": "ETH-USDT", "side": "buy", "order_type": "limit", "qty": "0.5", "tif": "gtc",
     "price": "10.03"},
    order("accepted", 14, "e3", "a5", "ETH-USDT", "sell", None, "0.20", "0.20", "0.00"),
    trade(15, "ETH-USDT", "sell", "10.05", "0.20", "e3", "a5", "e1", "a4", "0.00", "0.30"),
    order("replaced", 16, "e1", "a4", "ETH-USDT", "buy", "10.10", "1.00", "0.80", "0.20"),
    {"type": "rejected", "seq": 17, "reason": "unknown_order", "op": "cancel", "id": "s3", "account": "a2"},
    order("cancelled", 18, "s3", "a1", "BTC-USDT", "sell", "100.50", "0.1500", "0.0000", "0.1000",
          "user_cancel"),
    order("cancelled", 19, "e1", "a4", "ETH-USDT", "buy", "10.10", "0.80", "0.00", "0.20", "mass_cancel"),
    {"type": "mass_cancel_done", "seq": 20, "account": "a4", "cancelled": 1},
    order("accepted", 21, "b2", "a2", "BTC-USDT", "buy", "100.50", "1.0000", "1.0000", "0.0000"),
    order("cancelled", 22, "b2", "a2", "BTC-USDT", "buy", "100.50", "1.0000", "0.0000", "0.0000",
          "self_trade"),
]

EXPECTED_BOOKS = {
    "BTC-USDT": {"bids": [], "asks": [{"price": "100.50", "orders": [{"id": "s2", "qty": "1.5000",
                                                                       "visible": "0.5000"}]}]},
    "ETH-USDT": {"bids": [], "asks": []},
}


@pytest.mark.parametrize("batch", ["1", "2", "4096"])
def test_session_exact_events_and_books(tmp_path: Path, batch: str) -> None:
    (tmp_path / "orders.jsonl").write_text(SESSION)
    result = venue("match", "--input", "orders.jsonl", "--output", "events.jsonl", "--book-out", "book.json",
                   "--batch", batch, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = (tmp_path / "events.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == EXPECTED_EVENTS
    assert json.loads((tmp_path / "book.json").read_text()) == EXPECTED_BOOKS
    errors = result.stderr.splitlines()
    assert errors[0].startswith("orders.jsonl:6: bad JSON")
    assert errors[1] == "orders.jsonl:9: new: missing field 'qty'"
    assert errors[2] == "orders.jsonl:10: unknown op 'teleport'"
    assert errors[3] == "venue match: 3 bad line(s) of 18"
    assert len(errors) == 4


def test_output_defaults_to_stdout_and_input_to_stdin(tmp_path: Path) -> None:
    result = venue("match", "--input", "-", cwd=tmp_path, stdin=SESSION)
    assert result.returncode == 0
    assert [json.loads(line) for line in result.stdout.splitlines()] == EXPECTED_EVENTS


def test_price_time_priority_across_levels(tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_text(jsonl(
        BTC,
        new("a", "m1", "sell", "101", "1"),
        new("b", "m2", "sell", "100", "1"),
        new("c", "m3", "sell", "100", "1"),
        new("d", "m4", "buy", "99", "2"),
        new("e", "m4", "buy", "99.5", "1"),
        new("t", "t1", "buy", None, "2.5"),  # market: b, c, then half of a
    ))
    result = venue("match", "--input", "in.jsonl", "--book-out", "book.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    trades = [e for e in map(json.loads, result.stdout.splitlines()) if e["type"] == "trade"]
    assert [(t["maker_order"], t["price"], t["qty"]) for t in trades] == [
        ("b", "100.00", "1.0000"), ("c", "100.00", "1.0000"), ("a", "101.00", "0.5000")]
    book = json.loads((tmp_path / "book.json").read_text())["BTC-USDT"]
    assert book["asks"] == [{"price": "101.00", "orders": [{"id": "a", "qty": "0.5000"}]}]
    assert book["bids"] == [{"price": "99.50", "orders": [{"id": "e", "qty": "1.0000"}]},
                            {"price": "99.00", "orders": [{"id": "d", "qty": "2.0000"}]}]


def test_order_ids_can_be_reused_once_finished(tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_text(jsonl(
        BTC,
        new("o1", "a", "buy", "100", "1"),
        new("o1", "a", "buy", "100", "1"),  # still live: duplicate
        {"op": "cancel", "id": "o1", "account": "a"},
        new("o1", "a", "buy", "99", "1"),  # finished: fine again
    ))
    result = venue("match", "--input", "in.jsonl", cwd=tmp_path)
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(e["type"], e.get("reason")) for e in events[1:]] == [
        ("accepted", None), ("rejected", "duplicate_order_id"), ("cancelled", "user_cancel"),
        ("accepted", None)]


def test_engine_rejections_are_named(tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_text(jsonl(
        dict(BTC, min_notional="10", max_qty="5"),
        new("q", "a", "buy", "100", "6"),
        new("n", "a", "buy", "1", "1"),
        new("u", "a", "buy", "1", "1", symbol="DOGE-USDT"),
        new("m", "a", "buy", None, "1"),
        new("s", "a", "up", "100", "1"),
        dict(BTC, tick_size="0.1"),  # redefinition
    ))
    result = venue("match", "--input", "in.jsonl", cwd=tmp_path)
    assert result.returncode == 0 and result.stderr == ""
    reasons = [json.loads(line).get("reason") for line in result.stdout.splitlines()]
    assert reasons == [None, "qty_above_max", "notional_below_min", "unknown_symbol", "no_liquidity",
                       "invalid_side", "invalid_instrument"]


def test_an_invalid_instrument_line_is_reported_and_skipped(tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_text(jsonl(dict(BTC, tick_size="0"), new("o", "a", "buy", "1", "1")))
    result = venue("match", "--input", "in.jsonl", cwd=tmp_path)
    assert result.returncode == 0
    assert "in.jsonl:1: instrument: tick_size must be positive" in result.stderr
    assert json.loads(result.stdout)["reason"] == "unknown_symbol"


def test_missing_input_file_is_one_line_and_non_zero(tmp_path: Path) -> None:
    result = venue("match", "--input", "nope.jsonl", cwd=tmp_path)
    assert result.returncode != 0
    assert result.stderr == "venue match: error: input file nope.jsonl not found\n"
    assert result.stdout == ""


def test_unwritable_output_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_text(jsonl(BTC))
    result = venue("match", "--input", "in.jsonl", "--output", "no/such/dir/out.jsonl", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("venue match: error: cannot write no/such/dir/out.jsonl")
    assert len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize("batch", ["0", "-3", "many"])
def test_bad_batch_size(tmp_path: Path, batch: str) -> None:
    result = venue("match", "--input", "x", "--batch", batch, cwd=tmp_path)
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and "--batch" in result.stderr
