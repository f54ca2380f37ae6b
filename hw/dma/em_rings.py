"""The 8254x's descriptor ring engines over the card's PCI initiator.

Rings of 16-byte legacy descriptors in host memory (Intel 8254x SDM §3.2
receive, §3.3-3.4 transmit; layouts :class:`hw.cards.em8254xreg.TxDesc` /
``RxDesc``): base (xDBAL), length in bytes (xDLEN), head (xDH, the card's
position) and tail (xDT, written by software). Descriptors from head up to
tail belong to the card; it hands each back by advancing head (and, for a
transmit descriptor with RS, by writing DD into it).

:class:`DmaShare` gives the one initiator to one engine at a time, for a
whole operation (command, its data, its report). Engines request it with
``req`` and hold it until the report (``done``) has come.

:class:`EmTxRing` — while TCTL.EN and head ≠ tail: read up to
``PREFETCH`` descriptors in one burst (Memory Read Line), then per
descriptor read its buffer (Memory Read Multiple, any byte alignment and
length) into the MAC's transmit FIFO as beats of 1..4 bytes, the packet's
end on the EOP descriptor's last byte, IFCS as the packet's flag; with RS
(or RPS) write the descriptor's status dword back with DD; advance head.
TXQE when head reaches tail. A descriptor with DEXT (context/data
descriptors) is consumed without data: not modelled.

:class:`EmRxRing` — for each frame the MAC has put in its FIFO: a frame the
MAC refused is drained; otherwise, per receive buffer (RCTL's buffer size),
wait for a descriptor (head ≠ tail; ``no_desc`` once per frame for RNBC),
read it, write the frame's bytes to the buffer (any byte alignment: the
first and last dwords carry byte enables), write length and status (DD, EOP
on the frame's last buffer; IXSM: no checksum offload) back, advance head,
and raise RXDMT0 when the free descriptors fall to RCTL.RDMTS's threshold.

A DMA error (master or target abort, or the initiator giving up) halts the
engine (``halted``) until the card's reset.
"""

from amaranth.hdl import Module, Signal, Mux, Cat, Array
from amaranth.lib import enum, stream, wiring
from amaranth.lib.wiring import In, Out

from ..net.mac import RxInfo
from ..net.packer import Lanes
from ..pci.bus import Cmd
from ..pci.initiator import InitiatorCommand, Status

__all__ = ["DmaPort", "DmaShare", "EmTxRing", "EmRxRing", "TxRingState", "RxRingState",
           "PREFETCH"]

#: transmit descriptors read per burst (model's choice: four = 64 bytes, two
#: 32-byte cache lines; SDM §3.4 describes prefetching without a number)
PREFETCH = 4

DmaPort = wiring.Signature({
    "req": Out(1), "gnt": In(1),
    "cmd": Out(stream.Signature(InitiatorCommand)),
    "wdata": Out(stream.Signature(32)),
    "rdata": In(stream.Signature(32)),
    "done": In(1), "status": In(2),
})


class DmaShare(wiring.Component):
    """The initiator for two engines (``c0``, ``c1``); when both ask, the one
    not served last goes first."""

    def __init__(self):
        super().__init__({
            "c0": In(DmaPort), "c1": In(DmaPort),
            "ini_cmd": Out(stream.Signature(InitiatorCommand)),
            "ini_wdata": Out(stream.Signature(32)),
            "ini_rdata": In(stream.Signature(32)),
            "ini_done": In(1), "ini_status": In(2),
        })

    def elaborate(self, platform):
        m = Module()
        owner = Signal()
        held = Signal()
        cs = [self.c0, self.c1]
        with m.If(held & ~Mux(owner, cs[1].req, cs[0].req)):
            m.d.sync += held.eq(0)
        with m.If(~held & (cs[0].req | cs[1].req)):
            pick = Mux(cs[0].req & cs[1].req, ~owner, cs[1].req)
            m.d.sync += [owner.eq(pick), held.eq(1)]
        for k, c in enumerate(cs):
            mine = held & (owner == k)
            m.d.comb += c.gnt.eq(mine)
            with m.If(mine):
                m.d.comb += [
                    self.ini_cmd.valid.eq(c.cmd.valid), self.ini_cmd.payload.eq(c.cmd.payload),
                    c.cmd.ready.eq(self.ini_cmd.ready),
                    self.ini_wdata.valid.eq(c.wdata.valid),
                    self.ini_wdata.payload.eq(c.wdata.payload),
                    c.wdata.ready.eq(self.ini_wdata.ready),
                    c.rdata.valid.eq(self.ini_rdata.valid),
                    c.rdata.payload.eq(self.ini_rdata.payload),
                    self.ini_rdata.ready.eq(c.rdata.ready),
                    c.done.eq(self.ini_done), c.status.eq(self.ini_status),
                ]
        return m


def _command(dma, addr, count, code, valid=1, first_be=0xF, last_be=0xF) -> list:
    """Drive the shared initiator's command stream: one bus command."""
    c = dma.cmd.payload
    return [dma.cmd.valid.eq(valid), c.addr.eq(addr), c.count.eq(count), c.code.eq(code),
            c.first_be.eq(first_be), c.last_be.eq(last_be)]


def _ring_count(head, tail, n):
    """Descriptors from head up to tail in a ring of n."""
    return Mux(tail >= head, tail - head, tail + n - head)


def _next(idx, n):
    return Mux(idx + 1 >= n, 0, idx + 1)


class TxRingState(enum.Enum, shape=4):
    IDLE = 0        # head = tail, or transmit disabled
    FETCH = 1       # read descriptors (burst)
    FETCH_WAIT = 2  # take them and the read's report
    NEXT = 3        # decode the next prefetched descriptor
    DATA = 4        # buffer read into the transmit FIFO
    DATA_WAIT = 5   # the read's report
    WB_DATA = 6     # status dword with DD into the write FIFO
    WB = 7          # write it back
    WB_WAIT = 8     # the write's report
    ADVANCE = 9     # head + 1; TXQE when it reaches tail
    HALT = 10       # a DMA error: stopped until reset


class EmTxRing(wiring.Component):
    """Transmit descriptor ring engine (see the module docstring)."""

    def __init__(self):
        super().__init__({
            "enable": In(1), "base": In(32), "len_bytes": In(20), "tail": In(16),
            "head": Out(16), "head_we": In(1), "head_wdata": In(16),
            "dma": Out(DmaPort),
            "words": Out(stream.Signature(Lanes)),
            "written_back": Out(1),     # pulse: a descriptor with RS got DD
            "wb_ide": Out(1),           # ... and it had IDE
            "queue_empty": Out(1),      # pulse: head reached tail (TXQE)
            "dma_error": Out(1), "halted": Out(1), "busy": Out(1),
            "state": Out(TxRingState),
        })

    def elaborate(self, platform):
        m = Module()
        S = TxRingState
        state, head, dma = self.state, self.head, self.dma
        n = self.len_bytes >> 4
        desc = Array(Signal(32, name=f"desc{k}") for k in range(4 * PREFETCH))
        nd = Signal(range(PREFETCH + 1))          # descriptors in the buffer
        k = Signal(range(4 * PREFETCH + 1))       # words taken
        i = Signal(range(PREFETCH + 1))           # descriptor being served
        seen = Signal()                            # the read's report came
        addr, length, cmd, w3 = Signal(32), Signal(16), Signal(8), Signal(32)
        left = Signal(16)                          # bytes of the buffer still to take
        first = Signal()
        issued = Signal()                          # the buffer's read is queued
        pending = _ring_count(head, self.tail, n)
        with m.If(self.head_we):
            m.d.sync += head.eq(self.head_wdata)
        m.d.comb += [self.halted.eq(state == S.HALT),
                     self.busy.eq(((state != S.IDLE) & (state != S.HALT))
                                  | (self.enable & (pending != 0) & (state == S.IDLE)))]
        ok = dma.status == Status.OK
        with m.If(dma.done):
            m.d.sync += seen.eq(1)

        with m.Switch(state):
            with m.Case(S.IDLE):
                with m.If(self.enable & (pending != 0) & (n != 0)):
                    to_end = n - head
                    cnt = Mux(pending > PREFETCH, PREFETCH, pending)
                    m.d.sync += [nd.eq(Mux(cnt > to_end, to_end, cnt)), k.eq(0), i.eq(0),
                                 state.eq(S.FETCH)]
            with m.Case(S.FETCH):
                m.d.comb += [dma.req.eq(1), *_command(dma, self.base + (head << 4), nd << 2,
                                                      Cmd.MEM_READ_LINE, valid=dma.gnt)]
                with m.If(dma.gnt & dma.cmd.ready):
                    m.d.sync += [state.eq(S.FETCH_WAIT), seen.eq(0)]
            with m.Case(S.FETCH_WAIT):
                m.d.comb += [dma.req.eq(1), dma.rdata.ready.eq(1)]
                with m.If(dma.rdata.valid):
                    m.d.sync += [desc[k].eq(dma.rdata.payload), k.eq(k + 1)]
                with m.If(dma.done & ~ok):
                    m.d.sync += state.eq(S.HALT)
                    m.d.comb += self.dma_error.eq(1)
                with m.Elif((seen | dma.done) & (k == (nd << 2))):
                    m.d.sync += state.eq(S.NEXT)
            with m.Case(S.NEXT):
                base = i << 2
                m.d.sync += [addr.eq(desc[base]), length.eq(desc[base + 2][0:16]),
                             cmd.eq(desc[base + 2][24:32]), w3.eq(desc[base + 3]),
                             left.eq(desc[base + 2][0:16]), first.eq(1), issued.eq(0),
                             state.eq(Mux((desc[base + 2][0:16] == 0) | desc[base + 2][29],
                                          S.WB_DATA, S.DATA))]
            with m.Case(S.DATA):
                self._data(m, dma, addr, length, cmd, left, first, seen, ok, issued)
            with m.Case(S.WB_DATA):
                with m.If(~(cmd[3] | cmd[4])):          # neither RS nor RPS: no write-back
                    m.d.sync += state.eq(S.ADVANCE)
                with m.Else():
                    m.d.comb += [dma.req.eq(1), dma.wdata.valid.eq(dma.gnt),
                                 dma.wdata.payload.eq(w3 | 1)]      # status.dd
                    with m.If(dma.gnt & dma.wdata.ready):
                        m.d.sync += state.eq(S.WB)
            with m.Case(S.WB):
                m.d.comb += [dma.req.eq(1), *_command(dma, self.base + ((head << 4) | 12), 1,
                                                      Cmd.MEM_WRITE)]
                with m.If(dma.cmd.ready):
                    m.d.sync += state.eq(S.WB_WAIT)
            with m.Case(S.WB_WAIT):
                m.d.comb += dma.req.eq(1)
                with m.If(dma.done):
                    with m.If(ok):
                        m.d.comb += [self.written_back.eq(1), self.wb_ide.eq(cmd[7])]
                        m.d.sync += state.eq(S.ADVANCE)
                    with m.Else():
                        m.d.comb += self.dma_error.eq(1)
                        m.d.sync += state.eq(S.HALT)
            with m.Case(S.ADVANCE):
                new_head = _next(head, n)
                m.d.sync += [head.eq(new_head), i.eq(i + 1)]
                with m.If(new_head == self.tail):
                    m.d.comb += self.queue_empty.eq(1)
                m.d.sync += state.eq(Mux(i + 1 < nd, S.NEXT, S.IDLE))
        return m

    def _data(self, m, dma, addr, length, cmd, left, first, seen, ok, issued):
        """Read the buffer; each dword's bytes of the buffer go out as one beat."""
        S = TxRingState
        off = addr[0:2]
        m.d.comb += dma.req.eq(1)
        with m.If(~issued):
            m.d.comb += _command(dma, addr & ~3, (off + length + 3) >> 2, Cmd.MEM_READ_MULT,
                                 valid=dma.gnt)
            with m.If(dma.gnt & dma.cmd.ready):
                m.d.sync += [issued.eq(1), seen.eq(0)]
        with m.Else():
            skip = Mux(first, off, 0)
            room = 4 - skip
            take = Mux(left < room, left, room)
            w = dma.rdata.payload
            beat = self.words.payload
            m.d.comb += [self.words.valid.eq(dma.rdata.valid & (left != 0)),
                         beat.data.eq(w >> (skip << 3)), beat.n.eq(take),
                         beat.last.eq(cmd[0] & (left == take)), beat.flag.eq(cmd[1]),
                         dma.rdata.ready.eq(self.words.ready & (left != 0))]
            with m.If(self.words.valid & self.words.ready):
                m.d.sync += [left.eq(left - take), first.eq(0)]
            with m.If(dma.done & ~ok):
                m.d.comb += self.dma_error.eq(1)
                m.d.sync += self.state.eq(S.HALT)
            with m.Elif((seen | dma.done) & (left == 0)):
                m.d.sync += self.state.eq(S.WB_DATA)


class RxRingState(enum.Enum, shape=4):
    IDLE = 0        # no frame waiting
    DRAIN = 1       # a refused frame: drop its words
    WAIT_DESC = 2   # head = tail: no descriptor for the frame yet
    FETCH = 3       # read the descriptor at head
    FETCH_WAIT = 4
    DATA = 5        # write the buffer
    DATA_WAIT = 6
    WB_DATA = 7     # length and status into the write FIFO
    WB = 8
    WB_WAIT = 9
    ADVANCE = 10    # head + 1, RXDMT0; next buffer or next frame
    HALT = 11


class EmRxRing(wiring.Component):
    """Receive descriptor ring engine (see the module docstring)."""

    def __init__(self):
        super().__init__({
            "enable": In(1), "base": In(32), "len_bytes": In(20), "tail": In(16),
            "head": Out(16), "head_we": In(1), "head_wdata": In(16),
            "buf_size": In(15), "rdmts": In(2),
            "words": In(stream.Signature(32)),
            "info": In(stream.Signature(RxInfo)),
            "dma": Out(DmaPort),
            "frame_done": Out(1),       # pulse: a frame's last buffer written back
            "no_desc": Out(1),          # pulse: a frame found no descriptor (RNBC)
            "min_threshold": Out(1),    # pulse: free descriptors at the threshold (RXDMT0)
            "dma_error": Out(1), "halted": Out(1), "busy": Out(1),
            "state": Out(RxRingState),
        })

    def elaborate(self, platform):
        m = Module()
        S = RxRingState
        state, head, dma, info = self.state, self.head, self.dma, self.info.payload
        n = self.len_bytes >> 4
        with m.If(self.head_we):
            m.d.sync += head.eq(self.head_wdata)
        left = Signal(16)           # frame bytes still to write
        chunk = Signal(16)          # bytes into this buffer
        buf = Signal(32)            # buffer address
        k = Signal(range(5))
        dropped = Signal(12)
        counted = Signal()          # RNBC counted for this frame
        seen = Signal()
        ok = dma.status == Status.OK
        with m.If(dma.done):
            m.d.sync += seen.eq(1)
        avail = _ring_count(head, self.tail, n)
        go = (avail != 0) & (n != 0) & self.enable
        # at rest: no frame, or a frame waiting for a descriptor (RNBC counted)
        m.d.comb += [self.halted.eq(state == S.HALT),
                     self.busy.eq(~(((state == S.IDLE) & ~self.info.valid)
                                    | ((state == S.WAIT_DESC) & counted & ~go)
                                    | (state == S.HALT)))]

        with m.Switch(state):
            with m.Case(S.IDLE):
                with m.If(self.info.valid):
                    m.d.sync += [left.eq(info.length), dropped.eq(0), counted.eq(0)]
                    m.d.sync += state.eq(Mux(info.ok, S.WAIT_DESC, S.DRAIN))
            with m.Case(S.DRAIN):
                m.d.comb += self.words.ready.eq(dropped != info.nwords)
                with m.If(self.words.valid & (dropped != info.nwords)):
                    m.d.sync += dropped.eq(dropped + 1)
                with m.If(dropped == info.nwords):
                    m.d.comb += self.info.ready.eq(1)
                    m.d.sync += state.eq(S.IDLE)
            with m.Case(S.WAIT_DESC):
                with m.If(go):
                    m.d.sync += [state.eq(S.FETCH), k.eq(0),
                                 chunk.eq(Mux(left > self.buf_size, self.buf_size, left))]
                with m.Elif(~counted):
                    m.d.comb += self.no_desc.eq(1)
                    m.d.sync += counted.eq(1)
            with m.Case(S.FETCH):
                m.d.comb += [dma.req.eq(1), *_command(dma, self.base + (head << 4), 4,
                                                      Cmd.MEM_READ_LINE, valid=dma.gnt)]
                with m.If(dma.gnt & dma.cmd.ready):
                    m.d.sync += [state.eq(S.FETCH_WAIT), seen.eq(0)]
            with m.Case(S.FETCH_WAIT):
                m.d.comb += [dma.req.eq(1), dma.rdata.ready.eq(1)]
                with m.If(dma.rdata.valid):
                    m.d.sync += k.eq(k + 1)
                    with m.If(k == 0):
                        m.d.sync += buf.eq(dma.rdata.payload)
                with m.If(dma.done & ~ok):
                    m.d.comb += self.dma_error.eq(1)
                    m.d.sync += state.eq(S.HALT)
                with m.Elif((seen | dma.done) & (k == 4)):
                    m.d.sync += state.eq(S.DATA)
            with m.Case(S.DATA, S.DATA_WAIT):
                self._data(m, dma, buf, chunk, seen, ok, k)
            with m.Case(S.WB_DATA):
                last = chunk == left
                status = 0x01 | Mux(last, 0x02, 0) | 0x04          # DD, EOP, IXSM
                m.d.comb += [dma.req.eq(1), dma.wdata.valid.eq(1),
                             dma.wdata.payload.eq(Mux(k == 0, chunk, status))]
                with m.If(dma.wdata.ready):
                    m.d.sync += k.eq(k + 1)
                    with m.If(k == 1):
                        m.d.sync += state.eq(S.WB)
            with m.Case(S.WB):
                m.d.comb += [dma.req.eq(1), *_command(dma, self.base + ((head << 4) | 8), 2,
                                                      Cmd.MEM_WRITE)]
                with m.If(dma.cmd.ready):
                    m.d.sync += state.eq(S.WB_WAIT)
            with m.Case(S.WB_WAIT):
                m.d.comb += dma.req.eq(1)
                with m.If(dma.done):
                    m.d.sync += state.eq(Mux(ok, S.ADVANCE, S.HALT))
                    m.d.comb += self.dma_error.eq(~ok)
            with m.Case(S.ADVANCE):
                new_head = _next(head, n)
                free = _ring_count(new_head, self.tail, n)
                m.d.sync += [head.eq(new_head), left.eq(left - chunk)]
                with m.If(free == (n >> (self.rdmts + 1))):
                    m.d.comb += self.min_threshold.eq(1)
                with m.If(left == chunk):
                    m.d.comb += [self.frame_done.eq(1), self.info.ready.eq(1)]
                    m.d.sync += state.eq(S.IDLE)
                with m.Else():
                    m.d.sync += [state.eq(S.WAIT_DESC), counted.eq(0)]
        return m

    def _data(self, m, dma, buf, chunk, seen, ok, k):
        """Write ``chunk`` frame bytes at ``buf`` (any alignment): each source
        dword shifted up by the buffer's byte offset, the rest carried over."""
        S = RxRingState
        off = buf[0:2]
        end = (off + chunk)[0:2]
        count = (off + chunk + 3) >> 2
        nsrc = (chunk + 3) >> 2
        j = Signal(16)            # dwords pushed
        prev = Signal(32)
        with m.If(self.state == S.DATA):
            m.d.comb += [dma.req.eq(1),
                         *_command(dma, buf & ~3, count, Cmd.MEM_WRITE, valid=dma.gnt,
                                   first_be=(0xF << off)[0:4],
                                   last_be=Mux(end == 0, 0xF, (1 << end) - 1))]
            with m.If(dma.gnt & dma.cmd.ready):
                m.d.sync += [self.state.eq(S.DATA_WAIT), seen.eq(0), j.eq(0), prev.eq(0)]
        with m.Else():
            m.d.comb += dma.req.eq(1)
            need = j < nsrc
            src = Mux(need, self.words.payload, 0)
            shifted = Signal(32)
            with m.Switch(off):
                for o in range(4):
                    with m.Case(o):
                        if o == 0:
                            m.d.comb += shifted.eq(src)
                        else:
                            m.d.comb += shifted.eq(Cat(prev[32 - 8 * o:32], src[0:32 - 8 * o]))
            more = j < count
            m.d.comb += [dma.wdata.valid.eq(more & (~need | self.words.valid)),
                         dma.wdata.payload.eq(shifted),
                         self.words.ready.eq(more & need & dma.wdata.ready)]
            with m.If(dma.wdata.valid & dma.wdata.ready):
                m.d.sync += [j.eq(j + 1), prev.eq(src)]
            with m.If(dma.done & ~ok):
                m.d.comb += self.dma_error.eq(1)
                m.d.sync += self.state.eq(S.HALT)
            with m.Elif((seen | dma.done) & ~more):
                m.d.sync += [self.state.eq(S.WB_DATA), k.eq(0)]
