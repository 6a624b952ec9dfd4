"""Seeded synthetic order flow shaped like a real book, generated with numpy before any clock starts.

The measured stream mixes about 50% GTC limits, 20% IOC limits and market orders, 25% cancels and
5% replaces over a few symbols whose mids drift as random walks. Most quotes sit a few ticks from
the mid, a tail spreads over a few thousand levels per side; accounts follow a Zipf-like skew, so a
few market makers dominate and the long tail is many small accounts. The preloaded book has the
shape the flow leaves behind (mostly deep, patient orders), not a wall at the touch.

Cancels and replaces must hit orders that are plausibly live. Each one is tied to a distinct earlier
GTC order of the stream and inserted after it by a drawn lifetime (quotes near the touch are mostly
fleeting, deep ones mostly patient), so no order is cancelled twice and none before it exists.
Some have filled first and get UNKNOWN_ORDER, as on a real venue (about 20% with the defaults,
mostly at the touch; the bench prints the share).

Funds mode (`Engine(funds=True)`) runs the same preload and the same measured stream after a longer
untimed setup: one quote asset and a base asset per symbol, instruments with exact multipliers, a fee
schedule per symbol (a maker rebate and a taker fee; the most active accounts get a better tier),
limits (a max notional per order), every account created and funded by deposits. Each account gets
what its own orders (preload and stream, replaces included) would hold if none of them ever
filled or went away: a loose upper bound, so its orders are funded, except the accounts of a seeded
share (`underfunded`) that get a random fraction of it and see some INSUFFICIENT_FUNDS rejects.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core_cython.records import (
    COMMAND_DTYPE,
    FIRST_CUSTOMER_ACCOUNT,
    Op,
    OrdType,
    Side,
    Tif,
    new_commands,
    set_instrument,
)

# Target share of each kind in the measured stream (exact up to rounding).
MIX: dict[str, float] = {"gtc": 0.50, "ioc": 0.10, "market": 0.10, "cancel": 0.25, "replace": 0.05}

MAX_PRICE = 100_000_000  # ticks
MAX_QTY = 1_000_000  # lots
MAX_OFFSET = 3_000  # ticks from the mid: bounds the levels per side
NEAR_SHARE, NEAR_SCALE, DEEP_SCALE = 0.6, 4.0, 600.0  # most quotes sit at the touch, a tail deep
MARKETABLE_GTC = 0.05  # share of GTC limits priced through the mid (take, then rest)
DRIFT_PROB = 0.10  # chance that a symbol's mid moves one tick on one of its commands
SHORT_LIFE, LONG_LIFE = 40.0, 4_000.0  # mean cancel lag (commands) of fleeting vs. patient quotes
NEAR_TICKS = 10  # quotes this close to the mid are mostly fleeting (cancelled before they trade)
MAKER_QTY, TAKER_QTY = 20.0, 12.0  # median lots (lognormal): takers roughly balance the flow of quotes
TS0 = 1_700_000_000_000_000_000  # ns; the sequencer's clock at the first command
TS_STEP = 1_000  # ns between stamped commands
MARKET_BAND_BPS = 500  # market protection band, and in funds mode the limit price band

# Funds mode. Assets: 1 = the quote asset of every symbol, 2.. = symbol i's base asset.
QUOTE_ASSET, QUOTE_DECIMALS, BASE_DECIMALS = 1, 6, 8
# Exact multipliers per symbol (cycled): base units per lot, quote units per tick x lot.
BASE_PER_LOT = (10_000, 1_000_000, 100, 100_000)
QUOTE_PER_TICK_LOT = (1, 10, 5, 2)
# Fee tier: (maker bps, taker bps). A maker rebate and a taker fee; tier 1 for the market makers.
FEES: dict[int, tuple[int, int]] = {0: (-1, 5), 1: (-2, 3)}
MAKER_TIER_ACCOUNTS = 10  # the most active accounts (the head of the Zipf skew) get tier 1
MAX_OPEN_ORDERS = 1_000_000  # per account: never binding here
MAX_NOTIONAL_LOTS = 100_000  # max notional per order = N(2 x the starting mid, this many lots)
MARKET_HOLD_SLACK = 100  # ticks of drift allowed for when estimating a market buy's hold price


@dataclass(frozen=True)
class WorkloadConfig:
    seed: int = 42
    commands: int = 1_000_000
    symbols: int = 4
    accounts: int = 10_000
    preload: int = 200_000  # resting GTC orders placed before measuring
    underfunded: float = 0.05  # funds mode: share of accounts funded with a random fraction of their need


@dataclass
class Workload:
    """setup (instruments + preloaded book) is applied untimed; commands is the measured stream.

    funds_setup (synthetic flows only) is the setup of an engine in funds mode: assets, instruments,
    fees, limits, accounts and deposits, then the same preload; the measured stream is the same.
    """

    setup: np.ndarray
    commands: np.ndarray
    config: WorkloadConfig | None = None
    source: str = "synthetic"
    instruments: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    funds_setup: np.ndarray | None = None
    funds_counts: dict[str, int] = field(default_factory=dict)

    def setup_for(self, funds: bool) -> np.ndarray:
        if not funds:
            return self.setup
        if self.funds_setup is None:
            raise ValueError(f"the {self.source} workload has no funds-mode setup")
        return self.funds_setup


def instruments(symbols: int, funds: bool = False) -> np.ndarray:
    cmds = new_commands(symbols)
    for i in range(symbols):
        multipliers = {}
        if funds:
            multipliers = {"base_asset": base_asset(i + 1), "quote_asset": QUOTE_ASSET,
                           "base_per_lot": BASE_PER_LOT[i % len(BASE_PER_LOT)],
                           "quote_per_tick_lot": QUOTE_PER_TICK_LOT[i % len(QUOTE_PER_TICK_LOT)]}
        set_instrument(cmds[i], i + 1, max_price=MAX_PRICE, min_qty=1, max_qty=MAX_QTY,
                       market_band_bps=MARKET_BAND_BPS, **multipliers)
    return cmds


def base_asset(symbol: int) -> int:
    return QUOTE_ASSET + symbol


def base_mids(symbols: int) -> np.ndarray:
    # Distinct, round price scales per symbol (index 0 is symbol 1).
    return np.array([50_000 * (i + 1) for i in range(symbols)], dtype=np.int64)


def _lognormal_qty(rng: np.random.Generator, n: int, median: float, sigma: float) -> np.ndarray:
    return np.clip(np.rint(rng.lognormal(np.log(median), sigma, n)), 1, MAX_QTY).astype(np.int64)


def _symbol_weights(symbols: int) -> np.ndarray:
    w = 1.0 / np.arange(1, symbols + 1)
    return w / w.sum()


def _accounts(rng: np.random.Generator, n: int, accounts: int) -> np.ndarray:
    # Zipf(1.1): the first account sends ~10%, half the flow comes from the top few hundred.
    # Ids start at the first customer id of funds mode, so both modes run the very same commands.
    return ((rng.zipf(1.1, n) - 1) % accounts + FIRST_CUSTOMER_ACCOUNT).astype(np.uint64)


def _resting_offsets(rng: np.random.Generator, n: int, near_share: float = NEAR_SHARE) -> np.ndarray:
    scale = np.where(rng.random(n) < near_share, NEAR_SCALE, DEEP_SCALE)
    return np.minimum(1 + np.floor(rng.exponential(scale)), MAX_OFFSET).astype(np.int64)


def _preload(rng: np.random.Generator, cfg: WorkloadConfig) -> np.ndarray:
    """Non-crossing GTC limits around each symbol's starting mid.

    Shaped like the steady state of the flow rather than like the flow itself: near-touch quotes are
    short-lived, so a resting book is mostly the patient deep orders (no wall at the touch).
    """
    n = cfg.preload
    cmds = new_commands(n)
    sym = rng.choice(cfg.symbols, n, p=_symbol_weights(cfg.symbols))
    side = rng.integers(1, 3, n, dtype=np.uint8)
    mid = base_mids(cfg.symbols)[sym]
    off = _resting_offsets(rng, n, near_share=0.05)
    cmds["op"] = Op.NEW
    cmds["symbol"] = sym + 1
    cmds["side"] = side
    cmds["ord_type"] = OrdType.LIMIT
    cmds["tif"] = Tif.GTC
    cmds["price"] = np.where(side == Side.BUY, mid - off, mid + off)
    cmds["qty"] = _lognormal_qty(rng, n, MAKER_QTY, 1.0)
    cmds["account"] = _accounts(rng, n, cfg.accounts)
    cmds["order_id"] = np.arange(1, n + 1, dtype=np.uint64)
    return cmds


def _mids(rng: np.random.Generator, sym: np.ndarray, symbols: int) -> np.ndarray:
    """Each symbol's mid as a random walk over that symbol's own commands."""
    steps = rng.choice(np.array([-1, 0, 1], dtype=np.int64), sym.size,
                       p=[DRIFT_PROB / 2, 1 - DRIFT_PROB, DRIFT_PROB / 2])
    mid = np.empty(sym.size, dtype=np.int64)
    starts = base_mids(symbols)
    for s in range(symbols):  # a handful of symbols: the per-symbol work is vectorized
        m = sym == s
        mid[m] = starts[s] + np.cumsum(steps[m])
    return mid


def _counts(n: int) -> dict[str, int]:
    counts = {k: int(round(v * n)) for k, v in MIX.items() if k != "gtc"}
    counts["gtc"] = n - sum(counts.values())
    return counts


def _lifetimes(rng: np.random.Generator, near: np.ndarray, cap: float) -> np.ndarray:
    fleeting = rng.random(near.size) < np.where(near, 0.8, 0.2)
    means = np.where(fleeting, min(SHORT_LIFE, cap), min(LONG_LIFE, cap))
    return np.floor(rng.exponential(means)).astype(np.int64)


def generate(cfg: WorkloadConfig) -> Workload:
    if cfg.commands < 1_000:
        raise ValueError("a synthetic workload needs at least 1000 commands")
    if cfg.symbols < 1 or cfg.accounts < 1 or cfg.preload < 0:
        raise ValueError("symbols and accounts must be >= 1, preload >= 0")
    if not 0 <= cfg.underfunded <= 1:
        raise ValueError("underfunded must be a share between 0 and 1")
    rng = np.random.default_rng(cfg.seed)
    preload = _preload(rng, cfg)
    setup = np.concatenate([instruments(cfg.symbols), preload])
    counts = _counts(cfg.commands)
    n_links = counts["cancel"] + counts["replace"]
    nb = cfg.commands - n_links  # the "base" stream of new orders

    # Base stream: GTC / IOC / market in random order.
    kind = np.repeat(np.arange(3, dtype=np.int8), [counts["gtc"], counts["ioc"], counts["market"]])
    kind = rng.permutation(kind)
    sym = rng.choice(cfg.symbols, nb, p=_symbol_weights(cfg.symbols))
    side = rng.integers(1, 3, nb, dtype=np.uint8)
    sign = np.where(side == Side.BUY, -1, 1)  # away from the mid for a resting price
    mid = _mids(rng, sym, cfg.symbols)
    off = _resting_offsets(rng, nb)
    marketable = rng.random(nb) < MARKETABLE_GTC
    off[marketable] = -rng.integers(0, 3, int(marketable.sum()))
    take = rng.integers(0, 6, nb)  # IOC limits cross by a few ticks
    is_gtc, is_ioc, is_mkt = kind == 0, kind == 1, kind == 2
    price = np.where(is_gtc, mid + sign * off, np.where(is_ioc, mid - sign * take, 0))
    qty = np.where(is_gtc, _lognormal_qty(rng, nb, MAKER_QTY, 1.0), _lognormal_qty(rng, nb, TAKER_QTY, 1.0))

    base = new_commands(nb)
    base["op"] = Op.NEW
    base["symbol"] = sym + 1
    base["side"] = side
    base["ord_type"] = np.where(is_mkt, OrdType.MARKET, OrdType.LIMIT)
    base["tif"] = np.where(is_gtc, Tif.GTC, Tif.IOC)
    base["price"] = np.maximum(price, 0)
    base["qty"] = qty
    base["account"] = _accounts(rng, nb, cfg.accounts)
    base["order_id"] = np.arange(cfg.preload + 1, cfg.preload + nb + 1, dtype=np.uint64)

    # Tie each cancel/replace to a distinct GTC order, due `life` base commands after it; shorten
    # lifetimes until enough fall inside the stream (only matters for tiny workloads).
    # Marketable GTCs mostly fill at once: a cancel aimed at one would rarely be plausible.
    gtc_pos = np.flatnonzero(is_gtc & ~marketable)
    near = off[gtc_pos] <= NEAR_TICKS
    cap = nb / 4
    while True:
        due = gtc_pos + _lifetimes(rng, near, cap)
        eligible = np.flatnonzero(due < nb)
        if eligible.size >= n_links or cap <= 1:
            break
        cap /= 2
    if eligible.size < n_links:
        raise ValueError("workload too small to place its cancels and replaces")
    picked = rng.choice(eligible, n_links, replace=False)
    parent = gtc_pos[picked]
    links = new_commands(n_links)
    for f in ("order_id", "account", "symbol", "side", "price", "qty"):
        links[f] = base[f][parent]
    can = links[: counts["cancel"]]
    can["op"] = Op.CANCEL
    can["price"] = 0
    can["qty"] = 0
    rep = links[counts["cancel"]:]
    rep["op"] = Op.REPLACE
    requote = rng.random(rep.size) < 0.5
    # Half re-quote a few ticks away (loses priority), half reduce size in place (keeps it).
    shift = rng.integers(1, 4, rep.size) * rng.choice(np.array([-1, 1]), rep.size)
    rep["price"] = np.where(requote, np.maximum(rep["price"] + shift, 1), 0)
    rep["qty"] = np.where(requote, rep["qty"], np.maximum(rep["qty"] // 2, 1))

    # Merge: base commands at integer times, each link just after its due time (jittered order).
    times = np.concatenate([np.arange(nb, dtype=np.float64),
                            due[picked] + rng.uniform(0.01, 0.99, n_links)])
    order = np.argsort(times, kind="stable")
    cmds = np.concatenate([base, links])[order]
    cmds["ts"] = TS0 + np.arange(cfg.commands, dtype=np.int64) * TS_STEP
    setup["ts"] = TS0 - TS_STEP
    counts = dict(counts, setup=int(setup.size))

    # Funds mode: what each order would hold (README "Holds"), at its limit price, a market buy's
    # at a protection price estimated from its symbol's mid, a replace's at its new price.
    band = mid * MARKET_BAND_BPS // 10_000 + MARKET_HOLD_SLACK
    hold_price = np.concatenate([preload["price"], np.where(is_mkt, mid + band, base["price"]),
                                 np.where(rep["price"] > 0, rep["price"],
                                          base["price"][parent[counts["cancel"]:]])])
    funds_setup, funds_counts = _funds_setup(cfg, np.concatenate([preload, base, rep]), hold_price,
                                             preload.size)
    funds_setup = np.concatenate([funds_setup, preload])
    funds_setup["ts"] = TS0 - TS_STEP
    funds_counts["setup"] = int(funds_setup.size)
    return Workload(setup=setup, commands=np.ascontiguousarray(cmds, dtype=COMMAND_DTYPE),
                    config=cfg, instruments=cfg.symbols, counts=counts,
                    funds_setup=funds_setup, funds_counts=funds_counts)


def fee_tier(account: np.ndarray) -> np.ndarray:
    """Tier 1 for the market makers (the most active accounts), tier 0 for everyone else."""
    return np.where(account < FIRST_CUSTOMER_ACCOUNT + MAKER_TIER_ACCOUNTS, 1, 0).astype(np.uint8)


def _needs(cfg: WorkloadConfig, orders: np.ndarray, hold_price: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per account: quote units its buy orders would hold, base units (per symbol) its sells would.

    The sum over every order it ever places, as if none ever filled or went away: a buyer's quote
    spent on fills plus what it holds never exceeds the holds of its orders, a seller's base alike,
    so this funds all of them (replaces are counted as further orders at their new price and qty).
    """
    acct = (orders["account"] - FIRST_CUSTOMER_ACCOUNT).astype(np.int64)
    sym = orders["symbol"].astype(np.int64) - 1
    qty = orders["qty"].astype(np.int64)
    buy = orders["side"] == Side.BUY
    qptl = np.array(QUOTE_PER_TICK_LOT, dtype=np.int64)[sym % len(QUOTE_PER_TICK_LOT)]
    bpl = np.array(BASE_PER_LOT, dtype=np.int64)[sym % len(BASE_PER_LOT)]
    tier_rate = np.array([max(*FEES[t], 0) for t in sorted(FEES)], dtype=np.int64)  # max(maker, taker, 0)
    rate = tier_rate[fee_tier(orders["account"])]
    n1 = hold_price.astype(np.int64) * qptl
    per_lot = n1 + -(-n1 * rate // 10_000)  # N(P, 1) + ceil(N(P, 1) x r / 10000)
    quote = np.zeros(cfg.accounts, dtype=np.int64)
    np.add.at(quote, acct[buy], per_lot[buy] * qty[buy])
    base = np.zeros((cfg.accounts, cfg.symbols), dtype=np.int64)
    np.add.at(base, (acct[~buy], sym[~buy]), bpl[~buy] * qty[~buy])
    return quote, base


def _funds_setup(cfg: WorkloadConfig, orders: np.ndarray, hold_price: np.ndarray,
                 n_preload: int) -> tuple[np.ndarray, dict[str, int]]:
    """Assets, instruments, fees, limits, accounts and deposits (funds mode, before the preload).

    orders: the preload's (first n_preload) and the measured stream's orders and replaces, with the
    price each would hold at. An underfunded account gets all its preload needs (so both modes start
    from the same book) and a random fraction of its stream's.
    """
    rng = np.random.default_rng([cfg.seed, 1])  # its own stream: the core workload stays as it was
    n_sym, n_acct = cfg.symbols, cfg.accounts
    n_assets = 1 + n_sym
    assets = new_commands(n_assets)
    assets["op"] = Op.ADD_ASSET
    assets["asset"] = np.arange(1, n_assets + 1)
    assets["qty"] = np.where(assets["asset"] == QUOTE_ASSET, QUOTE_DECIMALS, BASE_DECIMALS)

    fees = new_commands(n_sym * len(FEES))
    fees["op"] = Op.SET_FEES
    fees["symbol"] = np.repeat(np.arange(1, n_sym + 1), len(FEES))
    fees["flags"] = np.tile(sorted(FEES), n_sym)
    fees["price"] = np.tile([FEES[t][0] for t in sorted(FEES)], n_sym)
    fees["qty"] = np.tile([FEES[t][1] for t in sorted(FEES)], n_sym)

    # Limits: a max notional per order (far above the flow's orders); no reference price, so the
    # preloaded book is the core mode's (the band then applies around each symbol's last trade).
    limits = new_commands(n_sym)
    limits["op"] = Op.SET_LIMITS
    limits["symbol"] = np.arange(1, n_sym + 1)
    limits["price"] = 0
    qptl = np.array(QUOTE_PER_TICK_LOT, dtype=np.int64)[np.arange(n_sym) % len(QUOTE_PER_TICK_LOT)]
    limits["aux1"] = 2 * base_mids(n_sym) * MAX_NOTIONAL_LOTS * qptl

    ids = np.arange(FIRST_CUSTOMER_ACCOUNT, FIRST_CUSTOMER_ACCOUNT + n_acct, dtype=np.uint64)
    accounts = new_commands(n_acct)
    accounts["op"] = Op.CREATE_ACCOUNT
    accounts["account"] = ids
    accounts["order_id"] = ids  # owner
    accounts["qty"] = MAX_OPEN_ORDERS
    accounts["flags"] = fee_tier(ids)

    need = [np.concatenate([q[:, None], b], axis=1)  # [account, asset - 1]
            for q, b in (_needs(cfg, orders[part], hold_price[part])
                         for part in (slice(0, n_preload), slice(n_preload, None)))]
    short = rng.random(n_acct) < cfg.underfunded
    share = np.where(short, rng.random(n_acct), 1.0)
    stream = np.floor(need[1] * share[:, None]).astype(np.int64)
    amount = np.maximum(need[0] + stream, 1)  # every account gets every asset, at least 1 unit
    deposits = new_commands(amount.size)
    deposits["op"] = Op.DEPOSIT
    deposits["account"] = np.repeat(ids, n_assets)
    deposits["asset"] = np.tile(np.arange(1, n_assets + 1), n_acct)
    deposits["qty"] = amount.ravel()
    deposits["aux1"] = deposits["account"]  # the deposit's reference: unique per (account, asset)
    deposits["aux2"] = deposits["asset"]
    supply = amount.sum(axis=0, dtype=np.float64)
    if (supply >= 2.0**62).any():
        raise ValueError("funding exceeds an asset's supply cap: fewer commands or accounts")

    setup = np.concatenate([assets, instruments(n_sym, funds=True), fees, limits, accounts, deposits])
    counts = {"assets": n_assets, "fee_tiers": len(FEES), "accounts": n_acct, "deposits": int(deposits.size),
              "underfunded_accounts": int(short.sum())}
    return setup, counts


def mix(cmds: np.ndarray) -> dict[str, float]:
    """Share of each command kind in a stream (for checks and the report)."""
    n = max(cmds.size, 1)
    new = cmds["op"] == Op.NEW
    gtc = new & (cmds["ord_type"] == OrdType.LIMIT) & (cmds["tif"] == Tif.GTC)
    return {
        "gtc": float(gtc.sum()) / n,
        "ioc": float((new & (cmds["ord_type"] == OrdType.LIMIT) & (cmds["tif"] != Tif.GTC)).sum()) / n,
        "market": float((new & (cmds["ord_type"] == OrdType.MARKET)).sum()) / n,
        "cancel": float((cmds["op"] == Op.CANCEL).sum()) / n,
        "replace": float((cmds["op"] == Op.REPLACE).sum()) / n,
    }
