"""Host DRAM: a 32-bit memory with one read and one byte-enabled write port.

Two implementations behind one set of ports:

- ``blackbox=False``: an Amaranth ``lib.memory.Memory`` (pysim; the host
  reaches it through the simulator's memory access);
- ``blackbox=True``: an instance of the Verilog module ``ocfsim_dram``
  (``sim/verilator/ocfsim_dram.sv``), whose storage is a DPI-C buffer that
  host Python maps directly, so bulk backdoor access costs one memmove.

Read data is registered (valid the clock after ``rd_en``); a read and a
write of the same word in one clock return the old data.
"""

from amaranth.hdl import Module, Instance, ClockSignal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["HostDram"]


class HostDram(wiring.Component):
    def __init__(self, size_bytes: int, *, blackbox: bool = False):
        if size_bytes < 4096 or size_bytes & (size_bytes - 1):
            raise ValueError("DRAM size must be a power of two ≥ 4 KiB")
        self.size = size_bytes
        self.addr_width = (size_bytes // 4 - 1).bit_length()
        self.blackbox = blackbox
        aw = self.addr_width
        super().__init__({
            "rd_en": In(1), "rd_addr": In(aw), "rd_data": Out(32),
            "wr_en": In(1), "wr_addr": In(aw), "wr_data": In(32), "wr_be": In(4),
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
                "ocfsim_dram",
                p_ADDR_W=self.addr_width,
                i_clk=ClockSignal(),
                i_rd_en=self.rd_en, i_rd_addr=self.rd_addr, o_rd_data=self.rd_data,
                i_wr_en=self.wr_en, i_wr_addr=self.wr_addr,
                i_wr_data=self.wr_data, i_wr_be=self.wr_be)
            return m
        m.submodules.mem = mem = self.mem
        rd = mem.read_port(domain="sync")
        wr = mem.write_port(granularity=8)
        m.d.comb += [
            rd.en.eq(self.rd_en), rd.addr.eq(self.rd_addr), self.rd_data.eq(rd.data),
            wr.addr.eq(self.wr_addr), wr.data.eq(self.wr_data),
            wr.en.eq(self.wr_be.replicate(1) & self.wr_en.replicate(4)),
        ]
        return m
