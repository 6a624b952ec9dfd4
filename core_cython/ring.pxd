# cython: language_level=3
from libc.stdint cimport int64_t, uint32_t, uint64_t
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec


cdef inline int64_t now_ns() noexcept nogil:
    """CLOCK_MONOTONIC in ns (a vDSO call, no system call): the rings' and their users' clock."""
    cdef timespec t
    clock_gettime(CLOCK_MONOTONIC, &t)
    return t.tv_sec * 1000000000 + t.tv_nsec


cdef class Ring:
    cdef object _mm
    cdef object _file
    cdef unsigned char* base
    cdef readonly uint64_t capacity
    cdef readonly uint32_t slot_size
    cdef uint64_t mask
    cdef uint64_t stride
    cdef uint64_t* claim
    cdef uint64_t* consumed
    cdef uint32_t* wake
    cdef uint32_t* sleeping
    # consumer-side state (only the one consumer uses these)
    cdef uint64_t cursor
    cdef int64_t stalled_since
    cdef readonly uint64_t skipped
    cdef int pid  # this process: written into the slots it reserves

    cdef void _open(self, str path) except *
    cdef uint64_t* _stamp(self, uint64_t seq) noexcept nogil
    cdef int _claim(self, uint64_t n, uint64_t* first) noexcept nogil
    cdef int _reserve(self, uint64_t seq) noexcept nogil
    cdef int _fill(self, uint64_t seq, const unsigned char* payload) noexcept nogil
    cdef void _wake_consumer(self) noexcept nogil
    cdef int publish_ptr(self, const unsigned char* payload) noexcept nogil
    cdef uint64_t _take(self, unsigned char* out, uint64_t max_n, int64_t stall_ns) noexcept nogil
    cdef uint64_t take_ptr(self, unsigned char* out, uint64_t max_n, int strategy, int64_t timeout_ns,
                           int64_t stall_ns, int64_t spin_ns) noexcept nogil
