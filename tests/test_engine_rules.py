"""One test per matching rule of core_cython/README.md, against the real engine.

Every scenario runs through a Twin (engine + reference model) which also checks that both agree,
then asserts the expected events by hand. Default instrument: symbol 1, prices 1..10_000,
quantities 1..1_000, no min notional, 10% market band.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pytest

from core_cython.records import EventType as Ev
from core_cython.records import Op, Stp
from core_cython.records import Reason as R
from tests.engine_helpers import (
    BUY,
    FOK,
    GTC,
    IOC,
    SELL,
    Twin,
    batch,
    cancel,
    instrument,
    kinds,
    market,
    mass_cancel,
    new,
    only,
    replace,
    run,
    trades,
    venue,
)
from tests.reference_model import Event

engine_mod = pytest.importorskip("core_cython.engine")
Engine = engine_mod.Engine

A, B, C = 1, 2, 3  # accounts


def k(*pairs: tuple[Ev, R]) -> list[tuple[str, str]]:
    """Expected kinds() output from enum pairs."""
    return [(ev.name, reason.name) for ev, reason in pairs]


ACC = (Ev.ACCEPTED, R.NONE)
TRD = (Ev.TRADE, R.NONE)
TRG = (Ev.TRIGGERED, R.NONE)
REP = (Ev.REPLACED, R.NONE)


def levels(twin: Twin, side: str, symbol: int = 1) -> list[tuple[int, list[int]]]:
    """(price, [order ids in priority]) of one side: priority at a glance."""
    return [(price, [oid for oid, _, _ in orders]) for price, orders in twin.book(symbol)[side]]


# ----------------------------------------------------------------------------- rejects leave no trace

NOOP = {"op": 99, "order_id": 1}  # unknown op: one REJECTED, no state change by definition


def assert_rejected_cleanly(setup: list[Mapping[str, int]], bad: Mapping[str, int], reason: R,
                            *, control: Mapping[str, int] = NOOP) -> Event:
    """bad is rejected with reason, and the state equals that of a run where a no-op took its place.

    The state hash covers the command/event counters, so the comparison is against a twin run
    that also consumed one command and one event.
    """
    twin = venue(*setup)
    books_before = {s: twin.book(s) for s in sorted(twin.ref.instruments)}
    events = twin.run(bad)
    assert kinds(events) == k((Ev.REJECTED, reason))
    assert {s: twin.book(s) for s in sorted(twin.ref.instruments)} == books_before
    control_twin = venue(*setup)
    assert kinds(control_twin.run(control))[0][0] == "REJECTED"
    assert twin.state_hash() == control_twin.state_hash(), "a rejected command changed the state"
    return events[0]


def test_noop_control_is_itself_clean() -> None:
    """The control used above: an unknown op and an edge-rejected NEW leave identical states."""
    setup = [new(1, A, SELL, 100, 5), new(2, B, BUY, 90, 5, stop=0)]
    assert_rejected_cleanly(setup, NOOP, R.UNKNOWN_OP, control=new(9, A, BUY, 1, 1, reject=R.MALFORMED))


BOOK = [new(1, A, SELL, 100, 5), new(2, B, BUY, 95, 5), new(3, C, SELL, 101, 5, stop=0)]


@pytest.mark.parametrize("reject", [R.OFF_TICK, R.OFF_LOT, R.MALFORMED])
def test_edge_reject_passes_through_before_any_other_check(reject: R) -> None:
    # unknown symbol, bad side and duplicate id too: the edge's reason still wins
    bad = new(1, A, 7, -1, 0, symbol=42, reject=reject)
    assert_rejected_cleanly(BOOK, bad, reject)


@pytest.mark.parametrize("reject", [R.OFF_TICK, R.OFF_LOT, R.MALFORMED])
def test_edge_reject_of_cancel_and_replace_comes_first(reject: R) -> None:
    setup = [new(1, A, SELL, 100, 5)]
    assert_rejected_cleanly(setup, {**cancel(1, A), "reject": reject}, reject)
    assert_rejected_cleanly(setup, {**cancel(9, B), "reject": reject}, reject)  # before UNKNOWN_ORDER
    assert_rejected_cleanly(setup, {**replace(1, A, 0, 4), "reject": reject}, reject)
    assert_rejected_cleanly(setup, {**replace(1, A, -1, 0), "reject": reject}, reject)


def test_unknown_symbol() -> None:
    assert_rejected_cleanly(BOOK, new(10, A, BUY, 100, 1, symbol=2), R.UNKNOWN_SYMBOL)
    assert_rejected_cleanly(BOOK, new(10, A, BUY, 100, 1, symbol=0), R.UNKNOWN_SYMBOL)


@pytest.mark.parametrize("field,value,reason", [
    ("side", 0, R.INVALID_SIDE), ("side", 3, R.INVALID_SIDE),
    ("ord_type", 0, R.INVALID_ORDER_TYPE), ("ord_type", 3, R.INVALID_ORDER_TYPE),
    ("tif", 0, R.INVALID_TIF), ("tif", 4, R.INVALID_TIF),
    ("stp", 4, R.INVALID_STP), ("stp", 255, R.INVALID_STP),
])
def test_invalid_enums(field: str, value: int, reason: R) -> None:
    assert_rejected_cleanly(BOOK, {**new(10, A, BUY, 100, 1), field: value}, reason)


def test_enum_checks_come_in_spec_order() -> None:
    bad = {**new(1, A, 0, 100, 1), "ord_type": 0, "tif": 0, "stp": 9}  # also a duplicate id
    assert_rejected_cleanly(BOOK, bad, R.INVALID_SIDE)
    assert_rejected_cleanly(BOOK, {**bad, "side": BUY}, R.INVALID_ORDER_TYPE)
    assert_rejected_cleanly(BOOK, {**bad, "side": BUY, "ord_type": 1}, R.INVALID_TIF)
    assert_rejected_cleanly(BOOK, {**bad, "side": BUY, "ord_type": 1, "tif": GTC}, R.INVALID_STP)


def test_duplicate_id_of_resting_order_and_of_pending_stop() -> None:
    setup = [*BOOK, new(4, A, BUY, 99, 1, stop=200)]
    # duplicate is checked before quantity and price
    assert_rejected_cleanly(setup, new(1, B, BUY, 0, 0), R.DUPLICATE_ORDER_ID)
    assert_rejected_cleanly(setup, new(4, B, SELL, 100, 1), R.DUPLICATE_ORDER_ID)


def test_ids_of_finished_orders_may_be_reused() -> None:
    twin = venue(new(1, A, SELL, 100, 5), new(2, B, BUY, 100, 5))  # both fill: 1 and 2 are finished
    assert kinds(twin.run(new(1, C, BUY, 90, 1), new(2, C, BUY, 91, 1, tif=IOC))) == k(
        ACC, ACC, (Ev.EXPIRED, R.IOC_REMAINDER))
    assert kinds(twin.run(cancel(1, C), new(1, A, BUY, 90, 1))) == k((Ev.CANCELLED, R.USER_CANCEL), ACC)


@pytest.mark.parametrize("qty,reason", [(0, R.INVALID_QTY), (-5, R.INVALID_QTY),
                                        (1, R.QTY_BELOW_MIN), (1_001, R.QTY_ABOVE_MAX)])
def test_quantity_checks(qty: int, reason: R) -> None:
    setup = [instrument(2, max_price=500, min_qty=2, max_qty=1_000)]
    assert_rejected_cleanly(setup, new(10, A, BUY, -1, qty, symbol=2), reason)  # qty before price


@pytest.mark.parametrize("price,reason", [(0, R.INVALID_PRICE), (-1, R.INVALID_PRICE),
                                          (10_001, R.PRICE_ABOVE_MAX), (2**62, R.PRICE_ABOVE_MAX)])
def test_limit_price_checks(price: int, reason: R) -> None:
    assert_rejected_cleanly(BOOK, new(10, A, BUY, price, 1, stop=-1), reason)  # price before stop


def test_market_orders_ignore_price() -> None:
    twin = venue(new(1, A, SELL, 100, 5))
    events = twin.run(market(2, B, BUY, 2, price=-7))
    assert only(events, Ev.ACCEPTED)["price"] == 0
    assert trades(events) == [(2, 1, 100, 2)]


@pytest.mark.parametrize("stop", [-1, 10_001])
def test_invalid_stop_price(stop: int) -> None:
    assert_rejected_cleanly(BOOK, new(10, A, BUY, 100, 1, stop=stop, display=-1), R.INVALID_STOP_PRICE)
    assert_rejected_cleanly(BOOK, market(10, A, BUY, 1, stop=stop), R.INVALID_STOP_PRICE)


@pytest.mark.parametrize("cmd", [
    new(10, A, BUY, 90, 5, display=-1),
    market(10, A, BUY, 5, display=2),
    market(10, A, BUY, 5, display=9, tif=GTC),  # even display >= qty
    new(10, A, BUY, 90, 5, tif=IOC, display=2),
    new(10, A, BUY, 90, 5, tif=FOK, display=2),
    new(10, A, BUY, 90, 5, stop=120, display=2),
], ids=["negative", "market", "market-display-ge-qty", "ioc", "fok", "stop"])
def test_invalid_display_qty(cmd: dict[str, int]) -> None:
    assert_rejected_cleanly(BOOK, {**cmd, "flags": 1}, R.INVALID_DISPLAY_QTY)  # display before flags


@pytest.mark.parametrize("cmd", [
    market(10, A, BUY, 5, post_only=True),
    new(10, A, BUY, 90, 5, tif=IOC, post_only=True),
    new(10, A, BUY, 90, 5, tif=FOK, post_only=True),
    new(10, A, BUY, 90, 5, stop=120, post_only=True),
], ids=["market", "ioc", "fok", "stop"])
def test_post_only_only_on_resting_orders(cmd: dict[str, int]) -> None:
    assert_rejected_cleanly(BOOK, cmd, R.INVALID_FLAGS)


def test_notional_below_min_for_limit_and_stop_limit_only() -> None:
    setup = [instrument(2, max_price=500, min_qty=1, max_qty=100, min_notional=1_000),
             new(1, A, SELL, 100, 50, symbol=2)]
    assert_rejected_cleanly(setup, new(10, B, BUY, 99, 10, symbol=2), R.NOTIONAL_BELOW_MIN)
    assert_rejected_cleanly(setup, new(10, B, BUY, 99, 10, symbol=2, stop=120), R.NOTIONAL_BELOW_MIN)
    twin = venue(*setup)
    assert kinds(twin.run(new(10, B, BUY, 100, 10, symbol=2))) == k(ACC, TRD)  # exactly the minimum
    assert kinds(twin.run(market(11, B, BUY, 1, symbol=2))) == k(ACC, TRD)  # markets: no notional


@pytest.mark.parametrize("side,price", [(BUY, 100), (BUY, 150), (SELL, 95), (SELL, 10)])
def test_post_only_that_would_take_is_rejected(side: int, price: int) -> None:
    assert_rejected_cleanly(BOOK, new(10, C, side, price, 1, post_only=True), R.POST_ONLY_WOULD_TAKE)


def test_post_only_that_does_not_cross_rests() -> None:
    twin = venue(*BOOK)
    assert kinds(twin.run(new(10, C, BUY, 99, 1, post_only=True),
                          new(11, C, SELL, 100, 3, post_only=True, display=1))) == k(ACC, ACC)
    assert levels(twin, "bids")[0] == (99, [10])
    assert twin.book()["asks"][0] == (100, [(1, 5, 5), (11, 3, 1)])


def test_market_without_opposite_liquidity_is_rejected() -> None:
    setup = [new(1, A, BUY, 100, 5)]  # same-side liquidity does not count
    assert_rejected_cleanly(setup, market(10, B, BUY, 1), R.NO_LIQUIDITY)
    assert_rejected_cleanly(setup, market(10, B, BUY, 1, tif=FOK), R.NO_LIQUIDITY)


def test_stop_market_may_be_accepted_without_liquidity() -> None:
    twin = venue()
    assert kinds(twin.run(market(1, A, BUY, 1, stop=100))) == k(ACC)
    assert twin.stops() == [1]


def test_unknown_op() -> None:
    for op in (0, 19, 255):
        assert_rejected_cleanly(BOOK, {"op": op, "order_id": 1, "account": A}, R.UNKNOWN_OP,
                                control=new(9, A, BUY, 1, 1, reject=R.MALFORMED))


def test_funds_ops_are_rejected_in_core_mode() -> None:
    for op in range(6, 19):
        assert_rejected_cleanly(BOOK, {"op": op, "order_id": 1, "account": A}, R.FUNDS_OFF,
                                control=new(9, A, BUY, 1, 1, reject=R.MALFORMED))


# ----------------------------------------------------------------------------- instruments

def test_add_instrument() -> None:
    twin = Twin()
    ev = only(twin.run(instrument(7, max_price=500, min_qty=2, max_qty=50, min_notional=10,
                                  band_bps=200)), Ev.INSTRUMENT_ADDED)
    assert ev["symbol"] == 7
    assert twin.book(7) == {"bids": [], "asks": []}
    assert kinds(twin.run(new(1, A, BUY, 500, 2, symbol=7))) == k(ACC)


@pytest.mark.parametrize("fields", [
    dict(symbol=1), dict(symbol=0), dict(max_price=0), dict(max_price=-5), dict(min_qty=0),
    dict(min_qty=11, max_qty=10), dict(min_notional=-1), dict(band_bps=0), dict(band_bps=10_001),
    dict(max_price=2**31, max_qty=2**31),  # product == 2^62
    dict(max_price=2**40, max_qty=2**40),  # product overflows int64
    dict(max_price=2**62, max_qty=1),
    dict(max_price=(1 << 62) // 3 + 1, max_qty=3),  # product just above 2^62
    dict(symbol=65_536), dict(symbol=2**32 - 1),
], ids=lambda f: ",".join(f"{k}={v}" for k, v in f.items()))
def test_invalid_instrument(fields: dict[str, int]) -> None:
    cmd = instrument(**{"symbol": 5, **fields})
    assert_rejected_cleanly([], cmd, R.INVALID_INSTRUMENT)


@pytest.mark.parametrize("fields", [
    dict(symbol=65_535), dict(band_bps=1), dict(band_bps=10_000), dict(min_qty=7, max_qty=7),
    dict(min_notional=0),
    dict(max_price=2**62 - 1, max_qty=1), dict(max_price=2**31 - 1, max_qty=2**31),
], ids=lambda f: ",".join(f"{k}={v}" for k, v in f.items()))
def test_valid_instrument_boundaries(fields: dict[str, int]) -> None:
    assert kinds(Twin().run(instrument(**{"symbol": 5, **fields}))) == k((Ev.INSTRUMENT_ADDED, R.NONE))


def test_instrument_overflow_bound_is_exact() -> None:
    max_qty = 3
    max_price = (1 << 62) // max_qty  # max_price * max_qty = 2^62 - 1 < 2^62: valid per spec
    assert kinds(Twin().run(instrument(5, max_price=max_price, min_qty=1, max_qty=max_qty))) == k(
        (Ev.INSTRUMENT_ADDED, R.NONE))


# ----------------------------------------------------------------------------- limit orders

def test_limit_rests_when_it_does_not_cross() -> None:
    twin = venue()
    events = twin.run(new(1, A, BUY, 99, 5, ts=77), new(2, B, SELL, 100, 3))
    acc = events[0]
    assert {f: acc[f] for f in ("type", "order_id", "account", "price", "qty", "leaves", "filled",
                                "side", "symbol", "ts", "op")} == dict(
        type=Ev.ACCEPTED, order_id=1, account=A, price=99, qty=5, leaves=5, filled=0, side=BUY, symbol=1,
        ts=77, op=Op.NEW)
    assert twin.book() == {"bids": [(99, [(1, 5, 5)])], "asks": [(100, [(2, 3, 3)])]}
    assert twin.eng.live_orders() == 2
    assert twin.eng.last_price(1) == 0


def test_crossing_limit_trades_at_maker_price() -> None:
    twin = venue(new(1, A, SELL, 100, 5))
    events = twin.run(new(2, B, BUY, 103, 3))
    assert kinds(events) == k(ACC, TRD)
    t = events[1]
    assert (t["order_id"], t["account"], t["side"], t["price"], t["qty"], t["leaves"], t["filled"],
            t["maker_order"], t["maker_account"], t["maker_leaves"]) == (2, B, BUY, 100, 3, 0, 3, 1, A, 2)
    assert twin.book() == {"bids": [], "asks": [(100, [(1, 2, 2)])]}
    assert twin.eng.last_price(1) == 100


def test_price_then_time_priority() -> None:
    twin = venue(new(1, A, SELL, 101, 1), new(2, B, SELL, 100, 1), new(3, C, SELL, 100, 1),
                 new(4, A, SELL, 102, 1))
    assert levels(twin, "asks") == [(100, [2, 3]), (101, [1]), (102, [4])]
    events = twin.run(new(5, B, BUY, 101, 4))
    assert trades(events) == [(5, 2, 100, 1), (5, 3, 100, 1), (5, 1, 101, 1)]
    assert twin.book() == {"bids": [(101, [(5, 1, 1)])], "asks": [(102, [(4, 1, 1)])]}


def test_sell_taker_takes_highest_bids_first() -> None:
    twin = venue(new(1, A, BUY, 98, 2), new(2, B, BUY, 99, 2), new(3, C, BUY, 97, 2))
    events = twin.run(new(4, A, SELL, 98, 5))
    assert trades(events) == [(4, 2, 99, 2), (4, 1, 98, 2)]
    assert levels(twin, "asks") == [(98, [4])]
    assert levels(twin, "bids") == [(97, [3])]


def test_partial_fills_report_leaves_and_filled() -> None:
    twin = venue(new(1, A, SELL, 100, 2), new(2, B, SELL, 100, 3))
    events = twin.run(new(3, C, BUY, 100, 10))
    assert [(e["leaves"], e["filled"], e["maker_leaves"]) for e in events if e["type"] == Ev.TRADE] == [
        (8, 2, 0), (5, 5, 0)]
    assert twin.book() == {"bids": [(100, [(3, 5, 5)])], "asks": []}
    events = twin.run(new(4, A, SELL, 100, 1))
    assert (events[1]["maker_order"], events[1]["maker_leaves"]) == (3, 4)


# ----------------------------------------------------------------------------- market orders

def test_market_sweeps_levels_then_expires_remainder() -> None:
    twin = venue(new(1, A, SELL, 100, 2), new(2, B, SELL, 105, 2))
    events = twin.run(market(3, C, BUY, 10))
    assert trades(events) == [(3, 1, 100, 2), (3, 2, 105, 2)]
    exp = only(events, Ev.EXPIRED)
    assert (exp["reason"], exp["qty"], exp["leaves"], exp["filled"]) == (R.MARKET_REMAINDER, 6, 0, 4)
    assert twin.eng.live_orders() == 0


def test_market_gtc_means_ioc() -> None:
    twin = venue(new(1, A, SELL, 100, 2))
    assert kinds(twin.run(market(2, B, BUY, 5, tif=GTC))) == k(ACC, TRD, (Ev.EXPIRED, R.MARKET_REMAINDER))
    assert twin.book()["bids"] == []


def test_market_protection_band_from_best_price_without_trades() -> None:
    # thin book with an absurd ask: ref = best ask 100, band 10% -> limit 110
    twin = venue(new(1, A, SELL, 100, 1), new(2, A, SELL, 110, 1), new(3, A, SELL, 111, 1),
                 new(4, A, SELL, 9_999, 100))
    events = twin.run(market(5, B, BUY, 50))
    assert trades(events) == [(5, 1, 100, 1), (5, 2, 110, 1)]
    assert only(events, Ev.EXPIRED)["qty"] == 48
    assert levels(twin, "asks") == [(111, [3]), (9_999, [4])]


def test_market_protection_band_uses_last_trade_price() -> None:
    twin = venue(new(1, A, SELL, 100, 1), new(2, B, BUY, 100, 1))  # last = 100
    twin.run(new(3, A, SELL, 111, 5))  # best ask 111 is beyond 100 + 10%
    events = twin.run(market(4, B, BUY, 5))
    assert trades(events) == []
    assert only(events, Ev.EXPIRED)["reason"] == R.MARKET_REMAINDER
    assert levels(twin, "asks") == [(111, [3])]


def test_market_sell_protection_floors_at_one() -> None:
    twin = venue(instrument(2, max_price=100, min_qty=1, max_qty=100, band_bps=10_000),
                 new(1, A, BUY, 2, 1, symbol=2), new(2, A, BUY, 1, 1, symbol=2))
    events = twin.run(market(3, B, SELL, 5, symbol=2))  # ref 2, delta 2 -> limit max(1, 0) = 1
    assert trades(events) == [(3, 1, 2, 1), (3, 2, 1, 1)]


def test_market_band_rounds_delta_down() -> None:
    # ref 105, band 10% -> delta 10 (10.5 rounded down) -> sell limit 95
    twin = venue(new(1, A, BUY, 105, 1), new(2, A, BUY, 95, 1), new(3, A, BUY, 94, 1))
    assert trades(twin.run(market(4, B, SELL, 3))) == [(4, 1, 105, 1), (4, 2, 95, 1)]


# ----------------------------------------------------------------------------- IOC / FOK

def test_ioc_fills_what_it_can_and_expires_the_rest() -> None:
    twin = venue(new(1, A, SELL, 100, 2), new(2, A, SELL, 102, 2))
    events = twin.run(new(3, B, BUY, 101, 5, tif=IOC))
    assert trades(events) == [(3, 1, 100, 2)]
    exp = only(events, Ev.EXPIRED)
    assert (exp["reason"], exp["qty"], exp["filled"], exp["price"]) == (R.IOC_REMAINDER, 3, 2, 101)
    assert twin.book()["bids"] == []


def test_ioc_without_crossing_expires_whole() -> None:
    twin = venue(new(1, A, SELL, 100, 2))
    assert kinds(twin.run(new(2, B, BUY, 99, 5, tif=IOC))) == k(ACC, (Ev.EXPIRED, R.IOC_REMAINDER))
    assert twin.eng.live_orders() == 1


def test_fok_fills_completely_across_levels() -> None:
    twin = venue(new(1, A, SELL, 100, 2), new(2, C, SELL, 101, 3))
    events = twin.run(new(3, B, BUY, 101, 5, tif=FOK))
    assert kinds(events) == k(ACC, TRD, TRD)
    assert twin.eng.live_orders() == 0


def test_fok_that_cannot_fill_has_no_effect() -> None:
    setup = [new(1, A, SELL, 100, 2), new(2, C, SELL, 101, 3), new(3, C, SELL, 102, 10)]
    twin = venue(*setup)
    book, last = twin.book(), twin.eng.last_price(1)
    events = twin.run(new(4, B, BUY, 101, 6, tif=FOK))
    assert kinds(events) == k(ACC, (Ev.EXPIRED, R.FOK_UNFILLABLE))
    assert (events[1]["qty"], events[1]["leaves"], events[1]["filled"]) == (6, 0, 0)
    assert twin.book() == book and twin.eng.last_price(1) == last


def test_fok_counts_iceberg_refills() -> None:
    twin = venue(new(1, A, SELL, 100, 10, display=2))
    events = twin.run(new(2, B, BUY, 100, 9, tif=FOK))
    assert trades(events) == [(2, 1, 100, 2)] * 4 + [(2, 1, 100, 1)]
    assert twin.book()["asks"] == [(100, [(1, 1, 1)])]


def test_fok_market_is_bounded_by_the_band() -> None:
    twin = venue(new(1, A, SELL, 100, 2), new(2, A, SELL, 120, 5))
    assert kinds(twin.run(market(3, B, BUY, 3, tif=FOK))) == k(ACC, (Ev.EXPIRED, R.FOK_UNFILLABLE))
    assert kinds(twin.run(market(4, B, BUY, 2, tif=FOK))) == k(ACC, TRD)


def test_fok_stp_none_trades_with_self() -> None:
    twin = venue(new(1, A, SELL, 100, 3))
    assert trades(twin.run(new(2, A, BUY, 100, 3, tif=FOK))) == [(2, 1, 100, 3)]


def test_fok_cancel_maker_skips_self_orders_and_cancels_them_only_if_it_fills() -> None:
    setup = [new(1, A, SELL, 100, 3), new(2, B, SELL, 100, 2), new(3, C, SELL, 101, 2)]
    twin = venue(*setup)
    events = twin.run(new(4, A, BUY, 101, 5, tif=FOK, stp=Stp.CANCEL_MAKER))  # 2 + 2 reachable < 5
    assert kinds(events) == k(ACC, (Ev.EXPIRED, R.FOK_UNFILLABLE))
    assert levels(twin, "asks") == [(100, [1, 2]), (101, [3])]  # self order survived
    events = twin.run(new(5, A, BUY, 101, 4, tif=FOK, stp=Stp.CANCEL_MAKER))
    assert kinds(events) == k(ACC, (Ev.CANCELLED, R.SELF_TRADE), TRD, TRD)
    assert twin.eng.live_orders() == 0


@pytest.mark.parametrize("stp", [Stp.CANCEL_TAKER, Stp.CANCEL_BOTH])
def test_fok_cancel_taker_reaches_only_visible_qty_ahead_of_first_self_order(stp: Stp) -> None:
    # level 100: iceberg 1 (shows 2 of 10), then own order 2, then 3; level 101 beyond
    setup = [new(1, B, SELL, 100, 10, display=2), new(2, A, SELL, 100, 5), new(3, C, SELL, 100, 5),
             new(4, C, SELL, 101, 5)]
    twin = venue(*setup)
    book = twin.book()
    assert kinds(twin.run(new(5, A, BUY, 101, 3, tif=FOK, stp=stp))) == k(
        ACC, (Ev.EXPIRED, R.FOK_UNFILLABLE))
    assert twin.book() == book  # not even the self order was touched
    assert trades(twin.run(new(6, A, BUY, 101, 2, tif=FOK, stp=stp))) == [(6, 1, 100, 2)]


@pytest.mark.parametrize("stp", [Stp.CANCEL_TAKER, Stp.CANCEL_BOTH])
def test_fok_cancel_taker_counts_whole_levels_before_the_self_order(stp: Stp) -> None:
    # level 100 has no self order: the iceberg's refills are reachable before level 101's self order
    twin = venue(new(1, B, SELL, 100, 6, display=2), new(2, A, SELL, 101, 5))
    events = twin.run(new(3, A, BUY, 101, 6, tif=FOK, stp=stp))
    assert trades(events) == [(3, 1, 100, 2)] * 3
    assert levels(twin, "asks") == [(101, [2])]


# ----------------------------------------------------------------------------- self-trade prevention

def test_stp_none_trades_with_self() -> None:
    twin = venue(new(1, A, SELL, 100, 2))
    assert trades(twin.run(new(2, A, BUY, 100, 2, stp=Stp.NONE))) == [(2, 1, 100, 2)]


def test_stp_is_decided_by_the_taker_mode() -> None:
    twin = venue(new(1, A, SELL, 100, 2, stp=Stp.CANCEL_BOTH))
    assert trades(twin.run(new(2, A, BUY, 100, 2))) == [(2, 1, 100, 2)]


def test_stp_ignores_other_accounts() -> None:
    twin = venue(new(1, B, SELL, 100, 2))
    assert trades(twin.run(new(2, A, BUY, 100, 2, stp=Stp.CANCEL_TAKER))) == [(2, 1, 100, 2)]


def test_stp_cancel_maker_cancels_self_makers_and_continues() -> None:
    twin = venue(new(1, B, SELL, 100, 1), new(2, A, SELL, 100, 3), new(3, C, SELL, 100, 1))
    events = twin.run(new(4, A, BUY, 100, 5, stp=Stp.CANCEL_MAKER))
    assert kinds(events) == k(ACC, TRD, (Ev.CANCELLED, R.SELF_TRADE), TRD)
    cxl = events[2]
    assert (cxl["order_id"], cxl["account"], cxl["qty"], cxl["leaves"]) == (2, A, 3, 0)
    assert twin.book() == {"bids": [(100, [(4, 3, 3)])], "asks": []}


def test_stp_cancel_taker_cancels_taker_remainder_and_stops() -> None:
    twin = venue(new(1, B, SELL, 100, 1), new(2, A, SELL, 100, 3), new(3, C, SELL, 100, 1))
    events = twin.run(new(4, A, BUY, 100, 5, stp=Stp.CANCEL_TAKER))
    assert kinds(events) == k(ACC, TRD, (Ev.CANCELLED, R.SELF_TRADE))
    cxl = events[2]
    assert (cxl["order_id"], cxl["qty"], cxl["leaves"], cxl["filled"]) == (4, 4, 0, 1)
    assert levels(twin, "asks") == [(100, [2, 3])]
    assert twin.book()["bids"] == []  # a GTC taker cancelled by STP does not rest


def test_stp_cancel_both_cancels_maker_then_taker() -> None:
    twin = venue(new(1, A, SELL, 100, 3), new(2, C, SELL, 100, 1))
    events = twin.run(new(3, A, BUY, 100, 5, stp=Stp.CANCEL_BOTH))
    assert kinds(events) == k(ACC, (Ev.CANCELLED, R.SELF_TRADE), (Ev.CANCELLED, R.SELF_TRADE))
    assert [(e["order_id"], e["qty"]) for e in events[1:]] == [(1, 3), (3, 5)]
    assert levels(twin, "asks") == [(100, [2])]


def test_stp_applies_to_market_orders() -> None:
    twin = venue(new(1, A, SELL, 100, 3), new(2, C, SELL, 101, 1))
    events = twin.run(market(3, A, BUY, 5, stp=Stp.CANCEL_MAKER))
    assert kinds(events) == k(ACC, (Ev.CANCELLED, R.SELF_TRADE), TRD, (Ev.EXPIRED, R.MARKET_REMAINDER))


# ----------------------------------------------------------------------------- icebergs

def test_iceberg_shows_only_display_qty() -> None:
    twin = venue(new(1, A, SELL, 100, 10, display=3))
    assert twin.book()["asks"] == [(100, [(1, 10, 3)])]
    assert trades(twin.run(new(2, B, BUY, 100, 2))) == [(2, 1, 100, 2)]
    assert twin.book()["asks"] == [(100, [(1, 8, 1)])]


def test_display_at_least_qty_is_a_plain_order() -> None:
    twin = venue(new(1, A, SELL, 100, 4, display=4), new(2, A, SELL, 100, 4, display=9))
    assert twin.book()["asks"] == [(100, [(1, 4, 4), (2, 4, 4)])]
    assert trades(twin.run(new(3, B, BUY, 100, 4))) == [(3, 1, 100, 4)]


def test_iceberg_refill_goes_to_the_back_of_its_level() -> None:
    twin = venue(new(1, A, SELL, 100, 10, display=2), new(2, B, SELL, 100, 3))
    events = twin.run(new(3, C, BUY, 100, 4))
    assert trades(events) == [(3, 1, 100, 2), (3, 2, 100, 2)]  # 1 refilled behind 2
    assert twin.book()["asks"] == [(100, [(2, 1, 1), (1, 8, 2)])]


def test_iceberg_alone_is_matched_again_after_refill() -> None:
    twin = venue(new(1, A, SELL, 100, 5, display=2))
    events = twin.run(new(2, B, BUY, 100, 5))
    assert [(e["qty"], e["maker_leaves"]) for e in events if e["type"] == Ev.TRADE] == [
        (2, 3), (2, 1), (1, 0)]
    assert twin.eng.live_orders() == 0


def test_iceberg_taker_rests_showing_display() -> None:
    twin = venue(new(1, A, SELL, 100, 3))
    twin.run(new(2, B, BUY, 100, 10, display=4))
    assert twin.book()["bids"] == [(100, [(2, 7, 4)])]
    twin.run(new(3, A, SELL, 100, 5))
    assert twin.book()["bids"] == [(100, [(2, 2, 2)])]  # refill shows min(display, leaves)


# ----------------------------------------------------------------------------- stops

def test_stop_waits_outside_the_book() -> None:
    twin = venue(new(1, A, SELL, 100, 5), new(2, B, BUY, 100, 1))  # last = 100
    events = twin.run(market(3, C, BUY, 2, stop=101), new(4, C, SELL, 95, 2, stop=99))
    assert kinds(events) == k(ACC, ACC)
    assert twin.stops() == [3, 4]
    assert twin.book()["bids"] == [] and levels(twin, "asks") == [(100, [1])]
    assert twin.eng.live_orders() == 3


def test_buy_stop_triggers_at_or_through_its_price() -> None:
    twin = venue(new(1, A, SELL, 100, 5), new(2, A, SELL, 101, 5), market(3, C, BUY, 2, stop=101))
    assert kinds(twin.run(new(4, B, BUY, 100, 1))) == k(ACC, TRD)  # 100 < 101: nothing
    events = twin.run(new(5, B, BUY, 101, 5))  # prints 100 then 101
    assert kinds(events) == k(ACC, TRD, TRD, TRG, TRD)
    trg = events[3]
    assert (trg["order_id"], trg["price"], trg["account"], trg["side"]) == (3, 101, C, BUY)
    assert trades(events)[-1] == (3, 2, 101, 2)
    assert twin.stops() == []


def test_sell_stop_triggers_at_or_through_its_price() -> None:
    twin = venue(new(1, A, BUY, 100, 5), new(2, A, BUY, 98, 5), market(3, C, SELL, 3, stop=99))
    assert kinds(twin.run(new(4, B, SELL, 100, 4))) == k(ACC, TRD)
    events = twin.run(new(5, B, SELL, 98, 2))  # prints 100 then 98
    assert kinds(events) == k(ACC, TRD, TRD, TRG, TRD)
    assert trades(events)[-1] == (3, 2, 98, 3)


def test_stops_see_every_print_of_a_sweep_not_only_the_last() -> None:
    # a sell sweep prints 101 then 99: its max (101) triggers the buy stop at 100
    twin = venue(new(1, A, BUY, 101, 1), new(2, A, BUY, 99, 1), new(3, A, SELL, 105, 1),
                 market(4, C, BUY, 1, stop=100))
    events = twin.run(new(5, B, SELL, 99, 2))
    assert [(e["type"], e["order_id"], e["price"]) for e in events if e["type"] != Ev.ACCEPTED] == [
        (Ev.TRADE, 5, 101), (Ev.TRADE, 5, 99), (Ev.TRIGGERED, 4, 100), (Ev.TRADE, 4, 105)]
    # a buy sweep prints 99 then 101: its min (99) triggers the sell stop at 100
    twin = venue(new(1, A, SELL, 99, 1), new(2, A, SELL, 101, 1), new(3, A, BUY, 95, 1),
                 market(4, C, SELL, 1, stop=100))
    events = twin.run(new(5, B, BUY, 101, 2))
    assert [(e["type"], e["order_id"], e["price"]) for e in events if e["type"] != Ev.ACCEPTED] == [
        (Ev.TRADE, 5, 99), (Ev.TRADE, 5, 101), (Ev.TRIGGERED, 4, 100), (Ev.TRADE, 4, 95)]


def test_stop_limit_executes_as_limit_and_rests() -> None:
    twin = venue(new(1, A, SELL, 100, 1), new(2, A, SELL, 103, 5), new(3, C, BUY, 102, 4, stop=100))
    events = twin.run(new(4, B, BUY, 100, 1))
    assert kinds(events) == k(ACC, TRD, TRG)
    assert events[2]["price"] == 100  # TRIGGERED carries the stop price
    assert twin.book()["bids"] == [(102, [(3, 4, 4)])]


def test_stop_limit_ioc_and_fok_after_trigger() -> None:
    twin = venue(new(1, A, SELL, 100, 1), new(2, A, SELL, 101, 2),
                 new(3, C, BUY, 101, 5, stop=100, tif=IOC), new(4, C, BUY, 101, 5, stop=100, tif=FOK))
    events = twin.run(new(5, B, BUY, 100, 1))
    assert kinds(events) == k(ACC, TRD, TRG, TRD, (Ev.EXPIRED, R.IOC_REMAINDER),
                              TRG, (Ev.EXPIRED, R.FOK_UNFILLABLE))


def test_triggered_stop_market_without_liquidity_expires() -> None:
    twin = venue(new(1, A, SELL, 100, 1), market(2, C, BUY, 3, stop=100))
    events = twin.run(new(3, B, BUY, 100, 1))
    assert kinds(events) == k(ACC, TRD, TRG, (Ev.EXPIRED, R.NO_LIQUIDITY))
    assert (events[-1]["order_id"], events[-1]["qty"]) == (2, 3)


def test_triggered_stop_market_uses_the_band_around_last_trade() -> None:
    twin = venue(new(1, A, SELL, 100, 1), new(2, A, SELL, 110, 1), new(3, A, SELL, 111, 1),
                 market(4, C, BUY, 5, stop=100))
    events = twin.run(new(5, B, BUY, 100, 1))
    assert trades(events) == [(5, 1, 100, 1), (4, 2, 110, 1)]
    assert events[-1]["reason"] == R.MARKET_REMAINDER


def test_stops_trigger_together_in_acceptance_order() -> None:
    # accepted: 3 (stop 102), 4 (stop 101), 5 (sell stop 105, satisfied by min 100) - one round
    twin = venue(new(1, A, SELL, 100, 1), new(2, A, SELL, 102, 1),
                 new(3, C, BUY, 90, 1, stop=102), new(4, C, BUY, 90, 1, stop=101),
                 new(5, C, SELL, 150, 1, stop=105), new(6, C, BUY, 90, 1, stop=103))
    events = twin.run(new(7, B, BUY, 102, 2))
    assert [e["order_id"] for e in events if e["type"] == Ev.TRIGGERED] == [3, 4, 5]
    assert twin.stops() == [6]


def test_stop_cascade_runs_in_rounds() -> None:
    # round 1 (trade 100): stops 4 and 5 (accepted in that order). Stop 3, accepted first, is only
    # satisfied by stop 4's trade at 105, so it triggers in round 2, after stop 5.
    twin = venue(new(1, A, SELL, 100, 1), new(2, A, SELL, 105, 5),
                 market(3, C, BUY, 1, stop=105), market(4, C, BUY, 1, stop=100),
                 new(5, C, BUY, 90, 1, stop=100))
    events = twin.run(new(6, B, BUY, 100, 1))
    assert [(e["type"], e["order_id"]) for e in events if e["type"] in (Ev.TRIGGERED, Ev.TRADE)] == [
        (Ev.TRADE, 6), (Ev.TRIGGERED, 4), (Ev.TRADE, 4), (Ev.TRIGGERED, 5), (Ev.TRIGGERED, 3),
        (Ev.TRADE, 3)]
    assert all(e["cmd_seq"] == events[0]["cmd_seq"] for e in events)


def test_long_cascade_of_stops() -> None:
    asks = [new(100 + i, A, SELL, 100 + i, 1) for i in range(6)]
    stops = [market(200 + i, C, BUY, 1, stop=100 + i) for i in range(5)]  # each buys the next ask
    twin = venue(*asks, *stops)
    events = twin.run(new(1, B, BUY, 100, 1))
    assert [t[2] for t in trades(events)] == [100, 101, 102, 103, 104, 105]
    assert twin.stops() == [] and twin.book()["asks"] == []


def test_stop_triggers_at_once_if_last_price_satisfies_it() -> None:
    twin = venue(new(1, A, SELL, 100, 1), new(2, B, BUY, 100, 1), new(3, A, SELL, 101, 5))
    events = twin.run(market(4, C, BUY, 2, stop=99))
    assert kinds(events) == k(ACC, TRG, TRD)
    assert events[1]["price"] == 99 and twin.stops() == []
    events = twin.run(new(5, C, SELL, 101, 1, stop=101))  # sell stop: last 101 <= 101
    assert kinds(events) == k(ACC, TRG)  # nothing to sell into: the stop-limit rests
    assert twin.book()["asks"] == [(101, [(3, 3, 3), (5, 1, 1)])]


def test_stop_does_not_trigger_without_a_last_trade() -> None:
    twin = venue(new(1, A, SELL, 100, 5))
    assert kinds(twin.run(market(2, C, BUY, 2, stop=1))) == k(ACC)
    assert twin.stops() == [2]


def test_immediately_triggered_stop_can_trigger_others() -> None:
    twin = venue(new(1, A, SELL, 100, 1), new(2, B, BUY, 100, 1),  # last 100
                 new(3, A, SELL, 102, 1), new(4, A, SELL, 103, 1), market(5, C, BUY, 1, stop=102))
    events = twin.run(market(6, C, BUY, 1, stop=100))
    assert [(e["type"], e["order_id"]) for e in events if e["type"] != Ev.ACCEPTED] == [
        (Ev.TRIGGERED, 6), (Ev.TRADE, 6), (Ev.TRIGGERED, 5), (Ev.TRADE, 5)]


# ----------------------------------------------------------------------------- cancel

def test_cancel_by_owner_and_by_operator() -> None:
    twin = venue(new(1, A, SELL, 100, 5), new(2, B, BUY, 100, 2), new(3, A, BUY, 90, 1, stop=120))
    events = twin.run(cancel(1, A))
    cxl = only(events, Ev.CANCELLED)
    assert (cxl["reason"], cxl["order_id"], cxl["account"], cxl["qty"], cxl["leaves"], cxl["filled"]) == (
        R.USER_CANCEL, 1, A, 3, 0, 2)
    assert kinds(twin.run(cancel(3, 0))) == k((Ev.CANCELLED, R.USER_CANCEL))  # operator, pending stop
    assert twin.eng.live_orders() == 0 and twin.stops() == []


def test_cancel_unknown_or_foreign_order_is_rejected() -> None:
    setup = [new(1, A, SELL, 100, 5), new(2, A, SELL, 90, 1, stop=80)]
    assert_rejected_cleanly(setup, cancel(1, B), R.UNKNOWN_ORDER)
    assert_rejected_cleanly(setup, cancel(2, C), R.UNKNOWN_ORDER)
    assert_rejected_cleanly(setup, cancel(9, A), R.UNKNOWN_ORDER)
    assert_rejected_cleanly([*setup, cancel(1, A)], cancel(1, A), R.UNKNOWN_ORDER)  # already gone


# ----------------------------------------------------------------------------- replace

def test_replace_decrease_keeps_priority() -> None:
    twin = venue(new(1, A, SELL, 100, 5), new(2, B, SELL, 100, 5))
    events = twin.run(replace(1, A, 100, 3))
    rep = only(events, Ev.REPLACED)
    assert (rep["price"], rep["qty"], rep["leaves"], rep["filled"]) == (100, 3, 3, 0)
    assert twin.book()["asks"] == [(100, [(1, 3, 3), (2, 5, 5)])]
    twin.run(replace(1, A, 0, 2))  # price 0 keeps the price
    assert twin.book()["asks"] == [(100, [(1, 2, 2), (2, 5, 5)])]


def test_replace_same_qty_and_price_keeps_priority() -> None:
    twin = venue(new(1, A, SELL, 100, 5), new(2, B, SELL, 100, 5))
    assert kinds(twin.run(replace(1, A, 100, 5))) == k(REP)
    assert levels(twin, "asks") == [(100, [1, 2])]


def test_replace_total_qty_counts_filled() -> None:
    twin = venue(new(1, A, SELL, 100, 10), new(2, B, SELL, 100, 5), new(3, C, BUY, 100, 4))
    rep = only(twin.run(replace(1, A, 0, 6)), Ev.REPLACED)
    assert (rep["qty"], rep["leaves"], rep["filled"]) == (6, 2, 4)
    assert levels(twin, "asks") == [(100, [1, 2])]


def test_replace_decrease_of_iceberg_keeps_priority_and_caps_visible() -> None:
    twin = venue(new(1, A, SELL, 100, 10, display=4), new(2, B, SELL, 100, 5))
    twin.run(replace(1, A, 0, 3))
    assert twin.book()["asks"] == [(100, [(1, 3, 3), (2, 5, 5)])]
    twin = venue(new(1, A, SELL, 100, 10, display=4), new(2, B, SELL, 100, 5))
    twin.run(replace(1, A, 0, 8))
    assert twin.book()["asks"] == [(100, [(1, 8, 4), (2, 5, 5)])]


def test_replace_increase_loses_priority() -> None:
    twin = venue(new(1, A, SELL, 100, 5), new(2, B, SELL, 100, 5))
    assert kinds(twin.run(replace(1, A, 0, 6))) == k(REP)
    assert twin.book()["asks"] == [(100, [(2, 5, 5), (1, 6, 6)])]


def test_replace_iceberg_increase_refills_display() -> None:
    twin = venue(new(1, A, SELL, 100, 10, display=4), new(2, B, SELL, 100, 5), new(3, C, BUY, 100, 3))
    assert twin.book()["asks"] == [(100, [(1, 7, 1), (2, 5, 5)])]
    twin.run(replace(1, A, 0, 12))
    assert twin.book()["asks"] == [(100, [(2, 5, 5), (1, 9, 4)])]


def test_replace_price_change_loses_priority_even_when_moving_back() -> None:
    twin = venue(new(1, A, SELL, 100, 5), new(2, B, SELL, 100, 5))
    twin.run(replace(1, A, 101, 5), replace(1, A, 100, 5))
    assert levels(twin, "asks") == [(100, [2, 1])]


def test_crossing_replace_trades_then_rests() -> None:
    twin = venue(new(1, A, SELL, 100, 2), new(2, B, BUY, 98, 5))
    events = twin.run(replace(2, B, 101, 5))
    assert kinds(events) == k(REP, TRD)
    assert trades(events) == [(2, 1, 100, 2)]
    assert (events[1]["leaves"], events[1]["filled"]) == (3, 2)
    assert twin.book() == {"bids": [(101, [(2, 3, 3)])], "asks": []}


def test_replace_reentry_applies_stp() -> None:
    twin = venue(new(1, A, SELL, 100, 2), new(2, A, BUY, 98, 5, stp=Stp.CANCEL_TAKER))
    events = twin.run(replace(2, A, 100, 5))
    assert kinds(events) == k(REP, (Ev.CANCELLED, R.SELF_TRADE))
    assert twin.eng.live_orders() == 1


def test_replace_reentry_triggers_stops() -> None:
    twin = venue(new(1, A, SELL, 100, 2), new(2, A, SELL, 101, 2), new(3, B, BUY, 98, 2),
                 market(4, C, BUY, 2, stop=100))
    events = twin.run(replace(3, B, 100, 2))
    assert kinds(events) == k(REP, TRD, TRG, TRD)
    assert all(e["op"] == Op.REPLACE for e in events)


def test_replace_qty_not_above_filled_is_rejected() -> None:
    setup = [new(1, A, SELL, 100, 10), new(2, B, BUY, 100, 4)]
    ev = assert_rejected_cleanly(setup, replace(1, A, 0, 4), R.REPLACE_QTY_TOO_LOW)
    assert ev["order_id"] == 1
    assert_rejected_cleanly(setup, replace(1, A, 0, 3), R.REPLACE_QTY_TOO_LOW)
    twin = venue(*setup)
    rep = only(twin.run(replace(1, A, 0, 5)), Ev.REPLACED)
    assert (rep["leaves"], rep["filled"]) == (1, 4)


@pytest.mark.parametrize("qty,price,reason", [
    (0, 0, R.INVALID_QTY), (-1, 0, R.INVALID_QTY), (3, -1, R.INVALID_PRICE), (3, 10_001, R.PRICE_ABOVE_MAX)])
def test_replace_checks_qty_and_price_before_qty_too_low(qty: int, price: int, reason: R) -> None:
    # README order: the new quantity and price must be valid at all before they are compared
    # with what has filled.
    setup = [new(1, A, SELL, 100, 10), new(2, B, BUY, 100, 4)]  # filled 4
    assert_rejected_cleanly(setup, replace(1, A, price, qty), reason)


@pytest.mark.parametrize("price,qty,reason", [
    (0, 1_001, R.QTY_ABOVE_MAX), (-1, 5, R.INVALID_PRICE), (10_001, 5, R.PRICE_ABOVE_MAX)])
def test_replace_price_and_qty_checks(price: int, qty: int, reason: R) -> None:
    assert_rejected_cleanly([new(1, A, SELL, 100, 10)], replace(1, A, price, qty), reason)


def test_replace_checks_qty_min_and_notional_with_new_total() -> None:
    setup = [instrument(2, max_price=500, min_qty=2, max_qty=100, min_notional=500),
             new(1, A, SELL, 100, 10, symbol=2)]
    assert_rejected_cleanly(setup, replace(1, A, 0, 4, symbol=2), R.NOTIONAL_BELOW_MIN)
    assert_rejected_cleanly(setup, replace(1, A, 60, 5, symbol=2), R.NOTIONAL_BELOW_MIN)
    assert_rejected_cleanly([*setup, new(2, B, SELL, 100, 10, symbol=2)],
                            replace(2, B, 0, 1, symbol=2), R.QTY_BELOW_MIN)


def test_replace_post_only_that_would_cross_is_rejected() -> None:
    setup = [new(1, A, SELL, 100, 5), new(2, B, BUY, 98, 5, post_only=True)]
    assert_rejected_cleanly(setup, replace(2, B, 100, 5), R.POST_ONLY_WOULD_TAKE)
    twin = venue(*setup)
    assert kinds(twin.run(replace(2, B, 99, 5))) == k(REP)
    assert levels(twin, "bids") == [(99, [2])]


def test_replace_unknown_foreign_or_stop_is_rejected() -> None:
    setup = [new(1, A, SELL, 100, 5), new(2, A, BUY, 90, 1, stop=120)]
    assert_rejected_cleanly(setup, replace(1, B, 100, 4), R.UNKNOWN_ORDER)
    assert_rejected_cleanly(setup, replace(9, A, 100, 4), R.UNKNOWN_ORDER)
    assert_rejected_cleanly(setup, replace(2, A, 95, 1), R.NOT_REPLACEABLE)
    assert_rejected_cleanly(setup, replace(2, B, 95, 1), R.UNKNOWN_ORDER)  # ownership first
    assert kinds(venue(*setup).run(replace(1, 0, 100, 4))) == k(REP)  # operator may


def test_triggered_stop_limit_resting_is_replaceable() -> None:
    twin = venue(new(1, A, SELL, 100, 1), new(2, C, BUY, 99, 3, stop=100), new(3, B, BUY, 100, 1))
    assert levels(twin, "bids") == [(99, [2])]
    assert kinds(twin.run(replace(2, C, 98, 3))) == k(REP)


# ----------------------------------------------------------------------------- mass cancel

MIXED = [instrument(2, max_price=1_000, min_qty=1, max_qty=100),
         new(1, A, SELL, 100, 5), new(2, B, SELL, 101, 5), new(3, A, BUY, 90, 5, symbol=2),
         new(4, A, BUY, 95, 2, stop=120), new(5, B, BUY, 80, 5, symbol=2), new(6, A, SELL, 102, 1)]


def mass_cancelled(events: list[Event]) -> list[int]:
    """The ids a mass cancel cancelled; checks the closing MASS_CANCEL_DONE counts them."""
    *cancels, done = events
    assert all((e["type"], e["reason"]) == (Ev.CANCELLED, R.MASS_CANCEL) for e in cancels)
    assert (done["type"], done["qty"]) == (Ev.MASS_CANCEL_DONE, len(cancels))
    return [e["order_id"] for e in cancels]


def test_mass_cancel_by_account_across_symbols_in_acceptance_order() -> None:
    twin = venue(*MIXED)
    assert mass_cancelled(twin.run(mass_cancel(A))) == [1, 3, 4, 6]
    assert twin.eng.live_orders() == 2 and twin.stops() == []


def test_mass_cancel_by_symbol() -> None:
    twin = venue(*MIXED)
    assert mass_cancelled(twin.run(mass_cancel(0, 2))) == [3, 5]
    assert twin.book(2) == {"bids": [], "asks": []}


def test_mass_cancel_by_account_and_symbol() -> None:
    twin = venue(*MIXED)
    assert mass_cancelled(twin.run(mass_cancel(B, 1))) == [2]


def test_mass_cancel_everything() -> None:
    twin = venue(*MIXED)
    cxl = twin.run(mass_cancel())
    assert mass_cancelled(cxl) == [1, 2, 3, 4, 5, 6]
    assert twin.eng.live_orders() == 0


def test_mass_cancel_by_session_tag_spares_the_accounts_other_sessions() -> None:
    """Cancel-on-disconnect: a gateway names the session in NEW's aux1 and in the mass cancel."""
    s1, s2 = 0x0001_0000_0000_0007, -2  # aux1 is an i64 field; the engine reads the tag as a u64
    twin = venue(new(1, A, SELL, 100, 5, session=s1), new(2, A, SELL, 101, 5, session=s2),
                 new(3, B, SELL, 102, 5, session=s1), new(4, A, BUY, 90, 2, stop=120, session=s1),
                 new(5, A, SELL, 103, 1), replace(1, A, 0, 9))
    assert twin.eng.order(1)["session_tag"] == s1  # a replace keeps the order's session
    assert twin.eng.order(2)["session_tag"] == (1 << 64) - 2
    restored = Engine.from_snapshot(twin.eng.snapshot())
    assert restored.order(4)["session_tag"] == s1
    twin.eng = restored  # the tags survive a snapshot
    assert mass_cancelled(twin.run(mass_cancel(A, session=s1))) == [1, 4]
    assert mass_cancelled(twin.run(mass_cancel(0, session=s1))) == [3]
    assert mass_cancelled(twin.run(mass_cancel(0, session=s2 - 1))) == []
    assert twin.eng.live_orders() == 2  # 2 (the other session) and 5 (no tag)


def test_mass_cancel_keeps_acceptance_order_after_replace() -> None:
    twin = venue(*MIXED, replace(1, A, 0, 9))  # 1 lost its time priority, not its acceptance seq
    assert mass_cancelled(twin.run(mass_cancel(A))) == [1, 3, 4, 6]


def test_mass_cancel_with_nothing_to_cancel_is_still_answered() -> None:
    twin = venue(*MIXED)
    events = twin.run(mass_cancel(C, 1))
    assert [(e["type"], e["account"], e["symbol"], e["qty"]) for e in events] == [
        (Ev.MASS_CANCEL_DONE, C, 1, 0)]
    assert twin.eng.live_orders() == 6


# ----------------------------------------------------------------------------- sequencing, snapshots

def test_seq_numbers_are_assigned_in_place_and_gap_free() -> None:
    eng = Engine()
    cmds = batch([instrument(), new(1, A, SELL, 100, 5), new(2, B, BUY, 100, 2), {"op": 99}])
    n = eng.process(cmds)
    assert list(cmds["seq"]) == [1, 2, 3, 4]
    assert eng.last_cmd_seq == 4
    events = run(eng, new(3, C, BUY, 100, 9), cancel(3, C))
    assert n == 5
    assert [e["seq"] for e in events] == [6, 7, 8]  # ACCEPTED, TRADE, CANCELLED
    assert [e["cmd_seq"] for e in events] == [5, 5, 6]
    assert eng.last_event_seq == 8


def test_event_carries_ts_and_op_of_its_command() -> None:
    twin = venue(new(1, A, SELL, 100, 5, ts=10))
    events = twin.run(replace(1, A, 0, 4, ts=20), cancel(1, A, ts=30))
    assert [(e["ts"], e["op"]) for e in events] == [(20, Op.REPLACE), (30, Op.CANCEL)]


def test_empty_batch() -> None:
    eng = Engine()
    assert eng.process(batch([])) == 0
    assert len(eng.events()) == 0 and eng.last_cmd_seq == 0


def test_process_timed_matches_process() -> None:
    cmds = [instrument(), new(1, A, SELL, 100, 5), market(2, B, BUY, 3), cancel(1, A)]
    plain, timed = Engine(), Engine()
    plain.process(batch(cmds))
    lat = np.full(len(cmds), -1, dtype=np.int64)
    assert timed.process_timed(batch(cmds), lat) == len(plain.events())
    assert (timed.events() == plain.events()).all()
    assert (lat >= 0).all()


def test_order_lookup_sees_resting_orders_and_pending_stops_only() -> None:
    twin = venue(new(1, A, SELL, 100, 5), new(2, B, BUY, 90, 1, stop=120), new(3, C, BUY, 100, 5))
    assert twin.eng.order(1) is None and twin.eng.order(3) is None  # both filled
    twin.run(new(4, A, SELL, 101, 2))
    assert twin.eng.order(4) is not None and twin.eng.order(2) is not None
    assert twin.eng.order(99) is None


def test_extreme_values_do_not_overflow() -> None:
    top = 2**62 - 1  # max_price x max_qty must stay below 2^62: max qty 1
    twin = Twin(instrument(5, max_price=top, min_qty=1, max_qty=1, min_notional=top - 1, band_bps=10_000))
    twin.run(new(1, A, SELL, top, 1, symbol=5))  # notional top >= min notional
    events = twin.run(market(3, C, BUY, 1, symbol=5))  # protection price ~ 2^63: must not wrap
    assert trades(events) == [(3, 1, top, 1)]
    assert twin.eng.last_price(5) == top
    assert kinds(twin.run(market(4, C, SELL, 1, symbol=5, stop=top))) == k(
        ACC, TRG, (Ev.EXPIRED, R.NO_LIQUIDITY))
    big = 2**31  # quantities near 2^31 (notional near 2^62)
    twin = Twin(instrument(6, max_price=big - 1, min_qty=1, max_qty=big, band_bps=1))
    events = twin.run(new(1, A, SELL, big - 1, big, symbol=6, display=big - 1), new(2, B, BUY, big - 1, big,
                                                                                   symbol=6))
    assert [t[3] for t in trades(events)] == [big - 1, 1]


RICH = [instrument(), instrument(2, max_price=500, min_qty=2, max_qty=100, min_notional=50),
        new(1, A, SELL, 100, 10, display=3), new(2, B, SELL, 101, 4), new(3, C, BUY, 100, 2),
        new(4, A, BUY, 95, 3, post_only=True, stp=Stp.CANCEL_BOTH), new(5, B, BUY, 99, 2, stop=101),
        market(6, C, SELL, 3, stop=98), new(7, B, SELL, 40, 5, symbol=2), replace(2, B, 0, 3)]
FUTURE = [new(10, C, BUY, 101, 8), market(11, A, SELL, 4), replace(4, A, 96, 5), cancel(1, 0),
          new(12, B, BUY, 45, 5, symbol=2, stp=Stp.CANCEL_MAKER), mass_cancel(B)]


@pytest.mark.parametrize("cut", range(len(RICH) + 1))
def test_snapshot_round_trip(cut: int) -> None:
    eng = Engine()
    run(eng, *RICH[:cut])
    clone = Engine.from_snapshot(eng.snapshot())
    assert clone.state_hash() == eng.state_hash()
    assert clone.snapshot() == eng.snapshot()
    for sym in (c["symbol"] for c in RICH[:cut] if c["op"] == Op.ADD_INSTRUMENT):
        assert clone.book(sym) == eng.book(sym)
        assert clone.stop_orders(sym) == eng.stop_orders(sym)
        assert clone.last_price(sym) == eng.last_price(sym)
    future = [*RICH[cut:], *FUTURE]
    assert run(clone, *future) == run(eng, *future)
    assert clone.state_hash() == eng.state_hash()


def test_state_hash_tracks_state() -> None:
    a, b = Engine(), Engine()
    run(a, *RICH)
    run(b, *RICH)
    assert a.state_hash() == b.state_hash()
    run(b, new(99, A, BUY, 1, 1))
    assert a.state_hash() != b.state_hash()
    assert len(a.state_hash()) == 64


def test_spec_reference_agrees_on_rich_scenario() -> None:
    """The scenarios above via the Twin, plus the snapshot fixtures: a smoke test of the reference."""
    twin = Twin(*RICH)
    twin.run(*FUTURE)
    for sym in (1, 2):
        twin.book(sym)
        twin.stops(sym)


def test_unknown_flag_bits_are_rejected() -> None:
    assert_rejected_cleanly([], new(1, A, BUY, 100, 1, flags=2), R.INVALID_FLAGS)
