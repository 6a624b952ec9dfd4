"""config/venue.toml -> typed, validated settings, with command-line overrides.

Overrides are `dotted.key=value` strings applied to the raw TOML tables before validation, so a
value from the command line is checked exactly like one from the file. Instruments are addressed by
symbol (`instruments.BTC-USDT.min_notional=5`, `instruments.BTC-USDT.fees.0.taker_bps=4`) or by
position (`instruments.0.tick_size=0.1`), assets by name (`assets.USDT.decimals=6`).
Every problem is a ConfigError with a one-line message naming the file and the key.

Funds mode (`venue run`) also needs: `[[assets]]` (name, decimals), which every instrument's base
and quote must name, so that its multipliers (base units per lot, quote units per tick x lot) are
exact; per instrument an optional fee schedule (`fees.<tier> = { maker_bps, taker_bps }`) and risk
limits (`reference_price`, `max_notional` in the quote asset); `[accounts]` defaults for accounts the
venue creates; `[demo.funding]`, what each demo account is given of each asset.
`[keys]` path: the directory of the gateways' API key store (venue/keys.py).
"""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from venue.assets import Asset, multipliers
from venue.instruments import PRICE, EdgeReject, Instrument, InstrumentError, parse_decimal
from venue.money import MAX_TIER

DEFAULT_CONFIG = Path("config") / "venue.toml"
# The file shipped next to the package: `venue run` works from any directory of a source checkout.
SHIPPED_CONFIG = Path(__file__).resolve().parent.parent / "config" / "venue.toml"

DURABILITY_MODES = ("sync", "async")
INSTRUMENT_KEYS = ("symbol", "base", "quote", "tick_size", "lot_size", "min_qty", "max_qty", "min_notional",
                   "max_price", "market_band_bps")
MARKET_KEYS = ("fees", "reference_price", "max_notional")  # funds-mode settings of an instrument
LIST_SECTIONS = {"instruments": "symbol", "assets": "name"}  # arrays of tables, addressed by this key
SECTIONS = ("journal", "accounts", "demo", "assets", "instruments", "keys", "engine", "sbe", "metrics")
WAIT_STRATEGIES = ("spin", "yield", "block")  # core_cython.ring.WAIT_STRATEGIES
MAKER_BPS = (-1000, 1000)  # the engine's bounds (INVALID_FEES)
TAKER_BPS = (0, 1000)


class ConfigError(ValueError):
    """A configuration problem, as one line fit for the CLI."""


@dataclass(frozen=True)
class JournalSettings:
    path: str = "var/journal"
    durability: str = field(default="sync", metadata={"choices": DURABILITY_MODES})
    snapshot_interval: int = field(default=100_000, metadata={"min": 0})  # events; 0 = never
    # async mode only: write through LMDB's map (auto = where the filesystem allows it safely)
    writemap: str = field(default="auto", metadata={"choices": ("auto", "on", "off")})


@dataclass(frozen=True)
class KeySettings:
    """The API key store (venue/keys.py): an LMDB directory holding the keys, secrets encrypted."""

    path: str = "var/keys"


@dataclass(frozen=True)
class EngineSettings:
    """The engine process and its rings (venue/engine_service.py)."""

    run_dir: str = ""  # where the rings live; "" = /dev/shm/venue-<hash of the journal path>
    command_ring_slots: int = field(default=65536, metadata={"min": 64, "power_of_two": True})
    outcome_ring_slots: int = field(default=262144, metadata={"min": 64, "power_of_two": True})
    max_batch: int = field(default=1024, metadata={"min": 1})  # commands per group commit at most
    # block: sleep on a futex when idle (the only sane choice with 2 cores); spin/yield burn a core
    wait_strategy: str = field(default="block", metadata={"choices": WAIT_STRATEGIES})
    # "block" polls this long before sleeping; 0 when the gateways share the engine's CPU (a spin
    # there only delays the gateway that would send the engine's answer out)
    spin_us: float = field(default=20.0, metadata={"min": 0, "max": 1000})
    # SCHED_FIFO priority of the engine process (0 = normal scheduling). Needs CAP_SYS_NICE and the
    # "block" wait: a FIFO process that spins starves the machine until RT throttling stops it.
    rt_priority: int = field(default=0, metadata={"min": 0})
    cpus: str = field(default="", metadata={"cpu_list": True})  # CPUs to pin to ("1", "0-1"); "" = any


@dataclass(frozen=True)
class SbeSettings:
    """The SBE order-entry gateway (sbe_gateway/server.py)."""

    host: str = "127.0.0.1"
    port: int = field(default=7001, metadata={"min": 0, "max": 65535})  # 0 = any free port
    throttle_per_s: float = field(default=10_000.0, metadata={"min": 0})  # messages per session; 0 = off
    throttle_burst: float = field(default=1_000.0, metadata={"min": 1})  # messages above the rate at once
    max_sessions: int = field(default=1024, metadata={"min": 1})
    logon_timeout_s: float = field(default=5.0, metadata={"min": 0.1})
    max_frame: int = field(default=4096, metadata={"min": 256, "max": 32768})
    max_pending_out: int = field(default=8 << 20, metadata={"min": 65536})  # bytes queued to a client
    rt_priority: int = field(default=0, metadata={"min": 0})  # SCHED_FIFO priority; 0 = normal
    # After publishing a request, spin up to this long for the engine's answer instead of sleeping
    # (a sleep + wake-up costs tens of µs on a VM); 0 = always sleep.
    spin_us: float = field(default=0.0, metadata={"min": 0, "max": 1000})
    # Never sleep: poll the sockets and the outcome ring, yielding the CPU between rounds. Costs the
    # CPU it runs on; for a core given to the venue (sbe.cpus), where no wake-up then has to wait
    # for a halted virtual CPU.
    busy_poll: bool = False
    cpus: str = field(default="", metadata={"cpu_list": True})  # CPUs to pin to ("1", "0-1"); "" = any
    log_sessions: bool = True  # a line per logon and per closed session (why it closed)


@dataclass(frozen=True)
class MetricsSettings:
    """Prometheus /metrics, served by `venue run`'s supervisor (venue/metrics.py)."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = field(default=9800, metadata={"min": 0, "max": 65535})  # 0 = any free port


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
    funding: dict[str, str] = field(default_factory=dict)  # asset -> deposit per demo account (decimal)


@dataclass(frozen=True)
class AccountSettings:
    """Defaults of the accounts the venue creates (demo accounts, `venue match --funds` accounts)."""

    max_open_orders: int = field(default=1000, metadata={"min": 1})
    tier: int = field(default=0, metadata={"min": 0, "max": MAX_TIER})


@dataclass(frozen=True)
class MarketSettings:
    """An instrument's funds-mode settings, sent as SET_FEES / SET_LIMITS."""

    base_per_lot: int
    quote_per_tick_lot: int
    fees: tuple[tuple[int, int, int], ...] = ()  # (tier, maker bps, taker bps), by tier
    reference_price: str | None = None  # decimal, on the tick grid; None = none
    reference_price_ticks: int = 0
    max_notional: str | None = None  # decimal, in the quote asset; None = none
    max_notional_units: int = 0

    def describe(self) -> dict[str, Any]:
        """The settings as JSON-able values (what the journal's meta records as sent)."""
        return {"fees": {str(t): [m, k] for t, m, k in self.fees}, "reference_price": self.reference_price,
                "max_notional": self.max_notional}


@dataclass(frozen=True)
class VenueConfig:
    journal: JournalSettings
    demo: DemoSettings
    instruments: tuple[Instrument, ...]
    source: str = "<defaults>"  # the file it came from, for messages
    assets: tuple[Asset, ...] = ()
    accounts: AccountSettings = field(default_factory=AccountSettings)
    markets: dict[str, MarketSettings] = field(default_factory=dict)  # by symbol
    keys: KeySettings = field(default_factory=KeySettings)
    engine: EngineSettings = field(default_factory=EngineSettings)
    sbe: SbeSettings = field(default_factory=SbeSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)

    def instrument(self, symbol: str) -> Instrument | None:
        return next((i for i in self.instruments if i.symbol == symbol), None)

    def asset(self, name: str) -> Asset | None:
        return next((a for a in self.assets if a.name == name), None)


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
        unknown = set(raw) - set(SECTIONS)
        if unknown:
            raise ConfigError(f"unknown section {sorted(unknown)[0]}")
        journal = _build_section(JournalSettings, raw.get("journal", {}), "journal")
        accounts = _build_section(AccountSettings, raw.get("accounts", {}), "accounts")
        demo = _build_section(DemoSettings, raw.get("demo", {}), "demo")
        keys = _build_section(KeySettings, raw.get("keys", {}), "keys")
        engine = _build_section(EngineSettings, raw.get("engine", {}), "engine")
        sbe = _build_section(SbeSettings, raw.get("sbe", {}), "sbe")
        metrics = _build_section(MetricsSettings, raw.get("metrics", {}), "metrics")
        assets = _build_assets(raw.get("assets", []))
        instruments, markets = _build_instruments(raw.get("instruments", []), assets)
        _check_demo_mids(demo, instruments)
        _check_demo_funding(demo, assets)
        _check_scheduling(engine, sbe)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return VenueConfig(journal, demo, instruments, source, assets, accounts, markets, keys, engine, sbe,
                       metrics)


def apply_override(raw: dict[str, Any], override: str) -> None:
    """Set `dotted.key=value` in the raw tables; the value stays a string until validation."""
    key, sep, value = override.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(parts):
        raise ConfigError(f"override {override!r} is not of the form section.key=value")
    node: Any = raw
    for depth, part in enumerate(parts[:-1]):
        if isinstance(node, list):
            node = _list_table(node, part, parts[0])
            continue
        child = node.setdefault(part, [] if depth == 0 and part in LIST_SECTIONS else {})
        if not isinstance(child, dict | list):
            raise ConfigError(f"{'.'.join(parts[:depth + 1])} is a value, not a table (in {override!r})")
        node = child
    if isinstance(node, list):
        key = LIST_SECTIONS.get(parts[0], "name").upper()
        raise ConfigError(f"override {override!r} must name a field: {parts[0]}.{key}.field")
    node[parts[-1]] = value.strip()


def _list_table(tables: list[dict[str, Any]], name: str, section: str) -> dict[str, Any]:
    if name.isdigit() and int(name) < len(tables):
        return tables[int(name)]
    key = LIST_SECTIONS.get(section, "name")
    for table in tables:
        if table.get(key) == name:
            return table
    raise ConfigError(f"no {section.rstrip('s')} {name} to override")


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
    if metadata.get("cpu_list"):
        from venue.cpu import CpuListError, parse_cpu_list

        try:
            parse_cpu_list(value)
        except CpuListError as exc:
            raise ConfigError(f"{key}: {exc}") from None
    choices = metadata.get("choices")
    if choices is not None and value not in choices:
        raise ConfigError(f"{key} must be one of {', '.join(choices)}, not {value!r}")
    if "min" in metadata and value < metadata["min"]:
        raise ConfigError(f"{key} must be >= {metadata['min']}, not {value!r}")
    if "max" in metadata and value > metadata["max"]:
        raise ConfigError(f"{key} must be <= {metadata['max']}, not {value!r}")
    if metadata.get("power_of_two") and value & (value - 1):
        raise ConfigError(f"{key} must be a power of two, not {value!r}")


def _build_assets(tables: object) -> tuple[Asset, ...]:
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ConfigError("assets must be an array of tables ([[assets]])")
    assets: list[Asset] = []
    for index, table in enumerate(tables):
        where = f"assets.{table.get('name', index)}"
        unknown = set(table) - {"name", "decimals"}
        if unknown:
            raise ConfigError(f"unknown setting {where}.{sorted(unknown)[0]}")
        missing = [k for k in ("name", "decimals") if k not in table]
        if missing:
            raise ConfigError(f"{where} has no {missing[0]}")
        try:
            asset = Asset.define(table["name"], table["decimals"])
        except InstrumentError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        if any(a.name == asset.name for a in assets):
            raise ConfigError(f"asset {asset.name} is defined twice")
        assets.append(asset)
    return tuple(assets)


def _build_instruments(tables: object, assets: tuple[Asset, ...]
                       ) -> tuple[tuple[Instrument, ...], dict[str, MarketSettings]]:
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ConfigError("instruments must be an array of tables ([[instruments]])")
    if not tables:
        raise ConfigError("no [[instruments]] defined")
    instruments: list[Instrument] = []
    markets: dict[str, MarketSettings] = {}
    for index, table in enumerate(tables):
        where = f"instruments.{table.get('symbol', index)}"
        unknown = set(table) - set(INSTRUMENT_KEYS) - set(MARKET_KEYS)
        if unknown:
            raise ConfigError(f"unknown setting {where}.{sorted(unknown)[0]}")
        missing = [k for k in ("symbol", "base", "quote", "tick_size", "lot_size") if k not in table]
        if missing:
            raise ConfigError(f"{where} has no {missing[0]}")
        try:
            instrument = Instrument.define(**{k: v for k, v in table.items() if k in INSTRUMENT_KEYS})
        except InstrumentError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        if any(i.symbol == instrument.symbol for i in instruments):
            raise ConfigError(f"instrument {instrument.symbol} is defined twice")
        instruments.append(instrument)
        markets[instrument.symbol] = _build_market(instrument, table, assets, where)
    return tuple(instruments), markets


def _build_market(instrument: Instrument, table: dict[str, Any], assets: tuple[Asset, ...],
                  where: str) -> MarketSettings:
    by_name = {a.name: a for a in assets}
    for role in ("base", "quote"):
        name = getattr(instrument, role)
        if name not in by_name:
            raise ConfigError(f"{where}: {role} asset {name} is not defined in [[assets]]")
    base, quote = by_name[instrument.base], by_name[instrument.quote]
    if base == quote:
        raise ConfigError(f"{where}: base and quote must be different assets")
    try:
        base_per_lot, quote_per_tick_lot = multipliers(instrument, base, quote)
    except InstrumentError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    fees = _build_fees(table.get("fees", {}), f"{where}.fees")
    reference = table.get("reference_price")
    reference_ticks = 0
    if reference is not None:
        try:
            reference_ticks = instrument.to_ticks(parse_decimal(reference, "reference_price"), PRICE)
        except EdgeReject as exc:
            raise ConfigError(f"{where}.reference_price: {exc}") from None
        if not 0 < reference_ticks <= instrument.max_price_ticks:
            raise ConfigError(f"{where}.reference_price must be positive and at most max_price, "
                              f"not {reference}")
        reference = instrument.from_ticks(reference_ticks)
    max_notional = table.get("max_notional")
    max_notional_units = 0
    if max_notional is not None:
        try:
            max_notional_units = quote.to_units(max_notional, "max_notional")
        except EdgeReject as exc:
            raise ConfigError(f"{where}.max_notional: {exc}") from None
        if max_notional_units <= 0:
            raise ConfigError(f"{where}.max_notional must be positive, not {max_notional}")
        max_notional = quote.format(max_notional_units)
    return MarketSettings(base_per_lot, quote_per_tick_lot, fees, reference, reference_ticks, max_notional,
                          max_notional_units)


def _build_fees(table: object, where: str) -> tuple[tuple[int, int, int], ...]:
    """`fees.<tier> = { maker_bps = M, taker_bps = T }` -> ((tier, M, T), ...) sorted by tier."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table of tiers: fees.0 = {{ maker_bps = 2, taker_bps = 5 }}")
    fees = []
    for tier_text, rates in table.items():
        key = f"{where}.{tier_text}"
        if not str(tier_text).isdigit() or int(tier_text) > MAX_TIER:
            raise ConfigError(f"{key}: a fee tier is an integer in 0..{MAX_TIER}")
        if not isinstance(rates, dict):
            raise ConfigError(f"{key} must be a table {{ maker_bps = M, taker_bps = T }}")
        unknown = set(rates) - {"maker_bps", "taker_bps"}
        if unknown:
            raise ConfigError(f"unknown setting {key}.{sorted(unknown)[0]}")
        values = []
        for name, (low, high) in (("maker_bps", MAKER_BPS), ("taker_bps", TAKER_BPS)):
            if name not in rates:
                raise ConfigError(f"{key} has no {name}")
            value = _coerce(rates[name], int, f"{key}.{name}")
            _check_bounds(value, {"min": low, "max": high}, f"{key}.{name}")
            values.append(value)
        if values[0] + values[1] < 0:
            raise ConfigError(f"{key}: the maker rebate exceeds the taker fee (maker_bps + taker_bps < 0)")
        fees.append((int(tier_text), values[0], values[1]))
    return tuple(sorted(fees))


def _check_scheduling(engine: EngineSettings, sbe: SbeSettings) -> None:
    """A SCHED_FIFO process that never sleeps starves everything else on its CPU (its yields only
    go to other real-time tasks) until RT throttling stops it for 50 ms."""
    if engine.rt_priority > 0 and engine.wait_strategy != "block":
        raise ConfigError(f"engine.rt_priority needs engine.wait_strategy = \"block\", "
                          f"not {engine.wait_strategy!r}")
    if sbe.rt_priority > 0 and sbe.busy_poll:
        raise ConfigError("sbe.rt_priority and sbe.busy_poll cannot go together")


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


def _check_demo_funding(demo: DemoSettings, assets: tuple[Asset, ...]) -> None:
    by_name = {a.name: a for a in assets}
    for name, amount in demo.funding.items():
        asset = by_name.get(name)
        if asset is None:
            raise ConfigError(f"demo.funding.{name}: no such asset in [[assets]]")
        try:
            asset.to_units(amount, f"demo.funding.{name}", positive=True)
        except EdgeReject as exc:
            raise ConfigError(str(exc)) from None


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value
