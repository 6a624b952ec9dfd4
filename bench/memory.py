"""RSS growth per resting order of the engine; run as `python -m bench.memory` in a fresh process."""

from __future__ import annotations

import numpy as np

from bench.engine_bench import CHUNK, chunks
from core_cython.engine import Engine
from core_cython.records import Op, OrdType, Side, Tif, new_commands, set_instrument


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


def measure(orders: int = 1_000_000, levels_per_side: int = 3_000) -> float:
    """RSS growth per resting order: `orders` non-crossing GTC limits over 2 x levels_per_side levels.

    Fed in CHUNK-sized calls, as the sequencer does, so the event buffer stays small and what is
    measured is the book: order slots, the id index and the price levels.
    """
    cmds = new_commands(orders + 1)
    set_instrument(cmds[0], 1, max_price=10**9, min_qty=1, max_qty=10**9)
    body = cmds[1:]
    i = np.arange(orders)
    body["op"], body["symbol"], body["qty"] = Op.NEW, 1, 5
    body["ord_type"], body["tif"] = OrdType.LIMIT, Tif.GTC
    body["order_id"], body["account"] = i + 1, i % 1000 + 1
    body["side"] = np.where(i % 2 == 0, Side.BUY, Side.SELL)
    depth = i // 2 % levels_per_side
    body["price"] = np.where(i % 2 == 0, 100_000 - depth, 100_001 + depth)
    eng = Engine(1, CHUNK)
    eng.process(cmds[:1])
    before = _rss_bytes()
    for s in chunks(orders):
        eng.process(cmds[1:][s])
    grown = _rss_bytes() - before
    assert eng.live_orders() == orders
    return grown / orders


if __name__ == "__main__":
    print(f"{measure():.1f}")
