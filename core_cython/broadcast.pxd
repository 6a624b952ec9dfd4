# cython: language_level=3
from libc.stdint cimport int64_t, uint32_t, uint64_t


# What the producer and the readers share: the mapping of the ring file and its header.
cdef class _Mapped:
    cdef object _mm
    cdef object _file
    cdef readonly str path
    cdef object _ident                 # (st_dev, st_ino) of the file mapped, to notice a replaced path
    cdef unsigned char* base
    cdef readonly uint64_t capacity
    cdef readonly uint32_t slot_size
    cdef readonly uint64_t epoch
    cdef uint64_t ring_id
    cdef uint64_t mask
    cdef uint64_t stride
    cdef uint64_t* published_p
    cdef uint64_t* producer_pid_p
    cdef uint32_t* superseded_p
    cdef uint32_t* sleep_mask

    cdef void _open(self, str path) except *
    cdef unsigned char* _slot(self, uint64_t seq) noexcept nogil
    cdef uint64_t* _entry(self, int i) noexcept nogil
    cdef uint32_t _wake(self, int fd) noexcept nogil


# A read-only view for monitoring.
cdef class BroadcastMonitor(_Mapped):
    pass


# The one producer (the engine).
cdef class Broadcast(_Mapped):
    cdef object _sock
    cdef int sock_fd
    cdef uint64_t next_seq
    cdef readonly uint64_t wakeups_sent

    cdef uint64_t publish_ptr(self, const unsigned char* data, uint64_t n) noexcept nogil


# One consumer (a gateway): its own cursor, consumer-table entry and wake socket.
cdef class BroadcastReader(_Mapped):
    cdef object _sock
    cdef object _poll
    cdef readonly int index
    cdef uint32_t bit
    cdef uint64_t _cursor
    cdef uint64_t* my_entry
    cdef bint _lapped
    cdef readonly uint64_t laps
    cdef int sock_fd                   # the wake socket's fd (-1 when closed)

    cdef int64_t take_ptr(self, unsigned char* out, uint64_t max_n) noexcept nogil
    # The same as prepare_wait() / awake() / drain_wakeups() / "anything new?", callable from C
    # loops (sbe_gateway/core.pyx) without a Python call or exception per wake-up.
    cdef bint c_prepare_wait(self) noexcept nogil
    cdef void c_awake(self) noexcept nogil
    cdef int c_drain_wakeups(self) noexcept nogil
    cdef bint c_has_new(self) noexcept nogil
