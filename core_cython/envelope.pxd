# cython: language_level=3
# What travels on the rings between the gateways and the engine: a command or an event plus the
# origin of the request that caused it (records.py mirrors these as REQUEST_DTYPE / OUTCOME_DTYPE).
from libc.stdint cimport int64_t, uint16_t, uint32_t, uint64_t

from core_cython.broadcast cimport Broadcast
from core_cython.records cimport Command, Event
from core_cython.ring cimport Ring


ctypedef struct Origin:
    uint64_t request_id   # the client's id of the request (its clOrdId), echoed on outcomes
    uint32_t session      # the gateway's session number
    uint16_t gateway      # 0 = the operator's admin path; gateways are 1, 2, ...
    uint16_t flags        # outcomes: OUTCOME_LAST_OF_COMMAND on a command's last event


ctypedef struct Request:      # 112 bytes: gateway -> engine (command ring)
    Command cmd
    Origin origin


ctypedef struct Outcome:      # 128 bytes: engine -> gateways (broadcast ring)
    Event ev
    Origin origin


cdef enum:
    ADMIN_GATEWAY = 0
    OUTCOME_LAST_OF_COMMAND = 1
    BATCH_BUCKETS = 18                 # batch times: <= 1, 2, 4, ... 65536 µs, and above


cdef class BatchIO:
    cdef Ring ring
    cdef Broadcast outcomes
    cdef readonly object commands      # the engine's input array (COMMAND_DTYPE, max_batch records)
    cdef Command* cmd
    cdef Request* raw
    cdef Origin* origins
    cdef Outcome* out
    cdef size_t max_batch
    cdef size_t out_cap
    cdef Py_ssize_t n_taken            # commands of the last take(): publish() joins against them
    cdef readonly uint64_t refused     # requests whose op was not order entry (sent on as op 0)
    # The published batches, counted here where it costs nothing (venue/metrics.py reads counters())
    cdef readonly uint64_t batches
    cdef readonly uint64_t commands_done
    cdef readonly uint64_t events_done
    cdef readonly uint64_t outcomes_done
    cdef readonly int64_t taken_ns     # CLOCK_MONOTONIC when the last take() got requests
    cdef readonly int64_t published_ns # ... when the last publish() was done
    cdef uint64_t batch_ns_sum
    cdef uint64_t batch_le[BATCH_BUCKETS]

    cdef void _count(self, Py_ssize_t n_events, Py_ssize_t m) noexcept
