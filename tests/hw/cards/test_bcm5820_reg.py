"""hw.cards.ubsecreg against the numbers of OpenBSD's ubsecreg.h / ubsecvar.h
and the C struct layouts (written here with the struct module)."""

import struct

import pytest

from hw import structs
from hw.cards import ubsecreg as u
from hw.regs import Access

# OpenBSD sys/dev/pci/ubsecreg.h, as printed there
BS = {
    "MCR1": 0x00, "CTRL": 0x04, "STAT": 0x08, "ERR": 0x0C, "MCR2": 0x10,
}
BS_CTRL = {
    "board_reset": 0x8000_0000, "mcr2int": 0x4000_0000, "mcr1int": 0x2000_0000,
    "ofm": 0x1000_0000, "be32": 0x0800_0000, "be64": 0x0400_0000,
    "dmaerr": 0x0200_0000, "rng_m": 0x0180_0000, "swnorm": 0x0040_0000,
    "frag": 0x0000_FFFF,
}
BS_STAT = {
    "mcr1_busy": 0x8000_0000, "mcr1_full": 0x4000_0000, "mcr1_done": 0x2000_0000,
    "dmaerr": 0x1000_0000, "mcr2_full": 0x0800_0000, "mcr2_done": 0x0400_0000,
}


def test_identity_is_pcidevs_and_class():
    assert (u.VENDOR_ID, u.DEVICE_ID) == (0x14E4, 0x5820)
    assert u.CLASS_CODE >> 16 == 0x0B and (u.CLASS_CODE >> 8) & 0xFF == 0x40
    assert u.BS_BAR == 0x10


def test_register_offsets_and_bits_are_ubsecreg_h():
    for name, off in BS.items():
        assert getattr(u.UBSEC_REGS, name).offset == off
    for name, mask in BS_CTRL.items():
        assert u.CTRL.field(name).mask == mask, name
    for name, mask in BS_STAT.items():
        assert u.STAT.field(name).mask == mask, name
    assert u.ERR.addr.mask == 0xFFFF_FFFC and u.ERR.read.mask == 0x2
    assert u.IMOD.offset == 0x14 and u.IMOD.mask("n", "t") == 0xFFFF_FFFF


def test_access_kinds():
    assert u.CTRL.board_reset.access is Access.SC
    assert {f.name for f in u.STAT.fields if f.access is Access.W1C} == \
        {"mcr1_done", "dmaerr", "mcr2_done"}
    assert {f.name for f in u.STAT.fields if f.access is Access.RO} == \
        {"mcr1_busy", "mcr1_full", "mcr2_full"}
    assert u.MCR1.addr.access is Access.WO
    assert u.STAT.reset == 0x0800_0000          # MCR2_FULL: no key engine


def test_memory_constants_are_ubsecreg_and_ubsecvar_h():
    assert (u.UBS_MCR_DONE, u.UBS_MCR_ERROR, u.UBS_MCR_ERRORCODE) == (0x1, 0x2, 0xFF00)
    assert (u.UBS_PKTCTX_ENC_3DES, u.UBS_PKTCTX_INBOUND, u.UBS_PKTCTX_AUTH,
            u.UBS_PKTCTX_AUTH_MD5, u.UBS_PKTCTX_AUTH_SHA1) == \
        (0x8000, 0x4000, 0x3000, 0x1000, 0x2000)
    assert u.UBS_PKTBUF_LEN == 0xFFFF
    assert u.UBS_MAX_SCATTER == u.MAX_PARTICLES == 64


# the C structs with every field named, as the struct module packs them
PKTBUF = "<III"


@pytest.mark.parametrize("layout,fmt", [
    (u.PktBuf, PKTBUF), (u.McrHeader, "<HH"), (u.McrPacket, "<I3IHH3I"),
    (u.Mcr, "<HHI3IHH3I"), (u.ContextLong, "<HHHH6I2I5I5I"),
])
def test_struct_sizes(layout, fmt):
    assert structs.size(layout) == struct.calcsize(fmt)


def test_mcr_bytes_match_struct_pack():
    ipb = {"addr": 0x1234_5679, "next": 0xABC0, "len": 0x41}
    opb = {"addr": 0x2000_0003, "next": 0x3000, "len": 0x40}
    got = structs.pack(u.Mcr, {
        "hdr": {"pkts": 3, "flags": {"done": 1, "error": 1, "code": u.ERR_CHAIN}},
        "pkt": {"ctxp": 0x8000, "ipkt": ipb, "pktlen": 0x41, "opkt": opb}})
    want = struct.pack("<HHI3IHH3I", 3, 0x0503, 0x8000, 0x1234_5679, 0xABC0, 0x41,
                       0, 0x41, 0x2000_0003, 0x3000, 0x40)
    assert got == want
    assert u.byte_offset(u.Mcr, "hdr", "flags") == 2
    assert u.byte_offset(u.Mcr, "pkt", "ctxp") == 4
    assert u.byte_offset(u.Mcr, "pkt", "ipkt") == 8
    assert u.byte_offset(u.Mcr, "pkt", "pktlen") == 22
    assert u.byte_offset(u.Mcr, "pkt", "opkt") == 24
    assert u.byte_offset(u.McrPacket, "opkt", "next") == 24


def test_context_bytes_match_struct_pack():
    key = list(range(1, 7))
    got = structs.pack(u.ContextLong, {
        "len": u.CTX_LONG_BYTES, "type": u.UBS_PKTCTX_TYPE_IPSEC,
        "flags": {"enc_3des": 1, "auth_sha1": 1}, "offset": 2, "deskey": key,
        "iv": [7, 8], "hminner": [9] * 5, "hmouter": [10] * 5})
    want = struct.pack("<HHHH6I2I5I5I", 80, 0, 0xA000, 2, *key, 7, 8, *[9] * 5, *[10] * 5)
    assert got == want
    assert structs.unpack(u.ContextLong, want)["flags"]["inbound"] == 0
