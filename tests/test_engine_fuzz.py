"""Arbitrary command bytes never crash the engine, never corrupt it, and always get an answer."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core_cython.engine import Engine
from core_cython.records import COMMAND_DTYPE, COMMAND_SIZE, EventType, Op, new_commands, set_instrument

# Mostly small values so that commands often hit live orders and valid instruments; sometimes
# extremes, so that overflow guards are exercised.
INT64 = st.one_of(st.integers(-3, 120), st.sampled_from([-(2**63), 2**62, 2**63 - 1]))
UINT64 = st.one_of(st.integers(0, 40), st.just(2**64 - 1))


@st.composite
def raw_commands(draw: st.DrawFn) -> dict[str, int]:
    return {
        "order_id": draw(UINT64), "account": draw(st.integers(0, 3)), "price": draw(INT64),
        "qty": draw(INT64), "stop_price": draw(INT64), "display_qty": draw(INT64),
        "symbol": draw(st.sampled_from([0, 1, 2, 2**32 - 1])), "op": draw(st.integers(0, 7)),
        "side": draw(st.integers(0, 3)), "ord_type": draw(st.integers(0, 3)),
        "tif": draw(st.integers(0, 4)), "stp": draw(st.integers(0, 5)),
        "flags": draw(st.integers(0, 255)), "reject": draw(st.sampled_from([0, 0, 0, 11, 24, 200])),
    }


def to_batch(fields: list[dict[str, int]]) -> np.ndarray:
    cmds = new_commands(len(fields) + 1)
    set_instrument(cmds[0], 1, max_price=1_000, min_qty=1, max_qty=1_000, market_band_bps=1_000)
    for rec, values in zip(cmds[1:], fields, strict=True):
        for name, value in values.items():
            rec[name] = value
    return cmds


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(raw_commands(), min_size=1, max_size=60))
def test_any_command_bytes_get_answered_and_keep_the_engine_consistent(fields: list[dict[str, int]]) -> None:
    cmds = to_batch(fields)
    eng = Engine()
    eng.process(cmds)
    events = eng.events()
    # Every command produced at least one event, in order, with gap-free event sequence numbers.
    assert set(events["cmd_seq"].tolist()) == set(range(1, len(cmds) + 1))
    assert np.all(np.diff(events["cmd_seq"].astype(np.int64)) >= 0)
    assert events["seq"].tolist() == list(range(1, len(events) + 1))
    # An unknown op is always an UNKNOWN_OP reject.
    for i, rec in enumerate(cmds):
        if rec["op"] not in {int(op) for op in Op}:
            mine = events[events["cmd_seq"] == i + 1]
            assert mine["type"].tolist() == [EventType.REJECTED]
    # No order is left with negative or zero open quantity, and books stay sorted and uncrossed.
    book = eng.book(1)
    bid_prices = [p for p, _ in book["bids"]]
    ask_prices = [p for p, _ in book["asks"]]
    assert bid_prices == sorted(bid_prices, reverse=True) and ask_prices == sorted(ask_prices)
    if bid_prices and ask_prices:
        assert bid_prices[0] < ask_prices[0]
    for _, orders in book["bids"] + book["asks"]:
        assert all(leaves > 0 and 0 < visible <= leaves for _, leaves, visible in orders)
    # The state survives a snapshot round trip exactly.
    assert Engine.from_snapshot(eng.snapshot()).state_hash() == eng.state_hash()


def test_read_only_commands_must_carry_their_sequence_numbers() -> None:
    cmds = to_batch([])
    cmds.flags.writeable = False
    eng = Engine()
    try:
        eng.process(cmds)
    except ValueError as exc:
        assert "sequence" in str(exc)
    else:
        raise AssertionError("unsequenced read-only commands were accepted")
    assert eng.last_cmd_seq == 0


def test_a_truncated_or_foreign_snapshot_is_refused() -> None:
    eng = Engine()
    eng.process(to_batch([]))
    blob = eng.snapshot()
    for bad in (blob[:-1], blob + b"\0", b"\0" * COMMAND_SIZE, b""):
        try:
            Engine.from_snapshot(bad)
        except ValueError:
            continue
        raise AssertionError(f"snapshot of {len(bad)} bytes was accepted")


def test_commands_of_the_wrong_dtype_are_refused() -> None:
    eng = Engine()
    for bad in (np.zeros(3, dtype=np.int64), np.zeros((2, 2), dtype=COMMAND_DTYPE), b"\0" * COMMAND_SIZE):
        try:
            eng.process(bad)
        except (TypeError, ValueError):
            continue
        raise AssertionError(f"{type(bad)} was accepted")
    assert eng.last_cmd_seq == 0
