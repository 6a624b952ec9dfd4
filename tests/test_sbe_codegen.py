"""The codec generator: deterministic output, the built module is current, schema errors are clear."""

from __future__ import annotations

from pathlib import Path

import pytest

from core_cython import records
from sbe_schemas import codecs
from sbe_schemas.codegen import generate, generate_text, snake
from sbe_schemas.schema import SchemaError, parse

PKG = Path(__file__).resolve().parent.parent / "sbe_schemas"
SCHEMA_PATH = PKG / "venue_order_entry.xml"


def test_output_is_deterministic(tmp_path: Path) -> None:
    first = generate_text(parse(SCHEMA_PATH), SCHEMA_PATH.name)
    assert generate_text(parse(SCHEMA_PATH), SCHEMA_PATH.name) == first
    assert generate(SCHEMA_PATH, tmp_path / "a") == [tmp_path / "a.pxd", tmp_path / "a.pyx"]
    assert generate(SCHEMA_PATH, tmp_path / "a") == []  # unchanged: not rewritten
    assert (tmp_path / "a.pyx").read_text(encoding="utf-8") == first[1]


def test_built_module_matches_the_schema() -> None:
    # setup.py regenerates before cythonize; a stale build would show here
    pxd, pyx = generate_text(parse(SCHEMA_PATH), SCHEMA_PATH.name)
    assert (PKG / "codecs.pyx").read_text(encoding="utf-8") == pyx
    assert (PKG / "codecs.pxd").read_text(encoding="utf-8") == pxd
    schema = parse(SCHEMA_PATH)
    assert codecs.SCHEMA_ID == schema.id and codecs.SCHEMA_VERSION == schema.version
    assert sorted(codecs.TEMPLATES) == sorted(m.id for m in schema.messages)


def test_enums_mirror_the_engine() -> None:
    pairs = [(codecs.Side, records.Side), (codecs.OrdType, records.OrdType),
             (codecs.TimeInForce, records.Tif), (codecs.StpMode, records.Stp)]
    for ours, engine in pairs:
        assert {m.name: m.value for m in ours} == {m.name: m.value for m in engine}
    engine_reasons = {m.name: m.value for m in records.Reason}
    assert {m.name: m.value for m in codecs.RejectReason if m.name in engine_reasons} == engine_reasons
    assert all(m.value >= 200 for m in codecs.RejectReason if m.name not in engine_reasons)
    assert codecs.OrderFlags.POST_ONLY == records.Flag.POST_ONLY


def test_snake() -> None:
    assert snake("clOrdId") == "cl_ord_id"
    assert snake("heartbeatIntervalMs") == "heartbeat_interval_ms"
    assert snake("seqNum") == "seq_num"


HEAD = """<?xml version="1.0"?>
<sbe:messageSchema xmlns:sbe="http://fixprotocol.io/2016/sbe" package="t" id="1" version="0"
                   byteOrder="{order}">
  <types>
    <composite name="messageHeader">
      <type name="blockLength" primitiveType="uint16"/><type name="templateId" primitiveType="uint16"/>
      <type name="schemaId" primitiveType="uint16"/><type name="version" primitiveType="uint16"/>
    </composite>
    <composite name="groupSizeEncoding">
      <type name="blockLength" primitiveType="uint16"/><type name="numInGroup" primitiveType="uint16"/>
    </composite>
    <type name="Opt" primitiveType="int32" presence="optional"/>
  </types>
  {body}
</sbe:messageSchema>
"""

BAD = {
    "block length": ('<sbe:message name="M" id="1" blockLength="9"><field name="a" id="1" type="uint64"/>'
                     "</sbe:message>", "blockLength 9"),
    "var data": ('<sbe:message name="M" id="1"><data name="d" id="1" type="uint64"/></sbe:message>',
                 "var data"),
    "unknown type": ('<sbe:message name="M" id="1"><field name="a" id="1" type="Nope"/></sbe:message>',
                     "unknown type"),
    "field after group": ('<sbe:message name="M" id="1"><group name="g" id="1"/>'
                          '<field name="a" id="2" type="uint8"/></sbe:message>', "before groups"),
    "duplicate id": ('<sbe:message name="M" id="1"/><sbe:message name="N" id="1"/>', "duplicate"),
    "reserved name": ('<sbe:message name="M" id="1"><field name="offset" id="1" type="uint8"/>'
                      "</sbe:message>", "clashes"),
    "null value": ('<sbe:message name="M" id="1"><field name="a" id="1" type="Opt"/></sbe:message>',
                   "nullValue"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_unsupported_schemas_are_refused_clearly(case: str, tmp_path: Path) -> None:
    body, message = BAD[case]
    path = tmp_path / "s.xml"
    text = HEAD.format(order="littleEndian", body=body)
    if case != "null value":  # the bad Opt type would be refused first
        text = text.replace('<type name="Opt" primitiveType="int32" presence="optional"/>', "")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SchemaError, match=message):
        generate_text(parse(path), "s.xml")


def test_big_endian_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.xml"
    path.write_text(HEAD.format(order="bigEndian", body=""), encoding="utf-8")
    with pytest.raises(SchemaError, match="littleEndian"):
        parse(path)
