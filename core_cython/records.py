"""Python view of the command and event records defined in records.pxd.

The numpy dtypes below have the exact byte layout of the C structs, so a batch of commands is a
numpy structured array that the engine reads without copying, and a batch of events comes back the
same way. Enum values are part of the journal format: append, never renumber.
"""

from __future__ import annotations

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
        ("symbol", "<u4"),
        ("op", "u1"),
        ("side", "u1"),
        ("ord_type", "u1"),
        ("tif", "u1"),
        ("stp", "u1"),
        ("flags", "u1"),
        ("reject", "u1"),
        ("_pad0", "u1"),
        ("_pad1", "<u4"),
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
        ("symbol", "<u4"),
        ("type", "u1"),
        ("reason", "u1"),
        ("side", "u1"),
        ("op", "u1"),
    ]
)

COMMAND_SIZE = COMMAND_DTYPE.itemsize  # 80
EVENT_SIZE = EVENT_DTYPE.itemsize  # 104


class Op(IntEnum):
    NEW = 1
    CANCEL = 2
    REPLACE = 3
    MASS_CANCEL = 4
    ADD_INSTRUMENT = 5


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
) -> None:
    """Fill one command record as ADD_INSTRUMENT.

    An instrument definition reuses the order fields (records stay one fixed size):
    price = max price (ticks), qty = min qty (lots), display_qty = max qty (lots),
    stop_price = min notional (in tick x lot units), order_id = market protection band (basis points).
    """
    cmd["op"] = Op.ADD_INSTRUMENT
    cmd["symbol"] = symbol
    cmd["price"] = max_price
    cmd["qty"] = min_qty
    cmd["display_qty"] = max_qty
    cmd["stop_price"] = min_notional
    cmd["order_id"] = market_band_bps
