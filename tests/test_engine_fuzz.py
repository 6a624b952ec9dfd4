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


def test_fok_sums_quantities_beyond_64_bits() -> None:
    # Three makers of ~2^62 lots each: the level's total passes 2^63, the FOK must still see it.
    huge = 2**62 - 1
    cmds = new_commands(5)
    set_instrument(cmds[0], 1, max_price=1, min_qty=1, max_qty=huge)
    for i, rec in enumerate(cmds[1:4]):
        rec["op"], rec["order_id"], rec["account"], rec["symbol"] = Op.NEW, i + 1, 1, 1
        rec["side"], rec["ord_type"], rec["tif"], rec["price"], rec["qty"] = 2, 1, 1, 1, huge
    taker = cmds[4]
    taker["op"], taker["order_id"], taker["account"], taker["symbol"] = Op.NEW, 9, 2, 1
    taker["side"], taker["ord_type"], taker["tif"], taker["price"], taker["qty"] = 1, 1, 3, 1, huge
    eng = Engine()
    eng.process(cmds)
    last = eng.events()[-1]
    assert (last["type"], last["qty"], last["leaves"]) == (EventType.TRADE, huge, 0)


def test_process_cannot_be_reentered_from_another_thread() -> None:
    import threading

    cmds = [to_batch([{"op": Op.NEW, "order_id": i, "account": 1, "symbol": 1, "side": 1 + i % 2,
                       "ord_type": 1, "tif": 1, "price": 500 + i % 50, "qty": 1} for i in range(20_000)])
            for _ in range(2)]
    cmds[1] = cmds[1][1:].copy()  # the second batch must not redefine the instrument
    eng = Engine()
    errors: list[BaseException] = []

    def feed(batch: np.ndarray) -> None:
        try:
            eng.process(batch)
        except RuntimeError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=feed, args=(b,)) for b in cmds]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Either the calls happened not to overlap, or the second was refused; the state is whole.
    assert all("single-threaded" in str(e) for e in errors)
    assert Engine.from_snapshot(eng.snapshot()).state_hash() == eng.state_hash()


def test_events_view_keeps_the_engine_alive() -> None:
    import gc

    eng = Engine()
    eng.process(to_batch([]))
    events = eng.events()
    expected = events.copy()
    del eng
    gc.collect()
    _ = [bytearray(1 << 16) for _ in range(64)]  # would reuse freed memory
    assert np.array_equal(events, expected)


def test_snapshot_restore_refuses_an_inconsistent_book() -> None:
    eng = Engine()
    eng.process(to_batch([{"op": Op.NEW, "order_id": 7, "account": 1, "symbol": 1, "side": 2,
                           "ord_type": 1, "tif": 1, "price": 100, "qty": 5}]))
    blob = bytearray(eng.snapshot())
    level_id = blob.rfind((7).to_bytes(8, "little"))
    wrong_price = bytearray(blob)
    wrong_price[level_id - 12:level_id - 4] = (105).to_bytes(8, "little", signed=True)  # level key
    twice = bytearray(blob)
    twice[level_id - 4:level_id] = (2).to_bytes(4, "little")  # the order listed twice
    twice[level_id + 8:level_id + 8] = (7).to_bytes(8, "little")
    for bad in (wrong_price, twice):
        try:
            Engine.from_snapshot(bytes(bad))
        except ValueError:
            continue
        raise AssertionError("an inconsistent snapshot was restored")
    assert Engine.from_snapshot(bytes(blob)).state_hash() == eng.state_hash()
