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
from cython.operator cimport dereference as deref
from cython.operator cimport preincrement as inc
from libc.stdint cimport INT64_MAX, int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport abort, free, malloc, realloc
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.string cimport memcpy, memset
from libcpp.algorithm cimport sort
from libcpp.map cimport map as cmap
from libcpp.unordered_map cimport unordered_map
from libcpp.utility cimport pair
from libcpp.vector cimport vector
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec

from core_cython.records cimport *

from core_cython.records import COMMAND_DTYPE, EVENT_DTYPE

cdef extern from *:
    """
    #define VENUE_NIL 0xFFFFFFFFu
    #define VENUE_MAX_ORDER_SLOTS (1ull << 31)
    #define VENUE_MAX_EVENT_SLOTS (1ull << 40)
    typedef __int128 venue_qty_sum;
    """
    const uint32_t NIL "VENUE_NIL"   # "no slot" in the intrusive lists
    # Slot indices are uint32 with NIL = 2^32 - 1: doubling the pool must never wrap.
    const uint64_t MAX_ORDER_SLOTS "VENUE_MAX_ORDER_SLOTS"
    const uint64_t MAX_EVENT_SLOTS "VENUE_MAX_EVENT_SLOTS"
    # Sums of many quantities (each up to ~2^62 lots) need more than 64 bits.
    ctypedef long long qty_sum "venue_qty_sum"

cdef enum:
    MAX_SYMBOL = 65535
    SNAPSHOT_VERSION = 1
    SNAP_ORDER_SIZE = 92      # bytes of one order in a snapshot
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
    uint32_t symbol
    uint32_t prev          # level queue (or free list via next)
    uint32_t next
    uint32_t gprev         # acceptance-order list of live orders
    uint32_t gnext
    uint8_t side
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


ctypedef cmap[int64_t, Level] LevelMap          # bids keyed by -price: begin() is always the best
ctypedef pair[int64_t, uint64_t] StopKey        # (signed stop price, acceptance seq)
ctypedef cmap[StopKey, uint32_t] StopMap        # sell stops keyed by -stop: begin() triggers first
ctypedef pair[uint64_t, uint32_t] SeqSlot


cdef inline int64_t min64(int64_t a, int64_t b) noexcept nogil:
    return a if a < b else b


cdef inline int64_t side_key(uint8_t side, int64_t price) noexcept nogil:
    return price if side == SIDE_SELL else -price


cdef class _Reader:
    """Bounds-checked little-endian reader over a snapshot."""
    cdef bytes data
    cdef const unsigned char* p
    cdef Py_ssize_t pos
    cdef Py_ssize_t size

    def __cinit__(self, bytes data):
        self.data = data
        self.p = <const unsigned char*>data
        self.pos = 0
        self.size = len(data)

    cdef const unsigned char* take(self, Py_ssize_t n) except NULL:
        if self.pos + n > self.size:
            raise ValueError("snapshot is truncated")
        self.pos += n
        return self.p + self.pos - n

    cdef uint8_t u8(self) except? 0xFF:
        return self.take(1)[0]

    cdef uint32_t u32(self) except? 0xFFFFFFFF:
        cdef uint32_t v
        memcpy(&v, self.take(4), 4)
        return v

    cdef uint64_t u64(self) except? 0xFFFFFFFFFFFFFFFF:
        cdef uint64_t v
        memcpy(&v, self.take(8), 8)
        return v

    cdef int64_t i64(self) except? -1:
        cdef int64_t v
        memcpy(&v, self.take(8), 8)
        return v

    cdef bint done(self):
        return self.pos == self.size


cdef inline bint _valid_instrument(Instrument* ins) noexcept nogil:
    # max_price x max_qty < 2^62 keeps every price x qty product inside int64.
    return (ins.max_price > 0 and ins.min_qty > 0 and ins.max_qty >= ins.min_qty
            and ins.min_notional >= 0 and 1 <= ins.band_bps <= 10000
            and ins.max_price <= ((<int64_t>1 << 62) - 1) // ins.max_qty
            and 0 <= ins.last_price <= ins.max_price)


cdef class _EventsBuffer:
    """Buffer over the engine's event array that keeps the engine alive while numpy views it."""
    cdef Engine engine

    def __cinit__(self, Engine engine):
        self.engine = engine

    def __getbuffer__(self, Py_buffer* buf, int flags):
        buf.buf = <char*>self.engine.ev
        buf.len = self.engine.ev_len * sizeof(Event)
        buf.readonly = 1
        buf.itemsize = 1
        buf.format = NULL
        buf.ndim = 1
        buf.shape = NULL
        buf.strides = NULL
        buf.suboffsets = NULL
        buf.internal = NULL
        buf.obj = self

    def __releasebuffer__(self, Py_buffer* buf):
        pass


cdef inline char* _put32(char* p, uint32_t v) noexcept:
    memcpy(p, &v, 4)
    return p + 4


cdef inline char* _put64(char* p, uint64_t v) noexcept:
    memcpy(p, &v, 8)
    return p + 8


cdef char* _put_order(char* p, Order* o) noexcept:
    cdef uint8_t b[8]
    p = _put64(p, o.id)
    p = _put64(p, o.account)
    p = _put64(p, o.accept_seq)
    p = _put64(p, o.price)
    p = _put64(p, o.qty)
    p = _put64(p, o.leaves)
    p = _put64(p, o.filled)
    p = _put64(p, o.visible)
    p = _put64(p, o.display)
    p = _put64(p, o.stop_price)
    p = _put32(p, o.symbol)
    b[0] = o.side
    b[1] = o.ord_type
    b[2] = o.tif
    b[3] = o.stp
    b[4] = o.flags
    b[5] = o.state
    b[6] = 0
    b[7] = 0
    memcpy(p, b, 8)
    return p + 8


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
    cdef Event* ev
    cdef size_t ev_len
    cdef size_t ev_cap
    cdef const Command* cur
    cdef int64_t px_hi        # highest / lowest trade price since the last stop round
    cdef int64_t px_lo
    cdef readonly uint64_t last_cmd_seq
    cdef readonly uint64_t last_event_seq
    cdef bint busy            # inside process(): the GIL is released, so guard against re-entry

    def __cinit__(self, uint32_t initial_orders=1024, size_t initial_events=4096):
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
        self.ev_cap = initial_events if initial_events > 0 else 1
        self.ev_len = 0
        self.ev = <Event*>malloc(self.ev_cap * sizeof(Event))
        if self.ev == NULL:
            raise MemoryError()
        self._grow_orders(initial_orders if initial_orders > 0 else 1)
        self.instruments.resize(1)
        self.bids.resize(1)
        self.asks.resize(1)
        self.buy_stops.resize(1)
        self.sell_stops.resize(1)
        self.px_hi = 0
        self.px_lo = INT64_MAX

    def __dealloc__(self):
        free(self.orders)
        free(self.ev)

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
        cdef Event* grown
        cdef Event* e
        if self.ev_len == self.ev_cap:
            grown = <Event*>realloc(self.ev, self.ev_cap * 2 * sizeof(Event))
            if grown == NULL:
                abort()
            self.ev = grown
            self.ev_cap *= 2
        e = &self.ev[self.ev_len]
        self.ev_len += 1
        memset(e, 0, sizeof(Event))
        self.last_event_seq += 1
        e.seq = self.last_event_seq
        e.cmd_seq = self.cur.seq
        e.ts = self.cur.ts
        e.op = self.cur.op
        e.type = type
        e.reason = reason
        return e

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
        self.ev[self.ev_len - 1].price = o.stop_price

    cdef void _reject(self, uint8_t reason) noexcept nogil:
        cdef const Command* c = self.cur
        cdef Event* e = self._emit(EV_REJECTED, reason)
        e.order_id = c.order_id
        e.account = c.account
        e.symbol = c.symbol
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
        self._release(idx)

    # ------------------------------------------------------------------ dispatch

    cdef void _apply(self, Command* c) noexcept nogil:
        self.last_cmd_seq += 1
        c.seq = self.last_cmd_seq
        self.cur = c
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
        if (sym == 0 or sym > MAX_SYMBOL or c.order_id > 10000 or not _valid_instrument(&ins)
                or (sym < self.instruments.size() and self.instruments[sym].defined)):
            self._reject(R_INVALID_INSTRUMENT)
            return
        self._define_symbol(sym, &ins)
        e = self._emit(EV_INSTRUMENT_ADDED, R_NONE)
        e.symbol = sym
        e.price = ins.max_price
        e.qty = ins.max_qty

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
        o.symbol = c.symbol
        o.side = c.side
        o.ord_type = c.ord_type
        o.tif = c.tif if (c.ord_type == TYPE_LIMIT or c.tif == TIF_FOK) else TIF_IOC
        o.stp = c.stp
        o.flags = c.flags
        o.state = ST_RESTING
        o.prev = NIL
        o.next = NIL
        self._link_live(idx)
        self._emit_order(EV_ACCEPTED, R_NONE, o, o.qty)
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
            if (c.account == 0 or o.account == c.account) and (c.symbol == 0 or o.symbol == c.symbol):
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
            return
        self._take_out_of_book(idx)
        o.price = new_price
        o.qty = c.qty
        o.leaves = new_leaves
        sym = o.symbol
        self._emit_order(EV_REPLACED, R_NONE, o, o.qty)
        self._execute(idx)   # may release the order
        self._run_stops(sym)

    # ------------------------------------------------------------------ matching

    cdef int64_t _market_limit(self, Order* o) noexcept nogil:
        """The protection price that bounds a market order: a band around the reference price."""
        cdef Instrument* ins = &self.instruments[o.symbol]
        cdef LevelMap* opp = &self.asks[o.symbol] if o.side == SIDE_BUY else &self.bids[o.symbol]
        cdef int64_t ref = ins.last_price
        cdef int64_t delta
        if ref == 0:
            ref = deref(opp.begin()).first if o.side == SIDE_BUY else -deref(opp.begin()).first
        # ref * bps // 10000 without overflow.
        delta = (ref // 10000) * ins.band_bps + ((ref % 10000) * ins.band_bps) // 10000
        if o.side == SIDE_BUY:
            return ref + delta
        return ref - delta if ref - delta > 1 else 1

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
        if not isinstance(cmds, np.ndarray) or cmds.dtype != COMMAND_DTYPE or cmds.ndim != 1:
            raise TypeError("commands must be a 1-D numpy array of COMMAND_DTYPE")
        if not cmds.flags.c_contiguous:
            raise ValueError("commands must be C-contiguous")
        n[0] = cmds.shape[0]
        writable[0] = cmds.flags.writeable
        if n[0] == 0:
            return <Command*>self.orders  # never dereferenced
        cdef const unsigned char[::1] raw = cmds.view(np.uint8)
        return <Command*>&raw[0]

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
        self.ev_len = 0
        self.busy = True
        try:
            with nogil:
                for i in range(n):
                    self._apply_maybe_copy(&cp[i], writable)
        finally:
            self.busy = False
        return self.ev_len

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
        self.ev_len = 0
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
        return self.ev_len

    def events(self):
        """The events of the last process() call: a view valid until the next call."""
        self._check_idle()
        if self.ev_len == 0:
            return np.zeros(0, dtype=EVENT_DTYPE)
        return np.frombuffer(_EventsBuffer(self), dtype=EVENT_DTYPE)

    def live_orders(self) -> int:
        return self.n_live

    def last_price(self, uint32_t symbol) -> int:
        if not self._known_symbol(symbol):
            raise KeyError(symbol)
        return self.instruments[symbol].last_price

    def symbols(self) -> list:
        return [s for s in range(1, self.instruments.size()) if self.instruments[s].defined]

    def _order_dict(self, uint32_t idx) -> dict:
        cdef Order* o = &self.orders[idx]
        return {
            "id": o.id, "account": o.account, "symbol": o.symbol, "side": o.side,
            "ord_type": o.ord_type, "tif": o.tif, "stp": o.stp, "flags": o.flags,
            "price": o.price, "qty": o.qty, "leaves": o.leaves, "filled": o.filled,
            "visible": o.visible, "display": o.display, "stop_price": o.stop_price,
            "accept_seq": o.accept_seq, "pending_stop": o.state == ST_STOP,
        }

    def order(self, uint64_t order_id):
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
        if not self._known_symbol(symbol):
            raise KeyError(symbol)
        return {"bids": self._levels(&self.bids[symbol], True),
                "asks": self._levels(&self.asks[symbol], False)}

    def stop_orders(self, uint32_t symbol) -> list:
        """Pending stops of a symbol, in acceptance order."""
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

        Layout (little-endian): magic, version, last cmd seq, last event seq; instruments in symbol
        order; live orders in acceptance order (fixed 92-byte records); then per symbol the bid and
        ask levels, best first, each as price key, count and the order ids in time priority.
        """
        cdef size_t size = 4 + 4 + 8 + 8 + 4 + 8
        cdef uint32_t sym
        cdef uint32_t count = 0
        cdef size_t n_stops = 0
        for sym in range(1, self.instruments.size()):
            if self.instruments[sym].defined:
                count += 1
                size += 4 + 6 * 8
                size += 8 + self.bids[sym].size() * 12 + self.asks[sym].size() * 12
                n_stops += self.buy_stops[sym].size() + self.sell_stops[sym].size()
        # Each live order: its record, and its id in a level unless it is a pending stop.
        size += self.n_live * SNAP_ORDER_SIZE + (self.n_live - n_stops) * 8
        cdef bytes out = PyBytes_FromStringAndSize(NULL, size)
        cdef char* base = PyBytes_AS_STRING(out)
        cdef char* p = base
        cdef Instrument* ins
        cdef uint32_t m
        p = _put32(p, 0x504E5356)  # "VSNP"
        p = _put32(p, SNAPSHOT_VERSION)
        p = _put64(p, self.last_cmd_seq)
        p = _put64(p, self.last_event_seq)
        p = _put32(p, count)
        for sym in range(1, self.instruments.size()):
            ins = &self.instruments[sym]
            if not ins.defined:
                continue
            p = _put32(p, sym)
            p = _put64(p, ins.max_price)
            p = _put64(p, ins.min_qty)
            p = _put64(p, ins.max_qty)
            p = _put64(p, ins.min_notional)
            p = _put64(p, ins.band_bps)
            p = _put64(p, ins.last_price)
        p = _put64(p, self.n_live)
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
        p = _put32(p, levels.size())
        while it != levels.end():
            p = _put64(p, deref(it).first)
            p = _put32(p, deref(it).second.count)
            m = deref(it).second.head
            while m != NIL:
                p = _put64(p, self.orders[m].id)
                m = self.orders[m].next
            inc(it)
        return p

    def state_hash(self) -> str:
        return hashlib.blake2b(self.snapshot(), digest_size=32).hexdigest()

    @staticmethod
    def from_snapshot(blob) -> Engine:
        cdef Engine eng = Engine()
        eng._restore(bytes(blob))
        return eng

    cdef void _restore(self, bytes blob) except *:
        cdef _Reader r = _Reader(blob)
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
        if r.u32() != 0x504E5356 or r.u32() != SNAPSHOT_VERSION:
            raise ValueError("not an engine snapshot of this version")
        self.last_cmd_seq = r.u64()
        self.last_event_seq = r.u64()
        count = r.u32()
        for i in range(count):
            sym = r.u32()
            if sym == 0 or sym > MAX_SYMBOL:
                raise ValueError("snapshot: bad symbol id")
            ins.defined = True
            ins.max_price = r.i64()
            ins.min_qty = r.i64()
            ins.max_qty = r.i64()
            ins.min_notional = r.i64()
            ins.band_bps = r.i64()
            ins.last_price = r.i64()
            if not _valid_instrument(&ins) or (sym < self.instruments.size()
                                               and self.instruments[sym].defined):
                raise ValueError("snapshot: invalid or repeated instrument")
            self._define_symbol(sym, &ins)
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
            r.u8()
            r.u8()
            o.prev = NIL
            o.next = NIL
            if not self._valid_restored_order(o) or self.ids.count(o.id):
                raise ValueError("snapshot: inconsistent order")
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
                    if n_in_level == 0 or levels.count(key):
                        raise ValueError("snapshot: empty or repeated price level")
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

    cdef bint _valid_restored_order(self, Order* o):
        if not self._known_symbol(o.symbol) or o.accept_seq == 0 or o.accept_seq > self.last_cmd_seq:
            return False
        if o.side != SIDE_BUY and o.side != SIDE_SELL or o.tif < TIF_GTC or o.tif > TIF_FOK:
            return False
        if o.ord_type != TYPE_LIMIT and o.ord_type != TYPE_MARKET or o.stp > STP_CANCEL_BOTH:
            return False
        if o.flags & ~FLAG_POST_ONLY or o.leaves <= 0 or o.filled < 0 or o.display < 0:
            return False
        if o.qty != o.leaves + o.filled or o.qty > self.instruments[o.symbol].max_qty:
            return False
        if o.state == ST_STOP:
            return 0 < o.stop_price <= self.instruments[o.symbol].max_price
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
        "symbol": <char*>&c.symbol - cb, "op": <char*>&c.op - cb, "side": <char*>&c.side - cb,
        "ord_type": <char*>&c.ord_type - cb, "tif": <char*>&c.tif - cb, "stp": <char*>&c.stp - cb,
        "flags": <char*>&c.flags - cb, "reject": <char*>&c.reject - cb, "_pad0": <char*>&c._pad0 - cb,
        "_pad1": <char*>&c._pad1 - cb,
    }
    event = {
        "seq": <char*>&e.seq - eb, "cmd_seq": <char*>&e.cmd_seq - eb, "ts": <char*>&e.ts - eb,
        "order_id": <char*>&e.order_id - eb, "account": <char*>&e.account - eb,
        "price": <char*>&e.price - eb, "qty": <char*>&e.qty - eb, "leaves": <char*>&e.leaves - eb,
        "filled": <char*>&e.filled - eb, "maker_order": <char*>&e.maker_order - eb,
        "maker_account": <char*>&e.maker_account - eb, "maker_leaves": <char*>&e.maker_leaves - eb,
        "symbol": <char*>&e.symbol - eb, "type": <char*>&e.type - eb, "reason": <char*>&e.reason - eb,
        "side": <char*>&e.side - eb, "op": <char*>&e.op - eb,
    }
    return {"command": command, "command_size": sizeof(Command),
            "event": event, "event_size": sizeof(Event)}


def enum_values() -> dict:
    """The C enum values of records.pxd, to check records.py against."""
    return {
        "Op": {"NEW": OP_NEW, "CANCEL": OP_CANCEL, "REPLACE": OP_REPLACE, "MASS_CANCEL": OP_MASS_CANCEL,
               "ADD_INSTRUMENT": OP_ADD_INSTRUMENT},
        "Side": {"BUY": SIDE_BUY, "SELL": SIDE_SELL},
        "OrdType": {"LIMIT": TYPE_LIMIT, "MARKET": TYPE_MARKET},
        "Tif": {"GTC": TIF_GTC, "IOC": TIF_IOC, "FOK": TIF_FOK},
        "Stp": {"NONE": STP_NONE, "CANCEL_TAKER": STP_CANCEL_TAKER, "CANCEL_MAKER": STP_CANCEL_MAKER,
                "CANCEL_BOTH": STP_CANCEL_BOTH},
        "Flag": {"POST_ONLY": FLAG_POST_ONLY},
        "EventType": {"ACCEPTED": EV_ACCEPTED, "REJECTED": EV_REJECTED, "TRADE": EV_TRADE,
                      "CANCELLED": EV_CANCELLED, "REPLACED": EV_REPLACED, "TRIGGERED": EV_TRIGGERED,
                      "EXPIRED": EV_EXPIRED, "INSTRUMENT_ADDED": EV_INSTRUMENT_ADDED,
                      "MASS_CANCEL_DONE": EV_MASS_CANCEL_DONE},
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
        },
    }
