"""journal/ledger.py: check_ledger() finds each kind of violation in doctored inputs (so a clean
result means something), and statement() lists an account's postings with running balances."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from core_cython.records import ACCOUNT_EXTERNAL, ACCOUNT_FEES, EventType, PostingKind
from journal import ledger
from journal.ledger import MAX_REPORTED, check_ledger, statement
from tests.engine_helpers import BUY, SELL, batch, new
from tests.reference_funds import (
    ReferenceFundsEngine,
    add_asset,
    adjust,
    create_account,
    deposit,
    events_to_array,
    funds_instrument,
    set_fees,
    transfer,
    withdraw_hold,
    withdraw_settle,
)

engine_mod = pytest.importorskip("core_cython.engine")

BTC, USD = 1, 2
A, B = 16, 17

SCENARIO = [
    add_asset(BTC), add_asset(USD), funds_instrument(1, BTC, USD, base_per_lot=10, quote_per_tick_lot=3),
    create_account(A), create_account(B), set_fees(1, -5, 20),
    deposit(A, USD, 100_000, "a-usd"), deposit(B, BTC, 1_000, "b-btc"),
    new(1, B, SELL, 100, 5), new(2, A, BUY, 101, 7),  # trades 5 at 100, rests 2
    new(3, B, SELL, 99, 4),  # trades 2 at 101 (A's rest), rests 2
    withdraw_hold(A, BTC, 30, 1), withdraw_hold(A, USD, 500, 2), withdraw_settle(2),
    transfer(A, B, USD, 1_000), adjust(B, USD, -10, reason=2, ticket=9),
]


def run_scenario() -> tuple[Any, list[np.ndarray]]:
    """The engine after SCENARIO (one command per batch) and its event history."""
    eng = engine_mod.Engine(funds=True)
    history = []
    for cmd in SCENARIO:
        eng.process(batch([cmd]))
        history.append(eng.events().copy())
    return eng, history


def whole(history: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(history)


def rows(events: np.ndarray, kind: int | None = None, account: int | None = None) -> np.ndarray:
    """Indices of the postings (of a kind, of an account)."""
    mask = events["type"] == EventType.POSTING
    if kind is not None:
        mask &= events["reason"] == kind
    if account is not None:
        mask &= events["account"] == account
    return np.flatnonzero(mask)


class Doctored:
    """An engine's funds API with some answers replaced."""

    def __init__(self, eng: Any, **answers: Callable[[], Any]) -> None:
        self._eng = eng
        self._answers = answers

    def __getattr__(self, name: str) -> Any:
        if name in self._answers:
            return self._answers[name]
        return getattr(self._eng, name)


def invariants(problems: list[str]) -> set[str]:
    return {p.split(":")[0].split(" ")[0] for p in problems}


@pytest.mark.parametrize("chunk", [1, 2, 3, ledger.CHUNK_EVENTS])
def test_clean_history_in_any_batching(chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches may cut through the postings of one cause (small batches are checked as they come)."""
    monkeypatch.setattr(ledger, "CHUNK_EVENTS", chunk)
    eng, history = run_scenario()
    assert check_ledger(eng, history) == []
    events = whole(history)
    assert check_ledger(eng, [events]) == []
    assert check_ledger(eng, [events[i:i + 1] for i in range(len(events))]) == []
    assert check_ledger(eng, (events[i:i + 3] for i in range(0, len(events), 3))) == []
    if chunk == 1:  # a broken cause is still found when its postings straddle two batches
        i = rows(events, PostingKind.TRADE)[0]
        events["maker_order"][i] -= 1
        assert invariants(check_ledger(eng, [events[:i], events[i:]])) == {"1"}


def test_reference_passes_too() -> None:
    ref = ReferenceFundsEngine()
    events = ref.process(batch(SCENARIO))
    assert check_ledger(ref, [events_to_array(events)]) == []


def test_unbalanced_cause_is_invariant_1() -> None:
    """A posting credited to another cause: balances replay fine, but two causes no longer sum to 0."""
    eng, history = run_scenario()
    events = whole(history)
    fee = rows(events, PostingKind.FEE)[0]
    events["maker_order"][fee] -= 1
    problems = check_ledger(eng, [events])
    assert invariants(problems) == {"1"}
    assert len(problems) == 2 and f"event {events['maker_order'][fee] + 1}" in problems[0] + problems[1]


def test_unbalanced_cause_at_a_batch_end_is_found() -> None:
    eng, history = run_scenario()
    events = whole(history)
    last = rows(events)[-1]
    events["price"][last] += 1  # the last posting of the history: its cause is checked at the end
    events["leaves"][last] += 1
    assert "1" in invariants(check_ledger(eng, [events]))


def test_negative_customer_balance_is_invariant_2() -> None:
    eng, history = run_scenario()
    events = whole(history)
    i = rows(events, account=A)[-1]
    events["leaves"][i] = -1
    balances = {**eng.balances(), (A, int(events["symbol"][i])): (-1, 0)}
    problems = check_ledger(Doctored(eng, balances=lambda: balances), [events])
    assert "2" in invariants(problems)
    assert any("available -1" in p for p in problems if p.startswith("2"))


def test_system_account_with_held_is_invariant_2() -> None:
    eng, history = run_scenario()
    events = whole(history)
    i = rows(events, account=ACCOUNT_EXTERNAL)[0]
    events["qty"][i] += 5
    events["filled"][i] += 5
    events["price"][i] -= 5
    events["leaves"][i] -= 5
    assert "2" in invariants(check_ledger(eng, [events]))


def test_posting_for_unknown_account() -> None:
    eng, history = run_scenario()
    events = whole(history)
    events["account"][rows(events, PostingKind.FEE)[0]] = 99
    assert any("unknown account 99" in p for p in check_ledger(eng, [events]))


def test_held_without_an_order_is_invariant_3() -> None:
    eng, history = run_scenario()
    assert eng.withdrawals() == {1: (A, BTC, 30)}
    problems = check_ledger(Doctored(eng, withdrawals=lambda: {}), history)
    assert invariants(problems) == {"3"}
    assert problems == [f"3 (holds): account {A} asset {BTC} holds 30, its live orders and pending "
                        "withdrawals 0"]


def test_order_hold_mismatch_is_invariant_3() -> None:
    eng, history = run_scenario()
    (live,) = eng.open_orders()  # B's resting sell: 2 lots x 10 base units
    assert (live["id"], live["held"]) == (3, 20)
    doctored = [{**live, "leaves": 3}]
    problems = check_ledger(Doctored(eng, open_orders=lambda: doctored), history)
    assert invariants(problems) == {"3"}
    assert any("order 3 holds 20, not hold_per_lot x leaves = 30" in p for p in problems)


def test_deposit_without_its_kind_is_invariant_4() -> None:
    """A customer's deposit posting relabelled: balances replay, but the deposits no longer add up."""
    eng, history = run_scenario()
    events = whole(history)
    events["reason"][rows(events, PostingKind.DEPOSIT, account=A)[0]] = PostingKind.TRANSFER
    problems = check_ledger(eng, [events])
    assert invariants(problems) == {"4"}
    assert problems[0].startswith(f"4 (supply): asset {USD}: customers and fees hold 99490, deposits")


def test_contra_balance_off_is_invariant_4_and_5() -> None:
    eng, history = run_scenario()
    balances = dict(eng.balances())
    avail, held = balances[(ACCOUNT_EXTERNAL, USD)]
    balances[(ACCOUNT_EXTERNAL, USD)] = (avail - 1, held)
    problems = check_ledger(Doctored(eng, balances=lambda: balances), history)
    assert invariants(problems) == {"4", "5"}


def test_after_field_off_is_invariant_5() -> None:
    eng, history = run_scenario()
    events = whole(history)
    i = rows(events, account=B)[2]
    events["filled"][i] += 1
    problems = check_ledger(eng, [events])
    assert invariants(problems) == {"5"}
    assert problems[0].startswith(f"5 (replay): posting seq {events['seq'][i]}: account {B}")


def test_missing_events_are_reported() -> None:
    eng, history = run_scenario()
    assert "history" in invariants(check_ledger(eng, history[:-1]))  # ends early
    assert "history" in invariants(check_ledger(eng, history[1:]))  # does not start at seq 1
    gap = check_ledger(eng, history[:6] + history[7:])  # without A's deposit
    assert "history" in invariants(gap) and "5" in invariants(gap)


def test_many_violations_are_counted_not_listed() -> None:
    eng, history = run_scenario()
    events = whole(history)
    postings = rows(events)
    events["leaves"][postings] += 1  # every posting's available is off by one
    problems = [p for p in check_ledger(eng, [events]) if p.startswith("5")]
    assert len(problems) == MAX_REPORTED + 1
    assert problems[-1] == f"5 (replay): ... and {len(postings) - MAX_REPORTED} more"


def test_statement_running_balances() -> None:
    eng, history = run_scenario()
    rows_ = statement(history, A, USD)
    assert [r["kind"] for r in rows_] == ["DEPOSIT", "HOLD", "TRADE", "TRADE", "WITHDRAWAL_HOLD",
                                          "WITHDRAWAL", "TRANSFER"]
    hpl = 303 + 1  # N(101, 1) = 303, + ceil(303 x 20 bps)
    deposit_row, hold, fill_1, fill_2 = rows_[:4]
    assert (deposit_row["available"], deposit_row["held"], deposit_row["counterparty"]) == (
        100_000, 0, ACCOUNT_EXTERNAL)
    assert (hold["available_change"], hold["held_change"], hold["order_id"]) == (-7 * hpl, 7 * hpl, 2)
    # taker fill: 5 at 100 (N 1500, fee 3) releases the price improvement; maker fill: 2 at 101
    # (N 606, rebate ceil(-0.303) = 0)
    assert (fill_1["available_change"], fill_1["held_change"], fill_1["fee"], fill_1["counterparty"]) == (
        5 * hpl - 1500 - 3, -5 * hpl, 3, B)
    assert (fill_2["available_change"], fill_2["held_change"], fill_2["fee"]) == (2 * hpl - 606, -2 * hpl, 0)
    assert fill_2["available"] == 100_000 - 1503 - 606 and fill_2["held"] == 0
    for before, after in zip(rows_, rows_[1:], strict=False):  # running balances chain
        assert after["available"] == before["available"] + after["available_change"]
        assert after["held"] == before["held"] + after["held_change"]
        assert after["seq"] > before["seq"] and after["cause"] < after["seq"]
    assert (rows_[-1]["available"], rows_[-1]["held"]) == eng.balance(A, USD)
    assert rows_[-1]["counterparty"] == B


def test_statement_all_assets_and_fee_account() -> None:
    eng, history = run_scenario()
    all_rows = statement(history, A)
    assert {r["asset"] for r in all_rows} == {BTC, USD}
    assert [r["seq"] for r in all_rows] == sorted(r["seq"] for r in all_rows)
    last = {r["asset"]: (r["available"], r["held"]) for r in all_rows}
    assert last == {BTC: eng.balance(A, BTC), USD: eng.balance(A, USD)}
    fees = statement(history, ACCOUNT_FEES)
    assert [(r["kind"], r["available_change"], r["available"]) for r in fees] == [
        ("FEE", 3, 3), ("FEE", 2, 5)]
    assert statement(history, 99) == []
