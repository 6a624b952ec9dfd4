"""Generated SBE codecs: round trip of every message, and byte-for-byte agreement with PyPI `sbe`."""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

import pytest

from sbe_schemas import codecs
from sbe_schemas.codegen import snake
from sbe_schemas.schema import PRIMITIVES, Encoding, Field, Message, parse

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "sbe_schemas" / "venue_order_entry.xml"
SCHEMA = parse(SCHEMA_PATH)
MESSAGES = {m.name: m for m in SCHEMA.messages}


def _int_range(prim: str) -> tuple[int, int]:
    bits = 8 * PRIMITIVES[prim][0]
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if prim.startswith("int") else (0, (1 << bits) - 1)


def sample(enc: Encoding, rng: random.Random) -> Any:
    """A random valid value in schema terms: enum/set as names, optional maybe None."""
    if enc.kind == "enum":
        return rng.choice(enc.values)[0]
    if enc.kind == "set":
        return [name for name, _ in enc.values if rng.random() < 0.5]
    if enc.length > 1:
        return bytes(rng.randrange(256) for _ in range(enc.length))
    if enc.null_value is not None and rng.random() < 0.3:
        return None
    lo, hi = _int_range(enc.primitive)
    value = rng.choice([lo, hi, 0, 1, rng.randint(lo, hi)])
    return value if value != enc.null_value else lo + 1


def to_wire(enc: Encoding, value: Any) -> Any:
    """Schema-term value -> what the generated property takes and returns."""
    if enc.kind == "enum":
        return dict(enc.values)[value]
    if enc.kind == "set":
        return sum(1 << bit for name, bit in enc.values if name in value)
    return value


def sample_message(msg: Message, rng: random.Random) -> dict[str, Any]:
    values: dict[str, Any] = {f.name: sample(f.encoding, rng) for f in msg.fields}
    for g in msg.groups:
        values[g.name] = [{f.name: sample(f.encoding, rng) for f in g.fields}
                          for _ in range(rng.choice([0, 1, 3]))]
    return values


def _fill(target: Any, fields: list[Field], values: dict[str, Any]) -> None:
    for f in fields:
        setattr(target, snake(f.name), to_wire(f.encoding, values[f.name]))


def encode(msg: Message, values: dict[str, Any], buf: bytearray, offset: int = codecs.SOFH_SIZE) -> Any:
    fw = getattr(codecs, msg.name)().wrap_encode(buf, offset)
    _fill(fw, msg.fields, values)
    for g in msg.groups:
        group = getattr(fw, f"begin_{g.name}")(len(values[g.name]))
        for entry in values[g.name]:
            group.next()
            _fill(group, g.fields, entry)
    return fw


def expected_dict(msg: Message, values: dict[str, Any]) -> dict[str, Any]:
    out = {snake(f.name): to_wire(f.encoding, values[f.name]) for f in msg.fields}
    for g in msg.groups:
        out[g.name] = [{snake(f.name): to_wire(f.encoding, e[f.name]) for f in g.fields}
                       for e in values[g.name]]
    return out


@pytest.mark.parametrize("name", list(MESSAGES))
def test_round_trip_every_message(name: str) -> None:
    msg = MESSAGES[name]
    decoder = codecs.Decoder()
    rng = random.Random(name)
    for _ in range(50):
        values = sample_message(msg, rng)
        buf = bytearray(1024)
        fw = encode(msg, values, buf)
        n = fw.frame()
        frame = bytes(buf[:n])
        assert decoder.frame_length(frame) == n
        out = decoder.decode(frame)
        assert type(out) is getattr(codecs, name)
        assert out.sbe_template_id == msg.id == out.TEMPLATE_ID
        assert out.sbe_block_length == msg.block_length
        assert out.encoded_length == n - codecs.SOFH_SIZE
        assert out.to_dict() == expected_dict(msg, values)
        # the same message without SOFH, wrapped directly
        assert getattr(codecs, name)().wrap_decode(frame, codecs.SOFH_SIZE).to_dict() == out.to_dict()


def test_frames_back_to_back_in_one_buffer() -> None:
    msg = MESSAGES["ExecutionReport"]
    rng = random.Random(7)
    buf = bytearray(4096)
    pos, sent = 0, []
    for _ in range(5):
        values = sample_message(msg, rng)
        pos += encode(msg, values, buf, pos + codecs.SOFH_SIZE).frame()
        sent.append(expected_dict(msg, values))
    decoder, off, got = codecs.Decoder(), 0, []
    while off < pos:
        n = decoder.frame_length(buf, off, pos - off)
        got.append(decoder.decode(buf, off, n).to_dict())
        off += n
    assert got == sent


# --- agreement with PyPI sbe 0.4.3 ---------------------------------------------------------------

sbe = pytest.importorskip("sbe")


@pytest.fixture(scope="module")
def reference() -> Any:
    # sbe 0.4.3 knows fixed-length arrays only for char; a uint8[32] and a char[32] are the same 32
    # bytes on the wire, so its copy of the schema spells the signature as char.
    text = SCHEMA_PATH.read_text(encoding="utf-8")
    assert text.count('primitiveType="uint8" length="32"') == 1
    return sbe.Schema.parse(io.BytesIO(text.replace('primitiveType="uint8" length="32"',
                                                    'primitiveType="char" length="32"').encode()))


def _binary(msg: Message) -> set[str]:
    return {f.name for f in msg.fields if f.encoding.length > 1}


@pytest.mark.parametrize("name", list(MESSAGES))
def test_bytes_agree_with_pypi_sbe(name: str, reference: Any) -> None:
    msg = MESSAGES[name]
    ref_msg = reference.messages[msg.id]
    rng = random.Random(f"sbe-{name}")
    for _ in range(50):
        values = sample_message(msg, rng)
        buf = bytearray(1024)
        fw = encode(msg, values, buf, 0)
        ours = bytes(buf[:fw.encoded_length])
        theirs = reference.encode(ref_msg, values)
        assert ours == theirs
        # their decoder reads our bytes (binary char arrays come back lossy from it: compared above)
        decoded = reference.decode(ours)
        assert decoded.message_name == name
        assert decoded.header == {"blockLength": msg.block_length, "templateId": msg.id,
                                  "schemaId": codecs.SCHEMA_ID, "version": codecs.SCHEMA_VERSION}
        skip = _binary(msg)
        assert {k: v for k, v in decoded.value.items() if k not in skip} == {
            k: v for k, v in values.items() if k not in skip}
        # and ours reads theirs
        again = getattr(codecs, name)().wrap_decode(theirs)
        assert again.to_dict() == expected_dict(msg, values)


def test_every_message_is_checked_against_pypi_sbe() -> None:
    # no var data in the schema, so nothing is outside what sbe 0.4.3 handles
    assert all(m.fields or m.groups for m in SCHEMA.messages)
    assert "<data " not in SCHEMA_PATH.read_text(encoding="utf-8")
