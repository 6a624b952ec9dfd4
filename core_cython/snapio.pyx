# cython: language_level=3
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy


cdef class Reader:
    """Bounds-checked little-endian reader over a snapshot: a short snapshot is a ValueError."""

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
