"""A pure-Python reference matching engine: the executable form of core_cython/README.md.

It is deliberately naive so that each rule can be checked against the spec by reading it: books are
recomputed by sorting the live orders on every access, FOK is decided by simulating the execution on
a deep copy of the whole engine (the spec's definition of "can fill"), stop rounds are literal loops.
Property tests feed it the same COMMAND_DTYPE records as the Cython engine and compare the events
(dicts with the EVENT_DTYPE fields) and the books field by field.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from core_cython.records import EVENT_DTYPE, EventType, Flag, Op, OrdType, PostingKind, Reason, Side, Stp, Tif

EVENT_FIELDS: tuple[str, ...] = tuple(EVENT_DTYPE.names or ())
Event = dict[str, int]
Book = dict[str, list[tuple[int, list[tuple[int, int, int]]]]]

# ops whose `asset` field names the asset: their APPLIED and REJECTED events echo it in `symbol`
MONEY_OPS = frozenset({Op.ADD_ASSET, Op.DEPOSIT, Op.WITHDRAW_HOLD, Op.WITHDRAW_SETTLE, Op.WITHDRAW_RELEASE,
                       Op.TRANSFER, Op.ADJUST})

OVERFLOW_LIMIT = 1 << 62  # max_price x max_qty must stay below this (notional fits an int64)
MAX_SYMBOL = 65535


@dataclass(frozen=True)
class Cmd:
    """One command record as plain ints (a row of COMMAND_DTYPE without the padding)."""

    seq: int
    ts: int
    order_id: int
    account: int
    price: int
    qty: int
    stop_price: int
    display_qty: int
    aux1: int
    aux2: int
    symbol: int
    asset: int
    op: int
    side: int
    ord_type: int
    tif: int
    stp: int
    flags: int
    reject: int

    @classmethod
    def from_record(cls, rec: Any) -> Cmd:
        return cls(**{name: int(rec[name]) for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Instrument:
    symbol: int
    max_price: int
    min_qty: int
    max_qty: int
    min_notional: int
    band_bps: int


@dataclass
class Order:
    order_id: int
    account: int
    symbol: int
    side: int
    ord_type: int
    tif: int
    stp: int
    post_only: bool
    price: int  # limit price; 0 for a market order
    qty: int  # total quantity, including what has filled
    stop_price: int  # 0 = not a stop order
    display: int  # iceberg display quantity; 0 = plain order
    accept_seq: int  # cmd_seq of its NEW: "order of acceptance"
    leaves: int
    session_tag: int = 0  # its NEW's aux1: the entering session, as a gateway names it
    filled: int = 0
    visible: int = 0  # matchable quantity while resting
    pending_stop: bool = False
    resting: bool = False
    prio: int = 0  # time priority inside a price level: smaller is earlier
    funds: Any = None  # funds mode (tests/reference_funds.py): the order's hold and fee rates


def _opposite(side: int) -> int:
    return Side.SELL if side == Side.BUY else Side.BUY


def _crosses(taker_side: int, maker_price: int, limit: int) -> bool:
    """Does a maker at maker_price cross a taker with this limit?"""
    return maker_price <= limit if taker_side == Side.BUY else maker_price >= limit


def _stop_satisfied(order: Order, hi: int, lo: int) -> bool:
    """Buy stops trigger on a trade price >= stop, sell stops on a trade price <= stop."""
    return hi >= order.stop_price if order.side == Side.BUY else lo <= order.stop_price


def _qty_reason(inst: Instrument, qty: int) -> int:
    if qty <= 0:
        return Reason.INVALID_QTY
    if qty < inst.min_qty:
        return Reason.QTY_BELOW_MIN
    if qty > inst.max_qty:
        return Reason.QTY_ABOVE_MAX
    return Reason.NONE


def _price_reason(inst: Instrument, price: int) -> int:
    if price <= 0:
        return Reason.INVALID_PRICE
    if price > inst.max_price:
        return Reason.PRICE_ABOVE_MAX
    return Reason.NONE


class ReferenceEngine:
    """Same observable behaviour as core_cython.engine.Engine, written for clarity, not speed."""

    def __init__(self) -> None:
        self.instruments: dict[int, Instrument] = {}
        self.orders: dict[int, Order] = {}  # live orders: resting or pending stop
        self.last_prices: dict[int, int] = {}
        self.last_cmd_seq = 0
        self.last_event_seq = 0
        self._clock = 0  # time-priority counter
        self._cmd: Cmd | None = None  # the command being processed (stamps its events)
        self._events: list[Event] = []

    # ----- public API (mirrors Engine) -------------------------------------------------------

    def process(self, cmds: np.ndarray | Iterable[Any]) -> list[Event]:
        """Apply the commands in order; returns their events. The input is not modified."""
        self._events = []
        for rec in cmds:
            cmd = Cmd.from_record(rec)
            self.last_cmd_seq += 1
            self._cmd = Cmd(**{**cmd.__dict__, "seq": self.last_cmd_seq})
            self._apply(self._cmd)
        self._cmd = None
        return self._events

    def book(self, symbol: int) -> Book:
        return {"bids": self._levels(symbol, Side.BUY), "asks": self._levels(symbol, Side.SELL)}

    def last_price(self, symbol: int) -> int:
        return self.last_prices.get(symbol, 0)

    def live_orders(self) -> int:
        return len(self.orders)

    def stop_orders(self, symbol: int) -> list[int]:
        """Pending stops of a symbol in acceptance order (the spec's trigger order)."""
        stops = [o for o in self.orders.values() if o.pending_stop and o.symbol == symbol]
        return [o.order_id for o in sorted(stops, key=lambda o: o.accept_seq)]

    # ----- dispatch --------------------------------------------------------------------------

    def _handlers(self) -> dict[int, Any]:
        return {
            Op.NEW: self._new,
            Op.CANCEL: self._cancel,
            Op.REPLACE: self._replace,
            Op.MASS_CANCEL: self._mass_cancel,
            Op.ADD_INSTRUMENT: self._add_instrument,
        }

    def _apply(self, cmd: Cmd) -> None:
        handler = self._handlers().get(cmd.op)
        if handler is None:
            self._reject(cmd, self._unhandled_reason(cmd))
        else:
            handler(cmd)

    def _unhandled_reason(self, cmd: Cmd) -> int:
        """Core mode has no funds: the funds ops (6..18) are FUNDS_OFF, other unknown ops UNKNOWN_OP."""
        return Reason.FUNDS_OFF if Op.ADD_ASSET <= cmd.op <= Op.SET_LIMITS else Reason.UNKNOWN_OP

    # ----- events ----------------------------------------------------------------------------

    def _emit(self, type_: int, reason: int = 0, **fields: int) -> None:
        assert self._cmd is not None
        self.last_event_seq += 1
        event = dict.fromkeys(EVENT_FIELDS, 0)
        event.update(seq=self.last_event_seq, cmd_seq=self._cmd.seq, ts=self._cmd.ts, op=self._cmd.op,
                     type=int(type_), reason=int(reason))
        event.update({k: int(v) for k, v in fields.items()})
        self._events.append(event)

    def _emit_order(self, type_: int, o: Order, reason: int = 0, *, price: int | None = None,
                    qty: int | None = None) -> None:
        """An event about one order: its identity and its leaves/filled after the event."""
        self._emit(type_, reason, order_id=o.order_id, account=o.account, symbol=o.symbol, side=o.side,
                   price=o.price if price is None else price, qty=o.qty if qty is None else qty,
                   leaves=o.leaves, filled=o.filled)

    def _reject(self, cmd: Cmd, reason: int) -> None:
        """REJECTED echoes the command's identity (a money op's asset as symbol); the reason says why."""
        self._emit(EventType.REJECTED, reason, order_id=cmd.order_id, account=cmd.account,
                   symbol=cmd.asset if cmd.op in MONEY_OPS else cmd.symbol, side=cmd.side, price=cmd.price,
                   qty=cmd.qty)

    # ----- books -----------------------------------------------------------------------------

    def _side(self, symbol: int, side: int) -> list[Order]:
        """Resting orders of one side, best price first, then time priority."""
        sign = -1 if side == Side.BUY else 1
        orders = [o for o in self.orders.values() if o.resting and o.symbol == symbol and o.side == side]
        return sorted(orders, key=lambda o: (sign * o.price, o.prio))

    def _levels(self, symbol: int, side: int) -> list[tuple[int, list[tuple[int, int, int]]]]:
        levels: list[tuple[int, list[tuple[int, int, int]]]] = []
        for o in self._side(symbol, side):
            if not levels or levels[-1][0] != o.price:
                levels.append((o.price, []))
            levels[-1][1].append((o.order_id, o.leaves, o.visible))
        return levels

    def _best(self, symbol: int, side: int) -> int | None:
        side_orders = self._side(symbol, side)
        return side_orders[0].price if side_orders else None

    def _would_cross(self, symbol: int, side: int, price: int) -> bool:
        """Would a limit at price on side take liquidity right now (the post-only test)?"""
        best = self._best(symbol, _opposite(side))
        return best is not None and _crosses(side, best, price)

    def _rest(self, o: Order) -> None:
        """Put o at the back of its price level; an iceberg shows at most its display quantity."""
        self._clock += 1
        o.resting, o.prio = True, self._clock
        o.visible = min(o.display, o.leaves) if o.display else o.leaves

    def _finish(self, o: Order, type_: int, reason: int) -> None:
        """CANCELLED/EXPIRED: qty is what was open; the order leaves the engine."""
        open_qty = o.leaves
        o.leaves = o.visible = 0
        o.resting = o.pending_stop = False
        del self.orders[o.order_id]
        self._emit_order(type_, o, reason, qty=open_qty)

    # ----- NEW -------------------------------------------------------------------------------

    def _validate_new(self, c: Cmd) -> int:
        """The spec's validation order; the first failing check wins."""
        if c.reject:
            return c.reject
        inst = self.instruments.get(c.symbol)
        if inst is None:
            return Reason.UNKNOWN_SYMBOL
        if c.side not in (Side.BUY, Side.SELL):
            return Reason.INVALID_SIDE
        if c.ord_type not in (OrdType.LIMIT, OrdType.MARKET):
            return Reason.INVALID_ORDER_TYPE
        if c.tif not in (Tif.GTC, Tif.IOC, Tif.FOK):
            return Reason.INVALID_TIF
        if c.stp not in tuple(Stp):
            return Reason.INVALID_STP
        if c.order_id in self.orders:
            return Reason.DUPLICATE_ORDER_ID
        if reason := _qty_reason(inst, c.qty):
            return reason
        is_limit = c.ord_type == OrdType.LIMIT
        if is_limit and (reason := _price_reason(inst, c.price)):
            return reason
        if c.stop_price < 0 or c.stop_price > inst.max_price:
            return Reason.INVALID_STOP_PRICE
        # market, IOC, FOK and stop orders never rest as submitted: no iceberg, no post-only
        never_rests = not is_limit or c.tif in (Tif.IOC, Tif.FOK) or c.stop_price > 0
        if c.display_qty < 0 or (c.display_qty > 0 and never_rests):
            return Reason.INVALID_DISPLAY_QTY
        post_only = bool(c.flags & Flag.POST_ONLY)
        if post_only and never_rests:
            return Reason.INVALID_FLAGS
        if c.flags & ~Flag.POST_ONLY:  # a flag bit this engine does not know
            return Reason.INVALID_FLAGS
        if is_limit and c.price * c.qty < inst.min_notional:
            return Reason.NOTIONAL_BELOW_MIN
        if c.stop_price == 0:
            if post_only and self._would_cross(c.symbol, c.side, c.price):
                return Reason.POST_ONLY_WOULD_TAKE
            if not is_limit and self._best(c.symbol, _opposite(c.side)) is None:
                return Reason.NO_LIQUIDITY
        return Reason.NONE

    def _new(self, c: Cmd) -> None:
        if reason := self._validate_new(c):
            self._reject(c, reason)
            return
        is_limit = c.ord_type == OrdType.LIMIT
        o = Order(order_id=c.order_id, account=c.account, symbol=c.symbol, side=c.side,
                  ord_type=c.ord_type, tif=c.tif, stp=c.stp, post_only=bool(c.flags & Flag.POST_ONLY),
                  price=c.price if is_limit else 0, qty=c.qty, stop_price=c.stop_price,
                  display=c.display_qty if c.display_qty < c.qty else 0,  # display >= qty: plain order
                  accept_seq=c.seq, leaves=c.qty, session_tag=c.aux1)
        self.orders[o.order_id] = o
        self._emit_order(EventType.ACCEPTED, o)
        self._on_accepted(o)
        if o.stop_price == 0:
            prices = self._take(o)
        else:
            o.pending_stop = True
            last = self.last_price(o.symbol)
            if not (last and _stop_satisfied(o, last, last)):
                return
            prices = self._trigger(o)  # the last trade already satisfies it: triggers at once
        self._stop_rounds(o.symbol, prices)

    def _on_accepted(self, o: Order) -> None:
        """Hook right after ACCEPTED (funds mode: the HOLD posting). Core mode: nothing."""

    def _on_replaced(self, o: Order) -> None:
        """Hook right after REPLACED (funds mode: the hold difference). Core mode: nothing."""

    # ----- execution -------------------------------------------------------------------------

    def _protection_price(self, t: Order) -> int:
        """A market order's limit: the reference price moved by the band, in the taker's favour."""
        inst = self.instruments[t.symbol]
        ref = self.last_price(t.symbol) or self._best(t.symbol, _opposite(t.side))
        assert ref is not None, "callers check for liquidity first"
        delta = ref * inst.band_bps // 10000
        return ref + delta if t.side == Side.BUY else max(1, ref - delta)

    def _take(self, t: Order) -> list[int]:
        """Execute live order t as a taker, then rest or expire what is left. Returns trade prices."""
        if t.ord_type == OrdType.MARKET:
            if self._best(t.symbol, _opposite(t.side)) is None:
                self._finish(t, EventType.EXPIRED, Reason.NO_LIQUIDITY)
                return []
            limit = self._protection_price(t)
        else:
            limit = t.price
        if t.tif == Tif.FOK and not self._fok_fillable(t, limit):
            self._finish(t, EventType.EXPIRED, Reason.FOK_UNFILLABLE)
            return []
        prices = self._match(t, limit)
        if t.order_id not in self.orders:  # cancelled by self-trade prevention
            return prices
        if t.leaves == 0:
            del self.orders[t.order_id]  # filled: no event besides the trades
        elif t.ord_type == OrdType.MARKET:
            self._finish(t, EventType.EXPIRED, Reason.MARKET_REMAINDER)
        elif t.tif == Tif.GTC:
            self._rest(t)
        else:
            self._finish(t, EventType.EXPIRED, Reason.IOC_REMAINDER)
        return prices

    def _fok_fillable(self, t: Order, limit: int) -> bool:
        """The definition of "can fill": run the execution on a copy and see if it filled it all."""
        sim = copy.deepcopy(self)
        sim_t = sim.orders[t.order_id]
        sim._match(sim_t, limit)
        return sim_t.filled == sim_t.qty

    def _match(self, t: Order, limit: int) -> list[int]:
        """Take crossing liquidity best price first, time priority inside a level."""
        prices: list[int] = []
        while t.leaves > 0:
            makers = self._side(t.symbol, _opposite(t.side))
            if not makers or not _crosses(t.side, makers[0].price, limit):
                break
            m = makers[0]
            if m.account == t.account and t.stp != Stp.NONE:
                if t.stp == Stp.CANCEL_MAKER:
                    self._finish(m, EventType.CANCELLED, Reason.SELF_TRADE)
                    continue
                if t.stp == Stp.CANCEL_BOTH:
                    self._finish(m, EventType.CANCELLED, Reason.SELF_TRADE)
                self._finish(t, EventType.CANCELLED, Reason.SELF_TRADE)
                break
            prices.append(self._fill(t, m))
        return prices

    def _fill(self, t: Order, m: Order) -> int:
        """One TRADE at the maker's price for what the maker shows; returns the price."""
        q = min(t.leaves, m.visible)
        t.leaves -= q
        t.filled += q
        m.leaves -= q
        m.filled += q
        m.visible -= q
        self.last_prices[t.symbol] = m.price
        self._emit(EventType.TRADE, order_id=t.order_id, account=t.account, symbol=t.symbol, side=t.side,
                   price=m.price, qty=q, leaves=t.leaves, filled=t.filled, maker_order=m.order_id,
                   maker_account=m.account, maker_leaves=m.leaves, maker_filled=m.filled)
        if m.leaves == 0:
            del self.orders[m.order_id]  # a filled maker leaves silently
        elif m.visible == 0:
            self._rest(m)  # iceberg refill: back of its level, loses priority
        return m.price

    # ----- stops -----------------------------------------------------------------------------

    def _trigger(self, o: Order) -> list[int]:
        """A pending stop becomes a taker (stop: market, stop-limit: limit at its price and tif)."""
        o.pending_stop = False
        self._emit_order(EventType.TRIGGERED, o, price=o.stop_price)
        return self._take(o)

    def _stop_rounds(self, symbol: int, prices: list[int]) -> None:
        """Trigger, round by round, the stops satisfied by the previous round's trade prices."""
        while prices:
            hi, lo = max(prices), min(prices)
            due = [o for o in self.orders.values()
                   if o.pending_stop and o.symbol == symbol and _stop_satisfied(o, hi, lo)]
            prices = []
            for o in sorted(due, key=lambda o: o.accept_seq):
                prices += self._trigger(o)

    # ----- CANCEL / REPLACE / MASS_CANCEL ------------------------------------------------------

    def _owned(self, c: Cmd) -> Order | None:
        """The live order c names, if c's account may act on it (account 0 = operator)."""
        o = self.orders.get(c.order_id)
        if o is None or (c.account != 0 and c.account != o.account):
            return None
        return o

    def _cancel(self, c: Cmd) -> None:
        if c.reject:  # the edge could not parse it: rejected first, as a NEW is
            self._reject(c, c.reject)
            return
        o = self._owned(c)
        if o is None:
            self._reject(c, Reason.UNKNOWN_ORDER)
        else:
            self._finish(o, EventType.CANCELLED, Reason.USER_CANCEL)

    def _replace_reason(self, c: Cmd, o: Order | None) -> int:
        if c.reject:  # the edge could not parse it: rejected first, as a NEW is
            return c.reject
        if o is None:
            return Reason.UNKNOWN_ORDER
        if o.pending_stop:
            return Reason.NOT_REPLACEABLE
        inst = self.instruments[o.symbol]
        price = c.price or o.price
        if reason := _qty_reason(inst, c.qty) or _price_reason(inst, price):
            return reason
        if c.qty <= o.filled:
            return Reason.REPLACE_QTY_TOO_LOW
        if price * c.qty < inst.min_notional:
            return Reason.NOTIONAL_BELOW_MIN
        if o.post_only and self._would_cross(o.symbol, o.side, price):
            return Reason.POST_ONLY_WOULD_TAKE
        return Reason.NONE

    def _replace(self, c: Cmd) -> None:
        o = self._owned(c)
        if reason := self._replace_reason(c, o):
            self._reject(c, reason)
            return
        assert o is not None
        price = c.price or o.price
        keeps_priority = price == o.price and c.qty <= o.qty
        o.price, o.qty, o.leaves = price, c.qty, c.qty - o.filled
        self._emit_order(EventType.REPLACED, o)
        self._on_replaced(o)
        if keeps_priority:
            o.visible = min(o.visible, o.leaves)
            return
        o.resting = False  # leaves its place and re-enters as a taker
        self._stop_rounds(o.symbol, self._take(o))

    def _mass_cancel(self, c: Cmd) -> None:
        hit = [o for o in self.orders.values()
               if c.account in (0, o.account) and c.symbol in (0, o.symbol) and c.aux1 in (0, o.session_tag)
               and not self._spared_by_mass_cancel(o)]
        for o in sorted(hit, key=lambda o: o.accept_seq):
            self._finish(o, EventType.CANCELLED, Reason.MASS_CANCEL)
        self._emit(EventType.MASS_CANCEL_DONE, account=c.account, symbol=c.symbol, qty=len(hit))

    def _spared_by_mass_cancel(self, o: Order) -> bool:
        return False

    # ----- instruments -----------------------------------------------------------------------

    def _add_instrument(self, c: Cmd) -> None:
        # field reuse: price = max price, qty = min qty, display_qty = max qty,
        # stop_price = min notional, order_id = band (bps)
        inst = Instrument(symbol=c.symbol, max_price=c.price, min_qty=c.qty, max_qty=c.display_qty,
                          min_notional=c.stop_price, band_bps=c.order_id)
        valid = (1 <= inst.symbol <= MAX_SYMBOL and inst.symbol not in self.instruments and inst.max_price > 0
                 and inst.min_qty > 0 and inst.max_qty >= inst.min_qty and inst.min_notional >= 0
                 and 1 <= inst.band_bps <= 10000 and inst.max_price * inst.max_qty < OVERFLOW_LIMIT)
        if not valid:
            self._reject(c, Reason.INVALID_INSTRUMENT)
            return
        self.instruments[inst.symbol] = inst
        # fields beyond symbol are not in the spec; the engine reports max price and max qty
        self._emit(EventType.INSTRUMENT_ADDED, symbol=inst.symbol, price=inst.max_price, qty=inst.max_qty)


def events_from_array(events: np.ndarray) -> list[Event]:
    """Engine events (EVENT_DTYPE) as plain dicts comparable with the reference's."""
    return [{name: int(ev[name]) for name in EVENT_FIELDS} for ev in events]


def describe(event: Mapping[str, int]) -> str:
    """A readable one-liner for assertion messages."""
    kind = EventType(event["type"]).name
    reasons: Any = PostingKind if event["type"] == EventType.POSTING else Reason  # a posting's kind
    known = event["reason"] in reasons._value2member_map_
    reason = reasons(event["reason"]).name if known else event["reason"]
    rest = " ".join(f"{k}={event[k]}" for k in EVENT_FIELDS if k not in ("type", "reason") and event[k])
    return f"{kind}({reason}) {rest}"
