"""Parse and rebuild engine snapshots (version 3), so tests can build hostile ones.

The layout (little-endian) is the one Engine._snapshot (core_cython/engine.pyx) writes and
Engine._restore reads; in funds mode the ledger part is Ledger.serialize (core_cython/ledger.pyx):

    header      u32 magic "VSNP", u32 version, u32 funds flag, u64 last cmd seq, u64 last event seq
    ledger      (funds mode only)
      assets      u32 n, then n x (u32 asset id, u32 decimals)
      accounts    u32 n, then n x (u64 id, u64 owner, u32 max open, u32 type | tier << 8 | status << 16,
                  u32 m, then m x (u32 asset, i64 available, i64 held))
      withdrawals u64 n, then n x (u64 id, u64 account, u32 asset, i64 amount)
      deposit refs u64 n, then n x (i64, i64)
    instruments u32 n, then n x (u32 symbol, 10 x i64, u32 base asset, u32 quote asset, u32 status)
    fee rates   u32 n, then n x (u32 key = symbol << 8 | tier, i32 maker bps, i32 taker bps)
    orders      u64 n, then n x 132-byte records (Order below), in acceptance order
    books       per instrument (in the order above): bids then asks, each u32 n levels, then n x
                (i64 price key, u32 count, count x u64 order id)

The codec checks nothing but the framing (a truncated or over-long blob is a ValueError), so a
test can change any field, rebuild, and see what Engine.from_snapshot makes of it.
"""

from __future__ import annotations

import dataclasses
import struct
from dataclasses import dataclass, field
from typing import Any

MAGIC = 0x504E5356
VERSION = 3


@dataclass
class Balance:
    asset: int
    avail: int
    held: int


@dataclass
class Account:
    id: int
    owner: int
    max_open: int
    type: int
    tier: int
    status: int  # the word's bits 16 and up (the engine accepts 0 or 1)
    balances: list[Balance] = field(default_factory=list)

    def balance(self, asset: int) -> Balance:
        """The account's balance in asset, added (as 0/0, in asset order) if it has none."""
        for b in self.balances:
            if b.asset == asset:
                return b
        b = Balance(asset, 0, 0)
        self.balances.append(b)
        self.balances.sort(key=lambda x: x.asset)
        return b


@dataclass
class Withdrawal:
    id: int
    account: int
    asset: int
    amount: int


@dataclass
class Ledger:
    assets: list[tuple[int, int]]  # (asset id, decimals)
    accounts: list[Account]
    withdrawals: list[Withdrawal]
    deposit_refs: list[tuple[int, int]]

    def account(self, account_id: int) -> Account:
        return next(a for a in self.accounts if a.id == account_id)


@dataclass
class Instrument:
    symbol: int
    max_price: int
    min_qty: int
    max_qty: int
    min_notional: int
    band_bps: int
    last_price: int
    ref_price: int
    base_per_lot: int
    quote_per_tick_lot: int
    max_notional: int
    base_asset: int
    quote_asset: int
    status: int


@dataclass
class FeeRate:
    key: int  # symbol << 8 | tier
    maker_bps: int
    taker_bps: int


@dataclass
class Order:
    id: int
    account: int
    accept_seq: int
    price: int
    qty: int
    leaves: int
    filled: int
    visible: int
    display: int
    stop_price: int
    symbol: int
    side: int
    ord_type: int
    tif: int
    stp: int
    flags: int
    state: int  # 1 resting, 2 pending stop (engine.pyx ST_*)
    padding: bytes
    held: int
    hold_per_lot: int
    hold_price: int
    maker_bps: int
    taker_bps: int
    session_tag: int


@dataclass
class Level:
    key: int  # price for asks, -price for bids
    order_ids: list[int]


@dataclass
class Book:
    bids: list[Level]
    asks: list[Level]


@dataclass
class Snapshot:
    magic: int
    version: int
    funds: int
    last_cmd_seq: int
    last_event_seq: int
    ledger: Ledger | None  # None in core mode
    instruments: list[Instrument]
    fees: list[FeeRate]
    orders: list[Order]
    books: list[Book]  # one per instrument, same order

    def order(self, order_id: int) -> Order:
        return next(o for o in self.orders if o.id == order_id)

    def account(self, account_id: int) -> Account:
        assert self.ledger is not None, "a core-mode snapshot has no accounts"
        return self.ledger.account(account_id)


HEADER = struct.Struct("<IIIQQ")
ASSET = struct.Struct("<II")
ACCOUNT = struct.Struct("<QQIII")
BALANCE = struct.Struct("<Iqq")
WITHDRAWAL = struct.Struct("<QQIq")
DEPOSIT_REF = struct.Struct("<qq")
INSTRUMENT = struct.Struct("<I10qIII")
FEE_RATE = struct.Struct("<Iii")
ORDER = struct.Struct("<QQQ7qI6B2sqqqiiQ")
LEVEL = struct.Struct("<qI")
U32 = struct.Struct("<I")
U64 = struct.Struct("<Q")

assert INSTRUMENT.size == 96 and ORDER.size == 132  # engine.pyx SNAP_INSTRUMENT_SIZE, SNAP_ORDER_SIZE


class _Reader:
    def __init__(self, blob: bytes) -> None:
        self.blob = blob
        self.pos = 0

    def take(self, s: struct.Struct) -> tuple[Any, ...]:
        if self.pos + s.size > len(self.blob):
            raise ValueError(f"snapshot truncated at byte {self.pos}")
        values = s.unpack_from(self.blob, self.pos)
        self.pos += s.size
        return values

    def count(self, s: struct.Struct) -> int:
        return int(self.take(s)[0])


def parse(blob: bytes) -> Snapshot:
    r = _Reader(bytes(blob))
    magic, version, funds, last_cmd_seq, last_event_seq = r.take(HEADER)
    if (magic, version) != (MAGIC, VERSION):
        raise ValueError(f"not a version {VERSION} engine snapshot")
    ledger = _parse_ledger(r) if funds else None
    instruments = [Instrument(*r.take(INSTRUMENT)) for _ in range(r.count(U32))]
    fees = [FeeRate(*r.take(FEE_RATE)) for _ in range(r.count(U32))]
    orders = []
    for _ in range(r.count(U64)):
        v = r.take(ORDER)
        orders.append(Order(*v[:17], padding=v[17], held=v[18], hold_per_lot=v[19], hold_price=v[20],
                            maker_bps=v[21], taker_bps=v[22], session_tag=v[23]))
    books = [Book(_parse_levels(r), _parse_levels(r)) for _ in instruments]
    if r.pos != len(r.blob):
        raise ValueError(f"{len(r.blob) - r.pos} trailing bytes")
    return Snapshot(magic, version, funds, last_cmd_seq, last_event_seq, ledger, instruments, fees, orders,
                    books)


def _parse_ledger(r: _Reader) -> Ledger:
    assets = [r.take(ASSET) for _ in range(r.count(U32))]
    accounts = []
    for _ in range(r.count(U32)):
        account_id, owner, max_open, word, n_balances = r.take(ACCOUNT)
        balances = [Balance(*r.take(BALANCE)) for _ in range(n_balances)]
        accounts.append(Account(account_id, owner, max_open, word & 0xFF, (word >> 8) & 0xFF, word >> 16,
                                balances))
    withdrawals = [Withdrawal(*r.take(WITHDRAWAL)) for _ in range(r.count(U64))]
    refs = [r.take(DEPOSIT_REF) for _ in range(r.count(U64))]
    return Ledger(assets, accounts, withdrawals, refs)


def _parse_levels(r: _Reader) -> list[Level]:
    levels = []
    for _ in range(r.count(U32)):
        key, n = r.take(LEVEL)
        levels.append(Level(key, [r.count(U64) for _ in range(n)]))
    return levels


def build(snap: Snapshot) -> bytes:
    out = [HEADER.pack(snap.magic, snap.version, snap.funds, snap.last_cmd_seq, snap.last_event_seq)]
    if snap.funds:
        assert snap.ledger is not None, "a funds-mode snapshot needs a ledger"
        _build_ledger(snap.ledger, out)
    out.append(U32.pack(len(snap.instruments)))
    out += [INSTRUMENT.pack(*dataclasses.astuple(i)) for i in snap.instruments]
    out.append(U32.pack(len(snap.fees)))
    out += [FEE_RATE.pack(f.key, f.maker_bps, f.taker_bps) for f in snap.fees]
    out.append(U64.pack(len(snap.orders)))
    out += [ORDER.pack(*dataclasses.astuple(o)) for o in snap.orders]
    for book in snap.books:
        for levels in (book.bids, book.asks):
            out.append(U32.pack(len(levels)))
            for lvl in levels:
                out.append(LEVEL.pack(lvl.key, len(lvl.order_ids)))
                out += [U64.pack(oid) for oid in lvl.order_ids]
    return b"".join(out)


def _build_ledger(ledger: Ledger, out: list[bytes]) -> None:
    out.append(U32.pack(len(ledger.assets)))
    out += [ASSET.pack(*a) for a in ledger.assets]
    out.append(U32.pack(len(ledger.accounts)))
    for a in ledger.accounts:
        word = a.type | a.tier << 8 | a.status << 16
        out.append(ACCOUNT.pack(a.id, a.owner, a.max_open, word, len(a.balances)))
        out += [BALANCE.pack(b.asset, b.avail, b.held) for b in a.balances]
    out.append(U64.pack(len(ledger.withdrawals)))
    out += [WITHDRAWAL.pack(w.id, w.account, w.asset, w.amount) for w in ledger.withdrawals]
    out.append(U64.pack(len(ledger.deposit_refs)))
    out += [DEPOSIT_REF.pack(*ref) for ref in ledger.deposit_refs]


def check_round_trip(blob: bytes) -> Snapshot:
    """parse and build are inverses on blob: build(parse(blob)) == blob and parse(build(x)) == x."""
    snap = parse(blob)
    assert build(snap) == blob, "build(parse(blob)) differs from blob"
    assert parse(build(snap)) == snap, "parse(build(x)) differs from x"
    return snap


def hostile(blob: bytes, change: Any) -> bytes:
    """The snapshot blob with change(snapshot) applied (change edits the parsed snapshot in place)."""
    snap = parse(blob)
    change(snap)
    return build(snap)
