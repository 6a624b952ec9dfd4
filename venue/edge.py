"""Requests in the input vocabulary (dicts of strings) <-> engine command and event records.

An `Edge` owns the translation state a gateway needs: the instrument registry, and the string <->
integer maps for order ids and accounts. A string order id keeps one integer for the whole run, so a
cancel or replace finds its order and a finished id may be reused, as the engine allows.

`encode` fills one command record (`encode_record` returns it as a tuple: the fast path). A
request that is unusable as a whole (no op, unknown op, a cancel without id) raises `RequestError`
and yields no command. A NEW that has an id but a bad field still becomes a command with
`cmd.reject` set (MALFORMED, OFF_TICK, ...), so the engine emits its REJECTED event in sequence;
the problem text comes back for logging.

Name-like fields (ids, accounts, symbols, refs, tickets) must be non-empty strings that encode as
UTF-8 (or integers, used as their text); `ts` must be an integer in 0..2^63-1 (ns), for every op.

Event dicts: `type`, `seq`, `reason` (when any), then the fields in the input vocabulary. Prices and
quantities print with the instrument's tick / lot decimals (see venue.instruments); `price` is
absent where the engine has none (market orders). A trade's `side` is the aggressor's (taker's).
A REJECTED event names the rejected `op` and echoes the request's own fields as sent (they may be
what could not be parsed), never over the event's own: the request's `type` is echoed as
`order_type`, and any other request key the event already has (`seq`, `reason`, ...) gets the prefix
`request_` (an adjust's `reason` comes back as `request_reason`).

Funds mode (`Edge(funds=True)`): the money and admin ops of venue.money, which also decodes APPLIED
and POSTING events. Customer accounts get integers from FIRST_CUSTOMER_ACCOUNT (16) on; the
built-in accounts are named "@external", "@adjustments" and "@fees". `encode_records` creates an
account (CREATE_ACCOUNT with the edge's defaults) in front of the first deposit or order naming it.
Withdrawal ids and adjustment tickets are numbered like order ids, from first_order_id on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from core_cython.records import (
    COMMAND_DTYPE,
    FIRST_CUSTOMER_ACCOUNT,
    EventType,
    Flag,
    Op,
    OrdType,
    Reason,
    Side,
    Stp,
    Tif,
)
from venue.assets import AssetRegistry, funds_link
from venue.instruments import (
    DISPLAY_QTY,
    PRICE,
    QTY,
    STOP_PRICE,
    UNKNOWN_SYMBOL_ID,
    EdgeReject,
    FieldRules,
    Instrument,
    InstrumentRegistry,
    parse_decimal,
)
from venue.money import (
    BUILTIN_ACCOUNTS,
    MONEY_FIELDS,
    MONEY_OP_NAMES,
    MONEY_OPS,
    FieldError,
    decode_applied,
    decode_posting,
    encode_money,
    name_field,
)
from venue.money import EVENT_INDEX as _F

OPERATOR = "operator"  # account 0: may cancel or replace any order

SIDES = {"buy": int(Side.BUY), "sell": int(Side.SELL)}
ORDER_TYPES = {"limit": int(OrdType.LIMIT), "market": int(OrdType.MARKET)}
TIFS = {"gtc": int(Tif.GTC), "ioc": int(Tif.IOC), "fok": int(Tif.FOK)}
STPS = {"none": int(Stp.NONE), "cancel_taker": int(Stp.CANCEL_TAKER), "cancel_maker": int(Stp.CANCEL_MAKER),
        "cancel_both": int(Stp.CANCEL_BOTH)}
INVALID_ENUM = 0xFF  # outside every enum: the engine rejects it with the matching INVALID_* reason

FIELDS_BY_OP: dict[str, tuple[set[str], set[str]]] = {  # op -> (required, optional)
    "new": ({"id", "account", "symbol", "side", "qty"},
            {"type", "price", "tif", "post_only", "stp", "stop_price", "display_qty", "ts"}),
    "cancel": ({"id"}, {"account", "ts"}),
    "replace": ({"id", "qty"}, {"price", "account", "ts"}),
    "mass_cancel": (set(), {"account", "symbol", "ts"}),
    "instrument": ({"symbol", "base", "quote", "tick_size", "lot_size"},
                   {"min_qty", "max_qty", "min_notional", "max_price", "market_band_bps", "ts"}),
    **MONEY_FIELDS,
}
DEFAULT_ACCOUNT = (1000, 0)  # (max open orders, fee tier) of an account the edge creates

_EVENT_NAMES = {int(t): t.name.lower() for t in EventType}
_REASON_NAMES = {int(r): r.name.lower() for r in Reason}
_OP_NAMES = {int(Op.NEW): "new", int(Op.CANCEL): "cancel", int(Op.REPLACE): "replace",
             int(Op.MASS_CANCEL): "mass_cancel", int(Op.ADD_INSTRUMENT): "instrument", **MONEY_OP_NAMES}
_SIDE_NAMES = {int(Side.BUY): "buy", int(Side.SELL): "sell"}
_ZERO_COMMAND = dict.fromkeys(COMMAND_DTYPE.names, 0)
_NEW_AMOUNTS = (("qty", QTY), ("price", PRICE), ("stop_price", STOP_PRICE), ("display_qty", DISPLAY_QTY))
# Plain ints: enum attribute lookups are slow on the per-request path.
_NEW, _CANCEL, _REPLACE, _MASS_CANCEL = int(Op.NEW), int(Op.CANCEL), int(Op.REPLACE), int(Op.MASS_CANCEL)
_LIMIT, _MARKET, _GTC, _STP_NONE = int(OrdType.LIMIT), int(OrdType.MARKET), int(Tif.GTC), int(Stp.NONE)
_POST_ONLY, _MALFORMED = int(Flag.POST_ONLY), int(Reason.MALFORMED)
_ACCEPTED, _REJECTED, _TRADE = int(EventType.ACCEPTED), int(EventType.REJECTED), int(EventType.TRADE)
_CANCELLED, _EXPIRED = int(EventType.CANCELLED), int(EventType.EXPIRED)
_APPLIED, _POSTING = int(EventType.APPLIED), int(EventType.POSTING)
_CREATE_ACCOUNT, _DEPOSIT = int(Op.CREATE_ACCOUNT), int(Op.DEPOSIT)
_C = {name: i for i, name in enumerate(COMMAND_DTYPE.names)}  # field index in a record tuple


class RequestError(ValueError):
    """A request that yields no command at all (one-line message)."""


class _Names:
    """Strings <-> integers first, first + 1, ...; 0 is reserved and names `zero`; `fixed` names
    integers below first (built-in accounts)."""

    def __init__(self, zero: str, first: int = 1, fixed: Mapping[str, int] | None = None) -> None:
        self._zero = zero
        self._ids: dict[str, int] = dict(fixed or {})
        self._names: dict[int, str] = {number: name for name, number in self._ids.items()}
        self._next = first

    def id(self, name: str) -> int:
        number = self._ids.get(name)
        if number is None:
            number = self._ids[name] = self._next
            self._names[number] = name
            self._next += 1
        return number

    def assign(self, name: str, number: int) -> None:
        """Give name a known integer (e.g. read back from a journal); later names continue above it."""
        if self._ids.get(name, number) != number or self._names.get(number, name) != name:
            raise ValueError(f"{name} -> {number} conflicts with an existing name")
        self._ids[name], self._names[number] = number, name
        self._next = max(self._next, number + 1)

    def __contains__(self, name: object) -> bool:
        return name in self._ids

    @property
    def next_number(self) -> int:
        """The integer the next new name will get."""
        return self._next

    def name(self, number: int) -> str:
        if number == 0:
            return self._zero
        # An integer from before this edge existed (e.g. an earlier run's order) shows as itself.
        return self._names.get(number) or str(number)


def request_ts(request: Mapping[str, Any]) -> int:
    """The request's `ts` (ns; 0 if absent): an int (not a bool) in 0..2^63-1, else RequestError."""
    if "ts" not in request:
        return 0
    ts = request["ts"]
    if isinstance(ts, bool) or not isinstance(ts, int) or not 0 <= ts < 2**63:
        raise RequestError("ts must be a non-negative integer (ns)")
    return ts


class Edge:
    def __init__(self, *, first_order_id: int = 1, funds: bool = False,
                 account_defaults: tuple[int, int] = DEFAULT_ACCOUNT) -> None:
        """first_order_id: the integer of the first new order id string; a process that resumes a
        journal starts above every integer used before (e.g. at its last cmd seq + 1).
        funds: the engine runs in funds mode; account_defaults = (max open orders, fee tier) of the
        accounts encode_records creates."""
        self.funds = funds
        self.instruments = InstrumentRegistry()
        self.assets = AssetRegistry()
        self.orders = _Names("", max(1, first_order_id))
        self.accounts = (_Names(OPERATOR, FIRST_CUSTOMER_ACCOUNT, BUILTIN_ACCOUNTS) if funds
                         else _Names(OPERATOR))
        # Named like orders, from the same first integer: a resumed journal's pending ones never collide.
        self.withdrawals = _Names("", max(1, first_order_id))
        self.tickets = _Names("", max(1, first_order_id))
        self.account_defaults = account_defaults
        self.known_accounts: set[int] = set()  # accounts that exist or whose CREATE_ACCOUNT is on its way
        self._order_symbol: dict[int, int] = {}  # order id -> symbol id, for replace conversions
        self._live: set[int] = set()  # order ids the events show live (keeps _order_symbol right)

    # ------------------------------------------------------------------ requests -> commands

    def encode(self, cmd: np.void, request: Mapping[str, Any]) -> str | None:
        """Fill cmd (a zeroed record) from a request; returns a problem to log when cmd.reject is MALFORMED.

        Raises RequestError, leaving cmd untouched, for a request that yields no command.
        """
        record, problem = self.encode_record(request)
        for name, value in zip(COMMAND_DTYPE.names, record, strict=True):
            if value:
                cmd[name] = value
        return problem

    def encode_record(self, request: Mapping[str, Any]) -> tuple[tuple[int, ...], str | None]:
        """encode() as (a COMMAND_DTYPE tuple, problem): one assignment stores it in an array slot."""
        if not isinstance(request, Mapping):
            raise RequestError("a request must be a JSON object")
        op = request.get("op")
        if op not in FIELDS_BY_OP or op == "instrument":
            raise RequestError(f"unknown op {op!r}" if op is not None else "missing field 'op'")
        if op in MONEY_OPS and not self.funds:
            raise RequestError(f"{op}: a funds-mode op (venue match --funds)")
        cmd = dict(_ZERO_COMMAND)  # field order = COMMAND_DTYPE order, so values() is the record
        cmd["ts"] = request_ts(request)
        required, optional = FIELDS_BY_OP[op]
        missing = sorted(required.difference(request))
        unknown = sorted(set(request).difference(required, optional, ("op",)))
        problem = None
        if op != "new":
            if missing:
                raise RequestError(f"{op}: missing field {missing[0]!r}")
            if unknown:
                raise RequestError(f"{op}: unknown field {unknown[0]!r}")
        elif "id" not in request:
            raise RequestError("new: missing field 'id'")
        try:
            if op == "new":
                problem = self._encode_new(cmd, request, missing, unknown)
            elif op == "cancel":
                self._encode_cancel(cmd, request)
            elif op == "replace":
                self._encode_replace(cmd, request)
            elif op == "mass_cancel":
                self._encode_mass_cancel(cmd, request)
            else:
                problem = encode_money(self, cmd, request, op)
        except FieldError as exc:
            raise RequestError(f"{op}: {exc}") from None
        return tuple(cmd.values()), problem

    def encode_records(self, request: Mapping[str, Any]
                       ) -> tuple[list[tuple[tuple[int, ...], Mapping[str, Any]]], str | None]:
        """encode_record(), preceded in funds mode by a CREATE_ACCOUNT (account defaults) when a deposit
        or an order names an account the edge has not seen created; each record with its request."""
        record, problem = self.encode_record(request)
        account = record[_C["account"]]
        if (not self.funds or record[_C["op"]] not in (_NEW, _DEPOSIT) or record[_C["reject"]]
                or account < FIRST_CUSTOMER_ACCOUNT or account in self.known_accounts):
            return [(record, request)], problem
        create = dict(_ZERO_COMMAND, op=_CREATE_ACCOUNT, account=account, ts=record[_C["ts"]],
                      qty=self.account_defaults[0], flags=self.account_defaults[1])
        self.known_accounts.add(account)
        auto = {"op": "create_account", "account": self.accounts.name(account)}
        return [(tuple(create.values()), auto), (record, request)], problem

    def _encode_new(self, cmd: dict[str, int], request: Mapping[str, Any], missing: list[str],
                    unknown: list[str]) -> str | None:
        cmd["op"] = _NEW
        order_id = self.orders.id(name_field(request, "id"))
        cmd["order_id"] = order_id
        problems = [f"new: missing field {m!r}" for m in missing]
        problems += [f"new: unknown field {u!r}" for u in unknown]
        reasons: list[int] = []

        def reject(reason: int, problem: str) -> None:
            reasons.append(reason)
            if reason == _MALFORMED:
                problems.append(f"new: {problem}")

        for key in ("account", "symbol"):
            if key in request:
                try:
                    name = name_field(request, key)
                except FieldError as exc:
                    reject(_MALFORMED, str(exc))
                    continue
                cmd[key] = self.accounts.id(name) if key == "account" else self._symbol_id(name)
        cmd["side"] = self._enum(request, "side", SIDES, 0, reject)
        cmd["ord_type"] = self._enum(request, "type", ORDER_TYPES, _LIMIT, reject)
        cmd["tif"] = self._enum(request, "tif", TIFS, _GTC, reject)
        cmd["stp"] = self._enum(request, "stp", STPS, _STP_NONE, reject)
        post_only = request.get("post_only", False)
        if not isinstance(post_only, bool):
            reject(_MALFORMED, "post_only must be true or false")
        elif post_only:
            cmd["flags"] = _POST_ONLY
        instrument = self.instruments.by_id(cmd["symbol"])
        is_market = cmd["ord_type"] == _MARKET
        if not is_market and "price" not in request:
            problems.append("new: missing field 'price' (a limit order needs one)")
        # Engine order of the checks: quantity before prices; a market order ignores its price.
        for key, rules in _NEW_AMOUNTS:
            if key in request and not (is_market and key == "price"):
                cmd[key] = self._units(instrument, request[key], rules, reject)
        if problems:
            cmd["reject"] = _MALFORMED
        elif reasons:
            cmd["reject"] = reasons[0]
        if order_id not in self._order_symbol:
            self._order_symbol[order_id] = cmd["symbol"]
        return "; ".join(problems) or None

    @staticmethod
    def _enum(request: Mapping[str, Any], key: str, names: Mapping[str, int], default: int,
              reject: Any) -> int:
        if key not in request:
            return default
        value = request[key]
        if not isinstance(value, str):
            reject(_MALFORMED, f"{key} must be a string")
            return 0
        # An unknown name goes to the engine as an invalid value: it rejects with INVALID_<FIELD>.
        return names.get(value, INVALID_ENUM)

    @staticmethod
    def _units(instrument: Instrument | None, value: object, rules: FieldRules, reject: Any) -> int:
        try:
            if instrument is None:  # unknown symbol: the engine says so; only check the syntax here
                parse_decimal(value, rules.name)
                return 0
            if rules.off_grid == Reason.OFF_TICK:
                return instrument.to_ticks(value, rules)
            return instrument.to_lots(value, rules)
        except EdgeReject as exc:
            reject(exc.reason, str(exc))
            return 0

    def _symbol_id(self, symbol: str) -> int:
        return self.instruments.id_of(symbol) or UNKNOWN_SYMBOL_ID

    def _account_id(self, request: Mapping[str, Any]) -> int:
        return self.accounts.id(name_field(request, "account")) if "account" in request else 0

    def _encode_cancel(self, cmd: dict[str, int], request: Mapping[str, Any]) -> None:
        cmd["op"] = _CANCEL
        cmd["order_id"] = self.orders.id(name_field(request, "id"))
        cmd["account"] = self._account_id(request)

    def _encode_replace(self, cmd: dict[str, int], request: Mapping[str, Any]) -> None:
        cmd["op"] = _REPLACE
        order_id = self.orders.id(name_field(request, "id"))
        cmd["order_id"] = order_id
        cmd["account"] = self._account_id(request)
        instrument = self.instruments.by_id(self._order_symbol.get(order_id, 0))
        if instrument is None:  # no such order: the engine answers UNKNOWN_ORDER
            return
        reasons: list[int] = []
        cmd["qty"] = self._units(instrument, request["qty"], QTY, lambda r, _: reasons.append(r))
        if "price" in request:  # absent = keep the price (0 for the engine)
            cmd["price"] = self._units(instrument, request["price"], PRICE, lambda r, _: reasons.append(r))
        if reasons:
            cmd["reject"] = reasons[0]

    def _encode_mass_cancel(self, cmd: dict[str, int], request: Mapping[str, Any]) -> None:
        cmd["op"] = _MASS_CANCEL
        cmd["account"] = self._account_id(request)  # 0 = every account
        if "symbol" in request:  # absent = every symbol; an unknown one matches nothing
            cmd["symbol"] = self._symbol_id(name_field(request, "symbol"))

    def define_instrument(self, cmd: np.void, instrument: Instrument) -> int:
        """Fill cmd as ADD_INSTRUMENT with the symbol's id (its existing one if already defined).

        Funds mode: InstrumentError if its assets are not defined or its sizes are finer than theirs.
        """
        symbol_id = self.instruments.id_of(instrument.symbol) or self.instruments.next_id()
        link = funds_link(instrument, self.assets) if self.funds else None
        instrument.fill_add_command(cmd, symbol_id, link)
        return symbol_id

    def instrument_added(self, instrument: Instrument) -> int:
        """Register a definition once the engine has confirmed it (INSTRUMENT_ADDED)."""
        return self.instruments.add(instrument)

    # ------------------------------------------------------------------ events -> dicts

    def observe(self, events: np.ndarray) -> None:
        """Track which orders are live (keeps replace conversions on the right instrument)."""
        for kind, order_id, symbol, leaves, maker_order, maker_leaves, op in zip(
            events["type"].tolist(), events["order_id"].tolist(), events["symbol"].tolist(),
            events["leaves"].tolist(), events["maker_order"].tolist(), events["maker_leaves"].tolist(),
            events["op"].tolist(), strict=True,
        ):
            if kind == _ACCEPTED:
                self._live.add(order_id)
                self._order_symbol[order_id] = symbol
            elif kind == _TRADE:
                if leaves == 0:
                    self._forget(order_id)
                if maker_leaves == 0:
                    self._forget(maker_order)
            elif kind == _CANCELLED or kind == _EXPIRED:
                self._forget(order_id)
            elif kind == _REJECTED and op == _NEW and order_id not in self._live:
                self._order_symbol.pop(order_id, None)  # a tentative entry of a NEW that never lived
        if self.funds:
            failed = (events["type"] == _REJECTED) & (events["op"] == _CREATE_ACCOUNT) & (
                events["reason"] != Reason.ACCOUNT_EXISTS)
            self.known_accounts.difference_update(events["account"][failed].tolist())

    def _forget(self, order_id: int) -> None:
        self._live.discard(order_id)
        self._order_symbol.pop(order_id, None)

    def decode(self, event: tuple, request: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """One event (a tuple from events.tolist()) as a dict; `request` = the command's request."""
        kind = event[_F["type"]]
        out: dict[str, Any] = {"type": _EVENT_NAMES.get(kind, str(kind)), "seq": event[_F["seq"]]}
        reason = event[_F["reason"]]
        if reason:
            out["reason"] = _REASON_NAMES.get(reason, str(reason))
        if kind == _POSTING:
            out.pop("reason", None)  # a posting's reason is its kind
            out.update(decode_posting(self, event))
            return out
        instrument = self.instruments.by_id(event[_F["symbol"]])
        if kind == EventType.REJECTED:
            out["op"] = _OP_NAMES.get(event[_F["op"]], str(event[_F["op"]]))
            if request is not None:  # echo what was sent: it may be exactly what could not be parsed
                for key, value in request.items():
                    if key == "op":
                        continue
                    name = "order_type" if key == "type" else key
                    while name in out:  # never over the event's own type, seq, reason, op
                        name = "request_" + name
                    out[name] = value
                return out
        if kind == _APPLIED:
            out.update(decode_applied(self, event, request))
            return out
        symbol = instrument.symbol if instrument else str(event[_F["symbol"]])
        if kind == EventType.INSTRUMENT_ADDED or event[_F["op"]] == Op.ADD_INSTRUMENT:
            out["symbol"] = symbol
            return out
        if kind == EventType.MASS_CANCEL_DONE:  # account/symbol 0 = all; qty = orders cancelled
            if event[_F["account"]]:
                out["account"] = self.accounts.name(event[_F["account"]])
            if event[_F["symbol"]]:
                out["symbol"] = symbol
            out["cancelled"] = event[_F["qty"]]
            return out
        price, qty = event[_F["price"]], event[_F["qty"]]
        ticks = instrument.from_ticks if instrument else str
        lots = instrument.from_lots if instrument else str
        side = _SIDE_NAMES.get(event[_F["side"]], str(event[_F["side"]]))
        if kind == EventType.TRADE:
            out.update(symbol=symbol, side=side, price=ticks(price), qty=lots(qty),
                       taker_order=self.orders.name(event[_F["order_id"]]),
                       taker_account=self.accounts.name(event[_F["account"]]),
                       maker_order=self.orders.name(event[_F["maker_order"]]),
                       maker_account=self.accounts.name(event[_F["maker_account"]]),
                       taker_leaves=lots(event[_F["leaves"]]), maker_leaves=lots(event[_F["maker_leaves"]]))
            return out
        out.update(id=self.orders.name(event[_F["order_id"]]),
                   account=self.accounts.name(event[_F["account"]]), symbol=symbol, side=side)
        if price:
            out["price"] = ticks(price)
        out.update(qty=lots(qty), leaves=lots(event[_F["leaves"]]), filled=lots(event[_F["filled"]]))
        return out

    def book(self, engine: Any, symbol_id: int) -> dict[str, list[dict[str, Any]]]:
        """engine.book(symbol_id) in the input vocabulary; icebergs also carry `visible`."""
        instrument = self.instruments.by_id(symbol_id)
        assert instrument is not None
        raw = engine.book(symbol_id)
        out: dict[str, list[dict[str, Any]]] = {}
        for side in ("bids", "asks"):
            levels = []
            for price, orders in raw[side]:
                entries = []
                for order_id, leaves, visible in orders:
                    entry: dict[str, Any] = {"id": self.orders.name(order_id),
                                             "qty": instrument.from_lots(leaves)}
                    live = engine.order(order_id)
                    if live is not None and live["display"] > 0:
                        entry["visible"] = instrument.from_lots(visible)
                    entries.append(entry)
                levels.append({"price": instrument.from_ticks(price), "orders": entries})
            out[side] = levels
        return out

