"""The edge between decimal strings and the engine's integers (ticks, lots, symbol ids).

Everything here is exact integer arithmetic on the digits of a `decimal.Decimal`: no float ever
touches an amount. A value that cannot become an integer number of ticks or lots is not dropped:
`EdgeReject` carries the `Reason` the caller puts in `cmd.reject`, so the engine emits the REJECTED
event in sequence like any other rejection.

Output rule (`format_price` / `format_qty`): an amount is printed with exactly as many decimals as
the instrument's tick (prices) or lot (quantities) has, e.g. tick "0.01" -> "100.00", lot "0.0001"
-> "1.5000", tick "5" -> "105". The text is a pure function of the integer, so equal amounts
always print the same and every printed value parses back to the same integer.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

import numpy as np

from core_cython.records import Reason, set_instrument

if TYPE_CHECKING:
    from venue.assets import FundsLink

INT64_MAX = 2**63 - 1
ENGINE_PRODUCT_LIMIT = 2**62  # the engine refuses max_price x max_qty at or above this
MAX_SYMBOL_ID = 65_535  # the engine's limit
UNKNOWN_SYMBOL_ID = 0xFFFF_FFFF  # never assigned: the engine answers UNKNOWN_SYMBOL for it

# Plain decimal notation only (no exponent, underscores, spaces, NaN or Infinity): what an API
# client should send. Anything else is MALFORMED rather than guessed at.
_DECIMAL_TEXT = re.compile(r"([+-]?)(?:([0-9]+)(?:\.([0-9]*))?|\.([0-9]+))")
_MAX_TEXT = 100  # characters: refuses absurd inputs before any big-int work
_MAX_DIGITS = 40  # integer digits beyond which a value is "too large" without further arithmetic
DEFAULT_SCALE_LIMIT = 10**9  # default max price / max qty, in ticks / lots (product < 2^62)
DEFAULT_BAND_BPS = 500


class EdgeReject(ValueError):
    """A value the edge cannot hand to the engine; `reason` goes into cmd.reject."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class InstrumentError(ValueError):
    """An instrument definition that cannot be built (one-line message)."""


@dataclass(frozen=True, slots=True)
class _Unit:
    """A tick or lot size as mantissa x 10^-places (mantissa a positive int, places >= 0)."""

    mantissa: int
    places: int

    @classmethod
    def of(cls, mantissa: int, exponent: int) -> _Unit:
        """The unit mantissa x 10^exponent, exactly (the parts of a positive value from `_parts`)."""
        if exponent >= 0:
            return cls(mantissa * 10**exponent, 0)
        return cls(mantissa, -exponent)


@dataclass(frozen=True, slots=True)
class FieldRules:
    """Which reason each kind of bad value of one command field gets."""

    name: str
    negative: Reason  # below zero
    too_large: Reason  # beyond int64 once in units: certainly above any instrument maximum
    off_grid: Reason


PRICE = FieldRules("price", Reason.INVALID_PRICE, Reason.PRICE_ABOVE_MAX, Reason.OFF_TICK)
STOP_PRICE = FieldRules("stop_price", Reason.INVALID_STOP_PRICE, Reason.INVALID_STOP_PRICE, Reason.OFF_TICK)
QTY = FieldRules("qty", Reason.INVALID_QTY, Reason.QTY_ABOVE_MAX, Reason.OFF_LOT)
DISPLAY_QTY = FieldRules("display_qty", Reason.INVALID_DISPLAY_QTY, Reason.INVALID_DISPLAY_QTY,
                         Reason.OFF_LOT)


def _parts(value: object, what: str) -> tuple[bool, int, int]:
    """(negative, mantissa, exponent) with value = -+ mantissa x 10^exponent and no trailing zeros
    in a non-zero mantissa; EdgeReject(MALFORMED) for anything but a plain decimal string, an int or
    a finite Decimal (what a JSON parser with parse_float=Decimal gives)."""
    if isinstance(value, str):  # the common case, parsed without Decimal for speed
        if len(value) > _MAX_TEXT:
            raise EdgeReject(Reason.MALFORMED, f"{what} is longer than {_MAX_TEXT} characters")
        match = _DECIMAL_TEXT.fullmatch(value)
        if match is None:
            raise EdgeReject(Reason.MALFORMED, f"{what} {value!r} is not a plain decimal number")
        sign, whole, fraction = match.group(1), match.group(2) or "", (match.group(3) or match.group(4) or "")
        fraction = fraction.rstrip("0")
        mantissa = int(whole + fraction) if whole or fraction else 0
        exponent = -len(fraction)
        negative = sign == "-"
    elif isinstance(value, bool):  # bool is an int subclass: true is not 1 here
        raise EdgeReject(Reason.MALFORMED, f"{what} must be a decimal string, not {value!r}")
    elif isinstance(value, int):
        negative, mantissa, exponent = value < 0, abs(value), 0
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise EdgeReject(Reason.MALFORMED, f"{what} must be finite, not {value}")
        sign_bit, digits, exponent = value.as_tuple()
        if len(digits) > _MAX_TEXT:
            raise EdgeReject(Reason.MALFORMED, f"{what} has more than {_MAX_TEXT} digits")
        negative, mantissa = bool(sign_bit), int("".join(map(str, digits)))
    else:
        raise EdgeReject(Reason.MALFORMED, f"{what} must be a decimal string, not {value!r}")
    if mantissa == 0:
        return False, 0, 0
    while mantissa % 10 == 0:
        mantissa //= 10
        exponent += 1
    return negative, mantissa, exponent


def parse_decimal(value: object, what: str = "value") -> Decimal:
    """A finite Decimal from a plain decimal string (or an int / Decimal); EdgeReject(MALFORMED) if not."""
    negative, mantissa, exponent = _parts(value, what)
    return Decimal((int(negative), tuple(map(int, str(mantissa))), exponent))


def _ratio(mantissa: int, exponent: int, unit: _Unit) -> tuple[int, int]:
    """(mantissa x 10^exponent) / unit as (numerator, denominator) of integers."""
    # unit = unit.mantissa x 10^-places, so the ratio is mantissa x 10^(exponent + places) / unit.mantissa.
    shift = exponent + unit.places
    if shift >= 0:
        return mantissa * 10**shift, unit.mantissa
    return mantissa, unit.mantissa * 10**-shift


def to_units(value: object, unit: _Unit, rules: FieldRules) -> int:
    """value / unit as an exact integer, or EdgeReject with the field's reason."""
    negative, mantissa, exponent = _parts(value, rules.name)
    if mantissa == 0:
        return 0
    if negative:
        raise EdgeReject(rules.negative, f"{rules.name} {value} is negative")
    if len(str(mantissa)) + exponent > _MAX_DIGITS:
        raise EdgeReject(rules.too_large, f"{rules.name} {value} is too large")
    # Without trailing zeros, a mantissa with more decimals than the unit cannot be a multiple of it.
    off_grid = exponent + unit.places < 0
    units, remainder = (0, 1) if off_grid else divmod(*_ratio(mantissa, exponent, unit))
    if remainder:
        raise EdgeReject(rules.off_grid, f"{rules.name} {value} is not a multiple of {unit_text(unit)}")
    if units > INT64_MAX:
        raise EdgeReject(rules.too_large, f"{rules.name} {value} is too large")
    return units


def from_units(count: int, unit: _Unit) -> str:
    """count x unit as a string with exactly unit.places decimals (the module's output rule)."""
    return _format_units(count, unit.mantissa, unit.places)


@functools.lru_cache(maxsize=1 << 16)  # event streams repeat the same prices and sizes a lot
def _format_units(count: int, mantissa: int, places: int) -> str:
    value = count * mantissa
    if places == 0:
        return str(value)
    digits = str(abs(value)).rjust(places + 1, "0")
    return f"{'-' if value < 0 else ''}{digits[:-places]}.{digits[-places:]}"


def unit_text(unit: _Unit) -> str:
    return from_units(1, unit)


def _amount(value: object, what: str) -> Decimal:
    try:
        return parse_decimal(value, what)
    except EdgeReject as exc:
        raise InstrumentError(str(exc)) from None


def _grid_size(value: object, what: str) -> _Unit:
    """A tick or lot size, exactly as given (never rounded to a Decimal context's precision)."""
    try:
        negative, mantissa, exponent = _parts(value, what)
    except EdgeReject as exc:
        raise InstrumentError(str(exc)) from None
    if negative or mantissa == 0:
        raise InstrumentError(f"{what} must be positive, not {value}")
    if exponent < -18:  # keeps every amount of the instrument within int64-sized arithmetic
        raise InstrumentError(f"{what} {value} has more than 18 decimals")
    if len(str(mantissa)) + exponent > _MAX_DIGITS:  # no price or quantity could be a multiple of it
        raise InstrumentError(f"{what} {value} is too large")
    return _Unit.of(mantissa, exponent)


def _limit_units(value: object, unit: _Unit, what: str, default: int) -> int:
    """A positive instrument limit, which must sit on the grid (in units; `default` if not given)."""
    if value is None:
        return default
    amount = _amount(value, what)
    if amount <= 0:
        raise InstrumentError(f"{what} must be positive, not {value}")
    try:
        return to_units(amount, unit, FieldRules(what, Reason.INVALID_INSTRUMENT, Reason.INVALID_INSTRUMENT,
                                                 Reason.INVALID_INSTRUMENT))
    except EdgeReject as exc:
        raise InstrumentError(str(exc)) from None


def _ceil_units(amount: Decimal, unit: _Unit, what: str) -> int:
    _, mantissa, exponent = _parts(amount, what)
    if len(str(mantissa)) + exponent > _MAX_DIGITS:  # before any big-int work
        raise InstrumentError(f"{what} {amount} is too large")
    numerator, denominator = _ratio(mantissa, exponent, unit)
    return -(-numerator // denominator)


@dataclass(frozen=True)
class Instrument:
    """One tradable pair: its decimal sizes and the engine's integer view of its limits."""

    symbol: str
    base: str
    quote: str
    tick: _Unit  # price grid
    lot: _Unit  # quantity grid
    max_price_ticks: int
    min_qty_lots: int
    max_qty_lots: int
    min_notional_units: int  # tick x lot units, rounded up: price x qty >= it <=> notional >= min
    min_notional: Decimal
    market_band_bps: int

    @classmethod
    def define(
        cls,
        symbol: str,
        base: str,
        quote: str,
        tick_size: object,
        lot_size: object,
        *,
        min_qty: object = None,
        max_qty: object = None,
        min_notional: object = None,
        max_price: object = None,
        market_band_bps: object = None,
    ) -> Instrument:
        """Validate a definition as the engine would, with one-line InstrumentError messages.

        Defaults: min_qty = one lot, max_qty = 10^9 lots, max_price = 10^9 ticks (their product
        stays below the engine's 2^62 limit), min_notional = 0, market_band_bps = 500 (5%).
        """
        for what, text in (("symbol", symbol), ("base", base), ("quote", quote)):
            if not isinstance(text, str) or not text or not text.isprintable() or " " in text:
                raise InstrumentError(f"{what} must be a non-empty string without spaces, not {text!r}")
        tick = _grid_size(tick_size, "tick_size")
        lot = _grid_size(lot_size, "lot_size")
        max_price_ticks = _limit_units(max_price, tick, "max_price", DEFAULT_SCALE_LIMIT)
        min_qty_lots = _limit_units(min_qty, lot, "min_qty", 1)
        max_qty_lots = _limit_units(max_qty, lot, "max_qty", DEFAULT_SCALE_LIMIT)
        if max_qty_lots < min_qty_lots:
            raise InstrumentError(f"max_qty {max_qty} is below min_qty {min_qty}")
        if max_price_ticks * max_qty_lots >= ENGINE_PRODUCT_LIMIT:
            raise InstrumentError("max_price x max_qty is too large for the engine (>= 2^62 units)")
        notional = Decimal(0) if min_notional is None else _amount(min_notional, "min_notional")
        if notional < 0:
            raise InstrumentError(f"min_notional must not be negative, not {min_notional}")
        notional_unit = _Unit(tick.mantissa * lot.mantissa, tick.places + lot.places)
        notional_units = 0 if notional.is_zero() else _ceil_units(notional, notional_unit, "min_notional")
        band = DEFAULT_BAND_BPS if market_band_bps is None else market_band_bps
        if isinstance(band, str) and band.isdigit():
            band = int(band)
        if isinstance(band, bool) or not isinstance(band, int) or not 1 <= band <= 10_000:
            raise InstrumentError(f"market_band_bps must be an integer in 1..10000, not {market_band_bps!r}")
        return cls(symbol, base, quote, tick, lot, max_price_ticks, min_qty_lots, max_qty_lots,
                   notional_units, notional, band)

    @property
    def tick_size(self) -> str:
        return unit_text(self.tick)

    @property
    def lot_size(self) -> str:
        return unit_text(self.lot)

    def describe(self) -> dict[str, str | int]:
        """The definition in the input vocabulary (decimal strings)."""
        return {
            "symbol": self.symbol, "base": self.base, "quote": self.quote,
            "tick_size": self.tick_size, "lot_size": self.lot_size,
            "min_qty": self.from_lots(self.min_qty_lots), "max_qty": self.from_lots(self.max_qty_lots),
            "min_notional": format(self.min_notional, "f"),
            "max_price": self.from_ticks(self.max_price_ticks),
            "market_band_bps": self.market_band_bps,
        }

    # Decimal string <-> integer conversions (EdgeReject on bad values).
    def to_ticks(self, value: object, rules: FieldRules = PRICE) -> int:
        return to_units(value, self.tick, rules)

    def to_lots(self, value: object, rules: FieldRules = QTY) -> int:
        return to_units(value, self.lot, rules)

    def from_ticks(self, ticks: int) -> str:
        return from_units(ticks, self.tick)

    def from_lots(self, lots: int) -> str:
        return from_units(lots, self.lot)

    def fill_add_command(self, cmd: np.void | np.ndarray, symbol_id: int,
                         funds: FundsLink | None = None) -> None:
        """Fill one command record as this instrument's ADD_INSTRUMENT (with its assets in funds mode)."""
        link = {} if funds is None else {
            "base_asset": funds.base_asset, "quote_asset": funds.quote_asset,
            "base_per_lot": funds.base_per_lot, "quote_per_tick_lot": funds.quote_per_tick_lot}
        set_instrument(cmd, symbol_id, max_price=self.max_price_ticks, min_qty=self.min_qty_lots,
                       max_qty=self.max_qty_lots, min_notional=self.min_notional_units,
                       market_band_bps=self.market_band_bps, **link)


class InstrumentRegistry:
    """symbol <-> engine symbol id; ids are 1, 2, ... in definition order."""

    def __init__(self) -> None:
        self._by_symbol: dict[str, tuple[int, Instrument]] = {}
        self._by_id: dict[int, Instrument] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[tuple[int, Instrument]]:
        return iter(self._by_id.items())

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._by_symbol

    def next_id(self) -> int:
        return max(self._by_id, default=0) + 1

    def add(self, instrument: Instrument, symbol_id: int | None = None) -> int:
        """Register under symbol_id (default: the next one); returns the id."""
        if instrument.symbol in self._by_symbol:
            raise InstrumentError(f"instrument {instrument.symbol} is already defined")
        symbol_id = self.next_id() if symbol_id is None else symbol_id
        if symbol_id in self._by_id or not 1 <= symbol_id <= MAX_SYMBOL_ID:
            raise InstrumentError(f"symbol id {symbol_id} is taken or out of range")
        self._by_symbol[instrument.symbol] = (symbol_id, instrument)
        self._by_id[symbol_id] = instrument
        return symbol_id

    def id_of(self, symbol: str) -> int | None:
        entry = self._by_symbol.get(symbol)
        return entry[0] if entry else None

    def get(self, symbol: str) -> Instrument | None:
        entry = self._by_symbol.get(symbol)
        return entry[1] if entry else None

    def by_id(self, symbol_id: int) -> Instrument | None:
        return self._by_id.get(symbol_id)
