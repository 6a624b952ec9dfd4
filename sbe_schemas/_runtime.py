"""The schema-independent part of the generated Cython module, as text the generator copies in.

Kept here rather than in a hand-written .pyx so the generated module is self-contained: one file
per schema, nothing else to keep in step. "{zero_size}" and the like are filled by codegen.py.
"""

# Verbatim C: little-endian loads/stores through memcpy (no alignment or aliasing assumptions; the
# compiler turns each into one mov on x86), byte swaps only on a big-endian host, and the big-endian
# SOFH fields.
C_HELPERS = r'''
cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    #if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    #define SBE_LE16(x) __builtin_bswap16(x)
    #define SBE_LE32(x) __builtin_bswap32(x)
    #define SBE_LE64(x) __builtin_bswap64(x)
    #else
    #define SBE_LE16(x) (x)
    #define SBE_LE32(x) (x)
    #define SBE_LE64(x) (x)
    #endif
    #define SBE_LE8(x) (x)
    #define SBE_ACCESSORS(sfx, T, U, SWAP) \\
        static inline T sbe_get_##sfx(const unsigned char* p) { \\
            U u; T v; memcpy(&u, p, sizeof u); u = SWAP(u); memcpy(&v, &u, sizeof v); return v; } \\
        static inline void sbe_put_##sfx(unsigned char* p, T v) { \\
            U u; memcpy(&u, &v, sizeof u); u = SWAP(u); memcpy(p, &u, sizeof u); }
    SBE_ACCESSORS(u8, uint8_t, uint8_t, SBE_LE8)
    SBE_ACCESSORS(i8, int8_t, uint8_t, SBE_LE8)
    SBE_ACCESSORS(u16, uint16_t, uint16_t, SBE_LE16)
    SBE_ACCESSORS(i16, int16_t, uint16_t, SBE_LE16)
    SBE_ACCESSORS(u32, uint32_t, uint32_t, SBE_LE32)
    SBE_ACCESSORS(i32, int32_t, uint32_t, SBE_LE32)
    SBE_ACCESSORS(u64, uint64_t, uint64_t, SBE_LE64)
    SBE_ACCESSORS(i64, int64_t, uint64_t, SBE_LE64)
    SBE_ACCESSORS(f32, float, uint32_t, SBE_LE32)
    SBE_ACCESSORS(f64, double, uint64_t, SBE_LE64)
    static inline uint32_t sbe_get_be32(const unsigned char* p) {
        return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3]; }
    static inline uint16_t sbe_get_be16(const unsigned char* p) {
        return (uint16_t)((p[0] << 8) | p[1]); }
    static inline void sbe_put_be32(unsigned char* p, uint32_t v) {
        p[0] = (unsigned char)(v >> 24); p[1] = (unsigned char)(v >> 16);
        p[2] = (unsigned char)(v >> 8); p[3] = (unsigned char)v; }
    static inline void sbe_put_be16(unsigned char* p, uint16_t v) {
        p[0] = (unsigned char)(v >> 8); p[1] = (unsigned char)v; }
    """
    uint8_t sbe_get_u8(const unsigned char* p) noexcept nogil
    int8_t sbe_get_i8(const unsigned char* p) noexcept nogil
    uint16_t sbe_get_u16(const unsigned char* p) noexcept nogil
    int16_t sbe_get_i16(const unsigned char* p) noexcept nogil
    uint32_t sbe_get_u32(const unsigned char* p) noexcept nogil
    int32_t sbe_get_i32(const unsigned char* p) noexcept nogil
    uint64_t sbe_get_u64(const unsigned char* p) noexcept nogil
    int64_t sbe_get_i64(const unsigned char* p) noexcept nogil
    float sbe_get_f32(const unsigned char* p) noexcept nogil
    double sbe_get_f64(const unsigned char* p) noexcept nogil
    void sbe_put_u8(unsigned char* p, uint8_t v) noexcept nogil
    void sbe_put_i8(unsigned char* p, int8_t v) noexcept nogil
    void sbe_put_u16(unsigned char* p, uint16_t v) noexcept nogil
    void sbe_put_i16(unsigned char* p, int16_t v) noexcept nogil
    void sbe_put_u32(unsigned char* p, uint32_t v) noexcept nogil
    void sbe_put_i32(unsigned char* p, int32_t v) noexcept nogil
    void sbe_put_u64(unsigned char* p, uint64_t v) noexcept nogil
    void sbe_put_i64(unsigned char* p, int64_t v) noexcept nogil
    void sbe_put_f32(unsigned char* p, float v) noexcept nogil
    void sbe_put_f64(unsigned char* p, double v) noexcept nogil
    uint32_t sbe_get_be32(const unsigned char* p) noexcept nogil
    uint16_t sbe_get_be16(const unsigned char* p) noexcept nogil
    void sbe_put_be32(unsigned char* p, uint32_t v) noexcept nogil
    void sbe_put_be16(unsigned char* p, uint16_t v) noexcept nogil
'''

PXD_IMPORTS = """cimport cython
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
"""

PXD_BASES = """
cdef class Flyweight:
    cdef Py_buffer _view
    cdef bint _held
    cdef unsigned char* _p  # the message header; a zero block while unwrapped
    cdef Py_ssize_t _cap  # bytes usable from _p
    cdef Py_ssize_t _limit  # end of the message so far, from _p
    cdef Py_ssize_t _block  # this template's block length
    cdef int _groups_begun
    cdef const unsigned char* _defaults  # block image written by wrap_encode (null values set)
    cdef readonly Py_ssize_t offset
    cdef readonly bint writable
    cdef readonly int sbe_template_id
    cdef int _attach(self, object buf, Py_ssize_t offset, bint writable) except -1
    cdef void _release(self) noexcept
    cdef int _need_writable(self) except -1
    cdef int _encode(self, object buf, Py_ssize_t offset) except -1
    cdef Py_ssize_t _check(self, Py_ssize_t avail, bint framed) except -1
    cdef Py_ssize_t _check_groups(self, Py_ssize_t pos, Py_ssize_t avail, bint framed) except -1
    cdef void _reset_groups(self) noexcept
    cdef int _count_groups(self) noexcept
    cdef void _write_empty_groups(self, int first) noexcept
    cpdef Py_ssize_t frame(self) except -1


cdef class GroupFlyweight:
    cdef unsigned char* _first
    cdef unsigned char* _cur  # the current entry; a zero block before the first advance()
    cdef Py_ssize_t _count
    cdef Py_ssize_t _index
    cdef Py_ssize_t _block
    cdef bint _buf_writable
    cdef bint _can_write  # positioned on an entry of a writable buffer
    cdef void _set(self, unsigned char* first, Py_ssize_t count, Py_ssize_t block, bint writable) noexcept
    cdef void _rewind(self) noexcept
    cdef int advance(self) except -1
    cdef int _need_writable(self) except -1
"""

PYX_IMPORTS = """cimport cython
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from libc.stdint cimport (
    INT8_MAX, INT8_MIN, INT16_MAX, INT16_MIN, INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN, UINT8_MAX,
    UINT16_MAX, UINT32_MAX, UINT64_MAX, int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t,
    uint64_t,
)
from libc.string cimport memcpy, memset

from enum import IntEnum, IntFlag
"""

PYX_ERRORS = '''

class DecodeError(ValueError):
    """A frame or message that cannot be decoded; kind names the SessionRejectReason to answer with."""

    kind = "DECODE_ERROR"

    def __init__(self, str message, template_id=None):
        super().__init__(message)
        self.template_id = template_id  # None until the message header was read


class TruncatedFrame(DecodeError):
    kind = "TRUNCATED_FRAME"


class OversizedFrame(DecodeError):
    kind = "OVERSIZED_FRAME"


class BadEncodingType(DecodeError):
    kind = "BAD_ENCODING_TYPE"


class WrongSchema(DecodeError):
    kind = "WRONG_SCHEMA"


class WrongVersion(DecodeError):
    kind = "WRONG_VERSION"


class UnknownTemplate(DecodeError):
    kind = "UNKNOWN_TEMPLATE"


class BadBlockLength(DecodeError):
    kind = "BAD_BLOCK_LENGTH"


class FrameLengthMismatch(DecodeError):
    kind = "FRAME_LENGTH_MISMATCH"


DECODE_ERRORS = (TruncatedFrame, OversizedFrame, BadEncodingType, WrongSchema, WrongVersion,
                 UnknownTemplate, BadBlockLength, FrameLengthMismatch)


cdef int _NO_GROUPS = 1 << 30  # _groups_begun outside wrap_encode: every begin_<group> refuses


cdef int _read_only() except -1:
    raise TypeError("flyweight is not wrapped over a writable buffer (wrap_encode a bytearray first)")


cdef int _overrun(bint framed, Py_ssize_t need, Py_ssize_t avail, int template_id) except -1:
    # Inside a frame the SOFH length is authoritative: a message that does not fit is inconsistent,
    # not merely short.
    if framed:
        raise FrameLengthMismatch(f"message needs {need} bytes, frame carries {avail}", template_id)
    raise TruncatedFrame(f"message needs {need} bytes, buffer has {avail}", template_id)


cdef Py_ssize_t _sofh_length(const unsigned char* p, Py_ssize_t avail, Py_ssize_t max_frame) except -1:
    """Frame length from the SOFH at p, 0 if fewer than SOFH_SIZE bytes are there yet."""
    cdef Py_ssize_t n
    if avail < SBE_SOFH_SIZE:
        return 0
    if sbe_get_be16(p + 4) != SBE_ENCODING_TYPE:
        raise BadEncodingType(
            f"SOFH encoding type 0x{sbe_get_be16(p + 4):04X}, expected 0x{SBE_ENCODING_TYPE:04X}")
    n = sbe_get_be32(p)
    if n > max_frame:
        raise OversizedFrame(f"frame of {n} bytes, limit {max_frame}")
    if n < SBE_SOFH_SIZE + SBE_HEADER_SIZE:
        raise FrameLengthMismatch(f"frame length {n} is shorter than SOFH + message header")
    return n


cpdef Py_ssize_t write_sofh(object buf, Py_ssize_t offset, Py_ssize_t frame_length) except -1:
    """Write a Simple Open Framing Header (big-endian length incl. itself, encoding type 0xEB50)."""
    cdef Py_buffer view
    if frame_length < SBE_SOFH_SIZE or frame_length > 0xFFFFFFFF:
        raise ValueError(f"bad frame length {frame_length}")
    PyObject_GetBuffer(buf, &view, PyBUF_SIMPLE)
    try:
        if view.readonly:
            _read_only()
        if offset < 0 or offset + SBE_SOFH_SIZE > view.len:
            raise ValueError("no room for the SOFH")
        sbe_put_be32(<unsigned char*>view.buf + offset, <uint32_t>frame_length)
        sbe_put_be16(<unsigned char*>view.buf + offset + 4, SBE_ENCODING_TYPE)
    finally:
        PyBuffer_Release(&view)
    return SBE_SOFH_SIZE


cdef class Flyweight:
    """Base of the message flyweights: holds the buffer (as a Py_buffer export, so a bytearray
    cannot be resized under it), the message start and the encode/decode bookkeeping."""

    def __cinit__(self):
        self._p = _ZERO
        self._groups_begun = _NO_GROUPS
        self._held = False
        self.writable = False
        self.offset = 0

    def __dealloc__(self):
        # Only the buffer: the subclass's group objects may already be gone, so no virtual calls.
        if self._held:
            PyBuffer_Release(&self._view)

    cdef void _release(self) noexcept:
        if self._held:
            PyBuffer_Release(&self._view)
            self._held = False
        self._p = _ZERO
        self._cap = 0
        self._limit = 0
        self._groups_begun = _NO_GROUPS
        self.writable = False
        self._reset_groups()

    def release(self):
        """Drop the buffer (a held bytearray can be resized again)."""
        self._release()

    cdef int _attach(self, object buf, Py_ssize_t offset, bint writable) except -1:
        self._release()
        PyObject_GetBuffer(buf, &self._view, PyBUF_SIMPLE)
        self._held = True
        if writable and self._view.readonly:
            self._release()
            _read_only()
        if offset < 0 or offset > self._view.len:
            self._release()
            raise ValueError(f"offset {offset} outside a buffer of {self._view.len} bytes")
        self._p = <unsigned char*>self._view.buf + offset
        self._cap = self._view.len - offset
        self.offset = offset
        self.writable = not self._view.readonly
        return 0

    cdef int _need_writable(self) except -1:
        if not self.writable:
            _read_only()
        return 0

    cdef int _encode(self, object buf, Py_ssize_t offset) except -1:
        cdef Py_ssize_t need = SBE_HEADER_SIZE + self._block + 4 * self._count_groups()
        self._attach(buf, offset, True)
        if need > self._cap:
            self._release()
            raise ValueError(f"{type(self).__name__} needs {need} bytes, buffer has {self._cap}")
        sbe_put_u16(self._p, <uint16_t>self._block)
        sbe_put_u16(self._p + 2, <uint16_t>self.sbe_template_id)
        sbe_put_u16(self._p + 4, SBE_SCHEMA_ID)
        sbe_put_u16(self._p + 6, SBE_SCHEMA_VERSION)
        memcpy(self._p + SBE_HEADER_SIZE, self._defaults, self._block)
        self._limit = SBE_HEADER_SIZE + self._block
        self._groups_begun = 0
        self._write_empty_groups(0)
        return 0

    cdef int _count_groups(self) noexcept:
        return 0

    cdef void _write_empty_groups(self, int first) noexcept:
        pass

    def wrap_encode(self, buf, Py_ssize_t offset=0):
        """Start encoding at offset of a writable buffer: writes the header and a default block
        (0, or the null value of optional fields; groups empty). Returns self."""
        self._encode(buf, offset)
        return self

    def wrap_decode(self, buf, Py_ssize_t offset=0, Py_ssize_t length=-1):
        """Wrap an encoded message (no SOFH) at offset; length = bytes available (default: to the
        end). Validates header, block length and groups. Returns self."""
        self._attach(buf, offset, False)
        if length >= 0:
            if length > self._cap:
                self._release()
                raise ValueError(f"length {length} beyond the buffer")
            self._cap = length
        try:
            self._check(self._cap, False)
        except BaseException:
            self._release()
            raise
        return self

    cdef Py_ssize_t _check(self, Py_ssize_t avail, bint framed) except -1:
        cdef int tid = self.sbe_template_id
        if avail < SBE_HEADER_SIZE:
            _overrun(framed, SBE_HEADER_SIZE, avail, -1)
        if sbe_get_u16(self._p + 4) != SBE_SCHEMA_ID:
            raise WrongSchema(f"schema id {sbe_get_u16(self._p + 4)}, expected {SBE_SCHEMA_ID}")
        if sbe_get_u16(self._p + 6) != SBE_SCHEMA_VERSION:
            raise WrongVersion(f"schema version {sbe_get_u16(self._p + 6)}, expected {SBE_SCHEMA_VERSION}")
        if sbe_get_u16(self._p + 2) != tid:
            raise UnknownTemplate(f"template {sbe_get_u16(self._p + 2)}, expected {tid}",
                                  sbe_get_u16(self._p + 2))
        if sbe_get_u16(self._p) != self._block:
            raise BadBlockLength(f"block length {sbe_get_u16(self._p)}, expected {self._block}", tid)
        if SBE_HEADER_SIZE + self._block > avail:
            _overrun(framed, SBE_HEADER_SIZE + self._block, avail, tid)
        self._groups_begun = _NO_GROUPS  # a decoded message's groups are read, not begun
        self._limit = self._check_groups(SBE_HEADER_SIZE + self._block, avail, framed)
        if framed and self._limit != avail:
            raise FrameLengthMismatch(f"message is {self._limit} bytes, frame carries {avail}", tid)
        return self._limit

    cdef Py_ssize_t _check_groups(self, Py_ssize_t pos, Py_ssize_t avail, bint framed) except -1:
        return pos

    cdef void _reset_groups(self) noexcept:
        pass

    cpdef Py_ssize_t frame(self) except -1:
        """Write the SOFH in the 6 bytes before the message; returns the frame length."""
        self._need_writable()
        if self.offset < SBE_SOFH_SIZE:
            raise ValueError("wrap_encode at offset >= SOFH_SIZE to leave room for the SOFH")
        sbe_put_be32(self._p - SBE_SOFH_SIZE, <uint32_t>(self._limit + SBE_SOFH_SIZE))
        sbe_put_be16(self._p - 2, SBE_ENCODING_TYPE)
        return self._limit + SBE_SOFH_SIZE

    @property
    def encoded_length(self):
        """Bytes from the message header to the end of the message (no SOFH)."""
        return self._limit

    @property
    def sbe_block_length(self):
        return sbe_get_u16(self._p)

    @property
    def sbe_schema_id(self):
        return sbe_get_u16(self._p + 4)

    @property
    def sbe_version(self):
        return sbe_get_u16(self._p + 6)


cdef class GroupFlyweight:
    """Base of the repeating-group flyweights: one object walks every entry (advance/next)."""

    def __cinit__(self):
        self._rewind()
        self._first = _ZERO
        self._count = 0

    cdef void _set(self, unsigned char* first, Py_ssize_t count, Py_ssize_t block, bint writable) noexcept:
        self._first = first
        self._count = count
        self._block = block
        self._buf_writable = writable
        self._rewind()

    cdef void _rewind(self) noexcept:
        self._index = -1
        self._cur = _ZERO
        self._can_write = False

    cdef int advance(self) except -1:
        """Move to the next entry: 1, or 0 past the last one."""
        if self._index + 1 >= self._count:
            return 0
        self._index += 1
        self._cur = self._first + self._index * self._block
        self._can_write = self._buf_writable
        return 1

    cdef int _need_writable(self) except -1:
        if not self._can_write:
            raise TypeError("group entry not writable: call next() first, on an encoding flyweight")
        return 0

    def next(self):
        """Move to the next entry (for encoding); IndexError past the last. Returns self."""
        if not self.advance():
            raise IndexError(f"group has {self._count} entries")
        return self

    def __len__(self):
        return self._count

    def __iter__(self):
        self._rewind()
        return self

    def __next__(self):
        if not self.advance():
            raise StopIteration
        return self

    @property
    def index(self):
        return self._index
'''
