"""A seeded demo order flow: a few accounts quoting and taking around a drifting mid, so it trades.

Requests are plain dicts in the input vocabulary (as a gateway would receive them), so the demo
exercises the same edge as every other client. The same seed, config and first order number give
the same requests.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass
from typing import Any

from venue.config import DemoSettings
from venue.instruments import Instrument

CANCEL_SHARE = 0.10  # of requests: cancel one of the account's recent orders
MARKETABLE_SHARE = 0.25  # of limit orders: priced through the mid, so they take liquidity
MAX_LOTS_MULTIPLE = 20  # order sizes: 1..20 x the smallest size allowed (min qty / min notional)
RECENT_ORDERS = 64  # per account, candidates for a cancel


def demo_account(n: int) -> str:
    return f"demo-{n}"


@dataclass
class _Market:
    instrument: Instrument
    mid: int  # ticks, drifts as a random walk
    low: int  # the walk stays within [low, high] so prices remain valid
    high: int
    min_lots: int  # smallest order that passes min qty and min notional at the lowest price


class DemoFlow:
    def __init__(self, settings: DemoSettings, instruments: list[Instrument], *,
                 first_order: int = 1) -> None:
        self.settings = settings
        self.rng = random.Random(settings.seed)
        self.next_order = first_order
        self.accounts = [demo_account(n) for n in range(1, settings.accounts + 1)]
        self.recent: dict[str, deque[str]] = {a: deque(maxlen=RECENT_ORDERS) for a in self.accounts}
        self.markets = [self._market(i) for i in instruments if i.symbol in settings.mid]
        if not self.markets:
            raise ValueError("demo.mid names none of the instruments: nothing to trade")

    def _market(self, instrument: Instrument) -> _Market:
        mid = instrument.to_ticks(self.settings.mid[instrument.symbol])
        spread = self.settings.spread_ticks
        low, high = max(spread + 1, mid // 2), min(instrument.max_price_ticks - spread, mid * 2)
        lowest_price = low - spread
        min_lots = max(instrument.min_qty_lots, -(-instrument.min_notional_units // lowest_price))
        return _Market(instrument, mid, low, high, min_lots)

    def requests(self, n: int) -> list[dict[str, Any]]:
        return [self.next_request() for _ in range(n)]

    def next_request(self) -> dict[str, Any]:
        rng = self.rng
        account = rng.choice(self.accounts)
        recent = self.recent[account]
        if recent and rng.random() < CANCEL_SHARE:
            return {"op": "cancel", "id": recent.popleft(), "account": account}
        market = rng.choice(self.markets)
        market.mid = min(market.high, max(market.low, market.mid + rng.choice((-1, 0, 0, 1))))
        instrument = market.instrument
        order_id = f"d{self.next_order}"
        self.next_order += 1
        side = rng.choice(("buy", "sell"))
        qty = instrument.from_lots(market.min_lots * rng.randint(1, MAX_LOTS_MULTIPLE))
        request: dict[str, Any] = {"op": "new", "id": order_id, "account": account,
                                   "symbol": instrument.symbol, "side": side, "qty": qty}
        if rng.random() < self.settings.market_share:
            request["type"] = "market"
            return request
        spread = self.settings.spread_ticks
        # Distance from the mid on the passive side; a negative one crosses it and takes liquidity.
        offset = -rng.randint(1, spread) if rng.random() < MARKETABLE_SHARE else rng.randint(0, spread)
        price = market.mid - offset if side == "buy" else market.mid + offset
        request.update(type="limit", price=instrument.from_ticks(price), tif="gtc")
        recent.append(order_id)
        return request
