# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# distutils: language = c++
"""The matching engine: order books with price-time priority over fixed-size command records.

Rules are specified in core_cython/README.md. The hot path (process -> _apply -> ...) runs without
the GIL and without Python objects; Python is touched only at the batch boundary and by the
inspection helpers (book, order, snapshot).
"""

import hashlib

import numpy as np

cimport cython
cimport numpy as cnp
from cython.operator cimport dereference as deref
from cython.operator cimport preincrement as inc
from libc.stdint cimport INT64_MAX, int32_t, int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport abort, free, malloc, realloc
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.ref cimport Py_INCREF
from libc.string cimport memcpy, memset
from libcpp.algorithm cimport sort
from libcpp.map cimport map as cmap
from libcpp.unordered_map cimport unordered_map
from libcpp.utility cimport pair
from libcpp.vector cimport vector
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec

from core_cython.events cimport EventLog, log_applied, log_emit
from core_cython.ledger cimport ACCT_NONE, Account, Balance, Ledger
from core_cython.records cimport *
from core_cython.snapio cimport Reader, put32, put64

from core_cython.records import COMMAND_DTYPE, EVENT_DTYPE

cdef extern from "numpy/arrayobject.h":
    # (not declared by Cython's numpy pxd) steals a reference to descr
    object PyArray_NewFromDescr(type subtype, cnp.dtype descr, int nd, cnp.npy_intp* dims,
                                cnp.npy_intp* strides, void* data, int flags, object obj)

cnp.import_array()
# The record dtypes as objects: identity is checked first (the service's and the engine's arrays
# share them), because == on a structured dtype costs a microsecond a batch.
cdef object _COMMAND_DTYPE = COMMAND_DTYPE
cdef cnp.dtype _EVENT_DESCR = EVENT_DTYPE

cdef extern from *:
    """
    #define VENUE_NIL 0xFFFFFFFFu
    #define VENUE_MAX_ORDER_SLOTS (1ull << 31)
    #define VENUE_MAX_EVENT_SLOTS (1ull << 40)
    typedef __int128 venue_qty_sum;
    #define VENUE_HOLD_LIMIT (1ll << 62)
    #define VENUE_DEFINE_LIMIT (1ll << 61)
    """
    const uint32_t NIL "VENUE_NIL"   # "no slot" in the intrusive lists
    # Slot indices are uint32 with NIL = 2^32 - 1: doubling the pool must never wrap.
    const uint64_t MAX_ORDER_SLOTS "VENUE_MAX_ORDER_SLOTS"
    const uint64_t MAX_EVENT_SLOTS "VENUE_MAX_EVENT_SLOTS"
    # Sums of many quantities (each up to ~2^62 lots) need more than 64 bits.
    ctypedef long long qty_sum "venue_qty_sum"
    const int64_t HOLD_LIMIT "VENUE_HOLD_LIMIT"       # an order's hold must stay below this
    const int64_t DEFINE_LIMIT "VENUE_DEFINE_LIMIT"   # funds-mode instrument bounds (README)

cdef const uint64_t MAX_U32 = 0xFFFFFFFF

cdef enum:
    MAX_SYMBOL = 65535
    SNAPSHOT_VERSION = 3      # 3: orders carry their session tag
    SNAP_ORDER_SIZE = 132     # bytes of one order in a snapshot
    SNAP_INSTRUMENT_SIZE = 96
    # Order.state
    ST_FREE = 0
    ST_RESTING = 1   # in a book level, or being executed as a taker
    ST_STOP = 2      # pending stop


cdef struct Order:
    uint64_t id
    uint64_t account
    uint64_t accept_seq
    int64_t price          # limit price in ticks; 0 for market
    int64_t qty            # total quantity, including what has filled
    int64_t leaves
    int64_t filled
    int64_t visible        # matchable now (icebergs: <= display)
    int64_t display        # iceberg display quantity; 0 = plain order
    int64_t stop_price
    uint64_t session_tag   # NEW's aux1, opaque here: the gateway's name for the entering session
    # funds mode (README "Holds"): held = hold_per_lot x leaves of the quote (buy) or base (sell) asset
    int64_t held
    int64_t hold_per_lot
    int64_t hold_price     # the price the hold covers (caps a funded market buy's execution)
    int32_t maker_bps      # fee rates fixed at acceptance
    int32_t taker_bps
    uint32_t acct          # ledger account index
    uint32_t symbol
    uint32_t prev          # level queue (or free list via next)
    uint32_t next
    uint32_t gprev         # acceptance-order list of live orders
    uint32_t gnext
    uint8_t side           # the small fields last: 152 bytes in all, no padding inside
    uint8_t ord_type
    uint8_t tif
    uint8_t stp
    uint8_t flags
    uint8_t state


cdef struct Level:
    uint32_t head
    uint32_t tail
    uint32_t count
    qty_sum total          # sum of leaves, hidden iceberg quantity included


cdef struct Instrument:
    bint defined
    int64_t max_price
    int64_t min_qty
    int64_t max_qty
    int64_t min_notional
    int64_t band_bps
    int64_t last_price
    int64_t ref_price      # configured reference price (SET_LIMITS); 0 = none
    # funds mode
    uint32_t base_asset
    uint32_t quote_asset
    int64_t base_per_lot
    int64_t quote_per_tick_lot
    int64_t max_notional   # quote units; 0 = no limit
    uint8_t status         # TRADING_OPEN / CANCEL_ONLY / HALTED


cdef struct FeeRates:
    int32_t maker_bps
    int32_t taker_bps


ctypedef cmap[int64_t, Level] LevelMap          # bids keyed by -price: begin() is always the best
ctypedef pair[int64_t, uint64_t] StopKey        # (signed stop price, acceptance seq)
ctypedef cmap[StopKey, uint32_t] StopMap        # sell stops keyed by -stop: begin() triggers first
ctypedef pair[uint64_t, uint32_t] SeqSlot


cdef inline int64_t min64(int64_t a, int64_t b) noexcept nogil:
    return a if a < b else b


cdef inline int64_t side_key(uint8_t side, int64_t price) noexcept nogil:
    return price if side == SIDE_SELL else -price


cdef struct FundsPlan:
    uint32_t acct
    int64_t hold_price
    int64_t hold_per_lot
    int64_t hold
    FeeRates rates


cdef inline int64_t band_delta(int64_t ref, int64_t bps) noexcept nogil:
    """ref * bps // 10000 without overflow (ref >= 0)."""
    return (ref // 10000) * bps + ((ref % 10000) * bps) // 10000


cdef inline int64_t stop_market_hold_price(int64_t stop, uint8_t side, int64_t band_bps) noexcept nogil:
    """A stop market's hold price: its stop moved by the band, against the order (README "Holds")."""
    cdef int64_t d = band_delta(stop, band_bps)
    if side == SIDE_BUY:
        return stop + d
    return stop - d if stop - d > 1 else 1


cdef inline int64_t fee_of(int64_t notional, int32_t bps) noexcept nogil:
    """ceil(notional x bps / 10000): charges round up, rebates round toward zero (venue's favour)."""
    cdef qty_sum x
    cdef int64_t y
    if notional < (1LL << 52):   # |bps| <= 1000 < 2^10: the product fits 64 bits (fast division)
        y = notional * bps
        return (y + 9999) // 10000 if y >= 0 else y // 10000
    x = <qty_sum>notional * bps
    if x >= 0:
        return <int64_t>((x + 9999) / 10000)
    return <int64_t>(x / 10000)  # C division truncates toward zero: the ceiling of a negative


cdef bint _fee_key_less(const pair[uint32_t, FeeRates]& a, const pair[uint32_t, FeeRates]& b) noexcept nogil:
    return a.first < b.first


cdef inline bint _valid_instrument(Instrument* ins) noexcept nogil:
    # max_price x max_qty < 2^62 keeps every price x qty product inside int64.
    return (ins.max_price > 0 and ins.min_qty > 0 and ins.max_qty >= ins.min_qty
            and ins.min_notional >= 0 and 1 <= ins.band_bps <= 10000
            and ins.max_price <= ((<int64_t>1 << 62) - 1) // ins.max_qty
            and 0 <= ins.last_price <= ins.max_price)


cdef char* _put_order(char* p, Order* o) noexcept:
    cdef uint8_t b[8]
    p = put64(p, o.id)
    p = put64(p, o.account)
    p = put64(p, o.accept_seq)
    p = put64(p, o.price)
    p = put64(p, o.qty)
    p = put64(p, o.leaves)
    p = put64(p, o.filled)
    p = put64(p, o.visible)
    p = put64(p, o.display)
    p = put64(p, o.stop_price)
    p = put32(p, o.symbol)
    b[0] = o.side
    b[1] = o.ord_type
    b[2] = o.tif
    b[3] = o.stp
    b[4] = o.flags
    b[5] = o.state
    b[6] = 0
    b[7] = 0
    memcpy(p, b, 8)
    p += 8
    p = put64(p, o.held)
    p = put64(p, o.hold_per_lot)
    p = put64(p, o.hold_price)
    p = put32(p, <uint32_t>o.maker_bps)
    p = put32(p, <uint32_t>o.taker_bps)
    return put64(p, o.session_tag)


@cython.final
cdef class Engine:
    cdef Order* orders
    cdef uint32_t cap
    cdef uint32_t free_head
    cdef uint32_t ghead
    cdef uint32_t gtail
    cdef uint64_t n_live
    cdef unordered_map[uint64_t, uint32_t] ids
    cdef vector[Instrument] instruments
    cdef vector[LevelMap] bids
    cdef vector[LevelMap] asks
    cdef vector[StopMap] buy_stops
    cdef vector[StopMap] sell_stops
    cdef EventLog log
    cdef int64_t px_hi        # highest / lowest trade price since the last stop round
    cdef int64_t px_lo
    cdef readonly uint64_t last_cmd_seq
    cdef bint busy            # inside process(): the GIL is released, so guard against re-entry
    cdef readonly bint funds  # accounts, holds, settlement and pre-trade risk (README "Funds mode")
    cdef Ledger ledger
    cdef vector[Account]* accts               # = &ledger.accounts, reachable without the GIL
    cdef unordered_map[uint32_t, FeeRates] fees   # key: symbol << 8 | tier

    def __cinit__(self, uint32_t initial_orders=1024, size_t initial_events=4096, bint funds=False):
        # Both buffers grow by doubling (a realloc on the hot path): size them for the expected
        # book and batch to keep that copy out of the latency tail.
        if initial_orders > MAX_ORDER_SLOTS or initial_events > MAX_EVENT_SLOTS:
            raise ValueError(f"initial sizes must be at most {MAX_ORDER_SLOTS} orders and "
                             f"{MAX_EVENT_SLOTS} events")
        self.cap = 0
        self.orders = NULL
        self.free_head = NIL
        self.ghead = NIL
        self.gtail = NIL
        self.n_live = 0
        self.log.cap = initial_events if initial_events > 0 else 1
        self.log.len = 0
        self.log.ev = <Event*>malloc(self.log.cap * sizeof(Event))
        if self.log.ev == NULL:
            raise MemoryError()
        self._grow_orders(initial_orders if initial_orders > 0 else 1)
        self.instruments.resize(1)
        self.bids.resize(1)
        self.asks.resize(1)
        self.buy_stops.resize(1)
        self.sell_stops.resize(1)
        self.px_hi = 0
        self.px_lo = INT64_MAX
        self.funds = funds
        self.ledger = Ledger()  # empty and unused in core mode
        self.accts = &self.ledger.accounts

    def __dealloc__(self):
        free(self.orders)
        free(self.log.ev)

    # ------------------------------------------------------------------ memory

    cdef void _grow_orders(self, uint64_t new_cap) noexcept nogil:
        cdef Order* grown
        cdef uint32_t i
        if new_cap > MAX_ORDER_SLOTS or new_cap <= self.cap:
            abort()  # 2^31 live orders: past what slot indices can address
        grown = <Order*>realloc(self.orders, new_cap * sizeof(Order))
        if grown == NULL:
            abort()  # out of memory: the engine cannot continue deterministically
        self.orders = grown
        # Thread the new slots onto the free list, lowest index first.
        i = <uint32_t>new_cap
        while i > self.cap:
            i -= 1
            memset(&self.orders[i], 0, sizeof(Order))
            self.orders[i].next = self.free_head
            self.free_head = i
        self.cap = <uint32_t>new_cap

    cdef inline uint32_t _alloc(self) noexcept nogil:
        cdef uint32_t idx
        if self.free_head == NIL:
            self._grow_orders(<uint64_t>self.cap * 2)
        idx = self.free_head
        self.free_head = self.orders[idx].next
        return idx

    cdef inline Event* _emit(self, uint8_t type, uint8_t reason) noexcept nogil:
        return log_emit(&self.log, type, reason)

    cdef inline void _emit_order(self, uint8_t type, uint8_t reason, Order* o, int64_t qty) noexcept nogil:
        cdef Event* e = self._emit(type, reason)
        e.order_id = o.id
        e.account = o.account
        e.symbol = o.symbol
        e.side = o.side
        e.price = o.price
        e.qty = qty
        e.leaves = o.leaves
        e.filled = o.filled

    cdef inline void _emit_triggered(self, Order* o) noexcept nogil:
        self._emit_order(EV_TRIGGERED, R_NONE, o, o.leaves)
        self.log.ev[self.log.len - 1].price = o.stop_price

    cdef void _reject(self, uint8_t reason) noexcept nogil:
        cdef const Command* c = self.log.cur
        cdef Event* e = self._emit(EV_REJECTED, reason)
        e.order_id = c.order_id
        e.account = c.account
        e.symbol = c.asset if is_money_op(c.op) else c.symbol
        e.side = c.side
        e.price = c.price
        e.qty = c.qty

    # ------------------------------------------------------------------ live-order bookkeeping

    cdef void _link_live(self, uint32_t idx) noexcept nogil:
        cdef Order* o = &self.orders[idx]
        o.gprev = self.gtail
        o.gnext = NIL
        if self.gtail != NIL:
            self.orders[self.gtail].gnext = idx
        else:
            self.ghead = idx
        self.gtail = idx
        self.ids[o.id] = idx
        self.n_live += 1
        if self.funds:
            self.accts[0][o.acct].open_orders += 1

    cdef void _release(self, uint32_t idx) noexcept nogil:
        """Forget a finished order: off the live list, out of the id map, slot back to the pool."""
        cdef Order* o = &self.orders[idx]
        if o.gprev != NIL:
            self.orders[o.gprev].gnext = o.gnext
        else:
            self.ghead = o.gnext
        if o.gnext != NIL:
            self.orders[o.gnext].gprev = o.gprev
        else:
            self.gtail = o.gprev
        self.ids.erase(o.id)
        o.state = ST_FREE
        o.next = self.free_head
        self.free_head = idx
        self.n_live -= 1
        if self.funds:
            self.accts[0][o.acct].open_orders -= 1

    cdef void _define_symbol(self, uint32_t sym, Instrument* ins) noexcept nogil:
        if sym >= self.instruments.size():
            self.instruments.resize(sym + 1)
            self.bids.resize(sym + 1)
            self.asks.resize(sym + 1)
            self.buy_stops.resize(sym + 1)
            self.sell_stops.resize(sym + 1)
        self.instruments[sym] = ins[0]

    cdef void _add_stop(self, uint32_t idx) noexcept nogil:
        """File a pending stop under (signed stop price, acceptance seq): begin() triggers first."""
        cdef Order* o = &self.orders[idx]
        if o.side == SIDE_BUY:
            self.buy_stops[o.symbol][StopKey(o.stop_price, o.accept_seq)] = idx
        else:
            self.sell_stops[o.symbol][StopKey(-o.stop_price, o.accept_seq)] = idx

    cdef inline LevelMap* _side_levels(self, uint32_t symbol, uint8_t side) noexcept nogil:
        return &self.bids[symbol] if side == SIDE_BUY else &self.asks[symbol]

    cdef void _append_to_level(self, Level* lvl, uint32_t idx) noexcept nogil:
        cdef Order* o = &self.orders[idx]
        o.next = NIL
        if lvl.count == 0:
            o.prev = NIL
            lvl.head = idx
        else:
            o.prev = lvl.tail
            self.orders[lvl.tail].next = idx
        lvl.tail = idx
        lvl.count += 1
        lvl.total += o.leaves

    cdef void _unlink_from_level(self, Level* lvl, uint32_t idx) noexcept nogil:
        cdef Order* o = &self.orders[idx]
        if o.prev != NIL:
            self.orders[o.prev].next = o.next
        else:
            lvl.head = o.next
        if o.next != NIL:
            self.orders[o.next].prev = o.prev
        else:
            lvl.tail = o.prev
        lvl.count -= 1
        lvl.total -= o.leaves

    cdef void _rest(self, uint32_t idx) noexcept nogil:
        cdef Order* o = &self.orders[idx]
        cdef LevelMap* levels = self._side_levels(o.symbol, o.side)
        o.visible = min64(o.display, o.leaves) if o.display > 0 else o.leaves
        o.state = ST_RESTING
        self._append_to_level(&deref(levels)[side_key(o.side, o.price)], idx)

    cdef void _take_out_of_book(self, uint32_t idx) noexcept nogil:
        """Remove a resting order from its level (or a pending stop from its stop map)."""
        cdef Order* o = &self.orders[idx]
        cdef LevelMap* levels
        cdef LevelMap.iterator it
        if o.state == ST_STOP:
            if o.side == SIDE_BUY:
                self.buy_stops[o.symbol].erase(StopKey(o.stop_price, o.accept_seq))
            else:
                self.sell_stops[o.symbol].erase(StopKey(-o.stop_price, o.accept_seq))
            return
        levels = self._side_levels(o.symbol, o.side)
        it = levels.find(side_key(o.side, o.price))
        if it == levels.end():
            return
        self._unlink_from_level(&deref(it).second, idx)
        if deref(it).second.count == 0:
            levels.erase(it)

    cdef void _finish(self, uint32_t idx, uint8_t type, uint8_t reason) noexcept nogil:
        """Cancel or expire what is left of an order (already out of the book) and release it."""
        cdef Order* o = &self.orders[idx]
        cdef int64_t open_qty = o.leaves
        o.leaves = 0
        self._emit_order(type, reason, o, open_qty)
        if self.funds and o.held > 0:
            self.ledger.post(&self.log, o.acct, self._hold_asset(o), o.held, -o.held, o.id,
                             self.log.last_seq, 0, 0, P_RELEASE)
            o.held = 0
        self._release(idx)

    # ------------------------------------------------------------------ dispatch

    cdef void _apply(self, Command* c) noexcept nogil:
        self.last_cmd_seq += 1
        c.seq = self.last_cmd_seq
        self.log.cur = c
        if c.op == OP_NEW:
            self._on_new(c)
        elif c.op == OP_CANCEL:
            self._on_cancel(c)
        elif c.op == OP_REPLACE:
            self._on_replace(c)
        elif c.op == OP_MASS_CANCEL:
            self._on_mass_cancel(c)
        elif c.op == OP_ADD_INSTRUMENT:
            self._on_add_instrument(c)
        elif c.op >= OP_ADD_ASSET and c.op <= OP_SET_LIMITS:
            self._on_funds_command(c)
        else:
            self._reject(R_UNKNOWN_OP)

    cdef void _on_add_instrument(self, const Command* c) noexcept nogil:
        cdef uint32_t sym = c.symbol
        cdef Instrument ins
        cdef Event* e
        # Field reuse is documented in records.set_instrument.
        ins.defined = True
        ins.max_price = c.price
        ins.min_qty = c.qty
        ins.max_qty = c.display_qty
        ins.min_notional = c.stop_price
        ins.band_bps = <int64_t>c.order_id
        ins.last_price = 0
        ins.ref_price = 0
        ins.base_asset = c.asset
        ins.quote_asset = <uint32_t>c.account if c.account <= MAX_U32 else 0
        ins.base_per_lot = c.aux1
        ins.quote_per_tick_lot = c.aux2
        ins.max_notional = 0
        ins.status = TRADING_OPEN
        if (sym == 0 or sym > MAX_SYMBOL or c.order_id > 10000 or not _valid_instrument(&ins)
                or (sym < self.instruments.size() and self.instruments[sym].defined)
                or (self.funds and (c.account > MAX_U32 or not self._valid_funds_instrument(&ins)))):
            self._reject(R_INVALID_INSTRUMENT)
            return
        self._define_symbol(sym, &ins)
        e = self._emit(EV_INSTRUMENT_ADDED, R_NONE)
        e.symbol = sym
        e.price = ins.max_price
        e.qty = ins.max_qty

    cdef bint _valid_funds_instrument(self, Instrument* ins) noexcept nogil:
        """Assets exist and differ; notionals and base amounts of any order stay far from overflow."""
        return (self.ledger.asset_exists(ins.base_asset) and self.ledger.asset_exists(ins.quote_asset)
                and ins.base_asset != ins.quote_asset and ins.base_per_lot >= 1 and ins.quote_per_tick_lot >= 1
                and <qty_sum>ins.max_price * ins.max_qty * ins.quote_per_tick_lot < DEFINE_LIMIT
                and <qty_sum>ins.max_qty * ins.base_per_lot < DEFINE_LIMIT)

    cdef inline bint _known_symbol(self, uint32_t sym) noexcept nogil:
        return sym > 0 and sym < self.instruments.size() and self.instruments[sym].defined

    cdef uint8_t _check_qty_price(self, Instrument* ins, uint8_t ord_type, int64_t price,
                                  int64_t qty) noexcept nogil:
        if qty <= 0:
            return R_INVALID_QTY
        if qty < ins.min_qty:
            return R_QTY_BELOW_MIN
        if qty > ins.max_qty:
            return R_QTY_ABOVE_MAX
        if ord_type == TYPE_LIMIT:
            if price <= 0:
                return R_INVALID_PRICE
            if price > ins.max_price:
                return R_PRICE_ABOVE_MAX
        return R_NONE

    cdef bint _would_take(self, uint32_t sym, uint8_t side, int64_t price) noexcept nogil:
        """Does a limit order at price cross the opposite best?"""
        cdef LevelMap* opp = &self.asks[sym] if side == SIDE_BUY else &self.bids[sym]
        if opp.empty():
            return False
        if side == SIDE_BUY:
            return deref(opp.begin()).first <= price
        return -deref(opp.begin()).first >= price

    cdef uint8_t _validate_new(self, const Command* c) noexcept nogil:
        cdef Instrument* ins
        cdef uint8_t r
        cdef bint is_stop = c.stop_price > 0
        cdef bint plain_gtc_limit
        cdef LevelMap* opp
        if c.reject != R_NONE:
            return c.reject
        if not self._known_symbol(c.symbol):
            return R_UNKNOWN_SYMBOL
        if c.side != SIDE_BUY and c.side != SIDE_SELL:
            return R_INVALID_SIDE
        if c.ord_type != TYPE_LIMIT and c.ord_type != TYPE_MARKET:
            return R_INVALID_ORDER_TYPE
        if c.tif < TIF_GTC or c.tif > TIF_FOK:
            return R_INVALID_TIF
        if c.stp > STP_CANCEL_BOTH:
            return R_INVALID_STP
        if self.ids.count(c.order_id):
            return R_DUPLICATE_ORDER_ID
        ins = &self.instruments[c.symbol]
        r = self._check_qty_price(ins, c.ord_type, c.price, c.qty)
        if r != R_NONE:
            return r
        if c.stop_price < 0 or c.stop_price > ins.max_price:
            return R_INVALID_STOP_PRICE
        plain_gtc_limit = c.ord_type == TYPE_LIMIT and c.tif == TIF_GTC and not is_stop
        if c.display_qty < 0 or (c.display_qty > 0 and not plain_gtc_limit):
            return R_INVALID_DISPLAY_QTY
        if (c.flags & FLAG_POST_ONLY) and not plain_gtc_limit:
            return R_INVALID_FLAGS
        if c.flags & ~FLAG_POST_ONLY:
            return R_INVALID_FLAGS
        if c.ord_type == TYPE_LIMIT and c.price * c.qty < ins.min_notional:
            return R_NOTIONAL_BELOW_MIN
        if not is_stop:
            if (c.flags & FLAG_POST_ONLY) and self._would_take(c.symbol, c.side, c.price):
                return R_POST_ONLY_WOULD_TAKE
            if c.ord_type == TYPE_MARKET:
                opp = &self.asks[c.symbol] if c.side == SIDE_BUY else &self.bids[c.symbol]
                if opp.empty():
                    return R_NO_LIQUIDITY
        return R_NONE

    # ------------------------------------------------------------------ commands

    cdef void _on_new(self, const Command* c) noexcept nogil:
        cdef uint8_t reason = self._validate_new(c)
        cdef uint32_t idx
        cdef Order* o
        cdef int64_t last
        cdef FundsPlan plan
        if reason == R_NONE and self.funds:
            reason = self._risk_new(c, &plan)
        if reason != R_NONE:
            self._reject(reason)
            return
        idx = self._alloc()
        o = &self.orders[idx]
        memset(o, 0, sizeof(Order))
        o.id = c.order_id
        o.account = c.account
        o.accept_seq = c.seq
        o.price = c.price if c.ord_type == TYPE_LIMIT else 0
        o.qty = c.qty
        o.leaves = c.qty
        o.display = c.display_qty if c.display_qty < c.qty else 0
        o.stop_price = c.stop_price
        o.session_tag = <uint64_t>c.aux1
        o.symbol = c.symbol
        o.side = c.side
        o.ord_type = c.ord_type
        o.tif = c.tif if (c.ord_type == TYPE_LIMIT or c.tif == TIF_FOK) else TIF_IOC
        o.stp = c.stp
        o.flags = c.flags
        o.state = ST_RESTING
        o.prev = NIL
        o.next = NIL
        if self.funds:
            o.acct = plan.acct
            o.hold_price = plan.hold_price
            o.hold_per_lot = plan.hold_per_lot
            o.maker_bps = plan.rates.maker_bps
            o.taker_bps = plan.rates.taker_bps
        self._link_live(idx)
        self._emit_order(EV_ACCEPTED, R_NONE, o, o.qty)
        if self.funds:
            o.held = plan.hold
            self.ledger.post(&self.log, o.acct, self._hold_asset(o), -plan.hold, plan.hold, o.id,
                             self.log.last_seq, 0, 0, P_HOLD)
        if o.stop_price > 0:
            last = self.instruments[o.symbol].last_price
            if last > 0 and ((o.side == SIDE_BUY and last >= o.stop_price)
                             or (o.side == SIDE_SELL and last <= o.stop_price)):
                self._emit_triggered(o)
                self._execute(idx)
            else:
                o.state = ST_STOP
                self._add_stop(idx)
        else:
            self._execute(idx)
        self._run_stops(c.symbol)

    cdef Order* _find_owned(self, const Command* c, uint32_t* idx_out) noexcept nogil:
        cdef unordered_map[uint64_t, uint32_t].iterator it = self.ids.find(c.order_id)
        cdef Order* o
        if it == self.ids.end():
            return NULL
        o = &self.orders[deref(it).second]
        if c.account != 0 and o.account != c.account:
            return NULL
        idx_out[0] = deref(it).second
        return o

    cdef void _on_cancel(self, const Command* c) noexcept nogil:
        cdef uint32_t idx
        cdef Order* o
        if c.reject != R_NONE:
            self._reject(c.reject)
            return
        o = self._find_owned(c, &idx)
        if o == NULL:
            self._reject(R_UNKNOWN_ORDER)
            return
        if self.funds and self.instruments[o.symbol].status == TRADING_HALTED:
            self._reject(R_INSTRUMENT_HALTED)
            return
        self._take_out_of_book(idx)
        self._finish(idx, EV_CANCELLED, R_USER_CANCEL)

    cdef void _on_mass_cancel(self, const Command* c) noexcept nogil:
        cdef uint32_t idx = self.ghead
        cdef uint32_t nxt
        cdef Order* o
        cdef int64_t cancelled = 0
        cdef Event* e
        while idx != NIL:
            o = &self.orders[idx]
            nxt = o.gnext
            if ((c.account == 0 or o.account == c.account) and (c.symbol == 0 or o.symbol == c.symbol)
                    and (c.aux1 == 0 or o.session_tag == <uint64_t>c.aux1)
                    and not (self.funds and self.instruments[o.symbol].status == TRADING_HALTED)):
                self._take_out_of_book(idx)
                self._finish(idx, EV_CANCELLED, R_MASS_CANCEL)
                cancelled += 1
            idx = nxt
        # Always answered, even when nothing matched: the requester learns it is done and how many.
        e = self._emit(EV_MASS_CANCEL_DONE, R_NONE)
        e.account = c.account
        e.symbol = c.symbol
        e.qty = cancelled

    cdef void _on_replace(self, const Command* c) noexcept nogil:
        cdef uint32_t idx
        cdef Order* o
        cdef Instrument* ins
        cdef int64_t new_price
        cdef int64_t new_leaves
        cdef uint8_t r
        cdef bint keep_priority
        cdef LevelMap* levels
        cdef Level* lvl
        cdef uint32_t sym
        cdef int64_t new_per_lot = 0
        cdef int64_t new_hold = 0
        if c.reject != R_NONE:
            self._reject(c.reject)
            return
        o = self._find_owned(c, &idx)
        if o == NULL:
            self._reject(R_UNKNOWN_ORDER)
            return
        if o.state == ST_STOP:
            self._reject(R_NOT_REPLACEABLE)
            return
        ins = &self.instruments[o.symbol]
        new_price = c.price if c.price != 0 else o.price
        r = self._check_qty_price(ins, TYPE_LIMIT, new_price, c.qty)
        if r == R_NONE and c.qty <= o.filled:
            r = R_REPLACE_QTY_TOO_LOW
        if r == R_NONE and new_price * c.qty < ins.min_notional:
            r = R_NOTIONAL_BELOW_MIN
        if r == R_NONE and (o.flags & FLAG_POST_ONLY) and new_price != o.price \
                and self._would_take(o.symbol, o.side, new_price):
            r = R_POST_ONLY_WOULD_TAKE
        if r == R_NONE and self.funds:
            r = self._risk_replace(o, new_price, c.qty, &new_per_lot, &new_hold)
        if r != R_NONE:
            self._reject(r)
            return
        new_leaves = c.qty - o.filled
        keep_priority = new_price == o.price and c.qty <= o.qty
        if keep_priority:
            levels = self._side_levels(o.symbol, o.side)
            lvl = &deref(levels)[side_key(o.side, o.price)]
            lvl.total -= o.leaves - new_leaves
            o.leaves = new_leaves
            o.qty = c.qty
            o.visible = min64(o.visible, new_leaves) if o.display > 0 else new_leaves
            self._emit_order(EV_REPLACED, R_NONE, o, o.qty)
            if self.funds:
                self._rehold(o, new_per_lot, new_hold)
            return
        self._take_out_of_book(idx)
        o.price = new_price
        o.qty = c.qty
        o.leaves = new_leaves
        sym = o.symbol
        self._emit_order(EV_REPLACED, R_NONE, o, o.qty)
        if self.funds:
            self._rehold(o, new_per_lot, new_hold)
        self._execute(idx)   # may release the order
        self._run_stops(sym)

    # ------------------------------------------------------------------ funds mode (README "Funds mode")

    cdef inline uint32_t _hold_asset(self, Order* o) noexcept nogil:
        cdef Instrument* ins = &self.instruments[o.symbol]
        return ins.quote_asset if o.side == SIDE_BUY else ins.base_asset

    cdef FeeRates _fee_rates(self, uint32_t sym, uint8_t tier) noexcept nogil:
        """The tier's rates for the instrument, else tier 0's, else none."""
        cdef unordered_map[uint32_t, FeeRates].iterator it = self.fees.find((sym << 8) | tier)
        cdef FeeRates zero
        if it == self.fees.end():
            it = self.fees.find(sym << 8)
        if it == self.fees.end():
            zero.maker_bps = 0
            zero.taker_bps = 0
            return zero
        return deref(it).second

    cdef bint _hold_per_lot(self, Instrument* ins, uint8_t side, int64_t price, FeeRates* rates,
                            int64_t* out) noexcept nogil:
        """Per-lot hold (README "Holds"); False if it does not fit."""
        cdef int64_t n1
        cdef int32_t r
        if side == SIDE_SELL:
            out[0] = ins.base_per_lot
            return True
        if <qty_sum>price * ins.quote_per_tick_lot >= HOLD_LIMIT:
            return False
        n1 = price * ins.quote_per_tick_lot
        r = rates.maker_bps if rates.maker_bps > rates.taker_bps else rates.taker_bps
        out[0] = n1 + fee_of(n1, r if r > 0 else 0)
        return out[0] < HOLD_LIMIT

    cdef uint8_t _band_check(self, Instrument* ins, int64_t price) noexcept nogil:
        cdef int64_t ref = ins.last_price if ins.last_price > 0 else ins.ref_price
        cdef int64_t delta
        if ref > 0:
            delta = band_delta(ref, ins.band_bps)
            if price < ref - delta or price > ref + delta:
                return R_PRICE_OUTSIDE_BAND
        return R_NONE

    cdef inline bint _over_max_notional(self, Instrument* ins, int64_t price, int64_t qty) noexcept nogil:
        return ins.max_notional > 0 and <qty_sum>price * qty * ins.quote_per_tick_lot > ins.max_notional

    cdef inline uint8_t _status_check(self, Instrument* ins) noexcept nogil:
        if ins.status == TRADING_HALTED:
            return R_INSTRUMENT_HALTED
        if ins.status == TRADING_CANCEL_ONLY:
            return R_CANCEL_ONLY
        return R_NONE

    cdef uint8_t _risk_new(self, const Command* c, FundsPlan* plan) noexcept nogil:
        """Pre-trade checks 12-17 of a NEW that passed the core checks; fills the plan."""
        cdef Instrument* ins = &self.instruments[c.symbol]
        cdef Account* a
        cdef uint8_t r = self._status_check(ins)
        cdef qty_sum hold
        if r != R_NONE:
            return r
        plan.acct = self.ledger.find(c.account)
        if plan.acct == ACCT_NONE:
            return R_UNKNOWN_ACCOUNT
        a = &self.accts[0][plan.acct]
        if a.type != ACCT_CUSTOMER:
            return R_ACCOUNT_CANNOT_TRADE
        if a.status == ACCT_HALTED:
            return R_ACCOUNT_HALTED
        if c.ord_type == TYPE_LIMIT:
            plan.hold_price = c.price
            if c.stop_price == 0:
                r = self._band_check(ins, c.price)
                if r != R_NONE:
                    return r
        elif c.stop_price > 0:
            plan.hold_price = stop_market_hold_price(c.stop_price, c.side, ins.band_bps)
        else:
            plan.hold_price = self._protection_price(c.symbol, c.side)
        if self._over_max_notional(ins, plan.hold_price, c.qty):
            return R_NOTIONAL_ABOVE_MAX
        if a.open_orders >= a.max_open:
            return R_TOO_MANY_OPEN_ORDERS
        plan.rates = self._fee_rates(c.symbol, a.tier)
        if not self._hold_per_lot(ins, c.side, plan.hold_price, &plan.rates, &plan.hold_per_lot):
            return R_NOTIONAL_ABOVE_MAX
        hold = <qty_sum>plan.hold_per_lot * c.qty
        if hold >= HOLD_LIMIT:
            return R_NOTIONAL_ABOVE_MAX
        plan.hold = <int64_t>hold
        if plan.hold > self.ledger.balance(plan.acct, ins.quote_asset if c.side == SIDE_BUY
                                           else ins.base_asset).avail:
            return R_INSUFFICIENT_FUNDS
        return R_NONE

    cdef uint8_t _risk_replace(self, Order* o, int64_t new_price, int64_t new_qty, int64_t* per_lot,
                               int64_t* new_hold) noexcept nogil:
        """Funds checks of a REPLACE that passed the core checks; the new hold in per_lot/new_hold."""
        cdef Instrument* ins = &self.instruments[o.symbol]
        cdef uint8_t r = self._status_check(ins)
        cdef FeeRates rates
        cdef qty_sum hold
        if r != R_NONE:
            return r
        if self.accts[0][o.acct].status == ACCT_HALTED:
            return R_ACCOUNT_HALTED
        if new_price != o.price:
            r = self._band_check(ins, new_price)
            if r != R_NONE:
                return r
        if self._over_max_notional(ins, new_price, new_qty):
            return R_NOTIONAL_ABOVE_MAX
        rates.maker_bps = o.maker_bps
        rates.taker_bps = o.taker_bps
        if not self._hold_per_lot(ins, o.side, new_price, &rates, per_lot):
            return R_NOTIONAL_ABOVE_MAX
        hold = <qty_sum>per_lot[0] * (new_qty - o.filled)
        if hold >= HOLD_LIMIT:
            return R_NOTIONAL_ABOVE_MAX
        new_hold[0] = <int64_t>hold
        if new_hold[0] - o.held > self.ledger.balance(o.acct, self._hold_asset(o)).avail:
            return R_INSUFFICIENT_FUNDS
        return R_NONE

    cdef void _rehold(self, Order* o, int64_t per_lot, int64_t new_hold) noexcept nogil:
        """After REPLACED: one HOLD or RELEASE posting for the change of the order's hold."""
        cdef int64_t delta = new_hold - o.held
        self.ledger.post(&self.log, o.acct, self._hold_asset(o), -delta, delta, o.id, self.log.last_seq,
                         0, 0, P_HOLD if delta > 0 else P_RELEASE)
        o.held = new_hold
        o.hold_per_lot = per_lot
        o.hold_price = o.price   # a replaced order is a resting limit: its hold price is its price

    cdef void _settle(self, Order* t, Order* m, int64_t price, int64_t q, uint64_t cause) noexcept nogil:
        """The postings of one trade (README "Settlement")."""
        cdef Instrument* ins = &self.instruments[t.symbol]
        cdef int64_t notional = price * q * ins.quote_per_tick_lot
        cdef int64_t base = q * ins.base_per_lot
        cdef int64_t fee_t = fee_of(notional, t.taker_bps)
        cdef int64_t fee_m = fee_of(notional, m.maker_bps)
        cdef Order* b
        cdef Order* s
        cdef int64_t fee_b
        cdef int64_t fee_s
        cdef int64_t used
        if fee_m < -fee_t:
            fee_m = -fee_t  # a rebate is paid out of this trade's taker fee, never beyond it
        if t.side == SIDE_BUY:
            b, s, fee_b, fee_s = t, m, fee_t, fee_m
        else:
            b, s, fee_b, fee_s = m, t, fee_m, fee_t
        used = b.hold_per_lot * q
        b.held -= used
        s.held -= base
        self.ledger.post(&self.log, b.acct, ins.quote_asset, used - notional - fee_b, -used, b.id, cause,
                         s.account, fee_b, P_TRADE)
        self.ledger.post(&self.log, b.acct, ins.base_asset, base, 0, b.id, cause, s.account, 0, P_TRADE)
        self.ledger.post(&self.log, s.acct, ins.base_asset, 0, -base, s.id, cause, b.account, 0, P_TRADE)
        self.ledger.post(&self.log, s.acct, ins.quote_asset, notional - fee_s, 0, s.id, cause, b.account,
                         fee_s, P_TRADE)
        self.ledger.post(&self.log, self.ledger.fees_idx, ins.quote_asset, fee_b + fee_s, 0, 0,
                         cause, 0, 0, P_FEE)

    cdef void _on_funds_command(self, const Command* c) noexcept nogil:
        cdef uint8_t r
        cdef Instrument* ins
        cdef FeeRates rates
        cdef uint32_t idx
        cdef uint32_t nxt
        if not self.funds:
            self._reject(R_FUNDS_OFF)
            return
        if c.reject != R_NONE:
            self._reject(c.reject)
            return
        if c.op == OP_SET_FEES or c.op == OP_SET_TRADING_STATUS or c.op == OP_SET_LIMITS:
            if not self._known_symbol(c.symbol):
                self._reject(R_UNKNOWN_SYMBOL)
                return
            ins = &self.instruments[c.symbol]
            if c.op == OP_SET_FEES:
                if (c.price < -1000 or c.price > 1000 or c.qty < 0 or c.qty > 1000 or c.price + c.qty < 0):
                    self._reject(R_INVALID_FEES)
                    return
                rates.maker_bps = <int32_t>c.price
                rates.taker_bps = <int32_t>c.qty
                self.fees[(c.symbol << 8) | c.flags] = rates
            elif c.op == OP_SET_TRADING_STATUS:
                if c.flags > TRADING_HALTED:
                    self._reject(R_INVALID_STATUS)
                    return
                ins.status = c.flags
            else:
                if c.price < 0 or c.price > ins.max_price or c.aux1 < 0:
                    self._reject(R_INVALID_LIMITS)
                    return
                ins.ref_price = c.price
                ins.max_notional = c.aux1
            log_applied(&self.log, c)
            return
        r = self.ledger.apply(&self.log, c)
        if r != R_NONE:
            self._reject(r)
            return
        if c.op == OP_SET_ACCOUNT_STATUS and c.flags == ACCT_HALTED:
            # Kill switch: every live order of the account goes, whatever its instrument's status.
            idx = self.ghead
            while idx != NIL:
                nxt = self.orders[idx].gnext
                if self.orders[idx].account == c.account:
                    self._take_out_of_book(idx)
                    self._finish(idx, EV_CANCELLED, R_ACCOUNT_HALTED)
                idx = nxt

    # ------------------------------------------------------------------ matching

    cdef int64_t _protection_price(self, uint32_t sym, uint8_t side) noexcept nogil:
        """A band around the reference price (last trade, configured, or opposite best: not empty)."""
        cdef Instrument* ins = &self.instruments[sym]
        cdef LevelMap* opp = &self.asks[sym] if side == SIDE_BUY else &self.bids[sym]
        cdef int64_t ref = ins.last_price
        cdef int64_t delta
        if ref == 0:
            ref = ins.ref_price
        if ref == 0:
            ref = deref(opp.begin()).first if side == SIDE_BUY else -deref(opp.begin()).first
        delta = band_delta(ref, ins.band_bps)
        if side == SIDE_BUY:
            return ref + delta
        return ref - delta if ref - delta > 1 else 1

    cdef int64_t _market_limit(self, Order* o) noexcept nogil:
        """The protection price that bounds a market order; a funded buy never beyond its hold price."""
        cdef int64_t limit = self._protection_price(o.symbol, o.side)
        if self.funds and o.side == SIDE_BUY and limit > o.hold_price:
            return o.hold_price
        return limit

    cdef bint _fok_fillable(self, Order* o, int64_t key_limit, LevelMap* opp) noexcept nogil:
        cdef qty_sum need = o.leaves
        cdef qty_sum avail = 0
        cdef qty_sum ahead_visible        # visible quantity ahead of a self order in this level
        cdef LevelMap.iterator it = opp.begin()
        cdef uint32_t m
        cdef Order* mo
        while it != opp.end() and deref(it).first <= key_limit:
            m = deref(it).second.head
            if o.stp == STP_CANCEL_MAKER:
                # Self orders are cancelled as they are met; everything else is reachable.
                while m != NIL:
                    mo = &self.orders[m]
                    if mo.account != o.account:
                        avail += mo.leaves
                    m = mo.next
            else:
                if o.stp != STP_NONE:
                    # Cancel-taker/both stop at the first self order: only the visible slices ahead
                    # of it are reachable (refilled icebergs go behind it).
                    ahead_visible = 0
                    while m != NIL:
                        mo = &self.orders[m]
                        if mo.account == o.account:
                            return avail + ahead_visible >= need
                        ahead_visible += mo.visible
                        m = mo.next
                # No self order in this level: icebergs refill and are reached again, so all of it.
                avail += deref(it).second.total
            if avail >= need:
                return True
            inc(it)
        return avail >= need

    cdef void _trade(self, Order* t, Order* m, int64_t price, int64_t q) noexcept nogil:
        cdef Event* e
        cdef Instrument* ins = &self.instruments[t.symbol]
        t.leaves -= q
        t.filled += q
        m.leaves -= q
        m.filled += q
        m.visible -= q
        ins.last_price = price
        if price > self.px_hi:
            self.px_hi = price
        if price < self.px_lo:
            self.px_lo = price
        e = self._emit(EV_TRADE, R_NONE)
        e.order_id = t.id
        e.account = t.account
        e.symbol = t.symbol
        e.side = t.side
        e.price = price
        e.qty = q
        e.leaves = t.leaves
        e.filled = t.filled
        e.maker_order = m.id
        e.maker_account = m.account
        e.maker_leaves = m.leaves
        e.maker_filled = m.filled
        if self.funds:
            self._settle(t, m, price, q, e.seq)

    cdef bint _match(self, uint32_t tidx, int64_t key_limit, LevelMap* opp) noexcept nogil:
        """Match taker against opp up to key_limit. False if STP cancelled the taker."""
        cdef Order* t = &self.orders[tidx]
        cdef LevelMap.iterator it
        cdef Level* lvl
        cdef uint32_t m
        cdef uint32_t nxt
        cdef Order* mo
        cdef int64_t price
        cdef int64_t q
        cdef bint taker_alive = True
        while t.leaves > 0 and taker_alive:
            it = opp.begin()
            if it == opp.end() or deref(it).first > key_limit:
                break
            lvl = &deref(it).second
            price = deref(it).first if t.side == SIDE_BUY else -deref(it).first
            m = lvl.head
            while m != NIL and t.leaves > 0:
                mo = &self.orders[m]
                nxt = mo.next
                if t.stp != STP_NONE and mo.account == t.account:
                    if t.stp == STP_CANCEL_MAKER or t.stp == STP_CANCEL_BOTH:
                        self._unlink_from_level(lvl, m)
                        self._finish(m, EV_CANCELLED, R_SELF_TRADE)
                    if t.stp != STP_CANCEL_MAKER:
                        taker_alive = False
                        break
                    m = nxt
                    continue
                q = min64(t.leaves, mo.visible)
                self._trade(t, mo, price, q)
                lvl.total -= q
                if mo.leaves == 0:
                    self._unlink_from_level(lvl, m)   # leaves already 0: total unaffected
                    self._release(m)
                elif mo.visible == 0:
                    # Iceberg refill: a new visible slice goes to the back of the level.
                    self._unlink_from_level(lvl, m)
                    mo.visible = min64(mo.display, mo.leaves)
                    self._append_to_level(lvl, m)
                    if nxt == NIL:
                        nxt = m
                m = nxt
            if lvl.count == 0:
                opp.erase(it)
        if not taker_alive:
            self._finish(tidx, EV_CANCELLED, R_SELF_TRADE)
        return taker_alive

    cdef void _execute(self, uint32_t idx) noexcept nogil:
        """Run an accepted (or triggered, or repriced) order as a taker, then rest or expire it."""
        cdef Order* o = &self.orders[idx]
        cdef LevelMap* opp = &self.asks[o.symbol] if o.side == SIDE_BUY else &self.bids[o.symbol]
        cdef int64_t limit
        cdef int64_t key_limit
        o.state = ST_RESTING
        if o.ord_type == TYPE_MARKET:
            if opp.empty():
                self._finish(idx, EV_EXPIRED, R_NO_LIQUIDITY)
                return
            limit = self._market_limit(o)
        else:
            limit = o.price
        key_limit = limit if o.side == SIDE_BUY else -limit
        if o.tif == TIF_FOK and not self._fok_fillable(o, key_limit, opp):
            self._finish(idx, EV_EXPIRED, R_FOK_UNFILLABLE)
            return
        if not self._match(idx, key_limit, opp):
            return
        if o.leaves == 0:
            self._release(idx)
        elif o.ord_type == TYPE_MARKET:
            self._finish(idx, EV_EXPIRED, R_MARKET_REMAINDER)
        elif o.tif != TIF_GTC:
            self._finish(idx, EV_EXPIRED, R_IOC_REMAINDER)
        else:
            self._rest(idx)

    cdef void _run_stops(self, uint32_t sym) noexcept nogil:
        """Trigger pending stops, round after round, while executions print through them."""
        cdef int64_t hi
        cdef int64_t lo
        cdef vector[SeqSlot] fired
        cdef StopMap* stops
        cdef StopMap.iterator it
        cdef size_t i
        cdef Order* o
        while self.px_hi > 0:
            hi = self.px_hi
            lo = self.px_lo
            self.px_hi = 0
            self.px_lo = INT64_MAX
            if sym == 0 or sym >= self.instruments.size():
                continue
            fired.clear()
            stops = &self.buy_stops[sym]
            it = stops.begin()
            while it != stops.end() and deref(it).first.first <= hi:
                fired.push_back(SeqSlot(deref(it).first.second, deref(it).second))
                it = stops.erase(it)
            stops = &self.sell_stops[sym]
            it = stops.begin()
            while it != stops.end() and -deref(it).first.first >= lo:
                fired.push_back(SeqSlot(deref(it).first.second, deref(it).second))
                it = stops.erase(it)
            sort(fired.begin(), fired.end())
            for i in range(fired.size()):
                o = &self.orders[fired[i].second]
                o.state = ST_RESTING
                self._emit_triggered(o)
                self._execute(fired[i].second)

    # ------------------------------------------------------------------ Python API

    cdef Command* _command_ptr(self, cmds, bint* writable, size_t* n) except NULL:
        cdef cnp.ndarray arr
        if not isinstance(cmds, cnp.ndarray):
            raise TypeError("commands must be a 1-D numpy array of COMMAND_DTYPE")
        arr = <cnp.ndarray>cmds
        if cnp.PyArray_NDIM(arr) != 1 or not (<object>cnp.PyArray_DESCR(arr) is _COMMAND_DTYPE
                                              or arr.dtype == _COMMAND_DTYPE):
            raise TypeError("commands must be a 1-D numpy array of COMMAND_DTYPE")
        if not cnp.PyArray_IS_C_CONTIGUOUS(arr):
            raise ValueError("commands must be C-contiguous")
        n[0] = cnp.PyArray_DIM(arr, 0)
        writable[0] = cnp.PyArray_ISWRITEABLE(arr)
        if n[0] == 0:
            return <Command*>self.orders  # never dereferenced
        return <Command*>cnp.PyArray_DATA(arr)

    cdef int _check_idle(self) except -1:
        if self.busy:
            raise RuntimeError("the engine is single-threaded: a process() call is running")
        return 0

    cdef int _prepare(self, Command* cp, size_t n, bint writable) except -1:
        """Commands either arrive unsequenced (seq 0, engine assigns) or carry the exact next seqs."""
        cdef size_t i
        cdef uint64_t expect = self.last_cmd_seq
        for i in range(n):
            expect += 1
            if cp[i].seq == 0:
                if not writable:
                    raise ValueError("read-only commands must carry their sequence numbers")
            elif cp[i].seq != expect:
                raise ValueError(f"command {i} has seq {cp[i].seq}, expected {expect}")
        return 0

    cdef inline void _apply_maybe_copy(self, Command* c, bint writable) noexcept nogil:
        cdef Command copy
        if writable:
            self._apply(c)
        else:
            copy = c[0]
            self._apply(&copy)

    def process(self, cmds) -> int:
        """Apply a batch of commands; return the number of events (read them with events())."""
        cdef bint writable
        cdef size_t n
        cdef size_t i
        cdef Command* cp = self._command_ptr(cmds, &writable, &n)
        self._check_idle()
        self._prepare(cp, n, writable)
        self.log.len = 0
        self.busy = True
        try:
            with nogil:
                for i in range(n):
                    self._apply_maybe_copy(&cp[i], writable)
        finally:
            self.busy = False
        return self.log.len

    def process_timed(self, cmds, lat_ns) -> int:
        """process(), also writing each command's latency in nanoseconds into lat_ns (int64)."""
        cdef bint writable
        cdef size_t n
        cdef size_t i
        cdef timespec t0
        cdef timespec t1
        cdef Command* cp = self._command_ptr(cmds, &writable, &n)
        cdef int64_t[::1] lat = lat_ns
        if <size_t>lat.shape[0] < n:
            raise ValueError("lat_ns is shorter than the batch")
        self._check_idle()
        self._prepare(cp, n, writable)
        self.log.len = 0
        self.busy = True
        try:
            with nogil:
                for i in range(n):
                    clock_gettime(CLOCK_MONOTONIC, &t0)
                    self._apply_maybe_copy(&cp[i], writable)
                    clock_gettime(CLOCK_MONOTONIC, &t1)
                    lat[i] = (t1.tv_sec - t0.tv_sec) * 1000000000 + (t1.tv_nsec - t0.tv_nsec)
        finally:
            self.busy = False
        return self.log.len

    def events(self):
        """The events of the last process() call: a view valid until the next call."""
        cdef cnp.npy_intp dims[1]
        self._check_idle()
        if self.log.len == 0:
            return np.zeros(0, dtype=EVENT_DTYPE)
        # A read-only array straight over the event log, keeping the engine alive (np.frombuffer
        # over a buffer object costs three times as much, on every batch).
        dims[0] = self.log.len
        Py_INCREF(_EVENT_DESCR)  # PyArray_NewFromDescr steals a reference to the dtype
        view = PyArray_NewFromDescr(np.ndarray, _EVENT_DESCR, 1, dims, NULL, <void*>self.log.ev, 0, None)
        cnp.set_array_base(view, self)
        return view

    @property
    def last_event_seq(self) -> int:
        return self.log.last_seq

    # ------------------------------------------------------------------ funds-mode inspection

    cdef int _need_funds(self) except -1:
        self._check_idle()
        if not self.funds:
            raise RuntimeError("this engine runs in core mode (Engine(funds=True) has accounts)")
        return 0

    def balance(self, uint64_t account, uint32_t asset) -> tuple:
        """(available, held) of an account in an asset; KeyError for an unknown account."""
        self._need_funds()
        return self.ledger.balance_of(account, asset)

    def balances(self) -> dict:
        """{(account, asset): (available, held)} for every non-zero balance."""
        self._need_funds()
        return self.ledger.all_balances()

    def accounts(self) -> dict:
        self._need_funds()
        return self.ledger.all_accounts()

    def assets(self) -> dict:
        self._need_funds()
        return self.ledger.all_assets()

    def withdrawals(self) -> dict:
        """Pending withdrawals: {withdrawal_id: (account, asset, amount)}."""
        self._need_funds()
        return self.ledger.pending_withdrawals()

    def instrument(self, uint32_t symbol) -> dict:
        self._check_idle()
        if not self._known_symbol(symbol):
            raise KeyError(symbol)
        cdef Instrument* ins = &self.instruments[symbol]
        return {"max_price": ins.max_price, "min_qty": ins.min_qty, "max_qty": ins.max_qty,
                "min_notional": ins.min_notional, "band_bps": ins.band_bps, "last_price": ins.last_price,
                "ref_price": ins.ref_price, "max_notional": ins.max_notional, "status": ins.status,
                "base_asset": ins.base_asset, "quote_asset": ins.quote_asset,
                "base_per_lot": ins.base_per_lot, "quote_per_tick_lot": ins.quote_per_tick_lot}

    def fee_rates(self, uint64_t account, uint32_t symbol) -> tuple:
        """(maker_bps, taker_bps) an order of the account accepted now would get."""
        self._need_funds()
        if not self._known_symbol(symbol):
            raise KeyError(symbol)
        cdef uint32_t acct = self.ledger.find(account)
        if acct == ACCT_NONE:
            raise KeyError(account)
        cdef FeeRates rates = self._fee_rates(symbol, self.accts[0][acct].tier)
        return (rates.maker_bps, rates.taker_bps)

    def live_orders(self) -> int:
        self._check_idle()
        return self.n_live

    def last_price(self, uint32_t symbol) -> int:
        self._check_idle()
        if not self._known_symbol(symbol):
            raise KeyError(symbol)
        return self.instruments[symbol].last_price

    def symbols(self) -> list:
        self._check_idle()
        return [s for s in range(1, self.instruments.size()) if self.instruments[s].defined]

    cdef dict _order_dict(self, uint32_t idx):
        cdef Order* o = &self.orders[idx]
        return {
            "id": o.id, "account": o.account, "symbol": o.symbol, "side": o.side,
            "ord_type": o.ord_type, "tif": o.tif, "stp": o.stp, "flags": o.flags,
            "price": o.price, "qty": o.qty, "leaves": o.leaves, "filled": o.filled,
            "visible": o.visible, "display": o.display, "stop_price": o.stop_price,
            "accept_seq": o.accept_seq, "pending_stop": o.state == ST_STOP,
            "held": o.held, "hold_per_lot": o.hold_per_lot, "hold_price": o.hold_price,
            "maker_bps": o.maker_bps, "taker_bps": o.taker_bps, "session_tag": o.session_tag,
        }

    def open_orders(self) -> list:
        """Every live order (resting or pending stop), in acceptance order."""
        self._check_idle()
        cdef uint32_t m = self.ghead
        out = []
        while m != NIL:
            out.append(self._order_dict(m))
            m = self.orders[m].gnext
        return out

    def order(self, uint64_t order_id):
        self._check_idle()
        cdef unordered_map[uint64_t, uint32_t].iterator it = self.ids.find(order_id)
        if it == self.ids.end():
            return None
        return self._order_dict(deref(it).second)

    cdef list _levels(self, LevelMap* levels, bint bids):
        cdef LevelMap.iterator it = levels.begin()
        cdef uint32_t m
        out = []
        while it != levels.end():
            orders = []
            m = deref(it).second.head
            while m != NIL:
                orders.append((self.orders[m].id, self.orders[m].leaves, self.orders[m].visible))
                m = self.orders[m].next
            out.append((-deref(it).first if bids else deref(it).first, orders))
            inc(it)
        return out

    def book(self, uint32_t symbol) -> dict:
        self._check_idle()
        if not self._known_symbol(symbol):
            raise KeyError(symbol)
        return {"bids": self._levels(&self.bids[symbol], True),
                "asks": self._levels(&self.asks[symbol], False)}

    def stop_orders(self, uint32_t symbol) -> list:
        """Pending stops of a symbol, in acceptance order."""
        self._check_idle()
        cdef uint32_t m = self.ghead
        out = []
        while m != NIL:
            if self.orders[m].state == ST_STOP and self.orders[m].symbol == symbol:
                out.append(self.orders[m].id)
            m = self.orders[m].gnext
        return out

    # ------------------------------------------------------------------ snapshots

    def snapshot(self) -> bytes:
        self._check_idle()
        return self._snapshot()

    cdef bytes _snapshot(self):
        """Canonical bytes of the whole state: equal states give equal bytes (no slot indices).

        Layout (little-endian): magic, version, funds flag, last cmd seq, last event seq; in funds
        mode the ledger (Ledger.serialize); instruments in symbol order; fee rates in key order; live
        orders in acceptance order (fixed 124-byte records); then per symbol the bid and ask levels,
        best first, each as price key, count and the order ids in time priority.
        """
        cdef bytes ledger_part = self.ledger.serialize() if self.funds else b""
        cdef size_t size = 4 + 4 + 4 + 8 + 8 + len(ledger_part) + 4 + 4 + self.fees.size() * 12 + 8
        cdef uint32_t sym
        cdef uint32_t count = 0
        cdef size_t n_stops = 0
        cdef vector[pair[uint32_t, FeeRates]] fee_list
        cdef unordered_map[uint32_t, FeeRates].iterator fit = self.fees.begin()
        for sym in range(1, self.instruments.size()):
            if self.instruments[sym].defined:
                count += 1
                size += SNAP_INSTRUMENT_SIZE
                size += 8 + self.bids[sym].size() * 12 + self.asks[sym].size() * 12
                n_stops += self.buy_stops[sym].size() + self.sell_stops[sym].size()
        # Each live order: its record, and its id in a level unless it is a pending stop.
        size += self.n_live * SNAP_ORDER_SIZE + (self.n_live - n_stops) * 8
        while fit != self.fees.end():
            fee_list.push_back(pair[uint32_t, FeeRates](deref(fit).first, deref(fit).second))
            inc(fit)
        sort(fee_list.begin(), fee_list.end(), _fee_key_less)
        cdef bytes out = PyBytes_FromStringAndSize(NULL, size)
        cdef char* base = PyBytes_AS_STRING(out)
        cdef char* p = base
        cdef Instrument* ins
        cdef uint32_t m
        cdef size_t i
        p = put32(p, 0x504E5356)  # "VSNP"
        p = put32(p, SNAPSHOT_VERSION)
        p = put32(p, self.funds)
        p = put64(p, self.last_cmd_seq)
        p = put64(p, self.log.last_seq)
        memcpy(p, PyBytes_AS_STRING(ledger_part), len(ledger_part))
        p += len(ledger_part)
        p = put32(p, count)
        for sym in range(1, self.instruments.size()):
            ins = &self.instruments[sym]
            if not ins.defined:
                continue
            p = put32(p, sym)
            p = put64(p, ins.max_price)
            p = put64(p, ins.min_qty)
            p = put64(p, ins.max_qty)
            p = put64(p, ins.min_notional)
            p = put64(p, ins.band_bps)
            p = put64(p, ins.last_price)
            p = put64(p, ins.ref_price)
            p = put64(p, ins.base_per_lot)
            p = put64(p, ins.quote_per_tick_lot)
            p = put64(p, ins.max_notional)
            p = put32(p, ins.base_asset)
            p = put32(p, ins.quote_asset)
            p = put32(p, ins.status)
        p = put32(p, <uint32_t>fee_list.size())
        for i in range(fee_list.size()):
            p = put32(p, fee_list[i].first)
            p = put32(p, <uint32_t>fee_list[i].second.maker_bps)
            p = put32(p, <uint32_t>fee_list[i].second.taker_bps)
        p = put64(p, self.n_live)
        m = self.ghead
        while m != NIL:
            p = _put_order(p, &self.orders[m])
            m = self.orders[m].gnext
        for sym in range(1, self.instruments.size()):
            if self.instruments[sym].defined:
                p = self._put_levels(p, &self.bids[sym])
                p = self._put_levels(p, &self.asks[sym])
        assert <size_t>(p - base) == size
        return out

    cdef char* _put_levels(self, char* p, LevelMap* levels) noexcept:
        cdef LevelMap.iterator it = levels.begin()
        cdef uint32_t m
        p = put32(p, levels.size())
        while it != levels.end():
            p = put64(p, deref(it).first)
            p = put32(p, deref(it).second.count)
            m = deref(it).second.head
            while m != NIL:
                p = put64(p, self.orders[m].id)
                m = self.orders[m].next
            inc(it)
        return p

    def state_hash(self) -> str:
        return hashlib.blake2b(self.snapshot(), digest_size=32).hexdigest()

    @staticmethod
    def from_snapshot(blob) -> Engine:
        """The engine (core or funds mode, as the snapshot says) in exactly the snapshot's state."""
        data = bytes(blob)
        cdef Engine eng = Engine(funds=len(data) >= 12 and data[8] == 1)
        eng._restore(data)
        return eng

    cdef void _restore(self, bytes blob) except *:
        cdef Reader r = Reader(blob)
        cdef uint32_t count
        cdef uint32_t sym
        cdef uint32_t i
        cdef uint64_t n_orders
        cdef uint64_t k
        cdef uint32_t idx
        cdef Order* o
        cdef Instrument ins
        cdef uint32_t n_levels
        cdef uint32_t n_in_level
        cdef uint32_t j
        cdef int64_t key
        cdef uint64_t oid
        cdef LevelMap* levels
        cdef Level* lvl
        cdef int side_i
        cdef uint64_t n_resting = 0
        cdef uint64_t n_placed = 0
        cdef vector[uint8_t] placed
        cdef uint32_t n_fees
        cdef uint32_t fkey
        cdef uint32_t prev_fkey = 0
        cdef FeeRates rates
        cdef uint32_t status
        cdef uint64_t prev_accept = 0
        if r.u32() != 0x504E5356 or r.u32() != SNAPSHOT_VERSION:
            raise ValueError("not an engine snapshot of this version")
        if r.u32() != self.funds:
            raise ValueError("snapshot: funds mode differs from this engine's")
        self.last_cmd_seq = r.u64()
        self.log.last_seq = r.u64()
        if self.funds:
            self.ledger.restore(r)
        count = r.u32()
        for i in range(count):
            sym = r.u32()
            if sym == 0 or sym > MAX_SYMBOL or sym < self.instruments.size():
                raise ValueError("snapshot: bad or unordered symbol id")  # canonical: ascending
            ins.defined = True
            ins.max_price = r.i64()
            ins.min_qty = r.i64()
            ins.max_qty = r.i64()
            ins.min_notional = r.i64()
            ins.band_bps = r.i64()
            ins.last_price = r.i64()
            ins.ref_price = r.i64()
            ins.base_per_lot = r.i64()
            ins.quote_per_tick_lot = r.i64()
            ins.max_notional = r.i64()
            ins.base_asset = r.u32()
            ins.quote_asset = r.u32()
            status = r.u32()
            if status > TRADING_HALTED:
                raise ValueError("snapshot: invalid trading status")
            ins.status = <uint8_t>status
            if not _valid_instrument(&ins) or (sym < self.instruments.size()
                                               and self.instruments[sym].defined):
                raise ValueError("snapshot: invalid or repeated instrument")
            if not (0 <= ins.ref_price <= ins.max_price and ins.max_notional >= 0
                    and ins.status <= TRADING_HALTED):
                raise ValueError("snapshot: invalid instrument limits")
            if self.funds and not self._valid_funds_instrument(&ins):
                raise ValueError("snapshot: invalid funds-mode instrument")
            self._define_symbol(sym, &ins)
        n_fees = r.u32()
        for i in range(n_fees):
            fkey = r.u32()
            rates.maker_bps = <int32_t>r.u32()
            rates.taker_bps = <int32_t>r.u32()
            if (not self._known_symbol(fkey >> 8) or (i > 0 and fkey <= prev_fkey) or not -1000 <= rates.maker_bps <= 1000
                    or not 0 <= rates.taker_bps <= 1000 or rates.maker_bps + rates.taker_bps < 0):
                raise ValueError("snapshot: invalid fee rates")
            self.fees[fkey] = rates
            prev_fkey = fkey
        n_orders = r.u64()
        for k in range(n_orders):
            idx = self._alloc()
            o = &self.orders[idx]
            memset(o, 0, sizeof(Order))
            o.id = r.u64()
            o.account = r.u64()
            o.accept_seq = r.u64()
            o.price = r.i64()
            o.qty = r.i64()
            o.leaves = r.i64()
            o.filled = r.i64()
            o.visible = r.i64()
            o.display = r.i64()
            o.stop_price = r.i64()
            o.symbol = r.u32()
            o.side = r.u8()
            o.ord_type = r.u8()
            o.tif = r.u8()
            o.stp = r.u8()
            o.flags = r.u8()
            o.state = r.u8()
            if r.u8() != 0 or r.u8() != 0:
                raise ValueError("snapshot: non-zero padding")
            o.held = r.i64()
            o.hold_per_lot = r.i64()
            o.hold_price = r.i64()
            o.maker_bps = <int32_t>r.u32()
            o.taker_bps = <int32_t>r.u32()
            o.session_tag = r.u64()
            o.prev = NIL
            o.next = NIL
            if not self._valid_restored_order(o) or self.ids.count(o.id) or o.accept_seq <= prev_accept:
                raise ValueError("snapshot: inconsistent order")
            prev_accept = o.accept_seq  # acceptance order: stop keys and priority depend on it
            if self.funds:
                o.acct = self.ledger.find(o.account)
                if not self._valid_restored_hold(o):
                    raise ValueError("snapshot: inconsistent order hold")
            elif o.held or o.hold_per_lot or o.hold_price or o.maker_bps or o.taker_bps:
                raise ValueError("snapshot: a core-mode order with funds fields")
            if o.state == ST_RESTING:
                n_resting += 1
            self._link_live(idx)
            if o.state == ST_STOP:
                self._add_stop(idx)
        placed.resize(self.cap, 0)
        for sym in range(1, self.instruments.size()):
            if not self.instruments[sym].defined:
                continue
            for side_i in range(2):
                levels = &self.bids[sym] if side_i == 0 else &self.asks[sym]
                n_levels = r.u32()
                for i in range(n_levels):
                    key = r.i64()
                    n_in_level = r.u32()
                    if n_in_level == 0 or (not levels.empty() and key <= deref(levels.rbegin()).first):
                        raise ValueError("snapshot: empty, repeated or unordered price level")
                    lvl = &deref(levels)[key]
                    lvl.count = 0
                    lvl.total = 0
                    for j in range(n_in_level):
                        oid = r.u64()
                        if not self.ids.count(oid):
                            raise ValueError("snapshot: level names an unknown order")
                        idx = self.ids[oid]
                        o = &self.orders[idx]
                        # Each resting order in exactly one level: its own symbol, side and price.
                        if (o.state != ST_RESTING or placed[idx] or o.symbol != sym or o.side != (SIDE_BUY if side_i == 0 else SIDE_SELL)
                                or side_key(o.side, o.price) != key):
                            raise ValueError("snapshot: order misplaced in the book")
                        self._append_to_level(lvl, idx)
                        placed[idx] = 1
                        n_placed += 1
        if n_placed != n_resting:
            raise ValueError("snapshot: a resting order is missing from the book")
        if not r.done():
            raise ValueError("snapshot: trailing bytes")
        if self.funds:
            self._check_restored_holds()

    cdef bint _valid_restored_hold(self, Order* o):
        cdef Instrument* ins = &self.instruments[o.symbol]
        if o.acct == ACCT_NONE or self.accts[0][o.acct].type != ACCT_CUSTOMER:
            return False
        cdef FeeRates rates
        cdef int64_t price
        cdef int64_t per_lot
        if not (-1000 <= o.maker_bps <= 1000 and 0 <= o.taker_bps <= 1000):
            return False
        # The hold price and per-lot hold follow from the order (README "Holds"): recompute them.
        if o.ord_type == TYPE_LIMIT:
            price = o.price
        else:  # only a pending stop market can be live
            price = stop_market_hold_price(o.stop_price, o.side, ins.band_bps)
        rates.maker_bps = o.maker_bps
        rates.taker_bps = o.taker_bps
        if o.hold_price != price or not self._hold_per_lot(ins, o.side, price, &rates, &per_lot):
            return False
        return o.hold_per_lot == per_lot and <qty_sum>o.hold_per_lot * o.leaves == o.held

    cdef void _check_restored_holds(self) except *:
        """Each account's held balance = its orders' holds + its pending withdrawals."""
        cdef dict want = {}
        cdef uint32_t m = self.ghead
        cdef Order* o
        while m != NIL:
            o = &self.orders[m]
            key = (o.acct, self._hold_asset(o))
            want[key] = want.get(key, 0) + o.held
            m = o.gnext
        for wid, (account, asset, amount) in self.ledger.pending_withdrawals().items():
            key = (self.ledger.find(account), asset)
            want[key] = want.get(key, 0) + amount
        assets = self.ledger.all_assets()
        for acct in range(self.accts.size()):
            for asset in assets:
                if self.ledger.balance(acct, asset).held != want.get((acct, asset), 0):
                    raise ValueError("snapshot: held balances do not match the holds of orders and withdrawals")

    cdef bint _valid_restored_order(self, Order* o):
        if not self._known_symbol(o.symbol) or o.accept_seq == 0 or o.accept_seq > self.last_cmd_seq:
            return False
        if o.side != SIDE_BUY and o.side != SIDE_SELL or o.tif < TIF_GTC or o.tif > TIF_FOK:
            return False
        if o.ord_type != TYPE_LIMIT and o.ord_type != TYPE_MARKET or o.stp > STP_CANCEL_BOTH:
            return False
        if o.flags & ~FLAG_POST_ONLY or o.leaves <= 0 or o.filled < 0 or o.display < 0:
            return False
        if (o.qty != o.leaves + o.filled or o.qty > self.instruments[o.symbol].max_qty
                or o.qty < self.instruments[o.symbol].min_qty):
            return False
        if o.state == ST_STOP:
            # As NEW accepts one (rules 6-9): no iceberg or post-only, a limit's price in range,
            # a market's price 0.
            return (0 < o.stop_price <= self.instruments[o.symbol].max_price
                    and o.display == 0 and o.visible == 0 and o.flags == 0
                    and (0 < o.price <= self.instruments[o.symbol].max_price if o.ord_type == TYPE_LIMIT
                         else o.price == 0 and o.tif != TIF_GTC))
        # A resting order is a GTC limit with a visible slice.
        return (o.state == ST_RESTING and o.ord_type == TYPE_LIMIT and o.tif == TIF_GTC
                and 0 < o.price <= self.instruments[o.symbol].max_price
                and 0 < o.visible <= o.leaves
                and (o.visible == o.leaves if o.display == 0 else o.visible <= o.display))


def record_layout() -> dict:
    """Byte offsets of the C record fields, so tests can prove records.py mirrors records.pxd."""
    cdef Command c
    cdef Event e
    cdef char* cb = <char*>&c
    cdef char* eb = <char*>&e
    command = {
        "seq": <char*>&c.seq - cb, "ts": <char*>&c.ts - cb, "order_id": <char*>&c.order_id - cb,
        "account": <char*>&c.account - cb, "price": <char*>&c.price - cb, "qty": <char*>&c.qty - cb,
        "stop_price": <char*>&c.stop_price - cb, "display_qty": <char*>&c.display_qty - cb,
        "aux1": <char*>&c.aux1 - cb, "aux2": <char*>&c.aux2 - cb,
        "symbol": <char*>&c.symbol - cb, "asset": <char*>&c.asset - cb, "op": <char*>&c.op - cb, "side": <char*>&c.side - cb,
        "ord_type": <char*>&c.ord_type - cb, "tif": <char*>&c.tif - cb, "stp": <char*>&c.stp - cb,
        "flags": <char*>&c.flags - cb, "reject": <char*>&c.reject - cb, "_pad0": <char*>&c._pad0 - cb,
    }
    event = {
        "seq": <char*>&e.seq - eb, "cmd_seq": <char*>&e.cmd_seq - eb, "ts": <char*>&e.ts - eb,
        "order_id": <char*>&e.order_id - eb, "account": <char*>&e.account - eb,
        "price": <char*>&e.price - eb, "qty": <char*>&e.qty - eb, "leaves": <char*>&e.leaves - eb,
        "filled": <char*>&e.filled - eb, "maker_order": <char*>&e.maker_order - eb,
        "maker_account": <char*>&e.maker_account - eb, "maker_leaves": <char*>&e.maker_leaves - eb,
        "maker_filled": <char*>&e.maker_filled - eb,
        "symbol": <char*>&e.symbol - eb, "type": <char*>&e.type - eb, "reason": <char*>&e.reason - eb,
        "side": <char*>&e.side - eb, "op": <char*>&e.op - eb,
    }
    return {"command": command, "command_size": sizeof(Command),
            "event": event, "event_size": sizeof(Event)}


def enum_values() -> dict:
    """The C enum values of records.pxd, to check records.py against."""
    return {
        "Op": {"NEW": OP_NEW, "CANCEL": OP_CANCEL, "REPLACE": OP_REPLACE, "MASS_CANCEL": OP_MASS_CANCEL,
               "ADD_INSTRUMENT": OP_ADD_INSTRUMENT, "ADD_ASSET": OP_ADD_ASSET,
               "CREATE_ACCOUNT": OP_CREATE_ACCOUNT, "DEPOSIT": OP_DEPOSIT, "WITHDRAW_HOLD": OP_WITHDRAW_HOLD,
               "WITHDRAW_SETTLE": OP_WITHDRAW_SETTLE, "WITHDRAW_RELEASE": OP_WITHDRAW_RELEASE,
               "TRANSFER": OP_TRANSFER, "ADJUST": OP_ADJUST, "SET_FEES": OP_SET_FEES,
               "SET_FEE_TIER": OP_SET_FEE_TIER, "SET_ACCOUNT_STATUS": OP_SET_ACCOUNT_STATUS,
               "SET_TRADING_STATUS": OP_SET_TRADING_STATUS, "SET_LIMITS": OP_SET_LIMITS},
        "Side": {"BUY": SIDE_BUY, "SELL": SIDE_SELL},
        "OrdType": {"LIMIT": TYPE_LIMIT, "MARKET": TYPE_MARKET},
        "Tif": {"GTC": TIF_GTC, "IOC": TIF_IOC, "FOK": TIF_FOK},
        "Stp": {"NONE": STP_NONE, "CANCEL_TAKER": STP_CANCEL_TAKER, "CANCEL_MAKER": STP_CANCEL_MAKER,
                "CANCEL_BOTH": STP_CANCEL_BOTH},
        "Flag": {"POST_ONLY": FLAG_POST_ONLY},
        "EventType": {"ACCEPTED": EV_ACCEPTED, "REJECTED": EV_REJECTED, "TRADE": EV_TRADE,
                      "CANCELLED": EV_CANCELLED, "REPLACED": EV_REPLACED, "TRIGGERED": EV_TRIGGERED,
                      "EXPIRED": EV_EXPIRED, "INSTRUMENT_ADDED": EV_INSTRUMENT_ADDED,
                      "MASS_CANCEL_DONE": EV_MASS_CANCEL_DONE, "APPLIED": EV_APPLIED,
                      "POSTING": EV_POSTING},
        "PostingKind": {"HOLD": P_HOLD, "RELEASE": P_RELEASE, "TRADE": P_TRADE, "FEE": P_FEE,
                        "DEPOSIT": P_DEPOSIT, "WITHDRAWAL_HOLD": P_WITHDRAWAL_HOLD, "WITHDRAWAL": P_WITHDRAWAL,
                        "WITHDRAWAL_RELEASE": P_WITHDRAWAL_RELEASE, "TRANSFER": P_TRANSFER,
                        "ADJUSTMENT": P_ADJUSTMENT},
        "AccountType": {"CUSTOMER": ACCT_CUSTOMER, "FEE": ACCT_FEE, "SYSTEM": ACCT_SYSTEM},
        "AccountStatus": {"ACTIVE": ACCT_ACTIVE, "HALTED": ACCT_HALTED},
        "TradingStatus": {"OPEN": TRADING_OPEN, "CANCEL_ONLY": TRADING_CANCEL_ONLY, "HALTED": TRADING_HALTED},
        "Reason": {
            "NONE": R_NONE, "UNKNOWN_SYMBOL": R_UNKNOWN_SYMBOL, "DUPLICATE_ORDER_ID": R_DUPLICATE_ORDER_ID,
            "UNKNOWN_ORDER": R_UNKNOWN_ORDER, "INVALID_QTY": R_INVALID_QTY, "QTY_BELOW_MIN": R_QTY_BELOW_MIN,
            "QTY_ABOVE_MAX": R_QTY_ABOVE_MAX, "INVALID_PRICE": R_INVALID_PRICE,
            "PRICE_ABOVE_MAX": R_PRICE_ABOVE_MAX, "NOTIONAL_BELOW_MIN": R_NOTIONAL_BELOW_MIN,
            "POST_ONLY_WOULD_TAKE": R_POST_ONLY_WOULD_TAKE, "OFF_TICK": R_OFF_TICK, "OFF_LOT": R_OFF_LOT,
            "INVALID_SIDE": R_INVALID_SIDE, "INVALID_ORDER_TYPE": R_INVALID_ORDER_TYPE,
            "INVALID_TIF": R_INVALID_TIF, "INVALID_STP": R_INVALID_STP,
            "INVALID_DISPLAY_QTY": R_INVALID_DISPLAY_QTY, "INVALID_STOP_PRICE": R_INVALID_STOP_PRICE,
            "NO_LIQUIDITY": R_NO_LIQUIDITY, "REPLACE_QTY_TOO_LOW": R_REPLACE_QTY_TOO_LOW,
            "NOT_REPLACEABLE": R_NOT_REPLACEABLE, "UNKNOWN_OP": R_UNKNOWN_OP,
            "INVALID_INSTRUMENT": R_INVALID_INSTRUMENT, "MALFORMED": R_MALFORMED,
            "INVALID_FLAGS": R_INVALID_FLAGS, "USER_CANCEL": R_USER_CANCEL, "MASS_CANCEL": R_MASS_CANCEL,
            "SELF_TRADE": R_SELF_TRADE, "IOC_REMAINDER": R_IOC_REMAINDER,
            "FOK_UNFILLABLE": R_FOK_UNFILLABLE, "MARKET_REMAINDER": R_MARKET_REMAINDER,
            "ACCOUNT_HALTED": R_ACCOUNT_HALTED, "FUNDS_OFF": R_FUNDS_OFF, "UNKNOWN_ACCOUNT": R_UNKNOWN_ACCOUNT,
            "ACCOUNT_EXISTS": R_ACCOUNT_EXISTS, "ACCOUNT_CANNOT_TRADE": R_ACCOUNT_CANNOT_TRADE,
            "UNKNOWN_ASSET": R_UNKNOWN_ASSET, "INVALID_ASSET": R_INVALID_ASSET, "INVALID_AMOUNT": R_INVALID_AMOUNT,
            "INSUFFICIENT_FUNDS": R_INSUFFICIENT_FUNDS, "DUPLICATE_REF": R_DUPLICATE_REF,
            "UNKNOWN_WITHDRAWAL": R_UNKNOWN_WITHDRAWAL, "DUPLICATE_WITHDRAWAL": R_DUPLICATE_WITHDRAWAL,
            "MISSING_REASON": R_MISSING_REASON, "INVALID_FEES": R_INVALID_FEES,
            "INSTRUMENT_HALTED": R_INSTRUMENT_HALTED, "CANCEL_ONLY": R_CANCEL_ONLY,
            "PRICE_OUTSIDE_BAND": R_PRICE_OUTSIDE_BAND, "NOTIONAL_ABOVE_MAX": R_NOTIONAL_ABOVE_MAX,
            "TOO_MANY_OPEN_ORDERS": R_TOO_MANY_OPEN_ORDERS, "SUPPLY_LIMIT": R_SUPPLY_LIMIT,
            "INVALID_STATUS": R_INVALID_STATUS, "INVALID_LIMITS": R_INVALID_LIMITS,
            "INVALID_ACCOUNT": R_INVALID_ACCOUNT,
        },
    }
