"""Hostile or broken frames get a specific DecodeError, never a crash; misuse of a flyweight too."""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sbe_schemas import codecs

SOFH = codecs.SOFH_SIZE


def new_order_frame() -> bytearray:
    buf = bytearray(256)
    m = codecs.NewOrder().wrap_encode(buf, SOFH)
    m.seq_num, m.cl_ord_id, m.qty, m.price = 1, 2, 3, 4
    m.side, m.ord_type, m.time_in_force = codecs.Side.BUY, codecs.OrdType.LIMIT, codecs.TimeInForce.GTC
    return buf[:m.frame()]


def execution_report_frame(fills: int = 2) -> bytearray:
    buf = bytearray(1024)
    er = codecs.ExecutionReport().wrap_encode(buf, SOFH)
    er.seq_num = 9
    group = er.begin_fills(fills)
    for i in range(fills):
        group.next().trade_id = 100 + i
    return buf[:er.frame()]


def with_sofh_length(frame: bytearray, n: int) -> bytearray:
    frame[0:4] = struct.pack(">I", n)
    return frame


def test_decode_error_kinds_are_session_reject_reasons() -> None:
    # the gateway answers a DecodeError with Reject(reason=SessionRejectReason[err.kind])
    for cls in codecs.DECODE_ERRORS:
        assert issubclass(cls, codecs.DecodeError) and issubclass(cls, ValueError)
        assert codecs.SessionRejectReason[cls.kind]


@pytest.mark.parametrize("make", [new_order_frame, execution_report_frame])
def test_every_truncation_is_a_truncated_frame(make) -> None:
    frame = bytes(make())
    decoder = codecs.Decoder()
    for cut in range(len(frame)):
        with pytest.raises(codecs.TruncatedFrame):
            decoder.decode(frame[:cut])
        assert decoder.frame_length(frame[:cut]) == (0 if cut < SOFH else len(frame))
    assert decoder.decode(frame).seq_num in (1, 9)


def test_oversized_frame() -> None:
    decoder = codecs.Decoder(max_frame=512)
    frame = with_sofh_length(new_order_frame(), 513)
    with pytest.raises(codecs.OversizedFrame):
        decoder.frame_length(frame)
    with pytest.raises(codecs.OversizedFrame):
        decoder.decode(frame)
    huge = with_sofh_length(new_order_frame(), 0xFFFFFFFF)
    with pytest.raises(codecs.OversizedFrame):
        codecs.Decoder().decode(huge)
    with pytest.raises(ValueError):
        codecs.Decoder(max_frame=10)  # smaller than the largest fixed message


def test_bad_sofh_encoding_type() -> None:
    frame = new_order_frame()
    frame[4:6] = b"\xeb\x51"
    with pytest.raises(codecs.BadEncodingType):
        codecs.Decoder().decode(frame)
    with pytest.raises(codecs.BadEncodingType):
        codecs.Decoder().frame_length(frame)
    frame[4:6] = b"\x50\xeb"  # the right value in the wrong byte order
    with pytest.raises(codecs.BadEncodingType):
        codecs.Decoder().decode(frame)


def test_frame_length_shorter_than_headers() -> None:
    with pytest.raises(codecs.FrameLengthMismatch):
        codecs.Decoder().decode(with_sofh_length(new_order_frame(), SOFH + 7))


def test_unknown_template() -> None:
    frame = new_order_frame()
    frame[SOFH + 2:SOFH + 4] = struct.pack("<H", 999)
    with pytest.raises(codecs.UnknownTemplate) as err:
        codecs.Decoder().decode(frame)
    assert err.value.template_id == 999


def test_wrong_schema_id_and_version() -> None:
    frame = new_order_frame()
    frame[SOFH + 4:SOFH + 6] = struct.pack("<H", codecs.SCHEMA_ID + 1)
    with pytest.raises(codecs.WrongSchema):
        codecs.Decoder().decode(frame)
    frame = new_order_frame()
    frame[SOFH + 6:SOFH + 8] = struct.pack("<H", codecs.SCHEMA_VERSION + 1)
    with pytest.raises(codecs.WrongVersion) as err:
        codecs.Decoder().decode(frame)
    assert err.value.template_id == codecs.NewOrder.TEMPLATE_ID


def test_bad_block_lengths() -> None:
    frame = new_order_frame()
    frame[SOFH:SOFH + 2] = struct.pack("<H", codecs.NewOrder.BLOCK_LENGTH - 1)
    with pytest.raises(codecs.BadBlockLength):
        codecs.Decoder().decode(frame)
    frame = execution_report_frame()
    group_at = SOFH + 8 + codecs.ExecutionReport.BLOCK_LENGTH
    frame[group_at:group_at + 2] = struct.pack("<H", 1)
    with pytest.raises(codecs.BadBlockLength):
        codecs.Decoder().decode(frame)


def test_frame_and_message_lengths_must_agree() -> None:
    decoder = codecs.Decoder()
    frame = new_order_frame() + b"\0"  # one stray byte inside the frame
    with pytest.raises(codecs.FrameLengthMismatch):
        decoder.decode(with_sofh_length(frame, len(frame)))
    frame = execution_report_frame(2)
    count_at = SOFH + 8 + codecs.ExecutionReport.BLOCK_LENGTH + 2
    frame[count_at:count_at + 2] = struct.pack("<H", 3)  # claims more entries than the frame holds
    with pytest.raises(codecs.FrameLengthMismatch):
        decoder.decode(frame + bytes(200))  # even with bytes beyond the frame in the buffer
    frame[count_at:count_at + 2] = struct.pack("<H", 65535)
    with pytest.raises(codecs.FrameLengthMismatch):
        decoder.decode(frame)


def test_a_failed_decode_leaves_the_decoder_usable() -> None:
    decoder = codecs.Decoder()
    bad = new_order_frame()
    bad[SOFH + 2:SOFH + 4] = b"\xff\xff"
    good = new_order_frame()
    for _ in range(3):
        with pytest.raises(codecs.DecodeError):
            decoder.decode(bad)
        assert decoder.decode(good).cl_ord_id == 2


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300), st.integers(0, 20), st.sampled_from([0, 1, 2, 10, 20]))
def test_garbage_never_crashes(data: bytes, flips: int, template: int) -> None:
    # random bytes, and valid frames with random corruption: a DecodeError or a message, nothing else
    decoder = codecs.Decoder()
    frames = [data]
    if template:
        base = bytearray(execution_report_frame(1)) if template == 20 else new_order_frame()
        for i in range(flips):
            base[(data[i] if i < len(data) else i) % len(base)] ^= 0xFF
        frames.append(bytes(base) + data)
    for frame in frames:
        try:
            decoder.frame_length(frame)
            out = decoder.decode(frame)
        except codecs.DecodeError:
            continue
        out.to_dict()


def test_flyweight_misuse_raises() -> None:
    m = codecs.NewOrder()
    assert m.to_dict()["qty"] == 0  # unwrapped: reads a zero block
    with pytest.raises(TypeError):
        m.qty = 1  # nothing to write to
    frame = bytes(new_order_frame())
    m.wrap_decode(frame, SOFH)
    with pytest.raises(TypeError):
        m.qty = 1  # bytes are read-only
    with pytest.raises(TypeError):
        codecs.NewOrder().wrap_encode(frame)
    with pytest.raises(ValueError):
        codecs.NewOrder().wrap_encode(bytearray(10))  # too small
    with pytest.raises(ValueError):
        codecs.NewOrder().wrap_encode(bytearray(100), 101)
    with pytest.raises(ValueError):
        codecs.NewOrder().wrap_encode(bytearray(100)).frame()  # no room before it for the SOFH
    with pytest.raises(OverflowError):
        codecs.NewOrder().wrap_encode(bytearray(100)).symbol_id = 1 << 32
    with pytest.raises(ValueError):
        codecs.Logon().wrap_encode(bytearray(100)).signature = bytes(33)


def test_group_misuse_raises() -> None:
    buf = bytearray(SOFH + 8 + codecs.ExecutionReport.BLOCK_LENGTH + 4 + 33 * 2)
    er = codecs.ExecutionReport().wrap_encode(buf, SOFH)
    with pytest.raises(ValueError):
        er.begin_fills(3)  # does not fit
    fills = er.begin_fills(2)
    with pytest.raises(TypeError):
        fills.trade_id = 1  # before next()
    fills.next()
    fills.next()
    with pytest.raises(IndexError):
        fills.next()
    with pytest.raises(ValueError):
        er.begin_fills(1)  # once per group
    assert er.frame() == len(buf)
    er.wrap_decode(buf, SOFH)  # a writable buffer, but decoded: its groups cannot be re-begun
    with pytest.raises(ValueError):
        er.begin_fills(0)
    assert [f.index for f in er.fills] == [0, 1]


def test_held_buffer_is_pinned_until_released() -> None:
    buf = bytearray(256)
    m = codecs.NewOrder().wrap_encode(buf, SOFH)
    with pytest.raises(BufferError):
        buf.extend(b"x")  # the flyweight's pointer cannot be invalidated
    m.release()
    buf.extend(b"x")
    assert m.to_dict()["qty"] == 0
