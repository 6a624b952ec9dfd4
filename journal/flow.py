"""Seeded random order flow for journal tests, crash tests and benchmarks (vectorised, no engine needed).

The flow is a plausible mix on a few instruments around a mid price: resting limits, crossing
limits, markets, IOC/FOK, icebergs, stops, cancels and replaces of recent orders. Determinism: the
same rng state and arguments give the same commands.
"""

from __future__ import annotations

import numpy as np

from core_cython.records import Op, OrdType, Side, Stp, Tif, new_commands, set_instrument

MID_PRICE = 10_000


def instrument_commands(n_symbols: int) -> np.ndarray:
    """ADD_INSTRUMENT commands for symbols 1..n_symbols (what a journal starts with)."""
    cmds = new_commands(n_symbols)
    for i in range(n_symbols):
        set_instrument(cmds[i], i + 1, max_price=1_000_000, min_qty=1, max_qty=1_000_000, market_band_bps=500)
    return cmds


def random_flow(rng: np.random.Generator, n: int, *, n_symbols: int = 4, first_order_id: int = 1,
                n_accounts: int = 50) -> np.ndarray:
    """n commands; NEW orders get ids first_order_id, first_order_id + 1, ... (one per command slot)."""
    cmds = new_commands(n)
    slot_ids = np.arange(first_order_id, first_order_id + n, dtype=np.uint64)
    kind = rng.random(n)
    cmds["symbol"] = rng.integers(1, n_symbols + 1, n)
    cmds["account"] = rng.integers(1, n_accounts + 1, n)
    cmds["side"] = rng.integers(Side.BUY, Side.SELL + 1, n)
    cmds["qty"] = rng.integers(1, 50, n)
    # Buys mostly below the mid, sells above, with an overlap so that some cross.
    offset = rng.integers(-8, 30, n)
    cmds["price"] = np.where(cmds["side"] == Side.BUY, MID_PRICE - offset, MID_PRICE + offset)
    cmds["ord_type"] = OrdType.LIMIT
    cmds["tif"] = Tif.GTC
    cmds["stp"] = rng.integers(Stp.NONE, Stp.CANCEL_BOTH + 1, n)
    cmds["op"] = Op.NEW
    cmds["order_id"] = slot_ids

    market = (kind >= 0.55) & (kind < 0.62)
    cmds["ord_type"][market] = OrdType.MARKET
    cmds["price"][market] = 0
    ioc = (kind >= 0.62) & (kind < 0.66)
    cmds["tif"][ioc] = rng.choice(np.array([Tif.IOC, Tif.FOK], dtype=np.uint8), int(ioc.sum()))
    iceberg = (kind >= 0.66) & (kind < 0.69)
    cmds["qty"][iceberg] *= 5
    cmds["display_qty"][iceberg] = rng.integers(1, 10, int(iceberg.sum()))
    stop = (kind >= 0.69) & (kind < 0.72)
    is_buy = cmds["side"] == Side.BUY
    cmds["stop_price"][stop] = np.where(is_buy[stop], MID_PRICE + 5, MID_PRICE - 5) + rng.integers(-3, 4,
                                                                                                    int(stop.sum()))
    cancel = (kind >= 0.72) & (kind < 0.92)
    replace = (kind >= 0.92) & (kind < 0.98)
    mass_cancel = kind >= 0.9995
    back = rng.integers(1, 300, n).astype(np.uint64)
    earlier = np.where(slot_ids > back, slot_ids - back, slot_ids)
    cmds["op"][cancel] = Op.CANCEL
    cmds["order_id"][cancel] = earlier[cancel]
    cmds["account"][cancel] = 0  # operator cancel: any account
    cmds["op"][replace] = Op.REPLACE
    cmds["order_id"][replace] = earlier[replace]
    cmds["account"][replace] = 0
    cmds["op"][mass_cancel] = Op.MASS_CANCEL
    cmds["account"][mass_cancel] = 0
    return cmds


def resting_book(rng: np.random.Generator, n: int, *, n_symbols: int = 4, first_order_id: int = 1,
                 n_accounts: int = 50) -> np.ndarray:
    """n GTC limits that never cross (bids below 9900, asks above 10100): a deep book, big snapshots."""
    cmds = new_commands(n)
    cmds["op"] = Op.NEW
    cmds["order_id"] = np.arange(first_order_id, first_order_id + n, dtype=np.uint64)
    cmds["symbol"] = rng.integers(1, n_symbols + 1, n)
    cmds["account"] = rng.integers(1, n_accounts + 1, n)
    cmds["side"] = rng.integers(Side.BUY, Side.SELL + 1, n)
    depth = rng.integers(100, 2_000, n)
    cmds["price"] = np.where(cmds["side"] == Side.BUY, MID_PRICE - depth, MID_PRICE + depth)
    cmds["qty"] = rng.integers(1, 50, n)
    cmds["ord_type"] = OrdType.LIMIT
    cmds["tif"] = Tif.GTC
    return cmds
