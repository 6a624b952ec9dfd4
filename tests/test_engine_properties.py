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

from core_cython.records import EventType, Op, Stp
from tests.engine_helpers import (
    BUY,
    FOK,
    GTC,
    IOC,
    LIMIT,
    MARKET,
    SELL,
    Command,
    assert_same_events,
    batch,
    cancel,
    instrument,
    mass_cancel,
    new,
    replace,
)
from tests.reference_model import Event, ReferenceEngine, events_from_array
from tests.strategies import (
    BAD_STOPS,
    EDGE_REJECTS,
    ORD_TYPES,
    PRICES,
    QTYS,
    SIDES,
    STOPS,
    STPS,
    SYMBOL,
    TIFS,
    mostly,
)

engine_mod = pytest.importorskip("core_cython.engine")
Engine = engine_mod.Engine

EXAMPLES = int(os.environ.get("ENGINE_PROP_EXAMPLES", "150"))
PROPS = settings(max_examples=EXAMPLES, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
# engine-only properties are cheaper to check but also find less: fewer examples
ENGINE_ONLY = settings(PROPS, max_examples=max(20, EXAMPLES * 2 // 3))

# Symbol 1: 2% market band (binds inside the price grid).
# Symbol 2: min qty 2, min notional 300, 100% band (markets sweep everything).
INSTRUMENTS: list[Command] = [
    instrument(1, max_price=200, min_qty=1, max_qty=40, min_notional=0, band_bps=200),
    instrument(2, max_price=150, min_qty=2, max_qty=30, min_notional=300, band_bps=10_000),
]
SYMBOLS = (1, 2)
ORDER_IDS = st.integers(1, 30)
ACCOUNTS = st.integers(1, 3)
SESSION_TAG_VALUES = [0, 7, 1 << 40, -1]  # -1: all 64 bits set (the engine reads a u64)
SESSION_TAGS = st.sampled_from(SESSION_TAG_VALUES)




@st.composite
def new_orders(draw: st.DrawFn, order_id: int) -> Command:
    ord_type, tif = draw(ORD_TYPES), draw(TIFS)
    stop = draw(mostly([draw(STOPS)], BAD_STOPS, 60))
    can_rest = ord_type == LIMIT and tif == GTC and not stop  # may be an iceberg or post-only
    # icebergs and post-only where they are allowed, and rarely where they are not
    display = draw(mostly([0], range(1, 7), 4) if can_rest else mostly([0], [-1, 3], 60))
    post_only = draw(mostly([False], [True], 6 if can_rest else 80))
    return new(order_id, draw(ACCOUNTS), draw(SIDES), draw(PRICES), draw(QTYS), symbol=draw(SYMBOL),
               ord_type=ord_type, tif=tif, stp=draw(STPS), post_only=post_only, stop=stop,
               display=display, reject=draw(EDGE_REJECTS), session=draw(SESSION_TAGS))


@st.composite
def replaces(draw: st.DrawFn, order_id: int, acct: int) -> Command:
    price, qty = draw(st.one_of(st.just(0), PRICES)), draw(QTYS)
    return replace(order_id, acct, price, qty, symbol=draw(SYMBOL)) | {"reject": draw(EDGE_REJECTS)}


@st.composite
def instruments(draw: st.DrawFn) -> Command:
    """Mostly invalid or duplicate definitions; occasionally a valid new symbol 3."""
    return instrument(draw(st.integers(0, 3)), max_price=draw(st.sampled_from([0, 150, 300])),
                      min_qty=draw(st.sampled_from([0, 1, 2])), max_qty=draw(st.sampled_from([1, 30])),
                      min_notional=draw(st.sampled_from([-1, 0, 50])),
                      band_bps=draw(st.sampled_from([0, 500, 10_000, 10_001])))


@st.composite
def commands(draw: st.DrawFn, owners: dict[int, int]) -> Command:
    """One command; cancels and replaces mostly name ids (and owners) of earlier NEWs: likely live."""
    if owners and draw(st.integers(0, 5)):
        target = draw(st.sampled_from(sorted(owners)[-8:]))  # recent ids are the likeliest live
        acct = draw(mostly([owners[target]], range(4), 4))
    else:
        target, acct = draw(ORDER_IDS), draw(st.integers(0, 3))
    kind = draw(st.integers(0, 99))
    if kind < 70:
        # mostly a fresh id; sometimes an earlier one (duplicate if still live, else a reuse)
        fresh = max(owners, default=0) + 1
        return draw(new_orders(draw(mostly([fresh], sorted(owners), 8)) if owners else fresh))
    if kind < 78:
        return cancel(target, acct, symbol=draw(SYMBOL)) | {"reject": draw(EDGE_REJECTS)}
    if kind < 95:
        return draw(replaces(target, acct))
    if kind < 97:
        return mass_cancel(draw(st.integers(0, 3)), draw(st.sampled_from([0, 0, 1, 2, 3])),
                           session=draw(st.sampled_from([0, 0, *SESSION_TAG_VALUES])))
    if kind < 98:
        return draw(instruments())
    return {"op": draw(st.sampled_from([0, 6, 255])), "order_id": target, "account": 1, "symbol": 1}


@st.composite
def flows(draw: st.DrawFn, min_size: int = 5, max_size: int = 80) -> list[Command]:
    """Instrument definitions, then random commands with increasing timestamps."""
    # draw the length explicitly: st.lists alone favours very short lists, which rarely trade
    n = draw(st.integers(min_size, max_size), label="commands")
    cmds = list(INSTRUMENTS)
    owners: dict[int, int] = {}
    for _ in range(n):
        cmd = draw(commands(owners))
        may_live = cmd["op"] == Op.NEW and (cmd["tif"] == GTC and cmd["ord_type"] == LIMIT
                                            or cmd["stop_price"] > 0)
        if may_live:  # a target worth cancelling or replacing later
            owners[cmd["order_id"]] = cmd["account"]
        cmds.append(cmd)
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


@ENGINE_ONLY
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


@ENGINE_ONLY
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


@ENGINE_ONLY
@given(data=st.data())
def test_every_event_about_an_order_gives_its_quantity(data: st.DataObject) -> None:
    """What a gateway restarted mid-session relies on: without having seen an order placed, it reads
    the order's quantity off any event about it (live: leaves + filled, both sides of a trade)."""
    cmds = data.draw(flows())
    quantity: dict[int, int] = {}  # live order id -> qty from its ACCEPTED / REPLACED event
    for e in run_batches(Engine(), cmds, [0, len(cmds)]):
        kind = e["type"]
        if kind in (EventType.ACCEPTED, EventType.REPLACED):
            quantity[e["order_id"]] = e["qty"]
        elif kind == EventType.TRADE:
            assert e["leaves"] + e["filled"] == quantity[e["order_id"]]
            assert e["maker_leaves"] + e["maker_filled"] == quantity[e["maker_order"]]
            if e["leaves"] == 0:  # a filled order is gone
                del quantity[e["order_id"]]
            if e["maker_leaves"] == 0:
                del quantity[e["maker_order"]]
        elif kind == EventType.TRIGGERED:
            assert e["leaves"] + e["filled"] == quantity[e["order_id"]]
        elif kind in (EventType.CANCELLED, EventType.EXPIRED):
            assert e["leaves"] == 0 and e["qty"] + e["filled"] == quantity.pop(e["order_id"])


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



@st.composite
def makers(draw: st.DrawFn, first_id: int = 1) -> list[Command]:
    """A random resting book on symbol 1: plain and iceberg GTC limits from three accounts."""
    cmds: list[Command] = []
    for oid in range(first_id, first_id + draw(st.integers(0, 14))):
        qty = draw(st.integers(1, 8))
        display = draw(mostly([0], range(1, 4), 3))
        cmds.append(new(oid, draw(ACCOUNTS), draw(st.sampled_from([BUY, SELL])), draw(st.integers(97, 103)),
                        qty, display=display))
    return cmds


@PROPS
@given(book=makers(), side=st.sampled_from([BUY, SELL]), acct=ACCOUNTS, stp=st.sampled_from(list(Stp)),
       is_market=st.booleans(), price=st.integers(96, 104), qty=st.integers(1, 30))
def test_fok_precheck_matches_definition(book: list[Command], side: int, acct: int, stp: Stp,
                                         is_market: bool, price: int, qty: int) -> None:
    """FOK's "can fill" is defined by simulating the execution (reference); the engine pre-checks."""
    taker = new(100, acct, side, price, qty, tif=FOK, stp=stp, ord_type=MARKET if is_market else LIMIT)
    cmds = [INSTRUMENTS[0], *book, taker]
    eng, ref = Engine(), ReferenceEngine()
    assert_same_events(run_batches(eng, cmds, [0, len(cmds)]), ref.process(batch(cmds)))
    assert_same_state(eng, ref)


@PROPS
@given(book=makers(), data=st.data())
def test_stop_cascades_match_reference(book: list[Command], data: st.DataObject) -> None:
    """Many pending stops over a random book, then one order that prints through some of them."""
    stops = [new(200 + i, data.draw(ACCOUNTS), data.draw(st.sampled_from([BUY, SELL])),
                 data.draw(st.integers(97, 103)), data.draw(st.integers(1, 6)),
                 ord_type=data.draw(st.sampled_from([LIMIT, MARKET])),
                 tif=data.draw(st.sampled_from([GTC, GTC, IOC, FOK])),
                 stp=data.draw(st.sampled_from(list(Stp))), stop=data.draw(st.integers(96, 104)))
             for i in range(data.draw(st.integers(1, 10)))]
    trigger = new(300, data.draw(ACCOUNTS), data.draw(st.sampled_from([BUY, SELL])),
                  data.draw(st.integers(96, 104)), data.draw(st.integers(1, 20)),
                  ord_type=data.draw(st.sampled_from([LIMIT, MARKET])))
    cmds = [INSTRUMENTS[0], *book, *data.draw(st.permutations(stops)), trigger]
    eng, ref = Engine(), ReferenceEngine()
    assert_same_events(run_batches(eng, cmds, [0, len(cmds)]), ref.process(batch(cmds)))
    assert_same_state(eng, ref)
