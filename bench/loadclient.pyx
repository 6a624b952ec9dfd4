# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
# distutils: language = c++
"""Hot path of `venue loadgen`: encode due NewOrders straight into per-session send buffers, write
them with non-blocking send(), decode whatever recv() brought and record latencies into preallocated
arrays. pump() is the steady-state loop (send on schedule, epoll, receive) in C; it returns to Python
(bench/loadgen.py) only when a session ended or the run is over, so no Python object is made per
message and no Python code runs per wake-up.

Load model: order k of the run is planned at t0 + k / rate and belongs to session k % sessions.
Latency of order k = arrival of the first venue message that answers it (an ExecutionReport for its
clOrdId, or a Reject whose refSeqNum is its seqNum) - its planned time, so a client or venue stall
shows up in the latency instead of silently delaying the schedule (no coordinated omission).

clOrdId = cl_ord_id_base + k, so a report is mapped back to its order by a subtraction.

Every method that takes now_ns reads CLOCK_MONOTONIC when it is negative; tests pass their own
clock. A session with fd -1 has no socket: its output stays in the buffer (take_output) and input
comes from feed(), which is how the tests drive the logic deterministically.
"""

from cpython.exc cimport PyErr_CheckSignals
from libc.errno cimport EAGAIN, EINTR, ENOSYS, errno
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memmove
from posix.time cimport CLOCK_MONOTONIC, CLOCK_REALTIME, clock_gettime, timespec
from posix.types cimport sigset_t
from posix.unistd cimport close as c_close

from sbe_schemas.codecs cimport (
    CancelReject,
    CancelReject_TEMPLATE_ID,
    Decoder,
    ExecType_CANCELLED,
    ExecType_EXPIRED,
    ExecType_FILL,
    ExecType_NEW,
    ExecType_PARTIAL_FILL,
    ExecType_REJECTED,
    ExecutionReport,
    ExecutionReport_TEMPLATE_ID,
    ExecutionReportFills,
    Flyweight,
    Heartbeat,
    Heartbeat_TEMPLATE_ID,
    LiquidityIndicator_TAKER,
    Logon,
    Logon_TEMPLATE_ID,
    LogonAck,
    Logout,
    Logout_TEMPLATE_ID,
    LogoutReason_CLIENT_REQUEST,
    MassCancelReport,
    MassCancelReport_TEMPLATE_ID,
    NewOrder,
    NewOrder_TEMPLATE_ID,
    OrdStatus_CANCELLED,
    OrdStatus_NEW,
    OrdStatus_PARTIALLY_FILLED,
    OrdType_LIMIT,
    Reject,
    Reject_TEMPLATE_ID,
    RejectReason_IOC_REMAINDER,
    SessionRejectReason_BUSY,
    SessionRejectReason_THROTTLED,
    Side_BUY,
    Side_SELL,
    StpMode_NONE,
    TimeInForce_GTC,
    TimeInForce_IOC,
)

import os

import numpy as np

from sbe_schemas.codecs import DecodeError

cdef extern from "<sys/socket.h>" nogil:
    ssize_t c_send "send"(int fd, const void* buf, size_t n, int flags)
    ssize_t c_recv "recv"(int fd, void* buf, size_t n, int flags)
    int c_accept4 "accept4"(int fd, void* addr, void* addrlen, int flags)
    int setsockopt(int fd, int level, int name, const void* value, unsigned int length)
    enum: MSG_DONTWAIT
    enum: MSG_NOSIGNAL
    enum: SOCK_CLOEXEC

cdef extern from "<netinet/in.h>" nogil:
    enum: IPPROTO_TCP

cdef extern from "<netinet/tcp.h>" nogil:
    enum: TCP_NODELAY

cdef extern from "<sys/epoll.h>" nogil:
    ctypedef union epoll_data_t:
        void* ptr
        int fd
        uint32_t u32
        uint64_t u64
    struct epoll_event:
        uint32_t events
        epoll_data_t data
    enum: EPOLLIN
    enum: EPOLLOUT
    enum: EPOLLERR
    enum: EPOLLHUP
    enum: EPOLL_CTL_ADD
    enum: EPOLL_CTL_MOD
    enum: EPOLL_CTL_DEL
    enum: EPOLL_CLOEXEC
    int epoll_create1(int flags)
    int epoll_ctl(int epfd, int op, int fd, epoll_event* event)
    int epoll_wait(int epfd, epoll_event* events, int maxevents, int timeout_ms)
    # glibc >= 2.35, Linux >= 5.11: a timespec timeout, so a wait ends on the planned ns, not the ms
    int epoll_pwait2(int epfd, epoll_event* events, int maxevents, const timespec* timeout,
                     const sigset_t* sigmask)

cdef enum:
    # Largest frame accepted from the venue: an ExecutionReport of a taker that swept ~8,000 levels.
    MAX_FRAME_C = 1 << 18
    SEND_CAP = 1 << 18
    RECV_CAP = 1 << 19  # two maximal frames: a partial one never blocks the next recv()
    ROOM = 128  # more than any frame we encode (NewOrder 79, Heartbeat 30, Logout 31)
    TEMPLATE_NULL = 65535
    RECV_ROUNDS = 8  # recv() calls per receive(): bounded so one busy session cannot starve the rest

MAX_FRAME = MAX_FRAME_C

# Per-order state, for the resting-order count that steers the workload.
cdef enum:
    UNSENT = 0
    IN_FLIGHT = 1
    RESTING = 2
    DONE = 3

# receive() status, and why a session ended in pump()
cdef enum:
    R_OK = 0
    R_EOF = 1
    R_LOGOUT = 2
    R_ERROR = 3  # errno in session_info (a failed recv or send)
    R_UNDECODABLE = 4  # pump() only: the venue's stream could not be decoded

RECV_OK = R_OK
RECV_EOF = R_EOF
RECV_LOGOUT = R_LOGOUT
RECV_ERROR = R_ERROR
RECV_UNDECODABLE = R_UNDECODABLE

cdef enum:
    IDLE_WAIT_NS = 100000000  # pump() wait when nothing is timed (every session blocked on its socket)

cdef enum:
    C_SENT
    C_GTC
    C_IOC
    C_BUYS
    C_ANSWERED
    C_R_NEW
    C_R_PARTIAL
    C_R_FILL
    C_R_CANCELLED
    C_R_REJECTED
    C_R_EXPIRED
    C_R_OTHER
    C_R_THROTTLED
    C_R_BUSY
    C_R_SESSION_REJECT
    C_REPORTS
    C_LATER_REPORTS
    C_UNKNOWN_REPORTS
    C_FILLS
    C_TAKER_FILLS
    C_MAKER_FILLS
    C_TAKER_QTY
    C_TRADE_IDS_DROPPED
    C_CANCEL_REJECTS
    C_MASS_CANCEL_REPORTS
    C_OTHER_REJECTS
    C_HEARTBEATS_IN
    C_HEARTBEATS_OUT
    C_LOGOUTS_IN
    C_UNEXPECTED
    C_MESSAGES_IN
    C_BYTES_IN
    C_BYTES_OUT
    C_SEQ_GAPS
    C_COUNT


cdef extern from "<sched.h>" nogil:
    int sched_yield()


cdef inline int64_t mono_ns() noexcept nogil:
    cdef timespec t
    clock_gettime(CLOCK_MONOTONIC, &t)
    return t.tv_sec * 1000000000 + t.tv_nsec


cdef inline int64_t wall_ns() noexcept nogil:
    cdef timespec t
    clock_gettime(CLOCK_REALTIME, &t)
    return t.tv_sec * 1000000000 + t.tv_nsec


cdef inline uint64_t splitmix64(uint64_t seed, uint64_t i) noexcept nogil:
    """The i-th output of splitmix64 from seed: a counter-based draw, so order k's random numbers
    depend on (seed, k) only, not on how the orders were batched."""
    cdef uint64_t z = seed + (i + 1) * <uint64_t>0x9E3779B97F4A7C15
    z = (z ^ (z >> 30)) * <uint64_t>0xBF58476D1CE4E5B9
    z = (z ^ (z >> 27)) * <uint64_t>0x94D049BB133111EB
    return z ^ (z >> 31)


cdef inline uint64_t below(uint64_t r32, uint64_t n) noexcept nogil:
    """A 32-bit random number scaled to 0..n-1 (multiply-shift: no division, bias < n / 2**32)."""
    return (r32 * n) >> 32


cdef class _Session:
    cdef int index
    cdef int fd
    cdef bint alive
    cdef bint logout_sent
    cdef int logout_reason  # the venue's Logout reason, -1 until it sends one
    cdef bint eof
    cdef int error  # errno of a failed send/recv, 0 if none
    cdef int end_status  # why it ended (R_*), R_OK while alive
    cdef bint unreported  # ended where no caller was told (pump() hands it to Python)
    cdef object decode_error  # the DecodeError that ended it inside pump(), else None
    cdef bint watched  # in pump()'s set (its fd in the epoll, if it has a socket)
    cdef bint out_watched  # EPOLLOUT registered: bytes are waiting for the socket
    cdef int64_t next_k  # next order of this session to send
    cdef uint64_t next_seq  # seqNum of our next application message
    cdef uint64_t in_seq  # seqNum expected from the venue next (0: not checked yet)
    cdef int64_t sent
    cdef int64_t last_send_ns
    cdef int64_t hb_interval_ns
    cdef int64_t max_resting
    cdef int64_t resting_buy
    cdef int64_t resting_sell
    cdef bytearray sbuf
    cdef unsigned char* sp
    cdef Py_ssize_t shead
    cdef Py_ssize_t stail
    cdef bytearray rbuf
    cdef unsigned char* rp
    cdef Py_ssize_t rlen
    cdef NewOrder enc
    cdef Heartbeat hb
    cdef Logout lo
    cdef Decoder dec

    def __cinit__(self, int index, int64_t max_resting):
        self.index = index
        self.fd = -1
        self.alive = False
        self.logout_reason = -1
        self.next_seq = 1
        self.max_resting = max_resting
        self.sbuf = bytearray(SEND_CAP)
        self.sp = <unsigned char*>self.sbuf
        self.rbuf = bytearray(RECV_CAP)
        self.rp = <unsigned char*>self.rbuf
        self.enc = NewOrder()
        self.hb = Heartbeat()
        self.lo = Logout()
        self.dec = Decoder(MAX_FRAME_C)

    cdef inline Py_ssize_t pending(self) noexcept:
        return self.stail - self.shead

    cdef void make_room(self) noexcept:
        """Move unsent bytes to the front so the tail has room (the flyweights hold the buffer, so it
        is never resized: a memmove within it is all this needs)."""
        if self.shead == self.stail:
            self.shead = self.stail = 0
        elif SEND_CAP - self.stail < ROOM:
            memmove(self.sp, self.sp + self.shead, self.stail - self.shead)
            self.stail -= self.shead
            self.shead = 0

    cdef inline bint has_room(self) noexcept:
        return SEND_CAP - self.stail >= ROOM


cdef class LoadClient:
    """The run's schedule, per-order arrays and sessions; see the module docstring."""

    cdef readonly int sessions
    cdef readonly int64_t total
    cdef readonly double interval_ns
    cdef readonly int64_t t0_ns
    cdef readonly uint64_t cl_ord_id_base
    cdef readonly uint64_t seed
    cdef readonly uint32_t symbol_id
    cdef readonly int64_t mid_ticks
    cdef readonly int64_t spread_ticks
    cdef readonly int64_t qty_min
    cdef readonly int64_t qty_max
    cdef readonly double ioc_share
    cdef public bint busy_poll  # pump() never sleeps: polls the sockets and the clock (a core of its own)
    cdef readonly int64_t last_sent_ns  # monotonic time of the last order sent, 0 if none
    cdef readonly int64_t last_answer_ns  # monotonic time of the last first answer, 0 if none
    cdef readonly object latency_ns  # int64 per order: arrival of the first answer - planned, -1 until then
    cdef readonly object sent_ns  # int64 per order: monotonic time it went into the send buffer, -1 if not
    # int64 per order: the first answer's transactTime (the engine's clock when it took the batch)
    # minus the planned send time on the wall clock; -1 until answered by an ExecutionReport. On one
    # machine this splits a round trip into "to the engine" and "back from it".
    cdef readonly object inbound_ns
    cdef int64_t[::1] inb
    cdef readonly int64_t wall_offset_ns  # wall clock - monotonic clock at start()
    cdef readonly object trade_ids  # uint64 trade ids of every fill seen (first trade_count of them)
    cdef readonly int64_t trade_count
    cdef int64_t[::1] lat
    cdef int64_t[::1] snt
    cdef uint64_t[::1] tids
    cdef uint8_t[::1] state
    cdef uint8_t[::1] side
    cdef list _sessions
    cdef int64_t c[C_COUNT]
    cdef int64_t er_reasons[256]  # first answers that were ExecutionReport REJECTED, by RejectReason
    cdef int64_t session_reasons[256]  # Reject answers by SessionRejectReason
    cdef int64_t exec_types[256]  # every ExecutionReport by execType (a venue may ack first, fill later)
    # pump() state, kept across its returns to Python
    cdef int64_t _drain_end  # -1 while the schedule runs, then when the drain ends
    cdef int _epfd
    cdef epoll_event* _events
    cdef int _watched  # sessions in the pump's set
    cdef int _unreported  # sessions ended and not handed to Python yet
    cdef bint _no_pwait2  # the kernel lacks epoll_pwait2: ms timeouts

    def __dealloc__(self):
        if self._epfd >= 0:
            c_close(self._epfd)
        free(self._events)

    def __cinit__(self, int sessions, int64_t total, double rate, *, uint64_t cl_ord_id_base,
                  uint64_t seed, uint32_t symbol_id, int64_t mid_ticks, int64_t spread_ticks,
                  int64_t qty_min, int64_t qty_max, double ioc_share, max_resting):
        self._epfd = -1  # first: __dealloc__ runs even when a check below raises
        self._events = NULL
        self._drain_end = -1
        if sessions < 1 or total < 0 or not rate > 0:
            raise ValueError("need sessions >= 1, total >= 0 and rate > 0")
        if qty_min < 1 or qty_max < qty_min or spread_ticks < 0 or mid_ticks - spread_ticks < 1:
            raise ValueError("bad workload: qty 1 <= min <= max, 0 <= spread < mid")
        if cl_ord_id_base < 1 or cl_ord_id_base + <uint64_t>total >= (<uint64_t>1 << 40):
            raise ValueError("clOrdIds base .. base + total must lie in 1 .. 2**40 - 1")
        if len(max_resting) != sessions:
            raise ValueError("max_resting needs one entry per session")
        self.sessions = sessions
        self.total = total
        self.interval_ns = 1e9 / rate
        self.cl_ord_id_base = cl_ord_id_base
        self.seed = seed
        self.symbol_id = symbol_id
        self.mid_ticks = mid_ticks
        self.spread_ticks = spread_ticks
        self.qty_min = qty_min
        self.qty_max = qty_max
        self.ioc_share = ioc_share
        self.latency_ns = np.full(total, -1, dtype=np.int64)
        self.sent_ns = np.full(total, -1, dtype=np.int64)
        self.inbound_ns = np.full(total, -1, dtype=np.int64)
        self.inb = self.inbound_ns
        # Room for every order to fill twice (taker and maker side both ours) plus slack; beyond that
        # ids are counted as dropped rather than grown in the hot path.
        self.trade_ids = np.zeros(2 * total + 4096, dtype=np.uint64)
        self.lat = self.latency_ns
        self.snt = self.sent_ns
        self.tids = self.trade_ids
        self.state = np.zeros(total, dtype=np.uint8)
        self.side = np.zeros(total, dtype=np.uint8)
        self._sessions = [_Session(i, max(1, int(max_resting[i]))) for i in range(sessions)]
        for i in range(C_COUNT):
            self.c[i] = 0
        for i in range(256):
            self.er_reasons[i] = 0
            self.session_reasons[i] = 0
            self.exec_types[i] = 0

    # ---- schedule -----------------------------------------------------------------------------

    cdef inline int64_t _planned(self, int64_t k) noexcept:
        return self.t0_ns + <int64_t>(<double>k * self.interval_ns)

    def planned_ns(self, int64_t k) -> int:
        """Planned send time of order k (monotonic ns)."""
        return self._planned(k)

    cdef int64_t _due(self, int64_t now) noexcept:
        """How many orders are due at now: the smallest k whose planned time is after now."""
        cdef int64_t k
        if now < self.t0_ns:
            return 0
        k = <int64_t>((now - self.t0_ns) / self.interval_ns) + 1
        if k > self.total:
            k = self.total
        while k > 0 and self._planned(k - 1) > now:  # the float estimate may be one off either way
            k -= 1
        while k < self.total and self._planned(k) <= now:
            k += 1
        return k

    def start(self, int64_t t0_ns=-1) -> int:
        """Fix t0 (default: now); order k is planned at t0 + k / rate."""
        self.t0_ns = mono_ns() if t0_ns < 0 else t0_ns
        self.wall_offset_ns = wall_ns() - mono_ns()
        return self.t0_ns

    def attach(self, int i, int fd, uint64_t in_seq, int64_t hb_interval_ns, int64_t now_ns=-1) -> None:
        """Session i is logged on: fd (-1 = no socket), the venue's first seqNum, heartbeat interval."""
        cdef _Session s = self._sessions[i]
        s.fd = fd
        s.in_seq = in_seq
        if hb_interval_ns <= 0:
            raise ValueError("heartbeat interval must be > 0")
        s.hb_interval_ns = hb_interval_ns
        s.alive = True
        s.next_k = i
        s.last_send_ns = mono_ns() if now_ns < 0 else now_ns

    # ---- sending ------------------------------------------------------------------------------

    cdef int _encode_order(self, _Session s, int64_t k, int64_t now) except -1:
        cdef uint64_t r1 = splitmix64(self.seed, 2 * <uint64_t>k)
        cdef uint64_t r2 = splitmix64(self.seed, 2 * <uint64_t>k + 1)
        cdef int64_t imbalance = s.resting_buy - s.resting_sell
        cdef int64_t resting = s.resting_buy + s.resting_sell
        cdef int64_t band = s.max_resting // 4 if s.max_resting >= 16 else 4
        # Lean against this session's resting imbalance so its book side stays small (and its orders
        # cross the side that piled up); 5% either way remains so both sides always flow.
        cdef double p_buy = 0.5 - <double>imbalance / (2.0 * band)
        cdef uint8_t side
        cdef uint8_t tif
        cdef int64_t offset
        cdef int64_t qty
        cdef NewOrder m = s.enc
        if p_buy < 0.05:
            p_buy = 0.05
        elif p_buy > 0.95:
            p_buy = 0.95
        side = Side_BUY if <double>(r1 & 0xFFFFFFFF) < p_buy * 4294967296.0 else Side_SELL
        # IOC once the session has max_resting orders on the book: the venue's open-order limit is
        # never reached and the book stays bounded.
        if resting >= s.max_resting or <double>(r1 >> 32) < self.ioc_share * 4294967296.0:
            tif = TimeInForce_IOC
        else:
            tif = TimeInForce_GTC
        # Price mid +/- spread, through the mid for offset > 0: buys and sells cross and trade.
        offset = <int64_t>below(r2 & 0xFFFFFFFF, 2 * self.spread_ticks + 1) - self.spread_ticks
        qty = self.qty_min + <int64_t>below(r2 >> 32, self.qty_max - self.qty_min + 1)
        m._encode(s.sbuf, s.stail + 6)
        m.set_seq_num(s.next_seq)
        m.set_cl_ord_id(self.cl_ord_id_base + <uint64_t>k)
        m.set_account_id(0)
        m.set_price(self.mid_ticks + offset if side == Side_BUY else self.mid_ticks - offset)
        m.set_qty(qty)
        m.set_symbol_id(self.symbol_id)
        m.set_side(side)
        m.set_ord_type(OrdType_LIMIT)
        m.set_time_in_force(tif)
        m.set_stp_mode(StpMode_NONE)
        m.set_flags(0)
        s.stail += m.frame()  # stopPrice and displayQty keep the null values wrap_encode wrote
        s.next_seq += 1
        s.sent += 1
        s.last_send_ns = now
        self.snt[k] = now
        self.side[k] = side
        self.state[k] = IN_FLIGHT
        self.c[C_SENT] += 1
        self.c[C_BUYS] += side == Side_BUY
        self.c[C_IOC] += tif == TimeInForce_IOC
        self.c[C_GTC] += tif == TimeInForce_GTC
        self.last_sent_ns = now
        return 0

    cdef int _encode_heartbeat(self, _Session s, int64_t now) except -1:
        s.make_room()
        s.hb._encode(s.sbuf, s.stail + 6)
        s.hb.set_next_seq_num(s.next_seq)
        s.hb.set_timestamp_ns(wall_ns())
        s.stail += s.hb.frame()
        s.last_send_ns = now
        self.c[C_HEARTBEATS_OUT] += 1
        return 0

    cdef void _end(self, _Session s, int status) noexcept:
        """Session s stops; pump() hands it to Python unless the caller reports it (_told)."""
        s.alive = False
        s.end_status = status
        if not s.unreported:
            s.unreported = True
            self._unreported += 1

    cdef void _told(self, _Session s) noexcept:
        """The caller reports s's end itself (a def method's return value): pump() need not."""
        if s.unreported:
            s.unreported = False
            self._unreported -= 1

    cdef int _flush(self, _Session s) except -1:
        """Write what the socket takes now; returns 1 if bytes remain pending."""
        cdef ssize_t r
        if s.fd < 0:
            return s.pending() > 0
        while s.shead < s.stail:
            r = c_send(s.fd, s.sp + s.shead, s.stail - s.shead, MSG_DONTWAIT | MSG_NOSIGNAL)
            if r > 0:
                s.shead += r
                self.c[C_BYTES_OUT] += r
            elif r < 0 and errno == EINTR:
                continue
            elif r < 0 and errno == EAGAIN:  # (EWOULDBLOCK is EAGAIN on Linux)
                return 1
            else:
                s.error = errno if r < 0 else 0
                self._end(s, R_ERROR)
                return 0
        s.shead = s.stail = 0
        return 0

    cdef int _send_due(self, int64_t now, bint schedule) except -1:
        cdef int64_t due = self._due(now) if schedule else 0
        cdef int blocked = 0
        cdef _Session s
        for s in self._sessions:
            if not s.alive:
                continue
            while True:
                s.make_room()
                while s.next_k < due and s.has_room():
                    self._encode_order(s, s.next_k, now)
                    s.next_k += self.sessions
                if s.pending() == 0 and now - s.last_send_ns >= s.hb_interval_ns:
                    self._encode_heartbeat(s, now)
                if self._flush(s):
                    blocked += 1
                    break
                if not s.alive or s.next_k >= due or s.fd < 0:
                    break
        return blocked

    def send_due(self, int64_t now_ns=-1, bint schedule=True) -> int:
        """Encode every due order (schedule=True) and any heartbeat due into the send buffers and
        write them out; a blocked socket keeps its overdue orders for later (their latency still
        counts from the planned time). Returns how many sessions still have bytes pending."""
        return self._send_due(mono_ns() if now_ns < 0 else now_ns, schedule)

    cdef int64_t _next_wake(self, bint schedule) noexcept:
        cdef int64_t wake = -1
        cdef int64_t t
        cdef _Session s
        for s in self._sessions:
            if not s.alive or s.pending() > 0:
                continue
            if schedule and s.next_k < self.total:
                t = self._planned(s.next_k)
                if wake < 0 or t < wake:
                    wake = t
            t = s.last_send_ns + s.hb_interval_ns
            if wake < 0 or t < wake:
                wake = t
        return wake

    def next_wake_ns(self, bint schedule=True) -> int:
        """When the loop must act next: the next planned order or heartbeat of a session that is not
        blocked on its socket (a blocked one waits for writability instead). -1 if nothing is timed."""
        return self._next_wake(schedule)

    # ---- the pump: the steady-state loop -----------------------------------------------------------

    cdef int _epoll_set(self, _Session s, int op) except -1:
        cdef epoll_event ev
        ev.events = EPOLLIN | (EPOLLOUT if s.pending() > 0 else 0)
        ev.data.u64 = 0
        ev.data.u32 = <uint32_t>s.index
        if epoll_ctl(self._epfd, op, s.fd, &ev) < 0:
            raise OSError(errno, os.strerror(errno))
        s.out_watched = s.pending() > 0
        return 0

    cdef void _unwatch(self, _Session s) noexcept:
        if s.fd >= 0:
            epoll_ctl(self._epfd, EPOLL_CTL_DEL, s.fd, NULL)  # fails only if Python closed it first
        s.watched = False
        s.out_watched = False
        self._watched -= 1

    cdef int _sync_watch(self) except -1:
        """Watch every live session; drop the ones that ended outside the pump (the caller knows)."""
        cdef _Session s
        if self._epfd < 0:
            self._epfd = epoll_create1(EPOLL_CLOEXEC)
            if self._epfd < 0:
                raise OSError(errno, os.strerror(errno))
            self._events = <epoll_event*>malloc(self.sessions * sizeof(epoll_event))
            if self._events == NULL:
                raise MemoryError()
        for s in self._sessions:
            if s.alive and not s.watched:
                if s.fd >= 0:
                    self._epoll_set(s, EPOLL_CTL_ADD)
                s.watched = True
                self._watched += 1
            elif not s.alive and s.watched and not s.unreported:
                self._unwatch(s)
        return 0

    cdef int _watch_output(self) except -1:
        """EPOLLOUT only while a session has bytes the socket did not take (else it fires always)."""
        cdef _Session s
        for s in self._sessions:
            if s.watched and s.alive and s.fd >= 0 and (s.pending() > 0) != s.out_watched:
                self._epoll_set(s, EPOLL_CTL_MOD)
        return 0

    cdef tuple _report_ended(self):
        """(index, R_* status, DecodeError or None) of the first session that ended unreported."""
        cdef _Session s
        for s in self._sessions:
            if s.unreported:
                self._told(s)
                if s.watched:
                    self._unwatch(s)
                return s.index, s.end_status, s.decode_error
        self._unreported = 0  # (not reached: the count follows the flags)
        return None

    cdef int _wait(self, int64_t timeout_ns) except -1:
        """epoll until an event or timeout_ns passed (GIL released: a test's venue may be a thread);
        then receive on every session with input. Returns the number of events."""
        cdef timespec ts
        cdef int n, err, j
        cdef int ms = <int>(timeout_ns // 1000000)  # fallback only; rounded down: spins, never late
        cdef uint32_t ev
        cdef _Session s
        ts.tv_sec = timeout_ns // 1000000000
        ts.tv_nsec = timeout_ns % 1000000000
        with nogil:
            if not self._no_pwait2:
                n = epoll_pwait2(self._epfd, self._events, self.sessions, &ts, NULL)
            else:
                n = epoll_wait(self._epfd, self._events, self.sessions, ms)
            err = errno
        if n < 0:
            if err == ENOSYS and not self._no_pwait2:
                self._no_pwait2 = True
                return 0
            if err != EINTR:
                raise OSError(err, os.strerror(err))
            n = 0
        PyErr_CheckSignals()  # Ctrl-C: KeyboardInterrupt out of pump(), as from select() before
        for j in range(n):
            ev = self._events[j].events
            if ev & (EPOLLIN | EPOLLERR | EPOLLHUP):  # what select() reported as readable
                s = <_Session>self._sessions[self._events[j].data.u32]
                try:
                    self._recv(s, -1)
                except DecodeError as exc:  # the stream cannot be resynchronised: end the session
                    s.decode_error = exc
                    self._end(s, R_UNDECODABLE)
        return n

    def pump(self, int64_t give_up_ns, int64_t drain_ns):
        """The steady-state loop, all in C: send what is due (and heartbeats), wait in epoll until
        the next planned send, heartbeat, arrival or writable blocked socket, receive; repeat.

        The schedule runs until every live session sent its orders or give_up_ns (overdue orders
        are not sent after it); then answers are awaited for drain_ns. Returns None when that is
        over (every order answered or the drain ended) or no session is left, or
        (index, RECV_EOF / RECV_ERROR / RECV_LOGOUT / RECV_UNDECODABLE, DecodeError or None) when
        a session ended: call again to go on with the others."""
        cdef int64_t now, wake, timeout
        cdef bint schedule
        cdef tuple ended
        self._sync_watch()
        while True:
            if self._unreported:
                ended = self._report_ended()
                if ended is not None:
                    return ended
            if self._watched == 0:
                return None
            now = mono_ns()
            schedule = self._drain_end < 0
            self._send_due(now, schedule)
            if self._unreported:
                continue  # a send failed: hand the session to Python first
            self._watch_output()
            if schedule and (self._schedule_done() or now >= give_up_ns):
                schedule = False
                self._drain_end = now + drain_ns
            if not schedule and (self.c[C_SENT] == self.c[C_ANSWERED] or now >= self._drain_end):
                return None
            wake = self._next_wake(schedule)
            if not schedule and (wake < 0 or wake > self._drain_end):
                wake = self._drain_end
            if self.busy_poll:
                timeout = 0  # a trading client's way: no timer wake-up (late by up to ~150 µs at p99
                # on this VM) and no wake-up for the answer; it costs a core. It yields between
                # rounds, so a process that shares the core (a polling gateway) still runs.
                with nogil:
                    sched_yield()
            elif wake < 0:
                timeout = IDLE_WAIT_NS
            else:
                timeout = wake - mono_ns()
                if timeout < 0:
                    timeout = 0
            self._wait(timeout)

    def logout(self, int i, int64_t now_ns=-1) -> None:
        """Queue our Logout on session i and write it."""
        cdef _Session s = self._sessions[i]
        if not s.alive or s.logout_sent:
            return
        s.make_room()
        s.lo._encode(s.sbuf, s.stail + 6)
        s.lo.set_next_seq_num(s.next_seq)
        s.lo.set_timestamp_ns(wall_ns())
        s.lo.set_reason(LogoutReason_CLIENT_REQUEST)
        s.stail += s.lo.frame()
        s.logout_sent = True
        s.last_send_ns = mono_ns() if now_ns < 0 else now_ns
        self._flush(s)

    def take_output(self, int i) -> bytes:
        """The unsent bytes of session i, removed from its buffer (for sessions without a socket)."""
        cdef _Session s = self._sessions[i]
        out = bytes(s.sbuf[s.shead:s.stail])
        s.shead = s.stail = 0
        return out

    # ---- receiving ----------------------------------------------------------------------------

    cdef int _answer(self, int64_t k, int64_t now) noexcept:
        """Record order k's first answer; 1 if this was it, 0 if k was answered before."""
        if self.lat[k] >= 0:
            return 0
        self.lat[k] = now - self._planned(k)
        self.c[C_ANSWERED] += 1
        self.last_answer_ns = now
        return 1

    cdef void _rest(self, int64_t k, bint live) noexcept:
        """Keep the owner session's count of resting orders in step with the order's status."""
        cdef _Session owner = <_Session>self._sessions[k % self.sessions]
        if live and self.state[k] != RESTING:
            self.state[k] = RESTING
            if self.side[k] == Side_BUY:
                owner.resting_buy += 1
            else:
                owner.resting_sell += 1
        elif not live:
            if self.state[k] == RESTING:
                if self.side[k] == Side_BUY:
                    owner.resting_buy -= 1
                else:
                    owner.resting_sell -= 1
            self.state[k] = DONE

    cdef int _on_report(self, ExecutionReport er, int64_t now) except -1:
        cdef ExecutionReportFills fills = er._fills
        cdef uint64_t k = er.get_cl_ord_id() - self.cl_ord_id_base  # wraps to huge when below base
        cdef uint8_t exec_type = er.get_exec_type()
        cdef uint8_t status = er.get_ord_status()
        self.c[C_REPORTS] += 1
        self.exec_types[exec_type] += 1
        fills._rewind()
        while fills.advance():
            self.c[C_FILLS] += 1
            if fills.get_liquidity() == LiquidityIndicator_TAKER:
                self.c[C_TAKER_FILLS] += 1
                self.c[C_TAKER_QTY] += fills.get_fill_qty()
            else:
                self.c[C_MAKER_FILLS] += 1
            if self.trade_count < self.tids.shape[0]:
                self.tids[self.trade_count] = fills.get_trade_id()
                self.trade_count += 1
            else:
                self.c[C_TRADE_IDS_DROPPED] += 1
        if k >= <uint64_t>self.total:
            self.c[C_UNKNOWN_REPORTS] += 1  # not an order of this run
            return 0
        if self._answer(k, now):
            self.inb[k] = <int64_t>er.get_transact_time_ns() - (self._planned(k) + self.wall_offset_ns)
            if exec_type == ExecType_NEW:
                self.c[C_R_NEW] += 1
            elif exec_type == ExecType_PARTIAL_FILL:
                self.c[C_R_PARTIAL] += 1
            elif exec_type == ExecType_FILL:
                self.c[C_R_FILL] += 1
            elif exec_type == ExecType_CANCELLED:
                self.c[C_R_CANCELLED] += 1
            elif exec_type == ExecType_REJECTED:
                self.c[C_R_REJECTED] += 1
                self.er_reasons[er.get_reason()] += 1
            elif exec_type == ExecType_EXPIRED:
                self.c[C_R_EXPIRED] += 1
            else:
                self.c[C_R_OTHER] += 1
        else:
            self.c[C_LATER_REPORTS] += 1  # e.g. a resting order of ours filled as maker
        self._rest(k, (status == OrdStatus_NEW or status == OrdStatus_PARTIALLY_FILLED)
                   and er.get_leaves_qty() > 0 and exec_type != ExecType_REJECTED
                   and exec_type != ExecType_CANCELLED and exec_type != ExecType_EXPIRED)
        return 0

    cdef int _on_reject(self, _Session s, Reject rj, int64_t now) except -1:
        cdef uint64_t ref = rj.get_ref_seq_num()
        cdef uint16_t tmpl = rj.get_ref_template_id()
        cdef uint8_t reason = rj.get_reason()
        cdef int64_t k
        # Our only numbered messages are NewOrders, so seqNum j of session i is order i + (j-1) * S.
        if (tmpl == NewOrder_TEMPLATE_ID or tmpl == TEMPLATE_NULL) and 1 <= ref <= <uint64_t>s.sent:
            k = s.index + <int64_t>(ref - 1) * self.sessions
            if self._answer(k, now):
                if reason == SessionRejectReason_THROTTLED:
                    self.c[C_R_THROTTLED] += 1
                elif reason == SessionRejectReason_BUSY:
                    self.c[C_R_BUSY] += 1
                else:
                    self.c[C_R_SESSION_REJECT] += 1
                self.session_reasons[reason] += 1
            self._rest(k, False)
        else:
            self.c[C_OTHER_REJECTS] += 1
            self.session_reasons[reason] += 1
        return 0

    cdef void _check_seq(self, _Session s, uint64_t seq, bint is_next) noexcept:
        """Count gaps in the venue's numbering (Heartbeat and Logout carry the next seqNum)."""
        if s.in_seq != 0 and seq != s.in_seq:
            self.c[C_SEQ_GAPS] += 1
        s.in_seq = seq if is_next else seq + 1

    cdef int _decode(self, _Session s, int64_t now) except -1:
        """Handle every complete frame in the receive buffer; keep a partial one for next time."""
        cdef Py_ssize_t off = 0
        cdef Py_ssize_t n
        cdef Flyweight fw
        cdef int tid
        while True:
            n = s.dec.frame_length(s.rbuf, off, s.rlen - off)
            if n == 0 or n > s.rlen - off:
                break
            fw = s.dec.decode(s.rbuf, off, n)
            off += n
            self.c[C_MESSAGES_IN] += 1
            tid = fw.sbe_template_id
            if tid == ExecutionReport_TEMPLATE_ID:
                self._check_seq(s, (<ExecutionReport>fw).get_seq_num(), False)
                self._on_report(<ExecutionReport>fw, now)
            elif tid == Reject_TEMPLATE_ID:
                self._check_seq(s, (<Reject>fw).get_seq_num(), False)
                self._on_reject(s, <Reject>fw, now)
            elif tid == Heartbeat_TEMPLATE_ID:
                self._check_seq(s, (<Heartbeat>fw).get_next_seq_num(), True)
                self.c[C_HEARTBEATS_IN] += 1
            elif tid == CancelReject_TEMPLATE_ID:
                self._check_seq(s, (<CancelReject>fw).get_seq_num(), False)
                self.c[C_CANCEL_REJECTS] += 1
            elif tid == MassCancelReport_TEMPLATE_ID:
                self._check_seq(s, (<MassCancelReport>fw).get_seq_num(), False)
                self.c[C_MASS_CANCEL_REPORTS] += 1
            elif tid == Logout_TEMPLATE_ID:
                self.c[C_LOGOUTS_IN] += 1
                s.logout_reason = (<Logout>fw).get_reason()
            else:
                self.c[C_UNEXPECTED] += 1
        if off:
            memmove(s.rp, s.rp + off, s.rlen - off)
            s.rlen -= off
        return 0

    cdef int _recv(self, _Session s, int64_t now_ns) except -1:
        cdef ssize_t r
        cdef ssize_t space
        cdef int64_t now
        cdef int rounds
        if s.fd < 0 or not s.alive:
            return R_OK
        for rounds in range(RECV_ROUNDS):
            space = RECV_CAP - s.rlen
            r = c_recv(s.fd, s.rp + s.rlen, space, MSG_DONTWAIT)
            if r < 0:
                if errno == EINTR:
                    continue
                if errno == EAGAIN:
                    break
                s.error = errno
                self._end(s, R_ERROR)
                return R_ERROR
            if r == 0:
                s.eof = True
                self._end(s, R_EOF)
                return R_EOF
            now = mono_ns() if now_ns < 0 else now_ns
            s.rlen += r
            self.c[C_BYTES_IN] += r
            self._decode(s, now)
            if s.logout_reason >= 0:
                self._end(s, R_LOGOUT)
                return R_LOGOUT
            if r < space:  # a short read: the socket is most likely empty now
                break
        return R_OK

    def receive(self, int i, int64_t now_ns=-1) -> int:
        """Read what session i's socket holds and handle it. Arrival time = the clock right after
        each recv() (now_ns overrides it). Returns RECV_OK, RECV_EOF, RECV_LOGOUT (the venue sent
        Logout) or RECV_ERROR (errno in session_info)."""
        cdef _Session s = self._sessions[i]
        cdef int status = self._recv(s, now_ns)
        if status != R_OK:
            self._told(s)
        return status

    def feed(self, int i, data, int64_t now_ns=-1) -> int:
        """Handle bytes received outside receive() (leftovers of the logon exchange, or a test's)."""
        cdef _Session s = self._sessions[i]
        cdef const unsigned char[::1] src = data
        cdef Py_ssize_t n = src.shape[0]
        if n == 0:
            return R_OK
        if n > RECV_CAP - s.rlen:
            raise ValueError("more bytes than the receive buffer holds")
        memcpy(s.rp + s.rlen, &src[0], n)
        s.rlen += n
        self.c[C_BYTES_IN] += n
        self._decode(s, mono_ns() if now_ns < 0 else now_ns)
        if s.logout_reason >= 0:
            self._end(s, R_LOGOUT)
            self._told(s)
            return R_LOGOUT
        return R_OK

    def close(self, int i, int error=0) -> None:
        """Stop using session i (its socket is gone or its stream cannot be decoded)."""
        cdef _Session s = self._sessions[i]
        s.alive = False
        self._told(s)
        if error:
            s.error = error

    # ---- results ------------------------------------------------------------------------------

    def alive(self, int i) -> bool:
        return (<_Session>self._sessions[i]).alive

    def pending_bytes(self, int i) -> int:
        return (<_Session>self._sessions[i]).pending()

    def outstanding(self) -> int:
        """Orders sent and not answered yet."""
        return self.c[C_SENT] - self.c[C_ANSWERED]

    cdef bint _schedule_done(self) noexcept:
        cdef _Session s
        for s in self._sessions:
            if s.alive and s.next_k < self.total:
                return False
        return True

    def schedule_done(self) -> bool:
        """No live session has an order of the schedule left to send (a dead one's never will be)."""
        return self._schedule_done()

    def unsent(self) -> int:
        """Orders of the schedule not sent yet (or never: their session died)."""
        return self.total - self.c[C_SENT]

    def session_info(self, int i) -> dict:
        cdef _Session s = self._sessions[i]
        return {"sent": s.sent, "next_seq_num": s.next_seq, "alive": s.alive, "eof": s.eof,
                "errno": s.error, "venue_logout_reason": s.logout_reason if s.logout_reason >= 0 else None,
                "logout_sent": s.logout_sent, "resting_buy": s.resting_buy, "resting_sell": s.resting_sell,
                "max_resting": s.max_resting, "pending_bytes": s.pending(), "unread_bytes": s.rlen}

    def counters(self) -> dict:
        c = self.c
        return {
            "sent": c[C_SENT], "gtc": c[C_GTC], "ioc": c[C_IOC], "buys": c[C_BUYS],
            "answered": c[C_ANSWERED],
            "new": c[C_R_NEW], "partial_fill": c[C_R_PARTIAL], "fill": c[C_R_FILL],
            "cancelled": c[C_R_CANCELLED], "rejected": c[C_R_REJECTED], "expired": c[C_R_EXPIRED],
            "other": c[C_R_OTHER], "throttled": c[C_R_THROTTLED], "busy": c[C_R_BUSY],
            "session_rejected": c[C_R_SESSION_REJECT],
            "reports": c[C_REPORTS], "later_reports": c[C_LATER_REPORTS],
            "unknown_reports": c[C_UNKNOWN_REPORTS], "fills": c[C_FILLS], "taker_fills": c[C_TAKER_FILLS],
            "maker_fills": c[C_MAKER_FILLS], "taker_qty": c[C_TAKER_QTY],
            "trade_ids_dropped": c[C_TRADE_IDS_DROPPED], "cancel_rejects": c[C_CANCEL_REJECTS],
            "mass_cancel_reports": c[C_MASS_CANCEL_REPORTS], "other_rejects": c[C_OTHER_REJECTS],
            "heartbeats_in": c[C_HEARTBEATS_IN], "heartbeats_out": c[C_HEARTBEATS_OUT],
            "logouts_in": c[C_LOGOUTS_IN], "unexpected": c[C_UNEXPECTED], "messages_in": c[C_MESSAGES_IN],
            "bytes_in": c[C_BYTES_IN], "bytes_out": c[C_BYTES_OUT], "seq_gaps": c[C_SEQ_GAPS],
        }

    def reject_reasons(self) -> dict:
        """{RejectReason value: count} of first answers that were ExecutionReport REJECTED."""
        return {r: self.er_reasons[r] for r in range(256) if self.er_reasons[r]}

    def reports_by_exec_type(self) -> dict:
        """{ExecType value: count} of every ExecutionReport received."""
        return {t: self.exec_types[t] for t in range(256) if self.exec_types[t]}

    def session_reject_reasons(self) -> dict:
        """{SessionRejectReason value: count} of every Reject received."""
        return {r: self.session_reasons[r] for r in range(256) if self.session_reasons[r]}


# ---- the sink of the client-cost measurement (`venue loadgen --sink`) ----------------------------

cdef enum:
    SINK_BUF = 1 << 20
    SINK_EVENTS = 64
    SINK_LISTENER = 0xFFFFFFFF  # epoll tags; a peer's tag is its slot
    SINK_CONTROL = 0xFFFFFFFE


cdef class _SinkPeer:
    """One client session of the sink: acks its Logon, answers its NewOrders, answers its Logout."""
    cdef int fd
    cdef uint64_t session_id
    cdef bytearray rbuf
    cdef unsigned char* rp
    cdef Py_ssize_t rlen
    cdef bytearray out
    cdef unsigned char* op
    cdef Decoder dec
    cdef ExecutionReport er
    cdef LogonAck ack
    cdef Logout lo
    cdef bint logged_on
    cdef uint64_t seq
    cdef uint64_t order_id

    def __cinit__(self, int fd, uint64_t session_id):
        self.fd = fd
        self.session_id = session_id
        self.rbuf = bytearray(SINK_BUF)
        self.rp = <unsigned char*>self.rbuf
        self.out = bytearray(SINK_BUF)
        self.op = <unsigned char*>self.out
        self.dec = Decoder(MAX_FRAME_C)
        self.er = ExecutionReport()
        self.ack = LogonAck()
        self.lo = Logout()
        self.seq = 1
        self.order_id = 1

    cdef bint send_all(self, Py_ssize_t n) noexcept:
        """Write out[:n] (a blocking socket, like sendall); False if the peer is gone."""
        cdef Py_ssize_t off = 0
        cdef ssize_t r
        while off < n:
            r = c_send(self.fd, self.op + off, n - off, MSG_NOSIGNAL)
            if r > 0:
                off += r
            elif not (r < 0 and errno == EINTR):
                return False
        return True

    cdef void consume(self, Py_ssize_t n) noexcept:
        memmove(self.rp, self.rp + n, self.rlen - n)
        self.rlen -= n

    cdef int logon(self) except -1:
        """Ack the Logon at the front of the buffer (any key: a sink checks nothing); 0 if the peer
        is gone, 1 otherwise (acked, or the frame is not complete yet)."""
        cdef Py_ssize_t n = self.dec.frame_length(self.rbuf, 0, self.rlen)
        cdef Flyweight fw
        cdef uint32_t heartbeat_ms = 1000
        if n == 0 or n > self.rlen:
            return 1
        fw = self.dec.decode(self.rbuf, 0, n)
        if fw.sbe_template_id == Logon_TEMPLATE_ID:
            heartbeat_ms = (<Logon>fw).get_heartbeat_interval_ms()
        self.ack._encode(self.out, 6)
        self.ack.set_session_id(self.session_id)
        self.ack.set_timestamp_ns(wall_ns())
        self.ack.set_next_seq_num(1)
        self.ack.set_account_id(1)
        self.ack.set_heartbeat_interval_ms(heartbeat_ms)
        if not self.send_all(self.ack.frame()):
            return 0
        self.consume(n)
        self.logged_on = True
        return 1

    cdef int answer(self) except -1:
        """Answer every complete frame in the buffer: a NewOrder with an ExecutionReport NEW (IOC:
        CANCELLED, nothing to match in a sink), a Logout with our Logout. 0 once the peer is to be
        closed, 1 otherwise."""
        cdef Py_ssize_t off = 0
        cdef Py_ssize_t out = 0
        cdef Py_ssize_t n
        cdef Flyweight fw
        cdef NewOrder no
        cdef ExecutionReport er = self.er
        cdef bint logout = False
        while True:
            n = self.dec.frame_length(self.rbuf, off, self.rlen - off)
            if n == 0 or n > self.rlen - off:
                break
            if SINK_BUF - out < 256:  # out is full: write it and go on
                if not self.send_all(out):
                    return 0
                out = 0
            fw = self.dec.decode(self.rbuf, off, n)
            off += n
            if fw.sbe_template_id == Logout_TEMPLATE_ID:
                logout = True
                break
            if fw.sbe_template_id != NewOrder_TEMPLATE_ID:
                continue
            no = <NewOrder>fw
            er._encode(self.out, out + 6)
            er.set_seq_num(self.seq)
            er.set_cl_ord_id(no.get_cl_ord_id())
            er.set_order_id(self.order_id)
            er.set_exec_id(self.order_id)
            er.set_transact_time_ns(wall_ns())
            er.set_price(no.get_price())
            er.set_order_qty(no.get_qty())
            er.set_symbol_id(no.get_symbol_id())
            er.set_side(no.get_side())
            if no.get_time_in_force() == TimeInForce_IOC:
                er.set_exec_type(ExecType_CANCELLED)
                er.set_ord_status(OrdStatus_CANCELLED)
                er.set_reason(RejectReason_IOC_REMAINDER)
            else:
                er.set_leaves_qty(no.get_qty())
                er.set_exec_type(ExecType_NEW)
                er.set_ord_status(OrdStatus_NEW)
            out += er.frame()
            self.seq += 1
            self.order_id += 1
        if logout:
            self.lo._encode(self.out, out + 6)
            self.lo.set_next_seq_num(self.seq)
            self.lo.set_timestamp_ns(wall_ns())
            self.lo.set_reason(LogoutReason_CLIENT_REQUEST)
            out += self.lo.frame()
        if out and not self.send_all(out):
            return 0
        self.consume(off)
        return 0 if logout else 1

    cdef int read(self) except -1:
        """Take what the socket holds and answer it; 0 once the peer is to be closed."""
        cdef ssize_t r = c_recv(self.fd, self.rp + self.rlen, SINK_BUF - self.rlen, MSG_DONTWAIT)
        if r < 0:
            return errno == EAGAIN or errno == EINTR
        if r == 0:
            return 0
        self.rlen += r
        if not self.logged_on:
            if not self.logon():
                return 0
            if not self.logged_on:
                return 1  # the Logon is not complete yet
        return self.answer()


cdef int _epoll_add(int epfd, int fd, uint32_t tag) except -1:
    cdef epoll_event ev
    ev.events = EPOLLIN
    ev.data.u64 = 0
    ev.data.u32 = tag
    if epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0:
        raise OSError(errno, os.strerror(errno))
    return 0


def sink_serve(int listen_fd, int control_fd) -> None:
    """The sink process's loop, not a venue: accept sessions on listen_fd (non-blocking), ack every
    Logon, answer every NewOrder with an ExecutionReport at once, answer Logout and close; return
    when control_fd becomes readable (the parent's stop). All in C, so the sink's own cost stays
    small next to the client it measures."""
    cdef int epfd = epoll_create1(EPOLL_CLOEXEC)
    cdef epoll_event evs[SINK_EVENTS]
    cdef int n, j, err, fd, keep
    cdef int one = 1
    cdef uint32_t tag
    cdef list peers = []  # by slot; None once closed
    cdef _SinkPeer peer
    if epfd < 0:
        raise OSError(errno, os.strerror(errno))
    try:
        _epoll_add(epfd, listen_fd, SINK_LISTENER)
        _epoll_add(epfd, control_fd, SINK_CONTROL)
        while True:
            with nogil:
                n = epoll_wait(epfd, evs, SINK_EVENTS, -1)
                err = errno
            if n < 0:
                if err != EINTR:
                    raise OSError(err, os.strerror(err))
                PyErr_CheckSignals()
                continue
            for j in range(n):
                tag = evs[j].data.u32
                if tag == SINK_CONTROL:
                    return
                if tag == SINK_LISTENER:
                    fd = c_accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC)  # a blocking socket
                    if fd < 0:
                        continue
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one))
                    peers.append(_SinkPeer(fd, len(peers) + 1))
                    _epoll_add(epfd, fd, <uint32_t>(len(peers) - 1))
                    continue
                peer = peers[tag]
                if peer is None:
                    continue
                try:
                    keep = peer.read()
                except DecodeError:
                    keep = 0
                if not keep:
                    epoll_ctl(epfd, EPOLL_CTL_DEL, peer.fd, NULL)
                    c_close(peer.fd)
                    peers[tag] = None
    finally:
        for peer in peers:
            if peer is not None:
                c_close(peer.fd)
        c_close(epfd)
