"""Intel 8254x (82544GC-class) gigabit NIC: identity, registers, descriptors.

One header for the RTL (:mod:`hw.cards.em8254x`, :mod:`hw.dma.em_rings`,
:mod:`hw.net.mac`), the driver (:mod:`drivers.em`) and the tests, in the manner
of OpenBSD's ``sys/dev/pci/if_em_hw.h`` (Intel's shared ``e1000_hw.h``, which
QEMU copies as its ``e1000_regs.h``). Names are those headers' without the
``E1000_`` prefix: ``E1000_ICR`` is :data:`ICR`, ``E1000_RCTL_EN`` is
``RCTL.en``, ``E1000_ICR_TXDW`` is ``ICR.txdw`` (and :data:`ICR_TXDW`);
``E1000_CTRL_RST`` is ``CTRL.rst``.

Register offsets and bits: ``if_em_hw.h`` / ``e1000_regs.h`` and the *PCI/PCI-X
Family of Gigabit Ethernet Controllers Software Developer's Manual* (Intel
8254x SDM, §13 registers, §3.2–3.4 descriptors). The 82540 added ITR, RADV
and TADV (em ``if_em.c`` writes them only for ``mac_type >= em_82540``); the
model has them on this 82544GC identity — see docs/em8254x.md.

Access kinds: ICR is read-to-clear (and write-1-to-clear), the statistics
registers are read-to-clear (SDM §13.7); ``Access`` has no read-to-clear kind,
so these fields are kept by the card (``external`` in the register file) and
their docs say so.

Pure Python: nothing here builds hardware.
"""

from amaranth.lib import data

from ..regs import Access, Field, Register, RegisterBlock

__all__ = [
    # identity
    "VENDOR_ID", "DEVICE_ID", "CLASS_CODE", "REVISION", "BAR_SIZE",
    # registers
    "CTRL", "STATUS", "EECD", "EERD", "ICR", "ITR", "ICS", "IMS", "IMC", "RCTL",
    "TCTL", "TIPG", "RDBAL", "RDBAH", "RDLEN", "RDH", "RDT", "RDTR", "RADV",
    "TDBAL", "TDBAH", "TDLEN", "TDH", "TDT", "TIDV", "TADV", "RAL0", "RAH0",
    "STATISTICS", "CRCERRS", "MPC", "GPRC", "GPTC", "GORCL", "GORCH", "GOTCL", "GOTCH",
    "RNBC", "ROC", "TPR", "TPT", "EM_REGS", "MTA_BASE", "MTA_ENTRIES",
    # causes
    "CAUSES", "ICR_TXDW", "ICR_TXQE", "ICR_LSC", "ICR_RXSEQ", "ICR_RXDMT0", "ICR_RXO",
    "ICR_RXT0", "IMS_ENABLE_MASK",
    # fields' values
    "LBM_NONE", "LBM_MAC", "RDMTS_HALF", "RDMTS_QUARTER", "RDMTS_EIGHTH", "STATUS_SPEED_1000",
    "rx_buffer_size",
    # descriptors
    "TxCmd", "TxStatus", "TxDesc", "RxStatus", "RxErrors", "RxDesc", "DESC_BYTES",
    "TXD_CMD_EOP", "TXD_CMD_IFCS", "TXD_CMD_IC", "TXD_CMD_RS", "TXD_CMD_RPS",
    "TXD_CMD_DEXT", "TXD_CMD_VLE", "TXD_CMD_IDE", "TXD_STAT_DD", "RXD_STAT_DD",
    "RXD_STAT_EOP", "RING_ALIGN", "DESC_MULTIPLE",
    # EEPROM, timer units, frames
    "EEPROM_WORDS", "EEPROM_CHECKSUM_REG", "EEPROM_SUM", "eeprom_image",
    "ITR_UNIT_PS", "DELAY_UNIT_PS", "BYTE_PS", "PREAMBLE_BYTES", "FCS_BYTES", "IFG_BYTES",
    "MIN_FRAME", "MAX_FRAME", "PhyBeat",
]

_RW, _RO, _W1C, _WO, _SC = Access.RW, Access.RO, Access.W1C, Access.WO, Access.SC

# ---------------------------------------------------------------------------
# Identity

#: Intel (PCI SIG); OpenBSD sys/dev/pci/pcidevs PCI_VENDOR_INTEL
VENDOR_ID = 0x8086
#: 82544GC copper (if_em_hw.h E1000_DEV_ID_82544GC_COPPER; pcidevs
#: PCI_PRODUCT_INTEL_82544GC_SC)
DEVICE_ID = 0x100C
#: network controller, Ethernet (PCI Code and ID Assignment spec, class 02 sub 00)
CLASS_CODE = 0x020000
#: revision ID the model reports (model's choice)
REVISION = 2
#: BAR0: 128 KiB of memory-mapped registers (SDM §4.1 memory BAR; QEMU
#: e1000.c PNPMMIO_SIZE 0x20000). The I/O BAR is not modelled.
BAR_SIZE = 128 << 10


def _f(name, lsb, width=1, access=_RW, reset=0, doc=""):
    return Field(name, lsb, width, access, reset, doc)


# ---------------------------------------------------------------------------
# General registers (SDM §13.4)

CTRL = Register("CTRL", 0x00000, (
    _f("fd", 0, doc="E1000_CTRL_FD full duplex (stored; the model is always full duplex)"),
    _f("lrst", 3, doc="E1000_CTRL_LRST link reset (stored)"),
    _f("asde", 5, doc="E1000_CTRL_ASDE auto-speed detection (stored)"),
    _f("slu", 6, doc="E1000_CTRL_SLU set link up: STATUS.lu follows it (no PHY model)"),
    _f("speed", 8, 2, doc="E1000_CTRL_SPD_* (2 = 1000 Mb/s; stored)"),
    _f("frcspd", 11, doc="E1000_CTRL_FRCSPD (stored)"),
    _f("frcdpx", 12, doc="E1000_CTRL_FRCDPX (stored)"),
    _f("rst", 26, access=_SC,
       doc="E1000_CTRL_RST device reset: every register, ring and FIFO back to its "
           "reset value once the bus master is between transactions; reads 1 until done"),
    _f("rfce", 27, doc="E1000_CTRL_RFCE receive flow control (stored; no PAUSE frames)"),
    _f("tfce", 28, doc="E1000_CTRL_TFCE transmit flow control (stored)"),
    _f("vme", 30, doc="E1000_CTRL_VME VLAN mode (stored)"),
    _f("phy_rst", 31, doc="E1000_CTRL_PHY_RST (stored)"),
), doc="E1000_CTRL: device control")

#: STATUS.speed value for 1000 Mb/s (E1000_STATUS_SPEED_1000 0x80 >> 6)
STATUS_SPEED_1000 = 2

STATUS = Register("STATUS", 0x00008, (
    _f("fd", 0, access=_RO, reset=1, doc="E1000_STATUS_FD: full duplex (always)"),
    _f("lu", 1, access=_RO, doc="E1000_STATUS_LU link up (= CTRL.slu)"),
    _f("txoff", 4, access=_RO, doc="E1000_STATUS_TXOFF (never: no flow control)"),
    _f("tbimode", 5, access=_RO, doc="E1000_STATUS_TBIMODE: 0, copper (82544GC)"),
    _f("speed", 6, 2, access=_RO, reset=STATUS_SPEED_1000,
       doc="E1000_STATUS_SPEED_*: 1000 Mb/s"),
    _f("pci66", 11, access=_RO, doc="E1000_STATUS_PCI66: bus clock is 66 MHz "
                                    "(elaboration parameter)"),
    _f("bus64", 12, access=_RO, doc="E1000_STATUS_BUS64: 64-bit bus (0: the card "
                                    "runs 32-bit)"),
    _f("pcix_mode", 13, access=_RO, doc="E1000_STATUS_PCIX_MODE: 0, conventional PCI"),
), doc="E1000_STATUS: device status (read only)")

EECD = Register("EECD", 0x00010, (
    _f("sk", 0, doc="E1000_EECD_SK clock (stored; bit-banged access is not modelled)"),
    _f("cs", 1, doc="E1000_EECD_CS chip select (stored)"),
    _f("di", 2, doc="E1000_EECD_DI data in (stored)"),
    _f("do", 3, access=_RO, doc="E1000_EECD_DO data out (reads 0)"),
    _f("pres", 8, access=_RO, reset=1, doc="E1000_EECD_PRES: an EEPROM is present"),
), doc="E1000_EECD: EEPROM/flash control")

EERD = Register("EERD", 0x00014, (
    _f("start", 0, access=_SC, doc="E1000_EEPROM_RW_REG_START: read word ``addr``; "
                                   "reads 0 (the read is done in one clock)"),
    _f("done", 4, access=_RO, doc="E1000_EEPROM_RW_REG_DONE: ``data`` holds the word; "
                                  "cleared by the next start"),
    _f("addr", 8, 8, doc="E1000_EEPROM_RW_ADDR_SHIFT 8: word address"),
    _f("data", 16, 16, access=_RO, doc="E1000_EEPROM_RW_REG_DATA 16: the word read"),
), doc="E1000_EERD: EEPROM read (82540 SDM §13.4.4; QEMU e1000 set_eecd/EERD)")

# ---------------------------------------------------------------------------
# Interrupt causes (SDM §13.4.17-21; e1000_regs.h E1000_ICR_*)

#: (field name, bit, doc) of each cause bit of ICR / ICS / IMS / IMC
CAUSES = (
    ("txdw", 0, "E1000_ICR_TXDW: transmit descriptor written back"),
    ("txqe", 1, "E1000_ICR_TXQE: transmit queue empty"),
    ("lsc", 2, "E1000_ICR_LSC: link status change"),
    ("rxseq", 3, "E1000_ICR_RXSEQ: receive sequence error (never raised: no TBI)"),
    ("rxdmt0", 4, "E1000_ICR_RXDMT0: receive descriptors at the minimum threshold"),
    ("rxo", 6, "E1000_ICR_RXO: receiver FIFO overrun (a frame was dropped)"),
    ("rxt0", 7, "E1000_ICR_RXT0: receiver timer interrupt (a frame is in host memory)"),
    ("mdac", 9, "E1000_ICR_MDAC: MDI/O access complete (never raised: no MDIC)"),
    ("rxcfg", 10, "E1000_ICR_RXCFG (never raised)"),
    ("gpi", 11, "E1000_ICR_GPI_EN0..3 general purpose interrupts (never raised)", 4),
    ("txd_low", 15, "E1000_ICR_TXD_LOW (never raised)"),
    ("srpd", 16, "E1000_ICR_SRPD small receive packet (never raised)"),
)


def _cause_fields(access, verb):
    out = []
    for c in CAUSES:
        name, bit, doc = c[:3]
        width = c[3] if len(c) > 3 else 1
        out.append(Field(name, bit, width, access, doc=f"{doc} ({verb})"))
    return tuple(out)


ICR = Register("ICR", 0x000C0, _cause_fields(_W1C, "read clears; write 1 clears"),
               doc="E1000_ICR: interrupt cause read; a read returns and clears every "
                   "cause (read-to-clear, kept by the card)")
ITR = Register("ITR", 0x000C4, (
    _f("interval", 0, 16, doc="minimum gap between interrupt assertions in 256 ns "
                              "units (E1000_ITR; 0 = no throttling)"),
), doc="E1000_ITR: interrupt throttling (82540+)")
ICS = Register("ICS", 0x000C8, _cause_fields(_WO, "write 1 sets the cause"),
               doc="E1000_ICS: interrupt cause set")
IMS = Register("IMS", 0x000D0, _cause_fields(_RW, "write 1 enables; reads the mask"),
               doc="E1000_IMS: interrupt mask set/read (kept by the card)")
IMC = Register("IMC", 0x000D8, _cause_fields(_WO, "write 1 disables"),
               doc="E1000_IMC: interrupt mask clear")

ICR_TXDW, ICR_TXQE, ICR_LSC, ICR_RXSEQ, ICR_RXDMT0, ICR_RXO, ICR_RXT0 = (
    ICR.field(n).mask for n in ("txdw", "txqe", "lsc", "rxseq", "rxdmt0", "rxo", "rxt0"))
#: the causes the era driver enables (if_em_hw.h IMS_ENABLE_MASK)
IMS_ENABLE_MASK = ICR_RXT0 | ICR_TXDW | ICR_RXDMT0 | ICR_RXSEQ | ICR_LSC

# ---------------------------------------------------------------------------
# Receive and transmit control (SDM §13.4.22, §13.4.33, §13.4.34)

#: RCTL.lbm: no loopback / MAC loopback (E1000_RCTL_LBM_NO 0, E1000_RCTL_LBM_MAC 0x40)
LBM_NONE, LBM_MAC = 0, 1
#: RCTL.rdmts: free-descriptor threshold 1/2, 1/4, 1/8 of the ring (E1000_RCTL_RDMTS_*)
RDMTS_HALF, RDMTS_QUARTER, RDMTS_EIGHTH = 0, 1, 2

RCTL = Register("RCTL", 0x00100, (
    _f("en", 1, doc="E1000_RCTL_EN receiver enable"),
    _f("sbp", 2, doc="E1000_RCTL_SBP store bad packets (stored)"),
    _f("upe", 3, doc="E1000_RCTL_UPE unicast promiscuous"),
    _f("mpe", 4, doc="E1000_RCTL_MPE multicast promiscuous"),
    _f("lpe", 5, doc="E1000_RCTL_LPE long packets (stored: frames stay <= MAX_FRAME)"),
    _f("lbm", 6, 2, doc="E1000_RCTL_LBM: LBM_MAC loops the MAC's transmit side "
                        "into its receive side"),
    _f("rdmts", 8, 2, doc="E1000_RCTL_RDMTS_*: RXDMT0 threshold"),
    _f("mo", 12, 2, doc="E1000_RCTL_MO multicast offset (stored; no MTA filter)"),
    _f("bam", 15, doc="E1000_RCTL_BAM accept broadcast"),
    _f("bsize", 16, 2, doc="E1000_RCTL_SZ_*: receive buffer size (rx_buffer_size)"),
    _f("vfe", 18, doc="E1000_RCTL_VFE VLAN filter (stored)"),
    _f("bsex", 25, doc="E1000_RCTL_BSEX buffer size extension (x16)"),
    _f("secrc", 26, doc="E1000_RCTL_SECRC strip CRC (stored: the FCS always "
                        "reaches host memory, as em expects)"),
), doc="E1000_RCTL: receive control")


def rx_buffer_size(bsize: int, bsex: int) -> int:
    """Bytes of a receive buffer for RCTL.bsize / RCTL.bsex (E1000_RCTL_SZ_*:
    2048, 1024, 512, 256; with BSEX 16384, 8192, 4096 for 1..3)."""
    if bsex:
        if bsize == 0:
            raise ValueError("RCTL BSEX with BSIZE 0 is reserved")
        return 16384 >> (bsize - 1)
    return 2048 >> bsize


TCTL = Register("TCTL", 0x00400, (
    _f("en", 1, doc="E1000_TCTL_EN transmitter enable"),
    _f("psp", 3, doc="E1000_TCTL_PSP pad short packets to 64 bytes with the FCS"),
    _f("ct", 4, 8, doc="E1000_TCTL_CT collision threshold (stored: full duplex)"),
    _f("cold", 12, 10, doc="E1000_TCTL_COLD collision distance (stored)"),
    _f("swxoff", 22, doc="E1000_TCTL_SWXOFF (stored)"),
    _f("rtlc", 24, doc="E1000_TCTL_RTLC (stored)"),
), doc="E1000_TCTL: transmit control")

TIPG = Register("TIPG", 0x00410, (
    _f("ipgt", 0, 10, doc="IPG transmit time (stored: the MAC keeps IEEE 802.3's "
                          "96-bit gap)"),
    _f("ipgr1", 10, 10, doc="E1000_TIPG_IPGR1_SHIFT 10 (stored)"),
    _f("ipgr2", 20, 10, doc="E1000_TIPG_IPGR2_SHIFT 20 (stored)"),
), doc="E1000_TIPG: transmit inter-packet gap")

# ---------------------------------------------------------------------------
# Descriptor rings (SDM §13.4.25-32, §13.4.37-44)

#: RDLEN/TDLEN are multiples of 128 bytes = 8 descriptors (SDM §3.2.6, §3.4;
#: if_em_hw.h E1000_REQ_TX_DESCRIPTOR_MULTIPLE 8)
RING_ALIGN = 128
DESC_MULTIPLE = 8


def _ring_regs(prefix, base, what):
    bal = Register(f"{prefix}BAL", base + 0x00, (
        _f("addr", 4, 28, doc="base address bits 31:4 (16-byte aligned)"),
    ), doc=f"E1000_{prefix}BAL: {what} ring base, low 32 bits")
    bah = Register(f"{prefix}BAH", base + 0x04, (
        _f("addr", 0, 32, doc="base address bits 63:32 (must be 0: 32-bit bus)"),
    ), doc=f"E1000_{prefix}BAH: {what} ring base, high 32 bits")
    dlen = Register(f"{prefix}LEN", base + 0x08, (
        _f("len", 7, 13, doc="ring length in bytes, bits 19:7 (a multiple of 128)"),
    ), doc=f"E1000_{prefix}LEN: {what} ring length")
    head = Register(f"{prefix}H", base + 0x10, (
        _f("head", 0, 16, doc="the card's position (kept by the ring engine; write "
                              "only while the unit is disabled)"),
    ), doc=f"E1000_{prefix}H: {what} descriptor head")
    tail = Register(f"{prefix}T", base + 0x18, (
        _f("tail", 0, 16, doc="one past the last descriptor software hands over"),
    ), doc=f"E1000_{prefix}T: {what} descriptor tail")
    return bal, bah, dlen, head, tail


RDBAL, RDBAH, RDLEN, RDH, RDT = _ring_regs("RD", 0x02800, "receive")
TDBAL, TDBAH, TDLEN, TDH, TDT = _ring_regs("TD", 0x03800, "transmit")

RDTR = Register("RDTR", 0x02820, (
    _f("delay", 0, 16, doc="receive delay, 1.024 us units: RXT0 this long after the "
                           "last frame (restarted by each frame; 0 = at once)"),
    _f("fpd", 31, access=_WO, doc="E1000_RDT_FPDB flush partial descriptor block: a "
                                  "pending receive timer fires now"),
), doc="E1000_RDTR: receive delay timer")
RADV = Register("RADV", 0x0282C, (
    _f("delay", 0, 16, doc="absolute receive delay, 1.024 us units, from the first "
                           "frame after RXT0 (only while RDTR.delay != 0; 82540+)"),
), doc="E1000_RADV: receive interrupt absolute delay")
TIDV = Register("TIDV", 0x03820, (
    _f("delay", 0, 16, doc="transmit delay for IDE descriptors, 1.024 us units, "
                           "restarted by each (0 = at once)"),
), doc="E1000_TIDV: transmit interrupt delay value")
TADV = Register("TADV", 0x0382C, (
    _f("delay", 0, 16, doc="absolute transmit delay, 1.024 us units, from the first "
                           "IDE write-back after TXDW (82540+)"),
), doc="E1000_TADV: transmit absolute interrupt delay")

# ---------------------------------------------------------------------------
# Statistics (SDM §13.7): read-to-clear counters, kept by the card


def _stat(name, offset, doc):
    return Register(name, offset, (
        _f("count", 0, 32, access=_RO, doc="read clears (kept by the card)"),
    ), doc=f"E1000_{name}: {doc}")


CRCERRS = _stat("CRCERRS", 0x04000, "frames received with a bad FCS")
MPC = _stat("MPC", 0x04010, "missed packets: dropped for lack of receive FIFO room")
GPRC = _stat("GPRC", 0x04074, "good packets received")
GPTC = _stat("GPTC", 0x04080, "good packets transmitted")
GORCL = _stat("GORCL", 0x04088, "good octets received, low 32 bits (destination "
                                "address to FCS); not cleared by its read")
GORCH = _stat("GORCH", 0x0408C, "good octets received, high 32 bits; its read clears "
                                "the 64-bit count")
GOTCL = _stat("GOTCL", 0x04090, "good octets transmitted, low 32 bits; not cleared by "
                                "its read")
GOTCH = _stat("GOTCH", 0x04094, "good octets transmitted, high 32 bits; its read "
                                "clears the 64-bit count")
RNBC = _stat("RNBC", 0x040A0, "frames that found no free receive descriptor (they "
                              "wait in the FIFO)")
ROC = _stat("ROC", 0x040AC, "oversize frames received (longer than MAX_FRAME)")
TPR = _stat("TPR", 0x040D0, "total packets received")
TPT = _stat("TPT", 0x040D4, "total packets transmitted")
#: the modelled counters, in offset order
STATISTICS = (CRCERRS, MPC, GPRC, GPTC, GORCL, GORCH, GOTCL, GOTCH, RNBC, ROC, TPR, TPT)

# ---------------------------------------------------------------------------
# Receive address (SDM §13.5.1-2)

#: multicast table array: 128 dwords from 0x5200 (E1000_MTA, E1000_MC_TBL_SIZE);
#: not modelled (no multicast filter): not in EM_REGS, the card ignores it
MTA_BASE, MTA_ENTRIES = 0x05200, 128

RAL0 = Register("RAL0", 0x05400, (
    _f("addr", 0, 32, doc="station address bytes 0-3 (byte 0 in bits 7:0); reset "
                          "from the EEPROM"),
), doc="E1000_RA[0] low: receive address 0")
RAH0 = Register("RAH0", 0x05404, (
    _f("addr", 0, 16, doc="station address bytes 4-5; reset from the EEPROM"),
    _f("asel", 16, 2, doc="E1000_RAH_ASEL: 0, destination address (stored)"),
    _f("av", 31, reset=1, doc="E1000_RAH_AV address valid"),
), doc="E1000_RA[0] high: receive address 0")

#: BAR0
EM_REGS = RegisterBlock("em", (
    CTRL, STATUS, EECD, EERD, ICR, ITR, ICS, IMS, IMC, RCTL, TCTL, TIPG,
    RDBAL, RDBAH, RDLEN, RDH, RDT, RDTR, RADV, TDBAL, TDBAH, TDLEN, TDH, TDT, TIDV, TADV,
    *STATISTICS, RAL0, RAH0,
), size=BAR_SIZE)

# ---------------------------------------------------------------------------
# Legacy descriptors (SDM §3.2.3 receive, §3.3.3 transmit): 16 bytes, little-endian


class TxCmd(data.Struct):
    """Legacy transmit ``cmd`` byte (E1000_TXD_CMD_* >> 24)."""
    eop: 1            # end of packet
    ifcs: 1           # insert FCS
    ic: 1             # insert checksum (not modelled)
    rs: 1             # report status: write DD back
    rps: 1            # report packet sent (82544: treated as RS)
    dext: 1           # extended descriptor (not modelled: consumed without data)
    vle: 1            # VLAN tag insertion (not modelled)
    ide: 1            # interrupt delay enable (TIDV / TADV)


class TxStatus(data.Struct):
    """Legacy transmit ``status`` byte (E1000_TXD_STAT_*)."""
    dd: 1             # descriptor done
    ec: 1             # excess collisions
    lc: 1             # late collision
    tu: 1             # transmit underrun
    rsv: 4


class TxDesc(data.Struct):
    """``struct em_tx_desc`` (legacy: DEXT = 0)."""
    addr: 64          # buffer_addr
    length: 16        # lower.flags.length
    cso: 8            # lower.flags.cso
    cmd: TxCmd        # lower.flags.cmd
    status: TxStatus  # upper.fields.status
    css: 8            # upper.fields.css
    special: 16       # upper.fields.special


class RxStatus(data.Struct):
    """Receive ``status`` byte (E1000_RXD_STAT_*)."""
    dd: 1
    eop: 1
    ixsm: 1           # ignore checksum indication (the model sets it: no offload)
    vp: 1
    udpcs: 1
    tcpcs: 1
    ipcs: 1
    pif: 1


class RxErrors(data.Struct):
    """Receive ``errors`` byte (E1000_RXD_ERR_*)."""
    ce: 1             # CRC error
    se: 1             # symbol error
    seq: 1            # sequence error
    rsv: 1
    cxe: 1            # carrier extension error
    tcpe: 1
    ipe: 1
    rxe: 1


class RxDesc(data.Struct):
    """``struct em_rx_desc``."""
    addr: 64          # buffer_addr
    length: 16        # bytes written to the buffer (FCS included)
    csum: 16          # packet checksum (0: no offload)
    status: RxStatus
    errors: RxErrors
    special: 16


DESC_BYTES = 16
assert TxDesc.as_shape().size == RxDesc.as_shape().size == 8 * DESC_BYTES

# the masks as e1000_hw.h writes them, in the dword that holds them
TXD_CMD_EOP, TXD_CMD_IFCS, TXD_CMD_IC, TXD_CMD_RS = 0x01000000, 0x02000000, 0x04000000, 0x08000000
TXD_CMD_RPS, TXD_CMD_DEXT, TXD_CMD_VLE, TXD_CMD_IDE = 0x10000000, 0x20000000, 0x40000000, 0x80000000
TXD_STAT_DD = 0x00000001
RXD_STAT_DD, RXD_STAT_EOP = 0x01, 0x02


def _dword_mask(layout, *path) -> int:
    """Mask of a (nested) field within the dword that holds it."""
    lay, off, width = layout, 0, 0
    for p in path:
        f = data.Layout.cast(lay)[p]
        off, lay, width = off + f.offset, f.shape, f.width
    return ((1 << width) - 1) << (off % 32)


for _name, _mask in (("eop", TXD_CMD_EOP), ("ifcs", TXD_CMD_IFCS), ("ic", TXD_CMD_IC),
                     ("rs", TXD_CMD_RS), ("rps", TXD_CMD_RPS), ("dext", TXD_CMD_DEXT),
                     ("vle", TXD_CMD_VLE), ("ide", TXD_CMD_IDE)):
    assert _dword_mask(TxDesc, "cmd", _name) == _mask, _name
assert _dword_mask(TxDesc, "status", "dd") == TXD_STAT_DD
assert _dword_mask(RxStatus, "dd") == RXD_STAT_DD and _dword_mask(RxStatus, "eop") == RXD_STAT_EOP

# ---------------------------------------------------------------------------
# EEPROM (SDM §5.6: words 0-2 the Ethernet address, word 0x3F the checksum)

EEPROM_WORDS = 64
#: if_em_hw.h EEPROM_CHECKSUM_REG, EEPROM_SUM: words 0..0x3F sum to 0xBABA
EEPROM_CHECKSUM_REG = 0x3F
EEPROM_SUM = 0xBABA


def eeprom_image(mac: bytes) -> list[int]:
    """The 64 EEPROM words the card holds for Ethernet address ``mac``:
    words 0-2 the address (byte 2k in the low byte of word k), word 0x3F
    the checksum, the rest 0."""
    mac = bytes(mac)
    if len(mac) != 6:
        raise ValueError(f"an Ethernet address has 6 bytes, not {len(mac)}")
    words = [0] * EEPROM_WORDS
    for k in range(3):
        words[k] = mac[2 * k] | mac[2 * k + 1] << 8
    words[EEPROM_CHECKSUM_REG] = (EEPROM_SUM - sum(words)) & 0xFFFF
    return words

# ---------------------------------------------------------------------------
# Timer units and the wire


#: ITR counts 256 ns (SDM §13.4.18: "in 256 ns increments")
ITR_UNIT_PS = 256_000
#: RDTR, RADV, TIDV, TADV count 1.024 us (SDM §13.4.29/13.4.30/13.4.41/13.4.43)
DELAY_UNIT_PS = 1_024_000
#: one byte on a 1000BASE-T wire: 8 bit times of 1 ns (IEEE 802.3 §1.4, §35)
BYTE_PS = 8_000
#: preamble (7 bytes 0x55) and SFD (0xD5) before every frame (IEEE 802.3 §3.2.1-2)
PREAMBLE_BYTES = 8
#: frame check sequence: CRC-32 (IEEE 802.3 §3.2.9)
FCS_BYTES = 4
#: inter-frame gap: 96 bit times (IEEE 802.3 §4.4.2)
IFG_BYTES = 12
#: shortest frame with its FCS (IEEE 802.3 §4.4.2 minFrameSize 512 bits)
MIN_FRAME = 64
#: longest frame the receive side takes, with FCS and a VLAN tag (IEEE 802.3 §3.5:
#: 1518 + 4); longer ones are dropped and counted in ROC
MAX_FRAME = 1522


class PhyBeat(data.Struct):
    """One beat of the card's ``phy`` streams: up to four wire bytes, byte 0 in
    bits 7:0. A frame starts (``first``) with its preamble and SFD and ends
    (``last``) with its FCS; every beat but the last of a frame carries four
    bytes (``n`` = 1..4 on the last). The streams have no back-pressure: a wire
    does not wait."""
    data: 32
    n: 3
    first: 1
    last: 1
