# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# distutils: language = c++
"""The SBE gateway's per-message work, in C: frames in -> Requests on the command ring; Outcomes
from the broadcast ring -> ExecutionReports into each session's output buffer.

The Python loop (sbe_gateway/server.py) owns sockets, timers and logons; everything that happens
once per order is here, so a batch of frames costs one call from Python.

Order ids: the engine's order id of a NewOrder is (account << 40) | clOrdId. It is unique per venue
among live orders and the engine refuses a second live order with it (DUPLICATE_ORDER_ID), so a
resent NewOrder can never create a second order, even across a gateway restart; cancels by
accountId (0 = the key's own) + origClOrdId need no lookup. A replace gives the order a new clOrdId: the gateway remembers that
alias (new clOrdId -> order id) for later cancels and reports. clOrdId must be 1..2^40-1.
Within this gateway's lifetime a clOrdId already used on the account is refused at once
(DUPLICATE_CL_ORD_ID), also after its order finished.

Routing: an outcome concerns an order of some account; every session here permitted on that
account gets the report (a maker's fills reach its sessions too). Outcomes of other accounts are
never written to a session.
"""

from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE, PyByteArray_Resize
from cpython.dict cimport PyDict_GetItem
from cpython.ref cimport PyObject
from libc.errno cimport EAGAIN, EINTR, errno
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy, memmove, memset
from libcpp.deque cimport deque
from libcpp.unordered_set cimport unordered_set

from core_cython.broadcast cimport BroadcastReader
from core_cython.envelope cimport Outcome, Request
from core_cython.records cimport (
    EV_ACCEPTED,
    EV_CANCELLED,
    EV_EXPIRED,
    EV_MASS_CANCEL_DONE,
    EV_REJECTED,
    EV_REPLACED,
    EV_TRADE,
    EV_TRIGGERED,
    OP_CANCEL,
    OP_MASS_CANCEL,
    OP_NEW,
    OP_REPLACE,
    SIDE_BUY,
    SIDE_SELL,
)
from core_cython.ring cimport Ring
from sbe_schemas.codecs cimport (
    CancelOrder,
    CancelReject,
    Decoder,
    ExecutionReport,
    ExecutionReportFills,
    Flyweight,
    Heartbeat,
    Logout,
    MassCancel,
    MassCancelReport,
    NewOrder,
    Reject,
    ReplaceOrder,
)


from sbe_schemas import codecs


cdef extern from "<sys/epoll.h>" nogil:
    ctypedef union epoll_data_t:
        int fd
        uint64_t u64
    struct epoll_event:
        uint32_t events
        epoll_data_t data
    int epoll_wait(int epfd, epoll_event* events, int maxevents, int timeout)
    int epoll_ctl(int epfd, int op, int fd, epoll_event* event)
    enum:
        EPOLLIN
        EPOLLOUT
        EPOLLERR
        EPOLLHUP
        EPOLL_CTL_MOD

cdef extern from "<sys/socket.h>" nogil:
    ssize_t c_recv "recv"(int fd, void* buf, size_t n, int flags)
    ssize_t c_send "send"(int fd, const void* buf, size_t n, int flags)
    enum:
        MSG_DONTWAIT
        MSG_NOSIGNAL

cdef extern from "<sched.h>" nogil:
    int sched_yield()

cdef extern from "<time.h>" nogil:
    ctypedef long time_t
    struct timespec:
        time_t tv_sec
        long tv_nsec
    int clock_gettime(int clk, timespec* ts)
    enum:
        CLOCK_REALTIME
        CLOCK_MONOTONIC

cdef inline int64_t _clock_ns(int clk) noexcept nogil:
    cdef timespec t
    clock_gettime(clk, &t)
    return <int64_t>t.tv_sec * 1000000000 + t.tv_nsec

DEF CL_ORD_BITS = 40
DEF CL_ORD_MASK = (1 << 40) - 1
DEF MAX_ACCOUNT = (1 << 24) - 1
DEF INT64_NULL = -9223372036854775807 - 1
DEF RING_OK = 0
DEF MAX_USED_IDS = 1000000  # client order ids remembered (the engine itself refuses live duplicates)
DEF MAX_BAD_FRAMES = 100  # undecodable frames a session may send before it is logged out

# on_input() results: what the Python loop must do next
INPUT_MORE = 0  # all complete frames handled; read more
INPUT_LOGON = 1  # a Logon frame starts at session.in_pos (length session.frame_len): authenticate it
INPUT_LOGOUT = 2  # the client logged out: answer and close
INPUT_CLOSE = 3  # fatal protocol error: the reply is queued, close after flushing (session.close_reason)

SESSION_AWAIT_LOGON = 0
SESSION_ESTABLISHED = 1
SESSION_CLOSING = 2

TEMPLATE_LOGON = 1
TEMPLATE_HEARTBEAT = 4
TEMPLATE_LOGOUT = 5

cdef dict REJECT_OF_DECODE_ERROR = {
    "TRUNCATED_FRAME": codecs.SessionRejectReason.TRUNCATED_FRAME,
    "OVERSIZED_FRAME": codecs.SessionRejectReason.OVERSIZED_FRAME,
    "BAD_ENCODING_TYPE": codecs.SessionRejectReason.BAD_ENCODING_TYPE,
    "WRONG_SCHEMA": codecs.SessionRejectReason.WRONG_SCHEMA,
    "WRONG_VERSION": codecs.SessionRejectReason.WRONG_VERSION,
    "UNKNOWN_TEMPLATE": codecs.SessionRejectReason.UNKNOWN_TEMPLATE,
    "BAD_BLOCK_LENGTH": codecs.SessionRejectReason.BAD_BLOCK_LENGTH,
    "FRAME_LENGTH_MISMATCH": codecs.SessionRejectReason.FRAME_LENGTH_MISMATCH,
}
SESSION_REJECT = codecs.SessionRejectReason
cdef uint8_t EXEC_NEW = codecs.ExecType.NEW
cdef uint8_t EXEC_REPLACED = codecs.ExecType.REPLACED
cdef uint8_t EXEC_TRIGGERED = codecs.ExecType.TRIGGERED
cdef uint8_t EXEC_CANCELLED = codecs.ExecType.CANCELLED
cdef uint8_t EXEC_EXPIRED = codecs.ExecType.EXPIRED
cdef uint8_t EXEC_REJECTED = codecs.ExecType.REJECTED
cdef uint8_t EXEC_FILL = codecs.ExecType.FILL
cdef uint8_t EXEC_PARTIAL_FILL = codecs.ExecType.PARTIAL_FILL
cdef uint8_t STATUS_NEW = codecs.OrdStatus.NEW
cdef uint8_t STATUS_PARTIALLY_FILLED = codecs.OrdStatus.PARTIALLY_FILLED
cdef uint8_t STATUS_FILLED = codecs.OrdStatus.FILLED
cdef uint8_t STATUS_CANCELLED = codecs.OrdStatus.CANCELLED
cdef uint8_t STATUS_EXPIRED = codecs.OrdStatus.EXPIRED
cdef uint8_t STATUS_REJECTED = codecs.OrdStatus.REJECTED
cdef uint8_t LIQUIDITY_TAKER = codecs.LiquidityIndicator.TAKER
cdef uint8_t LIQUIDITY_MAKER = codecs.LiquidityIndicator.MAKER

# poll() hands these to the Python loop as (what, session, detail); everything else it did itself
POLL_ACCEPT = 1  # the listening socket is readable
POLL_INPUT = 2  # on_input() returned detail (INPUT_LOGON / INPUT_LOGOUT / INPUT_CLOSE)
POLL_EOF = 3  # the peer closed the connection
POLL_READ_ERROR = 4  # recv failed with errno = detail
POLL_CLOSE = 5  # the session is closing (session.close_reason): close it
POLL_LAPPED = 6  # the outcome ring lapped this gateway: end every session
DEF MAX_EVENTS = 64


cdef inline list _later(list todo, int what, object session, object detail):
    if todo is None:
        todo = []
    todo.append((what, session, detail))
    return todo


cdef class Session:
    """One TCP session's protocol state and buffers (the socket itself stays in Python)."""

    cdef public int fd
    cdef public uint32_t number  # origin.session of its requests
    cdef public int state
    cdef public uint64_t session_id  # random, unique across gateways and restarts: its NEWs carry it to the
    # engine as the order's session tag, and cancel-on-disconnect cancels by it
    cdef public uint64_t key_id
    cdef public uint64_t account  # the key's own account (accountId 0 means this one)
    cdef public frozenset permitted  # accounts it may trade and see: own + grants
    cdef public uint64_t next_in_seq
    cdef public uint64_t next_out_seq
    cdef public uint32_t heartbeat_ms
    cdef public bint cancel_on_disconnect
    cdef public int64_t last_rx_ns
    cdef public int64_t last_tx_ns
    cdef public int64_t opened_ns
    # throttle (GCRA): a message conforms while tat - now <= burst x interval
    cdef public int64_t throttle_interval_ns
    cdef public int64_t throttle_burst_ns
    cdef int64_t tat
    # input: a fixed buffer (decoded flyweights point into it, so it never resizes)
    cdef public bytearray inbuf
    cdef public Py_ssize_t in_len
    cdef public Py_ssize_t in_pos
    cdef public Py_ssize_t frame_len
    cdef public bytearray out  # encoded frames waiting for the socket
    cdef public bint want_write  # out did not fit the socket: waiting for EPOLLOUT
    cdef bint dirty  # in GatewayCore.dirty: output added since the last flush
    cdef public str close_reason
    # counters
    cdef public uint64_t received
    cdef public uint64_t rejected
    cdef public uint64_t throttled
    cdef public uint64_t busy
    cdef public uint64_t bad_frames

    def __init__(self, int fd, uint32_t number, Py_ssize_t in_capacity, int64_t now_ns):
        self.fd = fd
        self.number = number
        self.state = SESSION_AWAIT_LOGON
        self.inbuf = bytearray(in_capacity)
        self.in_len = 0
        self.in_pos = 0
        self.out = bytearray()
        self.next_in_seq = 1
        self.next_out_seq = 1
        self.permitted = frozenset()
        self.opened_ns = now_ns
        self.last_rx_ns = now_ns
        self.last_tx_ns = now_ns
        self.close_reason = ""
        self.throttle_interval_ns = 0
        self.tat = 0

    def set_throttle(self, double per_second, double burst) -> None:
        """Messages per second (0 = unlimited) with a burst allowance of that many messages."""
        self.throttle_interval_ns = 0 if per_second <= 0 else <int64_t>(1e9 / per_second)
        self.throttle_burst_ns = <int64_t>(burst * self.throttle_interval_ns)

    cdef bint _conforms(self, int64_t now) noexcept:
        if self.throttle_interval_ns == 0:
            return True
        if self.tat < now:
            self.tat = now
        if self.tat - now > self.throttle_burst_ns:
            return False
        self.tat += self.throttle_interval_ns
        return True


cdef class GatewayCore:
    """Frames -> ring, outcomes -> frames, for all sessions of one gateway process."""

    cdef Ring ring
    cdef BroadcastReader reader
    cdef Decoder decoder
    cdef readonly uint16_t gateway_id
    cdef dict by_account  # account -> list of Sessions permitted on it
    cdef dict aliases  # (account << 40 | clOrdId) of a replaced order's new id -> order id
    cdef dict current_id  # order id -> its clOrdId after a replace (absent = order id's low bits)
    # (account << 40 | clOrdId) used through this gateway, the newest MAX_USED_IDS. A C++ set sized
    # once: the Python set rehashed inside one loop iteration at every growth step (2.3 ms at 79k
    # ids, 16.7 ms at 629k) and, once full, every ~258k orders (~18 ms) as discards leave dummies.
    cdef unordered_set[uint64_t] used_ids
    cdef deque[uint64_t] used_order  # the same ids in the order they were used, to forget the oldest
    cdef Request req
    cdef bytearray scratch
    cdef bytearray takebuf
    cdef Py_ssize_t take_max
    cdef ExecutionReport er
    cdef CancelReject cxl_rej
    cdef MassCancelReport mass_rep
    cdef Reject rej
    cdef Heartbeat hb
    cdef Logout logout
    cdef public uint64_t published
    cdef public uint64_t outcomes_seen
    cdef public uint64_t laps
    cdef public uint64_t messages_sent  # frames queued to clients, every kind
    # poll(): the epoll set (Python registers fds in it), sessions by fd, sessions with new output
    cdef int epfd
    cdef int listener_fd
    cdef dict by_fd
    cdef list dirty
    cdef Py_ssize_t max_pending_out
    cdef int64_t spin_ns
    cdef uint64_t published_seen
    cdef epoll_event events[MAX_EVENTS]

    def __init__(self, Ring ring, BroadcastReader reader, uint16_t gateway_id, Py_ssize_t max_frame=4096,
                 Py_ssize_t take_max=4096):
        self.ring = ring
        self.reader = reader
        self.gateway_id = gateway_id
        self.decoder = Decoder(max_frame)
        self.by_account = {}
        self.aliases = {}
        self.current_id = {}
        self.used_ids.reserve(MAX_USED_IDS + 1)  # buckets for the cap: never rehashed after this
        self.scratch = bytearray(4096)
        self.take_max = take_max
        self.takebuf = bytearray(take_max * sizeof(Outcome))
        self.er = codecs.ExecutionReport()
        self.cxl_rej = codecs.CancelReject()
        self.mass_rep = codecs.MassCancelReport()
        self.rej = codecs.Reject()
        self.hb = codecs.Heartbeat()
        self.logout = codecs.Logout()
        self.epfd = -1
        self.listener_fd = -1
        self.by_fd = {}
        self.dirty = []
        self.max_pending_out = 8 << 20
        self.spin_ns = 0

    # ------------------------------------------------------------------ sessions

    def attach(self, Session s) -> None:
        """An established session starts receiving its accounts' outcomes."""
        for account in s.permitted:
            self.by_account.setdefault(account, []).append(s)

    def detach(self, Session s) -> None:
        for account in s.permitted:
            sessions = self.by_account.get(account)
            if sessions is not None and s in sessions:
                sessions.remove(s)
                if not sessions:
                    del self.by_account[account]

    def cancel_session(self, uint64_t tag) -> bool:
        """Cancel-on-disconnect: one MassCancel of every live order entered with this session tag,
        on any account and symbol (the account's other sessions keep theirs). Sequenced after all
        the session's requests, so it also catches those still in flight. False if the command ring
        is full: call again later."""
        if tag == 0:
            raise ValueError("session tag 0 would name every order")
        self._begin(0, 0)
        self.req.cmd.op = OP_MASS_CANCEL
        self.req.cmd.aux1 = <int64_t>tag
        return self._try_publish()

    # ------------------------------------------------------------------ output helpers

    cdef void _append(self, Session s, Py_ssize_t n) except *:
        cdef Py_ssize_t old = PyByteArray_GET_SIZE(s.out)
        if not s.dirty:
            s.dirty = True
            self.dirty.append(s)
        PyByteArray_Resize(s.out, old + n)
        memcpy(PyByteArray_AS_STRING(s.out) + old, PyByteArray_AS_STRING(self.scratch), n)
        self.messages_sent += 1

    cdef void _send_reject(self, Session s, uint64_t ref_seq, int ref_template, int reason, int64_t now) except *:
        cdef Reject m = self.rej
        m._encode(self.scratch, 6)
        m.set_seq_num(s.next_out_seq)
        s.next_out_seq += 1
        if ref_seq:
            m.set_ref_seq_num(ref_seq)
        if ref_template >= 0:
            m.set_ref_template_id(<uint16_t>ref_template)
        m.set_timestamp_ns(now)
        m.set_reason(<uint8_t>reason)
        self._append(s, m.frame())
        s.rejected += 1

    def send_reject(self, Session s, uint64_t ref_seq, int ref_template, int reason, int64_t now) -> None:
        self._send_reject(s, ref_seq, ref_template, reason, now)

    def send_heartbeat(self, Session s, int64_t now) -> None:
        cdef Heartbeat m = self.hb
        m._encode(self.scratch, 6)
        m.set_next_seq_num(s.next_out_seq)
        m.set_timestamp_ns(now)
        self._append(s, m.frame())

    def send_logout(self, Session s, int reason, int64_t now) -> None:
        cdef Logout m = self.logout
        m._encode(self.scratch, 6)
        m.set_next_seq_num(s.next_out_seq)
        m.set_timestamp_ns(now)
        m.set_reason(<uint8_t>reason)
        self._append(s, m.frame())

    cdef void _report_reject(self, Session s, uint64_t cl_ord_id, uint64_t account, uint32_t symbol,
                             uint8_t side, int64_t qty, int reason, int64_t now) except *:
        """An ExecutionReport REJECTED decided by the gateway (never reached the engine)."""
        cdef ExecutionReport m = self.er
        m._encode(self.scratch, 6)
        m.set_seq_num(s.next_out_seq)
        s.next_out_seq += 1
        m.set_cl_ord_id(cl_ord_id)
        m.set_account_id(account)
        m.set_transact_time_ns(now)
        m.set_order_qty(qty)
        m.set_symbol_id(symbol)
        m.set_exec_type(EXEC_REJECTED)
        m.set_ord_status(STATUS_REJECTED)
        m.set_reason(<uint8_t>reason)
        m.set_side(side)
        self._append(s, m.frame())
        s.rejected += 1

    cdef void _cancel_reject(self, Session s, uint64_t cl_ord_id, uint64_t orig, uint64_t order_id,
                             uint64_t engine_seq, int reason, int response_to, int64_t now) except *:
        cdef CancelReject m = self.cxl_rej
        m._encode(self.scratch, 6)
        m.set_seq_num(s.next_out_seq)
        s.next_out_seq += 1
        m.set_cl_ord_id(cl_ord_id)
        m.set_orig_cl_ord_id(orig)
        m.set_order_id(order_id)
        m.set_engine_seq(engine_seq)
        m.set_transact_time_ns(now)
        m.set_reason(<uint8_t>reason)
        m.set_response_to(<uint8_t>response_to)
        self._append(s, m.frame())

    # ------------------------------------------------------------------ input

    cdef void _begin(self, uint32_t session, uint64_t request_id) noexcept:
        """Start a request in self.req: zeroed, with its origin."""
        memset(&self.req, 0, sizeof(Request))
        self.req.origin.request_id = request_id
        self.req.origin.session = session
        self.req.origin.gateway = self.gateway_id

    cdef bint _try_publish(self) noexcept:
        if self.ring.publish_ptr(<const unsigned char*>&self.req) == RING_OK:
            self.published += 1
            return True
        return False

    cdef int _publish(self, Session s, uint64_t seq, int template, int64_t now) except -1:
        if self._try_publish():
            return 1
        # full (backpressure) or our claim was skipped: the client hears it, nothing is dropped silently
        s.busy += 1
        self._send_reject(s, seq, template, SESSION_REJECT.BUSY, now)
        return 0

    cdef void _use(self, uint64_t key) noexcept:
        self.used_ids.insert(key)
        self.used_order.push_back(key)
        if self.used_order.size() > MAX_USED_IDS:
            self.used_ids.erase(self.used_order.front())
            self.used_order.pop_front()

    cdef int _resolve_account(self, Session s, uint64_t requested, uint64_t* out) noexcept:
        if requested == 0:
            out[0] = s.account
            return 1
        if requested in s.permitted:
            out[0] = requested
            return 1
        return 0

    cdef uint64_t _named_order(self, Session s, uint64_t account_id, uint64_t orig_cl_ord_id,
                               uint64_t order_id):
        """The engine order id named by orderId, else by accountId (0: the key's own) + origClOrdId,
        through a replace's alias; 0 if accountId is not one this session may use."""
        cdef uint64_t account
        if order_id:
            return order_id
        if not self._resolve_account(s, account_id, &account):
            return 0
        key = (account << CL_ORD_BITS) | orig_cl_ord_id
        return self.aliases.get(key, key)

    cpdef int on_input(self, Session s, int64_t now) except -1:
        """Handle every complete frame in s.inbuf[in_pos:in_len]; see the INPUT_* results."""
        cdef Py_ssize_t n
        cdef Flyweight fw
        cdef int tid
        while True:
            try:
                n = self.decoder.frame_length(s.inbuf, s.in_pos, s.in_len - s.in_pos)
            except codecs.DecodeError as exc:  # bad SOFH: the byte stream cannot be resynchronised
                self._send_reject(s, 0, -1, REJECT_OF_DECODE_ERROR[exc.kind], now)
                self.send_logout(s, codecs.LogoutReason.PROTOCOL_ERROR, now)
                s.close_reason = f"bad frame header: {exc}"
                s.state = SESSION_CLOSING
                return INPUT_CLOSE
            if n == 0 or n > s.in_len - s.in_pos:
                return INPUT_MORE
            s.frame_len = n
            s.received += 1
            s.last_rx_ns = now
            try:
                fw = self.decoder.decode(s.inbuf, s.in_pos, n)
            except codecs.DecodeError as exc:  # the frame is delimited: reject it and go on
                tid = exc.template_id if exc.template_id is not None else -1
                self._send_reject(s, 0, tid, REJECT_OF_DECODE_ERROR[exc.kind], now)
                s.in_pos += n
                s.bad_frames += 1
                if s.state == SESSION_AWAIT_LOGON or s.bad_frames > MAX_BAD_FRAMES:
                    # before logon nothing else is allowed; after it, a client sending mostly junk
                    # would only make the gateway write Rejects
                    self.send_logout(s, codecs.LogoutReason.PROTOCOL_ERROR, now)
                    s.close_reason = f"undecodable frame: {exc}"
                    s.state = SESSION_CLOSING
                    return INPUT_CLOSE
                continue
            tid = fw.sbe_template_id
            if s.state == SESSION_AWAIT_LOGON:
                if tid == TEMPLATE_LOGON:
                    return INPUT_LOGON  # Python authenticates it, then advances in_pos
                self._send_reject(s, 0, tid, SESSION_REJECT.NOT_LOGGED_IN, now)
                s.close_reason = "first message was not a Logon"
                s.state = SESSION_CLOSING
                s.in_pos += n
                return INPUT_CLOSE
            if s.state != SESSION_ESTABLISHED:
                s.in_pos += n
                continue
            if tid == TEMPLATE_HEARTBEAT:
                s.in_pos += n
                continue
            if tid == TEMPLATE_LOGOUT:
                s.in_pos += n
                return INPUT_LOGOUT
            if tid == 10:
                self._new_order(s, <NewOrder>fw, now)
            elif tid == 11:
                self._cancel(s, <CancelOrder>fw, now)
            elif tid == 12:
                self._replace(s, <ReplaceOrder>fw, now)
            elif tid == 13:
                self._mass_cancel(s, <MassCancel>fw, now)
            else:  # a venue -> client message, or a second Logon
                self._send_reject(s, 0, tid, SESSION_REJECT.UNEXPECTED_MESSAGE, now)
            s.in_pos += n
            if s.state == SESSION_CLOSING:
                return INPUT_CLOSE

    cdef bint _sequenced(self, Session s, uint64_t seq, int tid, int64_t now) except -1:
        """Application messages carry seqNum = the next expected. A repeat is rejected and ignored;
        a gap means the client lost track (TCP loses nothing), so the session ends."""
        if seq == s.next_in_seq:
            s.next_in_seq += 1
            return True
        self._send_reject(s, seq, tid, SESSION_REJECT.SEQUENCE_ERROR, now)
        if seq > s.next_in_seq:
            self.send_logout(s, codecs.LogoutReason.SEQUENCE_ERROR, now)
            s.close_reason = f"sequence gap: got {seq}, expected {s.next_in_seq}"
            s.state = SESSION_CLOSING
        return False

    cdef bint _admitted(self, Session s, uint64_t seq, int tid, int64_t now) except -1:
        if not self._sequenced(s, seq, tid, now):
            return False
        if not s._conforms(now):
            s.throttled += 1
            self._send_reject(s, seq, tid, SESSION_REJECT.THROTTLED, now)
            return False
        return True

    cdef void _new_order(self, Session s, NewOrder m, int64_t now) except *:
        cdef uint64_t seq = m.get_seq_num()
        cdef uint64_t cl = m.get_cl_ord_id()
        cdef uint64_t account
        cdef int64_t v
        if not self._admitted(s, seq, 10, now):
            return
        if cl == 0 or cl > CL_ORD_MASK:
            self._send_reject(s, seq, 10, SESSION_REJECT.INVALID_VALUE, now)
            return
        if not self._resolve_account(s, m.get_account_id(), &account):
            self._report_reject(s, cl, m.get_account_id(), m.get_symbol_id(), m.get_side(), m.get_qty(),
                                codecs.RejectReason.ACCOUNT_NOT_PERMITTED, now)
            return
        key = (account << CL_ORD_BITS) | cl
        if self.used_ids.count(key):
            self._report_reject(s, cl, account, m.get_symbol_id(), m.get_side(), m.get_qty(),
                                codecs.RejectReason.DUPLICATE_CL_ORD_ID, now)
            return
        self._begin(s.number, cl)
        self.req.cmd.op = OP_NEW
        self.req.cmd.aux1 = <int64_t>s.session_id
        self.req.cmd.order_id = key
        self.req.cmd.account = account
        v = m.get_price()
        self.req.cmd.price = 0 if v == INT64_NULL else v
        self.req.cmd.qty = m.get_qty()
        v = m.get_stop_price()
        self.req.cmd.stop_price = 0 if v == INT64_NULL else v
        v = m.get_display_qty()
        self.req.cmd.display_qty = 0 if v == INT64_NULL else v
        self.req.cmd.symbol = m.get_symbol_id()
        self.req.cmd.side = m.get_side()
        self.req.cmd.ord_type = m.get_ord_type()
        self.req.cmd.tif = m.get_time_in_force()
        self.req.cmd.stp = m.get_stp_mode()
        self.req.cmd.flags = m.get_flags()
        if self._publish(s, seq, 10, now):
            self._use(key)

    cdef void _cancel(self, Session s, CancelOrder m, int64_t now) except *:
        cdef uint64_t seq = m.get_seq_num()
        cdef uint64_t order_id
        if not self._admitted(s, seq, 11, now):
            return
        order_id = self._named_order(s, m.get_account_id(), m.get_orig_cl_ord_id(), m.get_order_id())
        if order_id == 0 or (order_id >> CL_ORD_BITS) not in s.permitted:
            self._cancel_reject(s, m.get_cl_ord_id(), m.get_orig_cl_ord_id(), m.get_order_id(), 0,
                                codecs.RejectReason.ACCOUNT_NOT_PERMITTED, codecs.CxlRejResponseTo.CANCEL, now)
            return
        self._begin(s.number, m.get_cl_ord_id())
        self.req.cmd.op = OP_CANCEL
        self.req.cmd.order_id = order_id
        self.req.cmd.account = order_id >> CL_ORD_BITS
        self.req.cmd.symbol = m.get_symbol_id()
        self._publish(s, seq, 11, now)

    cdef void _replace(self, Session s, ReplaceOrder m, int64_t now) except *:
        cdef uint64_t seq = m.get_seq_num()
        cdef uint64_t order_id, account, cl = m.get_cl_ord_id()
        cdef int64_t v
        if not self._admitted(s, seq, 12, now):
            return
        if cl == 0 or cl > CL_ORD_MASK:
            self._send_reject(s, seq, 12, SESSION_REJECT.INVALID_VALUE, now)
            return
        order_id = self._named_order(s, m.get_account_id(), m.get_orig_cl_ord_id(), m.get_order_id())
        account = order_id >> CL_ORD_BITS
        if order_id == 0 or account not in s.permitted:
            self._cancel_reject(s, cl, m.get_orig_cl_ord_id(), m.get_order_id(), 0,
                                codecs.RejectReason.ACCOUNT_NOT_PERMITTED, codecs.CxlRejResponseTo.REPLACE, now)
            return
        key = (account << CL_ORD_BITS) | cl
        if self.used_ids.count(key):
            self._cancel_reject(s, cl, m.get_orig_cl_ord_id(), m.get_order_id(), 0,
                                codecs.RejectReason.DUPLICATE_CL_ORD_ID, codecs.CxlRejResponseTo.REPLACE, now)
            return
        self._begin(s.number, cl)
        self.req.cmd.op = OP_REPLACE
        self.req.cmd.order_id = order_id
        self.req.cmd.account = account
        v = m.get_price()
        self.req.cmd.price = 0 if v == INT64_NULL else v
        self.req.cmd.qty = m.get_qty()
        self.req.cmd.symbol = m.get_symbol_id()
        if self._publish(s, seq, 12, now):
            self._use(key)

    cdef void _mass_cancel(self, Session s, MassCancel m, int64_t now) except *:
        cdef uint64_t seq = m.get_seq_num()
        cdef uint64_t account
        if not self._admitted(s, seq, 13, now):
            return
        if not self._resolve_account(s, m.get_account_id(), &account):
            self._cancel_reject(s, m.get_cl_ord_id(), 0, 0, 0, codecs.RejectReason.ACCOUNT_NOT_PERMITTED,
                                codecs.CxlRejResponseTo.MASS_CANCEL, now)
            return
        self._begin(s.number, m.get_cl_ord_id())
        self.req.cmd.op = OP_MASS_CANCEL
        self.req.cmd.account = account
        self.req.cmd.symbol = m.get_symbol_id()
        self._publish(s, seq, 13, now)

    # ------------------------------------------------------------------ the I/O loop's steady state

    def set_io(self, int epfd, int listener_fd, Py_ssize_t max_pending_out, int64_t spin_ns=0) -> None:
        """The epoll set poll() waits on (the caller registers the listener, the outcome ring's wake
        socket and each session's socket in it), the listener's fd, the output limit per session,
        and how long poll() may spin for the engine's answer after publishing (0 = never)."""
        self.epfd = epfd
        self.listener_fd = listener_fd
        self.max_pending_out = max_pending_out
        self.spin_ns = spin_ns

    def add_session(self, Session s) -> None:
        """poll() reads s.fd from now on (a new connection, before its Logon)."""
        self.by_fd[s.fd] = s

    def remove_session(self, Session s) -> None:
        """Call before closing s's socket: poll() forgets its fd and never writes to it again."""
        if self.by_fd.get(s.fd) is s:
            del self.by_fd[s.fd]
        s.fd = -1

    def poll(self, int timeout_ms):
        """Wait up to timeout_ms (-1: do not wait, yield the CPU once) for sockets or outcomes, then do the steady-state work in C: read
        and handle established sessions' frames, route outcomes, write reports. Returns None, or a
        list of (POLL_*, session, detail) that need the Python loop (accept, logon, close, ...)."""
        cdef int n, i, fd
        cdef uint32_t ev
        cdef int64_t now, until
        cdef PyObject* found
        cdef Session s
        cdef list todo = None
        if timeout_ms != 0 and self.spin_ns > 0 and self.published != self.published_seen:
            # A request just went to the engine: its answer usually comes within tens of µs, sooner
            # than a sleep + wake-up round trip through the kernel.
            until = _clock_ns(CLOCK_MONOTONIC) + self.spin_ns
            while not self.reader.c_has_new() and _clock_ns(CLOCK_MONOTONIC) < until:
                pass
        self.published_seen = self.published
        if timeout_ms < 0:  # busy-poll: never sleep, but let whatever else is runnable here run
            with nogil:
                sched_yield()
            timeout_ms = 0
        elif timeout_ms != 0 and not self.reader.c_prepare_wait():
            timeout_ms = 0  # outcomes arrived meanwhile
        with nogil:
            n = epoll_wait(self.epfd, self.events, MAX_EVENTS, timeout_ms)
        if n < 0:
            if errno != EINTR:
                raise OSError(errno, "epoll_wait failed")
            n = 0
        self.reader.c_awake()  # the engine need not send wake bytes while we work
        now = _clock_ns(CLOCK_REALTIME)
        for i in range(n):
            fd = self.events[i].data.fd
            ev = self.events[i].events
            if fd == self.listener_fd:
                todo = _later(todo, POLL_ACCEPT, None, None)
                continue
            if fd == self.reader.sock_fd:
                self.reader.c_drain_wakeups()
                continue
            found = PyDict_GetItem(self.by_fd, fd)
            if found == NULL:
                continue
            s = <Session>found
            if ev & EPOLLOUT:
                s.want_write = False
                self._watch(s, EPOLLIN)
                if not s.dirty:
                    s.dirty = True
                    self.dirty.append(s)
            if ev & (EPOLLIN | EPOLLHUP | EPOLLERR):
                todo = self._receive(s, now, todo)
        if self.drain_outcomes() < 0:
            todo = _later(todo, POLL_LAPPED, None, None)
        if self.dirty:
            todo = self._flush_dirty(now, todo)
        return todo

    cdef void _watch(self, Session s, uint32_t events) noexcept:
        cdef epoll_event e
        e.events = events
        e.data.fd = s.fd
        epoll_ctl(self.epfd, EPOLL_CTL_MOD, s.fd, &e)

    cdef list _receive(self, Session s, int64_t now, list todo):
        """One read (at most a buffer) and the whole frames in it. Epoll is level-triggered: what is
        left comes next round, after this round's outcomes were taken, so a client pouring orders
        in can neither starve other sessions nor make the engine lap this gateway."""
        cdef char* p
        cdef ssize_t got
        cdef Py_ssize_t room
        cdef int action
        while True:
            p = PyByteArray_AS_STRING(s.inbuf)
            if s.in_pos:
                memmove(p, p + s.in_pos, s.in_len - s.in_pos)
                s.in_len -= s.in_pos
                s.in_pos = 0
            room = PyByteArray_GET_SIZE(s.inbuf) - s.in_len
            if room == 0:  # cannot happen with max_frame < the buffer; never spin on it
                s.close_reason = "input buffer full"
                s.state = SESSION_CLOSING
                return _later(todo, POLL_CLOSE, s, None)
            got = c_recv(s.fd, p + s.in_len, room, MSG_DONTWAIT)
            if got > 0:
                s.in_len += got
                action = self.on_input(s, now)
                if action != INPUT_MORE:
                    return _later(todo, POLL_INPUT, s, action)
                return todo
            if got == 0:
                return _later(todo, POLL_EOF, s, None)
            if errno == EINTR:
                continue
            if errno == EAGAIN:
                return todo
            return _later(todo, POLL_READ_ERROR, s, errno)

    cdef bint _write_out(self, Session s, int64_t now) except -1:
        """Send what the socket takes of s.out; the rest waits for EPOLLOUT. Past max_pending_out the
        session is set closing instead (also while waiting for the socket); returns True then."""
        cdef Py_ssize_t size = PyByteArray_GET_SIZE(s.out)
        cdef ssize_t sent
        if size > self.max_pending_out:
            s.close_reason = f"client not reading ({size} bytes of reports queued)"
            s.state = SESSION_CLOSING
            return True
        if size == 0 or s.want_write:
            return False
        sent = c_send(s.fd, PyByteArray_AS_STRING(s.out), size, MSG_DONTWAIT | MSG_NOSIGNAL)
        if sent > 0:
            del s.out[:sent]
            s.last_tx_ns = now
        elif sent < 0 and errno != EAGAIN and errno != EINTR:
            del s.out[:]  # the peer is gone; the read side notices and closes
            return False
        if PyByteArray_GET_SIZE(s.out):
            s.want_write = True
            self._watch(s, EPOLLIN | EPOLLOUT)
        return False

    def flush(self, Session s, int64_t now) -> None:
        """Write s's output now (the Python loop, e.g. a LogonAck or a Logout before closing)."""
        if s.fd >= 0:
            self._write_out(s, now)

    cdef list _flush_one(self, Session s, int64_t now, list todo):
        if s.fd < 0:
            return todo  # closed meanwhile
        if s.state != SESSION_CLOSING:
            self._write_out(s, now)
        if s.state == SESSION_CLOSING:  # the Python loop flushes what it can and closes
            return _later(todo, POLL_CLOSE, s, None)
        return todo

    cdef list _flush_dirty(self, int64_t now, list todo):
        """Write the sessions' new output; what the socket does not take waits for EPOLLOUT."""
        cdef Session s
        cdef list dirty = self.dirty
        cdef Py_ssize_t i = 0
        self.dirty = []
        try:
            for i in range(len(dirty)):
                s = <Session>dirty[i]
                s.dirty = False
                todo = self._flush_one(s, now, todo)
        except BaseException:
            for s in dirty[i:]:  # not lost: flushed next round
                s.dirty = True
                self.dirty.append(s)
            raise
        return todo

    # ------------------------------------------------------------------ outcomes

    def drain_outcomes(self) -> int:
        """Route every outcome the engine published since the last call; returns how many, or -1
        if this gateway was lapped (outcomes lost: the caller must end every session)."""
        cdef int64_t n
        cdef int64_t total = 0
        cdef const Outcome* oc
        cdef int64_t i
        while True:
            n = self.reader.take_ptr(<unsigned char*>PyByteArray_AS_STRING(self.takebuf), self.take_max)
            if n < 0:
                self.laps += 1
                return -1
            if n == 0:
                return total
            oc = <const Outcome*>PyByteArray_AS_STRING(self.takebuf)
            for i in range(n):
                self._route(&oc[i])
            total += n
            self.outcomes_seen += n
            if n < self.take_max:
                return total

    cdef uint64_t _cl_ord_id(self, uint64_t order_id):
        got = self.current_id.get(order_id)
        if got is not None:
            return got
        return order_id & CL_ORD_MASK

    cdef void _forget(self, uint64_t order_id) except *:
        cl = self.current_id.pop(order_id, None)
        if cl is not None:
            self.aliases.pop(((order_id >> CL_ORD_BITS) << CL_ORD_BITS) | cl, None)

    cdef void _route(self, const Outcome* o) except *:
        cdef uint8_t t = o.ev.type
        cdef list sessions
        if t == EV_TRADE:
            sessions = self.by_account.get(o.ev.account)
            if sessions:
                self._fill_reports(sessions, o, True)
            sessions = self.by_account.get(o.ev.maker_account)
            if sessions:
                self._fill_reports(sessions, o, False)
            if o.ev.leaves == 0:
                self._forget(o.ev.order_id)
            if o.ev.maker_leaves == 0:
                self._forget(o.ev.maker_order)
            return
        if t == EV_MASS_CANCEL_DONE:
            if o.origin.gateway == self.gateway_id:
                self._mass_report(o)
            return
        if t != EV_ACCEPTED and t != EV_CANCELLED and t != EV_EXPIRED and t != EV_REJECTED \
                and t != EV_REPLACED and t != EV_TRIGGERED:
            return  # postings, admin outcomes: not order entry's business
        sessions = self.by_account.get(o.ev.account)
        if t == EV_REJECTED and o.ev.op != OP_NEW:
            if o.origin.gateway == self.gateway_id and sessions:
                self._cancel_rejects(sessions, o)
            return
        if t == EV_REPLACED:
            self._note_replace(o)
        if sessions:
            self._order_reports(sessions, o)
        if t == EV_CANCELLED or t == EV_EXPIRED:  # (a rejected NEW was never tracked)
            self._forget(o.ev.order_id)

    cdef void _note_replace(self, const Outcome* o) except *:
        cdef uint64_t order_id = o.ev.order_id
        cdef uint64_t account = order_id >> CL_ORD_BITS
        old = self.current_id.get(order_id)
        if old is not None:
            self.aliases.pop((account << CL_ORD_BITS) | old, None)
        if o.origin.gateway == self.gateway_id and o.origin.request_id:
            self.current_id[order_id] = o.origin.request_id
            self.aliases[(account << CL_ORD_BITS) | o.origin.request_id] = order_id

    cdef void _order_reports(self, list sessions, const Outcome* o) except *:
        cdef ExecutionReport m = self.er
        cdef uint8_t t = o.ev.type
        cdef uint8_t exec_type, status
        cdef Session s
        if t == EV_ACCEPTED:
            exec_type = EXEC_NEW
            status = STATUS_NEW
        elif t == EV_REPLACED:
            exec_type = EXEC_REPLACED
            status = STATUS_PARTIALLY_FILLED if o.ev.filled > 0 else STATUS_NEW
        elif t == EV_TRIGGERED:
            exec_type = EXEC_TRIGGERED
            status = STATUS_PARTIALLY_FILLED if o.ev.filled > 0 else STATUS_NEW
        elif t == EV_CANCELLED:
            exec_type = EXEC_CANCELLED
            status = STATUS_CANCELLED
        elif t == EV_EXPIRED:
            exec_type = EXEC_EXPIRED
            status = STATUS_EXPIRED
        else:
            exec_type = EXEC_REJECTED
            status = STATUS_REJECTED
        for s in sessions:
            m._encode(self.scratch, 6)
            m.set_seq_num(s.next_out_seq)
            s.next_out_seq += 1
            m.set_cl_ord_id(self._cl_ord_id(o.ev.order_id))
            m.set_order_id(o.ev.order_id if t != EV_REJECTED else 0)
            m.set_exec_id(o.ev.seq << 1)  # unique per venue: (engine seq, side of a trade)
            m.set_engine_seq(o.ev.seq)
            m.set_account_id(o.ev.account)
            m.set_transact_time_ns(o.ev.ts)
            if o.ev.price:
                m.set_price(o.ev.price)
            # Every event about a live order carries its filled and open quantity, so the order's
            # quantity comes from the event alone, also for orders placed before this gateway started.
            if t == EV_CANCELLED or t == EV_EXPIRED:
                m.set_order_qty(o.ev.qty + o.ev.filled)  # qty = what was still open
            elif t == EV_TRIGGERED:
                m.set_order_qty(o.ev.leaves + o.ev.filled)
            else:
                m.set_order_qty(o.ev.qty)
            m.set_leaves_qty(o.ev.leaves)
            m.set_cum_qty(o.ev.filled)
            m.set_symbol_id(o.ev.symbol)
            m.set_exec_type(exec_type)
            m.set_ord_status(status)
            m.set_reason(o.ev.reason)
            m.set_side(o.ev.side)
            self._append(s, m.frame())

    cdef void _fill_reports(self, list sessions, const Outcome* o, bint taker) except *:
        cdef ExecutionReport m = self.er
        cdef ExecutionReportFills fills
        cdef Session s
        cdef uint64_t order_id = o.ev.order_id if taker else o.ev.maker_order
        cdef int64_t leaves = o.ev.leaves if taker else o.ev.maker_leaves
        cdef int64_t filled = o.ev.filled if taker else o.ev.maker_filled
        for s in sessions:
            m._encode(self.scratch, 6)
            m.set_seq_num(s.next_out_seq)
            s.next_out_seq += 1
            m.set_cl_ord_id(self._cl_ord_id(order_id))
            m.set_order_id(order_id)
            m.set_exec_id((o.ev.seq << 1) | (0 if taker else 1))  # both sides of a trade: two reports
            m.set_engine_seq(o.ev.seq)
            m.set_account_id(o.ev.account if taker else o.ev.maker_account)
            m.set_transact_time_ns(o.ev.ts)
            m.set_order_qty(leaves + filled)  # the engine keeps qty == leaves + filled while live
            m.set_leaves_qty(leaves)
            m.set_cum_qty(filled)
            m.set_last_px(o.ev.price)
            m.set_last_qty(o.ev.qty)
            m.set_symbol_id(o.ev.symbol)
            m.set_exec_type(EXEC_FILL if leaves == 0 else EXEC_PARTIAL_FILL)
            m.set_ord_status(STATUS_FILLED if leaves == 0 else STATUS_PARTIALLY_FILLED)
            if taker:
                m.set_side(o.ev.side)
            else:
                m.set_side(SIDE_SELL if o.ev.side == SIDE_BUY else SIDE_BUY)
            fills = m.begin_fills(1)
            fills.advance()
            fills.set_trade_id(o.ev.seq)
            fills.set_fill_px(o.ev.price)
            fills.set_fill_qty(o.ev.qty)
            fills.set_engine_seq(o.ev.seq)
            fills.set_liquidity(LIQUIDITY_TAKER if taker else LIQUIDITY_MAKER)
            self._append(s, m.frame())

    cdef void _cancel_rejects(self, list sessions, const Outcome* o) except *:
        cdef Session s
        cdef int response_to = codecs.CxlRejResponseTo.CANCEL if o.ev.op == OP_CANCEL \
            else codecs.CxlRejResponseTo.REPLACE
        for s in sessions:
            if s.number == o.origin.session:
                self._cancel_reject(s, o.origin.request_id, self._cl_ord_id(o.ev.order_id), o.ev.order_id,
                                    o.ev.seq, o.ev.reason, response_to, o.ev.ts)
        if o.ev.op == OP_REPLACE:  # the new clOrdId never took effect
            self.used_ids.erase(((o.ev.order_id >> CL_ORD_BITS) << CL_ORD_BITS) | o.origin.request_id)

    cdef void _mass_report(self, const Outcome* o) except *:
        cdef MassCancelReport m = self.mass_rep
        cdef Session s
        sessions = self.by_account.get(o.ev.account)
        if not sessions:
            return
        for s in sessions:
            if s.number != o.origin.session:
                continue
            m._encode(self.scratch, 6)
            m.set_seq_num(s.next_out_seq)
            s.next_out_seq += 1
            m.set_cl_ord_id(o.origin.request_id)
            m.set_account_id(o.ev.account)
            m.set_engine_seq(o.ev.seq)
            m.set_transact_time_ns(o.ev.ts)
            m.set_cancelled_count(<uint64_t>o.ev.qty)
            m.set_symbol_id(o.ev.symbol)
            self._append(s, m.frame())
