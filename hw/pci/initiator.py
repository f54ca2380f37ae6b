"""PCI initiator core: turns an owner's DMA commands into bus transactions.

The owner (a card's DMA engine, the host bridge) queues commands
``{addr, count, code, first_be, last_be}`` — ``count`` dwords starting at
``addr`` with bus command ``code`` — and supplies write data on ``wdata`` /
takes read data from ``rdata`` (32-bit streams through FIFOs of ``depth``
dwords). For each command the core reports once on ``done`` with a status:

- ``OK``; ``MASTER_ABORT`` (nobody claimed the address, PCI 2.3 §3.3.3.1);
  ``TARGET_ABORT``; ``GIVE_UP`` (retried ``RETRY_LIMIT`` times, or bus
  mastering disabled in the command register).

A command runs as one or more transactions. A transaction starts when the
core holds GNT# on an idle bus and the whole next burst fits (writes: its
data is in the FIFO; reads: the FIFO has room), so IRDY# is never
deasserted inside a burst. (``stream_writes=True``: the owner promises to
feed each write command's dwords one a clock, without a gap, from the clock
its first dword goes in, as a bridge replaying a posted run it already holds
does; a write transaction may then start once the first dword is in, and the
data phases, one a clock at most, never overtake the feed.) A transaction
ends on the last dword, when the latency timer has expired and GNT# is gone
(§3.5.4), or on target retry/disconnect; the core resumes where the data
stopped. After a retry REQ# is dropped for two clocks
(§3.3.3.2.2).

``width=64`` (PCI 2.3 §3.8): for a memory command from a quadword-aligned
address with at least two dwords to move, the core asserts REQ64# with
FRAME# and drives both halves (AD[63:0], C/BE[7:0]#; the upper half of the
last phase has its byte enables off when one dword is left). Each data
phase in which the target answers with ACK64# moves two dwords; a target
without ACK64# takes the lower dword only, and the next phase carries the
next dword on AD[31:0] (the 32-bit fall-back). Other commands (I/O,
configuration) and odd starting addresses use 32-bit phases. PAR64 follows
AD[63:32] by one clock. The owner's streams stay 32 bits wide; the FIFOs
behind them are two dword lanes, so the bus side takes or gives two
dwords a clock.
"""

from types import SimpleNamespace

from amaranth.hdl import Module, Signal, Mux, ResetInserter, Cat
from amaranth.lib import data, enum, fifo, wiring, stream
from amaranth.lib.wiring import In, Out

from .bus import AgentSignature, Cmd, MEMORY_COMMANDS, agent_signature, lines

__all__ = ["PciInitiator", "InitiatorCommand", "InitiatorState", "Status", "RETRY_LIMIT"]

#: give up after this many consecutive retries of one transaction
RETRY_LIMIT = 4096
#: PCI 2.3 §3.6.1: DEVSEL# by clock 3 (slow); master abort when none at clock 5
#: (i.e. four clocks after the address phase without DEVSEL#)
DEVSEL_TIMEOUT = 4


class Status:
    OK = 0
    MASTER_ABORT = 1
    TARGET_ABORT = 2
    GIVE_UP = 3


class InitiatorCommand(data.Struct):
    addr:     32
    count:    16     # dwords (0: reported OK at once)
    code:     4      # bus command (hw.pci.bus.Cmd)
    first_be: 4      # byte enables of the first dword (1 = enabled)
    last_be:  4      # byte enables of the last dword


class InitiatorState(enum.IntEnum, shape=3):
    """The initiator's transaction FSM (VCDs show the names). An IntEnum, so
    ``ini.state == 0`` still means idle; prefer ``InitiatorState.IDLE``."""
    IDLE = 0        # between transactions (REQ# when the next burst fits)
    ADDR = 1        # address phase: FRAME#, address and command on the bus
    DATA = 2        # data phases
    STOPPING = 3    # FRAME# deasserted, the last data phase still open
    TURN = 4        # one clock after the last data phase, then release


S_IDLE, S_ADDR, S_DATA, S_STOPPING, S_TURN = InitiatorState


class PciInitiator(wiring.Component):
    def __init__(self, depth: int = 16, *, state_name: str = "state", width: int = 32,
                 stream_writes: bool = False):
        if depth < 1 or depth > 65535:
            raise ValueError("FIFO depth out of range")
        lines(width)                       # ValueError unless 32 or 64
        if stream_writes and width != 32:
            # 64-bit phases move two dwords a clock: they could overtake a
            # feed of one a clock
            raise ValueError("stream_writes needs a 32-bit initiator")
        self.depth = depth
        self.width = width
        self.stream_writes = bool(stream_writes)
        super().__init__({
            "pci":   Out(agent_signature(width)),
            "req":   Out(1),
            "gnt":   In(1),
            "latency_timer": In(8),
            "master_enable": In(1),
            "cmd":   In(stream.Signature(InitiatorCommand)),
            "wdata": In(stream.Signature(32)),
            "rdata": Out(stream.Signature(32)),
            "done":        Out(1),       # one-clock pulse per command
            "done_status": Out(2),
            "done_count":  Out(16),      # dwords transferred for that command
            "flush": In(1),              # empty both FIFOs (after an error)
            "busy":  Out(1),
            # exact idle skipping: with these inputs held and the bus idle, the
            # next edge changes none of this core's registers (no command
            # loaded or offered, FIFOs empty and not written, no back-off)
            "quiet": Out(1),
        })
        #: the transaction FSM; ``state_name`` tells two initiators apart in a VCD
        self.state = Signal(InitiatorState, name=state_name)

    def elaborate(self, platform):
        m = Module()
        pci, bus = self.pci, self.pci.bus
        depth = self.depth

        w64 = self.width == 64
        if w64:
            wfifo, rfifo = self._lanes(m)
        else:
            wfifo, rfifo = self._fifos(m)

        state = self.state
        active = Signal()                 # a command is loaded
        c = Signal(InitiatorCommand)      # the loaded command
        addr = Signal(32)                 # address of the next untransferred dword
        remaining = Signal(16)            # dwords of the command still to move
        moved = Signal(16)                # dwords moved so far
        left = Signal(16)                 # data phases left in this transaction
        is_read = Signal()
        lt_count = Signal(8)
        since_addr = Signal(range(DEVSEL_TIMEOUT + 2))
        devsel_seen = Signal()
        any_xfer = Signal()               # data moved in this transaction
        retries = Signal(range(RETRY_LIMIT + 1))
        backoff = Signal(2)               # clocks of REQ# held off after retry
        error = Signal(2)

        frame_o = Signal()
        irdy_o = Signal()
        cbe_o = Signal(4)
        drive = Signal()                  # AD (writes/address), C/BE#, FRAME#
        drive_irdy = Signal()
        lines_v = SimpleNamespace(state=state, frame_o=frame_o, irdy_o=irdy_o, drive=drive,
                                  drive_irdy=drive_irdy, addr=addr, wfifo=wfifo,
                                  is_read=is_read, active=active, cbe_o=cbe_o, pci=pci, bus=bus)
        self._drive_lines(m, lines_v)
        cbe_o = lines_v.cbe_o
        if w64:
            wide_req, par64_oe = lines_v.wide_req, lines_v.par64_oe

        # load the next command
        m.d.comb += self.cmd.ready.eq(~active)
        with m.If(self.cmd.valid & ~active):
            m.d.sync += [active.eq(1), c.eq(self.cmd.payload),
                         # AD[1:0] of a configuration command stay as given:
                         # 00 type 0, 01 type 1 (PCI 2.3 §3.2.2.3.1); a memory
                         # command's are 00 (linear burst order, §3.2.2.2)
                         addr.eq(Mux(_is_cfg(self.cmd.payload.code), self.cmd.payload.addr,
                                     self.cmd.payload.addr & ~3)),
                         remaining.eq(self.cmd.payload.count), moved.eq(0),
                         retries.eq(0), error.eq(0)]

        # burst for the next transaction: the whole remainder if it fits the FIFO
        burst = Signal(16)
        m.d.comb += burst.eq(Mux(remaining > depth, depth, remaining))
        cmd_is_read = (c.code == Cmd.MEM_READ) | (c.code == Cmd.MEM_READ_LINE) \
            | (c.code == Cmd.MEM_READ_MULT) | (c.code == Cmd.CFG_READ)
        ready_to_go = Signal()
        # a streamed write goes once its first dword is in: the first data
        # phase is at least two clocks later (address phase, then IRDY#), by
        # when the FIFO's output register holds it, and the feed stays ahead
        written = (wfifo.level != 0) if self.stream_writes else (wfifo.level >= burst)
        m.d.comb += ready_to_go.eq(active & (remaining != 0) & Mux(
            cmd_is_read, (depth - rfifo.level) >= burst, written))

        def phase_be(moved_v, remaining_v):
            lo = self._phase_be(c, moved_v, remaining_v)
            if not w64:
                return lo
            # the upper half: the next dword, or no bytes when none is left
            hi = Mux(remaining_v >= 2, self._phase_be(c, moved_v + 1, remaining_v - 1), 0xF)
            return Cat(lo, hi)

        finish = Signal()                 # report the command this clock
        refused = Signal()                # ... as GIVE_UP: bus mastering is disabled
        m.d.comb += [self.done.eq(finish),
                     self.done_status.eq(Mux(refused, Status.GIVE_UP, error)),
                     self.done_count.eq(moved)]
        with m.If(finish):
            m.d.sync += active.eq(0)

        with m.If(backoff != 0):
            m.d.sync += backoff.eq(backoff - 1)
        m.d.comb += self.req.eq((state == S_IDLE) & ready_to_go & (backoff == 0)
                                & self.master_enable)

        quiet = ~bus.frame & ~bus.irdy & (state == S_IDLE) & ~active & ~self.cmd.valid \
            & (backoff == 0) \
            & ~drive & ~drive_irdy & ~frame_o & ~irdy_o \
            & (wfifo.level == 0) & ~self.wdata.valid & (rfifo.level == 0) & ~self.flush
        m.d.comb += self.quiet.eq(quiet & ~par64_oe if w64 else quiet)

        xfer = irdy_o & bus.trdy
        v = SimpleNamespace(lt_count=lt_count, since_addr=since_addr, devsel_seen=devsel_seen,
                            wide_req=wide_req if w64 else None, xfer=xfer,
                            remaining=remaining, moved=moved, left=left, addr=addr,
                            any_xfer=any_xfer, retries=retries, is_read=is_read, rfifo=rfifo,
                            wfifo=wfifo, cbe_o=cbe_o, phase_be=phase_be, error=error,
                            frame_o=frame_o, irdy_o=irdy_o, state=state, backoff=backoff,
                            bus=bus)
        with m.Switch(state):
            with m.Case(S_IDLE):
                m.d.sync += [drive.eq(0), drive_irdy.eq(0), frame_o.eq(0), irdy_o.eq(0)]
                with m.If(active & (remaining != 0) & ~self.master_enable):
                    # PCI 2.3 §6.2.2 (command bit 2 clear: no PCI accesses): the
                    # rest of the command fails now, reported in this clock
                    m.d.comb += [finish.eq(1), refused.eq(1)]
                with m.Elif(active & (remaining == 0)):
                    m.d.comb += finish.eq(1)        # a command of no dwords: nothing to move
                with m.Elif(self.req & self.gnt & ~bus.frame & ~bus.irdy & (backoff == 0)):
                    if w64:
                        m.d.sync += wide_req.eq(
                            Cat(*(c.code == k for k in MEMORY_COMMANDS)).any()
                            & ~addr[2] & (burst >= 2))
                    m.d.sync += [state.eq(S_ADDR), drive.eq(1), drive_irdy.eq(1),
                                 frame_o.eq(1), irdy_o.eq(0), cbe_o.eq(c.code),
                                 left.eq(burst), is_read.eq(cmd_is_read),
                                 lt_count.eq(self.latency_timer),
                                 since_addr.eq(0), devsel_seen.eq(0), any_xfer.eq(0)]

            with m.Case(S_ADDR):
                m.d.sync += [state.eq(S_DATA), irdy_o.eq(1),
                             frame_o.eq(left > 1), cbe_o.eq(phase_be(moved, remaining))]
                if w64:
                    # with REQ64# the first phase is the last when it can carry
                    # all (two) dwords; a 32-bit target then takes one and the
                    # core moves the other in a new transaction
                    with m.If(wide_req):
                        m.d.sync += frame_o.eq(left > 2)
                m.d.sync += lt_count.eq(Mux(lt_count != 0, lt_count - 1, 0))

            with m.Case(S_DATA):
                self._data_phase(m, v)

            with m.Case(S_STOPPING):
                # FRAME# off with IRDY# on; the target ends the phase at this edge
                # (STOP# still asserted, or master abort: nobody answers)
                with m.If(xfer):            # cannot happen after STOP#; keep data anyway
                    m.d.sync += [addr.eq(addr + 4), moved.eq(moved + 1),
                                 remaining.eq(remaining - 1)]
                    with m.If(is_read):
                        m.d.comb += [rfifo.w_en.eq(1), rfifo.w_data.eq(bus.ad)]
                    with m.Else():
                        m.d.comb += wfifo.r_en.eq(1)
                m.d.sync += [state.eq(S_TURN), irdy_o.eq(0)]

            with m.Case(S_TURN):
                # IRDY# driven deasserted this clock; release everything next
                m.d.sync += [state.eq(S_IDLE), drive.eq(0), drive_irdy.eq(0)]
                with m.If((error != 0) | (remaining == 0)):
                    m.d.comb += finish.eq(1)
        return m

    def _drive_lines(self, m, v):
        """The master's drivers: FRAME#, IRDY#, C/BE#, AD (address phase and
        write data) and, 64-bit, REQ64# and PAR64 (PCI 2.3 §3.8). Sets
        ``v.cbe_o``, ``v.wide_req``, ``v.par64_oe`` on a 64-bit core."""
        o, oe = v.pci.o, v.pci.oe
        if self.width == 64:
            v.cbe_o = Signal(8)
            v.wide_req = Signal()         # this transaction asserts REQ64#
            ad_lo = Mux(v.drive & ((v.state == S_ADDR) | ~v.is_read), 0xFFFF_FFFF, 0)
            ad_hi = Mux(v.drive & v.wide_req & (v.state != S_ADDR) & ~v.is_read, 0xFFFF_FFFF, 0)
            par64_o, v.par64_oe = Signal(), Signal()
            # PAR64: even parity over the AD[63:32] and C/BE[7:4]# of the
            # clock before, from the agent that drove AD[63:32] (§3.8, §3.7.1)
            m.d.sync += v.par64_oe.eq(ad_hi[0])
            with m.If(ad_hi[0]):
                m.d.sync += par64_o.eq(o.ad[32:].xor() ^ v.bus.cbe_n[4:].xor())
            m.d.comb += [
                o.frame.eq(v.frame_o), oe.frame.eq(v.drive),
                o.req64.eq(v.frame_o & v.wide_req), oe.req64.eq(v.drive),
                o.irdy.eq(v.irdy_o), oe.irdy.eq(v.drive_irdy),
                o.cbe_n.eq(v.cbe_o), oe.cbe_n.eq(Mux(v.drive, Mux(v.wide_req, 0xFF, 0x0F), 0)),
                o.ad.eq(Mux(v.state == S_ADDR, v.addr, Cat(v.wfifo.r_data, v.wfifo.r_data2))),
                oe.ad.eq(Cat(ad_lo, ad_hi)),
                o.par64.eq(par64_o), oe.par64.eq(v.par64_oe),
                self.busy.eq(v.active),
            ]
        else:
            m.d.comb += [
                o.frame.eq(v.frame_o), oe.frame.eq(v.drive),
                o.irdy.eq(v.irdy_o), oe.irdy.eq(v.drive_irdy),
                o.cbe_n.eq(v.cbe_o), oe.cbe_n.eq(Mux(v.drive, 0xF, 0)),
                o.ad.eq(Mux(v.state == S_ADDR, v.addr, v.wfifo.r_data)),
                oe.ad.eq(Mux(v.drive & ((v.state == S_ADDR) | ~v.is_read), 0xFFFF_FFFF, 0)),
                self.busy.eq(v.active),
            ]

    def _data_phase(self, m, v):
        """S_DATA: count the phase, move its data, end or go on (PCI 2.3
        §3.3.3, §3.5.4; 64-bit phases §3.8)."""
        m.d.sync += v.lt_count.eq(Mux(v.lt_count != 0, v.lt_count - 1, 0))
        m.d.sync += v.since_addr.eq(Mux(v.since_addr == DEVSEL_TIMEOUT + 1,
                                        v.since_addr, v.since_addr + 1))
        devsel_now = v.devsel_seen | v.bus.devsel
        m.d.sync += v.devsel_seen.eq(devsel_now)
        if self.width == 64:
            # dwords this phase moves: two when the target took 64 bits
            n = Signal(2)
            m.d.comb += n.eq(Mux(v.xfer, Mux(v.wide_req & v.bus.ack64 & (v.remaining >= 2),
                                             2, 1), 0))
            moved_n = v.moved + n
            remaining_n = v.remaining - n
            left_n = v.left - n
        else:
            moved_n = v.moved + v.xfer
            remaining_n = v.remaining - v.xfer
            left_n = v.left - v.xfer
        with m.If(v.xfer):
            step = n << 2 if self.width == 64 else 4
            m.d.sync += [v.addr.eq(v.addr + step), v.moved.eq(moved_n),
                         v.remaining.eq(remaining_n), v.left.eq(left_n),
                         v.any_xfer.eq(1), v.retries.eq(0)]
            if self.width == 64:
                with m.If(v.is_read):
                    m.d.comb += [v.rfifo.w_en.eq(1), v.rfifo.w_two.eq(n == 2),
                                 v.rfifo.w_data.eq(v.bus.ad[:32]),
                                 v.rfifo.w_data2.eq(v.bus.ad[32:])]
                with m.Else():
                    m.d.comb += [v.wfifo.r_en.eq(1), v.wfifo.r_two.eq(n == 2)]
            else:
                with m.If(v.is_read):
                    m.d.comb += [v.rfifo.w_en.eq(1), v.rfifo.w_data.eq(v.bus.ad)]
                with m.Else():
                    m.d.comb += v.wfifo.r_en.eq(1)
            m.d.sync += v.cbe_o.eq(v.phase_be(moved_n, remaining_n))

        master_abort = ~devsel_now & (v.since_addr >= DEVSEL_TIMEOUT - 1)
        target_abort = v.bus.stop & ~v.bus.devsel & v.devsel_seen
        lt_out = (v.lt_count == 0) & ~self.gnt
        with m.If(master_abort | target_abort):
            m.d.sync += v.error.eq(Mux(master_abort, Status.MASTER_ABORT,
                                     Status.TARGET_ABORT))
            with m.If(v.frame_o):
                m.d.sync += [v.state.eq(S_STOPPING), v.frame_o.eq(0)]
            with m.Else():
                m.d.sync += [v.state.eq(S_TURN), v.irdy_o.eq(0)]
        with m.Elif(~v.frame_o & (v.xfer | v.bus.stop)):
            m.d.sync += [v.state.eq(S_TURN), v.irdy_o.eq(0)]
            with m.If(v.bus.stop & ~v.xfer & ~v.any_xfer):
                self._retried(m, v.retries, v.backoff, v.error)
        with m.Elif(v.bus.stop):
            # retry / disconnect: last phase now, FRAME# off, IRDY# stays
            m.d.sync += [v.state.eq(S_STOPPING), v.frame_o.eq(0)]
            with m.If(~v.xfer & ~v.any_xfer):
                self._retried(m, v.retries, v.backoff, v.error)
        with m.Elif(v.xfer & ((left_n <= 1) | lt_out)):
            m.d.sync += v.frame_o.eq(0)
        if self.width == 64:
            # 64-bit phases: the next phase is the last when it can
            # carry the two (or one) dwords v.left
            with m.If(~master_abort & ~target_abort & ~(~v.frame_o & (v.xfer | v.bus.stop))
                      & ~v.bus.stop & v.xfer & v.wide_req & v.bus.ack64 & (left_n <= 2)):
                m.d.sync += v.frame_o.eq(0)

    def _lanes(self, m):
        """64-bit bus: each FIFO is two dword lanes taken in turn, so the bus
        side can take or give two dwords in one clock and the owner one."""
        depth = self.depth
        out = {}
        for name in ("w", "r"):
            lanes = []
            for k in range(2):
                f = ResetInserter(self.flush)(fifo.SyncFIFOBuffered(width=32, depth=depth))
                m.submodules[f"{name}fifo{k}"] = f
                lanes.append(f)
            out[name] = lanes
        (w0, w1), (r0, r1) = out["w"], out["r"]
        # write data: the owner fills lane in_w, the bus empties from lane out_w
        in_w, out_w, in_r, out_r = Signal(), Signal(), Signal(), Signal()
        with m.If(self.flush):
            m.d.sync += [in_w.eq(0), out_w.eq(0), in_r.eq(0), out_r.eq(0)]
        wf = SimpleNamespace(level=Signal(range(2 * depth + 1)), r_data=Signal(32),
                             r_data2=Signal(32), r_en=Signal(), r_two=Signal())
        rf = SimpleNamespace(level=Signal(range(2 * depth + 1)), w_data=Signal(32),
                             w_data2=Signal(32), w_en=Signal(), w_two=Signal())
        full_w = wf.level >= depth
        m.d.comb += [
            wf.level.eq(w0.level + w1.level), rf.level.eq(r0.level + r1.level),
            # owner → lanes
            w0.w_data.eq(self.wdata.payload), w1.w_data.eq(self.wdata.payload),
            w0.w_en.eq(self.wdata.valid & ~full_w & ~in_w),
            w1.w_en.eq(self.wdata.valid & ~full_w & in_w),
            self.wdata.ready.eq(~full_w & Mux(in_w, w1.w_rdy, w0.w_rdy)),
            # lanes → bus: the older dword first
            wf.r_data.eq(Mux(out_w, w1.r_data, w0.r_data)),
            wf.r_data2.eq(Mux(out_w, w0.r_data, w1.r_data)),
            w0.r_en.eq(wf.r_en & (wf.r_two | ~out_w)),
            w1.r_en.eq(wf.r_en & (wf.r_two | out_w)),
            # bus → lanes
            r0.w_data.eq(Mux(in_r, rf.w_data2, rf.w_data)),
            r1.w_data.eq(Mux(in_r, rf.w_data, rf.w_data2)),
            r0.w_en.eq(rf.w_en & (rf.w_two | ~in_r)),
            r1.w_en.eq(rf.w_en & (rf.w_two | in_r)),
            # lanes → owner
            self.rdata.payload.eq(Mux(out_r, r1.r_data, r0.r_data)),
            self.rdata.valid.eq(Mux(out_r, r1.r_rdy, r0.r_rdy)),
            r0.r_en.eq(self.rdata.ready & ~out_r), r1.r_en.eq(self.rdata.ready & out_r),
        ]
        with m.If(~self.flush):
            with m.If(self.wdata.valid & self.wdata.ready):
                m.d.sync += in_w.eq(~in_w)
            with m.If(wf.r_en & ~wf.r_two):
                m.d.sync += out_w.eq(~out_w)
            with m.If(rf.w_en & ~rf.w_two):
                m.d.sync += in_r.eq(~in_r)
            with m.If(self.rdata.valid & self.rdata.ready):
                m.d.sync += out_r.eq(~out_r)
        self._lane_state = (in_w, out_w, in_r, out_r)
        return wf, rf

    def _fifos(self, m):
        """The write-data and read-data FIFOs between the user streams and the
        bus, flushed by ``flush``."""
        depth = self.depth
        m.submodules.wfifo = wfifo = ResetInserter(self.flush)(
            fifo.SyncFIFOBuffered(width=32, depth=depth))
        m.submodules.rfifo = rfifo = ResetInserter(self.flush)(
            fifo.SyncFIFOBuffered(width=32, depth=depth))
        m.d.comb += [
            wfifo.w_data.eq(self.wdata.payload), wfifo.w_en.eq(self.wdata.valid),
            self.wdata.ready.eq(wfifo.w_rdy),
            self.rdata.payload.eq(rfifo.r_data), self.rdata.valid.eq(rfifo.r_rdy),
            rfifo.r_en.eq(self.rdata.ready),
        ]
        return wfifo, rfifo

    @staticmethod
    def _phase_be(c, moved_v, remaining_v):
        """C/BE# (active low) of the phase that moves dword number ``moved_v``."""
        first = Mux(moved_v == 0, c.first_be, 0xF)
        last = Mux(remaining_v == 1, c.last_be, 0xF)
        return ~(first & last) & 0xF

    @staticmethod
    def _retried(m, retries, backoff, error):
        m.d.sync += [retries.eq(retries + 1), backoff.eq(2)]
        with m.If(retries == RETRY_LIMIT - 1):
            m.d.sync += error.eq(Status.GIVE_UP)


def _is_cfg(code):
    return (code == Cmd.CFG_READ) | (code == Cmd.CFG_WRITE)
