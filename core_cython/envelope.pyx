# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# distutils: language = c++
"""Packing the engine's batches to and from ring records (the engine service's per-batch glue).

A gateway publishes Requests (a Command + its Origin) into the command ring; the engine service
splits a batch of them into the contiguous command array the engine takes and an origin array,
and after the journal commit joins each event with the origin of the command that caused it
(by cmd_seq) into Outcomes for the broadcast ring. Done in C because it runs on every batch.

The rings carry order entry only: an op outside NEW..MASS_CANCEL is replaced by op 0 before the
engine sees it (the engine rejects it: UNKNOWN_OP), so a compromised or buggy gateway cannot
define instruments, deposit, transfer or change fees. The origin is written by the gateway itself,
so it grants nothing. Money and admin commands reach the engine only through the journal's owner
(`venue accounts`: in its own process with the venue stopped, else over the engine's admin socket).

Postings are left out of the outcomes: gateways do not report them, and they are two thirds of a
trading command's events (they stay in the journal).
"""

cimport numpy as cnp
from libc.stdint cimport int64_t, uint8_t, uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy

from core_cython.broadcast cimport Broadcast
from core_cython.envelope cimport BATCH_BUCKETS, OUTCOME_LAST_OF_COMMAND, Origin, Outcome, Request
from core_cython.records cimport EV_POSTING, OP_MASS_CANCEL, OP_NEW, Command, Event
from core_cython.ring cimport Ring, now_ns

cnp.import_array()

DEF OP_REFUSED = 0  # not an op: the engine answers REJECTED(UNKNOWN_OP)

REQUEST_SIZE = sizeof(Request)
OUTCOME_SIZE = sizeof(Outcome)
BATCH_BOUNDS_US = tuple(1 << i for i in range(BATCH_BUCKETS - 1))  # then +Inf


cdef inline int _bucket(int64_t took_ns) noexcept nogil:
    """The first bucket "<= 2^i µs" that holds took_ns rounded up to whole µs (BATCH_BUCKETS - 1: above)."""
    cdef uint64_t rest = <uint64_t>((took_ns + 999) // 1000 - 1) if took_ns > 1000 else 0
    cdef int i = 0
    while rest:
        rest >>= 1
        i += 1
    return i if i < BATCH_BUCKETS - 1 else BATCH_BUCKETS - 1


def batch_bucket(int64_t took_ns) -> int:
    """Which BATCH_BOUNDS_US bucket a batch time falls in (len(BATCH_BOUNDS_US): above them all)."""
    return _bucket(took_ns)


cdef int _split(const Request* req, Py_ssize_t n, Command* cmd, Origin* org) noexcept nogil:
    """Requests -> commands + origins; returns how many carried an op other than order entry."""
    cdef Py_ssize_t i
    cdef int refused = 0
    for i in range(n):
        memcpy(&cmd[i], &req[i].cmd, sizeof(Command))
        memcpy(&org[i], &req[i].origin, sizeof(Origin))
        if cmd[i].op < OP_NEW or cmd[i].op > OP_MASS_CANCEL:
            cmd[i].op = OP_REFUSED
            refused += 1
    return refused


cdef Py_ssize_t _join(const Event* ev, Py_ssize_t n_events, const Origin* org, Py_ssize_t n_cmds,
                      uint64_t first_cmd_seq, Outcome* oc) noexcept nogil:
    """Events (but postings) + their commands' origins -> outcomes; -1 if an event names a command
    outside the batch."""
    cdef Py_ssize_t i
    cdef Py_ssize_t m = 0
    cdef uint64_t k
    for i in range(n_events):
        k = ev[i].cmd_seq - first_cmd_seq
        if k >= <uint64_t>n_cmds:
            return -1
        if m > 0 and oc[m - 1].ev.cmd_seq != ev[i].cmd_seq:
            oc[m - 1].origin.flags = OUTCOME_LAST_OF_COMMAND
        if ev[i].type == EV_POSTING:
            continue
        memcpy(&oc[m].ev, &ev[i], sizeof(Event))
        memcpy(&oc[m].origin, &org[k], sizeof(Origin))
        oc[m].origin.flags = 0
        m += 1
    if m > 0:
        oc[m - 1].origin.flags = OUTCOME_LAST_OF_COMMAND
    return m


cdef class BatchIO:
    """The engine service's ring side of a batch, in C: take() a batch of requests from the command
    ring straight into the engine's command array (and their origins), publish() the committed
    batch's events joined with those origins to the broadcast ring. It owns its buffers, so a batch
    costs no allocation and no per-call buffer checks (about 3 µs of Python glue a batch before)."""

    def __cinit__(self, Ring ring not None, Broadcast outcomes not None, commands, Py_ssize_t max_batch):
        if max_batch <= 0:
            raise ValueError("max_batch must be positive")
        if (not isinstance(commands, cnp.ndarray) or cnp.PyArray_NDIM(<cnp.ndarray>commands) != 1
                or not cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>commands)
                or cnp.PyArray_ITEMSIZE(<cnp.ndarray>commands) != sizeof(Command)
                or cnp.PyArray_DIM(<cnp.ndarray>commands, 0) < max_batch
                or not cnp.PyArray_ISWRITEABLE(<cnp.ndarray>commands)):
            raise ValueError(f"commands must be a writable C-contiguous array of at least {max_batch} "
                             f"{sizeof(Command)}-byte commands")
        if ring.slot_size != sizeof(Request) or outcomes.slot_size != sizeof(Outcome):
            raise ValueError("the rings' slots are not Requests and Outcomes")
        self.ring, self.outcomes, self.commands = ring, outcomes, commands
        self.cmd = <Command*>cnp.PyArray_DATA(<cnp.ndarray>commands)
        self.max_batch = max_batch
        self.raw = <Request*>malloc(max_batch * sizeof(Request))
        self.origins = <Origin*>malloc(max_batch * sizeof(Origin))
        self.out_cap = 8 * max_batch
        self.out = <Outcome*>malloc(self.out_cap * sizeof(Outcome))
        if self.raw == NULL or self.origins == NULL or self.out == NULL:
            raise MemoryError()

    def __dealloc__(self):
        free(self.raw)
        free(self.origins)
        free(self.out)

    def take(self, int64_t timeout_ns, int strategy, int64_t spin_ns, int64_t stall_ns=50_000_000) -> int:
        """Wait up to timeout_ns (strategy: an index of core_cython.ring.WAIT_STRATEGIES) for requests;
        split them into commands[:n] and the origins; return n (0: none came). Requests with an op
        other than order entry reach the engine as op 0 (counted in `refused`)."""
        cdef uint64_t n
        if not self.ring.base:
            raise ValueError("the command ring is closed")
        with nogil:
            n = self.ring.take_ptr(<unsigned char*>self.raw, self.max_batch, strategy, timeout_ns, stall_ns,
                                   spin_ns)
            if n:
                self.taken_ns = now_ns()
                self.refused += _split(self.raw, n, self.cmd, self.origins)
        self.n_taken = n
        return n

    def publish(self, events, uint64_t first_cmd_seq) -> int:
        """Publish the last take()'s outcomes: `events` (EVENT_DTYPE, C-contiguous; the engine's view)
        are those of its commands, the first of which got cmd seq first_cmd_seq. Returns outcomes."""
        cdef Py_ssize_t n_events
        cdef Py_ssize_t m
        cdef Outcome* grown
        if (not isinstance(events, cnp.ndarray) or cnp.PyArray_NDIM(<cnp.ndarray>events) != 1
                or not cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>events)
                or cnp.PyArray_ITEMSIZE(<cnp.ndarray>events) != sizeof(Event)):
            raise ValueError(f"events must be a C-contiguous array of {sizeof(Event)}-byte events")
        if not self.outcomes.base:
            raise ValueError("the outcome ring is closed")
        n_events = cnp.PyArray_DIM(<cnp.ndarray>events, 0)
        if n_events == 0:
            self._count(0, 0)
            return 0
        if <size_t>n_events > self.out_cap:
            grown = <Outcome*>realloc(self.out, 2 * n_events * sizeof(Outcome))
            if grown == NULL:
                raise MemoryError()
            self.out, self.out_cap = grown, 2 * n_events
        with nogil:
            m = _join(<const Event*>cnp.PyArray_DATA(<cnp.ndarray>events), n_events, self.origins,
                      self.n_taken, first_cmd_seq, self.out)
            if m > 0:
                self.outcomes.publish_ptr(<const unsigned char*>self.out, m)
        if m < 0:
            raise ValueError("an event names a command outside the batch")
        self._count(n_events, m)
        return m

    cdef void _count(self, Py_ssize_t n_events, Py_ssize_t m) noexcept:
        cdef int64_t now = now_ns()
        self.batches += 1
        self.commands_done += self.n_taken
        self.events_done += n_events
        self.outcomes_done += m
        self.batch_le[_bucket(now - self.taken_ns)] += 1
        self.batch_ns_sum += now - self.taken_ns
        self.published_ns = now

    def counters(self) -> tuple:
        """batches, commands, events, outcomes, refused, the batch-time buckets (BATCH_BOUNDS_US, then
        above), the batch times' sum in ns: a batch's time runs from take() having its requests to
        publish() done (the journal commit and the engine's work included)."""
        return (self.batches, self.commands_done, self.events_done, self.outcomes_done, self.refused,
                *[self.batch_le[i] for i in range(BATCH_BUCKETS)], self.batch_ns_sum)
