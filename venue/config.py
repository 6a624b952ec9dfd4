"""config/venue.toml -> typed, validated settings, with command-line overrides.

Overrides are `dotted.key=value` strings applied to the raw TOML tables before validation, so a
value from the command line is checked exactly like one from the file. Instruments are addressed by
symbol (`instruments.BTC-USDT.min_notional=5`) or by position (`instruments.0.tick_size=0.1`).
Every problem is a ConfigError with a one-line message naming the file and the key.
"""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from venue.instruments import EdgeReject, Instrument, InstrumentError, parse_decimal

DEFAULT_CONFIG = Path("config") / "venue.toml"
# The file shipped next to the package: `venue run` works from any directory of a source checkout.
SHIPPED_CONFIG = Path(__file__).resolve().parent.parent / "config" / "venue.toml"

DURABILITY_MODES = ("sync", "async")
INSTRUMENT_KEYS = ("symbol", "base", "quote", "tick_size", "lot_size", "min_qty", "max_qty", "min_notional",
                   "max_price", "market_band_bps")


class ConfigError(ValueError):
    """A configuration problem, as one line fit for the CLI."""


@dataclass(frozen=True)
class JournalSettings:
    path: str = "var/journal"
    durability: str = field(default="sync", metadata={"choices": DURABILITY_MODES})
    snapshot_interval: int = field(default=100_000, metadata={"min": 0})  # events; 0 = never


@dataclass(frozen=True)
class DemoSettings:
    seed: int = 42
    accounts: int = field(default=4, metadata={"min": 1})
    duration: float = field(default=5.0, metadata={"min": 0})  # seconds; 0 = no time limit
    orders: int = field(default=0, metadata={"min": 0})  # 0 = no count limit
    rate: float = field(default=200.0, metadata={"min": 0})  # orders/s; 0 = unthrottled
    market_share: float = field(default=0.15, metadata={"min": 0, "max": 1})
    spread_ticks: int = field(default=20, metadata={"min": 1})
    summary_every: float = field(default=1.0, metadata={"min": 0.01})  # seconds
    mid: dict[str, str] = field(default_factory=dict)  # symbol -> reference price (decimal string)


@dataclass(frozen=True)
class VenueConfig:
    journal: JournalSettings
    demo: DemoSettings
    instruments: tuple[Instrument, ...]
    source: str = "<defaults>"  # the file it came from, for messages

    def instrument(self, symbol: str) -> Instrument | None:
        return next((i for i in self.instruments if i.symbol == symbol), None)


def find_config(explicit: str | Path | None) -> Path:
    """The file to load: the one given, else ./config/venue.toml, else the one shipped in the checkout."""
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"config file {path} not found")
        return path
    for candidate in (DEFAULT_CONFIG, SHIPPED_CONFIG):
        if candidate.is_file():
            return candidate
    raise ConfigError(f"no {DEFAULT_CONFIG} here; pass --config PATH")


def load_config(path: str | Path | None = None, overrides: typing.Iterable[str] = ()) -> VenueConfig:
    source = find_config(path)
    try:
        raw = tomllib.loads(source.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source}: cannot read: {exc}") from None
    return parse_config(raw, overrides, source=str(source))


def parse_config(
    raw: dict[str, Any], overrides: typing.Iterable[str] = (), *, source: str = "<config>"
) -> VenueConfig:
    """Validate raw TOML tables (after applying overrides) into a VenueConfig."""
    raw = _deep_copy(raw)
    try:
        for override in overrides:
            apply_override(raw, override)
        unknown = set(raw) - {"journal", "demo", "instruments"}
        if unknown:
            raise ConfigError(f"unknown section {sorted(unknown)[0]}")
        journal = _build_section(JournalSettings, raw.get("journal", {}), "journal")
        demo = _build_section(DemoSettings, raw.get("demo", {}), "demo")
        instruments = _build_instruments(raw.get("instruments", []))
        _check_demo_mids(demo, instruments)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return VenueConfig(journal, demo, instruments, source)


def apply_override(raw: dict[str, Any], override: str) -> None:
    """Set `dotted.key=value` in the raw tables; the value stays a string until validation."""
    key, sep, value = override.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(parts):
        raise ConfigError(f"override {override!r} is not of the form section.key=value")
    node: Any = raw
    for depth, part in enumerate(parts[:-1]):
        if isinstance(node, list):
            node = _instrument_table(node, part)
            continue
        child = node.setdefault(part, [] if depth == 0 and part == "instruments" else {})
        if not isinstance(child, dict | list):
            raise ConfigError(f"{'.'.join(parts[:depth + 1])} is a value, not a table (in {override!r})")
        node = child
    if isinstance(node, list):
        raise ConfigError(f"override {override!r} must name an instrument field: instruments.SYMBOL.field")
    node[parts[-1]] = value.strip()


def _instrument_table(instruments: list[dict[str, Any]], name: str) -> dict[str, Any]:
    if name.isdigit() and int(name) < len(instruments):
        return instruments[int(name)]
    for table in instruments:
        if table.get("symbol") == name:
            return table
    raise ConfigError(f"no instrument {name} to override")


def _build_section(cls: type, table: object, where: str) -> Any:
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(table) - set(known)
    if unknown:
        raise ConfigError(f"unknown setting {where}.{sorted(unknown)[0]}")
    values = {}
    for name, value in table.items():
        spec, key = known[name], f"{where}.{name}"
        values[name] = _coerce(value, hints[name], key)
        _check_bounds(values[name], spec.metadata, key)
    return cls(**values)


def _coerce(value: object, hint: Any, key: str) -> Any:
    """A TOML value (or an override's string) as the field's type."""
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
    elif hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif hint is str:
        if isinstance(value, str):
            return value
    elif typing.get_origin(hint) is dict:
        if isinstance(value, dict):
            return {str(k): _coerce(v, typing.get_args(hint)[1], f"{key}.{k}") for k, v in value.items()}
    else:  # a programming error, not a user one
        raise TypeError(f"unsupported setting type {hint!r} for {key}")
    expected = getattr(hint, "__name__", "table")
    raise ConfigError(f"{key} must be {_article(expected)} {expected}, not {value!r}")


def _article(type_name: str) -> str:
    return "an" if type_name[0] in "aeiou" else "a"


def _check_bounds(value: Any, metadata: typing.Mapping[str, Any], key: str) -> None:
    choices = metadata.get("choices")
    if choices is not None and value not in choices:
        raise ConfigError(f"{key} must be one of {', '.join(choices)}, not {value!r}")
    if "min" in metadata and value < metadata["min"]:
        raise ConfigError(f"{key} must be >= {metadata['min']}, not {value!r}")
    if "max" in metadata and value > metadata["max"]:
        raise ConfigError(f"{key} must be <= {metadata['max']}, not {value!r}")


def _build_instruments(tables: object) -> tuple[Instrument, ...]:
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ConfigError("instruments must be an array of tables ([[instruments]])")
    if not tables:
        raise ConfigError("no [[instruments]] defined")
    instruments: list[Instrument] = []
    for index, table in enumerate(tables):
        where = f"instruments.{table.get('symbol', index)}"
        unknown = set(table) - set(INSTRUMENT_KEYS)
        if unknown:
            raise ConfigError(f"unknown setting {where}.{sorted(unknown)[0]}")
        missing = [k for k in ("symbol", "base", "quote", "tick_size", "lot_size") if k not in table]
        if missing:
            raise ConfigError(f"{where} has no {missing[0]}")
        try:
            instrument = Instrument.define(**table)
        except InstrumentError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        if any(i.symbol == instrument.symbol for i in instruments):
            raise ConfigError(f"instrument {instrument.symbol} is defined twice")
        instruments.append(instrument)
    return tuple(instruments)


def _check_demo_mids(demo: DemoSettings, instruments: tuple[Instrument, ...]) -> None:
    by_symbol = {i.symbol: i for i in instruments}
    for symbol, price in demo.mid.items():
        instrument = by_symbol.get(symbol)
        if instrument is None:
            raise ConfigError(f"demo.mid.{symbol}: no such instrument")
        try:
            ticks = instrument.to_ticks(parse_decimal(price, f"demo.mid.{symbol}"))
        except EdgeReject as exc:
            raise ConfigError(f"demo.mid.{symbol}: {exc}") from None
        if not demo.spread_ticks < ticks <= instrument.max_price_ticks - demo.spread_ticks:
            raise ConfigError(f"demo.mid.{symbol} {price} leaves no room for demo.spread_ticks around it")


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value
