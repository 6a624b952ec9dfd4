"""Property tests: the Cython engine against the reference model on random order flow.

Flows use two instruments with a narrow price grid (so orders cross a lot), three accounts, a
small pool of order ids (so duplicates, reuse, cancels and replaces hit live orders), every order
type, tif, STP mode, icebergs, stops and a sprinkling of invalid commands. Set
ENGINE_PROP_EXAMPLES to run more examples (e.g. a nightly soak).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from core_cython.records import Reason, Stp
from tests.engine_helpers import (
    BUY,
    FOK,
    GTC,
    IOC,
    LIMIT,
    MARKET,
    SELL,
    Command,
    batch,
    cancel,
    instrument,
    mass_cancel,
    new,
    replace,
)
from tests.reference_model import Event, ReferenceEngine, describe, events_from_array

engine_mod = pytest.importorskip("core_cython.engine")
Engine = engine_mod.Engine

EXAMPLES = int(os.environ.get("ENGINE_PROP_EXAMPLES", "150"))
PROPS = settings(max_examples=EXAMPLES, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Symbol 1: tight 3% market band; symbol 2: min qty 2, min notional 300, 100% band (sweeps).
INSTRUMENTS: list[Command] = [
    instrument(1, max_price=200, min_qty=1, max_qty=40, min_notional=0, band_bps=300),
    instrument(2, max_price=150, min_qty=2, max_qty=30, min_notional=300, band_bps=10_000),
]
SYMBOLS = (1, 2)
ORDER_IDS = st.integers(1, 24)
ACCOUNTS = st.integers(1, 3)


def mostly(common: st.SearchStrategy[Any], rare: st.SearchStrategy[Any],
           one_in: int = 12) -> st.SearchStrategy[Any]:
    """common, but rare about once in one_in draws (invalid values must stay the exception)."""
    return st.integers(0, one_in - 1).flatmap(lambda i: rare if i == 0 else common)


PRICES = mostly(st.integers(95, 105), st.sampled_from([-1, 0, 1, 150, 151, 200, 201]))
QTYS = mostly(st.integers(1, 12), st.sampled_from([-1, 0, 29, 30, 31, 40, 41]))
SYMBOL = mostly(st.sampled_from(SYMBOLS), st.sampled_from([0, 3]), one_in=30)


@st.composite
def new_orders(draw: st.DrawFn) -> Command:
    ord_type = draw(mostly(st.sampled_from([LIMIT, LIMIT, LIMIT, MARKET]), st.sampled_from([0, 3]), 40))
    tif = draw(mostly(st.sampled_from([GTC, GTC, GTC, IOC, FOK]), st.sampled_from([0, 4]), 40))
    is_plain_gtc = ord_type == LIMIT and tif == GTC
    stop = draw(st.integers(0, 4).flatmap(
        lambda i: st.integers(94, 106) if i == 0 else st.just(0)))
    stop = draw(mostly(st.just(stop), st.sampled_from([-1, 151, 201]), 40))
    display = draw(mostly(st.just(0), st.integers(1, 6), 4)) if is_plain_gtc and not stop else 0
    display = draw(mostly(st.just(display), st.sampled_from([-1, 3]), 40))
    post_only = draw(mostly(st.just(False), st.just(True), 6 if is_plain_gtc and not stop else 60))
    return new(draw(ORDER_IDS), draw(ACCOUNTS),
               draw(mostly(st.sampled_from([BUY, SELL]), st.sampled_from([0, 3]), 40)),
               draw(PRICES), draw(QTYS), symbol=draw(SYMBOL), ord_type=ord_type, tif=tif,
               stp=draw(mostly(st.sampled_from(list(Stp)), st.just(4), 40)),
               post_only=post_only, stop=stop, display=display,
               reject=draw(mostly(st.just(0), st.sampled_from(
                   [Reason.OFF_TICK, Reason.OFF_LOT, Reason.MALFORMED]), 40)))


# Known engine deviation (see test_engine_rules.py::test_replace_qty_too_low_is_checked_before_qty_and_price,
# xfail): the engine checks qty/price before REPLACE_QTY_TOO_LOW. While it stands, replaces here draw
# only valid quantities and prices so the deviation cannot mask other differences. Set to False
# once the engine is fixed.
AVOID_REPLACE_CHECK_ORDER_DEVIATION = True


@st.composite
def replaces(draw: st.DrawFn) -> Command:
    if AVOID_REPLACE_CHECK_ORDER_DEVIATION:
        price, qty = draw(st.one_of(st.just(0), st.integers(95, 105))), draw(st.integers(2, 12))
    else:
        price, qty = draw(st.one_of(st.just(0), PRICES)), draw(QTYS)
    return replace(draw(ORDER_IDS), draw(st.integers(0, 3)), price, qty, symbol=draw(SYMBOL))


@st.composite
def instruments(draw: st.DrawFn) -> Command:
    """Mostly invalid or duplicate definitions; occasionally a valid new symbol 3."""
    return instrument(draw(st.integers(0, 3)), max_price=draw(st.sampled_from([0, 150, 300])),
                      min_qty=draw(st.sampled_from([0, 1, 2])), max_qty=draw(st.sampled_from([1, 30])),
                      min_notional=draw(st.sampled_from([-1, 0, 50])),
                      band_bps=draw(st.sampled_from([0, 500, 10_000, 10_001])))


COMMANDS = st.integers(0, 99).flatmap(lambda i: (
    new_orders() if i < 62
    else st.builds(lambda o, a, s: cancel(o, a, symbol=s), ORDER_IDS, st.integers(0, 3), SYMBOL) if i < 76
    else replaces() if i < 93
    else st.builds(mass_cancel, st.integers(0, 3), st.sampled_from([0, 0, 1, 2, 3])) if i < 97
    else instruments() if i < 99
    else st.builds(lambda op: {"op": op, "order_id": 1, "account": 1, "symbol": 1},
                   st.sampled_from([0, 6, 255]))))


@st.composite
def flows(draw: st.DrawFn, min_size: int = 5, max_size: int = 80) -> list[Command]:
    """Instrument definitions, then random commands with increasing timestamps."""
    # draw the length explicitly: st.lists alone favours very short lists, which rarely trade
    n = draw(st.integers(min_size, max_size), label="commands")
    cmds = [*INSTRUMENTS, *draw(st.lists(COMMANDS, min_size=n, max_size=n))]
    return [{**c, "ts": 1_000 + i} for i, c in enumerate(cmds)]


def split_points(n: int) -> st.SearchStrategy[list[int]]:
    """Batch boundaries: the engine must not care how commands are batched."""
    return st.lists(st.integers(0, n), max_size=4).map(lambda cuts: sorted({0, n, *cuts}))


def run_batches(eng: Any, cmds: Sequence[Command], cuts: Sequence[int]) -> list[Event]:
    events: list[Event] = []
    for lo, hi in zip(cuts, cuts[1:], strict=False):
        arr = batch(cmds[lo:hi])
        n = eng.process(arr)
        got = events_from_array(eng.events())
        assert len(got) == n, "process() must return the number of events"
        assert [int(s) for s in arr["seq"]] == list(range(eng.last_cmd_seq - (hi - lo) + 1,
                                                          eng.last_cmd_seq + 1))
        events += got
    return events


def assert_same_events(got: list[Event], want: list[Event]) -> None:
    """Field-by-field equality, reporting the first divergence with some context."""
    for i, (g, w) in enumerate(zip(got, want, strict=False)):
        if g != w:
            context = "\n".join("    " + describe(e) for e in want[max(0, i - 6):i])
            diff = {k: (g[k], w[k]) for k in g if g[k] != w[k]}
            raise AssertionError(f"event {i} differs (engine, reference): {diff}\n  before:\n{context}\n"
                                 f"  engine:    {describe(g)}\n  reference: {describe(w)}")
    assert len(got) == len(want), (
        f"engine produced {len(got)} events, reference {len(want)}; extra: "
        + "; ".join(describe(e) for e in (got[len(want):] or want[len(got):])[:5]))


def assert_same_state(eng: Any, ref: ReferenceEngine) -> None:
    for sym in sorted(ref.instruments):
        assert eng.book(sym) == ref.book(sym), f"book of symbol {sym}"
        assert eng.stop_orders(sym) == ref.stop_orders(sym), f"pending stops of symbol {sym}"
        assert eng.last_price(sym) == ref.last_price(sym), f"last price of symbol {sym}"
    assert eng.live_orders() == ref.live_orders()
    assert (eng.last_cmd_seq, eng.last_event_seq) == (ref.last_cmd_seq, ref.last_event_seq)


def assert_sequenced(events: list[Event], first_seq: int = 1) -> None:
    """Event seqs are gap-free and commands' events come in command order."""
    assert [e["seq"] for e in events] == list(range(first_seq, first_seq + len(events)))
    cmd_seqs = [e["cmd_seq"] for e in events]
    assert cmd_seqs == sorted(cmd_seqs)


@PROPS
@given(data=st.data())
def test_engine_matches_reference(data: st.DataObject) -> None:
    cmds = data.draw(flows())
    cuts = data.draw(split_points(len(cmds)))
    eng, ref = Engine(), ReferenceEngine()
    got = run_batches(eng, cmds, cuts)
    want = ref.process(batch(cmds))
    assert_same_events(got, want)
    assert_sequenced(got)
    assert_same_state(eng, ref)


@PROPS
@given(data=st.data())
def test_same_input_same_state(data: st.DataObject) -> None:
    """Determinism: same commands (batched differently) -> same events, same state hash."""
    cmds = data.draw(flows())
    a, b = Engine(), Engine()
    ev_a = run_batches(a, cmds, [0, len(cmds)])
    ev_b = run_batches(b, cmds, data.draw(split_points(len(cmds))))
    assert ev_a == ev_b
    assert a.state_hash() == b.state_hash()
    assert a.snapshot() == b.snapshot()


@PROPS
@given(data=st.data())
def test_snapshot_then_replay_equals_uninterrupted_run(data: st.DataObject) -> None:
    cmds = data.draw(flows(min_size=2))
    k = data.draw(st.integers(0, len(cmds)), label="snapshot after")
    whole = Engine()
    ev_whole = run_batches(whole, cmds, [0, len(cmds)])

    head = Engine()
    ev_head = run_batches(head, cmds, [0, k])
    restored = Engine.from_snapshot(head.snapshot())
    assert restored.state_hash() == head.state_hash()
    assert restored.snapshot() == head.snapshot()
    assert (restored.last_cmd_seq, restored.last_event_seq) == (head.last_cmd_seq, head.last_event_seq)
    ev_tail = run_batches(restored, cmds, [k, len(cmds)])

    assert ev_head + ev_tail == ev_whole
    assert restored.state_hash() == whole.state_hash()
    for sym in SYMBOLS:
        assert restored.book(sym) == whole.book(sym)
        assert restored.stop_orders(sym) == whole.stop_orders(sym)


@settings(max_examples=max(20, EXAMPLES // 5), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.large_base_example])
@given(data=st.data())
def test_long_flows_match_reference(data: st.DataObject) -> None:
    """Fewer but longer flows: deep books, long stop cascades, many iceberg refills."""
    cmds = data.draw(flows(min_size=100, max_size=250))
    eng, ref = Engine(), ReferenceEngine()
    got = run_batches(eng, cmds, [0, len(cmds)])
    assert_same_events(got, ref.process(batch(cmds)))
    assert_same_state(eng, ref)

