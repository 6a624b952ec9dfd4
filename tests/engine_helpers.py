"""Readable builders for command batches, and runners for the engine and the reference model.

A command is a plain dict of COMMAND_DTYPE fields (missing fields are 0) so tests read like the
spec: ``run(eng, new(1, acct=7, side=BUY, price=100, qty=5))``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from core_cython.records import (
    COMMAND_DTYPE,
    EventType,
    Flag,
    Op,
    OrdType,
    Reason,
    Side,
    Stp,
    Tif,
)
from tests.reference_model import Event, ReferenceEngine, describe, events_from_array

Command = dict[str, int]

BUY, SELL = int(Side.BUY), int(Side.SELL)
LIMIT, MARKET = int(OrdType.LIMIT), int(OrdType.MARKET)
GTC, IOC, FOK = int(Tif.GTC), int(Tif.IOC), int(Tif.FOK)

# The instrument most tests use (the defaults of instrument()): prices 1..10_000 ticks,
# 1..1_000 lots, no min notional, market band 10% (1000 bps).
SYM = 1


def instrument(symbol: int = SYM, *, max_price: int = 10_000, min_qty: int = 1, max_qty: int = 1_000,
               min_notional: int = 0, band_bps: int = 1_000) -> Command:
    """ADD_INSTRUMENT, with the same field reuse as records.set_instrument."""
    return dict(op=Op.ADD_INSTRUMENT, symbol=symbol, price=max_price, qty=min_qty, display_qty=max_qty,
                stop_price=min_notional, order_id=band_bps)


def new(order_id: int, acct: int, side: int, price: int, qty: int, *, symbol: int = SYM,
        ord_type: int = LIMIT, tif: int = GTC, stp: int = Stp.NONE, post_only: bool = False,
        stop: int = 0, display: int = 0, flags: int | None = None, reject: int = 0, ts: int = 0,
        session: int = 0) -> Command:
    """NEW; a limit GTC order unless told otherwise. session: the session tag (aux1)."""
    return dict(op=Op.NEW, order_id=order_id, account=acct, side=side, price=price, qty=qty, symbol=symbol,
                ord_type=ord_type, tif=tif, stp=stp, stop_price=stop, display_qty=display,
                flags=(Flag.POST_ONLY if post_only else 0) if flags is None else flags, reject=reject, ts=ts,
                aux1=session)


def market(order_id: int, acct: int, side: int, qty: int, *, price: int = 0, **kw: Any) -> Command:
    """NEW market order, IOC unless told otherwise (the engine ignores its price)."""
    kw.setdefault("tif", IOC)
    return new(order_id, acct, side, price, qty, ord_type=MARKET, **kw)


def cancel(order_id: int, acct: int, *, symbol: int = SYM, ts: int = 0) -> Command:
    return dict(op=Op.CANCEL, order_id=order_id, account=acct, symbol=symbol, ts=ts)


def replace(order_id: int, acct: int, price: int, qty: int, *, symbol: int = SYM, ts: int = 0) -> Command:
    """REPLACE: qty is the new total quantity (including filled); price 0 keeps the price."""
    return dict(op=Op.REPLACE, order_id=order_id, account=acct, price=price, qty=qty, symbol=symbol, ts=ts)


def mass_cancel(acct: int = 0, symbol: int = 0, *, ts: int = 0, session: int = 0) -> Command:
    return dict(op=Op.MASS_CANCEL, account=acct, symbol=symbol, ts=ts, aux1=session)


def batch(cmds: Iterable[Mapping[str, int]]) -> np.ndarray:
    """A fresh writable COMMAND_DTYPE array (the engine stamps seq into it)."""
    cmds = list(cmds)
    arr = np.zeros(len(cmds), dtype=COMMAND_DTYPE)
    for rec, cmd in zip(arr, cmds, strict=True):
        for name, value in cmd.items():
            rec[name] = value
    return arr


def run(engine: Any, *cmds: Mapping[str, int]) -> list[Event]:
    """Process cmds as one batch through a real Engine; events as dicts."""
    engine.process(batch(cmds))
    return events_from_array(engine.events())


def run_ref(ref: ReferenceEngine, *cmds: Mapping[str, int]) -> list[Event]:
    return ref.process(batch(cmds))


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


class Twin:
    """The Cython engine and the reference model fed the same commands.

    Every run() checks that both produced the same events, so each hand-written expectation in
    the rule tests checks the engine and the reference at once.
    """

    def __init__(self, *setup: Mapping[str, int]) -> None:
        from core_cython.engine import Engine

        self.eng = Engine()
        self.ref = ReferenceEngine()
        if setup:
            self.run(*setup)

    def run(self, *cmds: Mapping[str, int]) -> list[Event]:
        want = run_ref(self.ref, *cmds)
        got = run(self.eng, *cmds)
        assert_same_events(got, want)
        return got

    def book(self, symbol: int = SYM) -> dict[str, Any]:
        book = self.eng.book(symbol)
        assert book == self.ref.book(symbol), "engine and reference books differ"
        return book

    def stops(self, symbol: int = SYM) -> list[int]:
        stops = self.eng.stop_orders(symbol)
        assert stops == self.ref.stop_orders(symbol)
        return list(stops)

    def state_hash(self) -> str:
        return str(self.eng.state_hash())


def venue(*cmds: Mapping[str, int]) -> Twin:
    """Engine + reference with the default instrument (symbol 1) and cmds applied."""
    return Twin(instrument(), *cmds)


def kinds(events: Iterable[Event]) -> list[tuple[str, str]]:
    """(event type, reason) names: the shape of an event stream at a glance."""
    return [(EventType(e["type"]).name, Reason(e["reason"]).name) for e in events]


def trades(events: Iterable[Event]) -> list[tuple[int, int, int, int]]:
    """(taker, maker, price, qty) of each TRADE."""
    return [(e["order_id"], e["maker_order"], e["price"], e["qty"]) for e in events
            if e["type"] == EventType.TRADE]


def only(events: list[Event], type_: int) -> Event:
    """The single event of that type (fails loudly if there are zero or several)."""
    found = [e for e in events if e["type"] == type_]
    assert len(found) == 1, f"expected one {EventType(type_).name}, got {kinds(events)}"
    return found[0]


def strip(event: Event, *names: str) -> dict[str, int]:
    """An event without bookkeeping fields, for comparing runs that differ only in numbering."""
    return {k: v for k, v in event.items() if k not in names}

