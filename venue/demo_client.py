"""The demo order flow of `venue run`, sent as a market maker would: over the SBE gateway.

Each demo account logs on with its own API key (created once, label "demo", secret read from the
encrypted key store by this process only), and the seeded DemoFlow (venue/demo.py) is turned into
NewOrder / CancelOrder messages: decimal prices and sizes become ticks and lots of the instrument,
order "d<n>" becomes clOrdId n. Trades are printed from the taker's fill reports.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from sbe_gateway.client import SbeClient
from sbe_schemas import codecs
from venue.config import VenueConfig
from venue.demo import DemoFlow
from venue.instruments import Instrument
from venue.keys import KeyStore

DEMO_KEY_LABEL = "demo"
MAX_IN_FLIGHT = 2000  # unanswered orders across sessions before the sender waits (rate 0 = flat out)
DRAIN_S = 5.0


@dataclass
class DemoStats:
    requests: int = 0
    reports: int = 0
    trades: int = 0
    rejected: int = 0
    answered: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def summary(self) -> str:
        elapsed = max(self.elapsed, 1e-9)
        return (f"[{elapsed:7.1f}s] {self.requests:,} requests  {self.reports:,} reports "
                f"({self.reports / elapsed:,.0f}/s)  {self.trades:,} trades  {self.rejected:,} rejected")


def demo_keys(store: KeyStore, accounts: dict[str, int]) -> dict[str, tuple[int, bytes]]:
    """Each demo account's key (created on first use): name -> (key id, secret)."""
    keys = {}
    for name, account in accounts.items():
        record = next((k for k in store.list(account) if k.label == DEMO_KEY_LABEL and k.enabled), None)
        if record is None:
            record, _secret = store.create_key(account, label=DEMO_KEY_LABEL)
        keys[name] = (record.key_id, store.secret(record.key_id))
    return keys


class DemoClient:
    def __init__(self, config: VenueConfig, host: str, port: int, accounts: dict[str, int],
                 symbols: dict[str, int], first_order: int, out: TextIO = sys.stdout,
                 print_trades: bool = True) -> None:
        self.config = config
        self.out = out
        self.print_trades = print_trades
        instruments = [i for i in config.instruments if i.symbol in symbols]
        self.flow = DemoFlow(config.demo, instruments, first_order=first_order)
        self.symbols = symbols
        self.by_id: dict[int, Instrument] = {symbols[i.symbol]: i for i in instruments}
        self.accounts = accounts
        self.names = {account: name for name, account in accounts.items()}
        with KeyStore.open(config.keys.path) as store:
            keys = demo_keys(store, accounts)
        self.clients: dict[str, SbeClient] = {}
        for name in self.flow.accounts:
            client = SbeClient.connect(host, port)
            key_id, secret = keys[name]
            client.logon(key_id, secret, heartbeat_ms=5000)
            self.clients[name] = client
        self.pending: set[tuple[str, str, int]] = set()  # (account, "new" | "cancel", clOrdId) unanswered
        self.by_seq: dict[tuple[str, int], tuple[str, str, int]] = {}  # (account, seqNum) -> its pending key
        self.stats = DemoStats()

    @property
    def in_flight(self) -> int:
        return len(self.pending)

    def _track(self, name: str, kind: str, cl: int, seq: int) -> None:
        key = (name, kind, cl)
        self.pending.add(key)
        self.by_seq[(name, seq)] = key

    def _send(self, request: dict[str, Any]) -> None:
        client = self.clients[request["account"]]
        if request["op"] == "cancel":
            cl = int(request["id"][1:])
            self._track(request["account"], "cancel", cl, client.cancel(cl_ord_id=cl, orig_cl_ord_id=cl))
        else:
            instrument = self.config.instrument(request["symbol"])
            assert instrument is not None
            side = codecs.Side.BUY if request["side"] == "buy" else codecs.Side.SELL
            qty = instrument.to_lots(request["qty"])
            symbol = self.symbols[request["symbol"]]
            cl = int(request["id"][1:])
            if request["type"] == "market":
                seq = client.new_order(cl_ord_id=cl, symbol_id=symbol, side=side, qty=qty,
                                       ord_type=codecs.OrdType.MARKET, tif=codecs.TimeInForce.IOC)
            else:
                seq = client.new_order(cl_ord_id=cl, symbol_id=symbol, side=side, qty=qty,
                                       price=instrument.to_ticks(request["price"]))
            self._track(request["account"], "new", cl, seq)
        self.stats.requests += 1

    def _receive(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        first = True
        while first or time.monotonic() < deadline:
            first = False
            got = False
            for name, client in self.clients.items():
                for message in client.read(timeout=0.0):
                    got = True
                    self._handle(name, message)
            if not got:
                time.sleep(min(0.002, max(0.0, deadline - time.monotonic())))

    def _handle(self, name: str, message: dict[str, Any]) -> None:
        template = message["template"]
        if template in ("Heartbeat", "LogonAck"):
            return
        self.stats.reports += 1
        if template == "ExecutionReport":
            fills = message["fills"]
            taker = bool(fills) and fills[0]["liquidity"] == codecs.LiquidityIndicator.TAKER
            if message["exec_type"] == codecs.ExecType.REJECTED:
                self.stats.rejected += 1
            if taker:
                self.stats.trades += 1
                if self.print_trades:
                    self._print_trade(name, message)
            cl = message["cl_ord_id"]
            if message["exec_type"] == codecs.ExecType.CANCELLED and (name, "cancel", cl) in self.pending:
                self.pending.discard((name, "cancel", cl))
            else:  # the first report about an order answers its NewOrder (maker fills come later)
                self.pending.discard((name, "new", cl))
        elif template == "CancelReject":
            self.stats.rejected += 1
            self.pending.discard((name, "cancel", message["cl_ord_id"]))
        elif template == "Reject":
            self.stats.rejected += 1
            key = self.by_seq.pop((name, message["ref_seq_num"] or 0), None)
            if key is not None:
                self.pending.discard(key)

    def _print_trade(self, name: str, report: dict[str, Any]) -> None:
        instrument = self.by_id.get(report["symbol_id"])
        fill = report["fills"][0]
        price = instrument.from_ticks(fill["fill_px"]) if instrument else fill["fill_px"]
        qty = instrument.from_lots(fill["fill_qty"]) if instrument else fill["fill_qty"]
        symbol = instrument.symbol if instrument else report["symbol_id"]
        side = report["side"].name.lower()
        print(f"trade #{fill['engine_seq']:<8} {symbol:<10} {side:<4} {qty:>12} @ {price:<12} "
              f"taker d{report['cl_ord_id']} ({name})", file=self.out)

    def run(self, stop: Any, tick: Callable[[], None], *, duration: float, max_requests: int, rate: float,
            summary_every: float) -> DemoStats:
        stats = self.stats
        next_summary = summary_every
        while not stop:
            elapsed = stats.elapsed
            if duration and elapsed >= duration:
                stop.set(f"duration {duration:g} s reached")
                break
            if max_requests and stats.requests >= max_requests:
                stop.set(f"{max_requests:,} requests sent")
                break
            due = 256 if not rate else min(256, int(elapsed * rate) + 1 - stats.requests)
            if max_requests:
                due = min(due, max_requests - stats.requests)
            due = min(due, MAX_IN_FLIGHT - self.in_flight)
            if len(self.by_seq) > 4 * MAX_IN_FLIGHT:  # answered requests' seqs are only needed for a Reject
                self.by_seq = {k: v for k, v in self.by_seq.items() if v in self.pending}
            for request in self.flow.requests(max(0, due)):
                self._send(request)
            self._receive(0.0 if due > 0 else 0.01)
            tick()
            if stats.elapsed >= next_summary:
                print(stats.summary(), file=self.out, flush=True)
                behind = int((stats.elapsed - next_summary) / summary_every)
                next_summary += summary_every * max(1, behind + 1)
        # Let the venue answer what was sent, then log out.
        deadline = time.monotonic() + DRAIN_S
        while self.in_flight > 0 and time.monotonic() < deadline:
            self._receive(0.05)
            tick()
        for client in self.clients.values():
            try:
                client.logout()
                client.wait_for(lambda m: m["template"] == "Logout", timeout=2.0)
            except (OSError, TimeoutError):
                pass
            client.close()
        return stats
