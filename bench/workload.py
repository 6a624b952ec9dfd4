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
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core_cython.records import COMMAND_DTYPE, Op, OrdType, Side, Tif, new_commands, set_instrument

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


@dataclass(frozen=True)
class WorkloadConfig:
    seed: int = 42
    commands: int = 1_000_000
    symbols: int = 4
    accounts: int = 10_000
    preload: int = 200_000  # resting GTC orders placed before measuring


@dataclass
class Workload:
    """setup (instruments + preloaded book) is applied untimed; commands is the measured stream."""

    setup: np.ndarray
    commands: np.ndarray
    config: WorkloadConfig | None = None
    source: str = "synthetic"
    instruments: int = 0
    counts: dict[str, int] = field(default_factory=dict)


def instruments(symbols: int) -> np.ndarray:
    cmds = new_commands(symbols)
    for i in range(symbols):
        set_instrument(cmds[i], i + 1, max_price=MAX_PRICE, min_qty=1, max_qty=MAX_QTY, market_band_bps=500)
    return cmds


def base_mids(symbols: int) -> np.ndarray:
    # Distinct, round price scales per symbol (index 0 is symbol 1).
    return np.array([50_000 * (i + 1) for i in range(symbols)], dtype=np.int64)


def _lognormal_qty(rng: np.random.Generator, n: int, median: float, sigma: float) -> np.ndarray:
    return np.clip(np.rint(rng.lognormal(np.log(median), sigma, n)), 1, MAX_QTY).astype(np.int64)


def _symbol_weights(symbols: int) -> np.ndarray:
    w = 1.0 / np.arange(1, symbols + 1)
    return w / w.sum()


def _accounts(rng: np.random.Generator, n: int, accounts: int) -> np.ndarray:
    # Zipf(1.1): account 1 sends ~10%, half the flow comes from the top few hundred.
    return ((rng.zipf(1.1, n) - 1) % accounts + 1).astype(np.uint64)


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
    rng = np.random.default_rng(cfg.seed)
    setup = np.concatenate([instruments(cfg.symbols), _preload(rng, cfg)])
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
    return Workload(setup=setup, commands=np.ascontiguousarray(cmds, dtype=COMMAND_DTYPE),
                    config=cfg, instruments=cfg.symbols, counts=counts)


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
