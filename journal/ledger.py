"""Ledger checks and account statements over funds-mode event batches (numpy EVENT_DTYPE).

check_ledger() verifies the five ledger invariants of core_cython/README.md ("Funds mode") from an
engine's final state and its whole event history; statement() lists one account's postings. Both
stream: they read the batches one at a time and keep only per-account balances and per-asset totals,
so a journal's history need not fit in memory. `venue ledger check` and the tests share them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import numpy as np

from core_cython.records import AccountType, EventType, PostingKind, Side

MAX_REPORTED = 20  # violations listed per invariant; the rest are counted
CHUNK_EVENTS = 65_536  # small batches are joined up to this size: numpy work per call has a fixed cost


class FundsState(Protocol):
    """What check_ledger reads of an engine in funds mode (core_cython.engine.Engine, the reference)."""

    @property
    def last_event_seq(self) -> int: ...

    def balances(self) -> Mapping[tuple[int, int], tuple[int, int]]: ...

    def accounts(self) -> Mapping[int, Mapping[str, Any]]: ...

    def withdrawals(self) -> Mapping[int, tuple[int, int, int]]: ...

    def open_orders(self) -> Iterable[Mapping[str, Any]]: ...

    def instrument(self, symbol: int) -> Mapping[str, Any]: ...


class _Problems:
    """Violations by invariant, at most MAX_REPORTED listed for each."""

    def __init__(self) -> None:
        self.listed: list[str] = []
        self.counts: dict[str, int] = defaultdict(int)

    def add(self, invariant: str, message: str) -> None:
        self.counts[invariant] += 1
        if self.counts[invariant] <= MAX_REPORTED:
            self.listed.append(f"{invariant}: {message}")

    def result(self) -> list[str]:
        more = [f"{inv}: ... and {n - MAX_REPORTED} more"
                for inv, n in self.counts.items() if n > MAX_REPORTED]
        return self.listed + more


class _History:
    """What the event history says, accumulated batch by batch."""

    def __init__(self, account_types: Mapping[int, int], problems: _Problems) -> None:
        self.types = account_types
        self.problems = problems
        self.next_seq = 1
        self.balances: dict[tuple[int, int], list[int]] = {}  # replayed from zero: [available, held]
        self.flows: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])  # asset -> deposits,
        # withdrawals, adjustments
        self.open_cause = np.zeros(0, dtype=_POSTING_FIELDS)  # postings of a cause that may go on

    def feed(self, events: np.ndarray) -> None:
        if len(events) == 0:
            return
        self._check_seqs(events["seq"])
        postings = events[events["type"] == EventType.POSTING]
        if len(postings) == 0:
            return
        rows = np.empty(len(postings), dtype=_POSTING_FIELDS)
        for name in _POSTING_FIELDS.names or ():
            rows[name] = postings[name]
        accounts, index = np.unique(rows["account"], return_inverse=True)
        types = np.array([self.types.get(a, 0) for a in accounts.tolist()], dtype=np.int64)[index]
        self._check_signs(rows, types)
        self._replay(rows)
        self._add_flows(rows, types)
        # invariant 1 per cause; the last cause of the batch may have postings in the next batch
        rows = np.concatenate([self.open_cause, rows])
        last = rows["maker_order"] == rows["maker_order"][-1]
        self._check_causes(rows[~last])
        self.open_cause = rows[last]

    def finish(self) -> None:
        self._check_causes(self.open_cause)
        self.open_cause = self.open_cause[:0]

    def _check_seqs(self, seqs: np.ndarray) -> None:
        expected = np.arange(self.next_seq, self.next_seq + len(seqs), dtype=np.uint64)
        if not np.array_equal(seqs, expected):
            at = int(np.flatnonzero(seqs != expected)[0])
            self.problems.add("history", f"event seq {int(seqs[at])} where {int(expected[at])} was expected "
                                         "(the history must be complete, from seq 1)")
        self.next_seq = int(seqs[-1]) + 1

    def _check_signs(self, rows: np.ndarray, types: np.ndarray) -> None:
        """Invariant 2 after every posting: customer and fee balances never negative; system
        accounts only use available."""
        for row in rows[types == 0]:
            self.problems.add("2 (balances)", f"posting seq {row['seq']} names unknown account "
                                              f"{row['account']}")
        owned = (types == AccountType.CUSTOMER) | (types == AccountType.FEE)
        negative = owned & ((rows["leaves"] < 0) | (rows["filled"] < 0))
        for row in rows[negative]:
            self.problems.add("2 (balances)",
                              f"posting seq {row['seq']} leaves account {row['account']} asset "
                              f"{row['symbol']} at available {row['leaves']}, held {row['filled']}")
        system_held = (types == AccountType.SYSTEM) & ((rows["qty"] != 0) | (rows["filled"] != 0))
        for row in rows[system_held]:
            self.problems.add("2 (balances)",
                              f"posting seq {row['seq']} moves held of system account {row['account']}")

    def _replay(self, rows: np.ndarray) -> None:
        """Invariant 5 along the way: each posting's after-fields = the balance replayed from zero.

        Postings are grouped by (account, asset) (a stable sort keeps their order) and each group's
        running balance is a cumulative sum. int64 sums may wrap in between, but the differences
        taken are exact modulo 2^64 and the balances themselves fit in int64.
        """
        order = np.lexsort((rows["symbol"], rows["account"]))
        r = rows[order]
        accts, assets = r["account"], r["symbol"]
        new_group = np.r_[True, (accts[1:] != accts[:-1]) | (assets[1:] != assets[:-1])]
        starts = np.flatnonzero(new_group)
        ends = np.r_[starts[1:], len(r)]
        group = np.cumsum(new_group) - 1
        keys = list(zip(accts[starts].tolist(), assets[starts].tolist(), strict=True))
        for col, (delta_field, after_field) in enumerate((("price", "leaves"), ("qty", "filled"))):
            delta = r[delta_field]
            with np.errstate(over="ignore"):
                total = np.cumsum(delta)
                opening = np.array([self.balances.get(k, (0, 0))[col] for k in keys], dtype=np.int64)
                running = total + (opening - (total[starts] - delta[starts]))[group]
            wrong = np.flatnonzero(running != r[after_field])
            for i in wrong:
                self.problems.add(
                    "5 (replay)", f"posting seq {r['seq'][i]}: account {accts[i]} asset {assets[i]} "
                    f"{('available', 'held')[col]} is {r[after_field][i]}, replay gives {running[i]}")
            for k, end in zip(keys, ends.tolist(), strict=True):
                self.balances.setdefault(k, [0, 0])[col] = int(running[end - 1])

    def _add_flows(self, rows: np.ndarray, types: np.ndarray) -> None:
        """Deposits, withdrawals and adjustments per asset, from the customer and fee side."""
        kind, owned = rows["reason"], types != AccountType.SYSTEM
        flows = (  # (selected postings, their amount column, sign)
            (owned & (kind == PostingKind.DEPOSIT), "price", 1),
            (owned & (kind == PostingKind.WITHDRAWAL), "qty", -1),  # the held amount leaves
            (owned & (kind == PostingKind.ADJUSTMENT), "price", 1),
        )
        for col, (sel, field, sign) in enumerate(flows):
            picked = rows[sel]
            for asset in np.unique(picked["symbol"]).tolist():
                amounts = picked[field][picked["symbol"] == asset].astype(object)
                self.flows[asset][col] += sign * int(amounts.sum())

    def _check_causes(self, rows: np.ndarray) -> None:
        """Invariant 1: the postings caused by one event sum to zero in each asset."""
        if len(rows) == 0:
            return
        order = np.lexsort((rows["symbol"], rows["maker_order"]))
        r = rows[order]
        cause, asset = r["maker_order"], r["symbol"]
        starts = np.flatnonzero(np.r_[True, (cause[1:] != cause[:-1]) | (asset[1:] != asset[:-1])])
        with np.errstate(over="ignore"):
            sums = np.add.reduceat(r["price"] + r["qty"], starts)
        for i in np.flatnonzero(sums != 0):
            s = starts[i]
            self.problems.add("1 (postings balance)",
                              f"the postings caused by event {cause[s]} sum to {sums[i]} in asset {asset[s]}")


_POSTING_FIELDS = np.dtype([("seq", "<u8"), ("account", "<u8"), ("symbol", "<u4"), ("reason", "u1"),
                            ("price", "<i8"), ("qty", "<i8"), ("leaves", "<i8"), ("filled", "<i8"),
                            ("order_id", "<u8"), ("maker_order", "<u8")])


def check_ledger(engine: FundsState, event_batches: Iterable[np.ndarray]) -> list[str]:
    """The violations of the README's five ledger invariants (empty: the ledger is sound).

    engine: the final state (balances, accounts, pending withdrawals, open orders, instruments);
    event_batches: its whole event history from seq 1, in order, in batches of any size.
    """
    problems = _Problems()
    accounts = engine.accounts()
    types = {int(a): int(info["type"]) for a, info in accounts.items()}
    history = _History(types, problems)
    for events in _chunks(event_batches):
        history.feed(events)
    history.finish()
    if history.next_seq - 1 != engine.last_event_seq:
        problems.add("history", f"the events end at seq {history.next_seq - 1}, "
                                f"the engine is at {engine.last_event_seq}")

    balances = {(int(a), int(s)): (int(av), int(h)) for (a, s), (av, h) in engine.balances().items()}
    _check_final_signs(balances, types, problems)
    _check_holds(engine, balances, problems)
    _check_supply(history, balances, types, problems)
    replayed = {k: (v[0], v[1]) for k, v in history.balances.items() if v[0] or v[1]}
    for key in sorted(set(replayed) | set(balances)):
        if replayed.get(key, (0, 0)) != balances.get(key, (0, 0)):
            problems.add("5 (replay)", f"account {key[0]} asset {key[1]}: the engine has (available, held) "
                                       f"{balances.get(key, (0, 0))}, replaying the postings gives "
                                       f"{replayed.get(key, (0, 0))}")
    return problems.result()


def _chunks(event_batches: Iterable[np.ndarray]) -> Iterable[np.ndarray]:
    """The same events in batches of at least CHUNK_EVENTS (but the last)."""
    pending: list[np.ndarray] = []
    size = 0
    for events in event_batches:
        pending.append(events)
        size += len(events)
        if size >= CHUNK_EVENTS:
            yield pending[0] if len(pending) == 1 else np.concatenate(pending)
            pending, size = [], 0
    if pending:
        yield np.concatenate(pending)


def _check_final_signs(balances: Mapping[tuple[int, int], tuple[int, int]], types: Mapping[int, int],
                       problems: _Problems) -> None:
    for (acct, asset), (avail, held) in sorted(balances.items()):
        kind = types.get(acct)
        if kind is None:
            problems.add("2 (balances)", f"balance of unknown account {acct} asset {asset}")
        elif kind == AccountType.SYSTEM and held != 0:
            problems.add("2 (balances)", f"system account {acct} asset {asset} holds {held}")
        elif kind != AccountType.SYSTEM and (avail < 0 or held < 0):
            problems.add("2 (balances)",
                         f"account {acct} asset {asset}: available {avail}, held {held}")


def _check_holds(engine: FundsState, balances: Mapping[tuple[int, int], tuple[int, int]],
                 problems: _Problems) -> None:
    """Invariant 3: held = holds of live orders (hold_per_lot x leaves) + pending withdrawals."""
    expected: dict[tuple[int, int], int] = defaultdict(int)
    assets: dict[int, tuple[int, int]] = {}  # symbol -> (base, quote)
    for order in engine.open_orders():
        symbol = int(order["symbol"])
        if symbol not in assets:
            inst = engine.instrument(symbol)
            assets[symbol] = (int(inst["base_asset"]), int(inst["quote_asset"]))
        hold = int(order["hold_per_lot"]) * int(order["leaves"])
        if int(order["held"]) != hold:
            problems.add("3 (holds)", f"order {order['id']} holds {order['held']}, "
                                      f"not hold_per_lot x leaves = {hold}")
        asset = assets[symbol][1] if order["side"] == Side.BUY else assets[symbol][0]
        expected[(int(order["account"]), asset)] += hold
    for acct, asset, amount in engine.withdrawals().values():
        expected[(int(acct), int(asset))] += int(amount)
    for key in sorted(set(expected) | {k for k, (_, held) in balances.items() if held}):
        held = balances.get(key, (0, 0))[1]
        if held != expected.get(key, 0):
            problems.add("3 (holds)", f"account {key[0]} asset {key[1]} holds {held}, its live orders and "
                                      f"pending withdrawals {expected.get(key, 0)}")


def _check_supply(history: _History, balances: Mapping[tuple[int, int], tuple[int, int]],
                  types: Mapping[int, int], problems: _Problems) -> None:
    """Invariant 4: per asset, customers + fees = deposits - withdrawals + adjustments = -(contras)."""
    owned: dict[int, int] = defaultdict(int)
    contra: dict[int, int] = defaultdict(int)
    for (acct, asset), (avail, held) in balances.items():
        if types.get(acct) == AccountType.SYSTEM:
            contra[asset] += avail + held
        else:
            owned[asset] += avail + held
    for asset in sorted(set(owned) | set(contra) | set(history.flows)):
        deposits, withdrawals, adjustments = history.flows.get(asset, (0, 0, 0))
        net = deposits - withdrawals + adjustments
        if not owned[asset] == net == -contra[asset]:
            problems.add("4 (supply)", f"asset {asset}: customers and fees hold {owned[asset]}, deposits - "
                                       f"withdrawals + adjustments = {net}, system accounts {contra[asset]}")


def statement(event_batches: Iterable[np.ndarray], account: int,
              asset: int | None = None) -> list[dict[str, Any]]:
    """An account's postings in order (optionally of one asset), with the balance after each.

    Each row: seq, cmd_seq, ts, cause (seq of the event that caused it), kind (PostingKind name), asset,
    order_id (order, withdrawal id or adjustment ticket), counterparty, available_change, held_change,
    available and held (after the posting), fee (inside a trade's quote posting; negative: a rebate).
    """
    rows: list[dict[str, Any]] = []
    for events in event_batches:
        mask = (events["type"] == EventType.POSTING) & (events["account"] == account)
        if asset is not None:
            mask &= events["symbol"] == asset
        picked = events[mask]
        columns = [picked[name].tolist() for name in _STATEMENT_COLUMNS.values()]
        for values in zip(*columns, strict=True):
            row = dict(zip(_STATEMENT_COLUMNS, values, strict=True))
            row["kind"] = _kind_name(row["kind"])
            rows.append(row)
    return rows


_STATEMENT_COLUMNS = {  # statement row key -> EVENT_DTYPE field
    "seq": "seq", "cmd_seq": "cmd_seq", "ts": "ts", "cause": "maker_order", "kind": "reason",
    "asset": "symbol", "order_id": "order_id", "counterparty": "maker_account", "available_change": "price",
    "held_change": "qty", "available": "leaves", "held": "filled", "fee": "maker_leaves",
}


def _kind_name(value: int) -> str:
    try:
        return PostingKind(value).name
    except ValueError:
        return str(value)
