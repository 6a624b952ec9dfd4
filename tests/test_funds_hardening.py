"""Regression tests for the funds-mode review findings (core_cython/README.md "Funds mode").

One test per finding: each failed on the engine before the fixes and passes now.
1. ADJUST cycles pushed ADJUSTMENTS past 2^62 and EXTERNAL past int64 (it wrapped).
2. Inspection calls ran, unguarded, while another thread was inside process().
3-7. Engine.from_snapshot accepted hostile snapshots: supply above the cap with balances summing
   to zero (in int64), underfunded order holds, malformed pending stops, a repeated acceptance
   sequence, non-canonical bytes (status 0x100, non-zero order padding, unordered assets or balances).
8. ADD_ASSET with a high id cost 64 KiB per account (balances were indexed by asset id).
Also: balances() and accounts() come out in id order, live and restored.

Hostile snapshots are built with tests/snapshot_codec.py.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from core_cython.records import (
    ACCOUNT_ADJUSTMENTS,
    ACCOUNT_EXTERNAL,
    ACCOUNT_FEES,
    COMMAND_DTYPE,
    EventType,
    Op,
    Stp,
)
from tests import snapshot_codec as codec
from tests.engine_helpers import BUY, FOK, GTC, LIMIT, SELL, kinds, market, new, run
from tests.reference_funds import (
    SUPPLY_CAP,
    FundsTwin,
    add_asset,
    adjust,
    create_account,
    deposit,
    funds_instrument,
    set_fees,
    withdraw_hold,
    withdraw_settle,
)

Engine = pytest.importorskip("core_cython.engine").Engine

BTC, USD = 1, 2
SYM = 1
A, B, C = 16, 17, 18
BPL, QPTL = 1_000, 7   # base units per lot, quote units per tick x lot
X = SUPPLY_CAP         # 2^62
INT64_MIN = -(1 << 63)


def restored_hash(blob: bytes) -> str:
    return str(Engine.from_snapshot(blob).state_hash())


# ------------------------------------------------------------------ 1. ADJUSTMENTS stays within +-2^62

def assert_system_balances_in_range(twin: FundsTwin, asset: int) -> None:
    external = twin.balance(ACCOUNT_EXTERNAL, asset)[0]
    adjustments = twin.balance(ACCOUNT_ADJUSTMENTS, asset)[0]
    supply = sum(av + h for (acct, a), (av, h) in twin.eng.balances().items()
                 if a == asset and acct not in (ACCOUNT_EXTERNAL, ACCOUNT_ADJUSTMENTS))
    assert -X <= adjustments <= X
    assert INT64_MIN <= external <= X
    assert 0 <= supply <= X
    assert external + adjustments + supply == 0  # exact (Python ints): nothing wrapped


def test_adjust_cycles_cannot_push_adjustments_past_the_cap() -> None:
    twin = FundsTwin(add_asset(BTC), create_account(A))
    # Deposit 2^62 then adjust it away: ADJUSTMENTS = +2^62, at its bound; supply back to 0.
    assert [e["type"] for e in twin.run(deposit(A, BTC, X, "d0"), adjust(A, BTC, -X))][-3:] == [
        EventType.APPLIED, EventType.POSTING, EventType.POSTING]
    # A second cycle: the deposit fits the supply cap, but the debit would take ADJUSTMENTS to 2^63
    # (before the fix it was applied and ADJUSTMENTS wrapped to -2^63).
    twin.run(deposit(A, BTC, X, "d1"))
    before = twin.eng.balances()
    for amount in (-X, -1):
        assert kinds(twin.run(adjust(A, BTC, amount))) == [("REJECTED", "SUPPLY_LIMIT")]
        assert twin.eng.balances() == before
    assert twin.balance(ACCOUNT_ADJUSTMENTS, BTC) == (X, 0)
    assert twin.balance(ACCOUNT_EXTERNAL, BTC) == (INT64_MIN, 0)  # -2 x 2^62: the lowest it can go
    assert_system_balances_in_range(twin, BTC)
    # Withdrawing the customer's 2^62 brings EXTERNAL back to -2^62.
    twin.run(withdraw_hold(A, BTC, X, 1), withdraw_settle(1))
    assert twin.balance(ACCOUNT_EXTERNAL, BTC) == (-X, 0)
    assert_system_balances_in_range(twin, BTC)

    # The other direction: credits push ADJUSTMENTS down to -2^62 and no further.
    twin.run(add_asset(USD), create_account(B))
    twin.run(adjust(B, USD, X))
    twin.run(withdraw_hold(B, USD, X, 2), withdraw_settle(2))  # supply 0, EXTERNAL +2^62
    before = twin.eng.balances()
    for amount in (1, X):
        assert kinds(twin.run(adjust(B, USD, amount))) == [("REJECTED", "SUPPLY_LIMIT")]
        assert twin.eng.balances() == before
    assert (twin.balance(ACCOUNT_ADJUSTMENTS, USD), twin.balance(ACCOUNT_EXTERNAL, USD)) == ((-X, 0), (X, 0))
    assert_system_balances_in_range(twin, USD)
    # ADJUSTMENTS can still move back toward 0 (a deposit, then a debit adjustment of it).
    twin.run(deposit(B, USD, 5, "d2"), adjust(B, USD, -5))
    assert twin.balance(ACCOUNT_ADJUSTMENTS, USD) == (-X + 5, 0)

    twin.check()  # same events and state as tests/reference_funds.py; check_ledger finds nothing
    assert restored_hash(twin.eng.snapshot()) == twin.eng.state_hash()


# ------------------------------------------------------------------ 2. one thread at a time

RESTING, FOKS = 5_000, 4_000  # each FOK scans every resting order: process() runs some 30 ms


def busy_engine() -> Any:
    """A funds engine with RESTING self-owned sells at one price (account B)."""
    eng = Engine(funds=True, initial_orders=RESTING + 64, initial_events=4 * FOKS + 64)
    run(eng, add_asset(BTC), add_asset(USD), funds_instrument(SYM, BTC, USD),
        create_account(B, max_open=RESTING + 8), deposit(B, BTC, RESTING, "b"), deposit(B, USD, 10**9, "q"),
        withdraw_hold(B, USD, 7, 1))
    sells = np.zeros(RESTING, COMMAND_DTYPE)
    sells["op"], sells["order_id"], sells["account"], sells["symbol"] = (
        Op.NEW, np.arange(1, RESTING + 1), B, SYM)
    sells["side"], sells["ord_type"], sells["tif"], sells["price"], sells["qty"] = SELL, LIMIT, GTC, 100, 1
    eng.process(sells)
    return eng


def fok_batch(first_id: int) -> np.ndarray:
    """FOK buys of B against its own sells (cancel-maker STP): each scans the whole level, finds
    nothing it may take and expires; the hold is released, so the state ends as it began."""
    cmds = np.zeros(FOKS, COMMAND_DTYPE)
    cmds["op"], cmds["order_id"], cmds["account"], cmds["symbol"] = (
        Op.NEW, np.arange(first_id, first_id + FOKS), B, SYM)
    cmds["side"], cmds["ord_type"], cmds["tif"], cmds["price"], cmds["qty"] = BUY, LIMIT, FOK, 100, 1
    cmds["stp"] = Stp.CANCEL_MAKER
    return cmds


def inspection_calls(eng: Any) -> dict[str, Callable[[], Any]]:
    return {
        "balance": lambda: eng.balance(B, USD), "balances": eng.balances, "accounts": eng.accounts,
        "assets": eng.assets, "withdrawals": eng.withdrawals, "fee_rates": lambda: eng.fee_rates(B, SYM),
        "instrument": lambda: eng.instrument(SYM), "live_orders": eng.live_orders,
        "last_price": lambda: eng.last_price(SYM), "symbols": eng.symbols, "open_orders": eng.open_orders,
        "order": lambda: eng.order(RESTING), "book": lambda: eng.book(SYM),
        "stop_orders": lambda: eng.stop_orders(SYM), "snapshot": eng.snapshot, "state_hash": eng.state_hash,
        "events": lambda: len(eng.events()),
    }


def test_inspection_calls_refuse_to_run_during_process() -> None:
    eng = busy_engine()
    calls = inspection_calls(eng)
    raised: set[str] = set()
    first_id = RESTING + 1
    # Retry the whole race until every call has met a running process() (one round is normally
    # enough: process() runs some 30 ms and the calls take microseconds).
    for _ in range(10):
        before = {name: f() for name, f in calls.items()}
        seen: dict[str, list[Any]] = {name: [] for name in calls}
        errors: list[BaseException] = []
        cmds = fok_batch(first_id)
        first_id += FOKS

        def work(cmds: np.ndarray = cmds, errors: list[BaseException] = errors) -> None:
            try:
                eng.process(cmds)
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                errors.append(exc)

        worker = threading.Thread(target=work)
        worker.start()
        while worker.is_alive():
            for name, f in calls.items():
                try:
                    got = f()
                except RuntimeError as exc:
                    assert "single-threaded" in str(exc)
                    raised.add(name)
                    continue
                if not seen[name] or seen[name][-1] != got:
                    seen[name].append(got)
        worker.join()
        assert errors == []
        after = {name: f() for name, f in calls.items()}
        # A call that ran saw the whole state before or after the batch, never a state inside it.
        for name, results in seen.items():
            for got in results:
                assert got == before[name] or got == after[name], f"{name}() saw a state inside process()"
        if raised == set(calls):
            break
    assert raised == set(calls), f"never refused during process(): {sorted(set(calls) - raised)}"
    # The batch changed nothing but the sequence numbers, and the engine is whole.
    for name in set(calls) - {"snapshot", "state_hash", "events"}:
        assert after[name] == before[name], name
    assert restored_hash(eng.snapshot()) == eng.state_hash()


# ------------------------------------------------------------------ 3-7. hostile snapshots

def snapshot_state() -> FundsTwin:
    """Resting orders (one iceberg), pending stop limits and stop markets on both sides, fees in
    the holds, a pending withdrawal."""
    return FundsTwin(
        add_asset(BTC, 8), add_asset(USD, 2),
        funds_instrument(SYM, BTC, USD, base_per_lot=BPL, quote_per_tick_lot=QPTL, max_price=10_000,
                         max_qty=1_000, band_bps=1_000),
        set_fees(SYM, -2, 5),
        create_account(A), create_account(B), create_account(C),
        deposit(A, USD, 10**9, "a"), deposit(B, BTC, 10**9, "b"), deposit(C, USD, 1_000, "c"),
        new(1, A, BUY, 100, 10),
        new(2, B, SELL, 120, 10, display=3),
        new(3, B, SELL, 80, 5, stop=90),
        new(4, A, BUY, 130, 2, stop=125),
        market(5, A, BUY, 2, stop=125),
        market(6, B, SELL, 1, stop=90),
        withdraw_hold(C, USD, 500, 9),
    )


@pytest.fixture(scope="module")
def base() -> tuple[bytes, str]:
    twin = snapshot_state()
    assert twin.eng.live_orders() == 6 and twin.eng.stop_orders(SYM) == [3, 4, 5, 6]
    return twin.eng.snapshot(), twin.eng.state_hash()


def tampered(blob: bytes, change: Callable[[codec.Snapshot], Any]) -> bytes:
    out = codec.hostile(blob, change)
    assert out != blob
    return out


def assert_restore_fails(blob: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Engine.from_snapshot(blob)


def test_snapshot_codec_round_trips(base: tuple[bytes, str]) -> None:
    blob, _ = base
    snap = codec.check_round_trip(blob)
    assert [o.id for o in snap.orders] == [1, 2, 3, 4, 5, 6]
    assert snap.order(1).hold_per_lot == 100 * QPTL + 1  # N(100, 1) = 700, + ceil(700 x 5 / 10000)
    assert snap.account(C).balance(USD) == codec.Balance(USD, 500, 500)
    assert snap.ledger is not None and [w.id for w in snap.ledger.withdrawals] == [9]
    core = Engine()
    run(core, dict(op=Op.ADD_INSTRUMENT, symbol=3, price=1_000, qty=1, display_qty=100, order_id=500),
        new(1, 7, BUY, 10, 5, symbol=3), new(2, 7, SELL, 20, 5, symbol=3, display=2),
        new(3, 8, SELL, 5, 1, symbol=3, stop=9))
    assert codec.check_round_trip(core.snapshot()).ledger is None
    with pytest.raises(ValueError):
        codec.parse(blob + b"\0")
    with pytest.raises(ValueError):
        codec.parse(blob[:-1])


def move_held(snap: codec.Snapshot, account: int, asset: int, delta: int) -> None:
    """Change an account's held balance by delta, EXTERNAL taking the other side (sums stay 0)."""
    snap.account(account).balance(asset).held += delta
    snap.account(ACCOUNT_EXTERNAL).balance(asset).avail -= delta


def test_snapshot_supply_above_the_cap_is_refused(base: tuple[bytes, str]) -> None:
    blob, state_hash = base
    assert restored_hash(blob) == state_hash
    fresh = FundsTwin(add_asset(BTC), create_account(A), create_account(B), deposit(A, BTC, X, "a")).eng
    small = fresh.snapshot()
    assert restored_hash(small) == fresh.state_hash()

    def shared_at_the_cap(s: codec.Snapshot) -> None:  # A and B split 2^62: allowed
        s.account(A).balance(BTC).avail = X - 5
        s.account(B).balance(BTC).avail = 5

    ok = tampered(small, shared_at_the_cap)
    assert Engine.from_snapshot(ok).snapshot() == ok

    def both_at_the_cap(s: codec.Snapshot) -> None:  # 2^62 + 2^62 - 2^63 = 0, as the review found
        s.account(B).balance(BTC).avail = X
        s.account(ACCOUNT_EXTERNAL).balance(BTC).avail = INT64_MIN

    def fees_over_the_cap(s: codec.Snapshot) -> None:  # the fee account counts toward the supply
        s.account(ACCOUNT_FEES).balance(BTC).avail = 1
        s.account(ACCOUNT_EXTERNAL).balance(BTC).avail -= 1

    assert_restore_fails(tampered(small, both_at_the_cap), "supply exceeds the cap")
    assert_restore_fails(tampered(small, fees_over_the_cap), "supply exceeds the cap")

    def adjustments_past_the_bound(s: codec.Snapshot) -> None:  # ADJUSTMENTS at 2^62 + 1
        s.account(A).balance(BTC).avail = 1
        s.account(ACCOUNT_ADJUSTMENTS).balance(BTC).avail = X + 1
        s.account(ACCOUNT_EXTERNAL).balance(BTC).avail = -X - 2

    assert_restore_fails(tampered(small, adjustments_past_the_bound), "system account balance out of range")


def test_snapshot_underfunded_order_holds_are_refused(base: tuple[bytes, str]) -> None:
    blob, state_hash = base
    assert restored_hash(blob) == state_hash

    def set_hold(order_id: int, hold_per_lot: int) -> Callable[[codec.Snapshot], None]:
        def change(s: codec.Snapshot) -> None:
            o = s.order(order_id)
            move_held(s, o.account, USD if o.side == BUY else BTC, hold_per_lot * o.leaves - o.held)
            o.hold_per_lot, o.held = hold_per_lot, hold_per_lot * o.leaves
        return change

    # Order 1 (buy 10 @ 100) holds 701 per lot. The review's snapshot: 1 per lot (10 in all), the
    # account's held balance and EXTERNAL adjusted to match: the ledger alone is consistent.
    assert_restore_fails(tampered(blob, set_hold(1, 1)), "inconsistent order hold")
    assert_restore_fails(tampered(blob, set_hold(1, 100 * QPTL)), "inconsistent order hold")  # no fee
    assert_restore_fails(tampered(blob, set_hold(4, 1)), "inconsistent order hold")  # a pending stop buy

    def market_buy_hold_price(s: codec.Snapshot) -> None:
        s.order(5).hold_price = 10_000  # caps where the stop market buy may execute: its hold covers 137

    def limit_hold_price(s: codec.Snapshot) -> None:
        s.order(1).hold_price = 99

    assert_restore_fails(tampered(blob, market_buy_hold_price), "inconsistent order hold")
    assert_restore_fails(tampered(blob, limit_hold_price), "inconsistent order hold")


def test_snapshot_pending_stops_are_validated_as_new_accepts_them(base: tuple[bytes, str]) -> None:
    blob, state_hash = base
    assert restored_hash(blob) == state_hash

    def field(order_id: int, **values: Any) -> Callable[[codec.Snapshot], None]:
        def change(s: codec.Snapshot) -> None:
            for name, value in values.items():
                setattr(s.order(order_id), name, value)
        return change

    # Order 3: sell stop limit 5 @ 80, stop 90 (a sell's hold does not depend on its price).
    for change in (
        field(3, price=-5, hold_price=-5),          # the review's: it traded at -5 once triggered
        field(3, price=0, hold_price=0),
        field(3, price=10_001, hold_price=10_001),  # above max price
        field(3, display=2),                        # an iceberg stop
        field(3, flags=1),                          # post-only (Flag.POST_ONLY)
        field(3, visible=1),
        field(6, price=5),                          # a stop market with a price
        field(6, tif=GTC),                          # a GTC stop market
    ):
        assert_restore_fails(tampered(blob, change), "inconsistent order$")


def test_snapshot_acceptance_sequence_must_increase(base: tuple[bytes, str]) -> None:
    blob, state_hash = base
    assert restored_hash(blob) == state_hash

    def shared_seq(s: codec.Snapshot) -> None:
        # Orders 4 and 5: buy stops at 125. With one accept_seq they shared a stop-map key and one
        # of them could never trigger (while still holding funds).
        s.order(5).accept_seq = s.order(4).accept_seq

    def swapped(s: codec.Snapshot) -> None:
        s.order(1).accept_seq, s.order(2).accept_seq = s.order(2).accept_seq, s.order(1).accept_seq

    assert_restore_fails(tampered(blob, shared_seq), "inconsistent order$")
    assert_restore_fails(tampered(blob, swapped), "inconsistent order$")


def test_snapshot_bytes_must_be_canonical(base: tuple[bytes, str]) -> None:
    """Equal states have equal snapshot bytes, so a restorable snapshot re-snapshots to itself."""
    blob, state_hash = base
    assert Engine.from_snapshot(blob).snapshot() == blob

    def status_0x100(s: codec.Snapshot) -> None:
        s.instruments[0].status = 0x100  # was read as a u8: open

    def padding(first: int, second: int) -> Callable[[codec.Snapshot], None]:
        def change(s: codec.Snapshot) -> None:
            s.order(1).padding = bytes([first, second])
        return change

    def balances_unordered(s: codec.Snapshot) -> None:
        s.account(ACCOUNT_EXTERNAL).balances.reverse()

    def assets_unordered(s: codec.Snapshot) -> None:
        assert s.ledger is not None
        s.ledger.assets.reverse()

    assert_restore_fails(tampered(blob, status_0x100), "invalid trading status")
    for change in (padding(7, 7), padding(0, 1), padding(1, 0)):
        assert_restore_fails(tampered(blob, change), "non-zero padding")
    assert_restore_fails(tampered(blob, balances_unordered), "bad balance")
    assert_restore_fails(tampered(blob, assets_unordered), "unordered asset")


def test_snapshot_lists_must_be_in_canonical_order() -> None:
    """Instruments, fee rates, price levels and deposit refs out of order describe the same state
    with other bytes: refused, so one state has exactly one snapshot."""
    twin = FundsTwin(
        add_asset(BTC, 8), add_asset(USD, 2),
        funds_instrument(SYM, BTC, USD, base_per_lot=BPL, quote_per_tick_lot=QPTL, max_price=10_000,
                         max_qty=1_000, band_bps=1_000),
        funds_instrument(SYM + 1, BTC, USD, base_per_lot=BPL, quote_per_tick_lot=QPTL, max_price=10_000,
                         max_qty=1_000, band_bps=1_000),
        set_fees(SYM, -2, 5), set_fees(SYM, -1, 4, tier=1),
        create_account(A), deposit(A, USD, 10**9, "a"), deposit(A, BTC, 10**9, "b"),
        new(1, A, BUY, 100, 1), new(2, A, BUY, 99, 1), new(3, A, SELL, 120, 1), new(4, A, SELL, 121, 1),
    )
    blob = twin.eng.snapshot()
    assert Engine.from_snapshot(blob).snapshot() == blob

    def instruments(s: codec.Snapshot) -> None:
        s.instruments.reverse()
        s.books.reverse()

    def fees(s: codec.Snapshot) -> None:
        s.fees.reverse()

    def bids(s: codec.Snapshot) -> None:
        s.books[0].bids.reverse()

    def asks(s: codec.Snapshot) -> None:
        s.books[0].asks.reverse()

    def refs(s: codec.Snapshot) -> None:
        assert s.ledger is not None
        s.ledger.deposit_refs.reverse()

    assert_restore_fails(tampered(blob, instruments), "unordered symbol")
    assert_restore_fails(tampered(blob, fees), "invalid fee rates")
    assert_restore_fails(tampered(blob, bids), "unordered price level")
    assert_restore_fails(tampered(blob, asks), "unordered price level")
    assert_restore_fails(tampered(blob, refs), "unordered deposit ref")


# ------------------------------------------------------------------ 8. asset ids cost nothing

def heap_in_use() -> int | None:
    """Bytes malloc has handed out (glibc mallinfo2), or None where that is not available."""
    try:
        libc = ctypes.CDLL(None)
        mallinfo2 = libc.mallinfo2
    except (OSError, AttributeError):
        return None

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
            "keepcost")]

    mallinfo2.restype = MallInfo2
    info = mallinfo2()
    return int(info.uordblks + info.hblkhd)


def test_a_high_asset_id_costs_per_asset_not_per_id() -> None:
    n = 20_000
    eng = Engine(funds=True)
    run(eng, add_asset(1), *[create_account(16 + i) for i in range(n)], deposit(16, 1, 5, "x"))
    size, balances = len(eng.snapshot()), eng.balances()
    heap = heap_in_use()
    assert kinds(run(eng, add_asset(4095)))[-1] == ("APPLIED", "NONE")
    grown = heap_in_use()
    assert len(eng.snapshot()) == size + 8  # one (asset id, decimals) entry, no balances
    assert eng.balances() == balances
    assert eng.assets() == {1: 8, 4095: 8}
    assert eng.balance(16 + n - 1, 4095) == (0, 0) and eng.balance(16, 4094) == (0, 0)
    run(eng, deposit(16 + n - 1, 4095, 3, "y"))
    assert len(eng.snapshot()) == size + 8 + 2 * 20 + 16  # two balance entries and a deposit ref
    assert eng.balances() == {**balances, (16 + n - 1, 4095): (3, 0), (ACCOUNT_EXTERNAL, 4095): (-3, 0)}
    assert restored_hash(eng.snapshot()) == eng.state_hash()
    if heap is not None and grown is not None:
        # One new balance slot per account (16 bytes, plus the vector's regrowth), not 4095 of them.
        assert grown - heap < 256 * (n + 3), f"ADD_ASSET 4095 took {grown - heap} bytes of heap"


# ------------------------------------------------------------------ inspection order

def test_balances_and_accounts_come_out_in_id_order() -> None:
    twin = FundsTwin(add_asset(3), add_asset(1), add_asset(2), create_account(300), create_account(20),
                     create_account(17), create_account(16),
                     *[deposit(acct, asset, 10 * acct + asset, f"{acct}-{asset}")
                       for acct in (300, 20, 17) for asset in (3, 1, 2)],
                     withdraw_hold(20, 2, 1, 50), withdraw_hold(300, 1, 1, 7))
    for eng in (twin.eng, Engine.from_snapshot(twin.eng.snapshot())):
        assert list(eng.balances()) == sorted(eng.balances())
        assert list(eng.accounts()) == [1, 2, 3, 16, 17, 20, 300]
        assert list(eng.assets()) == [1, 2, 3]
        assert list(eng.withdrawals()) == [7, 50]
    twin.check()
