"""SBE 1.0 XML message schema -> a laid-out model (offsets and sizes) for the code generator.

Supported: primitive types (fixed-length arrays included), constants, enums, sets, composites of
those, messages of fixed fields and one level of repeating groups. Not supported, by design: var data
and nested groups (the order entry schema needs neither; the parser refuses them with a clear error
rather than generating something half-right), big-endian schemas.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

# primitive -> (size, C type, Cython accessor suffix)
PRIMITIVES: dict[str, tuple[int, str, str]] = {
    "char": (1, "uint8_t", "u8"),
    "int8": (1, "int8_t", "i8"),
    "uint8": (1, "uint8_t", "u8"),
    "int16": (2, "int16_t", "i16"),
    "uint16": (2, "uint16_t", "u16"),
    "int32": (4, "int32_t", "i32"),
    "uint32": (4, "uint32_t", "u32"),
    "int64": (8, "int64_t", "i64"),
    "uint64": (8, "uint64_t", "u64"),
    "float": (4, "float", "f32"),
    "double": (8, "double", "f64"),
}


class SchemaError(ValueError):
    """The XML is not a schema this generator supports."""


@dataclass(frozen=True)
class Encoding:
    """How one value sits on the wire: a primitive, maybe an array, maybe optional or constant."""

    name: str
    primitive: str
    length: int = 1  # > 1: fixed-length array, exposed as bytes
    null_value: int | None = None  # optional presence
    constant: str | None = None  # constant presence: not on the wire
    kind: str = "type"  # "type", "enum" or "set"
    values: tuple[tuple[str, int], ...] = ()  # enum validValues / set choices (bit positions)

    @property
    def size(self) -> int:
        return 0 if self.constant is not None else PRIMITIVES[self.primitive][0] * self.length


@dataclass(frozen=True)
class Composite:
    name: str
    members: tuple[tuple[str, Encoding], ...]

    @property
    def size(self) -> int:
        return sum(enc.size for _, enc in self.members)


@dataclass(frozen=True)
class Field:
    """A field laid out in a block: a plain encoding, or a composite flattened to leaf fields."""

    name: str  # schema name; a composite member is "field_member"
    offset: int
    encoding: Encoding


@dataclass
class Group:
    name: str
    id: int
    block_length: int
    fields: list[Field] = field(default_factory=list)


@dataclass
class Message:
    name: str
    id: int
    block_length: int
    description: str
    fields: list[Field] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)


@dataclass
class Schema:
    package: str
    id: int
    version: int
    semantic_version: str
    header: Composite
    group_size: Composite
    types: dict[str, Encoding | Composite]
    messages: list[Message]

    @property
    def enums(self) -> list[Encoding]:
        return [t for t in self.types.values() if isinstance(t, Encoding) and t.kind in ("enum", "set")]


def _local(tag: str) -> str:  # ElementTree drops comments by default, so tags are strings
    return tag.rsplit("}", 1)[-1]  # drop the namespace: <sbe:message> and <message> are the same


def _int(text: str | None, what: str) -> int:
    try:
        return int((text or "").strip(), 0)
    except ValueError:
        raise SchemaError(f"{what}: not an integer: {text!r}") from None


def _primitive(name: str, where: str) -> str:
    if name not in PRIMITIVES:
        raise SchemaError(f"{where}: unknown primitive type {name!r}")
    return name


def _parse_type(el: ET.Element) -> Encoding:
    name = el.attrib["name"]
    prim = _primitive(el.attrib["primitiveType"], name)
    presence = el.attrib.get("presence", "required")
    length = _int(el.attrib.get("length", "1"), f"{name} length")
    if length < 1:
        raise SchemaError(f"{name}: length 0 is var data, not supported")
    if presence == "constant":
        return Encoding(name, prim, length, constant=(el.text or "").strip())
    null: int | None = None
    if presence == "optional":
        if "nullValue" not in el.attrib:
            raise SchemaError(f"{name}: optional types must give nullValue explicitly")
        null = _int(el.attrib["nullValue"], f"{name} nullValue")
    elif presence != "required":
        raise SchemaError(f"{name}: unknown presence {presence!r}")
    return Encoding(name, prim, length, null_value=null)


def _parse_enum_or_set(el: ET.Element, types: dict[str, Encoding | Composite]) -> Encoding:
    name, kind = el.attrib["name"], _local(el.tag)
    enc = el.attrib["encodingType"]
    base = types.get(enc)
    prim = base.primitive if isinstance(base, Encoding) else _primitive(enc, name)
    child = "validValue" if kind == "enum" else "choice"
    values = tuple(
        (v.attrib["name"], _int(v.text, f"{name}.{v.attrib['name']}")) for v in el if _local(v.tag) == child
    )
    if len({v for _, v in values}) != len(values):
        raise SchemaError(f"{name}: duplicate values")
    if kind == "set" and any(not 0 <= bit < 8 * PRIMITIVES[prim][0] for _, bit in values):
        raise SchemaError(f"{name}: set choice outside the encoding's bits")
    return Encoding(name, prim, kind=kind, values=values)


def _parse_composite(el: ET.Element, types: dict[str, Encoding | Composite]) -> Composite:
    members: list[tuple[str, Encoding]] = []
    for m in el:
        tag = _local(m.tag)
        if tag == "type":
            members.append((m.attrib["name"], _parse_type(m)))
        elif tag in ("enum", "set"):
            members.append((m.attrib["name"], _parse_enum_or_set(m, types)))
        elif tag == "ref":
            ref = types.get(m.attrib["type"])
            if not isinstance(ref, Encoding):
                raise SchemaError(f"{el.attrib['name']}: ref to unknown or composite type")
            members.append((m.attrib["name"], ref))
        else:
            raise SchemaError(f"{el.attrib['name']}: unsupported composite member <{tag}>")
    return Composite(el.attrib["name"], tuple(members))


def _layout(elements: list[ET.Element], types: dict[str, Encoding | Composite], owner: str) -> list[Field]:
    """Fields of one block at their offsets (an explicit offset attribute may add padding)."""
    fields: list[Field] = []
    pos = 0
    for f in elements:
        name = f.attrib["name"]
        if "offset" in f.attrib:
            off = _int(f.attrib["offset"], f"{owner}.{name} offset")
            if off < pos:
                raise SchemaError(f"{owner}.{name}: offset {off} overlaps the previous field")
            pos = off
        tname = f.attrib["type"]
        t = types.get(tname) or (Encoding(tname, tname) if tname in PRIMITIVES else None)
        if t is None:
            raise SchemaError(f"{owner}.{name}: unknown type {tname!r}")
        if isinstance(t, Composite):
            for mname, enc in t.members:
                fields.append(Field(f"{name}_{mname}", pos, enc))
                pos += enc.size
        else:
            if f.attrib.get("presence") == "constant":
                raise SchemaError(f"{owner}.{name}: put constants on the type, not the field")
            fields.append(Field(name, pos, t))
            pos += t.size
    return fields


def _block(fields: list[Field], given: str | None, owner: str) -> int:
    used = max((f.offset + f.encoding.size for f in fields), default=0)
    if given is None:
        return used
    length = _int(given, f"{owner} blockLength")
    if length != used:
        # The sbe reference tools disagree on trailing padding; an exact block avoids the question.
        raise SchemaError(f"{owner}: blockLength {length} but the fields take {used} bytes")
    return length


def _parse_message(el: ET.Element, types: dict[str, Encoding | Composite]) -> Message:
    name = el.attrib["name"]
    plain: list[ET.Element] = []
    groups: list[Group] = []
    for child in el:
        tag = _local(child.tag)
        if tag == "field":
            if groups:
                raise SchemaError(f"{name}: fields must come before groups")
            plain.append(child)
        elif tag == "group":
            gname = child.attrib["name"]
            if child.attrib.get("dimensionType", "groupSizeEncoding") != "groupSizeEncoding":
                raise SchemaError(f"{name}.{gname}: only groupSizeEncoding dimensions are supported")
            gfields = [g for g in child if _local(g.tag) == "field"]
            if any(_local(g.tag) in ("group", "data") for g in child):
                raise SchemaError(f"{name}.{gname}: nested groups and var data are not supported")
            laid = _layout(gfields, types, f"{name}.{gname}")
            block = _block(laid, child.attrib.get("blockLength"), f"{name}.{gname}")
            groups.append(Group(gname, _int(child.attrib["id"], gname), block, laid))
        elif tag == "data":
            raise SchemaError(f"{name}: var data is not supported; use a fixed field")
        else:
            raise SchemaError(f"{name}: unsupported element <{tag}>")
    fields = _layout(plain, types, name)
    block = _block(fields, el.attrib.get("blockLength"), name)
    desc = " ".join(el.attrib.get("description", "").split())
    return Message(name, _int(el.attrib["id"], name), block, desc, fields, groups)


def _check_composite(c: Composite | Encoding | None, name: str, members: list[str]) -> Composite:
    if not isinstance(c, Composite) or [m for m, _ in c.members] != members:
        raise SchemaError(f"{name} must be a composite of {members}")
    if any(enc.primitive != "uint16" or enc.size != 2 for _, enc in c.members):
        raise SchemaError(f"{name}: the generator expects uint16 members")
    return c


def parse(path: str | Path) -> Schema:
    root = ET.parse(path).getroot()
    if _local(root.tag) != "messageSchema":
        raise SchemaError("root element must be messageSchema")
    if root.attrib.get("byteOrder", "littleEndian") != "littleEndian":
        raise SchemaError("only littleEndian schemas are supported")
    types: dict[str, Encoding | Composite] = {}
    messages: list[Message] = []
    for el in root:
        tag = _local(el.tag)
        if tag == "types":
            for t in el:
                ttag = _local(t.tag)
                if ttag == "type":
                    types[t.attrib["name"]] = _parse_type(t)
                elif ttag in ("enum", "set"):
                    types[t.attrib["name"]] = _parse_enum_or_set(t, types)
                elif ttag == "composite":
                    types[t.attrib["name"]] = _parse_composite(t, types)
                else:
                    raise SchemaError(f"unsupported type element <{ttag}>")
        elif tag == "message":
            messages.append(_parse_message(el, types))
    ids = [m.id for m in messages]
    if len(set(ids)) != len(ids):
        raise SchemaError("duplicate message template ids")
    header_name = root.attrib.get("headerType", "messageHeader")
    return Schema(
        package=root.attrib["package"],
        id=_int(root.attrib["id"], "schema id"),
        version=_int(root.attrib.get("version", "0"), "schema version"),
        semantic_version=root.attrib.get("semanticVersion", ""),
        header=_check_composite(
            types.get(header_name), header_name, ["blockLength", "templateId", "schemaId", "version"]
        ),
        group_size=_check_composite(types.get("groupSizeEncoding"), "groupSizeEncoding",
                                    ["blockLength", "numInGroup"]),
        types=types,
        messages=messages,
    )
