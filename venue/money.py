"""Funds-mode requests (money and admin ops) <-> engine commands, and APPLIED / POSTING events -> dicts.

Input vocabulary, one JSON object per request (amounts are decimal strings in the asset's units):
    {"op":"asset","name":"DOGE","decimals":8}
    {"op":"create_account","account":"a1","max_open_orders":100,"tier":1,"owner":7}  (account required)
    {"op":"deposit","account":"a1","asset":"USDT","amount":"1000","ref":"tx1"}
    {"op":"withdraw_hold","id":"w1","account":"a1","asset":"USDT","amount":"10"}
    {"op":"withdraw_settle","id":"w1"}   {"op":"withdraw_release","id":"w1","account":"a1"}
    {"op":"transfer","account":"a1","to":"a2","asset":"USDT","amount":"5"}
    {"op":"adjust","account":"a1","asset":"USDT","amount":"-1.5","reason":"correction","ticket":"T-17"}
    {"op":"set_fees","symbol":"BTC-USDT","tier":0,"maker_bps":2,"taker_bps":5}
    {"op":"set_fee_tier","account":"a1","tier":1}
    {"op":"account_status","account":"a1","status":"halted"}         (active | halted)
    {"op":"trading_status","symbol":"BTC-USDT","status":"cancel_only"}  (open | cancel_only | halted)
    {"op":"limits","symbol":"BTC-USDT","reference_price":"60000.00","max_notional":"100000"}
Withdrawal ids and adjustment tickets are strings, like order ids (and numbered like them: from the
edge's first_order_id on). A request without a usable shape (missing or unknown field, a name that is
not a non-empty string of valid UTF-8 text, an unknown reason) raises RequestError. A
bad amount still becomes a command with `cmd.reject` set (MALFORMED, or INVALID_AMOUNT for a
negative amount or one with more decimals than its asset: never rounded), so the engine emits the
REJECTED event in sequence; the problem text comes back for the caller to report.

An APPLIED adjust names its reason `adjust_reason` (an event's `reason` is always a reject reason).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from core_cython.records import (
    ACCOUNT_ADJUSTMENTS,
    ACCOUNT_EXTERNAL,
    ACCOUNT_FEES,
    EVENT_DTYPE,
    AccountStatus,
    Op,
    PostingKind,
    Reason,
    TradingStatus,
    ref_hash,
)
from venue.assets import UNKNOWN_ASSET_ID, Asset
from venue.instruments import UNKNOWN_SYMBOL_ID, EdgeReject, FieldRules, InstrumentError, parse_decimal

if TYPE_CHECKING:
    from venue.edge import Edge

BUILTIN_ACCOUNTS = {"@external": ACCOUNT_EXTERNAL, "@adjustments": ACCOUNT_ADJUSTMENTS, "@fees": ACCOUNT_FEES}
# ADJUST's reason code (the command's flags; 0 = none, which the engine rejects as MISSING_REASON).
ADJUST_REASONS = {"correction": 1, "refund": 2, "chargeback": 3, "promotion": 4, "write_off": 5,
                  "migration": 6}
ACCOUNT_STATUSES = {s.name.lower(): int(s) for s in AccountStatus}
TRADING_STATUSES = {s.name.lower(): int(s) for s in TradingStatus}
INVALID_STATUS = 0xFF  # outside every status: the engine answers INVALID_STATUS
MAX_TIER = 255  # a fee tier travels in the command's u8 flags
INT64 = (-(2**63), 2**63 - 1)
REFERENCE_PRICE = FieldRules("reference_price", Reason.INVALID_LIMITS, Reason.INVALID_LIMITS, Reason.OFF_TICK)

MONEY_OPS = {"asset": int(Op.ADD_ASSET), "create_account": int(Op.CREATE_ACCOUNT), "deposit": int(Op.DEPOSIT),
             "withdraw_hold": int(Op.WITHDRAW_HOLD), "withdraw_settle": int(Op.WITHDRAW_SETTLE),
             "withdraw_release": int(Op.WITHDRAW_RELEASE), "transfer": int(Op.TRANSFER),
             "adjust": int(Op.ADJUST), "set_fees": int(Op.SET_FEES), "set_fee_tier": int(Op.SET_FEE_TIER),
             "account_status": int(Op.SET_ACCOUNT_STATUS), "trading_status": int(Op.SET_TRADING_STATUS),
             "limits": int(Op.SET_LIMITS)}
MONEY_OP_NAMES = {op: name for name, op in MONEY_OPS.items()}
MONEY_FIELDS: dict[str, tuple[set[str], set[str]]] = {  # op -> (required, optional)
    "asset": ({"name", "decimals"}, {"ts"}),
    "create_account": ({"account"}, {"max_open_orders", "tier", "owner", "ts"}),
    "deposit": ({"account", "asset", "amount", "ref"}, {"ts"}),
    "withdraw_hold": ({"id", "account", "asset", "amount"}, {"ts"}),
    "withdraw_settle": ({"id"}, {"account", "ts"}),
    "withdraw_release": ({"id"}, {"account", "ts"}),
    "transfer": ({"account", "to", "asset", "amount"}, {"ts"}),
    "adjust": ({"account", "asset", "amount", "reason", "ticket"}, {"ts"}),
    "set_fees": ({"symbol", "maker_bps", "taker_bps"}, {"tier", "ts"}),
    "set_fee_tier": ({"account", "tier"}, {"ts"}),
    "account_status": ({"account", "status"}, {"ts"}),
    "trading_status": ({"symbol", "status"}, {"ts"}),
    "limits": ({"symbol"}, {"reference_price", "max_notional", "ts"}),
}

EVENT_INDEX = {name: i for i, name in enumerate(EVENT_DTYPE.names)}  # field index in event.tolist() tuples
_POSTING_FIELDS = ("account", "symbol", "price", "qty", "leaves", "filled", "reason", "maker_order",
                   "order_id", "maker_account", "maker_leaves")
_APPLIED_FIELDS = ("op", "account", "order_id", "price", "qty", "symbol", "side", "maker_account")
_KIND_NAMES = {int(k): k.name.lower() for k in PostingKind}
_WITHDRAWAL_KINDS = {int(PostingKind.WITHDRAWAL_HOLD), int(PostingKind.WITHDRAWAL),
                     int(PostingKind.WITHDRAWAL_RELEASE)}
_ORDER_KINDS = {int(PostingKind.HOLD), int(PostingKind.RELEASE), int(PostingKind.TRADE), int(PostingKind.FEE)}
_ADJUST_REASON_NAMES = {code: name for name, code in ADJUST_REASONS.items()}
_ACCOUNT_STATUS_NAMES = {code: name for name, code in ACCOUNT_STATUSES.items()}
_TRADING_STATUS_NAMES = {code: name for name, code in TRADING_STATUSES.items()}


class FieldError(ValueError):
    """A request field without a usable shape: no command (the edge raises its RequestError, op first)."""


# ---------------------------------------------------------------------------- requests -> commands


def name_field(request: Mapping[str, Any], key: str) -> str:
    """A required name-like field (order and withdrawal ids, accounts, symbols, assets, refs, tickets): a
    non-empty string that encodes as UTF-8 (no lone surrogate such as a JSON "\\ud800"), or an int as text."""
    value = request[key]
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value:
        raise FieldError(f"{key} must be a non-empty string")
    if not value.isascii():  # ASCII always encodes; the rest only without lone surrogates
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise FieldError(f"{key} is not valid UTF-8 text (it holds a lone surrogate)") from None
    return value


def _integer(request: Mapping[str, Any], key: str, low: int, high: int, default: int | None = None) -> int:
    if key not in request and default is not None:
        return default
    value = request[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldError(f"{key} must be an integer, not {value!r}")
    if not low <= value <= high:
        raise FieldError(f"{key} must be in {low}..{high}, not {value}")
    return value


def _status(request: Mapping[str, Any], names: Mapping[str, int]) -> int:
    value = request["status"]
    if not isinstance(value, str):
        raise FieldError(f"status must be one of {', '.join(names)}")
    return names.get(value, INVALID_STATUS)  # the engine rejects an unknown one: INVALID_STATUS


def encode_money(edge: Edge, cmd: dict[str, int], request: Mapping[str, Any], op: str) -> str | None:
    """Fill cmd (a dict in COMMAND_DTYPE order) for a funds op; returns the problem behind a cmd.reject.

    Raises FieldError for a request that yields no command.
    """
    cmd["op"] = MONEY_OPS[op]
    problems: list[str] = []

    def amount(asset_id: int, key: str = "amount", *, signed: bool = False, asset: Asset | None = None,
               reason: Reason = Reason.INVALID_AMOUNT) -> int:
        asset = asset or edge.assets.by_id(asset_id)
        try:
            if asset is None:  # unknown asset: the engine says so; only check the syntax here
                parse_decimal(request[key], key)
                return 0
            return asset.to_units(request[key], key, signed=signed)
        except EdgeReject as exc:
            if not cmd["reject"]:
                cmd["reject"] = int(reason if exc.reason == Reason.INVALID_AMOUNT else exc.reason)
            problems.append(f"{op}: {exc}")
            return 0

    if "account" in request:
        cmd["account"] = edge.accounts.id(name_field(request, "account"))
    if "asset" in request:
        cmd["asset"] = edge.assets.id_of(name_field(request, "asset")) or UNKNOWN_ASSET_ID
    if "symbol" in request:
        cmd["symbol"] = edge.instruments.id_of(name_field(request, "symbol")) or UNKNOWN_SYMBOL_ID
    if op == "asset":
        _encode_add_asset(edge, cmd, request)
    elif op == "create_account":
        cmd["qty"] = _integer(request, "max_open_orders", 0, INT64[1], edge.account_defaults[0])
        cmd["flags"] = _integer(request, "tier", 0, MAX_TIER, edge.account_defaults[1])
        cmd["order_id"] = _integer(request, "owner", 0, 2**64 - 1, 0)
        edge.known_accounts.add(cmd["account"])
    elif op == "deposit":
        cmd["qty"] = amount(cmd["asset"])
        cmd["aux1"], cmd["aux2"] = ref_hash(name_field(request, "ref"))
    elif op in ("withdraw_hold", "withdraw_settle", "withdraw_release"):
        cmd["order_id"] = edge.withdrawals.id(name_field(request, "id"))
        if op == "withdraw_hold":
            cmd["qty"] = amount(cmd["asset"])
    elif op == "transfer":
        cmd["aux1"] = edge.accounts.id(name_field(request, "to"))
        cmd["qty"] = amount(cmd["asset"])
    elif op == "adjust":
        reason = name_field(request, "reason")
        if reason not in ADJUST_REASONS:
            raise FieldError(f"reason must be one of {', '.join(ADJUST_REASONS)}, not {reason!r}")
        cmd["flags"] = ADJUST_REASONS[reason]
        cmd["order_id"] = edge.tickets.id(name_field(request, "ticket"))
        cmd["qty"] = amount(cmd["asset"], signed=True)
    elif op == "set_fees":
        cmd["flags"] = _integer(request, "tier", 0, MAX_TIER, 0)
        cmd["price"] = _integer(request, "maker_bps", *INT64)  # the engine checks the rates' bounds
        cmd["qty"] = _integer(request, "taker_bps", *INT64)
    elif op == "set_fee_tier":
        cmd["flags"] = _integer(request, "tier", 0, MAX_TIER)
    elif op == "account_status":
        cmd["flags"] = _status(request, ACCOUNT_STATUSES)
    elif op == "trading_status":
        cmd["flags"] = _status(request, TRADING_STATUSES)
    else:
        _encode_limits(edge, cmd, request, amount, problems)
    return "; ".join(problems) or None


def _encode_add_asset(edge: Edge, cmd: dict[str, int], request: Mapping[str, Any]) -> None:
    name = name_field(request, "name")
    existing = edge.assets.id_of(name)
    if existing is not None:  # the engine refuses a second definition (INVALID_ASSET)
        cmd["asset"], cmd["qty"] = existing, _integer(request, "decimals", *INT64)
        return
    try:
        asset = Asset.define(name, request["decimals"])
        # Registered now: the engine accepts every valid definition of a new id.
        cmd["asset"] = edge.assets.add(asset)
    except InstrumentError as exc:
        raise FieldError(str(exc)) from None
    cmd["qty"] = asset.decimals


def _encode_limits(edge: Edge, cmd: dict[str, int], request: Mapping[str, Any],
                   amount: Callable[..., int], problems: list[str]) -> None:
    instrument = edge.instruments.by_id(cmd["symbol"])
    if instrument is None:  # the engine answers UNKNOWN_SYMBOL
        return
    if "reference_price" in request:  # absent = none (0)
        try:
            cmd["price"] = instrument.to_ticks(request["reference_price"], REFERENCE_PRICE)
        except EdgeReject as exc:
            cmd["reject"] = cmd["reject"] or int(exc.reason)
            problems.append(f"limits: {exc}")
    if "max_notional" in request:
        cmd["aux1"] = amount(0, "max_notional", asset=edge.assets.get(instrument.quote),
                             reason=Reason.INVALID_LIMITS)


# ---------------------------------------------------------------------------- events -> dicts


def decode_applied(edge: Edge, event: tuple, request: Mapping[str, Any] | None) -> dict[str, Any]:
    """The fields of an APPLIED event (a tuple from events.tolist()) in the input vocabulary."""
    op, account, order_id, price, qty, symbol, flags, target = (event[EVENT_INDEX[k]]
                                                                for k in _APPLIED_FIELDS)
    name = MONEY_OP_NAMES.get(op, str(op))
    out: dict[str, Any] = {"op": name}
    asset = edge.assets.by_id(symbol)
    asset_name = asset.name if asset else str(symbol)
    amount = asset.format if asset else str
    who = edge.accounts.name(account)
    if op == Op.ADD_ASSET:
        out.update(asset=asset_name, decimals=qty)
    elif op == Op.CREATE_ACCOUNT:
        out.update(account=who, max_open_orders=qty, tier=flags)
        if order_id:
            out["owner"] = order_id
    elif op == Op.DEPOSIT:
        out.update(account=who, asset=asset_name, amount=amount(qty))
        if request is not None and "ref" in request:
            out["ref"] = request["ref"]
    elif op in (Op.WITHDRAW_HOLD, Op.WITHDRAW_SETTLE, Op.WITHDRAW_RELEASE):
        out.update(id=edge.withdrawals.name(order_id), account=who, asset=asset_name, amount=amount(qty))
    elif op == Op.TRANSFER:
        out.update(account=who, to=edge.accounts.name(target), asset=asset_name, amount=amount(qty))
    elif op == Op.ADJUST:
        out.update(account=who, asset=asset_name, amount=amount(qty),
                   adjust_reason=_ADJUST_REASON_NAMES.get(flags, flags), ticket=edge.tickets.name(order_id))
    elif op in (Op.SET_FEE_TIER, Op.SET_ACCOUNT_STATUS):
        out["account"] = who
        if op == Op.SET_FEE_TIER:
            out["tier"] = flags
        else:
            out["status"] = _ACCOUNT_STATUS_NAMES.get(flags, flags)
    else:
        _decode_symbol_op(edge, out, op, price, qty, symbol, flags, request)
    return out


def _decode_symbol_op(edge: Edge, out: dict[str, Any], op: int, price: int, qty: int, symbol: int, flags: int,
                      request: Mapping[str, Any] | None) -> None:
    instrument = edge.instruments.by_id(symbol)
    out["symbol"] = instrument.symbol if instrument else str(symbol)
    if op == Op.SET_FEES:
        out.update(tier=flags, maker_bps=price, taker_bps=qty)
    elif op == Op.SET_TRADING_STATUS:
        out["status"] = _TRADING_STATUS_NAMES.get(flags, flags)
    elif op == Op.SET_LIMITS:
        if price:
            out["reference_price"] = instrument.from_ticks(price) if instrument else str(price)
        quote = edge.assets.get(instrument.quote) if instrument else None
        # The event does not carry the max notional: echo the request's, in the quote's precision.
        if request is not None and "max_notional" in request and quote is not None:
            try:
                units = quote.to_units(request["max_notional"], "max_notional")
            except EdgeReject:  # not reached: such a request is rejected, not applied
                return
            if units:
                out["max_notional"] = quote.format(units)


def decode_posting(edge: Edge, event: tuple) -> dict[str, Any]:
    """The fields of a POSTING event (a tuple from events.tolist()): amounts as decimals of the asset."""
    (account, asset_id, available, held, available_after, held_after, kind, cause, order_id, counterparty,
     fee) = (event[EVENT_INDEX[k]] for k in _POSTING_FIELDS)
    asset = edge.assets.by_id(asset_id)
    amount = asset.format if asset else str
    out: dict[str, Any] = {
        "kind": _KIND_NAMES.get(kind, str(kind)), "account": edge.accounts.name(account),
        "asset": asset.name if asset else str(asset_id), "available": amount(available), "held": amount(held),
        "available_after": amount(available_after), "held_after": amount(held_after), "cause": cause,
    }
    if order_id:
        if kind in _ORDER_KINDS:
            out["id"] = edge.orders.name(order_id)
        elif kind in _WITHDRAWAL_KINDS:
            out["id"] = edge.withdrawals.name(order_id)
        elif kind == PostingKind.ADJUSTMENT:
            out["ticket"] = edge.tickets.name(order_id)
        else:
            out["id"] = order_id
    if counterparty:
        out["counterparty"] = edge.accounts.name(counterparty)
    if fee:
        out["fee"] = amount(fee)
    return out
