"""Exact examples of the funds-mode rules (core_cython/README.md "Funds mode").

Each test runs the Cython engine and the reference side by side (FundsTwin: every run compares all
event fields), so one hand-written expectation checks both; twin.check() also compares the whole
funds state and runs the ledger check.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from core_cython.records import (
    ACCOUNT_ADJUSTMENTS,
    ACCOUNT_EXTERNAL,
    ACCOUNT_FEES,
    AccountStatus,
    EventType,
    Op,
    PostingKind,
    Reason,
    TradingStatus,
    ref_hash,
)
from tests.engine_helpers import BUY, FOK, IOC, SELL, cancel, kinds, market, mass_cancel, new, replace
from tests.reference_funds import (
    Command,
    FundsTwin,
    add_asset,
    adjust,
    create_account,
    deposit,
    funds_instrument,
    set_account_status,
    set_fee_tier,
    set_fees,
    set_limits,
    set_trading_status,
    transfer,
    withdraw_hold,
    withdraw_release,
    withdraw_settle,
)
from tests.reference_model import MONEY_OPS, Event

pytest.importorskip("core_cython.engine")

BTC, USD, ETH = 1, 2, 3
SYM = 1  # BTC/USD: 1000 base units per lot, 7 quote units per tick x lot, 10% band
A, B, C = 16, 17, 18
BPL, QPTL = 1_000, 7
Ev, R, P = EventType, Reason, PostingKind

BASE_SETUP: list[Command] = [
    add_asset(BTC, 8), add_asset(USD, 2), add_asset(ETH, 18),
    funds_instrument(SYM, BTC, USD, base_per_lot=BPL, quote_per_tick_lot=QPTL, max_price=10_000,
                     max_qty=1_000, band_bps=1_000),
    create_account(A), create_account(B), create_account(C),
]


def funded(*extra: Command, usd: int = 1_000_000, btc: int = 1_000_000) -> FundsTwin:
    """Engine + reference: BASE_SETUP, A, B, C funded in USD and BTC, then extra."""
    cmds = list(BASE_SETUP)
    for acct in (A, B, C):
        cmds += [deposit(acct, USD, usd, f"usd-{acct}"), deposit(acct, BTC, btc, f"btc-{acct}")]
    return FundsTwin(*cmds, *extra)


def postings(events: list[Event]) -> list[tuple[str, int, int, int, int]]:
    """(kind, account, asset, change of available, change of held) of each POSTING."""
    return [(P(e["reason"]).name, e["account"], e["symbol"], e["price"], e["qty"])
            for e in events if e["type"] == Ev.POSTING]


def shape(events: list[Event]) -> list[str]:
    """Event types (reasons, posting kinds) in order."""
    return [P(e["reason"]).name if e["type"] == Ev.POSTING else
            f"{Ev(e['type']).name}" + (f"({R(e['reason']).name})" if e["reason"] else "") for e in events]


def n(price: int, qty: int) -> int:
    """The notional N(p, q) on SYM."""
    return price * qty * QPTL


def ceil_fee(notional: int, bps: int) -> int:
    return -((-notional * bps) // 10_000)


# ----- settlement, fees and rounding ------------------------------------------------------------

def test_one_trade_every_field() -> None:
    """A resting sell, a crossing buy: TRADE then the five postings with all their fields."""
    twin = funded(set_fees(SYM, 10, 25))
    ev = twin.run(new(1, B, SELL, 100, 2, ts=5))
    assert shape(ev) == ["ACCEPTED", "HOLD"]
    ev = twin.run(new(2, A, BUY, 100, 2, ts=6))
    accepted, hold, trade, *settle = ev
    notional = n(100, 2)  # 1400
    hpl = n(100, 1) + ceil_fee(n(100, 1), 25)  # 700 + 2 (1.75 rounded up)
    fee_b, fee_s = ceil_fee(notional, 25), ceil_fee(notional, 10)  # 4 (3.5), 2 (1.4)
    assert hold == {**hold, "type": Ev.POSTING, "reason": P.HOLD, "account": A, "symbol": USD, "order_id": 2,
                    "price": -hpl * 2, "qty": hpl * 2, "leaves": 1_000_000 - hpl * 2, "filled": hpl * 2,
                    "maker_order": accepted["seq"], "maker_account": 0, "maker_leaves": 0, "side": 0,
                    "ts": 6, "op": Op.NEW}
    assert trade["type"] == Ev.TRADE and trade["qty"] == 2 and trade["price"] == 100
    cause = trade["seq"]
    common = {"type": Ev.POSTING, "cmd_seq": trade["cmd_seq"], "ts": 6, "op": Op.NEW, "side": 0,
              "maker_order": cause}
    want = [
        dict(reason=P.TRADE, account=A, symbol=USD, order_id=2, price=hpl * 2 - notional - fee_b,
             qty=-hpl * 2, leaves=1_000_000 - notional - fee_b, filled=0, maker_account=B,
             maker_leaves=fee_b),
        dict(reason=P.TRADE, account=A, symbol=BTC, order_id=2, price=2 * BPL, qty=0,
             leaves=1_000_000 + 2 * BPL, filled=0, maker_account=B, maker_leaves=0),
        dict(reason=P.TRADE, account=B, symbol=BTC, order_id=1, price=0, qty=-2 * BPL,
             leaves=1_000_000 - 2 * BPL, filled=0, maker_account=A, maker_leaves=0),
        dict(reason=P.TRADE, account=B, symbol=USD, order_id=1, price=notional - fee_s, qty=0,
             leaves=1_000_000 + notional - fee_s, filled=0, maker_account=A, maker_leaves=fee_s),
        dict(reason=P.FEE, account=ACCOUNT_FEES, symbol=USD, order_id=0, price=fee_b + fee_s, qty=0,
             leaves=fee_b + fee_s, filled=0, maker_account=0, maker_leaves=0),
    ]
    assert len(settle) == len(want)
    for e, w in zip(settle, want, strict=True):
        assert {k: e[k] for k in {**common, **w}} == {**common, **w}
    assert [e["seq"] for e in settle] == list(range(cause + 1, cause + 6))
    assert twin.balance(ACCOUNT_FEES, USD) == (6, 0)
    twin.check()


def test_fee_ceil_rule_charge_and_rebate() -> None:
    """fee = ceil(N x bps / 10000): a charge rounds up, a rebate rounds toward zero."""
    twin = funded(set_fees(SYM, -25, 25))
    twin.run(new(1, B, SELL, 100, 1))  # maker: rebate 25 bps
    ev = twin.run(new(2, A, BUY, 100, 1))  # taker: 25 bps
    # N = 700: 700 x 25 / 10000 = 1.75 -> taker pays 2, maker rebate -1.75 -> -1
    quote = [e for e in ev if e["type"] == Ev.POSTING and e["symbol"] == USD and e["reason"] == P.TRADE]
    assert [e["maker_leaves"] for e in quote] == [2, -1]
    assert [e["price"] for e in quote][1] == 700 + 1  # the seller (maker) gets N - (-1)
    assert postings(ev)[-1] == ("FEE", ACCOUNT_FEES, USD, 1, 0)  # taker fee + maker fee = 2 - 1
    twin.check()


def test_rebate_never_exceeds_the_taker_fee() -> None:
    """maker fee = max(maker fee, -taker fee): a maker from a rebate tier against a cheap taker."""
    twin = funded(set_fees(SYM, -50, 50, tier=1), set_fees(SYM, 0, 10), set_fee_tier(B, 1))
    twin.run(new(1, B, SELL, 100, 1))  # maker rate -50 bps (fixed now)
    ev = twin.run(new(2, A, BUY, 100, 1))  # taker rate 10 bps (tier 0)
    # N = 700: taker fee ceil(0.7) = 1; maker fee ceil(-3.5) = -3, capped at -1
    quote = [e for e in ev if e["type"] == Ev.POSTING and e["symbol"] == USD and e["reason"] == P.TRADE]
    assert [e["maker_leaves"] for e in quote] == [1, -1]
    assert not [p for p in postings(ev) if p[0] == "FEE"]  # 1 - 1 = 0: the FEES posting is not emitted
    assert twin.balance(ACCOUNT_FEES, USD) == (0, 0)
    twin.check()


def test_negative_maker_fee_pays_a_buying_maker() -> None:
    twin = funded(set_fees(SYM, -10, 30))
    twin.run(new(1, A, BUY, 200, 5))  # maker buy: hold uses r = max(-10, 30, 0) = 30
    ev = twin.run(new(2, B, SELL, 200, 5))
    notional = n(200, 5)  # 7000: maker fee ceil(-7) = -7, taker fee 21
    hpl = n(200, 1) + ceil_fee(n(200, 1), 30)  # 1400 + 5 (4.2)
    assert postings(ev)[1:] == [
        ("TRADE", A, USD, hpl * 5 - notional + 7, -hpl * 5), ("TRADE", A, BTC, 5 * BPL, 0),
        ("TRADE", B, BTC, 0, -5 * BPL), ("TRADE", B, USD, notional - 21, 0),
        ("FEE", ACCOUNT_FEES, USD, 14, 0)]
    twin.check()


def test_per_lot_hold_rounding_covers_every_fill() -> None:
    """hold_per_lot rounds the fee up per lot, so any split of fills costs <= the hold consumed."""
    hpl = n(101, 1) + ceil_fee(n(101, 1), 33)  # 707 + 3 (2.33)
    twin = funded(set_fees(SYM, 33, 33), usd=0)
    twin.run(deposit(A, USD, hpl * 7, "exact"))
    ev = twin.run(new(1, A, BUY, 101, 7))
    assert postings(ev) == [("HOLD", A, USD, -hpl * 7, hpl * 7)]
    assert twin.balance(A, USD) == (0, hpl * 7)
    for i, qty in enumerate((1, 2, 4)):  # three fills at the limit price
        ev = twin.run(new(10 + i, B, SELL, 101, qty))
        cost = n(101, qty) + ceil_fee(n(101, qty), 33)
        assert postings(ev)[1] == ("TRADE", A, USD, hpl * qty - cost, -hpl * qty)
        assert hpl * qty - cost >= 0
    assert twin.balance(A, USD)[1] == 0  # a fully filled order holds nothing
    twin.check()


def test_one_lot_more_than_available_is_insufficient() -> None:
    hpl = n(101, 1) + ceil_fee(n(101, 1), 33)
    twin = funded(set_fees(SYM, 33, 33), usd=0)
    twin.run(deposit(A, USD, hpl * 7 - 1, "short by one"))
    ev = twin.run(new(1, A, BUY, 101, 7))
    assert shape(ev) == ["REJECTED(INSUFFICIENT_FUNDS)"]
    assert shape(twin.run(new(1, A, BUY, 101, 6)))[:2] == ["ACCEPTED", "HOLD"]
    twin.check()


def test_price_improvement_is_released_with_the_fill() -> None:
    """A buy limit at 105 that fills at 100: the buyer's quote posting releases the difference."""
    twin = funded()
    twin.run(new(1, B, SELL, 100, 3))
    ev = twin.run(new(2, A, BUY, 105, 3))
    assert postings(ev)[1] == ("TRADE", A, USD, n(105, 3) - n(100, 3), -n(105, 3))
    assert twin.balance(A, USD) == (1_000_000 - n(100, 3), 0)
    twin.check()


def test_resting_remainder_keeps_its_hold_and_cancel_releases_it() -> None:
    twin = funded()
    twin.run(new(1, B, SELL, 100, 2))
    twin.run(new(2, A, BUY, 100, 5))
    assert twin.balance(A, USD) == (1_000_000 - n(100, 5), n(100, 3))
    assert twin.eng.order(2)["held"] == n(100, 3)
    ev = twin.run(cancel(2, A))
    assert shape(ev) == ["CANCELLED(USER_CANCEL)", "RELEASE"]
    assert postings(ev) == [("RELEASE", A, USD, n(100, 3), -n(100, 3))]
    assert ev[1]["maker_order"] == ev[0]["seq"]
    assert twin.balance(A, USD) == (1_000_000 - n(100, 2), 0)
    twin.check()


def test_sell_holds_base_per_lot() -> None:
    twin = funded(btc=5 * BPL)
    ev = twin.run(new(1, A, SELL, 100, 5))
    assert postings(ev) == [("HOLD", A, BTC, -5 * BPL, 5 * BPL)]
    assert shape(twin.run(new(2, A, SELL, 100, 1))) == ["REJECTED(INSUFFICIENT_FUNDS)"]
    twin.check()


def test_order_rates_are_fixed_at_acceptance() -> None:
    """A schedule change applies to orders accepted after it; a replace keeps the order's rates."""
    twin = funded(set_fees(SYM, 0, 10))
    twin.run(new(1, B, SELL, 100, 4))
    twin.run(set_fees(SYM, 0, 100))
    assert twin.eng.fee_rates(A, SYM) == (0, 100)
    twin.run(new(2, A, BUY, 90, 2))  # rates (0, 100) now
    twin.run(set_fees(SYM, 0, 0))
    ev = twin.run(replace(2, A, 100, 2))  # re-enters at 100 and takes: taker fee still 100 bps
    notional = n(100, 2)
    assert [e["maker_leaves"] for e in ev if e["type"] == Ev.POSTING and e["symbol"] == USD
            and e["reason"] == P.TRADE] == [ceil_fee(notional, 100), 0]
    assert twin.eng.order(1)["maker_bps"] == 0 and twin.eng.order(1)["taker_bps"] == 10
    twin.check()


def test_fee_tier_fallback() -> None:
    twin = funded()
    assert twin.eng.fee_rates(A, SYM) == (0, 0)  # no schedule at all
    twin.run(set_fees(SYM, 5, 20), set_fees(SYM, -5, 15, tier=2), set_fee_tier(A, 2), set_fee_tier(B, 7))
    assert twin.eng.fee_rates(A, SYM) == (-5, 15)
    assert twin.eng.fee_rates(B, SYM) == (5, 20)  # tier 7 has no rates: tier 0's
    twin.check()


# ----- holds of market and stop orders ----------------------------------------------------------

def test_market_buy_holds_at_the_protection_price() -> None:
    """No trade yet: ref = best ask 100, band 10% -> P = 110; fills at 100 release the rest."""
    twin = funded(set_fees(SYM, 0, 20))
    twin.run(new(1, B, SELL, 100, 2), new(2, B, SELL, 120, 2))
    ev = twin.run(market(3, A, BUY, 3))
    hpl = n(110, 1) + ceil_fee(n(110, 1), 20)  # 770 + 2
    assert shape(ev) == ["ACCEPTED", "HOLD", "TRADE", "TRADE", "TRADE", "TRADE", "TRADE", "FEE",
                         "EXPIRED(MARKET_REMAINDER)", "RELEASE"]
    assert postings(ev)[0] == ("HOLD", A, USD, -hpl * 3, hpl * 3)
    assert postings(ev)[-1] == ("RELEASE", A, USD, hpl, -hpl)  # the lot above the protection price
    assert twin.eng.book(SYM)["asks"] == [(120, [(2, 2, 2)])]
    twin.check()


def test_market_buy_protection_from_last_price_then_reference_price() -> None:
    twin = funded(set_limits(SYM, ref_price=200))
    twin.run(new(1, B, SELL, 190, 5))  # inside the band around the reference price (180..220)
    ev = twin.run(market(2, A, BUY, 1))  # ref = configured 200 (no trade yet): P = 220
    assert postings(ev)[0] == ("HOLD", A, USD, -n(220, 1), n(220, 1))
    ev = twin.run(market(3, A, BUY, 1))  # ref = last trade 190: P = 209
    assert postings(ev)[0] == ("HOLD", A, USD, -n(209, 1), n(209, 1))
    assert twin.eng.instrument(SYM)["ref_price"] == 200
    twin.check()


def test_market_buy_hold_may_exceed_funds() -> None:
    twin = funded(usd=n(110, 3) - 1)
    twin.run(new(1, B, SELL, 100, 5))
    assert shape(twin.run(market(2, A, BUY, 3))) == ["REJECTED(INSUFFICIENT_FUNDS)"]
    twin.check()


def test_stop_market_buy_hold_and_execution_cap() -> None:
    """A stop market buy at 100 holds at P = 110 and never executes above it, even when the
    protection price at the trigger is higher."""
    twin = funded()
    ev = twin.run(new(1, A, BUY, 0, 4, ord_type=2, tif=IOC, stop=100))
    assert postings(ev) == [("HOLD", A, USD, -n(110, 4), n(110, 4))]
    assert twin.eng.order(1)["hold_price"] == 110
    twin.run(new(2, B, SELL, 105, 1), new(3, B, SELL, 108, 1), new(4, B, SELL, 112, 5))
    ev = twin.run(new(5, C, BUY, 105, 1))  # trades at 105: triggers; protection 105 + 10 = 115
    assert [(e["order_id"], e["price"], e["qty"]) for e in ev if e["type"] == Ev.TRADE] == [
        (5, 105, 1), (1, 108, 1)]
    assert shape(ev)[-2:] == ["EXPIRED(MARKET_REMAINDER)", "RELEASE"]
    assert postings(ev)[-1] == ("RELEASE", A, USD, n(110, 3), -n(110, 3))
    twin.check()


def test_stop_triggered_at_once_holds_first() -> None:
    twin = funded()
    twin.run(new(1, B, SELL, 100, 1), new(2, A, BUY, 100, 1), new(3, B, SELL, 101, 5))
    ev = twin.run(new(4, C, BUY, 0, 2, ord_type=2, stop=90))  # last 100 >= 90: triggers at once
    # P = 90 + 9: the execution limit is min(100 + 10, 99), below the best ask 101
    assert shape(ev) == ["ACCEPTED", "HOLD", "TRIGGERED", "EXPIRED(MARKET_REMAINDER)", "RELEASE"]
    assert postings(ev) == [("HOLD", C, USD, -n(99, 2), n(99, 2)), ("RELEASE", C, USD, n(99, 2), -n(99, 2))]
    twin.check()


def test_fok_unfillable_releases_its_hold() -> None:
    twin = funded()
    twin.run(new(1, B, SELL, 100, 1))
    ev = twin.run(new(2, A, BUY, 100, 5, tif=FOK))
    assert shape(ev) == ["ACCEPTED", "HOLD", "EXPIRED(FOK_UNFILLABLE)", "RELEASE"]
    assert twin.balance(A, USD) == (1_000_000, 0)
    twin.check()


def test_self_trade_cancels_release_both_holds() -> None:
    twin = funded()
    twin.run(new(1, A, SELL, 100, 2))
    ev = twin.run(new(2, A, BUY, 100, 3, stp=3))  # cancel both
    assert shape(ev) == ["ACCEPTED", "HOLD", "CANCELLED(SELF_TRADE)", "RELEASE", "CANCELLED(SELF_TRADE)",
                         "RELEASE"]
    assert twin.balance(A, USD) == (1_000_000, 0) and twin.balance(A, BTC) == (1_000_000, 0)
    twin.check()


# ----- replace ----------------------------------------------------------------------------------

def test_replace_holds_or_releases_the_difference() -> None:
    twin = funded()
    twin.run(new(1, A, BUY, 100, 5))
    ev = twin.run(replace(1, A, 100, 8))
    assert shape(ev) == ["REPLACED", "HOLD"] and postings(ev) == [("HOLD", A, USD, -n(100, 3), n(100, 3))]
    ev = twin.run(replace(1, A, 90, 8))
    assert postings(ev) == [("RELEASE", A, USD, n(10, 8), -n(10, 8))]
    assert shape(twin.run(replace(1, A, 0, 8))) == ["REPLACED"]  # same hold: no posting
    twin.check()


def test_replace_growth_beyond_available_is_rejected() -> None:
    twin = funded(usd=n(100, 6))
    twin.run(new(1, A, BUY, 100, 5))
    assert shape(twin.run(replace(1, A, 100, 7))) == ["REJECTED(INSUFFICIENT_FUNDS)"]
    assert twin.balance(A, USD) == (n(100, 1), n(100, 5))
    assert shape(twin.run(replace(1, A, 100, 6))) == ["REPLACED", "HOLD"]  # exactly what is available
    assert twin.balance(A, USD) == (0, n(100, 6))
    twin.check()


# ----- rejects change nothing -------------------------------------------------------------------

NOOP = new(999, A, BUY, 1, 1, reject=Reason.MALFORMED)  # consumes one command and one event


def state(twin: FundsTwin) -> tuple[Any, ...]:
    eng = twin.eng
    return (eng.balances(), eng.accounts(), eng.withdrawals(), eng.assets(), eng.open_orders(),
            [eng.book(s) for s in eng.symbols()], [eng.instrument(s) for s in eng.symbols()])


def assert_rejected_cleanly(setup: list[Command], bad: Mapping[str, int], reason: int) -> None:
    """bad is REJECTED(reason) and the state equals that of a run where a no-op reject took its place."""
    twin, control = funded(*setup), funded(*setup)
    ev = twin.run(bad)  # type: ignore[arg-type]
    assert shape(ev) == [f"REJECTED({R(reason).name})"]
    assert ev[0]["symbol"] == (bad.get("asset", 0) if bad["op"] in MONEY_OPS else bad.get("symbol", 0))
    control.run(NOOP)
    assert state(twin) == state(control)
    assert twin.eng.state_hash() == control.eng.state_hash()
    twin.check()


HALTED_B = [new(7, B, SELL, 100, 1), set_account_status(B, AccountStatus.HALTED)]
INT64_MAX = (1 << 63) - 1
# max price x max qty x quote_per_tick_lot = 2^61 - 2^40; a stop market buy at the max price with a
# 100% band holds at P = 2 x max price: its notional is just below 2^62, the fee takes it above
BIG = funds_instrument(2, ETH, USD, max_price=1 << 30, max_qty=1 << 10, quote_per_tick_lot=(1 << 21) - 1,
                       band_bps=10_000)
REJECTS: list[tuple[str, list[Command], Command, int]] = [
    ("edge reject first", [], deposit(A, USD, 5) | {"reject": Reason.MALFORMED}, R.MALFORMED),
    ("asset id 0", [], add_asset(0), R.INVALID_ASSET),
    ("asset id 4096", [], add_asset(4096), R.INVALID_ASSET),
    ("asset exists", [], add_asset(BTC), R.INVALID_ASSET),
    ("decimals 19", [], add_asset(9, 19), R.INVALID_ASSET),
    ("account id < 16", [], create_account(15), R.INVALID_ACCOUNT),
    ("account exists", [], create_account(A), R.ACCOUNT_EXISTS),
    ("max open 0", [], create_account(40, max_open=0), R.INVALID_LIMITS),
    ("deposit unknown account", [], deposit(99, USD, 5), R.UNKNOWN_ACCOUNT),
    ("deposit to EXTERNAL", [], deposit(ACCOUNT_EXTERNAL, USD, 5), R.INVALID_ACCOUNT),
    ("deposit to FEES", [], deposit(ACCOUNT_FEES, USD, 5), R.INVALID_ACCOUNT),
    ("deposit unknown asset", [], deposit(A, 9, 5), R.UNKNOWN_ASSET),
    ("deposit 0", [], deposit(A, USD, 0), R.INVALID_AMOUNT),
    ("deposit negative", [], deposit(A, USD, -5), R.INVALID_AMOUNT),
    ("deposit without ref", [], deposit(A, USD, 5, (0, 0)), R.MALFORMED),
    ("duplicate ref", [deposit(A, USD, 5, "tx")], deposit(B, BTC, 9, "tx"), R.DUPLICATE_REF),
    ("duplicate seed ref", [], deposit(A, USD, 1_000_000, "usd-16"), R.DUPLICATE_REF),
    ("supply limit", [deposit(A, ETH, (1 << 62) - 5, "big")], deposit(B, ETH, 6, "x"), R.SUPPLY_LIMIT),
    ("withdraw halted", HALTED_B, withdraw_hold(B, USD, 5, 1), R.ACCOUNT_HALTED),
    ("withdraw unknown asset", [], withdraw_hold(A, 9, 5, 1), R.UNKNOWN_ASSET),
    ("withdraw negative", [], withdraw_hold(A, USD, -5, 1), R.INVALID_AMOUNT),
    ("withdrawal id 0", [], withdraw_hold(A, USD, 5, 0), R.MALFORMED),
    ("withdrawal id pending", [withdraw_hold(B, BTC, 5, 1)], withdraw_hold(A, USD, 5, 1),
     R.DUPLICATE_WITHDRAWAL),
    ("withdraw more than available", [], withdraw_hold(A, USD, 1_000_001, 1), R.INSUFFICIENT_FUNDS),
    ("withdraw what orders hold", [new(1, A, BUY, 100, 10)], withdraw_hold(A, USD, 1_000_000, 1),
     R.INSUFFICIENT_FUNDS),
    ("settle unknown", [], withdraw_settle(1), R.UNKNOWN_WITHDRAWAL),
    ("settle another's", [withdraw_hold(A, USD, 5, 1)], withdraw_settle(1, B), R.UNKNOWN_WITHDRAWAL),
    ("release settled", [withdraw_hold(A, USD, 5, 1), withdraw_settle(1)], withdraw_release(1),
     R.UNKNOWN_WITHDRAWAL),
    ("transfer from system", [], transfer(ACCOUNT_EXTERNAL, A, USD, 5), R.INVALID_ACCOUNT),
    ("transfer from halted", HALTED_B, transfer(B, A, USD, 5), R.ACCOUNT_HALTED),
    ("transfer to unknown", [], transfer(A, 99, USD, 5), R.UNKNOWN_ACCOUNT),
    ("transfer to system", [], transfer(A, ACCOUNT_ADJUSTMENTS, USD, 5), R.INVALID_ACCOUNT),
    ("transfer to self", [], transfer(A, A, USD, 5), R.INVALID_ACCOUNT),
    ("transfer unknown asset", [], transfer(A, B, 9, 5), R.UNKNOWN_ASSET),
    ("transfer negative", [], transfer(A, B, USD, -5), R.INVALID_AMOUNT),
    ("transfer too much", [], transfer(A, B, USD, 1_000_001), R.INSUFFICIENT_FUNDS),
    ("adjust unknown account", [], adjust(99, USD, 5), R.UNKNOWN_ACCOUNT),
    ("adjust system account", [], adjust(ACCOUNT_EXTERNAL, USD, 5), R.INVALID_ACCOUNT),
    ("adjust 0", [], adjust(A, USD, 0), R.INVALID_AMOUNT),
    ("adjust without reason", [], adjust(A, USD, 5, reason=0), R.MISSING_REASON),
    ("adjust debit too big", [], adjust(A, USD, -1_000_001), R.INSUFFICIENT_FUNDS),
    ("adjust credit over supply", [], adjust(A, ETH, (1 << 62) + 1), R.SUPPLY_LIMIT),
    ("fees unknown symbol", [], set_fees(9, 0, 0), R.UNKNOWN_SYMBOL),
    ("maker bps -1001", [], set_fees(SYM, -1001, 1000), R.INVALID_FEES),
    ("taker bps 1001", [], set_fees(SYM, 0, 1001), R.INVALID_FEES),
    ("taker bps negative", [], set_fees(SYM, 5, -1), R.INVALID_FEES),
    ("maker + taker < 0", [], set_fees(SYM, -20, 10), R.INVALID_FEES),
    ("fee tier of FEES", [], set_fee_tier(ACCOUNT_FEES, 1), R.INVALID_ACCOUNT),
    ("fee tier unknown account", [], set_fee_tier(99, 1), R.UNKNOWN_ACCOUNT),
    ("account status 2", [], set_account_status(A, 2), R.INVALID_STATUS),
    ("trading status 3", [], set_trading_status(SYM, 3), R.INVALID_STATUS),
    ("trading status unknown symbol", [], set_trading_status(9, 1), R.UNKNOWN_SYMBOL),
    ("limits ref price above max", [], set_limits(SYM, ref_price=10_001), R.INVALID_LIMITS),
    ("limits negative notional", [], set_limits(SYM, max_notional=-1), R.INVALID_LIMITS),
    ("instrument unknown base", [], funds_instrument(2, 9, USD), R.INVALID_INSTRUMENT),
    ("instrument same assets", [], funds_instrument(2, USD, USD), R.INVALID_INSTRUMENT),
    ("instrument base per lot 0", [], funds_instrument(2, ETH, USD, base_per_lot=0), R.INVALID_INSTRUMENT),
    ("instrument notional overflow", [], funds_instrument(2, ETH, USD, quote_per_tick_lot=1 << 38),
     R.INVALID_INSTRUMENT),
    ("instrument base overflow", [], funds_instrument(2, ETH, USD, base_per_lot=1 << 52),
     R.INVALID_INSTRUMENT),
    ("order on halted instrument", [set_trading_status(SYM, 2)], new(1, A, BUY, 100, 1), R.INSTRUMENT_HALTED),
    ("order on cancel-only", [set_trading_status(SYM, 1)], new(1, A, BUY, 100, 1), R.CANCEL_ONLY),
    ("order of unknown account", [], new(1, 99, BUY, 100, 1), R.UNKNOWN_ACCOUNT),
    ("order of FEES", [], new(1, ACCOUNT_FEES, BUY, 100, 1), R.ACCOUNT_CANNOT_TRADE),
    ("order of EXTERNAL", [], new(1, ACCOUNT_EXTERNAL, BUY, 100, 1), R.ACCOUNT_CANNOT_TRADE),
    ("order of halted account", HALTED_B, new(1, B, BUY, 100, 1), R.ACCOUNT_HALTED),
    ("core check before funds", [set_trading_status(SYM, 2)], new(1, 99, BUY, 0, 1), R.INVALID_PRICE),
    ("band above", [set_limits(SYM, ref_price=100)], new(1, A, BUY, 111, 1), R.PRICE_OUTSIDE_BAND),
    ("band below", [set_limits(SYM, ref_price=100)], new(1, A, SELL, 89, 1), R.PRICE_OUTSIDE_BAND),
    ("max notional", [set_limits(SYM, max_notional=n(100, 10) - 1)], new(1, A, BUY, 100, 10),
     R.NOTIONAL_ABOVE_MAX),
    ("max notional sell", [set_limits(SYM, max_notional=n(100, 10) - 1)], new(1, A, SELL, 100, 10),
     R.NOTIONAL_ABOVE_MAX),
    ("max notional stop sell", [set_limits(SYM, max_notional=n(90, 10) - 1)],
     new(1, A, SELL, 0, 10, ord_type=2, stop=100), R.NOTIONAL_ABOVE_MAX),
    ("max notional market sell", [new(1, B, BUY, 100, 10), set_limits(SYM, max_notional=n(90, 10) - 1)],
     market(2, A, SELL, 10), R.NOTIONAL_ABOVE_MAX),
    ("too many open orders", [create_account(40, max_open=2), deposit(40, USD, 10**6, "u40"),
                              new(1, 40, BUY, 100, 1), new(2, 40, BUY, 0, 1, ord_type=2, stop=200)],
     new(3, 40, BUY, 100, 1), R.TOO_MANY_OPEN_ORDERS),
    ("insufficient funds", [], new(1, A, BUY, 10_000, 15), R.INSUFFICIENT_FUNDS),
    ("hold of 2^62 or more", [BIG, set_fees(2, 0, 1000)],
     new(1, A, BUY, 0, 1 << 10, symbol=2, ord_type=2, stop=1 << 30), R.NOTIONAL_ABOVE_MAX),
    ("hold just below 2^62", [BIG], new(1, A, BUY, 0, 1 << 10, symbol=2, ord_type=2, stop=1 << 30),
     R.INSUFFICIENT_FUNDS),
    ("deposit of int64 max", [], deposit(A, USD, INT64_MAX), R.SUPPLY_LIMIT),
    ("adjust by int64 max", [], adjust(A, USD, INT64_MAX), R.SUPPLY_LIMIT),
    ("adjust by int64 min", [], adjust(A, USD, -INT64_MAX - 1), R.INSUFFICIENT_FUNDS),
    ("transfer int64 max", [], transfer(A, B, USD, INT64_MAX), R.INSUFFICIENT_FUNDS),
    ("withdraw int64 max", [], withdraw_hold(A, USD, INT64_MAX, 1), R.INSUFFICIENT_FUNDS),
    ("cancel on halted instrument", [new(1, A, BUY, 100, 1), set_trading_status(SYM, 2)], cancel(1, A),
     R.INSTRUMENT_HALTED),
    ("cancel unknown before halted", [new(1, A, BUY, 100, 1), set_trading_status(SYM, 2)], cancel(1, B),
     R.UNKNOWN_ORDER),
    ("replace on cancel-only", [new(1, A, BUY, 100, 1), set_trading_status(SYM, 1)], replace(1, A, 0, 2),
     R.CANCEL_ONLY),
    ("replace outside band", [new(1, A, BUY, 100, 1), set_limits(SYM, ref_price=100)],
     replace(1, A, 111, 1), R.PRICE_OUTSIDE_BAND),
    ("replace above max notional", [new(1, A, BUY, 100, 1), set_limits(SYM, max_notional=n(100, 1))],
     replace(1, A, 0, 2), R.NOTIONAL_ABOVE_MAX),
]


@pytest.mark.parametrize(("setup", "bad", "reason"), [r[1:] for r in REJECTS], ids=[r[0] for r in REJECTS])
def test_reject_changes_nothing(setup: list[Command], bad: Command, reason: int) -> None:
    assert_rejected_cleanly(setup, bad, reason)


def test_band_edges_and_exemptions() -> None:
    """ref 100, band 10%: 90..110 accepted; stops and market orders are not band-checked."""
    twin = funded(set_limits(SYM, ref_price=100))
    for oid, price in enumerate((90, 110), start=1):
        assert shape(twin.run(new(oid, A, BUY if price == 90 else SELL, price, 1)))[0] == "ACCEPTED"
    assert shape(twin.run(new(3, A, BUY, 200, 1, stop=150)))[0] == "ACCEPTED"
    twin.run(new(4, B, BUY, 100, 1), new(5, C, SELL, 100, 1))  # last trade 100 now rules
    assert shape(twin.run(new(6, A, BUY, 111, 1))) == ["REJECTED(PRICE_OUTSIDE_BAND)"]
    twin.check()


def test_max_notional_edge() -> None:
    twin = funded(set_limits(SYM, max_notional=n(100, 10)))
    assert shape(twin.run(new(1, A, BUY, 100, 10)))[0] == "ACCEPTED"
    # a stop market buy's P = stop + stop x 10% // 1: 92 -> 101, 91 -> 100
    assert shape(twin.run(new(2, A, BUY, 0, 10, ord_type=2, stop=92))) == ["REJECTED(NOTIONAL_ABOVE_MAX)"]
    assert shape(twin.run(new(2, A, BUY, 0, 10, ord_type=2, stop=91)))[0] == "ACCEPTED"
    twin.check()


def test_open_order_limit_frees_up() -> None:
    twin = funded(create_account(40, max_open=1), deposit(40, USD, 10**6, "u40"))
    twin.run(new(1, 40, BUY, 100, 1))
    assert shape(twin.run(new(2, 40, BUY, 100, 1))) == ["REJECTED(TOO_MANY_OPEN_ORDERS)"]
    twin.run(cancel(1, 40))
    assert shape(twin.run(new(2, 40, BUY, 100, 1)))[0] == "ACCEPTED"
    assert twin.eng.accounts()[40]["open_orders"] == 1
    twin.check()


# ----- money commands ---------------------------------------------------------------------------

def test_deposit_postings_and_applied() -> None:
    twin = funded()
    hi, lo = ref_hash("chain-tx-1")
    ev = twin.run(deposit(A, ETH, 500, "chain-tx-1"))
    applied = ev[0]
    assert shape(ev) == ["APPLIED", "DEPOSIT", "DEPOSIT"]
    assert (applied["account"], applied["symbol"], applied["qty"]) == (A, ETH, 500)
    got = [(e["account"], e["price"], e["leaves"], e["maker_account"], e["maker_order"]) for e in ev[1:]]
    assert got == [
        (A, 500, 500, ACCOUNT_EXTERNAL, applied["seq"]), (ACCOUNT_EXTERNAL, -500, -500, A, applied["seq"])]
    assert shape(twin.run(deposit(B, ETH, 1, (hi, lo)))) == ["REJECTED(DUPLICATE_REF)"]
    twin.check()


def test_withdrawal_hold_settle_release() -> None:
    twin = funded()
    ev = twin.run(withdraw_hold(A, USD, 300, 7))
    assert postings(ev) == [("WITHDRAWAL_HOLD", A, USD, -300, 300)]
    assert twin.eng.withdrawals() == {7: (A, USD, 300)}
    ev = twin.run(withdraw_settle(7))  # account 0: any
    assert (ev[0]["account"], ev[0]["symbol"], ev[0]["qty"]) == (A, USD, 300)
    assert postings(ev) == [("WITHDRAWAL", A, USD, 0, -300), ("WITHDRAWAL", ACCOUNT_EXTERNAL, USD, 300, 0)]
    assert twin.balance(A, USD) == (1_000_000 - 300, 0)
    twin.run(withdraw_hold(A, USD, 200, 7))  # the id is free again
    ev = twin.run(withdraw_release(7, A))
    assert postings(ev) == [("WITHDRAWAL_RELEASE", A, USD, 200, -200)]
    assert twin.eng.withdrawals() == {}
    twin.check()


def test_supply_cap_counts_withdrawals_and_adjustments() -> None:
    twin = funded()
    twin.run(deposit(A, ETH, 1 << 62, "all of it"))
    assert shape(twin.run(adjust(B, ETH, 1))) == ["REJECTED(SUPPLY_LIMIT)"]
    twin.run(withdraw_hold(A, ETH, 10, 1), withdraw_settle(1))
    assert shape(twin.run(adjust(B, ETH, 10)))[0] == "APPLIED"
    assert shape(twin.run(deposit(B, ETH, 1, "one more"))) == ["REJECTED(SUPPLY_LIMIT)"]
    twin.check()


def test_transfers_and_adjustments() -> None:
    twin = funded(set_fees(SYM, 0, 100))
    twin.run(new(1, B, SELL, 100, 1), new(2, A, BUY, 100, 1))  # FEES earns 7
    assert shape(twin.run(transfer(A, ACCOUNT_FEES, USD, 1)))[0] == "APPLIED"  # and receive
    ev = twin.run(transfer(ACCOUNT_FEES, C, USD, 7))  # the fee account may pay out
    assert ev[0]["maker_account"] == C
    assert postings(ev) == [("TRANSFER", ACCOUNT_FEES, USD, -7, 0), ("TRANSFER", C, USD, 7, 0)]
    assert twin.balance(ACCOUNT_FEES, USD) == (1, 0)
    twin.run(set_account_status(B, AccountStatus.HALTED))
    assert shape(twin.run(transfer(C, B, USD, 5)))[0] == "APPLIED"  # a halted account may receive
    assert shape(twin.run(deposit(B, USD, 5, "to halted")))[0] == "APPLIED"
    ev = twin.run(adjust(B, USD, -5, reason=3, ticket=42))  # and be adjusted
    assert [(e["account"], e["order_id"], e["price"]) for e in ev[1:]] == [
        (B, 42, -5), (ACCOUNT_ADJUSTMENTS, 42, 5)]
    assert twin.balance(ACCOUNT_ADJUSTMENTS, USD) == (5, 0)
    twin.check()


def test_balance_api() -> None:
    twin = funded()
    assert twin.eng.balance(A, ETH) == (0, 0)
    with pytest.raises(KeyError):
        twin.eng.balance(99, USD)
    assert twin.eng.assets() == {BTC: 8, USD: 2, ETH: 18}
    assert twin.eng.accounts()[A] == {"owner": 0, "type": 1, "tier": 0, "status": 0, "max_open": 1_000,
                                      "open_orders": 0}
    twin.check()


# ----- kill switch, halts -----------------------------------------------------------------------

def test_kill_switch_cancels_and_releases_in_acceptance_order() -> None:
    twin = funded(new(1, C, SELL, 100, 1), new(2, C, BUY, 100, 1))  # a last price
    twin.run(new(10, A, BUY, 99, 2), new(11, B, SELL, 105, 1), new(12, A, SELL, 104, 3),
             new(13, A, BUY, 0, 1, ord_type=2, stop=110), set_trading_status(SYM, TradingStatus.HALTED))
    ev = twin.run(set_account_status(A, AccountStatus.HALTED))
    assert shape(ev) == ["APPLIED"] + ["CANCELLED(ACCOUNT_HALTED)", "RELEASE"] * 3  # even while halted
    assert [e["order_id"] for e in ev if e["type"] == Ev.CANCELLED] == [10, 12, 13]
    assert twin.balance(A, USD)[1] == 0 and twin.balance(A, BTC)[1] == 0
    assert twin.eng.accounts()[A]["status"] == AccountStatus.HALTED
    twin.run(set_trading_status(SYM, TradingStatus.OPEN))
    assert shape(twin.run(new(20, A, BUY, 100, 1))) == ["REJECTED(ACCOUNT_HALTED)"]
    twin.run(set_account_status(A, AccountStatus.ACTIVE))
    assert shape(twin.run(new(20, A, BUY, 100, 1)))[0] == "ACCEPTED"
    twin.check()


def test_halted_and_cancel_only_instruments() -> None:
    twin = funded(funds_instrument(2, ETH, USD), deposit(A, ETH, 100, "eth"))
    twin.run(new(1, A, BUY, 100, 1), new(2, A, SELL, 100, 1, symbol=2), new(3, A, BUY, 90, 1, symbol=2))
    twin.run(set_trading_status(2, TradingStatus.HALTED), set_trading_status(SYM, TradingStatus.CANCEL_ONLY))
    assert shape(twin.run(new(4, A, BUY, 100, 1))) == ["REJECTED(CANCEL_ONLY)"]
    assert shape(twin.run(cancel(2, A))) == ["REJECTED(INSTRUMENT_HALTED)"]
    ev = twin.run(mass_cancel(A))  # skips the halted instrument's orders (not counted)
    assert shape(ev) == ["CANCELLED(MASS_CANCEL)", "RELEASE", "MASS_CANCEL_DONE"]
    assert ev[-1]["qty"] == 1
    assert twin.eng.instrument(2)["status"] == TradingStatus.HALTED
    twin.run(set_trading_status(2, TradingStatus.OPEN))
    assert shape(twin.run(cancel(2, A))) == ["CANCELLED(USER_CANCEL)", "RELEASE"]
    twin.check()


# ----- core mode ---------------------------------------------------------------------------------

def test_core_mode_rejects_funds_ops() -> None:
    from core_cython.engine import Engine
    from tests.engine_helpers import batch
    from tests.reference_model import ReferenceEngine, events_from_array

    cmds = [{"op": op, "account": A, "asset": USD, "symbol": SYM, "qty": 5} for op in range(6, 20)]
    eng, ref = Engine(), ReferenceEngine()
    eng.process(batch(cmds))
    got = events_from_array(eng.events())
    assert got == ref.process(batch(cmds))
    assert kinds(got) == [("REJECTED", "FUNDS_OFF")] * 13 + [("REJECTED", "UNKNOWN_OP")]
    assert not eng.funds
    with pytest.raises(RuntimeError):
        eng.balances()
