"""RSS growth per resting order of the engine: `python -m bench.memory [--funds]`, in a fresh process."""

from __future__ import annotations

import sys

import numpy as np

from bench.engine_bench import CHUNK, chunks
from core_cython.engine import Engine
from core_cython.records import FIRST_CUSTOMER_ACCOUNT, Op, OrdType, Side, Tif, new_commands, set_instrument

ACCOUNTS = 1000


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


def _funds_setup() -> np.ndarray:
    """Funds mode: two assets, accounts funded for every order below, a fee schedule."""
    cmds = new_commands(2 + 1 + 1 + 3 * ACCOUNTS)  # assets, instrument, fees, accounts, deposits
    for i, asset in enumerate((1, 2)):
        cmds[i]["op"], cmds[i]["asset"], cmds[i]["qty"] = Op.ADD_ASSET, asset, 8
    set_instrument(cmds[2], 1, max_price=10**9, min_qty=1, max_qty=10**9, base_asset=2, quote_asset=1,
                   base_per_lot=1, quote_per_tick_lot=1)
    fees = cmds[3]
    fees["op"], fees["symbol"], fees["price"], fees["qty"] = Op.SET_FEES, 1, -1, 5
    ids = np.arange(FIRST_CUSTOMER_ACCOUNT, FIRST_CUSTOMER_ACCOUNT + ACCOUNTS)
    acc = cmds[4: 4 + ACCOUNTS]
    acc["op"], acc["account"], acc["order_id"], acc["qty"] = Op.CREATE_ACCOUNT, ids, ids, 10**6
    dep = cmds[4 + ACCOUNTS:]
    dep["op"], dep["account"], dep["qty"] = Op.DEPOSIT, np.repeat(ids, 2), 10**15
    dep["asset"] = np.tile([1, 2], ACCOUNTS)
    dep["aux1"], dep["aux2"] = dep["account"], dep["asset"]
    return cmds


def measure(orders: int = 1_000_000, levels_per_side: int = 3_000, funds: bool = False) -> float:
    """RSS growth per resting order: `orders` non-crossing GTC limits over 2 x levels_per_side levels.

    Fed in CHUNK-sized calls, as the sequencer does, so the event buffer stays small and what is
    measured is the book: order slots, the id index and the price levels (funds mode: the orders'
    holds too; balances and accounts exist before, outside the measure).
    """
    setup = _funds_setup() if funds else new_commands(1)
    if not funds:
        set_instrument(setup[0], 1, max_price=10**9, min_qty=1, max_qty=10**9)
    body = new_commands(orders)
    i = np.arange(orders)
    body["op"], body["symbol"], body["qty"] = Op.NEW, 1, 5
    body["ord_type"], body["tif"] = OrdType.LIMIT, Tif.GTC
    body["order_id"], body["account"] = i + 1, i % ACCOUNTS + FIRST_CUSTOMER_ACCOUNT
    body["side"] = np.where(i % 2 == 0, Side.BUY, Side.SELL)
    depth = i // 2 % levels_per_side
    body["price"] = np.where(i % 2 == 0, 100_000 - depth, 100_001 + depth)
    # Room for a chunk's events (funds mode: an ACCEPTED and a HOLD posting per order).
    eng = Engine(1, 2 * CHUNK if funds else CHUNK, funds=funds)
    eng.process(setup)
    before = _rss_bytes()
    for s in chunks(orders):
        eng.process(body[s])
    grown = _rss_bytes() - before
    assert eng.live_orders() == orders
    return grown / orders


if __name__ == "__main__":
    print(f"{measure(funds='--funds' in sys.argv[1:]):.1f}")
