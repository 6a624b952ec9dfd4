"""Assets at the edge: names <-> engine asset ids, decimal amounts <-> integer smallest units.

An asset with `decimals` d counts in units of 10^-d ("1.5" USDT with 6 decimals = 1_500_000). An
amount with more decimals than its asset is refused, never rounded. An instrument in funds mode
links its base and quote assets to its tick and lot through two exact multipliers (see
core_cython/README.md, "Funds mode"); `multipliers` derives them and refuses a grid finer than an
asset's smallest unit.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from core_cython.records import Reason
from venue.instruments import INT64_MAX, EdgeReject, Instrument, InstrumentError, _parts, _Unit, from_units

MAX_ASSET_ID = 4095  # the engine's limit
MAX_DECIMALS = 18
UNKNOWN_ASSET_ID = 0xFFFF_FFFF  # never assigned: the engine answers UNKNOWN_ASSET for it
FUNDS_PRODUCT_LIMIT = 2**61  # max price x max qty x quote_per_tick_lot and max qty x base_per_lot stay below

MAX_AMOUNT_DIGITS = 40  # integer digits beyond which an amount is "too large" without big-int work


@dataclass(frozen=True, slots=True)
class Asset:
    name: str
    decimals: int

    @classmethod
    def define(cls, name: object, decimals: object) -> Asset:
        if not isinstance(name, str) or not name or not name.isprintable() or " " in name or name[0] == "@":
            raise InstrumentError(f"asset name must be a non-empty string without spaces or a leading @, "
                                  f"not {name!r}")
        if isinstance(decimals, str) and decimals.isdigit():  # from a command-line override
            decimals = int(decimals)
        if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= MAX_DECIMALS:
            raise InstrumentError(f"asset {name}: decimals must be an integer in 0..{MAX_DECIMALS}, "
                                  f"not {decimals!r}")
        return cls(name, decimals)

    @property
    def unit(self) -> _Unit:
        return _Unit(1, self.decimals)

    def to_units(self, value: object, what: str = "amount", *, signed: bool = False,
                 positive: bool = False) -> int:
        """A decimal amount as smallest units; EdgeReject MALFORMED (not a plain number) or INVALID_AMOUNT
        (negative unless signed, zero if positive, more decimals than the asset has, beyond int64)."""
        negative, mantissa, exponent = _parts(value, what)
        if negative and not signed:
            raise EdgeReject(Reason.INVALID_AMOUNT, f"{what} {value} is negative")
        if mantissa == 0:
            if positive:
                raise EdgeReject(Reason.INVALID_AMOUNT, f"{what} must be positive, not {value}")
            return 0
        if exponent + self.decimals < 0:  # _parts strips trailing zeros: this is a real extra digit
            raise EdgeReject(Reason.INVALID_AMOUNT, f"{what} {value} has more than {self.decimals} decimals "
                             f"(the precision of {self.name})")
        if len(str(mantissa)) + exponent + self.decimals > MAX_AMOUNT_DIGITS:
            raise EdgeReject(Reason.INVALID_AMOUNT, f"{what} {value} is too large")
        units = mantissa * 10 ** (exponent + self.decimals)
        if units > INT64_MAX:
            raise EdgeReject(Reason.INVALID_AMOUNT, f"{what} {value} is too large")
        return -units if negative else units

    def format(self, units: int) -> str:
        """units as a decimal string with exactly `decimals` places ("-1.500000")."""
        return from_units(units, self.unit)


class AssetRegistry:
    """asset name <-> engine asset id (1..4095)."""

    def __init__(self) -> None:
        self._by_name: dict[str, tuple[int, Asset]] = {}
        self._by_id: dict[int, Asset] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[tuple[int, Asset]]:
        return iter(sorted(self._by_id.items()))

    def next_id(self) -> int:
        return max(self._by_id, default=0) + 1

    def add(self, asset: Asset, asset_id: int | None = None) -> int:
        if asset.name in self._by_name:
            raise InstrumentError(f"asset {asset.name} is already defined")
        asset_id = self.next_id() if asset_id is None else asset_id
        if asset_id in self._by_id or not 1 <= asset_id <= MAX_ASSET_ID:
            raise InstrumentError(f"asset id {asset_id} is taken or out of range")
        self._by_name[asset.name] = (asset_id, asset)
        self._by_id[asset_id] = asset
        return asset_id

    def id_of(self, name: str) -> int | None:
        entry = self._by_name.get(name)
        return entry[0] if entry else None

    def get(self, name: str) -> Asset | None:
        entry = self._by_name.get(name)
        return entry[1] if entry else None

    def by_id(self, asset_id: int) -> Asset | None:
        return self._by_id.get(asset_id)


@dataclass(frozen=True, slots=True)
class FundsLink:
    """What ADD_INSTRUMENT needs in funds mode beyond the core definition."""

    base_asset: int
    quote_asset: int
    base_per_lot: int
    quote_per_tick_lot: int


def _scaled(mantissa: int, places: int, decimals: int) -> int | None:
    """mantissa x 10^-places in units of 10^-decimals, or None if that is not a whole number."""
    shift = decimals - places
    if shift >= 0:
        return mantissa * 10**shift
    units, remainder = divmod(mantissa, 10**-shift)
    return None if remainder else units


def multipliers(instrument: Instrument, base: Asset, quote: Asset) -> tuple[int, int]:
    """(base units per lot, quote units per tick x lot), exact; InstrumentError if either is fractional
    or the instrument's limits would overflow the engine's funds arithmetic."""
    tick, lot = instrument.tick, instrument.lot
    base_per_lot = _scaled(lot.mantissa, lot.places, base.decimals)
    if base_per_lot is None:
        raise InstrumentError(f"lot_size {instrument.lot_size} is finer than {base.name}'s "
                              f"{base.decimals} decimals")
    quote_per_tick_lot = _scaled(tick.mantissa * lot.mantissa, tick.places + lot.places, quote.decimals)
    if quote_per_tick_lot is None:
        raise InstrumentError(f"tick_size {instrument.tick_size} x lot_size {instrument.lot_size} is finer "
                              f"than {quote.name}'s {quote.decimals} decimals")
    if instrument.max_price_ticks * instrument.max_qty_lots * quote_per_tick_lot >= FUNDS_PRODUCT_LIMIT:
        raise InstrumentError(f"max_price x max_qty is too large for funds mode (>= 2^61 {quote.name} units)")
    if instrument.max_qty_lots * base_per_lot >= FUNDS_PRODUCT_LIMIT:
        raise InstrumentError(f"max_qty is too large for funds mode (>= 2^61 {base.name} units)")
    return base_per_lot, quote_per_tick_lot


def funds_link(instrument: Instrument, assets: AssetRegistry) -> FundsLink:
    """The instrument's assets (which must be registered) and multipliers; InstrumentError if not possible."""
    ids = []
    for role, name in (("base", instrument.base), ("quote", instrument.quote)):
        asset_id = assets.id_of(name)
        if asset_id is None:
            raise InstrumentError(f"{role} asset {name} is not defined")
        ids.append(asset_id)
    if ids[0] == ids[1]:
        raise InstrumentError("base and quote must be different assets")
    base, quote = assets.by_id(ids[0]), assets.by_id(ids[1])
    assert base is not None and quote is not None
    return FundsLink(ids[0], ids[1], *multipliers(instrument, base, quote))
