"""Binary layout of the journal's LMDB values (compact, fixed-size, little-endian).

A *batch* value holds the raw records of one group commit:

    offset  size  field
    0       4     magic  b"VJB1"
    4       2     format version
    6       2     kind (1 = commands, 2 = events)
    8       8     first seq of the batch (also the LMDB key, big-endian so keys sort by seq)
    16      4     record count
    20      4     record size (96 for commands, 112 for events)
    24      4     crc32 of bytes 0..23 and of the records
    28      4     reserved (0)
    32      ...   count x record size bytes: the records exactly as numpy/the engine lay them out

A *snapshot* value (key = big-endian cmd seq after which it was taken):

    0       4     magic  b"VJS1"
    4       2     format version
    6       2     reserved (0)
    8       8     cmd seq (last command applied)
    16      8     last event seq
    24      8     length of the engine snapshot blob
    32      32    state hash (raw BLAKE2b-256 of the blob, as Engine.state_hash() in hex)
    64      4     crc32 of bytes 0..63 and of the blob
    68      4     reserved (0)
    72      ...   engine snapshot blob

Everything here is pure encoding/decoding: no LMDB, no engine. Journal.append encodes batches with
journal/codec.pyx, the same bytes in one C call; encode_batch here is the reference it is tested against.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from core_cython.records import COMMAND_DTYPE, EVENT_DTYPE
from journal.errors import JournalCorruptError

FORMAT_VERSION = 2  # 2: events gained maker_filled (112 bytes); version 1 journals are refused

BATCH_MAGIC = b"VJB1"
SNAPSHOT_MAGIC = b"VJS1"

_BATCH_HEADER = struct.Struct("<4sHHQIIII")
_SNAPSHOT_HEADER = struct.Struct("<4sHHQQQ32sII")
BATCH_HEADER_SIZE = _BATCH_HEADER.size  # 32
SNAPSHOT_HEADER_SIZE = _SNAPSHOT_HEADER.size  # 72
_BATCH_CRC_OFFSET = 24
_SNAPSHOT_CRC_OFFSET = 64

_SEQ_KEY = struct.Struct(">Q")


class RecordKind(IntEnum):
    COMMANDS = 1
    EVENTS = 2


RECORD_DTYPES: dict[RecordKind, np.dtype] = {
    RecordKind.COMMANDS: COMMAND_DTYPE,
    RecordKind.EVENTS: EVENT_DTYPE,
}


def seq_key(seq: int) -> bytes:
    """LMDB key for a seq: big-endian so that byte order equals numeric order."""
    return _SEQ_KEY.pack(seq)


def key_seq(key: bytes) -> int:
    return _SEQ_KEY.unpack(key)[0]


@dataclass(frozen=True, slots=True)
class BatchHeader:
    kind: RecordKind
    first_seq: int
    count: int
    record_size: int

    @property
    def last_seq(self) -> int:
        return self.first_seq + self.count - 1


def encode_batch(kind: RecordKind, first_seq: int, records: np.ndarray) -> bytes:
    """Header + raw records (one copy of the records, no per-record work)."""
    dtype = RECORD_DTYPES[kind]
    if records.dtype != dtype or not records.flags.c_contiguous:
        raise ValueError(f"{kind.name.lower()} must be a C-contiguous {dtype.itemsize}-byte record array")
    payload = memoryview(records).cast("B")
    prefix = struct.pack("<4sHHQII", BATCH_MAGIC, FORMAT_VERSION, kind, first_seq, len(records),
                         dtype.itemsize)
    crc = zlib.crc32(payload, zlib.crc32(prefix))
    return b"".join((prefix, struct.pack("<II", crc, 0), payload))


def decode_batch_header(value: bytes | memoryview, *, check_crc: bool = True) -> BatchHeader:
    """Parse and validate a batch header; raises JournalCorruptError on any inconsistency."""
    if len(value) < BATCH_HEADER_SIZE:
        raise JournalCorruptError(f"batch value too short ({len(value)} bytes)")
    magic, version, kind, first_seq, count, record_size, crc, _ = _BATCH_HEADER.unpack_from(value)
    if magic != BATCH_MAGIC:
        raise JournalCorruptError(f"bad batch magic {bytes(magic)!r}")
    if version != FORMAT_VERSION:
        raise JournalCorruptError(f"unsupported batch format version {version}")
    if kind not in (RecordKind.COMMANDS, RecordKind.EVENTS):
        raise JournalCorruptError(f"unknown batch kind {kind}")
    kind = RecordKind(kind)
    if record_size != RECORD_DTYPES[kind].itemsize:
        raise JournalCorruptError(f"{kind.name.lower()} batch at seq {first_seq}: record size {record_size}")
    if len(value) != BATCH_HEADER_SIZE + count * record_size:
        raise JournalCorruptError(
            f"{kind.name.lower()} batch at seq {first_seq}: length {len(value)} != header + {count} records"
        )
    if check_crc:
        view = memoryview(value)
        actual = zlib.crc32(view[BATCH_HEADER_SIZE:], zlib.crc32(view[:_BATCH_CRC_OFFSET]))
        if actual != crc:
            raise JournalCorruptError(f"{kind.name.lower()} batch at seq {first_seq}: crc32 mismatch")
    return BatchHeader(kind, first_seq, count, record_size)


def batch_records(value: bytes | memoryview, header: BatchHeader) -> np.ndarray:
    """Zero-copy read-only view of a batch's records (valid as long as `value` is)."""
    dtype = RECORD_DTYPES[header.kind]
    return np.frombuffer(value, dtype=dtype, count=header.count, offset=BATCH_HEADER_SIZE)


@dataclass(frozen=True, slots=True)
class SnapshotHeader:
    cmd_seq: int
    last_event_seq: int
    blob_size: int
    state_hash: str  # hex, as Engine.state_hash()


def encode_snapshot(cmd_seq: int, last_event_seq: int, blob: bytes, state_hash: str) -> bytes:
    raw_hash = bytes.fromhex(state_hash)
    if len(raw_hash) != 32:
        raise ValueError("state hash must be 32 bytes (64 hex digits)")
    prefix = struct.pack("<4sHHQQQ32s", SNAPSHOT_MAGIC, FORMAT_VERSION, 0, cmd_seq, last_event_seq,
                         len(blob), raw_hash)
    crc = zlib.crc32(blob, zlib.crc32(prefix))
    return b"".join((prefix, struct.pack("<II", crc, 0), blob))


def decode_snapshot(value: bytes | memoryview, *, check_crc: bool = True) -> tuple[SnapshotHeader, bytes]:
    """Parse a snapshot value into (header, engine blob); raises JournalCorruptError."""
    if len(value) < SNAPSHOT_HEADER_SIZE:
        raise JournalCorruptError(f"snapshot value too short ({len(value)} bytes)")
    fields = _SNAPSHOT_HEADER.unpack_from(value)
    magic, version, _, cmd_seq, last_event_seq, blob_size, raw_hash, crc, _ = fields
    if magic != SNAPSHOT_MAGIC:
        raise JournalCorruptError(f"bad snapshot magic {bytes(magic)!r}")
    if version != FORMAT_VERSION:
        raise JournalCorruptError(f"unsupported snapshot format version {version}")
    if len(value) != SNAPSHOT_HEADER_SIZE + blob_size:
        raise JournalCorruptError(f"snapshot at cmd seq {cmd_seq}: length does not match its header")
    view = memoryview(value)
    if check_crc:
        actual = zlib.crc32(view[SNAPSHOT_HEADER_SIZE:], zlib.crc32(view[:_SNAPSHOT_CRC_OFFSET]))
        if actual != crc:
            raise JournalCorruptError(f"snapshot at cmd seq {cmd_seq}: crc32 mismatch")
    header = SnapshotHeader(cmd_seq, last_event_seq, blob_size, bytes(raw_hash).hex())
    return header, bytes(view[SNAPSHOT_HEADER_SIZE:])
