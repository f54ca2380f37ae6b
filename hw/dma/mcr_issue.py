"""The record engine's issuer: requests → initiator commands, and DMA errors.

Requests come on ``stream`` ports in fixed priority (the first named port
first); a request is granted (``ready``) in the clock its command is taken
by the initiator. A read is only issued while the tag FIFO has room; its tag
(destination, count, byte enables, final-data mark) goes to ``tag`` for the
read demultiplexer. Nothing is issued once halted.

DMA errors: a command that ends other than OK (master or target abort, or
given up; :class:`hw.pci.initiator.Status`) or ``chain_halt`` (the record
engine refused a particle chain, at ``chain_addr``) pulses ``dma_error``
with the failing dword address and direction, flushes the initiator FIFOs
(bus errors only) and halts the engine until reset.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from ..pci.bus import Cmd
from ..pci.initiator import InitiatorCommand, Status
from .mcr_common import RequestSignature, tag_layout

__all__ = ["CommandIssuer"]


class CommandIssuer(wiring.Component):
    """``ports``: request port names, highest priority first; ``cw``: count
    width; ``tag_depth``: reads under way at most."""

    def __init__(self, ports, cw: int, tag_depth: int = 4):
        self.ports = tuple(ports)
        self.cw = cw
        self.tag_depth = tag_depth
        sig = {name: In(RequestSignature(cw)) for name in self.ports}
        sig.update({
            "ini_cmd": Out(stream.Signature(InitiatorCommand)),
            "ini_done": In(1),
            "ini_done_status": In(2),
            "ini_done_count": In(16),
            "ini_flush": Out(1),
            "tag": Out(stream.Signature(tag_layout(cw))),
            "chain_halt": In(1),
            "chain_addr": In(32),
            "halted": Out(1),
            "dma_error": Out(1),          # pulse
            "err_addr": Out(32),
            "err_read": Out(1),
        })
        super().__init__(sig)

    def elaborate(self, platform):
        m = Module()
        m.submodules.tags = tags = fifo.SyncFIFO(width=tag_layout(self.cw).size,
                                                  depth=self.tag_depth)
        m.d.comb += [self.tag.valid.eq(tags.r_rdy), self.tag.payload.eq(tags.r_data),
                     tags.r_en.eq(self.tag.ready)]
        halted = Signal()
        last_addr = Signal(32)
        last_read = Signal()
        cmd = self.ini_cmd.payload
        reqs = [getattr(self, name) for name in self.ports]
        sel = Signal(range(len(reqs) + 1))       # 0 none, k: port k - 1
        with m.If(reqs[0].valid):
            m.d.comb += sel.eq(1)
        for k, r in enumerate(reqs[1:], start=2):
            with m.Elif(r.valid):
                m.d.comb += sel.eq(k)
        for k, r in enumerate(reqs, start=1):
            p = r.payload
            with m.If(sel == k):
                ok = ~halted & (~p.read | tags.w_rdy)
                m.d.comb += [
                    self.ini_cmd.valid.eq(ok),
                    cmd.addr.eq(Cat(Const(0, 2), p.addr[2:])),
                    cmd.count.eq(p.count),
                    cmd.code.eq(Mux(p.read, Cmd.MEM_READ_MULT, Cmd.MEM_WRITE)),
                    cmd.first_be.eq(Mux(p.read, 0xF, p.first_be)),
                    cmd.last_be.eq(Mux(p.read, 0xF, p.last_be)),
                    tags.w_data.eq(Cat(p.dest, p.count, p.first_be, p.last_be, p.tag_last)),
                    r.ready.eq(ok & self.ini_cmd.ready),
                ]
        issued = Signal()
        m.d.comb += issued.eq(self.ini_cmd.valid & self.ini_cmd.ready)
        m.d.comb += tags.w_en.eq(issued & (cmd.code == Cmd.MEM_READ_MULT))
        with m.If(issued):
            m.d.sync += [last_addr.eq(cmd.addr), last_read.eq(cmd.code == Cmd.MEM_READ_MULT)]

        m.d.comb += self.halted.eq(halted)
        bus_error = Signal()
        m.d.comb += bus_error.eq(self.ini_done & (self.ini_done_status != Status.OK))
        with m.If((bus_error | self.chain_halt) & ~halted):
            m.d.sync += halted.eq(1)
            m.d.comb += [self.dma_error.eq(1), self.ini_flush.eq(bus_error),
                         self.err_addr.eq(Mux(bus_error,
                                              last_addr + (self.ini_done_count << 2),
                                              self.chain_addr)),
                         self.err_read.eq(bus_error & last_read | self.chain_halt)]
        return m
