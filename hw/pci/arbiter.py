"""Central PCI arbiter: REQ#/GNT# per master, round-robin, parking, hidden arbitration.

Rules followed (PCI 2.3 §3.4):

- At most one GNT# is asserted at a time.
- While the bus is busy the arbiter may move GNT# from one master to another
  in the same clock (hidden arbitration: the next owner waits for idle).
  While the bus is idle, one clock with no GNT# separates two grants.
- A master keeps GNT# until it has started a transaction (address phase seen)
  or drops REQ#; then the next requester in round-robin order gets it.
- With no requests GNT# stays on the last owner (bus parking).
- A granted master that does not start within 16 clocks of an idle bus loses
  its grant (PCI 2.3 §3.4.1 allows the arbiter to ignore it).
"""

from amaranth.hdl import Module, Signal, Cat
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .bus import Lines

__all__ = ["Arbiter"]

#: clocks a granted master may leave an idle bus unused (PCI 2.3 §3.4.1: 16)
START_TIMEOUT = 16


class Arbiter(wiring.Component):
    def __init__(self, n_masters: int):
        self.n = n_masters
        super().__init__({
            "req": In(n_masters),
            "gnt": Out(n_masters),
            "bus": In(Lines),
            # longest stretch of REQ# per master, in clocks (saturating): masters
            # drop REQ# when their transaction starts, so this is the longest
            # wait for the bus, GNT# plus bus idle
            "wait_max": Out(16).array(n_masters),
            # exact idle skipping: no REQ#, bus idle, the grant parked and
            # settled: the next edge changes none of the arbiter's registers
            "quiet": Out(1),
        })
        #: index of the master that holds (or last held) the grant
        self.owner = Signal(range(max(n_masters, 2)))

    def elaborate(self, platform):
        m = Module()
        n = self.n
        idle = ~self.bus.frame & ~self.bus.irdy
        frame_prev = Signal()
        m.d.sync += frame_prev.eq(self.bus.frame)
        addr_phase = self.bus.frame & ~frame_prev

        granted = Signal()          # a GNT# is asserted
        started = Signal()          # the owner has started since its grant
        idle_count = Signal(range(START_TIMEOUT + 1))

        # Round-robin: the first requester after the current owner.
        nxt = Signal(range(max(n, 2)))
        nxt_valid = Signal()
        for cur in range(n):
            with m.If(self.owner == cur):
                for k in reversed(range(1, n + 1)):
                    cand = (cur + k) % n
                    with m.If(self.req[cand]):
                        m.d.comb += [nxt.eq(cand), nxt_valid.eq(1)]
        other_req = nxt_valid & (nxt != self.owner)

        owner_req = self.req.bit_select(self.owner, 1)
        with m.If(granted):
            with m.If(addr_phase):
                m.d.sync += started.eq(1)
            # the start timeout runs only while the owner asks for the bus: a
            # grant parked on a master with no REQ# is not a master failing
            # to start (§3.4.1, §3.4.3)
            with m.If(idle & ~started & owner_req):
                m.d.sync += idle_count.eq(idle_count + 1)
            timed_out = idle_count == START_TIMEOUT
            move = (started | addr_phase | ~owner_req | timed_out) & other_req
            with m.If(move):
                m.d.sync += [started.eq(0), idle_count.eq(0)]
                with m.If(idle & ~addr_phase):
                    # one clock with no GNT# on an idle bus
                    m.d.sync += [granted.eq(0), self.owner.eq(nxt)]
                with m.Else():
                    m.d.sync += self.owner.eq(nxt)      # hidden: switch now
            with m.Elif(timed_out):
                m.d.sync += [granted.eq(0), idle_count.eq(0), started.eq(0)]
        with m.Else():
            # Grant the owner-elect (set when the previous grant was removed),
            # or the next requester, or park on the last owner.
            m.d.sync += [granted.eq(1), started.eq(0), idle_count.eq(0)]
            with m.If(nxt_valid & ~self.req.bit_select(self.owner, 1)):
                m.d.sync += self.owner.eq(nxt)

        for i in range(n):
            m.d.comb += self.gnt[i].eq(granted & (self.owner == i))

        # fairness measurement: clocks each master has been requesting
        waits = []
        for i in range(n):
            waiting = Signal(16, name=f"wait{i}")
            waits.append(waiting)
            with m.If(self.req[i]):
                with m.If(waiting != 0xFFFF):
                    m.d.sync += waiting.eq(waiting + 1)
                with m.If(waiting + 1 > self.wait_max[i]):
                    m.d.sync += self.wait_max[i].eq(waiting + 1)
            with m.Else():
                m.d.sync += waiting.eq(0)

        m.d.comb += self.quiet.eq(
            idle & ~frame_prev & (self.req == 0) & granted & (idle_count != START_TIMEOUT)
            & ~Cat(*waits).any())
        return m
