"""Hifn 7751 registers and memory structures: one header for RTL, driver and tests.

After OpenBSD's ``sys/dev/pci/hifn7751reg.h`` (and ``hifn7751var.h`` for the
ring sizes) of 2002-03. Names are the header's without the ``HIFN_`` prefix:
``HIFN_0_PUCTRL`` is :data:`PUCTRL` (BAR0), ``HIFN_1_DMA_CSR`` is
:data:`DMA_CSR` (BAR1), ``HIFN_D_VALID`` is :data:`D_VALID`,
``HIFN_BASE_CMD_MAC`` is the ``mac`` field of :class:`BaseMasks`, and so on.
Register fields are lower case (``DMA_CSR.c_wait.mask`` is
``HIFN_DMACSR_C_WAIT``); one exception: HIFN_PUCTRL_RESET is
``PUCTRL.chip_reset`` (``Register.reset`` is a register's reset value).

Registers are :class:`hw.regs.Register` (pure Python: offsets, masks, access
kinds); memory structures are ``lib.data`` structs, which the RTL views
signals with and :mod:`hw.structs` packs to / unpacks from host-memory bytes
(all little-endian: the model does not implement DMA_CNFG's big-endian
mode). Where the model differs from the chip (the simplified unlock, the
CMDINVAL / DATAERR result flags, the context RAM size encoding) the field's
doc says so.
"""


from amaranth.lib import data, enum

from ..regs import Access, Field, Register, RegisterBlock

__all__ = [
    # identity
    "VENDOR_ID", "DEVICE_ID", "CLASS_CODE", "REVISION",
    # BAR0 / BAR1 registers
    "PUDATA", "PUCTRL", "PUISR", "PUCNFG", "PUIER", "PUSTAT", "FIFOSTAT", "FIFOCNFG",
    "CRAR", "SRAR", "RRAR", "DRAR", "DMA_CSR", "DMA_IER", "DMA_CNFG", "REVID",
    "SECRET1", "SECRET2", "BAR0", "BAR1", "RING_ADDR",
    "UNLOCK_KEY", "PuStatEna", "ENA_LEVEL", "RingCtrl", "POLL_FREQUENCY", "POLL_SCALAR",
    "csr_field", "DMACSR_STATUS", "DMACSR_ABORTS",
    # rings and descriptors
    "Ring", "RING_CMD", "RING_SRC", "RING_RES", "RING_DST", "RING_NAMES",
    "DescriptorControl", "Descriptor", "D_VALID", "D_JUMP", "D_LAST", "D_OVER",
    "D_DESTOVER", "D_MASKDONEIRQ", "D_LENGTH",
    "D_CMD_RSIZE", "D_SRC_RSIZE", "D_RES_RSIZE", "D_DST_RSIZE",
    # command buffer
    "BaseMasks", "BaseCommand", "MacAlg", "MacMode", "MacMasks", "MacCommand",
    "CryptAlg", "CryptMode", "CryptMasks", "CryptCommand",
    "MAC_KEY_LENGTH", "DES_KEY_LENGTH", "TDES_KEY_LENGTH", "IV_LENGTH",
    "MAX_COMMAND", "LENMASK_LO", "LENMASK_HI", "SESSION_MASK",
    # result buffer
    "ResultFlags", "BaseResult", "MacResult", "Result", "MAC_RESULT_LENGTH",
    "MAX_RESULT", "BASE_RES_DSTOVERRUN", "RES_CMDINVAL", "RES_DATAERR",
]

# ---------------------------------------------------------------- identity
VENDOR_ID = 0x13A3          # PCI_VENDOR_HIFN (OpenBSD sys/dev/pci/pcidevs)
DEVICE_ID = 0x0005          # PCI_PRODUCT_HIFN_7751 (pcidevs)
CLASS_CODE = 0x100000       # encryption controller, network and computing
#                             (PCI Code and ID Assignment spec, base class 10h)
REVISION = 1                # the model's revision (PUSTAT 7:0, REVID)

_W1C, _RO, _RW, _WO, _SC = Access.W1C, Access.RO, Access.RW, Access.WO, Access.SC


def _f(name, lsb, width=1, access=_RW, doc=""):
    return Field(name, lsb, width, access, doc=doc)


# ---------------------------------------------------------------- BAR0: processing unit
PUDATA = Register("PUDATA", 0x00, bar=0,
                  doc="HIFN_0_PUDATA: slave-mode data port; not modelled, reads 0")
PUCTRL = Register("PUCTRL", 0x04, bar=0, fields=(
    _f("chip_reset", 0, access=_SC,
       doc="HIFN_PUCTRL_RESET: write 1 resets the card; reads 0 (the reset is immediate)"),
    _f("dmaena", 1,
       doc="HIFN_PUCTRL_DMAENA: the processing unit takes commands only while set"),
), doc="HIFN_0_PUCTRL: processing unit control")
PUISR = Register("PUISR", 0x08, bar=0, fields=(
    _f("dstover", 9, access=_W1C, doc="HIFN_PUISR_DSTOVER: destination overrun"),
    _f("dataerr", 14, access=_W1C, doc="HIFN_PUISR_DATAERR: data error"),
    _f("cmdinval", 15, access=_W1C, doc="HIFN_PUISR_CMDINVAL: invalid command"),
), doc="HIFN_0_PUISR: processing unit interrupt status (write 1 to clear)")
PUCNFG = Register("PUCNFG", 0x0C, bar=0, fields=(
    _f("cfg", 0, 13, doc="configuration bits: stored and read back, no effect in the model"),
    _f("dram", 13, 3, access=_RO,
       doc="HIFN_PUCNFG_DRAMMASK: context RAM size; model's encoding: "
           "sessions = 16 << dram"),
), doc="HIFN_0_PUCNFG: processing unit configuration")
PUIER = Register("PUIER", 0x10, bar=0, fields=(
    _f("dstresult", 2, doc="HIFN_PUIER_DSTRESULT (stored; the model never raises it)"),
    _f("dstdata", 4, doc="HIFN_PUIER_DSTDATA (stored)"),
    _f("srcdata", 5, doc="HIFN_PUIER_SRCDATA (stored)"),
    _f("srcctx", 6, doc="HIFN_PUIER_SRCCTX (stored)"),
    _f("srccmd", 7, doc="HIFN_PUIER_SRCCMD (stored)"),
    _f("dstover", 9, doc="HIFN_PUIER_DSTOVER"),
    _f("dstfifo", 12, doc="HIFN_PUIER_DSTFIFO (stored)"),
    _f("srcfifo", 13, doc="HIFN_PUIER_SRCFIFO (stored)"),
    _f("dataerr", 14, doc="HIFN_PUIER_DATAERR"),
    _f("cmdinval", 15, doc="HIFN_PUIER_CMDINVAL"),
), doc="HIFN_0_PUIER: enables for PUISR (DMA_CSR.engine = any(PUISR & PUIER)); the "
       "card stores bits 15:0 as written")
PUSTAT = Register("PUSTAT", 0x14, bar=0, fields=(
    _f("rev", 0, 8, access=_RO, doc="revision (REVISION)"),
    _f("chipena", 8, 8, access=_RO,
       doc="HIFN_PUSTAT_CHIPENA: enable level, a PuStatEna value"),
), doc="HIFN_0_PUSTAT: processing unit status")
FIFOSTAT = Register("FIFOSTAT", 0x18, bar=0, doc="HIFN_0_FIFOSTAT: reads 0")
FIFOCNFG = Register("FIFOCNFG", 0x1C, bar=0,
                    doc="HIFN_0_FIFOCNFG: writes accepted and ignored, reads 0")


class PuStatEna(enum.Enum, shape=8):
    """PUSTAT.chipena values (HIFN_PUSTAT_ENA_*, shifted down by 8)."""
    ENA_0 = 0x30        # HIFN_PUSTAT_ENA_0 0x3000: locked, LZS only
    ENA_1 = 0x10        # HIFN_PUSTAT_ENA_1 0x1000: DES
    ENA_2 = 0x11        # HIFN_PUSTAT_ENA_2 0x1100: DES, 3DES, SHA1


#: the card's grade (0 locked, 1 DES, 2 DES/3DES/SHA1) → PUSTAT.chipena
ENA_LEVEL = {0: PuStatEna.ENA_0.value, 1: PuStatEna.ENA_1.value, 2: PuStatEna.ENA_2.value}


# ---------------------------------------------------------------- BAR1: DMA unit
class Ring(enum.Enum, shape=2):
    """The four rings, in the order of their address registers and DMA_CSR
    fields (command 7:0, source 15:8, result 23:16, destination 31:24)."""
    CMD = 0
    SRC = 1
    RES = 2
    DST = 3


RING_CMD, RING_SRC, RING_RES, RING_DST = (r.value for r in Ring)
RING_NAMES = ("cmd", "src", "res", "dst")
_RING_LETTER = "csrd"


def _rar(name, offset, ring):
    return Register(name, offset, bar=1, fields=(
        _f("addr", 0, 32, doc=f"bus address of the {ring} ring; writing it sets the "
                              "chip's position in the ring back to its start"),
    ), doc=f"HIFN_1_DMA_{name}: {ring} ring address")


CRAR = _rar("CRAR", 0x0C, "command")
SRAR = _rar("SRAR", 0x1C, "source")
RRAR = _rar("RRAR", 0x2C, "result")
DRAR = _rar("DRAR", 0x3C, "destination")
#: ring address registers, indexed by :class:`Ring` value
RING_ADDR = (CRAR, SRAR, RRAR, DRAR)


class RingCtrl(enum.Enum, shape=2):
    """DMA_CSR x_ctrl codes (HIFN_DMACSR_x_CTRL_*)."""
    NOP = 0             # write: no change
    DIS = 1             # write: disable the ring
    ENA = 2             # write: enable the ring; reads ENA while enabled


def _csr_fields(status_access, ctrl_access, ier=False):
    fs = [_f("engine", 0, access=_RW if ier else _RO,
             doc="HIFN_DMACSR_ENGINE: any(PUISR & PUIER)" if not ier
             else "HIFN_DMAIER_ENGINE")]
    for r, x in enumerate(_RING_LETTER):
        b = 8 * r
        X = x.upper()
        if x in "rd":
            fs.append(_f(f"{x}_over", b + 1, access=status_access,
                         doc=f"HIFN_DMACSR_{X}_OVER: ring overflow"))
        fs += [
            _f(f"{x}_wait", b + 2, access=status_access,
               doc=f"HIFN_DMACSR_{X}_WAIT: found an invalid descriptor"),
            _f(f"{x}_last", b + 3, access=status_access,
               doc=f"HIFN_DMACSR_{X}_LAST: released a LAST descriptor"),
            _f(f"{x}_done", b + 4, access=status_access,
               doc=f"HIFN_DMACSR_{X}_DONE: released a descriptor without MASKDONEIRQ"),
            _f(f"{x}_abort", b + 5, access=status_access,
               doc=f"HIFN_DMACSR_{X}_ABORT: PCI abort (or an unwalkable ring): halted"),
        ]
        if not ier:
            fs.append(_f(f"{x}_ctrl", b + 6, 2, access=ctrl_access,
                         doc=f"HIFN_DMACSR_{X}_CTRLMASK: a RingCtrl code; handled "
                             "through the register's write strobe"))
    return tuple(fs)


DMA_CSR = Register("DMA_CSR", 0x40, bar=1, fields=_csr_fields(_W1C, _RO),
                   doc="HIFN_1_DMA_CSR: per ring control and status (write 1 to clear)")
DMA_IER = Register("DMA_IER", 0x44, bar=1, fields=_csr_fields(_RW, _RW, ier=True),
                   doc="HIFN_1_DMA_IER: interrupt enables, DMA_CSR's bit positions; "
                       "the card stores all 32 bits as written")
DMA_CNFG = Register("DMA_CNFG", 0x48, bar=1, fields=(
    _f("mstreset", 0, doc="HIFN_DMACNFG_MSTRESET: 0 holds the card in reset "
                          "(active low; 0 after power-up)"),
    _f("dmareset", 1, doc="HIFN_DMACNFG_DMARESET: 0 holds the DMA unit in reset"),
    _f("mode", 2, doc="HIFN_DMACNFG_MODE (stored)"),
    _f("last", 4, doc="HIFN_DMACNFG_LAST (stored)"),
    _f("pollinval", 8, 3, doc="HIFN_DMACNFG_POLLINVAL: poll scalar"),
    _f("unlock", 11, doc="HIFN_DMACNFG_UNLOCK: arms the SECRET2 unlock"),
    _f("pollfreq", 16, 8, doc="HIFN_DMACNFG_POLLFREQ: poll frequency; an invalid "
                              "descriptor is re-read every max(1, pollfreq) * 256 << "
                              "pollinval clocks (model's definition)"),
    _f("bigendian", 28, doc="HIFN_DMACNFG_BIGENDIAN: stored, not modelled "
                            "(always little-endian)"),
), doc="HIFN_1_DMA_CNFG: DMA configuration; the card stores all 32 bits as written")
REVID = Register("REVID", 0x98, bar=1, fields=(
    _f("rev", 0, 8, access=_RO, doc="revision (REVISION)"),
), doc="HIFN_1_REVID")
SECRET1 = Register("SECRET1", 0xF4, bar=1, doc="HIFN_UNLOCK_SECRET1: reads 0")
SECRET2 = Register("SECRET2", 0xFC, bar=1, fields=(
    _f("key", 0, 32, access=_WO,
       doc="with DMA_CNFG.unlock set, writing UNLOCK_KEY raises the enable level to "
           "the card's grade (the chip walks a 13-step signature sequence; the "
           "model's handshake is this one write)"),
), doc="HIFN_UNLOCK_SECRET2")

BAR0 = RegisterBlock("hifn7751 BAR0 (processing unit)",
                     (PUDATA, PUCTRL, PUISR, PUCNFG, PUIER, PUSTAT, FIFOSTAT, FIFOCNFG))
BAR1 = RegisterBlock("hifn7751 BAR1 (DMA unit)",
                     (CRAR, SRAR, RRAR, DRAR, DMA_CSR, DMA_IER, DMA_CNFG, REVID,
                      SECRET1, SECRET2))

#: the value written to SECRET2 to unlock (model's choice: vendor, device)
UNLOCK_KEY = 0x13A3_7751
#: OpenBSD's DMA_CNFG poll settings (HIFN_POLL_FREQUENCY, HIFN_POLL_SCALAR):
#: 256 clocks, 7.7 µs at 33 MHz
POLL_FREQUENCY, POLL_SCALAR = 0x1, 0x0


def csr_field(ring, name: str) -> Field:
    """The DMA_CSR field ``name`` (ctrl, abort, done, last, wait, over) of a ring
    (a :class:`Ring` or its value)."""
    r = ring.value if isinstance(ring, Ring) else int(ring)
    return DMA_CSR.field(f"{_RING_LETTER[r]}_{name}")


#: every write-1-to-clear status bit of DMA_CSR
DMACSR_STATUS = DMA_CSR.mask(*(f.name for f in DMA_CSR.fields if f.access is _W1C))
#: the four rings' ABORT bits
DMACSR_ABORTS = DMA_CSR.mask(*(f"{x}_abort" for x in _RING_LETTER))


# ---------------------------------------------------------------- descriptors
class DescriptorControl(data.Struct):
    """The ``l`` word of a ring descriptor (``struct hifn_desc`` l)."""
    length: 16          # HIFN_D_LENGTH: bytes of the buffer
    _rsvd0: 9
    maskdoneirq: 1      # HIFN_D_MASKDONEIRQ: no DONE status on release
    destover: 1         # HIFN_D_DESTOVER
    over: 1             # HIFN_D_OVER
    _rsvd1: 1
    last: 1             # HIFN_D_LAST: last descriptor of a packet
    jump: 1             # HIFN_D_JUMP: go to the address in p (the ring start)
    valid: 1            # HIFN_D_VALID: owned by the chip


class Descriptor(data.Struct):
    """``struct hifn_desc``: 8 bytes in a ring."""
    l: DescriptorControl
    p: 32               # bus address of the buffer (of the ring start for a JUMP)


def _bit(layout, name):
    f = data.Layout.cast(layout)[name]
    return ((1 << f.width) - 1) << f.offset


D_VALID = _bit(DescriptorControl, "valid")                # 0x80000000
D_JUMP = _bit(DescriptorControl, "jump")                  # 0x40000000
D_LAST = _bit(DescriptorControl, "last")                  # 0x20000000
D_OVER = _bit(DescriptorControl, "over")                  # 0x08000000
D_DESTOVER = _bit(DescriptorControl, "destover")          # 0x04000000
D_MASKDONEIRQ = _bit(DescriptorControl, "maskdoneirq")    # 0x02000000
D_LENGTH = _bit(DescriptorControl, "length")              # 0x0000ffff

#: descriptors per ring (hifn7751var.h HIFN_D_*_RSIZE)
D_CMD_RSIZE, D_SRC_RSIZE, D_RES_RSIZE, D_DST_RSIZE = 24, 80, 24, 80


# ---------------------------------------------------------------- command buffer
class BaseMasks(data.Struct):
    """``hifn_base_command.masks`` (HIFN_BASE_CMD_*)."""
    _rsvd0: 8
    comp: 1             # HIFN_BASE_CMD_COMP 0x0100 (refused by the model: CMDINVAL)
    pad: 1              # HIFN_BASE_CMD_PAD 0x0200
    mac: 1              # HIFN_BASE_CMD_MAC 0x0400: a MAC command follows
    crypt: 1            # HIFN_BASE_CMD_CRYPT 0x0800: a crypt command follows
    _rsvd12: 1
    decode: 1           # HIFN_BASE_CMD_DECODE 0x2000: MAC then decrypt
    _rsvd14: 2


class BaseCommand(data.Struct):
    """``struct hifn_base_command`` (8 bytes). The counts' bits 17:16
    (HIFN_BASE_CMD_LENMASK_HI) ride in the session word:
    HIFN_BASE_CMD_SRCLEN_M 0xc000, HIFN_BASE_CMD_DSTLEN_M 0x3000."""
    masks: BaseMasks
    session: 12         # session_num 11:0: the context RAM index
    dst_hi: 2           # total_dest_count 17:16
    src_hi: 2           # total_source_count 17:16
    src_count: 16       # total_source_count 15:0
    dst_count: 16       # total_dest_count 15:0


class MacAlg(enum.Enum, shape=1):
    SHA1 = 0            # HIFN_MAC_CMD_ALG_SHA1
    MD5 = 1             # HIFN_MAC_CMD_ALG_MD5 (refused by the model)


class MacMode(enum.Enum, shape=2):
    HMAC = 0            # HIFN_MAC_CMD_MODE_HMAC 0x0000
    SSL_MAC = 1         # HIFN_MAC_CMD_MODE_SSL_MAC 0x0004 (refused by the model)
    HASH = 2            # HIFN_MAC_CMD_MODE_HASH 0x0008: plain SHA-1
    FULL = 3            # 0x000c (refused by the model)


class MacMasks(data.Struct):
    """``hifn_mac_command.masks`` (HIFN_MAC_CMD_*)."""
    alg: MacAlg         # HIFN_MAC_CMD_ALG_MASK 0x0001
    _rsvd1: 1
    mode: MacMode       # HIFN_MAC_CMD_MODE_MASK 0x000c
    trunc: 1            # HIFN_MAC_CMD_TRUNC 0x0010: 12-byte MAC
    result: 1           # HIFN_MAC_CMD_RESULT 0x0020: MAC into the result buffer
    append: 1           # HIFN_MAC_CMD_APPEND 0x0040 (not modelled)
    _rsvd7: 2
    pos_ipsec: 1        # HIFN_MAC_CMD_POS_IPSEC 0x0200
    _rsvd10: 1
    new_key: 1          # HIFN_MAC_CMD_NEW_KEY 0x0800: a 64-byte key follows
    _rsvd12: 2
    count_hi: 2         # HIFN_MAC_CMD_SRCLEN_M 0xc000: source_count 17:16


class MacCommand(data.Struct):
    """``struct hifn_mac_command`` (8 bytes)."""
    masks: MacMasks
    header_skip: 16     # bytes of the packet before the MAC region
    source_count: 16    # bytes MACed, 15:0
    reserved: 16


class CryptAlg(enum.Enum, shape=2):
    DES = 0             # HIFN_CRYPT_CMD_ALG_DES
    TDES = 1            # HIFN_CRYPT_CMD_ALG_3DES
    RC4 = 2             # HIFN_CRYPT_CMD_ALG_RC4 (refused by the model)
    RSVD = 3            # (refused by the model)


class CryptMode(enum.Enum, shape=2):
    ECB = 0             # HIFN_CRYPT_CMD_MODE_ECB 0x0000 (refused by the model)
    CBC = 1             # HIFN_CRYPT_CMD_MODE_CBC 0x0008
    CFB = 2             # HIFN_CRYPT_CMD_MODE_CFB 0x0010 (refused by the model)
    OFB = 3             # HIFN_CRYPT_CMD_MODE_OFB 0x0018 (refused by the model)


class CryptMasks(data.Struct):
    """``hifn_crypt_command.masks`` (HIFN_CRYPT_CMD_*)."""
    alg: CryptAlg       # HIFN_CRYPT_CMD_ALG_MASK 0x0003
    _rsvd2: 1
    mode: CryptMode     # HIFN_CRYPT_CMD_MODE_MASK 0x0018
    _rsvd5: 1
    clr_ctx: 1          # HIFN_CRYPT_CMD_CLR_CTX 0x0040 (not modelled)
    _rsvd7: 4
    new_key: 1          # HIFN_CRYPT_CMD_NEW_KEY 0x0800: the cipher key follows
    new_iv: 1           # HIFN_CRYPT_CMD_NEW_IV 0x1000: an 8-byte IV follows
    _rsvd13: 1
    count_hi: 2         # HIFN_CRYPT_CMD_SRCLEN_M 0xc000: source_count 17:16


class CryptCommand(data.Struct):
    """``struct hifn_crypt_command`` (8 bytes)."""
    masks: CryptMasks
    header_skip: 16     # bytes of the packet before the cipher region
    source_count: 16    # bytes ciphered, 15:0
    reserved: 16


#: key and IV lengths in the command buffer (HIFN_MAC_KEY_LENGTH, HIFN_IV_LENGTH;
#: DES / 3DES keys as the crypt command's key section)
MAC_KEY_LENGTH = 64
DES_KEY_LENGTH = 8
TDES_KEY_LENGTH = 24
IV_LENGTH = 8
#: longest command buffer: base + MAC + crypt commands + MAC key + 3DES key + IV
MAX_COMMAND = 8 + 8 + 8 + MAC_KEY_LENGTH + TDES_KEY_LENGTH + IV_LENGTH      # 120
#: HIFN_BASE_CMD_LENMASK_LO / _HI: the 18-bit counts split 16 + 2
LENMASK_LO, LENMASK_HI = 0x0FFFF, 0x30000
#: session_num bits that name the session (the rest carry count bits 17:16)
SESSION_MASK = 0x0FFF


# ---------------------------------------------------------------- result buffer
class ResultFlags(data.Struct):
    """``hifn_base_result.flags``."""
    cmdinval: 1         # model's extension: the command was refused (no data phase)
    dataerr: 1          # model's extension: engine length / segment alignment error
    _rsvd2: 7
    dstoverrun: 1       # HIFN_BASE_RES_DSTOVERRUN 0x0200
    _rsvd10: 2
    dst_hi: 2           # HIFN_BASE_RES_DSTLEN_M 0x3000: dst_cnt 17:16
    src_hi: 2           # HIFN_BASE_RES_SRCLEN_M 0xc000: src_cnt 17:16


class BaseResult(data.Struct):
    """``struct hifn_base_result`` (8 bytes)."""
    flags: ResultFlags
    session: 16         # session_num (11:0; the chip writes 15:12 as 0)
    src_count: 16       # bytes read, 15:0
    dst_count: 16       # bytes written, 15:0


class MacResult(data.Struct):
    """``struct hifn_mac_result`` then the MAC (24 bytes)."""
    flags: 16           # written as 0 by the model
    reserved: 16
    mac: 160            # the 20 MAC bytes, in memory order


class Result(data.Struct):
    """A result buffer with MAC RESULT (32 bytes); without it only ``base``
    (8 bytes) is written."""
    base: BaseResult
    mac: MacResult


def _mask(layout, name):
    return _bit(layout, name)


#: result flags (hifn7751reg.h HIFN_BASE_RES_DSTOVERRUN; CMDINVAL and DATAERR
#: are the model's)
BASE_RES_DSTOVERRUN = _mask(ResultFlags, "dstoverrun")     # 0x0200
RES_CMDINVAL = _mask(ResultFlags, "cmdinval")              # 0x0001
RES_DATAERR = _mask(ResultFlags, "dataerr")                # 0x0002
#: bytes of the MAC in a result (SHA-1)
MAC_RESULT_LENGTH = 20
#: bytes of the longest result buffer the model writes (:class:`Result`; OpenBSD's
#: HIFN_MAX_RESULT is 36, room for a compression result the model has not)
MAX_RESULT = 32
