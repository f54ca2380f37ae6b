"""The BCM5820-like card's header: identity, registers and memory formats.

One description of the card (in the manner of OpenBSD's
``sys/dev/pci/ubsecreg.h``, limits from ``ubsecvar.h``) that the RTL
(:mod:`hw.cards.bcm5820`, :mod:`hw.dma.mcr`), the driver
(:mod:`drivers.ubsec`) and the tests all import. Registers are
:class:`hw.regs.Register` objects, memory structures ``lib.data`` layouts
whose bit ``8k`` is byte ``k`` in host memory (every multi-byte field is
little-endian: the driver sets neither BE32 nor BE64); :mod:`hw.structs`
turns them into bytes and back.

Names: registers and fields are ``ubsecreg.h``'s ``BS_<REG>_<FIELD>`` as
``<REG>.<field>`` (``BS_STAT_MCR1_DONE`` → ``STAT.mcr1_done``; ``BS_CTRL_RESET``
is ``CTRL.board_reset``, as ``Register.reset`` is the register's reset value); memory
constants keep their ``UBS_*`` names. What the model adds to the chip (IMOD,
the error codes) is marked so.

Pure Python: nothing here builds hardware.
"""

from amaranth.lib import data

from ..regs import Access, Field, Register, RegisterBlock
from ..structs import byte_offset

__all__ = [
    # identity
    "VENDOR_ID", "DEVICE_ID", "CLASS_CODE", "REVISION", "BS_BAR", "BAR_SIZE",
    # registers
    "MCR1", "CTRL", "STAT", "ERR", "MCR2", "IMOD", "UBSEC_REGS",
    # memory formats
    "PktBuf", "McrFlags", "McrHeader", "McrPacket", "Mcr", "PktCtxFlags", "ContextLong",
    "UBS_MCR_DONE", "UBS_MCR_ERROR", "UBS_MCR_ERRORCODE", "UBS_PKTBUF_LEN",
    "UBS_PKTCTX_TYPE_IPSEC", "UBS_PKTCTX_ENC_3DES", "UBS_PKTCTX_INBOUND",
    "UBS_PKTCTX_AUTH", "UBS_PKTCTX_AUTH_MD5", "UBS_PKTCTX_AUTH_SHA1",
    "UBS_PKTCTX_TLS", "UBS_PKTCTX_LEAD", "UBS_PKTCTX_PADLEN", "TLS_MAC_BYTES", "TLS_PAD_MAX",
    "ERR_CONTEXT", "ERR_LENGTH", "ERR_INPUT", "ERR_OUTPUT", "ERR_CHAIN",
    "UBS_MAX_SCATTER", "MAX_PARTICLES", "UBS_MAX_AGGR", "MAX_PKTLEN",
    "MCR_BYTES", "MCR_ADD_BYTES", "PKTBUF_BYTES", "CTX_LONG_BYTES", "MAC_BYTES",
    "MACBUF_BYTES", "byte_offset",
]

# ---------------------------------------------------------------------------
# Identity

#: PCI_VENDOR_BROADCOM (OpenBSD sys/dev/pci/pcidevs)
VENDOR_ID = 0x14E4
#: PCI_PRODUCT_BROADCOM_5820 (pcidevs)
DEVICE_ID = 0x5820
#: processor / co-processor (PCI Code and ID Assignment spec, class 0b, sub 40)
CLASS_CODE = 0x0B4000
#: revision ID the model reports (model's choice)
REVISION = 1
#: configuration-space offset of the register BAR (ubsecreg.h BS_BAR)
BS_BAR = 0x10
#: bytes the BAR decodes (model's choice: the registers use the low 32)
BAR_SIZE = 4096

# ---------------------------------------------------------------------------
# Registers (ubsecreg.h BS_MCR1 .. BS_MCR2; IMOD is the model's)

MCR1 = Register("MCR1", 0x00, (
    Field("addr", 0, 32, Access.WO,
          doc="bus address of a master command record, queued (dropped while "
              "STAT.mcr1_full)"),
), doc="DMA Master Command Record 1")

CTRL = Register("CTRL", 0x04, (
    Field("frag", 0, 16, doc="output fragment size (BS_CTRL_FRAG_M); stored only"),
    Field("swnorm", 22, doc="582x software normalization; stored only"),
    Field("rng_m", 23, 2, doc="RNG mode (BS_CTRL_RNG_M); stored only: no RNG"),
    Field("dmaerr", 25, doc="interrupt on DMA error"),
    Field("be64", 26, doc="big-endian 64-bit data; stored only (always little-endian)"),
    Field("be32", 27, doc="big-endian 32-bit data; stored only"),
    Field("ofm", 28, doc="output fragment mode; stored only"),
    Field("mcr1int", 29, doc="interrupt when an MCR1 record is done"),
    Field("mcr2int", 30, doc="interrupt when an MCR2 record is done"),
    Field("board_reset", 31, access=Access.SC,
          doc="board reset (5805/5820): waits until the bus master is between "
              "transactions; reads 1 until done"),
), doc="DMA Control")

STAT = Register("STAT", 0x08, (
    Field("mcr2_done", 26, access=Access.W1C, doc="never set: no key engine"),
    Field("mcr2_full", 27, access=Access.RO, reset=1,
          doc="always set: MCR2 (key/RNG records) is not implemented"),
    Field("dmaerr", 28, access=Access.W1C, doc="DMA error (ERR holds the address)"),
    Field("mcr1_done", 29, access=Access.W1C, doc="an MCR1 record is done"),
    Field("mcr1_full", 30, access=Access.RO, doc="the MCR1 queue takes no more records"),
    Field("mcr1_busy", 31, access=Access.RO, doc="records queued or being processed"),
), doc="DMA Status")

ERR = Register("ERR", 0x0C, (
    Field("read", 1, access=Access.RO, doc="the fault was on a read (BS_ERR_READ)"),
    Field("addr", 2, 30, access=Access.RO,
          doc="dword address of the fault (BS_ERR_ADDR); kept across reset"),
), doc="DMA Error Address")

MCR2 = Register("MCR2", 0x10, (
    Field("addr", 0, 32, Access.WO, doc="key/RNG records: not implemented, ignored"),
), doc="DMA Master Command Record 2")

IMOD = Register("IMOD", 0x14, (
    Field("n", 0, 8, doc="records per MCR1_DONE (0, 1: every record)"),
    Field("t", 8, 24, doc="bus clocks after the first pending record (0: when idle)"),
), doc="model's extension: interrupt moderation (0 = off)")

#: the register BAR
UBSEC_REGS = RegisterBlock("ubsec", (MCR1, CTRL, STAT, ERR, MCR2, IMOD), size=BAR_SIZE)

# ---------------------------------------------------------------------------
# Memory formats (ubsecreg.h structs). Bit 8k = byte k in memory.


class PktBuf(data.Struct):
    """``struct ubsec_pktbuf``: one particle of a chain."""
    addr: 32          # pb_addr: any byte alignment
    next: 32          # pb_next: bus address of the next particle, 0 ends the chain
    len: 16           # pb_len & UBS_PKTBUF_LEN
    len_hi: 16        # rest of pb_len: unused


class McrFlags(data.Struct):
    """``mcr_flags``: UBS_MCR_DONE 0001, UBS_MCR_ERROR 0002, UBS_MCR_ERRORCODE ff00."""
    done: 1           # set by the card when the record is finished
    error: 1
    reserved: 6
    code: 8           # ERR_* below (the model's codes)


class McrHeader(data.Struct):
    """First dword of ``struct ubsec_mcr``."""
    pkts: 16          # mcr_pkts
    flags: McrFlags   # mcr_flags


class McrPacket(data.Struct):
    """``struct ubsec_mcr_add``: one packet (the first one follows the header
    in ``struct ubsec_mcr``, each further one the packet before)."""
    ctxp: 32          # mcr_cmdctxp: context (ContextLong) bus address
    ipkt: PktBuf      # mcr_ipktbuf: first input particle
    reserved: 16      # mcr_reserved
    pktlen: 16        # mcr_pktlen
    opkt: PktBuf      # mcr_opktbuf: first output particle


class Mcr(data.Struct):
    """``struct ubsec_mcr``: a record with its first packet."""
    hdr: McrHeader
    pkt: McrPacket


class PktCtxFlags(data.Struct):
    """``pc_flags``: UBS_PKTCTX_ENC_3DES 8000, INBOUND 4000, AUTH 3000
    (AUTH_MD5 1000, AUTH_SHA1 2000). The model's extension in the chip's
    reserved bits: TLS 0800 (one-pass TLS 1.0 record), LEAD 0300, PADLEN
    00ff (docs/bcm5820.md, "One-pass TLS records")."""
    pad_len: 8        # model's: TLS padding_length (RFC 2246 §6.2.3.2)
    lead: 2           # model's: input bytes before the MAC region (TLS only)
    reserved: 1
    tls: 1            # model's: MAC, then encrypt data | MAC | padding
    auth_md5: 1
    auth_sha1: 1
    inbound: 1
    enc_3des: 1


class ContextLong(data.Struct):
    """``struct ubsec_pktctx_long`` (5820). Key, IV and midstate words hold
    four bytes each as a big-endian integer (ubsec.c: ``ntohl`` then
    ``htole32``)."""
    len: 16                              # pc_len: CTX_LONG_BYTES
    type: 16                             # pc_type: UBS_PKTCTX_TYPE_IPSEC
    flags: PktCtxFlags                   # pc_flags
    offset: 16                           # pc_offset: cipher start, in dwords
    deskey: data.ArrayLayout(32, 6)      # pc_deskey: keys 1, 2, 3
    iv: data.ArrayLayout(32, 2)          # pc_iv
    hminner: data.ArrayLayout(32, 5)     # pc_hminner: SHA-1 H0..H4 after key^ipad
    hmouter: data.ArrayLayout(32, 5)     # pc_hmouter: ... after key^opad


UBS_MCR_DONE = 0x0001
UBS_MCR_ERROR = 0x0002
UBS_MCR_ERRORCODE = 0xFF00
UBS_PKTBUF_LEN = 0x0000_FFFF
UBS_PKTCTX_TYPE_IPSEC = 0x0000
UBS_PKTCTX_ENC_3DES = 0x8000
UBS_PKTCTX_INBOUND = 0x4000
UBS_PKTCTX_AUTH = 0x3000
UBS_PKTCTX_AUTH_MD5 = 0x1000
UBS_PKTCTX_AUTH_SHA1 = 0x2000
#: the model's one-pass TLS extension (not in the chip): the flag, the
#: lead-in count and the padding length
UBS_PKTCTX_TLS = 0x0800
UBS_PKTCTX_LEAD = 0x0300
UBS_PKTCTX_PADLEN = 0x00FF
#: HMAC-SHA1 in a TLS 1.0 record: the full 20 bytes (RFC 2246 §6.2.3.1)
TLS_MAC_BYTES = 20
#: padding_length is a uint8 (RFC 2246 §6.2.3.2)
TLS_PAD_MAX = 255

#: record error codes (mcr_flags bits 15:8; the model's codes, the chip's are
#: not published): MD5 or both MAC bits (this card has no MD5); TLS without
#: 3DES and SHA-1 or with INBOUND
ERR_CONTEXT = 1
#: packet length 0, offset past the end, or a cipher region not a multiple of 8
#: (with TLS: data, MAC and padding together; or an output over MAX_PKTLEN)
ERR_LENGTH = 2
#: input chain shorter than the packet (missing bytes processed as zeros)
ERR_INPUT = 3
#: output chain shorter than the output, or no MAC buffer
ERR_OUTPUT = 4
#: a chain the card refuses to walk: a zero-length particle while the chain
#: still owes bytes, or more than MAX_PARTICLES particles (the record is not
#: DONE and the card reports a DMA error)
ERR_CHAIN = 5

#: ubsecvar.h UBS_MAX_SCATTER: particles per input or output chain
UBS_MAX_SCATTER = 64
MAX_PARTICLES = UBS_MAX_SCATTER
#: ubsecvar.h UBS_MAX_AGGR: packets the driver merges into one record
UBS_MAX_AGGR = 5
#: largest packet: mcr_pktlen is a u16
MAX_PKTLEN = 0xFFFF

MCR_BYTES = 36            # struct ubsec_mcr (header + first packet)
MCR_ADD_BYTES = 32        # struct ubsec_mcr_add (each further packet)
PKTBUF_BYTES = 12         # struct ubsec_pktbuf
CTX_LONG_BYTES = 80       # struct ubsec_pktctx_long
MAC_BYTES = 12            # HMAC-SHA1-96 (RFC 2404), what the card writes
MACBUF_BYTES = 20         # ubsecvar.h ubsec_dmachunk d_macbuf[5]

assert Mcr.as_shape().size == 8 * MCR_BYTES
assert McrPacket.as_shape().size == 8 * MCR_ADD_BYTES
assert PktBuf.as_shape().size == 8 * PKTBUF_BYTES
assert ContextLong.as_shape().size == 8 * CTX_LONG_BYTES


def _flag_mask(layout, name) -> int:
    """Mask of a field within its own dword."""
    f = data.Layout.cast(layout)[name]
    return ((1 << f.width) - 1) << (f.offset % 32)


# the OpenBSD masks and the layouts describe the same bits
assert _flag_mask(McrFlags, "done") == UBS_MCR_DONE
assert _flag_mask(McrFlags, "error") == UBS_MCR_ERROR
assert _flag_mask(McrFlags, "code") == UBS_MCR_ERRORCODE
assert _flag_mask(PktCtxFlags, "enc_3des") == UBS_PKTCTX_ENC_3DES
assert _flag_mask(PktCtxFlags, "inbound") == UBS_PKTCTX_INBOUND
assert _flag_mask(PktCtxFlags, "auth_md5") == UBS_PKTCTX_AUTH_MD5
assert _flag_mask(PktCtxFlags, "auth_sha1") == UBS_PKTCTX_AUTH_SHA1
assert _flag_mask(PktCtxFlags, "tls") == UBS_PKTCTX_TLS
assert _flag_mask(PktCtxFlags, "lead") == UBS_PKTCTX_LEAD
assert _flag_mask(PktCtxFlags, "pad_len") == UBS_PKTCTX_PADLEN
assert _flag_mask(PktBuf, "len") == UBS_PKTBUF_LEN
