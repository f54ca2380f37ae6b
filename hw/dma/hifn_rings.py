"""Hifn-style descriptor rings in host memory, polled by the chip (hifn7751reg.h).

A ring is an array of 8-byte descriptors in host DRAM; the driver writes the
ring's bus address into the chip and hands descriptors over by setting VALID.
The chip keeps its own position in each ring, polls the descriptor there,
and clears VALID when it has consumed it. A descriptor with JUMP (and VALID)
sends the chip back to the address in its ``p`` word (the ring start), which
is how a ring wraps.

Descriptor (two little-endian dwords, :class:`Descriptor`)::

    +0  l   31 VALID  30 JUMP  29 LAST  27 OVER  26 DESTOVER  25 MASKDONEIRQ
            15:0 length in bytes
    +4  p   bus address of the buffer (of the ring start for a JUMP)

(hifn7751reg.h ``HIFN_D_*``; the layouts are in :mod:`hw.cards.hifn7751reg`.) Byte order is little-endian only; the
DMA_CNFG big-endian mode is not modelled.

:class:`RingEngine` serves the card with two operations on ring ``r``
(0 command, 1 source, 2 result, 3 destination — the order of their address
registers and DMA_CSR fields):

``fetch``   read the descriptor at the ring position until it is VALID: a
            VALID JUMP moves the position to its ``p`` and reads again (the
            jump descriptor itself is not written back, so the driver may
            re-arm it at any time, as OpenBSD's hifn does on every wrap; a
            JUMP found right after a JUMP ends the fetch with ``rsp_error``,
            since a ring has one JUMP, at its end, back to its start, and a
            JUMP to itself would be read for ever); an
            invalid one raises ``wait[r]`` and is read again after
            ``poll_period`` clocks (and only while the ring is enabled).
            Answers with the descriptor.
``release`` write the descriptor's ``l`` word back with VALID clear and
            advance the position by 8; pulses ``done[r]`` unless the
            descriptor had MASKDONEIRQ, ``last[r]`` if it had LAST.

Every operation runs to completion on the shared PCI initiator (the card
gives the engine the initiator while an operation is under way); a DMA error
ends it with ``rsp_error`` and the card halts.
"""

from amaranth.hdl import Module, Signal, Mux, Cat
from amaranth.lib import enum, stream, wiring
from amaranth.lib.wiring import In, Out

from ..cards.hifn7751reg import (Descriptor, DescriptorControl, D_VALID, D_JUMP, D_LAST,
                                 D_OVER, D_DESTOVER, D_MASKDONEIRQ, D_LENGTH, Ring,
                                 RING_CMD, RING_SRC, RING_RES, RING_DST, RING_NAMES)
from ..pci.bus import Cmd
from ..pci.initiator import InitiatorCommand, Status

__all__ = ["DescriptorControl", "Descriptor", "RingEngine", "RingState", "D_VALID",
           "D_JUMP", "D_LAST", "D_OVER", "D_DESTOVER", "D_MASKDONEIRQ", "D_LENGTH",
           "Ring", "RING_CMD", "RING_SRC", "RING_RES", "RING_DST", "RING_NAMES"]


class RingState(enum.Enum, shape=4):
    """Ring-engine FSM states (``rings.state`` in VCDs)."""
    IDLE = 0            # waiting for a request
    CHECK = 1           # fetch: wait until the ring is enabled
    RD_ISSUE = 2        # fetch: read the descriptor (2 dwords)
    RD_W0 = 3           # fetch: take the l word
    RD_W1 = 4           # fetch: take the p word
    RD_DONE = 5         # fetch: the read's report; VALID / JUMP / invalid
    SLEEP = 6           # fetch: invalid descriptor, wait the poll period
    WR_PUSH = 7         # release: the l word (VALID clear) into the write FIFO
    WR_ISSUE = 8        # release: write it back
    WR_WAIT = 9         # release: the write's report; advance the position


class RingEngine(wiring.Component):
    """Position, polling and ownership handling of four descriptor rings."""

    N = 4

    def __init__(self):
        super().__init__({
            # ring base registers (the card's address registers write here)
            "base_we": In(self.N),
            "base_wdata": In(32),
            "base": Out(32).array(self.N),
            "reset": In(1),                 # positions back to base, FSM idle
            "enable": In(self.N),
            "poll_period": In(24),          # clocks between polls of an invalid descriptor
            # requests from the card
            "req_valid": In(1),
            "req_ring": In(2),
            "req_release": In(1),
            "req_l": In(32),                # the ``l`` word to write back (release)
            "req_ready": Out(1),
            "rsp_valid": Out(1),            # one-clock pulse: operation finished
            "rsp": Out(Descriptor),
            "rsp_error": Out(1),
            "ring": Out(2),                 # ring of the operation under way
            "busy": Out(1),
            # status pulses / levels for DMA_CSR
            "wait": Out(self.N),            # pulse: found an invalid descriptor
            "done": Out(self.N),            # pulse: released without MASKDONEIRQ
            "last": Out(self.N),            # pulse: released with LAST
            # the shared initiator
            "dma_cmd": Out(stream.Signature(InitiatorCommand)),
            "dma_wdata": Out(stream.Signature(32)),
            "dma_rdata": In(stream.Signature(32)),
            "dma_done": In(1),
            "dma_status": In(2),
            "state": Out(RingState),
            # exact idle skipping (hw.machine): at rest, the next
            # ``quiet_for`` edges only count the poll timer down; an edge
            # with ``skip`` = k - 1 counts it down by k
            "quiet": Out(1),
            "quiet_for": Out(24),
            "skip": In(32),
        })

    def elaborate(self, platform):
        m = Module()
        N = self.N
        state = self.state
        base = [Signal(32, name=f"base{r}") for r in range(N)]
        cur = [Signal(32, name=f"cur{r}") for r in range(N)]
        for r in range(N):
            m.d.comb += self.base[r].eq(base[r])
            with m.If(self.base_we[r]):
                m.d.sync += [base[r].eq(self.base_wdata), cur[r].eq(self.base_wdata)]

        ring = Signal(2)
        release = Signal()
        wl = Signal(DescriptorControl)     # l word to write back
        d = Signal(Descriptor)             # descriptor being read
        timer = Signal(24)
        jumped = Signal()                  # this fetch has followed a JUMP
        m.d.comb += [self.ring.eq(ring), self.busy.eq(state != RingState.IDLE),
                     self.req_ready.eq(state == RingState.IDLE), self.rsp.eq(d)]

        addr = Signal(32)
        with m.Switch(ring):
            for r in range(N):
                with m.Case(r):
                    m.d.comb += addr.eq(cur[r])
        enabled = Signal()
        m.d.comb += enabled.eq((self.enable >> ring)[0])

        cmd = self.dma_cmd.payload
        ok = self.dma_status == Status.OK
        done_seen = Signal()           # the read's (successful) report came early
        with m.If((state == RingState.RD_W0) | (state == RingState.RD_W1)):
            with m.If(self.dma_done & ok):
                m.d.sync += done_seen.eq(1)
        with m.Elif(state != RingState.RD_DONE):
            m.d.sync += done_seen.eq(0)

        with m.Switch(state):
            with m.Case(RingState.IDLE):
                with m.If(self.req_valid):
                    # the l word goes back without VALID: the host owns it again
                    m.d.sync += [ring.eq(self.req_ring), release.eq(self.req_release),
                                 wl.eq(self.req_l), wl.valid.eq(0), jumped.eq(0)]
                    with m.If(self.req_release):
                        m.d.sync += state.eq(RingState.WR_PUSH)
                    with m.Else():
                        m.d.sync += state.eq(RingState.CHECK)
            with m.Case(RingState.CHECK):
                with m.If(enabled):
                    m.d.sync += state.eq(RingState.RD_ISSUE)
            with m.Case(RingState.RD_ISSUE):
                m.d.comb += [self.dma_cmd.valid.eq(1), cmd.addr.eq(addr), cmd.count.eq(2),
                             cmd.code.eq(Cmd.MEM_READ), cmd.first_be.eq(0xF),
                             cmd.last_be.eq(0xF)]
                with m.If(self.dma_cmd.ready):
                    m.d.sync += state.eq(RingState.RD_W0)
            with m.Case(RingState.RD_W0):
                m.d.comb += self.dma_rdata.ready.eq(1)
                with m.If(self.dma_rdata.valid):
                    m.d.sync += [d.l.eq(self.dma_rdata.payload), state.eq(RingState.RD_W1)]
            with m.Case(RingState.RD_W1):
                m.d.comb += self.dma_rdata.ready.eq(1)
                with m.If(self.dma_rdata.valid):
                    m.d.sync += [d.p.eq(self.dma_rdata.payload), state.eq(RingState.RD_DONE)]
            with m.Case(RingState.RD_DONE):
                # the transaction ends after its last data phase; wait for the report
                # (it may have come while the words were still being taken)
                with m.If(self.dma_done | done_seen):
                    with m.If(~(ok | done_seen)):
                        m.d.sync += state.eq(RingState.IDLE)
                        m.d.comb += [self.rsp_valid.eq(1), self.rsp_error.eq(1)]
                    with m.Elif(d.l.valid & d.l.jump & jumped):
                        m.d.sync += state.eq(RingState.IDLE)
                        m.d.comb += [self.rsp_valid.eq(1), self.rsp_error.eq(1)]
                    with m.Elif(d.l.valid & d.l.jump):
                        m.d.sync += jumped.eq(1)
                        for r in range(N):
                            with m.If(ring == r):
                                m.d.sync += cur[r].eq(d.p)
                        m.d.sync += state.eq(RingState.CHECK)
                    with m.Elif(d.l.valid):
                        m.d.sync += state.eq(RingState.IDLE)
                        m.d.comb += self.rsp_valid.eq(1)
                    with m.Else():
                        m.d.comb += self.wait.eq(1 << ring)
                        m.d.sync += [timer.eq(self.poll_period), state.eq(RingState.SLEEP)]
            with m.Case(RingState.SLEEP):
                m.d.sync += timer.eq(Mux(timer > self.skip + 1, timer - 1 - self.skip, 0))
                with m.If((timer <= 1) & enabled):
                    m.d.sync += state.eq(RingState.RD_ISSUE)
            with m.Case(RingState.WR_PUSH):
                m.d.comb += [self.dma_wdata.valid.eq(1), self.dma_wdata.payload.eq(wl)]
                with m.If(self.dma_wdata.ready):
                    m.d.sync += state.eq(RingState.WR_ISSUE)
            with m.Case(RingState.WR_ISSUE):
                m.d.comb += [self.dma_cmd.valid.eq(1), cmd.addr.eq(addr), cmd.count.eq(1),
                             cmd.code.eq(Cmd.MEM_WRITE), cmd.first_be.eq(0xF),
                             cmd.last_be.eq(0xF)]
                with m.If(self.dma_cmd.ready):
                    m.d.sync += state.eq(RingState.WR_WAIT)
            with m.Case(RingState.WR_WAIT):
                with m.If(self.dma_done):
                    m.d.sync += state.eq(RingState.IDLE)
                    m.d.comb += [self.rsp_valid.eq(1), self.rsp_error.eq(~ok)]
                    with m.If(ok):
                        for r in range(N):
                            with m.If(ring == r):
                                m.d.sync += cur[r].eq(cur[r] + 8)
                        with m.If(~wl.maskdoneirq):
                            m.d.comb += self.done.eq(1 << ring)
                        with m.If(wl.last):
                            m.d.comb += self.last.eq(1 << ring)

        with m.If(self.reset):
            m.d.sync += state.eq(RingState.IDLE)
            for r in range(N):
                m.d.sync += cur[r].eq(base[r])
        self._quiet(m, state, timer, enabled, done_seen, cur, base)
        return m

    def _quiet(self, m, state, timer, enabled, done_seen, cur, base) -> None:
        """At rest: idle with no request (held in reset only once the
        positions are back at the bases), or asleep on an invalid descriptor
        with the poll timer the only thing moving — ``timer - 1`` more edges
        before it wakes the engine; for ever while the ring is disabled."""
        at_base = Cat(*[cur[r] == base[r] for r in range(self.N)]).all()
        idle = (state == RingState.IDLE) & ~self.req_valid & (~self.reset | at_base)
        asleep = (state == RingState.SLEEP) & ~self.reset & ~done_seen
        m.d.comb += self.quiet.eq(idle | (asleep & (~enabled | (timer >= 2))))
        m.d.comb += self.quiet_for.eq(Mux(asleep & enabled, timer - 1, 2**24 - 1))
