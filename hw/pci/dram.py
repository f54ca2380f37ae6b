"""Host DRAM: a 32-bit memory with one read and one byte-enabled write port.

Two implementations behind one set of ports:

- ``blackbox=False``: an Amaranth ``lib.memory.Memory`` (pysim; the host
  reaches it through the simulator's memory access);
- ``blackbox=True``: an instance of the Verilog module ``ocfsim_dram``
  (``sim/verilator/ocfsim_dram.sv``), whose storage is a DPI-C buffer that
  host Python maps directly, so bulk backdoor access costs one memmove.

Read data is registered (valid the clock after ``rd_en``); a read and a
write of the same word in one clock return the old data.

``width=64`` (a 64-bit host bridge): the ports move a quadword (addresses
count quadwords, eight byte enables); the storage is the same 32-bit memory,
reached through two ports of each kind (the two dwords of the quadword), so
host access to it is unchanged. The Verilator blackbox is then
``ocfsim_dram64`` (the same C buffer, quadword ports).
"""

from amaranth.hdl import Module, Instance, ClockSignal, Cat
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["HostDram"]


class HostDram(wiring.Component):
    def __init__(self, size_bytes: int, *, blackbox: bool = False, width: int = 32):
        if size_bytes < 4096 or size_bytes & (size_bytes - 1):
            raise ValueError("DRAM size must be a power of two ≥ 4 KiB")
        if width not in (32, 64):
            raise ValueError(f"DRAM port width {width!r} is not 32 or 64")
        self.size = size_bytes
        self.width = width
        #: bits of a port address (dwords, or quadwords at width 64)
        self.addr_width = (size_bytes // (width // 8) - 1).bit_length()
        self.blackbox = blackbox
        aw = self.addr_width
        super().__init__({
            "rd_en": In(1), "rd_addr": In(aw), "rd_data": Out(width),
            "wr_en": In(1), "wr_addr": In(aw), "wr_data": In(width),
            "wr_be": In(width // 8),
            # exact idle skipping: no access this clock, so the next edge
            # changes neither the contents nor the read data register
            "quiet": Out(1),
        })
        if not blackbox:
            self.mem = memory.Memory(shape=32, depth=size_bytes // 4, init=[])

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.quiet.eq(~self.rd_en & ~self.wr_en)
        if self.blackbox:
            m.submodules.store = Instance(
                "ocfsim_dram" if self.width == 32 else "ocfsim_dram64",
                p_ADDR_W=self.addr_width,
                i_clk=ClockSignal(),
                i_rd_en=self.rd_en, i_rd_addr=self.rd_addr, o_rd_data=self.rd_data,
                i_wr_en=self.wr_en, i_wr_addr=self.wr_addr,
                i_wr_data=self.wr_data, i_wr_be=self.wr_be)
            return m
        m.submodules.mem = mem = self.mem
        if self.width == 64:
            for k in range(2):              # the two dwords of a quadword
                rd = mem.read_port(domain="sync")
                wr = mem.write_port(granularity=8)
                m.d.comb += [
                    rd.en.eq(self.rd_en), rd.addr.eq(Cat(k, self.rd_addr)),
                    self.rd_data[32 * k:32 * k + 32].eq(rd.data),
                    wr.addr.eq(Cat(k, self.wr_addr)),
                    wr.data.eq(self.wr_data[32 * k:32 * k + 32]),
                    wr.en.eq(self.wr_be[4 * k:4 * k + 4] & self.wr_en.replicate(4)),
                ]
            return m
        rd = mem.read_port(domain="sync")
        wr = mem.write_port(granularity=8)
        m.d.comb += [
            rd.en.eq(self.rd_en), rd.addr.eq(self.rd_addr), self.rd_data.eq(rd.data),
            wr.addr.eq(self.wr_addr), wr.data.eq(self.wr_data),
            wr.en.eq(self.wr_be.replicate(1) & self.wr_en.replicate(4)),
        ]
        return m
