"""The decimal edge: strings <-> ticks and lots, instrument definitions, requests -> command records."""

from __future__ import annotations

import re
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core_cython.records import (
    COMMAND_DTYPE,
    EVENT_DTYPE,
    EventType,
    Flag,
    Op,
    OrdType,
    PostingKind,
    Reason,
    Side,
    Stp,
    Tif,
    new_commands,
    ref_hash,
)
from venue.assets import UNKNOWN_ASSET_ID, Asset, multipliers
from venue.edge import INVALID_ENUM, Edge, RequestError, request_ts
from venue.instruments import (
    DISPLAY_QTY,
    INT64_MAX,
    STOP_PRICE,
    UNKNOWN_SYMBOL_ID,
    EdgeReject,
    Instrument,
    InstrumentError,
    InstrumentRegistry,
    parse_decimal,
)
from venue.match import instrument_from_request

BTC = Instrument.define("BTC-USDT", "BTC", "USDT", "0.01", "0.0001", min_notional="10")
COARSE = Instrument.define("IDX", "I", "USD", "5", "10")  # tick 5, lot 10: grids above 1


def reason_of(call, *args) -> Reason:
    with pytest.raises(EdgeReject) as caught:
        call(*args)
    assert "\n" not in str(caught.value)
    return caught.value.reason


@pytest.mark.parametrize(
    ("text", "ticks"),
    [("100.00", 10_000), ("100", 10_000), ("100.5", 10_050), ("0.01", 1), (".5", 50), ("5.", 500),
     ("+7", 700), ("0", 0), ("-0", 0), ("0.000", 0), ("100.0100000", 10_001),
     ("92233720368547758.07", INT64_MAX), (7, 700), (Decimal("1.10"), 110)],
)
def test_to_ticks_on_grid(text: object, ticks: int) -> None:
    assert BTC.to_ticks(text) == ticks


@pytest.mark.parametrize("text", ["100.001", "0.005", "0." + "0" * 60 + "1", "1.0000000000000000000001"])
def test_off_tick_prices(text: str) -> None:
    assert reason_of(BTC.to_ticks, text) == Reason.OFF_TICK


@pytest.mark.parametrize("text", ["1.00001", "0.00005"])
def test_off_lot_quantities(text: str) -> None:
    assert reason_of(BTC.to_lots, text) == Reason.OFF_LOT
    assert reason_of(BTC.to_lots, text, DISPLAY_QTY) == Reason.OFF_LOT


def test_grids_coarser_than_one() -> None:
    assert COARSE.to_ticks("105") == 21 and COARSE.from_ticks(21) == "105"
    assert COARSE.to_lots("30") == 3 and COARSE.from_lots(3) == "30"
    assert reason_of(COARSE.to_ticks, "102") == Reason.OFF_TICK
    assert reason_of(COARSE.to_ticks, "105.5") == Reason.OFF_TICK
    assert reason_of(COARSE.to_lots, "15") == Reason.OFF_LOT


@pytest.mark.parametrize(
    "text", ["abc", "", " 1", "1 ", "1e5", "1E-2", "NaN", "nan", "Infinity", "-inf", "1_000", "1,5", "0x10",
             "1.2.3", ".", "+", "--1", "١٠٠", "1" * 101, 1.5, True, None, [1], Decimal("NaN"),
             Decimal("Infinity")],
)
def test_malformed_values(text: object) -> None:
    assert reason_of(BTC.to_ticks, text) == Reason.MALFORMED
    assert reason_of(BTC.to_lots, text) == Reason.MALFORMED


def test_negative_values_get_the_field_reason() -> None:
    assert reason_of(BTC.to_lots, "-1") == Reason.INVALID_QTY
    assert reason_of(BTC.to_ticks, "-0.01") == Reason.INVALID_PRICE
    assert reason_of(BTC.to_ticks, "-5", STOP_PRICE) == Reason.INVALID_STOP_PRICE
    assert reason_of(BTC.to_lots, "-1", DISPLAY_QTY) == Reason.INVALID_DISPLAY_QTY


@pytest.mark.parametrize("text", ["92233720368547758.08", "1" + "0" * 40, "9" * 99, Decimal("1E+999999")])
def test_huge_values_are_above_any_maximum(text: object) -> None:
    assert reason_of(BTC.to_ticks, text) == Reason.PRICE_ABOVE_MAX
    assert reason_of(BTC.to_lots, text) == Reason.QTY_ABOVE_MAX


def test_tiny_decimal_exponent_is_off_grid_without_big_int_work() -> None:
    assert reason_of(BTC.to_ticks, Decimal("1E-999999")) == Reason.OFF_TICK


@pytest.mark.parametrize(
    ("ticks", "text"),
    [(10_000, "100.00"), (1, "0.01"), (0, "0.00"), (-5, "-0.05"), (INT64_MAX, "92233720368547758.07")],
)
def test_from_ticks_uses_the_tick_decimals(ticks: int, text: str) -> None:
    assert BTC.from_ticks(ticks) == text


def test_from_lots_uses_the_lot_decimals() -> None:
    assert BTC.from_lots(15_000) == "1.5000"
    assert BTC.from_lots(1) == "0.0001"


@given(st.integers(min_value=0, max_value=INT64_MAX))
def test_round_trip_ticks_and_lots(n: int) -> None:
    assert BTC.to_ticks(BTC.from_ticks(n)) == n
    assert BTC.to_lots(BTC.from_lots(n)) == n
    assert COARSE.to_ticks(COARSE.from_ticks(n)) == n
    assert Decimal(BTC.from_ticks(n)) == Decimal(n) * Decimal("0.01")  # exact, no float anywhere


@given(st.decimals(allow_nan=False, allow_infinity=False, places=6, min_value=0, max_value=10**12))
def test_on_grid_iff_a_multiple_of_the_tick(value: Decimal) -> None:
    text = format(value, "f")
    if value % Decimal("0.01") == 0:
        assert Decimal(BTC.from_ticks(BTC.to_ticks(text))) == value
    else:
        assert reason_of(BTC.to_ticks, text) == Reason.OFF_TICK


def test_parse_decimal_is_exact() -> None:
    assert parse_decimal("0.1") + parse_decimal("0.2") == Decimal("0.3")
    assert parse_decimal("-12.3400") == Decimal("-12.34")


def test_instrument_limits_in_engine_units() -> None:
    assert BTC.min_notional_units == 10_000_000
    odd = Instrument.define("X", "A", "B", "0.01", "0.0001", min_notional="10.0000001")
    assert odd.min_notional_units == 10_000_001  # rounded up: price x qty >= it <=> notional >= min
    cmd = new_commands(1)
    BTC.fill_add_command(cmd[0], 3)
    assert cmd[0]["op"] == Op.ADD_INSTRUMENT and cmd[0]["symbol"] == 3
    assert (cmd[0]["price"], cmd[0]["qty"], cmd[0]["display_qty"]) == (10**9, 1, 10**9)
    assert (cmd[0]["stop_price"], cmd[0]["order_id"]) == (10_000_000, 500)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tick_size": "0"}, "tick_size must be positive"),
        ({"tick_size": "-0.01"}, "tick_size must be positive"),
        ({"lot_size": "x"}, "lot_size 'x' is not a plain decimal number"),
        ({"tick_size": "0." + "0" * 18 + "1"}, "more than 18 decimals"),
        ({"min_qty": "0.00005"}, "min_qty 0.00005 is not a multiple of 0.0001"),
        ({"min_qty": "2", "max_qty": "1"}, "max_qty 1 is below min_qty 2"),
        ({"max_price": "0"}, "max_price must be positive"),
        ({"min_notional": "-1"}, "min_notional must not be negative"),
        ({"market_band_bps": 10_001}, "market_band_bps must be an integer in 1..10000"),
        ({"market_band_bps": True}, "market_band_bps must be an integer in 1..10000"),
        ({"max_price": "100000000000", "max_qty": "100000000"}, "too large for the engine"),
        ({"symbol": ""}, "symbol must be a non-empty string"),
        ({"symbol": "BTC USDT"}, "symbol must be a non-empty string without spaces"),
    ],
)
def test_bad_instrument_definitions(kwargs: dict, message: str) -> None:
    spec = {"symbol": "BTC-USDT", "base": "BTC", "quote": "USDT", "tick_size": "0.01", "lot_size": "0.0001"}
    spec.update(kwargs)
    with pytest.raises(InstrumentError, match=message):
        Instrument.define(**spec)


@pytest.mark.parametrize(
    ("size", "message"),
    [
        ("1.00000000000000000000000000001", "tick_size 1.00000000000000000000000000001 has more than 18"),
        (Decimal("1.00000000000000000000000000001"), "has more than 18 decimals"),
        ("1" + "0" * 40, "tick_size 1" + "0" * 40 + " is too large"),
        (Decimal("1E+99999999"), "tick_size 1E+99999999 is too large"),
    ],
    ids=["30_digits", "30_digits_decimal", "41_integer_digits", "huge_exponent"],
)
def test_a_grid_size_is_never_rounded(size: object, message: str) -> None:
    # Decimal.normalize() rounded to 28 digits: these became tick 1 (or raised decimal.Overflow).
    with pytest.raises(InstrumentError, match=re.escape(message)):
        Instrument.define("X", "A", "B", size, "1")


def test_long_grid_sizes_are_exact() -> None:
    long_tick = "1234567890123456789012345678901"  # 31 digits: beyond a Decimal context's 28
    fine = "1.000000000000000001"  # 19 significant digits, 18 decimals
    instrument = Instrument.define("X", "A", "B", long_tick, fine)
    assert (instrument.tick_size, instrument.lot_size) == (long_tick, fine)
    assert instrument.to_ticks(long_tick + "000") == 1000
    assert instrument.from_ticks(3) == str(3 * int(long_tick))
    with pytest.raises(InstrumentError, match="min_notional 1E[+]99999999 is too large"):
        Instrument.define("X", "A", "B", "0.01", "1", min_notional=Decimal("1E+99999999"))


def test_registry_ids_start_at_one_in_definition_order() -> None:
    registry = InstrumentRegistry()
    assert registry.add(BTC) == 1
    assert registry.add(COARSE) == 2
    assert registry.id_of("IDX") == 2 and registry.by_id(1) is BTC and registry.get("nope") is None
    assert [symbol_id for symbol_id, _ in registry] == [1, 2]
    with pytest.raises(InstrumentError, match="already defined"):
        registry.add(BTC)


# ---------------------------------------------------------------------------- requests -> records


def edge_with_btc() -> Edge:
    edge = Edge()
    edge.instrument_added(BTC)
    return edge


def encode(edge: Edge, request: dict) -> tuple[dict, str | None]:
    record, problem = edge.encode_record(request)
    return dict(zip(COMMAND_DTYPE.names, record, strict=True)), problem


NEW = {"op": "new", "id": "o1", "account": "a1", "symbol": "BTC-USDT", "side": "buy", "type": "limit",
       "price": "100.00", "qty": "1.5", "tif": "gtc"}


def test_a_new_order_becomes_integers() -> None:
    edge = edge_with_btc()
    cmd, problem = encode(edge, dict(NEW, post_only=True, stp="cancel_maker", display_qty="0.5", ts=7))
    assert problem is None
    assert cmd["op"] == Op.NEW and cmd["order_id"] == 1 and cmd["account"] == 1 and cmd["symbol"] == 1
    assert (cmd["side"], cmd["ord_type"], cmd["tif"], cmd["stp"]) == (Side.BUY, OrdType.LIMIT, Tif.GTC,
                                                                      Stp.CANCEL_MAKER)
    assert (cmd["price"], cmd["qty"], cmd["display_qty"], cmd["flags"], cmd["ts"]) == (10_000, 15_000, 5_000,
                                                                                       Flag.POST_ONLY, 7)
    assert cmd["reject"] == 0


def test_string_ids_keep_their_integer() -> None:
    edge = edge_with_btc()
    first, _ = encode(edge, NEW)
    other, _ = encode(edge, dict(NEW, id="o2", account="a2"))
    cancel, _ = encode(edge, {"op": "cancel", "id": "o1"})
    again, _ = encode(edge, NEW)
    assert first["order_id"] == cancel["order_id"] == again["order_id"] == 1
    assert other["order_id"] == 2 and other["account"] == 2
    assert cancel["account"] == 0  # no account: the operator


def test_edge_problems_become_rejects_not_drops() -> None:
    edge = edge_with_btc()
    assert encode(edge, dict(NEW, price="100.001"))[0]["reject"] == Reason.OFF_TICK
    assert encode(edge, dict(NEW, qty="1.00001"))[0]["reject"] == Reason.OFF_LOT
    assert encode(edge, dict(NEW, qty="-1"))[0]["reject"] == Reason.INVALID_QTY
    # quantity is checked before price, as in the engine
    assert encode(edge, dict(NEW, qty="1.00001", price="100.001"))[0]["reject"] == Reason.OFF_LOT
    cmd, problem = encode(edge, dict(NEW, price="lots"))
    assert cmd["reject"] == Reason.MALFORMED and "price 'lots'" in problem
    cmd, problem = encode(edge, {k: v for k, v in NEW.items() if k != "qty"})
    assert cmd["reject"] == Reason.MALFORMED and problem == "new: missing field 'qty'"
    cmd, problem = encode(edge, dict(NEW, colour="red"))
    assert cmd["reject"] == Reason.MALFORMED and "unknown field 'colour'" in problem
    cmd, problem = encode(edge, dict(NEW, post_only="yes"))
    assert cmd["reject"] == Reason.MALFORMED and "post_only" in problem


def test_unknown_names_go_to_the_engine_as_invalid_values() -> None:
    edge = edge_with_btc()
    cmd, problem = encode(edge, dict(NEW, side="up", tif="day", stp="never"))
    assert problem is None and cmd["reject"] == 0
    assert cmd["side"] == cmd["tif"] == cmd["stp"] == INVALID_ENUM
    cmd, _ = encode(edge, dict(NEW, symbol="DOGE-USDT", price="1.234"))
    assert cmd["symbol"] == UNKNOWN_SYMBOL_ID and cmd["reject"] == 0  # the engine says UNKNOWN_SYMBOL


def test_market_orders_ignore_their_price() -> None:
    cmd, problem = encode(edge_with_btc(), dict(NEW, type="market", price="garbage"))
    assert problem is None and cmd["ord_type"] == OrdType.MARKET and cmd["price"] == 0 and cmd["reject"] == 0


def test_replace_converts_with_the_order_instrument() -> None:
    edge = edge_with_btc()
    encode(edge, NEW)
    cmd, _ = encode(edge, {"op": "replace", "id": "o1", "price": "101.50", "qty": "2"})
    assert (cmd["op"], cmd["order_id"], cmd["price"], cmd["qty"]) == (Op.REPLACE, 1, 10_150, 20_000)
    cmd, _ = encode(edge, {"op": "replace", "id": "o1", "qty": "2"})
    assert cmd["price"] == 0  # keep the price
    assert encode(edge, {"op": "replace", "id": "o1", "qty": "2.00001"})[0]["reject"] == Reason.OFF_LOT


def test_mass_cancel_scopes() -> None:
    edge = edge_with_btc()
    everything, _ = encode(edge, {"op": "mass_cancel"})
    assert (everything["account"], everything["symbol"]) == (0, 0)
    scoped, _ = encode(edge, {"op": "mass_cancel", "account": "a9", "symbol": "BTC-USDT"})
    assert scoped["account"] == 1 and scoped["symbol"] == 1
    unknown, _ = encode(edge, {"op": "mass_cancel", "symbol": "DOGE-USDT"})
    assert unknown["symbol"] == UNKNOWN_SYMBOL_ID  # matches nothing, never "all symbols"


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        ({"op": "teleport"}, "unknown op 'teleport'"),
        ({"id": "o1"}, "missing field 'op'"),
        ({"op": "cancel"}, "cancel: missing field 'id'"),
        ({"op": "cancel", "id": "o1", "why": 1}, "cancel: unknown field 'why'"),
        ({"op": "replace", "id": "o1"}, "replace: missing field 'qty'"),
        ({"op": "new", "account": "a1"}, "new: missing field 'id'"),
        (dict(NEW, ts=-1), "ts must be a non-negative integer"),
        (["not", "an", "object"], "a request must be a JSON object"),
    ],
)
def test_requests_without_a_command(request_: object, message: str) -> None:
    with pytest.raises(RequestError, match=message):
        edge_with_btc().encode_record(request_)  # type: ignore[arg-type]


def test_encode_fills_a_record_in_place() -> None:
    cmds = new_commands(2)
    problem = edge_with_btc().encode(cmds[1], NEW)
    assert problem is None and cmds[1]["qty"] == 15_000 and cmds[0]["qty"] == 0


# ---------------------------------------------------------------------------- funds mode: assets and money

USDT = Asset("USDT", 6)
SATS = Asset("BTC", 8)


@pytest.mark.parametrize(("text", "units"), [("1000", 1_000_000_000), ("1.5", 1_500_000), ("0.000001", 1),
                                             ("0", 0), ("1.5000000", 1_500_000), (7, 7_000_000)])
def test_amounts_are_exact_smallest_units(text: object, units: int) -> None:
    assert USDT.to_units(text) == units
    assert USDT.to_units(USDT.format(units)) == units


@pytest.mark.parametrize(
    ("text", "reason", "message"),
    [("0.0000001", Reason.INVALID_AMOUNT, "amount 0.0000001 has more than 6 decimals"),
     ("-1", Reason.INVALID_AMOUNT, "amount -1 is negative"),
     ("9" * 20, Reason.INVALID_AMOUNT, "is too large"),
     ("1e3", Reason.MALFORMED, "is not a plain decimal number"),
     (1.5, Reason.MALFORMED, "must be a decimal string")],
)
def test_bad_amounts_are_never_rounded(text: object, reason: Reason, message: str) -> None:
    with pytest.raises(EdgeReject, match=re.escape(message)) as caught:
        USDT.to_units(text)
    assert caught.value.reason == reason


def test_signed_amounts_and_formatting() -> None:
    assert USDT.to_units("-2.5", signed=True) == -2_500_000
    assert USDT.format(-2_500_000) == "-2.500000" and SATS.format(1) == "0.00000001"
    assert Asset("PTS", 0).format(12) == "12"


def test_funds_multipliers_are_exact() -> None:
    assert multipliers(BTC, SATS, USDT) == (10_000, 1)  # 0.0001 BTC = 10^4 sat; 0.01 x 0.0001 = 1 unit
    coarse = Instrument.define("IDX", "I", "USD", "5", "10", max_price="1000", max_qty="1000")
    assert multipliers(coarse, Asset("I", 0), Asset("USD", 2)) == (10, 5_000)  # tick 5 x lot 10 = 50 USD
    with pytest.raises(InstrumentError, match="lot_size 0.0001 is finer than BTC's 2 decimals"):
        multipliers(BTC, Asset("BTC", 2), USDT)
    with pytest.raises(InstrumentError, match="tick_size 0.01 x lot_size 0.0001 is finer than USDT's 4 dec"):
        multipliers(BTC, SATS, Asset("USDT", 4))
    huge = Instrument.define("H", "BTC", "USDT", "0.01", "0.0001", max_price="10000000", max_qty="100000")
    with pytest.raises(InstrumentError, match="too large for funds mode"):
        multipliers(huge, SATS, Asset("USDT", 12))


def funds_edge() -> Edge:
    edge = Edge(funds=True, account_defaults=(50, 2))
    edge.assets.add(SATS)
    edge.assets.add(USDT)
    edge.instrument_added(BTC)
    return edge


def encode_all(edge: Edge, request: dict) -> tuple[list[dict], str | None]:
    records, problem = edge.encode_records(request)
    return [dict(zip(COMMAND_DTYPE.names, r, strict=True)) for r, _ in records], problem


DEPOSIT = {"op": "deposit", "account": "a1", "asset": "USDT", "amount": "1000", "ref": "tx1"}


def test_a_deposit_creates_its_account_once_with_the_defaults() -> None:
    edge = funds_edge()
    (create, deposit), problem = encode_all(edge, DEPOSIT)
    assert problem is None
    assert (create["op"], create["account"], create["qty"], create["flags"]) == (Op.CREATE_ACCOUNT, 16, 50, 2)
    assert (deposit["op"], deposit["account"], deposit["asset"]) == (Op.DEPOSIT, 16, 2)
    assert deposit["qty"] == 10**9
    assert (deposit["aux1"], deposit["aux2"]) == ref_hash("tx1")
    again, _ = encode_all(edge, dict(DEPOSIT, ref="tx2"))
    order, _ = encode_all(edge, dict(NEW, account="a1"))
    assert [c["op"] for c in again + order] == [Op.DEPOSIT, Op.NEW]  # a1 exists now
    b2, _ = encode_all(edge, dict(NEW, id="o2", account="b2"))
    assert [(c["op"], c["account"]) for c in b2] == [(Op.CREATE_ACCOUNT, 17), (Op.NEW, 17)]


def test_no_account_is_created_for_a_rejected_request_or_a_builtin_one() -> None:
    edge = funds_edge()
    bad, problem = encode_all(edge, dict(DEPOSIT, amount="0.0000001"))
    assert [c["op"] for c in bad] == [Op.DEPOSIT] and bad[0]["reject"] == Reason.INVALID_AMOUNT
    assert problem == "deposit: amount 0.0000001 has more than 6 decimals (the precision of USDT)"
    fees, _ = encode_all(edge, dict(DEPOSIT, account="@fees"))
    assert [(c["op"], c["account"]) for c in fees] == [(Op.DEPOSIT, 3)]
    transfer, _ = encode_all(edge, {"op": "transfer", "account": "a1", "to": "@external", "asset": "USDT",
                                    "amount": "1"})
    assert [(c["op"], c["account"], c["aux1"]) for c in transfer] == [(Op.TRANSFER, 16, 1)]


def test_money_ops_fill_the_readme_fields() -> None:
    edge = funds_edge()
    encode_all(edge, DEPOSIT)  # creates a1

    def one(request: dict) -> dict:
        cmds, problem = encode_all(edge, request)
        assert problem is None and len(cmds) == 1
        return cmds[0]

    hold = one({"op": "withdraw_hold", "id": "w1", "account": "a1", "asset": "BTC", "amount": "0.5"})
    assert (hold["op"], hold["order_id"], hold["asset"]) == (Op.WITHDRAW_HOLD, 1, 1)
    assert hold["qty"] == 50_000_000
    settle = one({"op": "withdraw_settle", "id": "w1"})
    assert (settle["op"], settle["order_id"], settle["account"]) == (Op.WITHDRAW_SETTLE, 1, 0)
    adjust = one({"op": "adjust", "account": "a1", "asset": "USDT", "amount": "-1.5", "reason": "refund",
                  "ticket": "T-1"})
    assert (adjust["qty"], adjust["flags"], adjust["order_id"]) == (-1_500_000, 2, 1)
    fees = one({"op": "set_fees", "symbol": "BTC-USDT", "tier": 3, "maker_bps": -1, "taker_bps": 4})
    assert (fees["op"], fees["symbol"], fees["flags"]) == (Op.SET_FEES, 1, 3)
    assert (fees["price"], fees["qty"]) == (-1, 4)
    limits = one({"op": "limits", "symbol": "BTC-USDT", "reference_price": "60000.00",
                  "max_notional": "5"})
    assert (limits["price"], limits["aux1"]) == (6_000_000, 5_000_000)
    status = one({"op": "trading_status", "symbol": "BTC-USDT", "status": "cancel_only"})
    assert (status["op"], status["flags"]) == (Op.SET_TRADING_STATUS, 1)
    assert one({"op": "account_status", "account": "a1", "status": "frozen"})["flags"] == 0xFF
    asset = one({"op": "asset", "name": "ETH", "decimals": 8})
    assert (asset["op"], asset["asset"], asset["qty"]) == (Op.ADD_ASSET, 3, 8)
    unknown = one(dict(DEPOSIT, asset="DOGE", amount="1.123456789"))  # the engine answers UNKNOWN_ASSET
    assert unknown["asset"] == UNKNOWN_ASSET_ID and unknown["reject"] == 0
    cmds, problem = encode_all(edge, {"op": "limits", "symbol": "BTC-USDT", "reference_price": "1.001"})
    assert cmds[0]["reject"] == Reason.OFF_TICK and "reference_price 1.001" in problem


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        ({"op": "deposit", "account": "a1", "asset": "USDT", "amount": "1"}, "deposit: missing field 'ref'"),
        (dict(DEPOSIT, ref=""), "deposit: ref must be a non-empty string"),
        ({"op": "adjust", "account": "a1", "asset": "USDT", "amount": "1", "reason": "gift", "ticket": "t"},
         "adjust: reason must be one of correction"),
        ({"op": "set_fee_tier", "account": "a1", "tier": 256},
         "set_fee_tier: tier must be in 0..255, not 256"),
        ({"op": "set_fees", "symbol": "BTC-USDT", "maker_bps": True, "taker_bps": 1},
         "set_fees: maker_bps must be an integer, not True"),
        ({"op": "asset", "name": "X", "decimals": 19},
         "asset: asset X: decimals must be an integer in 0..18"),
        ({"op": "account_status", "account": "a1", "status": 1}, "account_status: status must be one of"),
    ],
)
def test_money_requests_without_a_command(request_: dict, message: str) -> None:
    with pytest.raises(RequestError, match=re.escape(message)):
        funds_edge().encode_record(request_)


def test_withdrawal_ids_and_tickets_start_where_order_ids_do() -> None:
    # A resumed journal may hold pending withdrawals under ids 1, 2, ...: a new name must not reuse one.
    edge = Edge(funds=True, first_order_id=501)
    edge.assets.add(SATS)
    edge.assets.add(USDT)
    encode_all(edge, DEPOSIT)
    (hold,), _ = encode_all(edge, {"op": "withdraw_hold", "id": "w9", "account": "a1", "asset": "USDT",
                                   "amount": "1"})
    (adjust,), _ = encode_all(edge, {"op": "adjust", "account": "a1", "asset": "USDT", "amount": "1",
                                     "reason": "refund", "ticket": "T-1"})
    (order,), _ = encode_all(edge, dict(NEW, account="a1"))
    assert (hold["order_id"], adjust["order_id"], order["order_id"]) == (501, 501, 501)
    assert (edge.withdrawals.next_number, edge.tickets.next_number) == (502, 502)


@pytest.mark.parametrize("key", ["id", "account", "symbol"])
def test_a_name_that_is_not_utf8_text_is_refused_for_orders_too(key: str) -> None:
    edge = edge_with_btc()
    request = dict(NEW, **{key: "a\udfff"})
    if key == "id":
        with pytest.raises(RequestError, match="^new: id is not valid UTF-8 text"):
            edge.encode_record(request)
        return
    cmd, problem = encode(edge, request)  # the NEW has an id: REJECTED(MALFORMED) in sequence
    assert cmd["reject"] == Reason.MALFORMED
    assert problem == f"new: {key} is not valid UTF-8 text (it holds a lone surrogate)"
    with pytest.raises(RequestError, match="^cancel: account is not valid UTF-8 text"):
        edge.encode_record({"op": "cancel", "id": "o1", "account": "\ud800"})
    assert encode(edge, dict(NEW, account="ä-€-𝄞"))[1] is None  # any other text is fine


@pytest.mark.parametrize("ts", [-1, 2**63, 10**23, True, 1.5, "1"])
def test_a_bad_ts_is_refused_for_every_op(ts: object) -> None:
    with pytest.raises(RequestError, match="ts must be a non-negative integer"):
        request_ts({"ts": ts})
    with pytest.raises(RequestError, match="ts must be a non-negative integer"):
        funds_edge().encode_record(dict(DEPOSIT, ts=ts))
    with pytest.raises(RequestError, match="ts must be a non-negative integer"):
        instrument_from_request({"op": "instrument", "symbol": "E", "base": "ETH", "quote": "USDT",
                                 "tick_size": "1", "lot_size": "1", "ts": ts})
    assert request_ts({}) == 0 and request_ts({"ts": 2**63 - 1}) == 2**63 - 1


def test_rejected_echo_never_overwrites_the_event_fields() -> None:
    edge = funds_edge()
    rejected = event(type=EventType.REJECTED, seq=6, reason=Reason.INSUFFICIENT_FUNDS, op=Op.ADJUST)
    request = {"op": "adjust", "account": "a1", "asset": "USDT", "amount": "-5", "reason": "refund",
               "ticket": "T1", "seq": 999, "type": "x", "order_type": "y", "request_seq": 1}
    assert edge.decode(rejected, request) == {
        "type": "rejected", "seq": 6, "reason": "insufficient_funds", "op": "adjust", "account": "a1",
        "asset": "USDT", "amount": "-5", "request_reason": "refund", "ticket": "T1", "request_seq": 999,
        "order_type": "x", "request_order_type": "y", "request_request_seq": 1}


def test_a_core_edge_refuses_money_ops() -> None:
    with pytest.raises(RequestError, match=r"deposit: a funds-mode op \(venue match --funds\)"):
        edge_with_btc().encode_record(DEPOSIT)


def event(**fields: int) -> tuple:
    record = np.zeros(1, dtype=EVENT_DTYPE)
    for name, value in fields.items():
        record[0][name] = value
    return record.tolist()[0]


def test_postings_and_applied_events_decode_with_names_and_decimals() -> None:
    edge = funds_edge()
    encode_all(edge, DEPOSIT)  # a1 = 16
    encode_all(edge, dict(NEW, id="b1", account="a1"))
    posting = event(type=EventType.POSTING, seq=9, account=16, symbol=2, price=153_000, qty=-30_168_000,
                    leaves=969_985_000, filled=0, reason=PostingKind.TRADE, maker_order=8,
                    order_id=edge.orders.id("b1"), maker_account=edge.accounts.id("a2"), maker_leaves=15_000)
    assert edge.decode(posting) == {
        "type": "posting", "seq": 9, "kind": "trade", "account": "a1", "asset": "USDT",
        "available": "0.153000", "held": "-30.168000", "available_after": "969.985000",
        "held_after": "0.000000", "cause": 8,
        "id": "b1", "counterparty": "a2", "fee": "0.015000"}
    external = event(type=EventType.POSTING, seq=3, account=1, symbol=1, price=-5,
                     reason=PostingKind.DEPOSIT, maker_order=2, maker_account=16)
    decoded = edge.decode(external)
    assert (decoded["account"], decoded["available"]) == ("@external", "-0.00000005")
    assert decoded["counterparty"] == "a1"
    applied = event(type=EventType.APPLIED, seq=2, op=Op.TRANSFER, account=16, symbol=2, qty=2_500_000,
                    maker_account=3)
    assert edge.decode(applied) == {"type": "applied", "seq": 2, "op": "transfer", "account": "a1",
                                    "to": "@fees", "asset": "USDT", "amount": "2.500000"}
