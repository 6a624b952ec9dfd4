# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# distutils: language = c++
"""The journal's hot-path encoder: one group commit's LMDB keys and batch values in one C call.

journal/format.py is the specification and the reference encoder; this module must produce the
same bytes (tests/test_journal_codec.py checks it against format.encode_batch). It exists because
at one command per batch the fixed Python cost of encoding (struct.pack, zlib.crc32, memoryviews,
numpy seq checks) was a third of the engine's per-batch time.

The crc32 is zlib's (reflected polynomial 0xEDB88320): a slice-by-8 table in C for short
payloads, where a Python call to zlib.crc32 would cost more than the crc, and zlib itself for long
ones, where its braided loop is faster than the table (ZLIB_MIN_BYTES).
"""

cimport numpy as cnp
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy

import zlib

import numpy as np

from core_cython.records import COMMAND_DTYPE, EVENT_DTYPE
from journal.errors import JournalError

cnp.import_array()

cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    static uint32_t journal_crc_table[8][256];

    static void journal_crc_init(void) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = (c >> 1) ^ ((c & 1) ? 0xEDB88320u : 0u);
            journal_crc_table[0][i] = c;
        }
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = journal_crc_table[0][i];
            for (int t = 1; t < 8; t++) {
                c = journal_crc_table[0][c & 0xFF] ^ (c >> 8);
                journal_crc_table[t][i] = c;
            }
        }
    }

    static inline uint32_t journal_load_le32(const uint8_t* p) {
        return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
    }

    /* zlib.crc32(data, crc): slice-by-8. */
    static uint32_t journal_crc32(uint32_t crc, const uint8_t* p, size_t n) {
        crc = ~crc;
        while (n >= 8) {
            uint32_t lo = journal_load_le32(p) ^ crc;
            uint32_t hi = journal_load_le32(p + 4);
            crc = journal_crc_table[7][lo & 0xFF] ^ journal_crc_table[6][(lo >> 8) & 0xFF]
                ^ journal_crc_table[5][(lo >> 16) & 0xFF] ^ journal_crc_table[4][lo >> 24]
                ^ journal_crc_table[3][hi & 0xFF] ^ journal_crc_table[2][(hi >> 8) & 0xFF]
                ^ journal_crc_table[1][(hi >> 16) & 0xFF] ^ journal_crc_table[0][hi >> 24];
            p += 8;
            n -= 8;
        }
        while (n--) crc = journal_crc_table[0][(crc ^ *p++) & 0xFF] ^ (crc >> 8);
        return ~crc;
    }

    static inline void journal_store_le(uint8_t* p, uint64_t v, int size) {
        for (int i = 0; i < size; i++) p[i] = (uint8_t)(v >> (8 * i));
    }
    static inline uint64_t journal_load_le64(const uint8_t* p) {
        return (uint64_t)journal_load_le32(p) | ((uint64_t)journal_load_le32(p + 4) << 32);
    }
    """
    void journal_crc_init() noexcept nogil
    uint32_t journal_crc32(uint32_t crc, const uint8_t* p, size_t n) noexcept nogil
    void journal_store_le(uint8_t* p, uint64_t v, int size) noexcept nogil
    uint64_t journal_load_le64(const uint8_t* p) noexcept nogil

journal_crc_init()

# Must match journal/format.py (tests/test_journal_codec.py checks that they do).
cdef enum:
    FORMAT_VERSION = 2
    KIND_COMMANDS = 1
    KIND_EVENTS = 2
    HEADER_SIZE = 32
    CRC_OFFSET = 24
    ZLIB_MIN_BYTES = 512   # from here on a call to zlib.crc32 (~4 GB/s) beats the table (~2 GB/s)
    TS_OFFSET = 8

# Both record types start with their u64 seq (the seq checks read it in place), and a command's
# i64 ts is what stamp_commands writes.
if (COMMAND_DTYPE.fields["seq"] != (np.dtype("<u8"), 0)
        or EVENT_DTYPE.fields["seq"] != (np.dtype("<u8"), 0)
        or COMMAND_DTYPE.fields["ts"] != (np.dtype("<i8"), 8)):
    raise ImportError("journal.codec does not match the record layout of core_cython.records")

cdef object _COMMAND_DTYPE = COMMAND_DTYPE
cdef object _EVENT_DTYPE = EVENT_DTYPE
cdef Py_ssize_t _COMMAND_SIZE = COMMAND_DTYPE.itemsize
cdef Py_ssize_t _EVENT_SIZE = EVENT_DTYPE.itemsize
cdef object _zlib_crc32 = zlib.crc32


cdef int _is_records(object records, object dtype) except -1:
    """A 1-D C-contiguous array of exactly this record dtype (identity first: a slice of the
    engine's or the service's arrays shares their dtype object, and == on a structured dtype costs
    more than the whole encoding)."""
    cdef cnp.ndarray arr
    if not isinstance(records, cnp.ndarray):
        return False
    arr = <cnp.ndarray>records
    if cnp.PyArray_NDIM(arr) != 1 or not cnp.PyArray_IS_C_CONTIGUOUS(arr):
        return False
    return <object>cnp.PyArray_DESCR(arr) is dtype or arr.dtype == dtype


cdef int _need_records(object records, object dtype, str what) except -1:
    if not _is_records(records, dtype):
        raise ValueError(f"{what} must be a C-contiguous {dtype.itemsize}-byte record array")
    return 0


cdef inline const uint8_t* _data(object records) noexcept:
    return <const uint8_t*>cnp.PyArray_DATA(<cnp.ndarray>records)


cdef inline Py_ssize_t _count(object records) noexcept:
    return cnp.PyArray_DIM(<cnp.ndarray>records, 0)


cdef int _check_seqs(object records, Py_ssize_t size, uint64_t first, str what) except -1:
    """Records must carry first, first+1, ...: the journal is gap-free by construction."""
    cdef const uint8_t* p = _data(records)
    cdef Py_ssize_t n = _count(records)
    cdef Py_ssize_t i
    for i in range(n):
        if journal_load_le64(p + i * size) != first + <uint64_t>i:
            raise JournalError(f"{what} seqs {journal_load_le64(p)}..{journal_load_le64(p + (n - 1) * size)} "
                               f"do not continue the journal at {first}")
    return 0


cdef bytes _seq_key(uint64_t seq):
    """journal.format.seq_key: big-endian, so that byte order is numeric order."""
    cdef bytes key = PyBytes_FromStringAndSize(NULL, 8)
    cdef uint8_t* p = <uint8_t*>PyBytes_AS_STRING(key)
    cdef int i
    for i in range(8):
        p[i] = <uint8_t>(seq >> (8 * (7 - i)))
    return key


cdef bytes _encode(uint16_t kind, uint64_t first_seq, object records, Py_ssize_t size):
    """Header + records + crc32, written straight into the bytes object LMDB will copy from."""
    cdef Py_ssize_t n = _count(records)
    cdef Py_ssize_t nbytes = n * size
    cdef bytes value
    cdef uint8_t* p
    cdef uint32_t crc
    if <uint64_t>n > 0xFFFFFFFF:
        raise ValueError(f"a batch holds at most {0xFFFFFFFF} records")
    value = PyBytes_FromStringAndSize(NULL, HEADER_SIZE + nbytes)
    p = <uint8_t*>PyBytes_AS_STRING(value)
    memcpy(p, b"VJB1", 4)
    journal_store_le(p + 4, FORMAT_VERSION, 2)
    journal_store_le(p + 6, kind, 2)
    journal_store_le(p + 8, first_seq, 8)
    journal_store_le(p + 16, <uint64_t>n, 4)
    journal_store_le(p + 20, <uint64_t>size, 4)
    journal_store_le(p + 28, 0, 4)
    if nbytes:
        memcpy(p + HEADER_SIZE, _data(records), nbytes)
    crc = journal_crc32(0, p, CRC_OFFSET)
    if nbytes >= ZLIB_MIN_BYTES:
        crc = _zlib_crc32(records, crc)  # numpy exports C-contiguous arrays as plain bytes
    else:
        crc = journal_crc32(crc, p + HEADER_SIZE, nbytes)
    journal_store_le(p + CRC_OFFSET, crc, 4)
    return value


def encode_batch(int kind, uint64_t first_seq, records) -> bytes:
    """journal.format.encode_batch, in C: the same bytes (records: 1-D C-contiguous)."""
    if kind == KIND_COMMANDS:
        _need_records(records, _COMMAND_DTYPE, "commands")
        return _encode(KIND_COMMANDS, first_seq, records, _COMMAND_SIZE)
    if kind == KIND_EVENTS:
        _need_records(records, _EVENT_DTYPE, "events")
        return _encode(KIND_EVENTS, first_seq, records, _EVENT_SIZE)
    raise ValueError(f"unknown batch kind {kind}")


def check_seqs(records, uint64_t first, str what) -> None:
    """JournalError unless the records' seqs are first, first+1, ... (any record dtype that starts
    with its u64 seq, as commands and events do)."""
    if _is_records(records, _COMMAND_DTYPE):
        _check_seqs(records, _COMMAND_SIZE, first, what)
    elif _is_records(records, _EVENT_DTYPE):
        _check_seqs(records, _EVENT_SIZE, first, what)
    else:
        raise ValueError("records must be a C-contiguous command or event array")


def crc32(const unsigned char[::1] data, uint32_t crc=0) -> int:
    """The table crc32 alone (= zlib.crc32(data, crc)), for the tests."""
    if data.shape[0] == 0:
        return crc
    return journal_crc32(crc, &data[0], data.shape[0])


def encode_group(commands, events, uint64_t first_cmd, uint64_t first_event) -> tuple:
    """Everything a group commit writes but the snapshot: checks both record arrays (type and
    gap-free seqs from first_cmd / first_event) and returns
    (command key, command batch, event key, event batch), the event pair None without events."""
    _need_records(commands, _COMMAND_DTYPE, "commands")
    _need_records(events, _EVENT_DTYPE, "events")
    _check_seqs(commands, _COMMAND_SIZE, first_cmd, "command")
    _check_seqs(events, _EVENT_SIZE, first_event, "event")
    cmd_value = _encode(KIND_COMMANDS, first_cmd, commands, _COMMAND_SIZE)
    if _count(events) == 0:
        return _seq_key(first_cmd), cmd_value, None, None
    return (_seq_key(first_cmd), cmd_value, _seq_key(first_event),
            _encode(KIND_EVENTS, first_event, events, _EVENT_SIZE))


def stamp_commands(cmds, now_ns) -> int:
    """JournaledEngine.submit's checks and stamp in one call: TypeError unless cmds is a writable,
    C-contiguous COMMAND_DTYPE array; sets every command's ts to now_ns (an int, or one value per
    command: anything numpy can assign to cmds["ts"]). Returns len(cmds)."""
    cdef cnp.ndarray arr
    cdef uint8_t* p
    cdef int64_t ts
    cdef Py_ssize_t i
    cdef Py_ssize_t n
    if not _is_records(cmds, _COMMAND_DTYPE) or not cnp.PyArray_ISWRITEABLE(<cnp.ndarray>cmds):
        raise TypeError("cmds must be a writable, C-contiguous COMMAND_DTYPE array")
    arr = <cnp.ndarray>cmds
    n = cnp.PyArray_DIM(arr, 0)
    if n == 0:
        return 0
    if type(now_ns) is not int:
        cmds["ts"] = now_ns  # an array (or a numpy integer): numpy's rules, as before
        return n
    ts = now_ns
    p = <uint8_t*>cnp.PyArray_DATA(arr)
    for i in range(n):
        journal_store_le(p + i * _COMMAND_SIZE + TS_OFFSET, <uint64_t>ts, 8)
    return n
