"""The PCI configuration header and bus command codes: one description.

Registers of the type-0 configuration header (*PCI Local Bus Specification*
2.3 §6.1, figure 6-1, and §6.2) and of the type-1 (PCI-to-PCI bridge)
header (*PCI-to-PCI Bridge Architecture Specification* 1.1 §3.2,
:data:`TYPE1_HEADER`), as :class:`hw.regs.Register` objects: the target
core (:mod:`hw.pci.target`), the cards, the drivers and the tests all take
offsets and bits from here, as OpenBSD's ``sys/dev/pci/pcireg.h`` does.

Each register is described at its own offset and width: COMMAND (0x04) and
STATUS (0x06) are two 16-bit registers sharing the dword at 0x04, so
``STATUS.received_master_abort.mask`` is the bit in the 16-bit status
register (bit 13), as the spec numbers it. :data:`TYPE0_HEADER` lists the
type-0 registers in offset order; :func:`bar` gives BARn.

Access kinds are the spec's: W1C for the status error bits ("writing a 1
clears", §6.2.3), RO for what the function hard-wires. Which COMMAND bits a
given function implements is the function's choice (§6.2.2): see
``hw.pci.target.COMMAND_WRITABLE``.

Bus commands (C/BE#[3:0] in the address phase, §3.1.1 table 3-1) are
:class:`hw.pci.bus.Cmd`, re-exported here.

Pure Python: nothing here builds hardware.
"""

from ..regs import Access, Field, Register
from .bus import Cmd

__all__ = [
    "Cmd",
    # type 0
    "ID", "COMMAND", "STATUS", "CLASS", "HEADER", "BARS", "bar", "bar_upper", "CARDBUS_CIS",
    "SUBSYSTEM", "EXPANSION_ROM", "CAPABILITIES", "INTERRUPT", "TYPE0_HEADER",
    "HEADER_SIZE", "DEVSEL_FAST", "DEVSEL_MEDIUM", "DEVSEL_SLOW",
    "HEADER_TYPE_NORMAL", "HEADER_TYPE_BRIDGE", "BAR_MEM_32", "BAR_MEM_64",
    "BAR_MEM_MASK", "INTERRUPT_PIN_NONE", "INTERRUPT_PIN_INTA",
    # type 1
    "BUS_NUMBERS", "MEMORY_WINDOW", "PREFETCH_WINDOW", "BRIDGE_CONTROL",
    "IO_WINDOW", "SECONDARY_STATUS", "PREFETCH_BASE_UPPER", "PREFETCH_LIMIT_UPPER",
    "IO_UPPER", "BRIDGE_ROM", "BRIDGE_INTERRUPT", "TYPE1_HEADER", "WINDOW_SHIFT",
    "WINDOW_GRANULE", "window_bounds", "CONFIG_TYPE_0", "CONFIG_TYPE_1", "CONFIG_ADDRESS",
]

RO, RW, W1C = Access.RO, Access.RW, Access.W1C

#: bytes of the predefined header (PCI 2.3 §6.1: the first 64 of 256)
HEADER_SIZE = 64

# ---------------------------------------------------------------------------
# Type-0 header (PCI 2.3 §6.2.1 device identification)

ID = Register("ID", 0x00, (
    Field("vendor_id", 0, 16, RO, doc="PCI-SIG vendor (0xFFFF: no device, §6.2.1)"),
    Field("device_id", 16, 16, RO, doc="vendor-assigned device"),
), doc="Vendor ID / Device ID (§6.2.1)")

COMMAND = Register("COMMAND", 0x04, (
    Field("io_space", 0, doc="respond to I/O space accesses"),
    Field("memory_space", 1, doc="respond to memory space accesses"),
    Field("bus_master", 2, doc="may act as a bus master"),
    Field("special_cycles", 3, doc="monitor Special Cycle operations"),
    Field("mwi_enable", 4, doc="may generate Memory Write and Invalidate"),
    Field("vga_palette_snoop", 5),
    Field("parity_error_response", 6, doc="act on parity errors"),
    Field("serr_enable", 8, doc="SERR# driver enable"),
    Field("fast_b2b_enable", 9, doc="fast back-to-back to different targets"),
    Field("intx_disable", 10, doc="Interrupt Disable: INTx# not asserted"),
), width=16, doc="Command (§6.2.2, figure 6-2); reset 0")

#: DEVSEL timing codes of STATUS.devsel_timing (§6.2.3)
DEVSEL_FAST, DEVSEL_MEDIUM, DEVSEL_SLOW = 0, 1, 2

STATUS = Register("STATUS", 0x06, (
    Field("interrupt_status", 3, access=RO, doc="the function's INTx# is pending"),
    Field("capabilities_list", 4, access=RO, doc="CAPABILITIES points to a list"),
    Field("mhz66_capable", 5, access=RO, doc="66 MHz capable"),
    Field("fast_b2b_capable", 7, access=RO, doc="fast back-to-back capable (target)"),
    Field("master_data_parity_error", 8, access=W1C),
    Field("devsel_timing", 9, 2, RO, doc="DEVSEL_FAST / _MEDIUM / _SLOW"),
    Field("signaled_target_abort", 11, access=W1C,
          doc="this target terminated a transaction with target abort"),
    Field("received_target_abort", 12, access=W1C,
          doc="this master's transaction ended in target abort"),
    Field("received_master_abort", 13, access=W1C,
          doc="this master's transaction ended in master abort (not Special Cycle)"),
    Field("signaled_system_error", 14, access=W1C, doc="this device asserted SERR#"),
    Field("detected_parity_error", 15, access=W1C),
), width=16, doc="Status (§6.2.3, figure 6-3)")

CLASS = Register("CLASS", 0x08, (
    Field("revision_id", 0, 8, RO),
    Field("class_code", 8, 24, RO, doc="base class, sub-class, programming interface "
                                       "(PCI Code and ID Assignment spec)"),
), doc="Revision ID / Class Code (§6.2.1)")

#: HEADER.header_type layouts (§6.2.1; type 1: PCI-to-PCI bridge)
HEADER_TYPE_NORMAL, HEADER_TYPE_BRIDGE = 0x00, 0x01

HEADER = Register("HEADER", 0x0C, (
    Field("cache_line_size", 0, 8, RW, doc="in dwords (§6.2.4)"),
    Field("latency_timer", 8, 8, RW, doc="in bus clocks (§6.2.4, §3.5.4)"),
    Field("header_type", 16, 7, RO, doc="HEADER_TYPE_NORMAL or _BRIDGE"),
    Field("multi_function", 23, access=RO),
    Field("bist", 24, 8, RO, doc="0: no built-in self test"),
), doc="Cache Line Size / Latency Timer / Header Type / BIST (§6.2.1, §6.2.4)")

#: BAR memory types (bits 2:1, §6.2.5.1)
BAR_MEM_32, BAR_MEM_64 = 0b00, 0b10
#: the address bits of a memory BAR (bits 3:0 are the type, §6.2.5.1)
BAR_MEM_MASK = 0xFFFF_FFF0
#: a 64-bit BAR's upper register holds address bits 63:32 (§6.2.5.1)
BAR_UPPER_LSB = 32
#: the addresses a 64-bit BAR spans
BAR64_SPAN = (1 << 64) - 1


def _bar(i: int) -> Register:
    return Register(f"BAR{i}", 0x10 + 4 * i, (
        Field("io_space", 0, access=RO, doc="0: memory space BAR"),
        Field("type", 1, 2, RO, doc="BAR_MEM_32 / BAR_MEM_64"),
        Field("prefetchable", 3, access=RO),
        Field("base", 4, 28, RW, doc="address bits 31:4; the bits below the "
                                     "BAR's size read 0 (sizing, §6.2.5.1)"),
    ), doc=f"Base Address Register {i}, memory layout (§6.2.5.1)")


#: BAR0 .. BAR5 (0x10 .. 0x24)
BARS = tuple(_bar(i) for i in range(6))


def bar(i: int) -> Register:
    """Base Address Register ``i`` (0..5)."""
    return BARS[i]


def _bar_upper(i: int) -> Register:
    return Register(f"BAR{i}_UPPER", 0x10 + 4 * i, (
        Field("base_hi", 0, 32, RW, doc="address bits 63:32 of the 64-bit BAR "
                                        "below; sizing writes all ones here too"),
    ), doc=f"BAR{i} as the upper dword of the 64-bit memory BAR in BAR{i - 1} "
           "(type BAR_MEM_64, §6.2.5.1)")


#: BAR1 .. BAR5 read as the upper halves of 64-bit BARs (index = register)
BARS_UPPER = {i: _bar_upper(i) for i in range(1, 6)}


def bar_upper(i: int) -> Register:
    """Register ``i`` (1..5) as the upper dword of a 64-bit BAR in ``i - 1``."""
    return BARS_UPPER[i]


CARDBUS_CIS = Register("CARDBUS_CIS", 0x28, (
    Field("pointer", 0, 32, RO),), doc="CardBus CIS Pointer (§6.2.5.1); 0")

SUBSYSTEM = Register("SUBSYSTEM", 0x2C, (
    Field("subsystem_vendor_id", 0, 16, RO),
    Field("subsystem_id", 16, 16, RO),
), doc="Subsystem Vendor ID / Subsystem ID (§6.2.5.1)")

EXPANSION_ROM = Register("EXPANSION_ROM", 0x30, (
    Field("enable", 0), Field("base", 11, 21),
), doc="Expansion ROM Base Address (§6.2.5.2); not implemented (reads 0)")

CAPABILITIES = Register("CAPABILITIES", 0x34, (
    Field("pointer", 0, 8, RO, doc="offset of the first capability (§6.7)"),
), doc="Capabilities Pointer (§6.2.5.1)")

#: INTERRUPT.interrupt_pin values (§6.2.4: 1 = INTA# .. 4 = INTD#)
INTERRUPT_PIN_NONE, INTERRUPT_PIN_INTA = 0, 1

INTERRUPT = Register("INTERRUPT", 0x3C, (
    Field("interrupt_line", 0, 8, RW, doc="routing, for software only"),
    Field("interrupt_pin", 8, 8, RO, doc="0 none, 1 INTA# .. 4 INTD#"),
    Field("min_gnt", 16, 8, RO, doc="burst period wanted, 1/4 µs units"),
    Field("max_lat", 24, 8, RO, doc="how often access is needed, 1/4 µs units"),
), doc="Interrupt Line / Interrupt Pin / Min_Gnt / Max_Lat (§6.2.4)")

#: the type-0 header registers, in offset order
TYPE0_HEADER = (ID, COMMAND, STATUS, CLASS, HEADER, *BARS, CARDBUS_CIS, SUBSYSTEM,
                EXPANSION_ROM, CAPABILITIES, INTERRUPT)

# ---------------------------------------------------------------------------
# Type-1 header: PCI-to-PCI bridge (Bridge Architecture Spec 1.1 §3.2);
# BAR0/BAR1, the identification dwords and COMMAND/STATUS are as type 0.

BUS_NUMBERS = Register("BUS_NUMBERS", 0x18, (
    Field("primary_bus", 0, 8), Field("secondary_bus", 8, 8),
    Field("subordinate_bus", 16, 8), Field("secondary_latency_timer", 24, 8),
), doc="Primary / Secondary / Subordinate Bus Number, Secondary Latency Timer (§3.2.5.2-5)")

MEMORY_WINDOW = Register("MEMORY_WINDOW", 0x20, (
    Field("base", 4, 12, doc="address bits 31:20 of the window's base"),
    Field("limit", 20, 12, doc="address bits 31:20 of the window's last MiB"),
), doc="Memory Base / Memory Limit (§3.2.5.8)")

PREFETCH_WINDOW = Register("PREFETCH_WINDOW", 0x24, (
    Field("type_64", 0, access=RO), Field("base", 4, 12),
    Field("limit_64", 16, access=RO), Field("limit", 20, 12),
), doc="Prefetchable Memory Base / Limit (§3.2.5.9)")

BRIDGE_CONTROL = Register("BRIDGE_CONTROL", 0x3E, (
    Field("parity_error_response", 0), Field("serr_enable", 1),
    Field("isa_enable", 2), Field("vga_enable", 3),
    Field("master_abort_mode", 5, doc="1: report a master abort as target abort"),
    Field("secondary_bus_reset", 6),
    Field("fast_b2b_enable", 7),
), width=16, doc="Bridge Control (§3.2.5.18)")

#: memory windows are 1 MiB aligned: the base/limit fields hold address bits
#: 31:20 (Bridge Architecture Spec 1.1 §3.2.5.8; Linux pci_regs.h
#: PCI_MEMORY_RANGE_MASK); a window's limit covers the whole last MiB
WINDOW_SHIFT = 20
WINDOW_GRANULE = 1 << WINDOW_SHIFT

IO_WINDOW = Register("IO_WINDOW", 0x1C, (
    Field("io_base", 0, 8, RO, doc="I/O address bits 15:12 in 7:4; 0: no I/O window"),
    Field("io_limit", 8, 8, RO),
), width=16, doc="I/O Base / I/O Limit (§3.2.5.6); the model forwards no I/O, so "
                 "both read 0 (the spec lets a bridge without I/O hard-wire them)")

SECONDARY_STATUS = Register("SECONDARY_STATUS", 0x1E, (
    Field("mhz66_capable", 5, access=RO),
    Field("fast_b2b_capable", 7, access=RO),
    Field("master_data_parity_error", 8, access=W1C),
    Field("devsel_timing", 9, 2, RO, doc="the bridge's secondary-side target timing"),
    Field("signaled_target_abort", 11, access=W1C),
    Field("received_target_abort", 12, access=W1C,
          doc="the bridge's secondary-side master saw a target abort"),
    Field("received_master_abort", 13, access=W1C,
          doc="the bridge's secondary-side master saw a master abort"),
    Field("received_system_error", 14, access=W1C),
    Field("detected_parity_error", 15, access=W1C),
), width=16, doc="Secondary Status (§3.2.5.7): STATUS for the secondary interface")

PREFETCH_BASE_UPPER = Register("PREFETCH_BASE_UPPER", 0x28, (
    Field("base_hi", 0, 32, RO, doc="address bits 63:32; 0 with a 32-bit window"),
), doc="Prefetchable Base Upper 32 Bits (§3.2.5.10)")

PREFETCH_LIMIT_UPPER = Register("PREFETCH_LIMIT_UPPER", 0x2C, (
    Field("limit_hi", 0, 32, RO),
), doc="Prefetchable Limit Upper 32 Bits (§3.2.5.10)")

IO_UPPER = Register("IO_UPPER", 0x30, (
    Field("io_base_hi", 0, 16, RO), Field("io_limit_hi", 16, 16, RO),
), doc="I/O Base / Limit Upper 16 Bits (§3.2.5.6); 0")

BRIDGE_ROM = Register("BRIDGE_ROM", 0x38, (
    Field("enable", 0, access=RO), Field("base", 11, 21, RO),
), doc="Expansion ROM Base Address of a type-1 header (§3.2.5.16); not implemented")

BRIDGE_INTERRUPT = Register("BRIDGE_INTERRUPT", 0x3C, (
    Field("interrupt_line", 0, 8, RW),
    Field("interrupt_pin", 8, 8, RO, doc="0: the bridge itself signals no interrupt"),
), width=16, doc="Interrupt Line / Pin of a type-1 header (§3.2.5.17); Bridge Control "
                 "takes the upper half of the dword")

#: the type-1 header registers, in offset order (Bridge Architecture Spec 1.1
#: §3.2, figure 3-2): the common part, two BARs, then the bridge's own
TYPE1_HEADER = (ID, COMMAND, STATUS, CLASS, HEADER, BARS[0], BARS[1], BUS_NUMBERS,
                IO_WINDOW, SECONDARY_STATUS, MEMORY_WINDOW, PREFETCH_WINDOW,
                PREFETCH_BASE_UPPER, PREFETCH_LIMIT_UPPER, IO_UPPER, CAPABILITIES,
                BRIDGE_ROM, BRIDGE_INTERRUPT, BRIDGE_CONTROL)


def window_bounds(register: Register, value: int):
    """(first, last) byte address of the window a MEMORY_WINDOW or
    PREFETCH_WINDOW ``value`` describes; first > last: the window is off
    (§3.2.5.8: a base above the limit disables it)."""
    d = register.decode(value)
    return d["base"] << WINDOW_SHIFT, (d["limit"] << WINDOW_SHIFT) | (WINDOW_GRANULE - 1)


# Configuration addresses on the bus (PCI 2.3 §3.2.2.3.1, figure 3-1):
# type 0 has AD[1:0] = 00 (IDSEL selects the device), type 1 has AD[1:0] = 01
# with bus, device, function and register in AD[23:2]
CONFIG_TYPE_0, CONFIG_TYPE_1 = 0b00, 0b01

CONFIG_ADDRESS = Register("CONFIG_ADDRESS", 0x00, (
    Field("type", 0, 2, doc="CONFIG_TYPE_0 / CONFIG_TYPE_1"),
    Field("register", 2, 6, doc="dword of the 256-byte header"),
    Field("function", 8, 3),
    Field("device", 11, 5),
    Field("bus", 16, 8),
), doc="The address phase of a type-1 configuration cycle (PCI 2.3 figure 3-1); "
       "the same layout as configuration mechanism #1 without its enable bit (§3.2.2.3.2)")
