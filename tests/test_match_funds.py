"""`venue match --funds` end to end, through a real subprocess: deposits, funded trades, money ops."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("core_cython.engine", reason="the engine extension is not built")

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config" / "venue.toml"  # assets BTC 8, ETH 8, USDT 6 decimals; accounts: 1000 orders, tier 0


def venue(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "venue", *args], cwd=cwd, env=env, input=stdin,
                          capture_output=True, text=True, timeout=120)


def jsonl(*lines: object) -> str:
    return "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)


def match_funds(tmp_path: Path, text: str, *extra: str) -> tuple[list[dict[str, Any]], list[str]]:
    """(events, stderr lines) of `venue match --funds` over text."""
    (tmp_path / "in.jsonl").write_text(text)
    result = venue("match", "--funds", "--config", str(CONFIG), "--input", "in.jsonl", *extra, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()], result.stderr.splitlines()


BTC = {"op": "instrument", "symbol": "BTC-USDT", "base": "BTC", "quote": "USDT", "tick_size": "0.01",
       "lot_size": "0.0001"}
# The issue's example line, as is.
ISSUE_DEPOSIT = '{"op":"deposit","account":"a1","asset":"USDT","amount":"1000","ref":"tx1"}'


def new(order_id: str, account: str, side: str, price: str | None, qty: str,
        **extra: object) -> dict[str, Any]:
    request: dict[str, Any] = {"op": "new", "id": order_id, "account": account, "symbol": "BTC-USDT",
                               "side": side, "type": "limit" if price else "market", "qty": qty}
    if price:
        request["price"] = price
    return {**request, **extra}


def posting(seq: int, kind: str, account: str, asset: str, available: str, held: str, available_after: str,
            held_after: str, cause: int, **extra: str) -> dict[str, Any]:
    return {"type": "posting", "seq": seq, "kind": kind, "account": account, "asset": asset,
            "available": available, "held": held, "available_after": available_after,
            "held_after": held_after, "cause": cause, **extra}


def created(seq: int, account: str) -> dict[str, Any]:
    return {"type": "applied", "seq": seq, "op": "create_account", "account": account,
            "max_open_orders": 1000, "tier": 0}


SESSION = jsonl(
    BTC,
    {"op": "set_fees", "symbol": "BTC-USDT", "maker_bps": 2, "taker_bps": 5},
    ISSUE_DEPOSIT,
    {"op": "deposit", "account": "a2", "asset": "BTC", "amount": "0.5", "ref": "tx2"},
    new("s1", "a2", "sell", "100.00", "0.5"),
    new("b1", "a1", "buy", "100.50", "0.3"),  # takes 0.3 at 100.00; its hold is at 100.50
    new("b2", "a3", "buy", "100.00", "0.1"),  # a3 has nothing
    ISSUE_DEPOSIT,  # the same ref again: credited once only
)

# Hand-checked: b1 holds per lot N(100.50, 1 lot) = 10050 units + ceil(10050 x 5 bps) = 10056 units of
# 0.000001 USDT, x 3000 lots = 30.168 USDT. The trade: N = 30 USDT, taker fee ceil(30 x 5 bps) = 0.015,
# maker fee 0.006; the buyer gets back 30.168 - 30 - 0.015 = 0.153 of its hold.
EXPECTED = [
    {"type": "applied", "seq": 1, "op": "asset", "asset": "BTC", "decimals": 8},
    {"type": "applied", "seq": 2, "op": "asset", "asset": "ETH", "decimals": 8},
    {"type": "applied", "seq": 3, "op": "asset", "asset": "USDT", "decimals": 6},
    {"type": "instrument_added", "seq": 4, "symbol": "BTC-USDT"},
    {"type": "applied", "seq": 5, "op": "set_fees", "symbol": "BTC-USDT", "tier": 0, "maker_bps": 2,
     "taker_bps": 5},
    created(6, "a1"),
    {"type": "applied", "seq": 7, "op": "deposit", "account": "a1", "asset": "USDT", "amount": "1000.000000",
     "ref": "tx1"},
    posting(8, "deposit", "a1", "USDT", "1000.000000", "0.000000", "1000.000000", "0.000000", 7,
            counterparty="@external"),
    posting(9, "deposit", "@external", "USDT", "-1000.000000", "0.000000", "-1000.000000", "0.000000", 7,
            counterparty="a1"),
    created(10, "a2"),
    {"type": "applied", "seq": 11, "op": "deposit", "account": "a2", "asset": "BTC", "amount": "0.50000000",
     "ref": "tx2"},
    posting(12, "deposit", "a2", "BTC", "0.50000000", "0.00000000", "0.50000000", "0.00000000", 11,
            counterparty="@external"),
    posting(13, "deposit", "@external", "BTC", "-0.50000000", "0.00000000", "-0.50000000", "0.00000000", 11,
            counterparty="a2"),
    {"type": "accepted", "seq": 14, "id": "s1", "account": "a2", "symbol": "BTC-USDT", "side": "sell",
     "price": "100.00", "qty": "0.5000", "leaves": "0.5000", "filled": "0.0000"},
    posting(15, "hold", "a2", "BTC", "-0.50000000", "0.50000000", "0.00000000", "0.50000000", 14, id="s1"),
    {"type": "accepted", "seq": 16, "id": "b1", "account": "a1", "symbol": "BTC-USDT", "side": "buy",
     "price": "100.50", "qty": "0.3000", "leaves": "0.3000", "filled": "0.0000"},
    posting(17, "hold", "a1", "USDT", "-30.168000", "30.168000", "969.832000", "30.168000", 16, id="b1"),
    {"type": "trade", "seq": 18, "symbol": "BTC-USDT", "side": "buy", "price": "100.00", "qty": "0.3000",
     "taker_order": "b1", "taker_account": "a1", "maker_order": "s1", "maker_account": "a2",
     "taker_leaves": "0.0000", "maker_leaves": "0.2000"},
    posting(19, "trade", "a1", "USDT", "0.153000", "-30.168000", "969.985000", "0.000000", 18, id="b1",
            counterparty="a2", fee="0.015000"),
    posting(20, "trade", "a1", "BTC", "0.30000000", "0.00000000", "0.30000000", "0.00000000", 18, id="b1",
            counterparty="a2"),
    posting(21, "trade", "a2", "BTC", "0.00000000", "-0.30000000", "0.00000000", "0.20000000", 18, id="s1",
            counterparty="a1"),
    posting(22, "trade", "a2", "USDT", "29.994000", "0.000000", "29.994000", "0.000000", 18, id="s1",
            counterparty="a1", fee="0.006000"),
    posting(23, "fee", "@fees", "USDT", "0.021000", "0.000000", "0.021000", "0.000000", 18),
    created(24, "a3"),
    {"type": "rejected", "seq": 25, "reason": "insufficient_funds", "op": "new", "id": "b2", "account": "a3",
     "symbol": "BTC-USDT", "side": "buy", "order_type": "limit", "qty": "0.1", "price": "100.00"},
    {"type": "rejected", "seq": 26, "reason": "duplicate_ref", "op": "deposit", "account": "a1",
     "asset": "USDT", "amount": "1000", "ref": "tx1"},
]


@pytest.mark.parametrize("batch", ["1", "2", "4096"])
def test_deposit_and_a_funded_trade_exact_decimals(tmp_path: Path, batch: str) -> None:
    events, errors = match_funds(tmp_path, SESSION, "--batch", batch)
    assert errors == []
    assert events == EXPECTED


def test_the_issue_example_alone_creates_the_account_and_credits_it(tmp_path: Path) -> None:
    events, errors = match_funds(tmp_path, ISSUE_DEPOSIT + "\n")
    assert errors == []
    assert [(e["type"], e.get("op"), e.get("kind")) for e in events[3:]] == [
        ("applied", "create_account", None), ("applied", "deposit", None), ("posting", None, "deposit"),
        ("posting", None, "deposit")]
    assert events[5]["available_after"] == "1000.000000" and events[5]["account"] == "a1"


def test_without_funds_money_lines_are_refused(tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_text(ISSUE_DEPOSIT + "\n")
    result = venue("match", "--input", "in.jsonl", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout == ""
    assert result.stderr.splitlines()[0] == "in.jsonl:1: deposit: a funds-mode op (venue match --funds)"


BAD_LINES = jsonl(
    BTC,
    {"op": "deposit", "account": "a1", "asset": "USDT", "amount": "10"},  # 2: no ref
    {"op": "deposit", "account": "a1", "asset": "USDT", "amount": "10.0000001", "ref": "r1"},  # 3: precision
    {"op": "deposit", "account": "a1", "asset": "USDT", "amount": "ten", "ref": "r2"},  # 4: not a number
    {"op": "deposit", "account": "a1", "asset": "USDT", "amount": "-5", "ref": "r3"},  # 5: negative
    {"op": "deposit", "account": "a1", "asset": "DOGE", "amount": "5", "ref": "r4"},  # 6: unknown asset
    {"op": "adjust", "account": "a1", "asset": "USDT", "amount": "1", "reason": "whim", "ticket": "t"},  # 7
    {"op": "set_fees", "symbol": "BTC-USDT", "maker_bps": "2", "taker_bps": 5},  # 8: not an integer
    {"op": "transfer", "account": "a1", "to": "a2", "asset": "USDT", "amount": "1", "memo": "x"},  # 9
    {"op": "deposit", "account": "a1", "asset": "USDT", "amount": "10.000001", "ref": "r5"},  # 10: fine
)


def test_bad_money_lines_are_reported_with_their_line_and_the_run_goes_on(tmp_path: Path) -> None:
    events, errors = match_funds(tmp_path, BAD_LINES)
    assert errors == [
        "in.jsonl:2: deposit: missing field 'ref'",
        "in.jsonl:3: deposit: amount 10.0000001 has more than 6 decimals (the precision of USDT)",
        "in.jsonl:4: deposit: amount 'ten' is not a plain decimal number",
        "in.jsonl:5: deposit: amount -5 is negative",
        "in.jsonl:7: adjust: reason must be one of correction, refund, chargeback, promotion, write_off, "
        "migration, not 'whim'",
        "in.jsonl:8: set_fees: maker_bps must be an integer, not '2'",
        "in.jsonl:9: transfer: unknown field 'memo'",
        "venue match: 7 bad line(s) of 10",
    ]
    rejected = [(e["reason"], e.get("amount")) for e in events if e["type"] == "rejected"]
    # Bad amounts are never rounded: the deposit is rejected in sequence; nothing was credited.
    assert rejected == [("invalid_amount", "10.0000001"), ("malformed", "ten"), ("invalid_amount", "-5"),
                        ("unknown_asset", "5")]
    credits = [e for e in events if e["type"] == "posting" and e["account"] == "a1"]
    assert [(c["available"], c["available_after"]) for c in credits] == [("10.000001", "10.000001")]


def test_withdrawals_transfers_adjustments_and_admin_ops(tmp_path: Path) -> None:
    events, errors = match_funds(tmp_path, jsonl(
        BTC,
        {"op": "create_account", "account": "a2", "max_open_orders": 1, "tier": 1, "owner": 7},
        {"op": "deposit", "account": "a1", "asset": "USDT", "amount": "100", "ref": "d1"},
        {"op": "withdraw_hold", "id": "w1", "account": "a1", "asset": "USDT", "amount": "30"},
        {"op": "withdraw_hold", "id": "w2", "account": "a1", "asset": "USDT", "amount": "80"},  # too much
        {"op": "withdraw_settle", "id": "w1", "account": "a2"},  # not a2's
        {"op": "withdraw_release", "id": "w1"},
        {"op": "withdraw_hold", "id": "w3", "account": "a1", "asset": "USDT", "amount": "20"},
        {"op": "withdraw_settle", "id": "w3"},
        {"op": "transfer", "account": "a1", "to": "a2", "asset": "USDT", "amount": "12.5"},
        {"op": "adjust", "account": "a2", "asset": "USDT", "amount": "-2.5", "reason": "correction",
         "ticket": "T-9"},
        {"op": "adjust", "account": "@fees", "asset": "USDT", "amount": "1", "reason": "promotion",
         "ticket": "T-10"},
        {"op": "set_fee_tier", "account": "a1", "tier": 2},
        {"op": "limits", "symbol": "BTC-USDT", "reference_price": "100.00", "max_notional": "50"},
        new("far", "a2", "buy", "200.00", "0.01"),  # outside the 5% band around the reference price
        new("big", "a2", "buy", "100.00", "0.6"),  # 60 USDT > max notional 50
        new("ok", "a2", "buy", "99.00", "0.01"),
        new("two", "a2", "buy", "99.00", "0.01"),  # a2 may have 1 open order
        {"op": "trading_status", "symbol": "BTC-USDT", "status": "halted"},
        {"op": "cancel", "id": "ok", "account": "a2"},  # halted: not even cancels
        {"op": "trading_status", "symbol": "BTC-USDT", "status": "open"},
        {"op": "account_status", "account": "a2", "status": "halted"},  # cancels its orders, with release
        {"op": "account_status", "account": "a2", "status": "sleepy"},
    ))
    assert errors == []
    outcome = [(e["type"], e.get("op"), e.get("reason") or e.get("adjust_reason") or e.get("kind"))
               for e in events[4:]]
    assert outcome == [
        ("applied", "create_account", None),  # a2, as requested
        ("applied", "create_account", None),  # a1, with the defaults, before its first deposit
        ("applied", "deposit", None), ("posting", None, "deposit"), ("posting", None, "deposit"),
        ("applied", "withdraw_hold", None), ("posting", None, "withdrawal_hold"),
        ("rejected", "withdraw_hold", "insufficient_funds"),
        ("rejected", "withdraw_settle", "unknown_withdrawal"),
        ("applied", "withdraw_release", None), ("posting", None, "withdrawal_release"),
        ("applied", "withdraw_hold", None), ("posting", None, "withdrawal_hold"),
        ("applied", "withdraw_settle", None), ("posting", None, "withdrawal"),
        ("posting", None, "withdrawal"),
        ("applied", "transfer", None), ("posting", None, "transfer"), ("posting", None, "transfer"),
        ("applied", "adjust", "correction"), ("posting", None, "adjustment"), ("posting", None, "adjustment"),
        ("applied", "adjust", "promotion"), ("posting", None, "adjustment"), ("posting", None, "adjustment"),
        ("applied", "set_fee_tier", None),
        ("applied", "limits", None),
        ("rejected", "new", "price_outside_band"),
        ("rejected", "new", "notional_above_max"),
        ("accepted", None, None), ("posting", None, "hold"),
        ("rejected", "new", "too_many_open_orders"),
        ("applied", "trading_status", None),
        ("rejected", "cancel", "instrument_halted"),
        ("applied", "trading_status", None),
        ("applied", "account_status", None), ("cancelled", None, "account_halted"),
        ("posting", None, "release"),
        ("rejected", "account_status", "invalid_status"),
    ]
    by_seq = {e["seq"]: e for e in events}
    applied = [e for e in events if e["type"] == "applied"]
    assert applied[3] == {"type": "applied", "seq": 5, "op": "create_account", "account": "a2",
                          "max_open_orders": 1, "tier": 1, "owner": 7}
    settle = next(e for e in applied if e["op"] == "withdraw_settle")
    assert settle | {"seq": 0} == {"type": "applied", "seq": 0, "op": "withdraw_settle", "id": "w3",
                                   "account": "a1", "asset": "USDT", "amount": "20.000000"}
    external = [e for e in events if e["type"] == "posting" and e["account"] == "@external"]
    assert [(e["available"], e["available_after"]) for e in external] == [
        ("-100.000000", "-100.000000"), ("20.000000", "-80.000000")]
    adjust = [e for e in events if e["type"] == "posting" and e["kind"] == "adjustment"]
    assert [(e["account"], e["available"], e["ticket"], e["counterparty"]) for e in adjust] == [
        ("a2", "-2.500000", "T-9", "@adjustments"), ("@adjustments", "2.500000", "T-9", "a2"),
        ("@fees", "1.000000", "T-10", "@adjustments"), ("@adjustments", "-1.000000", "T-10", "@fees")]
    limits = next(e for e in applied if e["op"] == "limits")
    assert (limits["reference_price"], limits["max_notional"]) == ("100.00", "50.000000")
    release = events[-2]
    assert release["kind"] == "release" and release["account"] == "a2" and release["id"] == "ok"
    assert by_seq[release["cause"]]["type"] == "cancelled"
    a1_last = [e for e in events if e["type"] == "posting" and e["account"] == "a1"][-1]
    assert (a1_last["available_after"], a1_last["held_after"]) == ("67.500000", "0.000000")  # 100 - 20 - 12.5


# ---------------------------------------------------------------------------- review regressions

DEPOSIT_TX1 = {"op": "deposit", "account": "a1", "asset": "USDT", "amount": "1000", "ref": "tx1"}


@pytest.mark.parametrize(("bad", "message"), [
    (dict(BTC, symbol="X-USDT", base="X"), "instrument: X-USDT: base asset X is not defined"),
    (dict(BTC, symbol="FINE", tick_size="0.0000001", lot_size="1"),
     "instrument: FINE: tick_size 0.0000001 x lot_size 1 is finer than USDT's 6 decimals"),
    (dict(BTC, symbol="LATE", ts=10**23), "ts must be a non-negative integer (ns)"),
], ids=["unknown_asset", "finer_than_asset", "bad_ts"])
def test_a_bad_instrument_line_loses_none_of_the_queued_events(tmp_path: Path, bad: dict,
                                                                message: str) -> None:
    # The review's loss.jsonl: the deposit queued before the bad line used to vanish (seq 5..8 missing).
    events, errors = match_funds(tmp_path, jsonl(BTC, DEPOSIT_TX1, bad,
                                                 dict(DEPOSIT_TX1, ref="tx2", amount="1")))
    assert errors == [f"in.jsonl:3: {message}", "venue match: 1 bad line(s) of 4"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    deposits = [(e["seq"], e["amount"]) for e in events if e.get("op") == "deposit"]
    assert deposits == [(6, "1000.000000"), (9, "1.000000")]


def test_instrument_ts_is_checked_like_every_other_ts(tmp_path: Path) -> None:
    events, errors = match_funds(tmp_path, jsonl(
        DEPOSIT_TX1,
        dict(BTC, ts=-1),
        '{"op":"instrument","symbol":"BTC-USDT","base":"BTC","quote":"USDT","tick_size":"0.01",'
        '"lot_size":"0.0001","ts":100000000000000000000000}',
        dict(BTC, ts=True),
        dict(BTC, ts=2**63),
        dict(BTC, ts=1.5),
        dict(BTC, ts=2**63 - 1),
    ))
    assert errors == [f"in.jsonl:{n}: ts must be a non-negative integer (ns)" for n in (2, 3, 4, 5, 6)] + [
        "venue match: 5 bad line(s) of 7"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert [e["type"] for e in events[-2:]] == ["posting", "instrument_added"]


def test_names_that_are_not_utf8_text_are_refused_with_their_line(tmp_path: Path) -> None:
    lone = "\ud800"  # a JSON "\ud800": valid JSON, not encodable as UTF-8
    events, errors = match_funds(tmp_path, jsonl(
        BTC,
        dict(DEPOSIT_TX1, ref=lone),
        dict(DEPOSIT_TX1, account="a" + lone),
        {"op": "asset", "name": lone + "x", "decimals": 2},
        {"op": "withdraw_hold", "id": lone, "account": "a1", "asset": "USDT", "amount": "1"},
        {"op": "adjust", "account": "a1", "asset": "USDT", "amount": "1", "reason": "refund", "ticket": lone},
        new(lone, "a1", "buy", "1.00", "1"),
        {"op": "cancel", "id": lone},
        DEPOSIT_TX1,
    ))
    assert errors == [
        "in.jsonl:2: deposit: ref is not valid UTF-8 text (it holds a lone surrogate)",
        "in.jsonl:3: deposit: account is not valid UTF-8 text (it holds a lone surrogate)",
        "in.jsonl:4: asset: name is not valid UTF-8 text (it holds a lone surrogate)",
        "in.jsonl:5: withdraw_hold: id is not valid UTF-8 text (it holds a lone surrogate)",
        "in.jsonl:6: adjust: ticket is not valid UTF-8 text (it holds a lone surrogate)",
        "in.jsonl:7: new: id is not valid UTF-8 text (it holds a lone surrogate)",
        "in.jsonl:8: cancel: id is not valid UTF-8 text (it holds a lone surrogate)",
        "venue match: 7 bad line(s) of 9",
    ]
    # Only the last line did anything.
    assert [e.get("op") for e in events[4:]] == ["create_account", "deposit", None, None]


def test_a_rejected_event_keeps_its_own_type_seq_and_reason(tmp_path: Path) -> None:
    events, errors = match_funds(tmp_path, jsonl(
        BTC,
        {"op": "deposit", "account": "a1", "asset": "USDT", "amount": "1", "ref": "tx1"},
        new("x", "a1", "buy", "1.00", "1", seq=999, reason="fake", request_seq=7),
        {"op": "adjust", "account": "a1", "asset": "USDT", "amount": "-5", "reason": "refund",
         "ticket": "T1"},  # more than a1 has
        {"op": "adjust", "account": "a1", "asset": "USDT", "amount": "-0.5", "reason": "refund",
         "ticket": "T2"},
    ))
    assert errors == ["in.jsonl:3: new: unknown field 'reason'; new: unknown field 'request_seq'; "
                      "new: unknown field 'seq'", "venue match: 1 bad line(s) of 5"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    spoof, short = (e for e in events if e["type"] == "rejected")
    assert spoof == {"type": "rejected", "seq": 9, "reason": "malformed", "op": "new", "id": "x",
                     "account": "a1", "symbol": "BTC-USDT", "side": "buy", "order_type": "limit", "qty": "1",
                     "price": "1.00", "request_seq": 999, "request_reason": "fake", "request_request_seq": 7}
    assert short == {"type": "rejected", "seq": 10, "reason": "insufficient_funds", "op": "adjust",
                     "account": "a1", "asset": "USDT", "amount": "-5", "request_reason": "refund",
                     "ticket": "T1"}
    applied = next(e for e in events if e.get("op") == "adjust" and e["type"] == "applied")
    assert applied == {"type": "applied", "seq": 11, "op": "adjust", "account": "a1", "asset": "USDT",
                       "amount": "-0.500000", "adjust_reason": "refund", "ticket": "T2"}
