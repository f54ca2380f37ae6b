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
deasserted inside a burst. It ends on the last dword, when the latency timer
has expired and GNT# is gone (§3.5.4), or on target retry/disconnect; the core
resumes where the data stopped. After a retry REQ# is dropped for two clocks
(§3.3.3.2.2).
"""

from amaranth.hdl import Module, Signal, Mux, ResetInserter
from amaranth.lib import data, enum, fifo, wiring, stream
from amaranth.lib.wiring import In, Out

from .bus import AgentSignature, Cmd

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
    def __init__(self, depth: int = 16, *, state_name: str = "state"):
        if depth < 1 or depth > 65535:
            raise ValueError("FIFO depth out of range")
        self.depth = depth
        super().__init__({
            "pci":   Out(AgentSignature),
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
        m.d.comb += [
            pci.o.frame.eq(frame_o), pci.oe.frame.eq(drive),
            pci.o.irdy.eq(irdy_o), pci.oe.irdy.eq(drive_irdy),
            pci.o.cbe_n.eq(cbe_o), pci.oe.cbe_n.eq(Mux(drive, 0xF, 0)),
            pci.o.ad.eq(Mux(state == S_ADDR, addr, wfifo.r_data)),
            pci.oe.ad.eq(Mux(drive & ((state == S_ADDR) | ~is_read), 0xFFFF_FFFF, 0)),
            self.busy.eq(active),
        ]

        # load the next command
        m.d.comb += self.cmd.ready.eq(~active)
        with m.If(self.cmd.valid & ~active):
            m.d.sync += [active.eq(1), c.eq(self.cmd.payload),
                         addr.eq(self.cmd.payload.addr & ~3),
                         remaining.eq(self.cmd.payload.count), moved.eq(0),
                         retries.eq(0), error.eq(0)]

        # burst for the next transaction: the whole remainder if it fits the FIFO
        burst = Signal(16)
        m.d.comb += burst.eq(Mux(remaining > depth, depth, remaining))
        cmd_is_read = (c.code == Cmd.MEM_READ) | (c.code == Cmd.MEM_READ_LINE) \
            | (c.code == Cmd.MEM_READ_MULT) | (c.code == Cmd.CFG_READ)
        ready_to_go = Signal()
        m.d.comb += ready_to_go.eq(active & (remaining != 0) & Mux(
            cmd_is_read, (depth - rfifo.level) >= burst, wfifo.level >= burst))

        def phase_be(moved_v, remaining_v):
            return self._phase_be(c, moved_v, remaining_v)

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

        m.d.comb += self.quiet.eq(
            ~bus.frame & ~bus.irdy & (state == S_IDLE) & ~active & ~self.cmd.valid
            & (backoff == 0)
            & ~drive & ~drive_irdy & ~frame_o & ~irdy_o
            & (wfifo.level == 0) & ~self.wdata.valid & (rfifo.level == 0) & ~self.flush)

        xfer = irdy_o & bus.trdy
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
                    m.d.sync += [state.eq(S_ADDR), drive.eq(1), drive_irdy.eq(1),
                                 frame_o.eq(1), irdy_o.eq(0), cbe_o.eq(c.code),
                                 left.eq(burst), is_read.eq(cmd_is_read),
                                 lt_count.eq(self.latency_timer),
                                 since_addr.eq(0), devsel_seen.eq(0), any_xfer.eq(0)]

            with m.Case(S_ADDR):
                m.d.sync += [state.eq(S_DATA), irdy_o.eq(1),
                             frame_o.eq(left > 1), cbe_o.eq(phase_be(moved, remaining))]
                m.d.sync += lt_count.eq(Mux(lt_count != 0, lt_count - 1, 0))

            with m.Case(S_DATA):
                m.d.sync += lt_count.eq(Mux(lt_count != 0, lt_count - 1, 0))
                m.d.sync += since_addr.eq(Mux(since_addr == DEVSEL_TIMEOUT + 1,
                                              since_addr, since_addr + 1))
                devsel_now = devsel_seen | bus.devsel
                m.d.sync += devsel_seen.eq(devsel_now)
                moved_n = moved + xfer
                remaining_n = remaining - xfer
                left_n = left - xfer
                with m.If(xfer):
                    m.d.sync += [addr.eq(addr + 4), moved.eq(moved_n),
                                 remaining.eq(remaining_n), left.eq(left_n),
                                 any_xfer.eq(1), retries.eq(0)]
                    with m.If(is_read):
                        m.d.comb += [rfifo.w_en.eq(1), rfifo.w_data.eq(bus.ad)]
                    with m.Else():
                        m.d.comb += wfifo.r_en.eq(1)
                    m.d.sync += cbe_o.eq(phase_be(moved_n, remaining_n))

                master_abort = ~devsel_now & (since_addr >= DEVSEL_TIMEOUT - 1)
                target_abort = bus.stop & ~bus.devsel & devsel_seen
                lt_out = (lt_count == 0) & ~self.gnt
                with m.If(master_abort | target_abort):
                    m.d.sync += error.eq(Mux(master_abort, Status.MASTER_ABORT,
                                             Status.TARGET_ABORT))
                    with m.If(frame_o):
                        m.d.sync += [state.eq(S_STOPPING), frame_o.eq(0)]
                    with m.Else():
                        m.d.sync += [state.eq(S_TURN), irdy_o.eq(0)]
                with m.Elif(~frame_o & (xfer | bus.stop)):
                    m.d.sync += [state.eq(S_TURN), irdy_o.eq(0)]
                    with m.If(bus.stop & ~xfer & ~any_xfer):
                        self._retried(m, retries, backoff, error)
                with m.Elif(bus.stop):
                    # retry / disconnect: last phase now, FRAME# off, IRDY# stays
                    m.d.sync += [state.eq(S_STOPPING), frame_o.eq(0)]
                    with m.If(~xfer & ~any_xfer):
                        self._retried(m, retries, backoff, error)
                with m.Elif(xfer & ((left_n <= 1) | lt_out)):
                    m.d.sync += frame_o.eq(0)

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
