"""Memory structures as bytes: ``lib.data`` layouts ↔ host memory.

The same layout the RTL reads a descriptor, command buffer, record or context
with is what a driver writes into (simulated) host memory: ``pack`` turns
field values into bytes, ``unpack`` reads them back, so no driver writes a
``struct`` format by hand. Bit ``8k`` of a layout is byte ``k`` in memory
(little-endian, as the cards are: a PCI dword carries byte lane 0 in AD[7:0],
PCI 2.3 §3.2.1).

Field values: integers; ``bytes`` for a field whose width is a whole number
of bytes (byte ``k`` of the value at byte ``k`` of the field); a ``dict`` for
a nested struct; a list for an array; an enum member for an enum shape.
Fields not given are 0.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

from amaranth.hdl import Shape, ShapeCastable
from amaranth.lib import data

__all__ = ["size", "byte_offset", "pack", "pack_int", "unpack", "unpack_int"]


def _layout(layout) -> data.Layout:
    return data.Layout.cast(layout)


class _Info(NamedTuple):
    """What ``pack``/``unpack`` need of a layout, worked out once."""
    bits: int
    nbytes: int
    members: tuple      # (name, offset, width, sub-layout or None) per member
    names: dict         # name -> (offset, width, sub-layout or None)
    is_array: bool


#: id(layout) -> (layout, _Info). Keyed on identity: the layouts are module
#: constants, and hashing or comparing an Amaranth layout walks its fields
#: (an ``lru_cache`` on the layout spent more time in ``Layout.__eq__`` than
#: the packing itself). The entry keeps the layout alive, so an id is never
#: reused for another layout.
_INFO: dict[int, tuple[object, _Info]] = {}


def _info(layout) -> _Info:
    hit = _INFO.get(id(layout))
    if hit is not None and hit[0] is layout:
        return hit[1]
    lay = _layout(layout)
    members = []
    for name, f in lay:
        sub = f.shape
        nested = None
        if isinstance(sub, (data.StructLayout, data.ArrayLayout, data.UnionLayout)) or (
                isinstance(sub, type) and issubclass(sub, data.Struct)):
            nested = sub
        members.append((name, f.offset, f.width, nested))
    members = tuple(members)
    info = _Info(lay.size, (lay.size + 7) // 8, members,
                 {name: (off, width, nested) for name, off, width, nested in members},
                 isinstance(lay, data.ArrayLayout))
    _INFO[id(layout)] = (layout, info)
    return info


def _members(layout):
    """(name, offset, width, sub-layout or None) of each member."""
    return _info(layout).members


def size(layout) -> int:
    """Bytes of a layout (its width rounded up to bytes)."""
    return _info(layout).nbytes


def byte_offset(layout, *path) -> int:
    """Byte offset of a (nested) field: ``byte_offset(Mcr, "pkt", "ipkt")``.
    Array elements are given by index."""
    off = 0
    shape = layout
    for p in path:
        f = _layout(shape)[p]
        off += f.offset
        shape = f.shape
    if off % 8:
        raise ValueError(f"{path} is not byte aligned")
    return off // 8


def _encode(layout, value) -> int:
    if isinstance(value, (bytes, bytearray, memoryview)):
        v = int.from_bytes(bytes(value), "little")
        bits = _info(layout).bits
        if v >> bits:
            raise ValueError(f"{len(value)} bytes do not fit {bits} bits")
        return v
    if isinstance(value, int):
        return value
    if isinstance(value, dict):
        items = value.items()
    else:                                   # a list for an array
        items = enumerate(value)
    names = _info(layout).names
    v = 0
    for name, x in items:
        try:
            off, width, nested = names[name]
        except KeyError:
            raise ValueError(f"no field {name!r} in {layout!r}") from None
        if nested is not None and not isinstance(x, int):
            x = _encode(nested, x)
        elif isinstance(x, (bytes, bytearray, memoryview)):
            if width % 8 or len(x) * 8 != width:
                raise ValueError(f"field {name!r}: {len(x)} bytes for {width} bits")
            x = int.from_bytes(bytes(x), "little")
        elif isinstance(x, enum.Enum):
            x = x.value
        x = int(x)
        if not 0 <= x < 1 << width:
            raise ValueError(f"field {name!r}: {x:#x} does not fit {width} bits")
        v |= x << off
    return v


def pack_int(layout, value=None, **fields) -> int:
    """The layout's bits as an integer (bit 0 = bit 0 of byte 0)."""
    if value is None:
        value = fields
    elif fields:
        raise TypeError("give a value or fields, not both")
    return _encode(layout, value)


def pack(layout, value=None, **fields) -> bytes:
    """The bytes of a layout filled with ``value`` (a dict / list / bytes)
    or keyword fields."""
    return pack_int(layout, value, **fields).to_bytes(size(layout), "little")


def unpack_int(layout, v: int) -> dict:
    """Field name → value (nested structs as dicts, arrays as lists) of an integer."""
    info = _info(layout)
    out = {}
    for name, off, width, nested in info.members:
        x = (v >> off) & ((1 << width) - 1)
        out[name] = unpack_int(nested, x) if nested is not None else x
    if info.is_array:
        return [out[k] for k in range(len(out))]
    return out


def unpack(layout, buf) -> dict:
    """Field name → value of the bytes of a layout (``buf`` may be longer)."""
    n = size(layout)
    b = bytes(buf[:n])
    if len(b) < n:
        raise ValueError(f"{len(b)} bytes for a {n}-byte structure")
    return unpack_int(layout, int.from_bytes(b, "little"))
