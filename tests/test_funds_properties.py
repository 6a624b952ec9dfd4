"""Property tests of funds mode: Engine(funds=True) against the reference on random flows.

A flow sets up assets, instruments and funded accounts, then mixes order flow (every order type,
tif, STP mode, icebergs, stops, cancels, replaces, mass cancels) with money and admin commands
(deposits with duplicate refs, withdrawals, transfers, adjustments, fee schedules with maker
rebates, fee tiers, account halts, trading status, limits) and a sprinkling of invalid ones. After
each flow: identical events, books and balances, and check_ledger() finds nothing. Set
ENGINE_PROP_EXAMPLES to run more examples (e.g. a nightly soak).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from core_cython.records import Op, Stp
from journal.ledger import check_ledger
from tests.engine_helpers import (
    BUY,
    FOK,
    GTC,
    IOC,
    LIMIT,
    MARKET,
    SELL,
    assert_same_events,
    batch,
    cancel,
    mass_cancel,
    new,
    replace,
)
from tests.reference_funds import (
    Command,
    ReferenceFundsEngine,
    add_asset,
    adjust,
    assert_same_funds_state,
    create_account,
    deposit,
    events_to_array,
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
from tests.reference_model import Event, events_from_array
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
# The reference's FOK simulation copies the whole engine: keep the default counts modest.
PROPS = settings(max_examples=max(10, EXAMPLES * 2 // 3), deadline=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
ENGINE_ONLY = settings(PROPS, max_examples=max(10, EXAMPLES // 3))

BTC, USD, ETH = 1, 2, 3  # asset ids
CUSTOMERS = (16, 17, 18)
SYMBOLS = (1, 2)

# Symbol 1: BTC/USD, 10 base units per lot, 3 quote units per tick x lot, 2% band.
# Symbol 2: ETH/USD, min qty 2, min notional 300, 100% band (markets sweep everything).
SETUP: list[Command] = [
    add_asset(BTC, 8), add_asset(USD, 2), add_asset(ETH, 18),
    funds_instrument(1, BTC, USD, base_per_lot=10, quote_per_tick_lot=3, max_price=200, min_qty=1,
                     max_qty=40, band_bps=200),
    funds_instrument(2, ETH, USD, base_per_lot=1, quote_per_tick_lot=1, max_price=150, min_qty=2,
                     max_qty=30, min_notional=300, band_bps=10_000),
]


TRADERS = mostly(CUSTOMERS, [0, 1, 3, 5, 19, 99], 20)  # rare: system, fee, unknown accounts
ACCOUNTS = mostly(CUSTOMERS, [0, 1, 2, 3, 19, 99], 10)
ASSETS = mostly([BTC, USD, ETH], [0, 4, 5000], 20)
AMOUNTS = mostly([1, 7, 50, 300, 1_000, 5_000, 20_000], [0, -5, 1 << 62, (1 << 63) - 1], 20)
TIERS = st.sampled_from([0, 0, 1, 2])


@st.composite
def new_orders(draw: st.DrawFn, order_id: int) -> Command:
    ord_type, tif = draw(ORD_TYPES), draw(TIFS)
    stop = draw(mostly([draw(STOPS)], BAD_STOPS, 60))
    can_rest = ord_type == LIMIT and tif == GTC and not stop
    display = draw(mostly([0], range(1, 7), 4) if can_rest else mostly([0], [-1, 3], 60))
    post_only = draw(mostly([False], [True], 6 if can_rest else 80))
    return new(order_id, draw(TRADERS), draw(SIDES), draw(PRICES), draw(QTYS), symbol=draw(SYMBOL),
               ord_type=ord_type, tif=tif, stp=draw(STPS), post_only=post_only, stop=stop,
               display=display, reject=draw(EDGE_REJECTS))


@st.composite
def money_commands(draw: st.DrawFn, wids: dict[int, int]) -> Command:
    """Deposits, withdrawals, transfers, adjustments: mostly valid, some not.

    wids: withdrawal id -> account of the WITHDRAW_HOLDs drawn so far (likely pending)."""
    kind = draw(st.integers(0, 11))
    acct, asset, amount = draw(ACCOUNTS), draw(ASSETS), draw(AMOUNTS)
    if kind < 3:  # refs from a small pool: duplicates happen; (0, 0) is malformed
        ref = draw(mostly([f"tx{i}" for i in range(40)], [(0, 0), "tx0"], 15))
        return deposit(acct, asset, amount, ref)
    if kind < 5 or kind < 7 and not wids:  # settle or release after a hold
        wid = draw(mostly([max(wids, default=0) + 1], [0, *wids], 8))
        if wid:
            wids.setdefault(wid, acct)
        return withdraw_hold(acct, asset, draw(mostly([1, 7, 50], [amount], 4)), wid)
    if kind < 7:
        make = draw(st.sampled_from([withdraw_settle, withdraw_release]))
        if draw(mostly([True], [False], 6)):
            wid = draw(st.sampled_from(sorted(wids)[-4:]))
            return make(wid, draw(mostly([0, wids.pop(wid)], CUSTOMERS, 6)))  # likely done after this
        return make(draw(st.integers(0, 8)), draw(mostly([0], CUSTOMERS, 3)))
    if kind < 10:
        return transfer(acct, draw(ACCOUNTS), asset, amount)
    sign = draw(mostly([1, -1], [0], 20))
    return adjust(draw(mostly([*CUSTOMERS, 3], [0, 1, 2, 99], 10)), asset, sign * amount,
                  reason=draw(mostly([1, 7], [0], 15)), ticket=draw(st.integers(0, 5)))


@st.composite
def admin_commands(draw: st.DrawFn) -> Command:
    """Fee schedules (incl. rebates), tiers, halts, trading status, limits, new accounts and assets."""
    kind = draw(st.integers(0, 12))
    if kind < 3:
        maker = draw(mostly(range(-20, 21, 5), [-1001, 1001, -60], 15))
        taker = draw(mostly([0, 5, 10, 25, 50], [-1, 1001], 15))
        return set_fees(draw(SYMBOL), maker, taker, tier=draw(TIERS))
    if kind < 5:
        return set_fee_tier(draw(ACCOUNTS), draw(TIERS))
    if kind < 7:  # a halt is mostly lifted again soon: activations are drawn more often
        return set_account_status(draw(ACCOUNTS), draw(mostly([0, 0, 1], [2], 20)))
    if kind < 9:
        return set_trading_status(draw(SYMBOL), draw(mostly([0, 0, 0, 1, 2], [3], 20)))
    if kind < 11:
        return set_limits(draw(SYMBOL), ref_price=draw(mostly([0, 95, 100, 104], [-1, 201], 15)),
                          max_notional=draw(mostly([0, 0, 1_500, 3_000], [-1], 15)))
    if kind < 12:
        return create_account(draw(st.sampled_from([*CUSTOMERS, 19, 20, 5])),
                              max_open=draw(mostly([3, 10], [0], 8)), tier=draw(TIERS))
    if draw(st.booleans()):
        return add_asset(draw(st.sampled_from([0, 3, 4, 4096])), draw(st.sampled_from([0, 18, 19])))
    return funds_instrument(draw(st.sampled_from([2, 3])), draw(st.sampled_from([BTC, ETH, 9])),
                            draw(st.sampled_from([USD, BTC])), base_per_lot=draw(st.sampled_from([0, 1, 5])),
                            quote_per_tick_lot=draw(st.sampled_from([1, 2, 1 << 50])), max_price=150,
                            max_qty=30)


@st.composite
def commands(draw: st.DrawFn, owners: dict[int, int], wids: dict[int, int]) -> Command:
    """One command; cancels and replaces mostly name ids (and owners) of earlier NEWs."""
    if owners and draw(st.integers(0, 5)):
        target = draw(st.sampled_from(sorted(owners)[-8:]))
        acct = draw(mostly([owners[target]], [0, *CUSTOMERS], 4))
    else:
        target, acct = draw(st.integers(1, 30)), draw(mostly(CUSTOMERS, [0], 4))
    kind = draw(st.integers(0, 99))
    if kind < 50:
        fresh = max(owners, default=0) + 1
        return draw(new_orders(draw(mostly([fresh], sorted(owners), 8)) if owners else fresh))
    if kind < 56:
        return cancel(target, acct, symbol=draw(SYMBOL)) | {"reject": draw(EDGE_REJECTS)}
    if kind < 66:
        price, qty = draw(st.one_of(st.just(0), PRICES)), draw(QTYS)
        return replace(target, acct, price, qty, symbol=draw(SYMBOL)) | {"reject": draw(EDGE_REJECTS)}
    if kind < 68:
        return mass_cancel(draw(mostly([0, *CUSTOMERS], [99], 10)), draw(st.sampled_from([0, 0, 1, 2, 3])))
    if kind < 84:
        cmd = draw(money_commands(wids))
    else:
        cmd = draw(admin_commands())
    return cmd | {"reject": draw(EDGE_REJECTS)}


@st.composite
def flows(draw: st.DrawFn, min_size: int = 5, max_size: int = 90) -> list[Command]:
    """Setup (assets, instruments, funded accounts), then random commands with increasing ts."""
    cmds = list(SETUP)
    for acct in CUSTOMERS:
        cmds.append(create_account(acct, max_open=draw(st.sampled_from([4, 12, 100])), tier=draw(TIERS)))
        cmds.append(deposit(acct, USD, draw(st.sampled_from([2_000, 20_000, 200_000])), f"seed-usd-{acct}"))
        cmds.append(deposit(acct, BTC, draw(st.sampled_from([30, 300, 3_000])), f"seed-btc-{acct}"))
        cmds.append(deposit(acct, ETH, draw(st.sampled_from([10, 100, 1_000])), f"seed-eth-{acct}"))
    if draw(st.booleans()):
        cmds.append(set_fees(1, draw(st.sampled_from([-10, 0, 10])), draw(st.sampled_from([10, 30]))))
    n = draw(st.integers(min_size, max_size), label="commands")
    owners: dict[int, int] = {}
    wids: dict[int, int] = {}
    for _ in range(n):
        cmd = draw(commands(owners, wids))
        may_live = cmd["op"] == Op.NEW and (cmd["tif"] == GTC and cmd["ord_type"] == LIMIT
                                            or cmd["stop_price"] > 0)
        if may_live:
            owners[cmd["order_id"]] = cmd["account"]
        cmds.append(cmd)
    return [{**c, "ts": 1_000 + i} for i, c in enumerate(cmds)]


def split_points(n: int) -> st.SearchStrategy[list[int]]:
    return st.lists(st.integers(0, n), max_size=4).map(lambda cuts: sorted({0, n, *cuts}))


def run_batches(eng: Any, cmds: Sequence[Command], cuts: Sequence[int],
                history: list[Any] | None = None) -> list[Event]:
    """Process cmds in the batches cuts define; keep each batch's event array in history."""
    events: list[Event] = []
    for lo, hi in zip(cuts, cuts[1:], strict=False):
        n = eng.process(batch(cmds[lo:hi]))
        arr = eng.events().copy()
        assert len(arr) == n
        if history is not None:
            history.append(arr)
        events += events_from_array(arr)
    return events


@PROPS
@given(data=st.data())
def test_funds_engine_matches_reference(data: st.DataObject) -> None:
    cmds = data.draw(flows())
    cuts = data.draw(split_points(len(cmds)))
    eng, ref = Engine(funds=True), ReferenceFundsEngine()
    history: list[Any] = []
    got = run_batches(eng, cmds, cuts, history)
    want = ref.process(batch(cmds))
    assert_same_events(got, want)
    assert [e["seq"] for e in got] == list(range(1, len(got) + 1))
    assert_same_funds_state(eng, ref)
    assert check_ledger(eng, history) == []
    assert check_ledger(ref, [events_to_array(want)]) == []


@settings(PROPS, max_examples=max(5, EXAMPLES // 10),
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.large_base_example])
@given(data=st.data())
def test_long_funds_flows_match_reference(data: st.DataObject) -> None:
    """Fewer but longer flows: deep books, many settlements, halts and fee changes in between."""
    cmds = data.draw(flows(min_size=120, max_size=250))
    eng, ref = Engine(funds=True), ReferenceFundsEngine()
    history: list[Any] = []
    got = run_batches(eng, cmds, [0, len(cmds)], history)
    assert_same_events(got, ref.process(batch(cmds)))
    assert_same_funds_state(eng, ref)
    assert check_ledger(eng, history) == []


@ENGINE_ONLY
@given(data=st.data())
def test_funds_snapshot_then_replay_equals_uninterrupted_run(data: st.DataObject) -> None:
    cmds = data.draw(flows(min_size=2))
    k = data.draw(st.integers(0, len(cmds)), label="snapshot after")
    whole = Engine(funds=True)
    whole_history: list[Any] = []
    ev_whole = run_batches(whole, cmds, [0, len(cmds)], whole_history)

    head = Engine(funds=True)
    history: list[Any] = []
    ev_head = run_batches(head, cmds, [0, k], history)
    restored = Engine.from_snapshot(head.snapshot())
    assert restored.funds
    assert restored.snapshot() == head.snapshot()
    assert restored.state_hash() == head.state_hash()
    ev_tail = run_batches(restored, cmds, [k, len(cmds)], history)

    assert ev_head + ev_tail == ev_whole
    assert restored.state_hash() == whole.state_hash()
    assert restored.balances() == whole.balances()
    assert restored.accounts() == whole.accounts()
    assert restored.withdrawals() == whole.withdrawals()
    assert restored.open_orders() == whole.open_orders()
    for sym in SYMBOLS:
        assert restored.book(sym) == whole.book(sym)
        assert restored.instrument(sym) == whole.instrument(sym)
    assert check_ledger(restored, history) == []


@ENGINE_ONLY
@given(data=st.data())
def test_funds_same_input_same_state(data: st.DataObject) -> None:
    """Determinism in funds mode: batching does not matter."""
    cmds = data.draw(flows())
    a, b = Engine(funds=True), Engine(funds=True)
    assert run_batches(a, cmds, [0, len(cmds)]) == run_batches(b, cmds, data.draw(split_points(len(cmds))))
    assert a.snapshot() == b.snapshot()


@st.composite
def funded_book(draw: st.DrawFn) -> list[Command]:
    """Setup with deep pockets and a fee schedule (maybe rebates), then a random resting book."""
    cmds = list(SETUP)
    for acct in CUSTOMERS:
        cmds += [create_account(acct, tier=draw(TIERS)), deposit(acct, USD, 10**7, f"usd-{acct}"),
                 deposit(acct, BTC, 10**5, f"btc-{acct}")]
    for tier in draw(st.sets(TIERS)):
        maker, taker = draw(st.sampled_from([-25, -3, 0, 7])), draw(st.sampled_from([0, 3, 25, 100]))
        cmds.append(set_fees(1, maker, taker, tier=tier))
    for oid in range(1, 1 + draw(st.integers(0, 14))):
        cmds.append(new(oid, draw(st.sampled_from(CUSTOMERS)), draw(st.sampled_from([BUY, SELL])),
                        draw(st.integers(97, 103)), draw(st.integers(1, 8)),
                        display=draw(mostly([0], range(1, 4), 3))))
    return cmds


@PROPS
@given(book=funded_book(), data=st.data())
def test_funded_stops_and_markets_match_reference(book: list[Command], data: st.DataObject) -> None:
    """Pending stops (their holds priced at the stop, market buys capped by it) over a random book,
    then one taker that prints through some of them: settlement, fees and releases on every fill."""
    stops = [new(200 + i, data.draw(st.sampled_from(CUSTOMERS)), data.draw(st.sampled_from([BUY, SELL])),
                 data.draw(st.integers(97, 103)), data.draw(st.integers(1, 6)),
                 ord_type=data.draw(st.sampled_from([LIMIT, MARKET])),
                 tif=data.draw(st.sampled_from([GTC, GTC, IOC, FOK])),
                 stp=data.draw(st.sampled_from(list(Stp))), stop=data.draw(st.integers(96, 104)))
             for i in range(data.draw(st.integers(0, 10)))]
    takers = [new(300 + i, data.draw(st.sampled_from(CUSTOMERS)), data.draw(st.sampled_from([BUY, SELL])),
                  data.draw(st.integers(96, 104)), data.draw(st.integers(1, 25)),
                  ord_type=data.draw(st.sampled_from([LIMIT, MARKET])),
                  tif=data.draw(st.sampled_from([GTC, IOC, FOK])), stp=data.draw(st.sampled_from(list(Stp))))
              for i in range(data.draw(st.integers(1, 3)))]
    cmds = [*book, *data.draw(st.permutations(stops)), *takers]
    eng, ref = Engine(funds=True), ReferenceFundsEngine()
    history: list[Any] = []
    got = run_batches(eng, cmds, [0, len(cmds)], history)
    assert_same_events(got, ref.process(batch(cmds)))
    assert_same_funds_state(eng, ref)
    assert check_ledger(eng, history) == []
