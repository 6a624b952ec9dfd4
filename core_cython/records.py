"""Python view of the command and event records defined in records.pxd.

The numpy dtypes below have the exact byte layout of the C structs, so a batch of commands is a
numpy structured array that the engine reads without copying, and a batch of events comes back the
same way. Enum values are part of the journal format: append, never renumber.
"""

from __future__ import annotations

import hashlib
from enum import IntEnum

import numpy as np

COMMAND_DTYPE = np.dtype(
    [
        ("seq", "<u8"),
        ("ts", "<i8"),
        ("order_id", "<u8"),
        ("account", "<u8"),
        ("price", "<i8"),
        ("qty", "<i8"),
        ("stop_price", "<i8"),
        ("display_qty", "<i8"),
        ("aux1", "<i8"),
        ("aux2", "<i8"),
        ("symbol", "<u4"),
        ("asset", "<u4"),
        ("op", "u1"),
        ("side", "u1"),
        ("ord_type", "u1"),
        ("tif", "u1"),
        ("stp", "u1"),
        ("flags", "u1"),
        ("reject", "u1"),
        ("_pad0", "u1"),
    ]
)

EVENT_DTYPE = np.dtype(
    [
        ("seq", "<u8"),
        ("cmd_seq", "<u8"),
        ("ts", "<i8"),
        ("order_id", "<u8"),
        ("account", "<u8"),
        ("price", "<i8"),
        ("qty", "<i8"),
        ("leaves", "<i8"),
        ("filled", "<i8"),
        ("maker_order", "<u8"),
        ("maker_account", "<u8"),
        ("maker_leaves", "<i8"),
        ("maker_filled", "<i8"),
        ("symbol", "<u4"),
        ("type", "u1"),
        ("reason", "u1"),
        ("side", "u1"),
        ("op", "u1"),
    ]
)

COMMAND_SIZE = COMMAND_DTYPE.itemsize  # 96
EVENT_SIZE = EVENT_DTYPE.itemsize  # 112

# The rings' records (core_cython/envelope.pxd): a command or event plus the origin of its request.
ORIGIN_FIELDS = [("request_id", "<u8"), ("session", "<u4"), ("gateway", "<u2"), ("flags", "<u2")]
REQUEST_DTYPE = np.dtype([("cmd", COMMAND_DTYPE), *ORIGIN_FIELDS])  # 112 bytes, gateway -> engine
OUTCOME_DTYPE = np.dtype([("ev", EVENT_DTYPE), *ORIGIN_FIELDS])  # 128 bytes, engine -> gateways
ADMIN_GATEWAY = 0  # origin.gateway of the operator's admin path; gateways are numbered from 1
OUTCOME_LAST_OF_COMMAND = 1  # origin.flags on a command's last event


class Op(IntEnum):
    NEW = 1
    CANCEL = 2
    REPLACE = 3
    MASS_CANCEL = 4
    ADD_INSTRUMENT = 5
    # funds mode: accounts, ledger and pre-trade risk (core_cython/README.md "Funds mode")
    ADD_ASSET = 6
    CREATE_ACCOUNT = 7
    DEPOSIT = 8
    WITHDRAW_HOLD = 9
    WITHDRAW_SETTLE = 10
    WITHDRAW_RELEASE = 11
    TRANSFER = 12
    ADJUST = 13
    SET_FEES = 14
    SET_FEE_TIER = 15
    SET_ACCOUNT_STATUS = 16
    SET_TRADING_STATUS = 17
    SET_LIMITS = 18


class Side(IntEnum):
    BUY = 1
    SELL = 2


class OrdType(IntEnum):
    LIMIT = 1
    MARKET = 2


class Tif(IntEnum):
    GTC = 1
    IOC = 2
    FOK = 3


class Stp(IntEnum):
    NONE = 0
    CANCEL_TAKER = 1
    CANCEL_MAKER = 2
    CANCEL_BOTH = 3


class Flag(IntEnum):
    POST_ONLY = 1


class EventType(IntEnum):
    ACCEPTED = 1
    REJECTED = 2
    TRADE = 3
    CANCELLED = 4
    REPLACED = 5
    TRIGGERED = 6
    EXPIRED = 7
    INSTRUMENT_ADDED = 8
    MASS_CANCEL_DONE = 9
    APPLIED = 10
    POSTING = 11


class PostingKind(IntEnum):
    """EV_POSTING.reason: why a balance changed."""

    HOLD = 1
    RELEASE = 2
    TRADE = 3
    FEE = 4
    DEPOSIT = 5
    WITHDRAWAL_HOLD = 6
    WITHDRAWAL = 7
    WITHDRAWAL_RELEASE = 8
    TRANSFER = 9
    ADJUSTMENT = 10


class AccountType(IntEnum):
    CUSTOMER = 1
    FEE = 2
    SYSTEM = 3


class AccountStatus(IntEnum):
    ACTIVE = 0
    HALTED = 1


class TradingStatus(IntEnum):
    OPEN = 0
    CANCEL_ONLY = 1
    HALTED = 2


# Built-in accounts of funds mode. EXTERNAL and ADJUSTMENTS are contra accounts (their balances go
# negative: what entered the venue from chains / by operator adjustment); FEES collects fees.
ACCOUNT_EXTERNAL = 1
ACCOUNT_ADJUSTMENTS = 2
ACCOUNT_FEES = 3
FIRST_CUSTOMER_ACCOUNT = 16


class Reason(IntEnum):
    NONE = 0
    UNKNOWN_SYMBOL = 1
    DUPLICATE_ORDER_ID = 2
    UNKNOWN_ORDER = 3
    INVALID_QTY = 4
    QTY_BELOW_MIN = 5
    QTY_ABOVE_MAX = 6
    INVALID_PRICE = 7
    PRICE_ABOVE_MAX = 8
    NOTIONAL_BELOW_MIN = 9
    POST_ONLY_WOULD_TAKE = 10
    OFF_TICK = 11
    OFF_LOT = 12
    INVALID_SIDE = 13
    INVALID_ORDER_TYPE = 14
    INVALID_TIF = 15
    INVALID_STP = 16
    INVALID_DISPLAY_QTY = 17
    INVALID_STOP_PRICE = 18
    NO_LIQUIDITY = 19
    REPLACE_QTY_TOO_LOW = 20
    NOT_REPLACEABLE = 21
    UNKNOWN_OP = 22
    INVALID_INSTRUMENT = 23
    MALFORMED = 24
    INVALID_FLAGS = 25
    USER_CANCEL = 30
    MASS_CANCEL = 31
    SELF_TRADE = 32
    IOC_REMAINDER = 33
    FOK_UNFILLABLE = 34
    MARKET_REMAINDER = 35
    ACCOUNT_HALTED = 36
    FUNDS_OFF = 40
    UNKNOWN_ACCOUNT = 41
    ACCOUNT_EXISTS = 42
    ACCOUNT_CANNOT_TRADE = 43
    UNKNOWN_ASSET = 44
    INVALID_ASSET = 45
    INVALID_AMOUNT = 46
    INSUFFICIENT_FUNDS = 47
    DUPLICATE_REF = 48
    UNKNOWN_WITHDRAWAL = 49
    DUPLICATE_WITHDRAWAL = 50
    MISSING_REASON = 51
    INVALID_FEES = 52
    INSTRUMENT_HALTED = 53
    CANCEL_ONLY = 54
    PRICE_OUTSIDE_BAND = 55
    NOTIONAL_ABOVE_MAX = 56
    TOO_MANY_OPEN_ORDERS = 57
    SUPPLY_LIMIT = 58
    INVALID_STATUS = 59
    INVALID_LIMITS = 60
    INVALID_ACCOUNT = 61


def new_commands(n: int) -> np.ndarray:
    """A zeroed batch of n commands."""
    return np.zeros(n, dtype=COMMAND_DTYPE)


def set_instrument(
    cmd: np.void | np.ndarray,
    symbol: int,
    *,
    max_price: int,
    min_qty: int,
    max_qty: int,
    min_notional: int = 0,
    market_band_bps: int = 500,
    base_asset: int = 0,
    quote_asset: int = 0,
    base_per_lot: int = 0,
    quote_per_tick_lot: int = 0,
) -> None:
    """Fill one command record as ADD_INSTRUMENT.

    An instrument definition reuses the order fields (records stay one fixed size):
    price = max price (ticks), qty = min qty (lots), display_qty = max qty (lots),
    stop_price = min notional (in tick x lot units), order_id = market protection band (basis points).
    Funds mode also needs: asset = base asset id, account = quote asset id, aux1 = base units per
    lot, aux2 = quote units per (tick x lot), the smallest units of each asset (core mode ignores them).
    """
    cmd["op"] = Op.ADD_INSTRUMENT
    cmd["symbol"] = symbol
    cmd["price"] = max_price
    cmd["qty"] = min_qty
    cmd["display_qty"] = max_qty
    cmd["stop_price"] = min_notional
    cmd["order_id"] = market_band_bps
    cmd["asset"] = base_asset
    cmd["account"] = quote_asset
    cmd["aux1"] = base_per_lot
    cmd["aux2"] = quote_per_tick_lot


def ref_hash(ref: str) -> tuple[int, int]:
    """A deposit's external reference (a tx id, ...) as the two int64 halves of its BLAKE2b-128.

    The engine deduplicates deposits by this hash; 128 bits make an accidental collision negligible.
    A ref that is not valid UTF-8 text (a lone surrogate) raises UnicodeEncodeError: callers check
    request fields first (venue.money.name_field).
    """
    digest = hashlib.blake2b(ref.encode("utf-8"), digest_size=16).digest()
    hi = int.from_bytes(digest[:8], "little", signed=True)
    lo = int.from_bytes(digest[8:], "little", signed=True)
    return hi, lo or 1  # never (x, 0): aux2 = 0 would read as "no ref"


def set_money(cmd: np.void | np.ndarray, op: int, **fields: int) -> None:
    """Fill one funds-mode command; the field meaning per op is the table in core_cython/README.md."""
    cmd["op"] = op
    for name, value in fields.items():
        cmd[name] = value
