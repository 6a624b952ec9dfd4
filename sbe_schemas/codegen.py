"""Generate Cython flyweight codecs from an SBE 1.0 XML schema.

    python -m sbe_schemas.codegen sbe_schemas/venue_order_entry.xml sbe_schemas/codecs

writes codecs.pyx and codecs.pxd (setup.py runs this before cythonize). Per message: one final cdef
class wrapping a buffer at an offset, with cdef get_x/set_x accessors that load and store
little-endian values straight from the buffer (for Cython callers: no Python objects) and Python
properties on top of them; per group: one flyweight walking its entries. A Decoder dispatches a
SOFH-framed message on its template id after validating the frame. The output depends only on the
schema (no dates, no paths), so regenerating gives identical bytes.
"""

from __future__ import annotations

import re
import struct
import sys
from pathlib import Path

from sbe_schemas import _runtime
from sbe_schemas.schema import PRIMITIVES, Field, Group, Message, Schema, SchemaError, parse

HEADER_SIZE = 8
GROUP_HEADER_SIZE = 4
SOFH_SIZE = 6
DEFAULT_MAX_FRAME = 4096  # bytes; Decoder(max_frame=...) overrides
RESERVED = {
    "offset", "writable", "wrap_encode", "wrap_decode", "frame", "release", "to_dict", "encoded_length",
    "sbe_template_id", "sbe_block_length", "sbe_schema_id", "sbe_version", "next", "index",
}


def snake(name: str) -> str:
    """clOrdId -> cl_ord_id: Python-side names of schema fields."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def camel(name: str) -> str:
    return name[:1].upper() + name[1:]


def _c_int(value: int, prim: str) -> str:
    """A C-safe literal: the type's extreme values by name (a bare INT64_MIN literal overflows)."""
    bits = 8 * PRIMITIVES[prim][0]
    if prim.startswith("int") and value == -(1 << (bits - 1)):
        return f"INT{bits}_MIN"
    if prim.startswith("int") and value == (1 << (bits - 1)) - 1:
        return f"INT{bits}_MAX"
    if prim.startswith("uint") and value == (1 << bits) - 1:
        return f"UINT{bits}_MAX"
    return str(value)


def _bytes_literal(data: bytes) -> str:
    return 'b"' + "".join(f"\\x{b:02x}" for b in data) + '"'


def _defaults(fields: list[Field], block: int) -> bytes:
    """The block image wrap_encode starts from: zeros, and the null value of optional fields."""
    image = bytearray(block)
    for f in fields:
        enc = f.encoding
        if enc.null_value is None:
            continue
        if enc.primitive in ("float", "double"):
            struct.pack_into("<f" if enc.primitive == "float" else "<d", image, f.offset, enc.null_value)
        else:
            size = PRIMITIVES[enc.primitive][0]
            image[f.offset:f.offset + size] = enc.null_value.to_bytes(
                size, "little", signed=enc.primitive.startswith("int"))
    return bytes(image)


class _Out:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, text: str = "", indent: int = 0) -> None:
        for line in text.split("\n"):
            self.lines.append(("    " * indent + line).rstrip())

    def text(self) -> str:
        return "\n".join(self.lines).rstrip() + "\n"


def _accessors(f: Field, base: str, pxd: _Out, pyx: _Out) -> str:
    """Emit the cdef accessors and the property of one field; returns its Python name."""
    enc, name = f.encoding, snake(f.name)
    if name in RESERVED:
        raise SchemaError(f"field name {f.name!r} clashes with a flyweight method")
    at = f"{base} + {f.offset}"
    pyx("")
    if enc.constant is not None:
        value = enc.constant if enc.primitive == "char" else str(int(enc.constant, 0))
        pyx(f"@property\ndef {name}(self):\n    return {value!r}", 1)
        return name
    ctype, sfx = PRIMITIVES[enc.primitive][1:]
    if enc.length > 1:
        pxd(f"cdef const unsigned char* ptr_{name}(self) noexcept", 1)
        strip = '.rstrip(b"\\0")' if enc.primitive == "char" else ""
        pyx(f"""cdef const unsigned char* ptr_{name}(self) noexcept:
    return {at}

@property
def {name}(self):
    \"\"\"{enc.length} raw bytes ({enc.name}).\"\"\"
    return (<const char*>({at}))[:{enc.length}]{strip}

@{name}.setter
def {name}(self, value):
    cdef const unsigned char[::1] src = value
    if src.shape[0] > {enc.length}:
        raise ValueError("{name}: at most {enc.length} bytes")
    self._need_writable()
    memset({at}, 0, {enc.length})
    if src.shape[0]:
        memcpy({at}, &src[0], src.shape[0])""", 1)
        return name
    pxd(f"cdef {ctype} get_{name}(self) noexcept\ncdef int set_{name}(self, {ctype} v) except -1", 1)
    pyx(f"""cdef {ctype} get_{name}(self) noexcept:
    return sbe_get_{sfx}({at})

cdef int set_{name}(self, {ctype} v) except -1:
    self._need_writable()
    sbe_put_{sfx}({at}, v)
    return 0
""", 1)
    if enc.null_value is None:
        pyx(f"""@property
def {name}(self):
    return self.get_{name}()

@{name}.setter
def {name}(self, value):
    self.set_{name}(value)""", 1)
    else:
        null = _c_int(enc.null_value, enc.primitive) if ctype not in ("float", "double") else repr(
            float(enc.null_value))
        pyx(f"""@property
def {name}(self):
    \"\"\"None when null ({enc.name}).\"\"\"
    cdef {ctype} v = self.get_{name}()
    return None if v == {null} else v

@{name}.setter
def {name}(self, value):
    if value is None:
        self.set_{name}({null})
    else:
        self.set_{name}(value)""", 1)
    return name


def _to_dict(names: list[str], groups: list[str], pyx: _Out) -> None:
    items = [f'"{n}": self.{n}' for n in names] + [f'"{g}": [e.to_dict() for e in self.{g}]' for g in groups]
    pyx("\ndef to_dict(self):\n    return {", 1)
    for item in items:
        pyx(f"    {item},", 1)
    pyx("}", 2)


def _group_class(msg: Message, g: Group, pxd: _Out, pyx: _Out) -> str:
    cls = f"{msg.name}{camel(g.name)}"
    pxd(f"\n@cython.final\ncdef class {cls}(GroupFlyweight):")
    pyx(f"\ncdef const char* _DEFAULTS_{cls} = {_bytes_literal(_defaults(g.fields, g.block_length))}\n")
    pyx(f'\n@cython.final\ncdef class {cls}(GroupFlyweight):\n    """One entry of {msg.name}.{g.name}."""')
    pyx(f"BLOCK_LENGTH = {g.block_length}", 1)
    names = [_accessors(f, "self._cur", pxd, pyx) for f in g.fields]
    if not g.fields:
        pxd("pass", 1)
    _to_dict(names, [], pyx)
    return cls


def _group_methods(msg: Message, classes: list[str], pxd: _Out, pyx: _Out) -> None:
    # The overrides of Flyweight's group hooks are not redeclared in the pxd (Cython refuses that
    # for a final class).
    n = len(msg.groups)
    pyx(f"\ncdef int _count_groups(self) noexcept:\n    return {n}", 1)
    pyx("\ncdef void _write_empty_groups(self, int first) noexcept:", 1)
    for k, g in enumerate(msg.groups):
        pyx(f"""if first <= {k}:
    sbe_put_u16(self._p + self._limit, {g.block_length})
    sbe_put_u16(self._p + self._limit + 2, 0)
    self._limit += {GROUP_HEADER_SIZE}""", 2)
    pyx("\ncdef void _reset_groups(self) noexcept:", 1)
    for g in msg.groups:
        pyx(f"self._{g.name}._set(_ZERO, 0, {g.block_length}, False)", 2)
    pyx("""
cdef Py_ssize_t _check_groups(self, Py_ssize_t pos, Py_ssize_t avail, bint framed) except -1:
    cdef Py_ssize_t n""", 1)
    for g in msg.groups:
        pyx(f"""if pos + {GROUP_HEADER_SIZE} > avail:
    _overrun(framed, pos + {GROUP_HEADER_SIZE}, avail, {msg.id})
if sbe_get_u16(self._p + pos) != {g.block_length}:
    raise BadBlockLength(
        f"{g.name} block length {{sbe_get_u16(self._p + pos)}}, expected {g.block_length}", {msg.id})
n = sbe_get_u16(self._p + pos + 2)
pos += {GROUP_HEADER_SIZE}
if pos + n * {g.block_length} > avail:
    _overrun(framed, pos + n * {g.block_length}, avail, {msg.id})
self._{g.name}._set(self._p + pos, n, {g.block_length}, self.writable)
pos += n * {g.block_length}""", 2)
    pyx("return pos", 2)
    for k, (g, cls) in enumerate(zip(msg.groups, classes, strict=True)):
        after = GROUP_HEADER_SIZE * (n - k - 1)
        pxd(f"cdef {cls} _{g.name}\ncpdef {cls} begin_{g.name}(self, Py_ssize_t count)", 1)
        pyx(f"""
cpdef {cls} begin_{g.name}(self, Py_ssize_t count):
    \"\"\"Encode {g.name} with count entries (default values); step through them with next().
    Groups are begun once each, in schema order.\"\"\"
    cdef Py_ssize_t pos, i
    self._need_writable()
    if self._groups_begun > {k}:
        raise ValueError("begin groups after wrap_encode, once each, in schema order")
    if count < 0 or count > 65535:
        raise ValueError(f"{g.name}: {{count}} entries (0..65535)")
    pos = self._limit - {GROUP_HEADER_SIZE * (n - k)}
    if pos + {GROUP_HEADER_SIZE} + count * {g.block_length} + {after} > self._cap:
        raise ValueError(f"{g.name}: {{count}} entries do not fit the buffer")
    sbe_put_u16(self._p + pos, {g.block_length})
    sbe_put_u16(self._p + pos + 2, <uint16_t>count)
    for i in range(count):
        memcpy(self._p + pos + {GROUP_HEADER_SIZE} + i * {g.block_length}, _DEFAULTS_{cls}, {g.block_length})
    self._{g.name}._set(self._p + pos + {GROUP_HEADER_SIZE}, count, {g.block_length}, True)
    self._limit = pos + {GROUP_HEADER_SIZE} + count * {g.block_length}
    self._groups_begun = {k + 1}
    self._write_empty_groups({k + 1})
    return self._{g.name}

@property
def {g.name}(self):
    \"\"\"The {g.name} group, rewound: iterate it (one flyweight, moved entry by entry).\"\"\"
    self._{g.name}._rewind()
    return self._{g.name}""", 1)


def _message_class(msg: Message, pxd: _Out, pyx: _Out) -> None:
    classes = [_group_class(msg, g, pxd, pyx) for g in msg.groups]
    pxd(f"\n@cython.final\ncdef class {msg.name}(Flyweight):")
    image = _bytes_literal(_defaults(msg.fields, msg.block_length))
    pyx(f"\ncdef const char* _DEFAULTS_{msg.name} = {image}\n")
    doc = msg.description or f"{msg.name} message."
    pyx(f'\n@cython.final\ncdef class {msg.name}(Flyweight):\n    """{doc}"""')
    pyx(f"TEMPLATE_ID = {msg.id}\nBLOCK_LENGTH = {msg.block_length}\n", 1)
    pyx("def __cinit__(self):", 1)
    pyx(f"""self.sbe_template_id = {msg.id}
self._block = {msg.block_length}
self._defaults = <const unsigned char*>_DEFAULTS_{msg.name}""", 2)
    for g, cls in zip(msg.groups, classes, strict=True):
        pyx(f"self._{g.name} = {cls}()", 2)
    names = [_accessors(f, f"self._p + {HEADER_SIZE}", pxd, pyx) for f in msg.fields]
    if not msg.fields and not msg.groups:
        pxd("pass", 1)
    if msg.groups:
        _group_methods(msg, classes, pxd, pyx)
    _to_dict(names, [g.name for g in msg.groups], pyx)


def _enums(schema: Schema, pyx: _Out) -> list[str]:
    """Python IntEnum / IntFlag classes; the C-level constants go in the pxd."""
    consts: list[str] = []
    for enc in schema.enums:
        base = "IntEnum" if enc.kind == "enum" else "IntFlag"
        pyx(f"\n\nclass {enc.name}({base}):")
        for vname, value in enc.values:
            v = value if enc.kind == "enum" else 1 << value
            pyx(f"{vname} = {v}", 1)
            consts.append(f"{enc.name}_{vname} = {v}")
    return consts


def _decoder(schema: Schema, max_frame: int, pxd: _Out, pyx: _Out) -> None:
    pxd("\ncdef class Decoder:\n    cdef readonly Py_ssize_t max_frame")
    for m in schema.messages:
        pxd(f"cdef {m.name} _{snake(m.name)}", 1)
    pxd("""    cdef Flyweight _flyweight(self, int template_id)
    cpdef Py_ssize_t frame_length(self, object buf, Py_ssize_t offset=*, Py_ssize_t length=*) except -1
    cpdef Flyweight decode(self, object buf, Py_ssize_t offset=*, Py_ssize_t length=*)""")
    smallest = max(SOFH_SIZE + HEADER_SIZE + m.block_length + GROUP_HEADER_SIZE * len(m.groups)
                   for m in schema.messages)
    pyx(f'''

cdef Py_ssize_t _span(Py_buffer* view, Py_ssize_t offset, Py_ssize_t length) except -1:
    if offset < 0 or offset > view.len:
        raise ValueError(f"offset {{offset}} outside a buffer of {{view.len}} bytes")
    if length < 0:
        return view.len - offset
    if length > view.len - offset:
        raise ValueError(f"length {{length}} beyond the buffer")
    return length


cdef class Decoder:
    """Validates a SOFH frame and returns the flyweight of its template, wrapped on it.

    One flyweight per template is reused: a result is valid until the next decode of the same
    template (copy out what you keep). Errors are DecodeError subclasses; after a bad SOFH
    (BadEncodingType, OversizedFrame, FrameLengthMismatch from frame_length) a byte stream cannot
    be resynchronised, so the connection should be closed.
    """

    def __cinit__(self, Py_ssize_t max_frame=DEFAULT_MAX_FRAME):
        if max_frame < {smallest} or max_frame > 0xFFFFFFFF:
            raise ValueError(f"max_frame {{max_frame}}: must hold every message ({smallest}..2**32-1)")
        self.max_frame = max_frame''')
    for m in schema.messages:
        pyx(f"self._{snake(m.name)} = {m.name}()", 2)
    pyx("\n    cdef Flyweight _flyweight(self, int template_id):")
    for m in schema.messages:
        pyx(f"if template_id == {m.id}:\n    return self._{snake(m.name)}", 2)
    pyx("return None", 2)
    pyx('''
    cpdef Py_ssize_t frame_length(self, object buf, Py_ssize_t offset=0, Py_ssize_t length=-1) except -1:
        """Length of the frame starting at offset (SOFH included), or 0 while fewer than SOFH_SIZE
        bytes are there: read until that many bytes are buffered, then decode."""
        cdef Py_buffer view
        PyObject_GetBuffer(buf, &view, PyBUF_SIMPLE)
        try:
            return _sofh_length(<const unsigned char*>view.buf + offset, _span(&view, offset, length),
                                self.max_frame)
        finally:
            PyBuffer_Release(&view)

    cpdef Flyweight decode(self, object buf, Py_ssize_t offset=0, Py_ssize_t length=-1):
        """Decode the one frame at offset (SOFH + message; length = bytes available, default to the
        end of buf); returns the message flyweight. The frame must hold exactly one message."""
        cdef Py_buffer view
        cdef Py_ssize_t avail, n
        cdef const unsigned char* h
        cdef Flyweight fw
        cdef int tid
        PyObject_GetBuffer(buf, &view, PyBUF_SIMPLE)
        try:
            avail = _span(&view, offset, length)
            n = _sofh_length(<const unsigned char*>view.buf + offset, avail, self.max_frame)
            if n == 0:
                raise TruncatedFrame(f"{avail} bytes, a SOFH needs {SBE_SOFH_SIZE}")
            if n > avail:
                raise TruncatedFrame(f"frame of {n} bytes, {avail} available")
            h = <const unsigned char*>view.buf + offset + SBE_SOFH_SIZE
            tid = sbe_get_u16(h + 2)
            if sbe_get_u16(h + 4) != SBE_SCHEMA_ID:
                raise WrongSchema(f"schema id {sbe_get_u16(h + 4)}, expected {SBE_SCHEMA_ID}")
            if sbe_get_u16(h + 6) != SBE_SCHEMA_VERSION:
                raise WrongVersion(f"schema version {sbe_get_u16(h + 6)}, expected {SBE_SCHEMA_VERSION}",
                                   tid)
            fw = self._flyweight(tid)
            if fw is None:
                raise UnknownTemplate(f"unknown template id {tid}", tid)
        finally:
            PyBuffer_Release(&view)
        fw._attach(buf, offset + SBE_SOFH_SIZE, False)
        try:
            fw._check(n - SBE_SOFH_SIZE, True)
        except BaseException:
            fw._release()
            raise
        return fw''')


def generate_text(schema: Schema, source_name: str, max_frame: int = DEFAULT_MAX_FRAME) -> tuple[str, str]:
    """(pxd, pyx) source for the schema."""
    names = [m.name for m in schema.messages] + [e.name for e in schema.enums]
    if len(set(names)) != len(names):
        raise SchemaError("message and enum names must be distinct")
    banner = (f"# GENERATED by sbe_schemas/codegen.py from {source_name}: do not edit; change the schema.\n"
              f"# Schema {schema.package} id {schema.id} version {schema.version}"
              f" ({schema.semantic_version}).\n")
    zero = HEADER_SIZE + max([m.block_length for m in schema.messages]
                             + [g.block_length for m in schema.messages for g in m.groups])
    pxd, pyx = _Out(), _Out()
    pxd(banner + _runtime.PXD_IMPORTS + _runtime.C_HELPERS)
    pyx("# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True")
    pyx(banner + '"""SBE flyweight codecs and SOFH framing for ' + schema.package + '."""\n')
    pyx(_runtime.PYX_IMPORTS)
    pyx(f"cdef unsigned char _ZERO[{zero}]  # what an unwrapped flyweight reads: zeros, never a crash\n")
    pyx(f"""SCHEMA_ID = {schema.id}
SCHEMA_VERSION = {schema.version}
SEMANTIC_VERSION = "{schema.semantic_version}"
PACKAGE = "{schema.package}"
HEADER_SIZE = {HEADER_SIZE}
SOFH_SIZE = {SOFH_SIZE}
ENCODING_TYPE = 0xEB50  # SOFH: SBE 1.0 little-endian
DEFAULT_MAX_FRAME = {max_frame}""")
    consts = _enums(schema, pyx)
    pyx(_runtime.PYX_ERRORS)
    pxd("\ncdef enum:")
    pxd(f"""SBE_SCHEMA_ID = {schema.id}
SBE_SCHEMA_VERSION = {schema.version}
SBE_HEADER_SIZE = {HEADER_SIZE}
SBE_SOFH_SIZE = {SOFH_SIZE}
SBE_ENCODING_TYPE = 0xEB50""", 1)
    for m in schema.messages:
        pxd(f"{m.name}_TEMPLATE_ID = {m.id}\n{m.name}_BLOCK_LENGTH = {m.block_length}", 1)
    for c in consts:
        pxd(c, 1)
    pxd(_runtime.PXD_BASES)
    for m in schema.messages:
        _message_class(m, pxd, pyx)
    _decoder(schema, max_frame, pxd, pyx)
    pyx("\n\nTEMPLATES = {" + ", ".join(f"{m.id}: {m.name}" for m in schema.messages) + "}")
    return pxd.text(), pyx.text()


def _write_if_changed(path: Path, text: str) -> bool:
    # An unchanged file keeps its mtime, so the build does not recompile the extension for nothing.
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.write_text(text, encoding="utf-8")
    return True


def generate(xml_path: str | Path, out_stem: str | Path, max_frame: int = DEFAULT_MAX_FRAME) -> list[Path]:
    """Write out_stem.pxd and out_stem.pyx from the schema; returns the files that changed."""
    xml_path, out_stem = Path(xml_path), Path(out_stem)
    pxd, pyx = generate_text(parse(xml_path), xml_path.name, max_frame)
    written = []
    for suffix, text in ((".pxd", pxd), (".pyx", pyx)):
        path = out_stem.with_suffix(suffix)
        if _write_if_changed(path, text):
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m sbe_schemas.codegen SCHEMA.xml OUT_STEM", file=sys.stderr)
        return 2
    for path in generate(args[0], args[1]):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
