"""Host bridge: the CPU's way onto the bus, and host DRAM as a PCI target.

CPU side (flat ports, driven by the host API between host events): the CPU
places one operation in ``cpu_op/cpu_addr/cpu_wdata/cpu_be`` and toggles
``cpu_seq``; when the bus transaction has finished the bridge copies
``cpu_seq`` to ``cpu_ack`` with ``cpu_rdata`` and ``cpu_status``
(``hw.pci.initiator.Status``; a master-aborted read returns all ones, as
PCI 2.3 §3.3.3.1 requires of the bridge).

Operations: ``MEM_READ``/``MEM_WRITE`` of one dword, ``CFG_READ``/
``CFG_WRITE`` of one dword where ``cpu_addr`` = device<<11 | function<<8 |
register (configuration mechanism #1 layout, bus 0); the bridge issues a
type-0 configuration cycle with IDSEL = AD[16 + device]. With a bus number
in bits 23:16 (``bus<<16 | device<<11 | function<<8 | register``) it issues
a type-1 cycle carrying that address with AD[1:0] = 01 (PCI 2.3
§3.2.2.3.1), which a PCI-PCI bridge whose bus range holds the bus claims.

DRAM side: a target decoding ``[0, size)`` on the bus, prefetchable, in front
of :class:`HostDram`. Test knobs: ``latency`` (extra clocks before the first
read of a burst, modelling a page open), ``wait_every``/``wait_len`` (every
Nth access stalls for L clocks: wait states, and a disconnect when L exceeds
the subsequent-latency limit), ``retry_every`` (every Nth transaction is
retried) and ``abort_every`` (every Nth transaction ends in target abort
before its first data phase, PCI 2.3 §3.3.3.2.1: a fault-injection knob,
like a memory controller signalling an uncorrectable error).

``delayed`` (clocks, 0: off) makes the DRAM target answer reads as a bridge
whose memory is further away than PCI's 16-clock initial-latency rule
allows (PCI 2.3 §3.5.1.1) does: as a delayed transaction (§3.3.3.3). The
first attempt of a read is retried and latched as the one delayed request;
``delayed`` clocks later its completion is ready, and the master's repeat
of the same address (PCI 2.3 §3.3.3.3.1: a retried master must repeat the
request) gets its data, read from DRAM as it then is, and the burst goes
on at DRAM speed. Reads at other addresses are retried while the entry is
held. A completion its master does not come back for is discarded after
2^15 clocks (``DISCARD_CLOCKS``), so no master's absence blocks the others
for good.
"""

from amaranth.hdl import Module, Signal, Mux, Const
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from . import pcireg as R
from .bus import AgentSignature, Cmd, agent_signature
from .dram import HostDram
from .initiator import PciInitiator, Status
from .target import PciTarget, FIFO_DEPTH

__all__ = ["HostBridge", "CpuOp", "DISCARD_CLOCKS"]

#: clocks a delayed completion waits for its master before it is dropped:
#: the PCI specification's recommended 2^15 (the discard timer's default in
#: bridges of the period, e.g. TI PCI2050B datasheet §3.11, DEC 21152's
#: Bridge Control bit 8 clear: PPB 1.1 §3.2.5.18)
DISCARD_CLOCKS = 1 << 15


class CpuOp:
    MEM_READ = 0
    MEM_WRITE = 1
    CFG_READ = 2
    CFG_WRITE = 3


class HostBridge(wiring.Component):
    def __init__(self, dram_bytes: int = 4 << 20, *, blackbox_dram: bool = False,
                 width: int = 32):
        """``width=64``: a 64-bit bridge (PCI 2.3 §3.8): its DRAM target
        answers REQ64# with ACK64# and moves a quadword a clock to and from
        a 64-bit DRAM port; the CPU's initiator (single dwords) is a 64-bit
        agent that never needs REQ64#."""
        self.dram_bytes = dram_bytes
        self.width = width
        super().__init__({
            "pci_m": Out(agent_signature(width)),     # the CPU's initiator
            "pci_t": Out(agent_signature(width)),     # the DRAM target
            "req": Out(1), "gnt": In(1),
            "cpu_seq": In(1), "cpu_op": In(2), "cpu_addr": In(32),
            "cpu_wdata": In(32), "cpu_be": In(4),
            "cpu_ack": Out(1), "cpu_rdata": Out(32), "cpu_status": Out(2),
            "dram_latency": In(4), "dram_wait_every": In(8), "dram_wait_len": In(5),
            "dram_retry_every": In(8), "dram_abort_every": In(8), "dram_delayed": In(8),
            # exact idle skipping: no CPU operation under way or offered, the
            # CPU's initiator, the DRAM target and the DRAM at rest, no DRAM
            # latency or stall being counted down: with these inputs held and
            # the bus idle the next edge changes none of the bridge's registers
            "quiet": Out(1),
        })
        self.dram = HostDram(dram_bytes, blackbox=blackbox_dram, width=width)
        #: the CPU's initiator and the DRAM target; their FSMs are named apart
        #: (``cpu_state``, ``dram_state``) for waveform viewers
        self.initiator = PciInitiator(depth=2, state_name="cpu_state", width=width)
        self.target = PciTarget(fixed_base=0, fixed_size=dram_bytes, state_name="dram_state",
                                width=width)

    def elaborate(self, platform):
        m = Module()
        m.submodules.dram = dram = self.dram
        m.submodules.initiator = ini = self.initiator
        m.submodules.target = tgt = self.target
        wiring.connect(m, wiring.flipped(self.pci_m), ini.pci)
        wiring.connect(m, wiring.flipped(self.pci_t), tgt.pci)
        m.d.comb += [self.req.eq(ini.req), ini.gnt.eq(self.gnt),
                     ini.master_enable.eq(1), ini.latency_timer.eq(0)]
        cpu_quiet = self._cpu_side(m, ini, tgt)
        dram_quiet = self._dram_side(m, tgt, dram)
        m.d.comb += self.quiet.eq(cpu_quiet & dram_quiet & ini.quiet & tgt.quiet & dram.quiet)
        return m

    def _cpu_side(self, m, ini, tgt):
        busy = Signal()
        op = self.cpu_op
        is_cfg = op[1]
        is_write = op[0]
        dev = self.cpu_addr[11:15]
        bus_no = self.cpu_addr[R.CONFIG_ADDRESS.bus.lsb:R.CONFIG_ADDRESS.bus.lsb + 8]
        # bus 0: type 0, IDSEL = AD[16 + device]; another bus: type 1, the
        # CPU's bus/device/function/register as they are with AD[1:0] = 01
        # (PCI 2.3 §3.2.2.3.1, what configuration mechanism #1 does with a
        # nonzero bus number, §3.2.2.3.2)
        type0_ad = (Const(1, 32) << (dev + 16)) | (self.cpu_addr[8:11] << 8) \
            | (self.cpu_addr[2:8] << 2)
        type1_ad = (self.cpu_addr[:24] & ~3) | R.CONFIG_TYPE_1
        cfg_ad = Mux(bus_no == 0, type0_ad, type1_ad)
        code = Mux(is_cfg, Mux(is_write, Cmd.CFG_WRITE, Cmd.CFG_READ),
                   Mux(is_write, Cmd.MEM_WRITE, Cmd.MEM_READ))
        op_is_read = Signal()           # the operation under way is a read
        with m.If(~busy & (self.cpu_seq != self.cpu_ack)):
            m.d.comb += [
                ini.cmd.valid.eq(1),
                ini.cmd.payload.addr.eq(Mux(is_cfg, cfg_ad, self.cpu_addr)),
                ini.cmd.payload.count.eq(1), ini.cmd.payload.code.eq(code),
                ini.cmd.payload.first_be.eq(self.cpu_be),
                ini.cmd.payload.last_be.eq(self.cpu_be),
                ini.wdata.valid.eq(is_write), ini.wdata.payload.eq(self.cpu_wdata),
            ]
            m.d.sync += [busy.eq(1), op_is_read.eq(~is_write)]
        m.d.comb += ini.rdata.ready.eq(1)
        with m.If(ini.rdata.valid):
            m.d.sync += self.cpu_rdata.eq(ini.rdata.payload)

        # Ordering (PCI 2.3 §3.2.5, Appendix E: a read completion must not
        # pass a posted write moving the same way): writes that masters
        # posted into the DRAM target before the CPU's read completed reach
        # DRAM before the CPU sees the read's data. A driver reads a device
        # register (its DMA-done status) before it trusts DMA'd memory.
        ordering = Signal()             # read done, earlier posted writes draining
        older = Signal(range(FIFO_DEPTH + 1))
        still_posted = tgt.posted - tgt.posted_done
        ack = Signal()
        with m.If(ini.done):
            m.d.sync += self.cpu_status.eq(ini.done_status)
            with m.If(ini.done_status != Status.OK):
                m.d.sync += self.cpu_rdata.eq(0xFFFF_FFFF)
                m.d.comb += ini.flush.eq(1)
            with m.If(op_is_read & (still_posted != 0)):
                m.d.sync += [ordering.eq(1), older.eq(still_posted)]
            with m.Else():
                m.d.comb += ack.eq(1)
        with m.If(ordering):
            with m.If(older - tgt.posted_done == 0):
                m.d.sync += ordering.eq(0)
                m.d.comb += ack.eq(1)
            m.d.sync += older.eq(older - tgt.posted_done)
        with m.If(ack):
            m.d.sync += [busy.eq(0), self.cpu_ack.eq(self.cpu_seq)]
        return ~busy & ~ordering & (self.cpu_seq == self.cpu_ack) & ~ini.rdata.valid

    def _dram_side(self, m, tgt, dram):
        port = tgt.port
        page_open = Signal()            # a read was accepted last clock
        latency_left = Signal(4)
        accesses = Signal(8)
        stall_left = Signal(5)
        txns = Signal(8)
        retry_this = Signal()
        aborts = Signal(8)
        abort_this = Signal()

        will_retry = (self.dram_retry_every != 0) & (txns + 1 >= self.dram_retry_every)
        with m.If(tgt.started):
            m.d.sync += txns.eq(Mux(txns + 1 >= self.dram_retry_every, 0, txns + 1))
            m.d.sync += retry_this.eq(will_retry)
        will_abort = (self.dram_abort_every != 0) & (aborts + 1 >= self.dram_abort_every)
        # the target aborts in the first data clock, before any data moves; reads
        # fetched ahead meanwhile are dropped with the transaction (no side effects)
        with m.If(tgt.started):
            m.d.sync += [aborts.eq(Mux(will_abort, 0, aborts + 1)), abort_this.eq(will_abort)]

        can_go = Signal()
        m.d.comb += can_go.eq((stall_left == 0) & ~retry_this & ~(tgt.started & will_retry))
        is_read = port.cmd_valid & ~port.cmd.write
        delayed_idle = self._delayed_read(m, tgt, is_read, can_go)
        with m.If(is_read & ~page_open & (latency_left == 0) & (self.dram_latency != 0)):
            m.d.sync += latency_left.eq(self.dram_latency)
            m.d.comb += can_go.eq(0)
        with m.Elif(latency_left > 1):
            m.d.sync += latency_left.eq(latency_left - 1)
            m.d.comb += can_go.eq(0)
        with m.Elif(latency_left == 1):
            m.d.sync += latency_left.eq(0)
        with m.If(stall_left != 0):
            m.d.sync += stall_left.eq(stall_left - 1)

        accept = port.cmd_valid & can_go
        m.d.comb += port.cmd_ready.eq(can_go)
        m.d.sync += page_open.eq(accept & ~port.cmd.write)
        with m.If(accept):
            nxt = accesses + 1
            with m.If((self.dram_wait_every != 0) & (nxt >= self.dram_wait_every)):
                m.d.sync += [accesses.eq(0), stall_left.eq(self.dram_wait_len)]
            with m.Else():
                m.d.sync += accesses.eq(nxt)
        # the dword (or, 64-bit, the quadword) the access addresses
        lsb = 3 if self.width == 64 else 2
        word = port.cmd.addr[lsb:lsb + dram.addr_width]
        m.d.comb += [
            dram.rd_en.eq(accept & ~port.cmd.write), dram.rd_addr.eq(word),
            dram.wr_en.eq(accept & port.cmd.write), dram.wr_addr.eq(word),
            dram.wr_data.eq(port.cmd.data), dram.wr_be.eq(port.cmd.be),
        ]
        rsp_pending = Signal()
        m.d.sync += rsp_pending.eq(accept & ~port.cmd.write)
        m.d.comb += [port.rsp_valid.eq(rsp_pending), port.rsp_data.eq(dram.rd_data),
                     port.abort.eq(abort_this)]
        m.d.comb += port.retry.eq(retry_this | self._delay_retry)
        # (txns, aborts, accesses, retry_this, abort_this move only when the
        # target claims a transaction or an access is accepted)
        return ~page_open & (latency_left == 0) & (stall_left == 0) & ~rsp_pending \
            & ~port.cmd_valid & delayed_idle

    def _delayed_read(self, m, tgt, is_read, can_go):
        """The delayed-read entry (``dram_delayed`` != 0): holds ``can_go``
        low and retries the first read of a transaction unless it repeats
        the completed delayed request. Returns "no entry held"."""
        port = tgt.port
        first = Signal()                # no read of this transaction accepted yet
        addr = Signal(32)               # the delayed request's address
        left = Signal(8)                # clocks until its completion is ready
        held = Signal(range(DISCARD_CLOCKS))
        retry = Signal()                # retry this transaction (registered)
        self._delay_retry = retry
        with m.If(tgt.started):
            m.d.sync += retry.eq(0)
        # the target may ask its first read in the clock it claims (S_DEVSEL)
        with m.If(port.cmd_valid & port.cmd_ready & ~port.cmd.write):
            m.d.sync += first.eq(0)
        with m.Elif(tgt.started):
            m.d.sync += first.eq(1)
        asked = is_read & (first | tgt.started) & (self.dram_delayed != 0)
        with m.FSM(name="dram_delayed") as fsm:
            with m.State("IDLE"):
                with m.If(asked):
                    m.d.comb += can_go.eq(0)
                    m.d.sync += [addr.eq(port.cmd.addr), left.eq(self.dram_delayed),
                                 retry.eq(1)]
                    m.next = "FETCH"
            with m.State("FETCH"):
                with m.If(asked):
                    m.d.comb += can_go.eq(0)
                    m.d.sync += retry.eq(1)
                m.d.sync += left.eq(left - 1)
                with m.If(left == 1):
                    m.d.sync += held.eq(0)
                    m.next = "READY"
            with m.State("READY"):
                hit = port.cmd.addr == addr
                with m.If(asked & ~hit):
                    m.d.comb += can_go.eq(0)
                    m.d.sync += retry.eq(1)
                m.d.sync += held.eq(held + 1)
                with m.If((asked & hit & can_go) | (held == DISCARD_CLOCKS - 1)):
                    m.next = "IDLE"
        return fsm.ongoing("IDLE") & ~retry
