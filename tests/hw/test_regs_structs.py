"""hw.regs (register descriptions) and hw.structs (layouts ↔ bytes), checked
against Python's struct module as an independent packer."""

import struct

import pytest
from amaranth.lib import data

from hw.regs import Access, Field, Register, RegisterBlock
from hw.structs import pack, pack_int, size, unpack


class _Desc(data.Struct):
    addr: 32
    length: 16
    flags: 16


class _Rec(data.Struct):
    hdr: 16
    count: 16
    desc: _Desc
    words: data.ArrayLayout(32, 3)


def test_pack_matches_struct_module():
    b = pack(_Rec, hdr=0x0102, count=7, desc=dict(addr=0xDEADBEEF, length=64, flags=0x8001),
             words=[1, 2, 0xFFFFFFFF])
    assert b == struct.pack("<HHIHHIII", 0x0102, 7, 0xDEADBEEF, 64, 0x8001, 1, 2, 0xFFFFFFFF)
    assert size(_Rec) == 24


def test_unpack_round_trip_and_longer_buffer():
    raw = struct.pack("<HHIHHIII", 5, 6, 0x1000, 12, 3, 9, 8, 7) + b"tail"
    u = unpack(_Rec, raw)
    assert u == dict(hdr=5, count=6, desc=dict(addr=0x1000, length=12, flags=3), words=[9, 8, 7])
    assert pack(_Rec, u) == raw[:24]


def test_bytes_field_is_little_endian_memory_order():
    assert pack(_Desc, addr=b"\x01\x02\x03\x04") == bytes([1, 2, 3, 4]) + bytes(4)
    assert pack_int(_Desc, dict(length=1)) == 1 << 32


def test_pack_rejects_what_does_not_fit():
    with pytest.raises(ValueError):
        pack(_Desc, length=1 << 16)
    with pytest.raises(ValueError):
        pack(_Desc, nonesuch=1)
    with pytest.raises(ValueError):
        pack(_Desc, addr=b"\x01\x02")
    with pytest.raises(ValueError):
        unpack(_Desc, b"\x00" * 7)


STAT = Register("STAT", 0x08, [
    Field("busy", 31, access=Access.RO),
    Field("done", 29, access=Access.W1C),
    Field("level", 8, 8, reset=0x30),
])


def test_register_fields_masks_and_layout():
    assert STAT.done.mask == 1 << 29
    assert STAT.mask("busy", "done") == 0xA000_0000
    assert STAT.bits(level=0x11, done=1) == 0x2000_1100
    assert STAT.decode(0x8000_3000) == dict(busy=1, done=0, level=0x30)
    assert STAT.reset == 0x3000
    lay = STAT.layout
    assert lay.size == 32 and lay["level"].offset == 8 and lay["done"].offset == 29
    with pytest.raises(AttributeError):
        STAT.nonesuch


def test_register_definitions_are_checked():
    with pytest.raises(ValueError):
        Register("X", 0, [Field("a", 0, 4), Field("b", 3)])      # overlap
    with pytest.raises(ValueError):
        Register("X", 0, [Field("a", 31, 2)])                      # past bit 31
    with pytest.raises(ValueError):
        Field("a", 0, 2, reset=4)
    with pytest.raises(ValueError):
        STAT.bits(level=0x100)


def test_register_block_lookup():
    blk = RegisterBlock("bar0", [STAT, Register("CTRL", 0x04)])
    assert blk.STAT is STAT and blk.at(0x04).name == "CTRL" and blk.at(0x0C) is None
    with pytest.raises(ValueError):
        RegisterBlock("bar0", [STAT, Register("DUP", 0x08)])


def test_field_names_may_not_hide_register_attributes():
    for name in ("reset", "mask", "bits", "layout", "offset", "name", "fields", "_x"):
        with pytest.raises(ValueError, match="taken by the Register"):
            Register("X", 0, [Field(name, 0)])
