"""config/venue.toml loading, command-line overrides, and one-line errors for bad configs."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from venue.config import SHIPPED_CONFIG, ConfigError, load_config, parse_config

MINIMAL = """
[journal]
path = "j"

[[assets]]
name = "BTC"
decimals = 8

[[assets]]
name = "USDT"
decimals = 6

[[instruments]]
symbol = "BTC-USDT"
base = "BTC"
quote = "USDT"
tick_size = "0.01"
lot_size = "0.0001"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "venue.toml"
    path.write_text(text)
    return path


def test_shipped_config_loads_with_typed_values() -> None:
    config = load_config(SHIPPED_CONFIG)
    assert config.journal.durability in ("sync", "async")
    assert config.journal.snapshot_interval > 0
    assert [i.symbol for i in config.instruments] == ["BTC-USDT", "ETH-USDT"]
    btc = config.instruments[0]
    assert (btc.tick_size, btc.lot_size) == ("0.01", "0.0001")
    assert btc.max_price_ticks == 1_000_000_000  # 10,000,000.00 / 0.01
    assert btc.max_qty_lots == 10_000_000  # 1000 / 0.0001
    assert btc.min_notional_units == 1_000_000  # 1 USDT / (0.01 x 0.0001)
    assert config.demo.mid["BTC-USDT"] == "60000.00"
    assert isinstance(config.demo.rate, float) and isinstance(config.demo.accounts, int)


def test_defaults_fill_what_the_file_omits(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL))
    assert config.journal.path == "j"
    assert config.journal.durability == "sync"
    assert config.demo.seed == 42
    btc = config.instruments[0]
    assert btc.min_qty_lots == 1 and btc.max_qty_lots == 10**9 and btc.max_price_ticks == 10**9
    assert btc.min_notional == Decimal(0) and btc.market_band_bps == 500


def test_generic_overrides_reach_every_section(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL), [
        "journal.durability=async",
        "journal.snapshot_interval=500",
        "demo.rate=0",
        "demo.mid.BTC-USDT=123.45",
        "instruments.BTC-USDT.min_notional=5",
        "instruments.0.market_band_bps=250",
    ])
    assert config.journal.durability == "async"
    assert config.journal.snapshot_interval == 500
    assert config.demo.rate == 0.0
    assert config.demo.mid == {"BTC-USDT": "123.45"}
    assert config.instruments[0].min_notional_units == 5_000_000
    assert config.instruments[0].market_band_bps == 250


def test_later_overrides_win(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL), ["journal.path=a", "journal.path=b"])
    assert config.journal.path == "b"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("journal.durability=fast", "journal.durability must be one of sync, async, not 'fast'"),
        ("journal.snapshot_interval=-1", "journal.snapshot_interval must be >= 0"),
        ("journal.snapshot_interval=lots", "journal.snapshot_interval must be an int, not 'lots'"),
        ("journal.colour=blue", "unknown setting journal.colour"),
        ("bogus", "is not of the form section.key=value"),
        ("instruments.DOGE-USDT.tick_size=1", "no instrument DOGE-USDT to override"),
        ("instruments.BTC-USDT.tick_size=0", "tick_size must be positive"),
        ("instruments.BTC-USDT.tick_size=abc", "tick_size 'abc' is not a plain decimal number"),
        ("instruments.BTC-USDT.max_qty=1.00005", "max_qty 1.00005 is not a multiple of 0.0001"),
        ("instruments.BTC-USDT.market_band_bps=0", "market_band_bps must be an integer in 1..10000"),
        ("demo.mid.DOGE-USDT=1", "demo.mid.DOGE-USDT: no such instrument"),
        ("demo.mid.BTC-USDT=1.001", "demo.mid.BTC-USDT: price 1.001 is not a multiple of 0.01"),
        ("demo.market_share=2", "demo.market_share must be <= 1"),
        ("journal.path.deeper=1", "journal.path is a value, not a table"),
        ("colour.red=1", "unknown section colour"),
    ],
)
def test_bad_overrides_give_one_line_errors(tmp_path: Path, override: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, MINIMAL), [override])
    text = str(caught.value)
    assert message in text
    assert "\n" not in text
    assert text.startswith(str(tmp_path / "venue.toml"))


@pytest.mark.parametrize(
    ("replace", "by", "message"),
    [
        ('tick_size = "0.01"', "tick_size = 0.01", "tick_size must be a decimal string, not 0.01"),
        ('lot_size = "0.0001"', 'lot_size = "0.0001"\nlot = 3', "unknown setting instruments.BTC-USDT.lot"),
        ('base = "BTC"\n', "", "instruments.BTC-USDT has no base"),
        ('path = "j"', "path = 3", "journal.path must be a str, not 3"),
        ('path = "j"', 'path = "j"\npath = "k"', "Cannot overwrite a value"),  # TOML syntax error
        ('lot_size = "0.0001"', 'lot_size = "0.0001"\nmax_price = "1e9"', "not a plain decimal number"),
        ('lot_size = "0.0001"', 'lot_size = "0.0001"\nmax_price = "100000000000"\nmax_qty = "100000000"',
         "too large for the engine"),
    ],
)
def test_bad_files_give_one_line_errors(tmp_path: Path, replace: str, by: str, message: str) -> None:
    assert replace in MINIMAL
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, MINIMAL.replace(replace, by, 1)))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_duplicate_and_missing_instruments() -> None:
    table = {"symbol": "X", "base": "A", "quote": "B", "tick_size": "1", "lot_size": "1"}
    assets = [{"name": "A", "decimals": 0}, {"name": "B", "decimals": 0}]
    with pytest.raises(ConfigError, match="instrument X is defined twice"):
        parse_config({"assets": assets, "instruments": [table, dict(table)]})
    with pytest.raises(ConfigError, match=r"no \[\[instruments\]\] defined"):
        parse_config({})


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file .*nope.toml not found"):
        load_config(tmp_path / "nope.toml")


def test_without_a_path_the_shipped_config_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no ./config/venue.toml here
    assert load_config().source == str(SHIPPED_CONFIG)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "venue.toml").write_text(MINIMAL)
    assert load_config().journal.path == "j"  # ./config/venue.toml wins


# ---------------------------------------------------------------------------- funds mode settings


def test_shipped_config_has_the_funds_settings() -> None:
    config = load_config(SHIPPED_CONFIG)
    assert [(a.name, a.decimals) for a in config.assets] == [("BTC", 8), ("ETH", 8), ("USDT", 6)]
    btc = config.markets["BTC-USDT"]
    # 0.0001 BTC = 10,000 sat per lot; 0.01 USDT x 0.0001 = 0.000001 USDT = 1 unit per tick x lot
    assert (btc.base_per_lot, btc.quote_per_tick_lot) == (10_000, 1)
    assert btc.fees[0] == (0, 2, 5)
    assert (btc.reference_price_ticks, btc.max_notional_units) == (6_000_000, 1_000_000 * 10**6)
    eth = config.markets["ETH-USDT"]
    assert (eth.base_per_lot, eth.quote_per_tick_lot) == (100_000, 10)
    assert (config.accounts.max_open_orders, config.accounts.tier) == (1000, 0)
    assert config.demo.funding == {"BTC": "100", "ETH": "1000", "USDT": "10000000"}


def test_fees_limits_and_funding_from_the_file_and_overrides(tmp_path: Path) -> None:
    text = MINIMAL + """fees.0 = { maker_bps = -1, taker_bps = 4 }
fees.2 = { maker_bps = 0, taker_bps = 3 }
reference_price = "60000"
max_notional = "250000.5"

[accounts]
max_open_orders = 50
tier = 2

[demo.funding]
USDT = "1000.000001"
"""
    config = load_config(write(tmp_path, text), ["instruments.BTC-USDT.fees.2.taker_bps=6",
                                                  "assets.BTC.decimals=4", "demo.funding.BTC=0.5"])
    market = config.markets["BTC-USDT"]
    assert market.fees == ((0, -1, 4), (2, 0, 6))
    assert (market.reference_price, market.max_notional) == ("60000.00", "250000.500000")
    assert market.base_per_lot == 1  # BTC with 4 decimals: one lot is its smallest unit
    assert (config.accounts.max_open_orders, config.accounts.tier) == (50, 2)
    assert config.demo.funding == {"USDT": "1000.000001", "BTC": "0.5"}
    assert market.describe() == {"fees": {"0": [-1, 4], "2": [0, 6]}, "reference_price": "60000.00",
                                 "max_notional": "250000.500000"}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("assets.BTC.decimals=3", "instruments.BTC-USDT: lot_size 0.0001 is finer than BTC's 3 decimals"),
        ("assets.USDT.decimals=5",
         "instruments.BTC-USDT: tick_size 0.01 x lot_size 0.0001 is finer than USDT's 5 decimals"),
        ("assets.BTC.decimals=19", "assets.BTC: asset BTC: decimals must be an integer in 0..18"),
        ("assets.DOGE.decimals=1", "no asset DOGE to override"),
        ("assets.BTC.colour=red", "unknown setting assets.BTC.colour"),
        ("instruments.BTC-USDT.base=ETH",
         "instruments.BTC-USDT: base asset ETH is not defined in [[assets]]"),
        ("instruments.BTC-USDT.quote=BTC", "instruments.BTC-USDT: base and quote must be different assets"),
        ("instruments.BTC-USDT.fees.0.maker_bps=-1001",
         "instruments.BTC-USDT.fees.0.maker_bps must be >= -1000"),
        ("instruments.BTC-USDT.fees.x.maker_bps=1", "instruments.BTC-USDT.fees.x: a fee tier is an integer"),
        ("instruments.BTC-USDT.fees.1.maker_bps=1", "instruments.BTC-USDT.fees.1 has no taker_bps"),
        ("instruments.BTC-USDT.reference_price=1.001",
         "instruments.BTC-USDT.reference_price: price 1.001 is not a multiple of 0.01"),
        ("instruments.BTC-USDT.max_notional=0.0000001",
         "instruments.BTC-USDT.max_notional: max_notional 0.0000001 has more than 6 decimals"),
        ("instruments.BTC-USDT.max_notional=0", "instruments.BTC-USDT.max_notional must be positive"),
        ("demo.funding.DOGE=1", "demo.funding.DOGE: no such asset in [[assets]]"),
        ("demo.funding.USDT=1.0000001", "demo.funding.USDT 1.0000001 has more than 6 decimals"),
        ("demo.funding.USDT=0", "demo.funding.USDT must be positive, not 0"),
        ("demo.funding.USDT=-1", "demo.funding.USDT -1 is negative"),
        ("accounts.max_open_orders=0", "accounts.max_open_orders must be >= 1"),
        ("accounts.tier=256", "accounts.tier must be <= 255"),
    ],
)
def test_bad_funds_settings_give_one_line_errors(tmp_path: Path, override: str, message: str) -> None:
    text = MINIMAL + 'fees.0 = { maker_bps = 2, taker_bps = 5 }\n'
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), [override])
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_maker_rebate_may_not_exceed_the_taker_fee(tmp_path: Path) -> None:
    text = MINIMAL + 'fees.0 = { maker_bps = -5, taker_bps = 4 }\n'
    with pytest.raises(ConfigError, match=r"fees.0: the maker rebate exceeds the taker fee"):
        load_config(write(tmp_path, text))
