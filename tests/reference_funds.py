"""A pure-Python reference of funds mode: the executable form of core_cython/README.md "Funds mode".

ReferenceFundsEngine is the core ReferenceEngine (tests/reference_model.py) plus accounts, per-asset
balances, order holds, fees, settlement postings and the pre-trade checks 12-17. Like the core model
it is naive on purpose: every rule is a few lines that can be read against the README, balances are a
plain dict, and a POSTING event is emitted by one helper (_post) that also applies it.

It produces the same events (every EVENT_DTYPE field) as core_cython.engine.Engine(funds=True) and
exposes the funds API in the same shapes: balance(), balances(), accounts(), assets(), withdrawals(),
fee_rates(), instrument(), order(), open_orders().

At the end: command builders for the funds ops, and FundsTwin (engine + reference side by side).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core_cython.records import (
    ACCOUNT_ADJUSTMENTS,
    ACCOUNT_EXTERNAL,
    ACCOUNT_FEES,
    FIRST_CUSTOMER_ACCOUNT,
    AccountStatus,
    AccountType,
    EventType,
    Op,
    OrdType,
    PostingKind,
    Reason,
    Side,
    Tif,
    TradingStatus,
)
from tests.reference_model import MONEY_OPS, Cmd, Order, ReferenceEngine, _opposite

SUPPLY_CAP = 1 << 62  # per asset, what customer and fee accounts hold together
HOLD_LIMIT = 1 << 62  # an order's hold must stay below this
FUNDS_OVERFLOW_LIMIT = 1 << 61  # instrument bounds: max notional and max base quantity
MAX_ASSET = 4095
MAX_DECIMALS = 18


@dataclass
class Market:
    """The funds-mode part of an instrument."""

    base: int
    quote: int
    base_per_lot: int
    quote_per_tick_lot: int
    status: int = TradingStatus.OPEN
    ref_price: int = 0  # SET_LIMITS reference price; 0 = none
    max_notional: int = 0  # SET_LIMITS max notional (quote units); 0 = none

    def notional(self, price: int, qty: int) -> int:
        """N(p, q) = p x q x quote_per_tick_lot."""
        return price * qty * self.quote_per_tick_lot


@dataclass
class Account:
    type: int
    owner: int = 0
    tier: int = 0
    status: int = AccountStatus.ACTIVE
    max_open: int = 0


@dataclass
class OrderFunds:
    """What funds mode keeps per live order: its hold and the fee rates fixed at acceptance."""

    asset: int  # the held asset: quote for a buy, base for a sell
    hold_price: int  # P of the README
    hold_per_lot: int
    maker_bps: int
    taker_bps: int
    held: int = 0  # always hold_per_lot x leaves


@dataclass(frozen=True)
class Withdrawal:
    account: int
    asset: int
    amount: int


def fee(notional: int, bps: int) -> int:
    """ceil(N x bps / 10000) for positive and negative bps alike (always in the venue's favour)."""
    return -((-notional * bps) // 10000)


def hold_per_lot(side: int, market: Market, hold_price: int, maker_bps: int, taker_bps: int) -> int:
    """sell: base_per_lot; buy: N(P, 1) + ceil(N(P, 1) x max(maker, taker, 0) / 10000)."""
    if side == Side.SELL:
        return market.base_per_lot
    per_lot = market.notional(hold_price, 1)
    return per_lot + fee(per_lot, max(maker_bps, taker_bps, 0))


def _band(ref: int, band_bps: int) -> int:
    return ref * band_bps // 10000


class ReferenceFundsEngine(ReferenceEngine):
    """Same observable behaviour as core_cython.engine.Engine(funds=True), written for clarity."""

    funds = True

    def __init__(self) -> None:
        super().__init__()
        self.assets_: dict[int, int] = {}  # asset -> decimals
        self.accounts_: dict[int, Account] = {
            ACCOUNT_EXTERNAL: Account(AccountType.SYSTEM),
            ACCOUNT_ADJUSTMENTS: Account(AccountType.SYSTEM),
            ACCOUNT_FEES: Account(AccountType.FEE),
        }
        self.bal: dict[tuple[int, int], list[int]] = {}  # (account, asset) -> [available, held]
        self.markets: dict[int, Market] = {}
        self.fees: dict[tuple[int, int], tuple[int, int]] = {}  # (symbol, tier) -> (maker, taker)
        self.refs: set[tuple[int, int]] = set()  # credited deposit refs
        self.pending: dict[int, Withdrawal] = {}  # withdrawal id -> pending withdrawal

    # ----- public funds API (mirrors Engine) ----------------------------------------------------

    def balance(self, account: int, asset: int) -> tuple[int, int]:
        if account not in self.accounts_:
            raise KeyError(account)
        avail, held = self.bal.get((account, asset), (0, 0))
        return avail, held

    def balances(self) -> dict[tuple[int, int], tuple[int, int]]:
        return {key: (a, h) for key, (a, h) in sorted(self.bal.items()) if a or h}

    def accounts(self) -> dict[int, dict[str, int]]:
        return {acct: {"owner": a.owner, "type": int(a.type), "tier": a.tier, "status": int(a.status),
                       "max_open": a.max_open, "open_orders": self._open_orders(acct)}
                for acct, a in sorted(self.accounts_.items())}

    def assets(self) -> dict[int, int]:
        return dict(sorted(self.assets_.items()))

    def withdrawals(self) -> dict[int, tuple[int, int, int]]:
        return {wid: (w.account, w.asset, w.amount) for wid, w in sorted(self.pending.items())}

    def fee_rates(self, account: int, symbol: int) -> tuple[int, int]:
        """An account's tier, else tier 0's rates, else 0/0."""
        tier = self.accounts_[account].tier
        if (symbol, tier) in self.fees:
            return self.fees[(symbol, tier)]
        return self.fees.get((symbol, 0), (0, 0))

    def instrument(self, symbol: int) -> dict[str, int]:
        inst, market = self.instruments[symbol], self.markets[symbol]
        return {"max_price": inst.max_price, "min_qty": inst.min_qty, "max_qty": inst.max_qty,
                "min_notional": inst.min_notional, "band_bps": inst.band_bps,
                "last_price": self.last_price(symbol), "ref_price": market.ref_price,
                "max_notional": market.max_notional, "status": market.status, "base_asset": market.base,
                "quote_asset": market.quote, "base_per_lot": market.base_per_lot,
                "quote_per_tick_lot": market.quote_per_tick_lot}

    def open_orders(self) -> list[dict[str, Any]]:
        """Every live order, in acceptance order."""
        return [self._order_dict(o) for o in sorted(self.orders.values(), key=lambda o: o.accept_seq)]

    def order(self, order_id: int) -> dict[str, Any] | None:
        o = self.orders.get(order_id)
        return None if o is None else self._order_dict(o)

    @staticmethod
    def _order_dict(o: Order) -> dict[str, Any]:
        """A live order as Engine.order() shows it, with its funds fields."""
        f: OrderFunds = o.funds
        market_gtc = o.ord_type == OrdType.MARKET and o.tif == Tif.GTC  # a market GTC is an IOC
        return {"id": o.order_id, "account": o.account, "symbol": o.symbol, "side": o.side,
                "ord_type": o.ord_type, "tif": Tif.IOC if market_gtc else o.tif, "stp": o.stp,
                "flags": int(o.post_only),
                "price": o.price, "qty": o.qty, "leaves": o.leaves, "filled": o.filled,
                "visible": o.visible, "display": o.display, "stop_price": o.stop_price,
                "accept_seq": o.accept_seq, "pending_stop": o.pending_stop,
                "held": f.held, "hold_per_lot": f.hold_per_lot, "maker_bps": f.maker_bps,
                "taker_bps": f.taker_bps, "hold_price": f.hold_price,
                "session_tag": o.session_tag & 0xFFFF_FFFF_FFFF_FFFF}  # the engine keeps a u64

    # ----- dispatch ------------------------------------------------------------------------------

    def _handlers(self) -> dict[int, Any]:
        return {
            **super()._handlers(),
            Op.ADD_ASSET: self._add_asset,
            Op.CREATE_ACCOUNT: self._create_account,
            Op.DEPOSIT: self._deposit,
            Op.WITHDRAW_HOLD: self._withdraw_hold,
            Op.WITHDRAW_SETTLE: self._withdraw_finish,
            Op.WITHDRAW_RELEASE: self._withdraw_finish,
            Op.TRANSFER: self._transfer,
            Op.ADJUST: self._adjust,
            Op.SET_FEES: self._set_fees,
            Op.SET_FEE_TIER: self._set_fee_tier,
            Op.SET_ACCOUNT_STATUS: self._set_account_status,
            Op.SET_TRADING_STATUS: self._set_trading_status,
            Op.SET_LIMITS: self._set_limits,
        }

    def _unhandled_reason(self, cmd: Cmd) -> int:
        return Reason.UNKNOWN_OP

    # ----- balances and postings -----------------------------------------------------------------

    def _avail(self, account: int, asset: int) -> int:
        return self.bal.get((account, asset), [0, 0])[0]

    def _post(self, kind: int, cause: int, account: int, asset: int, d_avail: int, d_held: int, *,
              order_id: int = 0, other: int = 0, fee_: int = 0) -> None:
        """Apply one balance change and emit its POSTING (not emitted when both changes are 0)."""
        if d_avail == 0 and d_held == 0:
            return
        b = self.bal.setdefault((account, asset), [0, 0])
        b[0] += d_avail
        b[1] += d_held
        self._emit(EventType.POSTING, kind, account=account, symbol=asset, price=d_avail, qty=d_held,
                   leaves=b[0], filled=b[1], order_id=order_id, maker_order=cause, maker_account=other,
                   maker_leaves=fee_)

    def _supply(self, asset: int) -> int:
        """What customer and fee accounts hold: minus the contra accounts."""
        return -(self._avail(ACCOUNT_EXTERNAL, asset) + self._avail(ACCOUNT_ADJUSTMENTS, asset))

    def _open_orders(self, account: int) -> int:
        return sum(1 for o in self.orders.values() if o.account == account)

    # ----- order funds: holds, releases, settlement ---------------------------------------------

    def _reference(self, symbol: int) -> int:
        """Last trade price, else the configured reference price (0 = neither)."""
        return self.last_price(symbol) or self.markets[symbol].ref_price

    def _market_limit(self, symbol: int, side: int) -> int:
        """A market order's protection price now: ref moved by the band in the taker's favour."""
        ref = self._reference(symbol) or self._best(symbol, _opposite(side))
        assert ref is not None, "callers check for liquidity first"
        delta = _band(ref, self.instruments[symbol].band_bps)
        return ref + delta if side == Side.BUY else max(1, ref - delta)

    def _hold_price(self, c: Cmd) -> int:
        """P: a limit's price; a market's protection price now; a stop market's stop moved by the band."""
        if c.ord_type == OrdType.LIMIT:
            return c.price
        if c.stop_price == 0:
            return self._market_limit(c.symbol, c.side)
        delta = _band(c.stop_price, self.instruments[c.symbol].band_bps)
        return c.stop_price + delta if c.side == Side.BUY else max(1, c.stop_price - delta)

    def _order_funds(self, c: Cmd) -> OrderFunds:
        market = self.markets[c.symbol]
        maker, taker = self.fee_rates(c.account, c.symbol)
        price = self._hold_price(c)
        return OrderFunds(asset=market.quote if c.side == Side.BUY else market.base, hold_price=price,
                          hold_per_lot=hold_per_lot(c.side, market, price, maker, taker),
                          maker_bps=maker, taker_bps=taker)

    def _on_accepted(self, o: Order) -> None:
        """ACCEPTED is followed by the HOLD posting of hold_per_lot x qty."""
        assert self._cmd is not None
        f = self._order_funds(self._cmd)
        o.funds = f
        self._set_hold(o, f.hold_per_lot * o.leaves, PostingKind.HOLD)

    def _set_hold(self, o: Order, held: int, kind: int) -> None:
        """Move the order's hold to `held` (a HOLD or RELEASE posting caused by the last event)."""
        f: OrderFunds = o.funds
        diff = held - f.held
        f.held = held
        self._post(kind, self.last_event_seq, o.account, f.asset, -diff, diff, order_id=o.order_id)

    def _on_replaced(self, o: Order) -> None:
        """REPLACED is followed by one HOLD or RELEASE posting for the hold difference."""
        f: OrderFunds = o.funds
        f.hold_price = o.price
        f.hold_per_lot = hold_per_lot(o.side, self.markets[o.symbol], o.price, f.maker_bps, f.taker_bps)
        held = f.hold_per_lot * o.leaves
        self._set_hold(o, held, PostingKind.HOLD if held > f.held else PostingKind.RELEASE)

    def _finish(self, o: Order, type_: int, reason: int) -> None:
        """CANCELLED/EXPIRED, then the RELEASE of the whole remaining hold."""
        super()._finish(o, type_, reason)
        self._set_hold(o, 0, PostingKind.RELEASE)

    def _protection_price(self, t: Order) -> int:
        """A funded market buy never executes beyond its hold price."""
        limit = self._market_limit(t.symbol, t.side)
        return min(limit, t.funds.hold_price) if t.side == Side.BUY else limit

    def _fill(self, t: Order, m: Order) -> int:
        """TRADE, then the settlement postings 1-5 of the README."""
        price = super()._fill(t, m)
        trade = self._events[-1]
        q, cause = trade["qty"], trade["seq"]
        market = self.markets[t.symbol]
        n = market.notional(price, q)
        taker_fee = fee(n, t.funds.taker_bps)
        maker_fee = max(fee(n, m.funds.maker_bps), -taker_fee)  # a rebate never exceeds the taker fee
        buyer, seller = (t, m) if t.side == Side.BUY else (m, t)
        fee_b, fee_s = (taker_fee, maker_fee) if buyer is t else (maker_fee, taker_fee)
        consumed = buyer.funds.hold_per_lot * q
        base = q * market.base_per_lot
        buyer.funds.held -= consumed
        seller.funds.held -= base
        kind = PostingKind.TRADE
        self._post(kind, cause, buyer.account, market.quote, consumed - n - fee_b, -consumed,
                   order_id=buyer.order_id, other=seller.account, fee_=fee_b)
        self._post(kind, cause, buyer.account, market.base, base, 0,
                   order_id=buyer.order_id, other=seller.account)
        self._post(kind, cause, seller.account, market.base, 0, -base,
                   order_id=seller.order_id, other=buyer.account)
        self._post(kind, cause, seller.account, market.quote, n - fee_s, 0,
                   order_id=seller.order_id, other=buyer.account, fee_=fee_s)
        self._post(PostingKind.FEE, cause, ACCOUNT_FEES, market.quote, fee_b + fee_s, 0)
        return price

    # ----- NEW / REPLACE / CANCEL / MASS_CANCEL in funds mode ------------------------------------

    def _band_reason(self, symbol: int, price: int) -> int:
        """Rule 14: a limit price outside ref +- ref x band_bps // 10000 (when there is a ref)."""
        ref = self._reference(symbol)
        if ref > 0:
            delta = _band(ref, self.instruments[symbol].band_bps)
            if price < ref - delta or price > ref + delta:
                return Reason.PRICE_OUTSIDE_BAND
        return Reason.NONE

    def _status_reason(self, symbol: int) -> int:
        """Rule 12."""
        status = self.markets[symbol].status
        if status == TradingStatus.HALTED:
            return Reason.INSTRUMENT_HALTED
        if status == TradingStatus.CANCEL_ONLY:
            return Reason.CANCEL_ONLY
        return Reason.NONE

    def _validate_new(self, c: Cmd) -> int:
        """Core checks 1-11, then the funds checks 12-17."""
        if reason := super()._validate_new(c):
            return reason
        if reason := self._status_reason(c.symbol):
            return reason
        acct = self.accounts_.get(c.account)
        if acct is None:
            return Reason.UNKNOWN_ACCOUNT
        if acct.type != AccountType.CUSTOMER:
            return Reason.ACCOUNT_CANNOT_TRADE
        if acct.status == AccountStatus.HALTED:
            return Reason.ACCOUNT_HALTED
        if c.ord_type == OrdType.LIMIT and c.stop_price == 0:
            if reason := self._band_reason(c.symbol, c.price):
                return reason
        market = self.markets[c.symbol]
        f = self._order_funds(c)
        if market.max_notional and market.notional(f.hold_price, c.qty) > market.max_notional:
            return Reason.NOTIONAL_ABOVE_MAX
        if self._open_orders(c.account) >= acct.max_open:
            return Reason.TOO_MANY_OPEN_ORDERS
        hold = f.hold_per_lot * c.qty
        if hold >= HOLD_LIMIT:
            return Reason.NOTIONAL_ABOVE_MAX
        if hold > self._avail(c.account, f.asset):
            return Reason.INSUFFICIENT_FUNDS
        return Reason.NONE

    def _replace_reason(self, c: Cmd, o: Order | None) -> int:
        if reason := super()._replace_reason(c, o):
            return reason
        assert o is not None
        if reason := self._status_reason(o.symbol):
            return reason
        if self.accounts_[o.account].status == AccountStatus.HALTED:
            return Reason.ACCOUNT_HALTED
        price = c.price or o.price
        if price != o.price and (reason := self._band_reason(o.symbol, price)):
            return reason
        market = self.markets[o.symbol]
        if market.max_notional and market.notional(price, c.qty) > market.max_notional:
            return Reason.NOTIONAL_ABOVE_MAX
        f: OrderFunds = o.funds
        held = hold_per_lot(o.side, market, price, f.maker_bps, f.taker_bps) * (c.qty - o.filled)
        if held - f.held > self._avail(o.account, f.asset):
            return Reason.INSUFFICIENT_FUNDS
        return Reason.NONE

    def _cancel(self, c: Cmd) -> None:
        if c.reject:
            self._reject(c, c.reject)
            return
        o = self._owned(c)
        if o is None:
            self._reject(c, Reason.UNKNOWN_ORDER)
        elif self.markets[o.symbol].status == TradingStatus.HALTED:
            self._reject(c, Reason.INSTRUMENT_HALTED)
        else:
            self._finish(o, EventType.CANCELLED, Reason.USER_CANCEL)

    def _spared_by_mass_cancel(self, o: Order) -> bool:
        """Orders on halted instruments are skipped (and not counted)."""
        return self.markets[o.symbol].status == TradingStatus.HALTED

    def _add_instrument(self, c: Cmd) -> None:
        """Core validity, plus: both assets exist and differ, multipliers >= 1, no overflow."""
        base, quote, base_per_lot, qptl = c.asset, c.account, c.aux1, c.aux2
        valid = (base in self.assets_ and quote in self.assets_ and base != quote
                 and base_per_lot >= 1 and qptl >= 1
                 and c.price * c.display_qty * qptl < FUNDS_OVERFLOW_LIMIT
                 and c.display_qty * base_per_lot < FUNDS_OVERFLOW_LIMIT)
        if not valid:
            self._reject(c, Reason.INVALID_INSTRUMENT)
            return
        known = c.symbol in self.instruments
        super()._add_instrument(c)
        if not known and c.symbol in self.instruments:
            self.markets[c.symbol] = Market(base, quote, base_per_lot, qptl)

    # ----- funds commands ------------------------------------------------------------------------

    def _applied(self, c: Cmd, **fields: int) -> int:
        """APPLIED echoes the command; returns its seq (the cause of the postings that follow)."""
        echo = dict(order_id=c.order_id, account=c.account, price=c.price, qty=c.qty, side=c.flags,
                    symbol=c.asset if c.op in MONEY_OPS else c.symbol)
        self._emit(EventType.APPLIED, **{**echo, **fields})
        return self.last_event_seq

    def _account_reason(self, account: int, *, fee_ok: bool = False, halted_ok: bool = True) -> int:
        """A (customers only), A' (fee account allowed too), then H when halted_ok is False."""
        acct = self.accounts_.get(account)
        if acct is None:
            return Reason.UNKNOWN_ACCOUNT
        if acct.type != AccountType.CUSTOMER and not (fee_ok and acct.type == AccountType.FEE):
            return Reason.INVALID_ACCOUNT
        if not halted_ok and acct.status == AccountStatus.HALTED:
            return Reason.ACCOUNT_HALTED
        return Reason.NONE

    def _run_checks(self, c: Cmd, *checks: Any) -> bool:
        """The edge's reject first, then each check in order; the first failure is REJECTED."""
        for check in (lambda: c.reject, *checks):
            if reason := check():
                self._reject(c, reason)
                return False
        return True

    def _asset_reason(self, asset: int) -> int:
        return Reason.NONE if asset in self.assets_ else Reason.UNKNOWN_ASSET

    def _add_asset(self, c: Cmd) -> None:
        def invalid() -> int:
            ok = 1 <= c.asset <= MAX_ASSET and c.asset not in self.assets_ and 0 <= c.qty <= MAX_DECIMALS
            return Reason.NONE if ok else Reason.INVALID_ASSET

        if self._run_checks(c, invalid):
            self.assets_[c.asset] = c.qty
            self._applied(c)

    def _create_account(self, c: Cmd) -> None:
        if self._run_checks(
            c,
            lambda: Reason.INVALID_ACCOUNT if c.account < FIRST_CUSTOMER_ACCOUNT else 0,
            lambda: Reason.ACCOUNT_EXISTS if c.account in self.accounts_ else 0,
            lambda: Reason.INVALID_LIMITS if c.qty < 1 else 0,
        ):
            self.accounts_[c.account] = Account(AccountType.CUSTOMER, owner=c.order_id, tier=c.flags,
                                                max_open=c.qty)
            self._applied(c)

    def _deposit(self, c: Cmd) -> None:
        ref = (c.aux1, c.aux2)
        if self._run_checks(
            c,
            lambda: self._account_reason(c.account),
            lambda: self._asset_reason(c.asset),
            lambda: Reason.INVALID_AMOUNT if c.qty <= 0 else 0,
            lambda: Reason.MALFORMED if ref == (0, 0) else 0,
            lambda: Reason.DUPLICATE_REF if ref in self.refs else 0,
            lambda: Reason.SUPPLY_LIMIT if self._supply(c.asset) + c.qty > SUPPLY_CAP else 0,
        ):
            self.refs.add(ref)
            cause = self._applied(c)
            self._post(PostingKind.DEPOSIT, cause, c.account, c.asset, c.qty, 0, other=ACCOUNT_EXTERNAL)
            self._post(PostingKind.DEPOSIT, cause, ACCOUNT_EXTERNAL, c.asset, -c.qty, 0, other=c.account)

    def _withdraw_hold(self, c: Cmd) -> None:
        if self._run_checks(
            c,
            lambda: self._account_reason(c.account, halted_ok=False),
            lambda: self._asset_reason(c.asset),
            lambda: Reason.INVALID_AMOUNT if c.qty <= 0 else 0,
            lambda: Reason.MALFORMED if c.order_id == 0 else 0,
            lambda: Reason.DUPLICATE_WITHDRAWAL if c.order_id in self.pending else 0,
            lambda: Reason.INSUFFICIENT_FUNDS if self._avail(c.account, c.asset) < c.qty else 0,
        ):
            self.pending[c.order_id] = Withdrawal(c.account, c.asset, c.qty)
            cause = self._applied(c)
            self._post(PostingKind.WITHDRAWAL_HOLD, cause, c.account, c.asset, -c.qty, c.qty,
                       order_id=c.order_id)

    def _withdraw_finish(self, c: Cmd) -> None:
        """WITHDRAW_SETTLE (the amount leaves to EXTERNAL) or WITHDRAW_RELEASE (back to available)."""
        w = self.pending.get(c.order_id)
        if self._run_checks(
            c,
            lambda: Reason.UNKNOWN_WITHDRAWAL if w is None or c.account not in (0, w.account) else 0,
        ):
            assert w is not None
            del self.pending[c.order_id]
            cause = self._applied(c, account=w.account, symbol=w.asset, qty=w.amount)
            if c.op == Op.WITHDRAW_SETTLE:
                self._post(PostingKind.WITHDRAWAL, cause, w.account, w.asset, 0, -w.amount,
                           order_id=c.order_id, other=ACCOUNT_EXTERNAL)
                self._post(PostingKind.WITHDRAWAL, cause, ACCOUNT_EXTERNAL, w.asset, w.amount, 0,
                           order_id=c.order_id, other=w.account)
            else:
                self._post(PostingKind.WITHDRAWAL_RELEASE, cause, w.account, w.asset, w.amount, -w.amount,
                           order_id=c.order_id)

    def _transfer(self, c: Cmd) -> None:
        to = c.aux1

        def target() -> int:
            acct = self.accounts_.get(to)
            if acct is None:
                return Reason.UNKNOWN_ACCOUNT
            if acct.type == AccountType.SYSTEM or to == c.account:
                return Reason.INVALID_ACCOUNT
            return Reason.NONE

        if self._run_checks(
            c,
            lambda: self._account_reason(c.account, fee_ok=True, halted_ok=False),
            target,
            lambda: self._asset_reason(c.asset),
            lambda: Reason.INVALID_AMOUNT if c.qty <= 0 else 0,
            lambda: Reason.INSUFFICIENT_FUNDS if self._avail(c.account, c.asset) < c.qty else 0,
        ):
            cause = self._applied(c, maker_account=to)
            self._post(PostingKind.TRANSFER, cause, c.account, c.asset, -c.qty, 0, other=to)
            self._post(PostingKind.TRANSFER, cause, to, c.asset, c.qty, 0, other=c.account)

    def _adjust(self, c: Cmd) -> None:
        if self._run_checks(
            c,
            lambda: self._account_reason(c.account, fee_ok=True),
            lambda: self._asset_reason(c.asset),
            lambda: Reason.INVALID_AMOUNT if c.qty == 0 else 0,
            lambda: Reason.MISSING_REASON if c.flags == 0 else 0,
            lambda: Reason.INSUFFICIENT_FUNDS if -c.qty > self._avail(c.account, c.asset) else 0,
            lambda: Reason.SUPPLY_LIMIT if (self._supply(c.asset) + c.qty > SUPPLY_CAP or abs(
                self._avail(ACCOUNT_ADJUSTMENTS, c.asset) - c.qty) > SUPPLY_CAP) else 0,
        ):
            cause = self._applied(c)
            self._post(PostingKind.ADJUSTMENT, cause, c.account, c.asset, c.qty, 0,
                       order_id=c.order_id, other=ACCOUNT_ADJUSTMENTS)
            self._post(PostingKind.ADJUSTMENT, cause, ACCOUNT_ADJUSTMENTS, c.asset, -c.qty, 0,
                       order_id=c.order_id, other=c.account)

    def _symbol_reason(self, symbol: int) -> int:
        return Reason.NONE if symbol in self.instruments else Reason.UNKNOWN_SYMBOL

    def _set_fees(self, c: Cmd) -> None:
        maker, taker = c.price, c.qty

        def invalid() -> int:
            ok = -1000 <= maker <= 1000 and 0 <= taker <= 1000 and maker + taker >= 0
            return Reason.NONE if ok else Reason.INVALID_FEES

        if self._run_checks(c, lambda: self._symbol_reason(c.symbol), invalid):
            self.fees[(c.symbol, c.flags)] = (maker, taker)
            self._applied(c)

    def _set_fee_tier(self, c: Cmd) -> None:
        if self._run_checks(c, lambda: self._account_reason(c.account)):
            self.accounts_[c.account].tier = c.flags
            self._applied(c)

    def _set_account_status(self, c: Cmd) -> None:
        if self._run_checks(
            c,
            lambda: self._account_reason(c.account),
            lambda: Reason.INVALID_STATUS if c.flags not in tuple(AccountStatus) else 0,
        ):
            self.accounts_[c.account].status = c.flags
            self._applied(c)
            if c.flags == AccountStatus.HALTED:
                mine = [o for o in self.orders.values() if o.account == c.account]
                for o in sorted(mine, key=lambda o: o.accept_seq):
                    self._finish(o, EventType.CANCELLED, Reason.ACCOUNT_HALTED)

    def _set_trading_status(self, c: Cmd) -> None:
        if self._run_checks(
            c,
            lambda: self._symbol_reason(c.symbol),
            lambda: Reason.INVALID_STATUS if c.flags not in tuple(TradingStatus) else 0,
        ):
            self.markets[c.symbol].status = c.flags
            self._applied(c)

    def _set_limits(self, c: Cmd) -> None:
        def invalid() -> int:
            ok = 0 <= c.price <= self.instruments[c.symbol].max_price and c.aux1 >= 0
            return Reason.NONE if ok else Reason.INVALID_LIMITS

        if self._run_checks(c, lambda: self._symbol_reason(c.symbol), invalid):
            market = self.markets[c.symbol]
            market.ref_price, market.max_notional = c.price, c.aux1
            self._applied(c)


# ----- command builders (plain dicts of COMMAND_DTYPE fields, as in tests/engine_helpers.py) ------

Command = dict[str, int]


def add_asset(asset: int, decimals: int = 8) -> Command:
    return dict(op=Op.ADD_ASSET, asset=asset, qty=decimals)


def funds_instrument(symbol: int, base: int, quote: int, *, base_per_lot: int = 1,
                     quote_per_tick_lot: int = 1, max_price: int = 10_000, min_qty: int = 1,
                     max_qty: int = 1_000, min_notional: int = 0, band_bps: int = 1_000) -> Command:
    """ADD_INSTRUMENT with the funds fields (the field reuse of records.set_instrument)."""
    return dict(op=Op.ADD_INSTRUMENT, symbol=symbol, price=max_price, qty=min_qty, display_qty=max_qty,
                stop_price=min_notional, order_id=band_bps, asset=base, account=quote, aux1=base_per_lot,
                aux2=quote_per_tick_lot)


def create_account(account: int, *, max_open: int = 1_000, tier: int = 0, owner: int = 0) -> Command:
    return dict(op=Op.CREATE_ACCOUNT, account=account, order_id=owner, qty=max_open, flags=tier)


def deposit(account: int, asset: int, amount: int, ref: str | tuple[int, int] = "") -> Command:
    """DEPOSIT; ref is a string (hashed with records.ref_hash) or the raw (aux1, aux2) pair."""
    if isinstance(ref, str):
        from core_cython.records import ref_hash

        ref = ref_hash(ref or f"tx-{account}-{asset}-{amount}")
    return dict(op=Op.DEPOSIT, account=account, asset=asset, qty=amount, aux1=ref[0], aux2=ref[1])


def withdraw_hold(account: int, asset: int, amount: int, wid: int) -> Command:
    return dict(op=Op.WITHDRAW_HOLD, account=account, asset=asset, qty=amount, order_id=wid)


def withdraw_settle(wid: int, account: int = 0) -> Command:
    return dict(op=Op.WITHDRAW_SETTLE, order_id=wid, account=account)


def withdraw_release(wid: int, account: int = 0) -> Command:
    return dict(op=Op.WITHDRAW_RELEASE, order_id=wid, account=account)


def transfer(source: int, target: int, asset: int, amount: int) -> Command:
    return dict(op=Op.TRANSFER, account=source, aux1=target, asset=asset, qty=amount)


def adjust(account: int, asset: int, amount: int, *, reason: int = 1, ticket: int = 0) -> Command:
    return dict(op=Op.ADJUST, account=account, asset=asset, qty=amount, flags=reason, order_id=ticket)


def set_fees(symbol: int, maker_bps: int, taker_bps: int, *, tier: int = 0) -> Command:
    return dict(op=Op.SET_FEES, symbol=symbol, flags=tier, price=maker_bps, qty=taker_bps)


def set_fee_tier(account: int, tier: int) -> Command:
    return dict(op=Op.SET_FEE_TIER, account=account, flags=tier)


def set_account_status(account: int, status: int) -> Command:
    return dict(op=Op.SET_ACCOUNT_STATUS, account=account, flags=status)


def set_trading_status(symbol: int, status: int) -> Command:
    return dict(op=Op.SET_TRADING_STATUS, symbol=symbol, flags=status)


def set_limits(symbol: int, *, ref_price: int = 0, max_notional: int = 0) -> Command:
    return dict(op=Op.SET_LIMITS, symbol=symbol, price=ref_price, aux1=max_notional)


def events_to_array(events: list[dict[str, int]]) -> Any:
    """Reference events (dicts) as an EVENT_DTYPE array, the shape journal/ledger.py reads."""
    import numpy as np

    from core_cython.records import EVENT_DTYPE

    arr = np.zeros(len(events), dtype=EVENT_DTYPE)
    for name in EVENT_DTYPE.names or ():
        arr[name] = [e[name] for e in events]
    return arr


class FundsTwin:
    """Engine(funds=True) and the reference fed the same commands; every run() compares the events.

    It keeps the engine's whole event history, so check() can also run the ledger check.
    """

    def __init__(self, *setup: Command) -> None:
        from core_cython.engine import Engine

        self.eng = Engine(funds=True)
        self.ref = ReferenceFundsEngine()
        self.history: list[Any] = []
        if setup:
            self.run(*setup)

    def run(self, *cmds: Command) -> list[dict[str, int]]:
        from tests.engine_helpers import assert_same_events, batch, run_ref
        from tests.reference_model import events_from_array

        want = run_ref(self.ref, *cmds)
        self.eng.process(batch(cmds))
        self.history.append(self.eng.events().copy())
        got = events_from_array(self.history[-1])
        assert_same_events(got, want)
        return got

    def check(self) -> None:
        """Same state in engine and reference (books, balances, accounts, orders), sound ledger."""
        from journal.ledger import check_ledger

        assert_same_funds_state(self.eng, self.ref)
        assert check_ledger(self.eng, self.history) == []

    def balance(self, account: int, asset: int) -> tuple[int, int]:
        got = self.eng.balance(account, asset)
        assert got == self.ref.balance(account, asset)
        return tuple(got)  # type: ignore[return-value]


def assert_same_funds_state(eng: Any, ref: ReferenceFundsEngine) -> None:
    for sym in sorted(ref.instruments):
        assert eng.book(sym) == ref.book(sym), f"book of symbol {sym}"
        assert eng.stop_orders(sym) == ref.stop_orders(sym), f"pending stops of symbol {sym}"
        assert eng.last_price(sym) == ref.last_price(sym), f"last price of symbol {sym}"
        assert eng.instrument(sym) == ref.instrument(sym), f"instrument {sym}"
    assert (eng.last_cmd_seq, eng.last_event_seq) == (ref.last_cmd_seq, ref.last_event_seq)
    assert eng.live_orders() == ref.live_orders()
    for got, want in zip(eng.open_orders(), ref.open_orders(), strict=True):
        diff = {k: (got.get(k), want.get(k)) for k in {*got, *want} if got.get(k) != want.get(k)}
        assert not diff, f"order {want['id']} (engine, reference): {diff}"
    assert eng.balances() == ref.balances()
    assert eng.accounts() == ref.accounts()
    assert eng.assets() == ref.assets()
    assert eng.withdrawals() == ref.withdrawals()
    for acct in ref.accounts_:
        for sym in ref.instruments:
            assert eng.fee_rates(acct, sym) == ref.fee_rates(acct, sym)
