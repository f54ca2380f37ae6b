"""hw.pci.pcireg against the numbers printed in the PCI specifications.

The literals below are the specs' (PCI Local Bus Specification 2.3 figure
6-1, figures 6-2/6-3, §6.2.5.1, table 3-1; PCI-to-PCI Bridge Architecture
Specification 1.1 §3.2), typed in independently of the module.
"""

from hw.pci import pcireg as R
from hw.pci.bus import Cmd
from hw.regs import Access


def test_type0_header_offsets_are_figure_6_1():
    offsets = {r.name: r.offset for r in R.TYPE0_HEADER}
    assert offsets == {
        "ID": 0x00, "COMMAND": 0x04, "STATUS": 0x06, "CLASS": 0x08, "HEADER": 0x0C,
        "BAR0": 0x10, "BAR1": 0x14, "BAR2": 0x18, "BAR3": 0x1C, "BAR4": 0x20, "BAR5": 0x24,
        "CARDBUS_CIS": 0x28, "SUBSYSTEM": 0x2C, "EXPANSION_ROM": 0x30,
        "CAPABILITIES": 0x34, "INTERRUPT": 0x3C}
    assert R.COMMAND.width == R.STATUS.width == 16
    assert R.HEADER_SIZE == 64


def test_byte_positions_within_dwords():
    assert (R.ID.vendor_id.mask, R.ID.device_id.mask) == (0x0000_FFFF, 0xFFFF_0000)
    assert R.CLASS.revision_id.mask == 0xFF and R.CLASS.class_code.mask == 0xFFFF_FF00
    h = R.HEADER
    assert (h.cache_line_size.lsb, h.latency_timer.lsb, h.header_type.lsb, h.bist.lsb) \
        == (0, 8, 16, 24)
    assert h.multi_function.mask == 0x0080_0000
    i = R.INTERRUPT
    assert (i.interrupt_line.lsb, i.interrupt_pin.lsb, i.min_gnt.lsb, i.max_lat.lsb) \
        == (0, 8, 16, 24)
    assert R.SUBSYSTEM.subsystem_id.mask == 0xFFFF_0000


def test_command_bits_are_figure_6_2():
    c = R.COMMAND
    assert c.io_space.mask == 0x0001
    assert c.memory_space.mask == 0x0002
    assert c.bus_master.mask == 0x0004
    assert c.special_cycles.mask == 0x0008
    assert c.mwi_enable.mask == 0x0010
    assert c.vga_palette_snoop.mask == 0x0020
    assert c.parity_error_response.mask == 0x0040
    assert c.serr_enable.mask == 0x0100
    assert c.fast_b2b_enable.mask == 0x0200
    assert c.intx_disable.mask == 0x0400
    assert c.reset == 0                      # §6.2.2: 0 after RST#


def test_status_bits_are_figure_6_3():
    s = R.STATUS
    assert s.interrupt_status.mask == 0x0008
    assert s.capabilities_list.mask == 0x0010
    assert s.mhz66_capable.mask == 0x0020
    assert s.fast_b2b_capable.mask == 0x0080
    assert s.master_data_parity_error.mask == 0x0100
    assert s.devsel_timing.mask == 0x0600
    assert s.signaled_target_abort.mask == 0x0800
    assert s.received_target_abort.mask == 0x1000
    assert s.received_master_abort.mask == 0x2000
    assert s.signaled_system_error.mask == 0x4000
    assert s.detected_parity_error.mask == 0x8000
    # DEVSEL timing encodings: 00 fast, 01 medium, 10 slow
    assert s.devsel_timing.value(R.DEVSEL_MEDIUM) == 0x0200
    assert s.devsel_timing.value(R.DEVSEL_SLOW) == 0x0400
    # "writing a 1 clears": the error bits 8 and 11..15
    w1c = {f.name for f in s.fields if f.access is Access.W1C}
    assert s.mask(*w1c) == 0xF900


def test_memory_bar_layout():
    for i, b in enumerate(R.BARS):
        assert b.offset == 0x10 + 4 * i and R.bar(i) is b
        assert b.io_space.mask == 0x1 and b.type.mask == 0x6
        assert b.prefetchable.mask == 0x8 and b.base.mask == 0xFFFF_FFF0
    assert R.BAR_MEM_MASK == 0xFFFF_FFF0
    assert (R.BAR_MEM_32, R.BAR_MEM_64) == (0b00, 0b10)


def test_bus_command_codes_are_table_3_1():
    assert R.Cmd is Cmd                      # one definition, re-exported
    assert (Cmd.INT_ACK, Cmd.SPECIAL_CYCLE, Cmd.IO_READ, Cmd.IO_WRITE) == (0, 1, 2, 3)
    assert (Cmd.MEM_READ, Cmd.MEM_WRITE) == (0b0110, 0b0111)
    assert (Cmd.CFG_READ, Cmd.CFG_WRITE) == (0b1010, 0b1011)
    assert (Cmd.MEM_READ_MULT, Cmd.DUAL_ADDRESS) == (0b1100, 0b1101)
    assert (Cmd.MEM_READ_LINE, Cmd.MEM_WRITE_INV) == (0b1110, 0b1111)


def test_type1_bridge_fields():
    b = R.BUS_NUMBERS
    assert b.offset == 0x18
    assert (b.primary_bus.lsb, b.secondary_bus.lsb, b.subordinate_bus.lsb,
            b.secondary_latency_timer.lsb) == (0, 8, 16, 24)
    assert R.MEMORY_WINDOW.offset == 0x20 and R.PREFETCH_WINDOW.offset == 0x24
    assert R.MEMORY_WINDOW.base.mask == 0x0000_FFF0
    assert R.MEMORY_WINDOW.limit.mask == 0xFFF0_0000
    assert R.BRIDGE_CONTROL.offset == 0x3E
    assert R.BRIDGE_CONTROL.master_abort_mode.mask == 0x0020
    assert R.BRIDGE_CONTROL.secondary_bus_reset.mask == 0x0040
    assert R.HEADER_TYPE_BRIDGE == 0x01


def test_target_uses_the_description():
    from hw.pci import target as T
    assert T.CMD_BUS_MASTER == 0x4 and T.CMD_MEM_ENABLE == 0x2
    assert T.STATUS_RX_MASTER_ABORT == 0x2000 and T.STATUS_RX_TARGET_ABORT == 0x1000
    assert T.STATUS_W1C == 0x3800
    assert T.COMMAND_WRITABLE == 0x0446
