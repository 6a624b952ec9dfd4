# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# distutils: language = c++
"""The machine's own stalls: a loop that only reads the clock, in C (Python would add its own)."""

from libc.stdint cimport int64_t
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec

import numpy as np


cdef inline int64_t now_ns() noexcept nogil:
    cdef timespec t
    clock_gettime(CLOCK_MONOTONIC, &t)
    return t.tv_sec * 1000000000 + t.tv_nsec


def record_stalls(double seconds, int64_t threshold_ns, Py_ssize_t max_stalls=1_000_000):
    """Spin for `seconds` reading the clock; every time two readings are more than threshold_ns
    apart, this thread did not run in between (an interrupt, the scheduler, the hypervisor).
    Returns (start_ns, length_ns) int64 arrays of those stalls and the loop's [start, end)."""
    starts = np.zeros(max_stalls, dtype=np.int64)
    lengths = np.zeros(max_stalls, dtype=np.int64)
    cdef int64_t[::1] s = starts
    cdef int64_t[::1] n = lengths
    cdef Py_ssize_t count = 0
    cdef int64_t begin, end, last, t
    with nogil:
        begin = now_ns()
        end = begin + <int64_t>(seconds * 1e9)
        last = begin
        while True:
            t = now_ns()
            if t - last > threshold_ns and count < max_stalls:
                s[count] = last
                n[count] = t - last
                count += 1
            last = t
            if t >= end:
                break
    return starts[:count], lengths[:count], begin, last
