# cython: language_level=3
"""Little-endian snapshot writing (inline puts) and bounds-checked reading, shared by engine and ledger."""

from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy


cdef inline char* put32(char* p, uint32_t v) noexcept:
    memcpy(p, &v, 4)
    return p + 4


cdef inline char* put64(char* p, uint64_t v) noexcept:
    memcpy(p, &v, 8)
    return p + 8


cdef class Reader:
    cdef bytes data
    cdef const unsigned char* p
    cdef Py_ssize_t pos
    cdef Py_ssize_t size

    cdef const unsigned char* take(self, Py_ssize_t n) except NULL
    cdef uint8_t u8(self) except? 0xFF
    cdef uint32_t u32(self) except? 0xFFFFFFFF
    cdef uint64_t u64(self) except? 0xFFFFFFFFFFFFFFFF
    cdef int64_t i64(self) except? -1
    cdef bint done(self)
