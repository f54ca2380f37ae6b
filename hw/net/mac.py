"""The NIC's Ethernet MAC: transmit FIFO → wire, wire → receive FIFO.

Both sides run on the bus clock and count wire time in picoseconds, so a
frame takes as many bus cycles as its bytes take on a 1000 Mb/s wire.

:class:`MacTx` — frames (packed words from the transmit DMA, ``last`` on a
packet's final word, ``flag`` = insert the FCS) wait in a FIFO of
``fifo_words`` dwords; a frame starts once all of it is in (store and
forward). The MAC sends the preamble and SFD (IEEE 802.3 §3.2.1-2: seven
0x55, one 0xD5), the frame, zero padding up to 60 bytes when ``psp`` (TCTL.PSP,
SDM §13.4.33; so 64 with the FCS, IEEE 802.3 §4.4.2 minFrameSize), and the
CRC-32 FCS (§3.2.9, :mod:`hw.net.crc32`) when ``flag``. A pacer lets each
beat of ``n`` bytes onto ``phy`` only when the wire is free: it keeps the
wire's busy time ahead of the clock, adds ``n`` × 8 ns per beat and the
inter-frame gap (96 bit times, 12 bytes, §4.4.2) after a frame's last beat,
and takes one bus period off every clock. Idle (no frame, debt 0), nothing
in it changes.

:class:`MacRx` — beats from the wire (or the transmit side in MAC
loopback) are checked for preamble and SFD; the frame's words (FCS
included, as the 8254x stores it unless RCTL.SECRC) go into a receive FIFO
of ``fifo_words`` dwords, and at its end an ``info`` entry says its length,
its word count and whether to deliver it: FCS good (the CRC register ends
at the residue), not longer than ``MAX_FRAME``, and its destination
accepted — our station address (RAL0/RAH0 with AV), broadcast with BAM, any
unicast with UPE, any multicast with MPE (SDM §13.4.22; the multicast table
is not modelled). A frame that finds less than a maximum frame's room in the
FIFO (or the info queue full) at its start is dropped whole: ``missed``
(MPC, and RXO). Frames are accepted only while ``enable`` (RCTL.EN).
"""

from amaranth.hdl import Module, Signal, Mux, Const
from amaranth.lib import data, enum, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from ..cards.em8254xreg import (PhyBeat, BYTE_PS, FCS_BYTES, IFG_BYTES, MAX_FRAME,
                                MIN_FRAME)
from .crc32 import CRC_INIT, RESIDUE, crc32_bytes
from .packer import BytePacker, Lanes

__all__ = ["MacTx", "MacRx", "RxInfo", "TxState", "RxState", "PREAMBLE", "SFD_WORD"]

#: the preamble and SFD as two little-endian beats (byte 0 first on the wire)
PREAMBLE = 0x5555_5555
SFD_WORD = 0xD555_5555
#: dwords of the longest frame the receive side keeps
MAX_FRAME_WORDS = (MAX_FRAME + 3) // 4

RxInfo = data.StructLayout({"length": 16, "nwords": 12, "ok": 1})


class TxState(enum.Enum, shape=3):
    IDLE = 0        # no complete frame in the FIFO
    PRE = 1         # preamble beat
    SFD = 2         # preamble + SFD beat
    DATA = 3        # the frame's words from the FIFO
    PAD = 4         # zero bytes up to MIN_FRAME - FCS
    FCS = 5         # the CRC


class RxState(enum.Enum, shape=2):
    IDLE = 0        # waiting for a frame's first beat
    SFD = 1         # the second preamble beat, ending in the SFD
    DATA = 2        # frame bytes
    SKIP = 3        # a frame not taken: wait for its last beat


class MacTx(wiring.Component):
    """Transmit MAC. ``period_ps``: the bus clock period the pacer counts."""

    def __init__(self, period_ps: int, fifo_words: int = 512):
        self.period_ps = int(period_ps)
        self.fifo_words = fifo_words
        super().__init__({
            "words": In(stream.Signature(Lanes)),
            "psp": In(1),
            "phy": Out(stream.Signature(PhyBeat, always_ready=True)),
            "sent": Out(1),              # pulse: a frame's last byte went into the pacer
            "sent_bytes": Out(16),       # its bytes, FCS included
            "busy": Out(1),
            "state": Out(TxState),
        })
        self.fifo = fifo.SyncFIFOBuffered(width=Lanes.size, depth=fifo_words)
        self.packer = BytePacker()

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = q = self.fifo
        m.submodules.packer = pk = self.packer
        frames = Signal(range(self.fifo_words + 1))      # whole frames in the FIFO
        w = self.words
        m.d.comb += [q.w_data.eq(w.payload.as_value()), q.w_en.eq(w.valid),
                     w.ready.eq(q.w_rdy)]
        head = Lanes(q.r_data)
        pushed_last = w.valid & w.ready & w.payload.last
        popped_last = q.r_en & q.r_rdy & head.last
        m.d.sync += frames.eq(frames + pushed_last - popped_last)

        state = self.state
        crc = Signal(32)
        count = Signal(16)                 # frame bytes so far (no preamble)
        ifcs = Signal()
        beat = pk.i.payload
        fire = pk.i.valid & pk.i.ready
        with m.Switch(state):
            with m.Case(TxState.IDLE):
                with m.If(frames != 0):
                    m.d.sync += [state.eq(TxState.PRE), crc.eq(CRC_INIT), count.eq(0)]
            with m.Case(TxState.PRE, TxState.SFD):
                m.d.comb += [pk.i.valid.eq(1), beat.n.eq(4),
                             beat.data.eq(Mux(state == TxState.PRE, PREAMBLE, SFD_WORD))]
                with m.If(fire):
                    m.d.sync += state.eq(Mux(state == TxState.PRE, TxState.SFD, TxState.DATA))
            with m.Case(TxState.DATA):
                m.d.comb += [pk.i.valid.eq(q.r_rdy), beat.data.eq(head.data),
                             beat.n.eq(head.n), beat.last.eq(head.last & ~head.flag),
                             q.r_en.eq(pk.i.ready)]
                with m.If(fire):
                    m.d.sync += [crc.eq(crc32_bytes(crc, head.data, head.n)),
                                 count.eq(count + head.n)]
                    with m.If(head.last):
                        m.d.sync += ifcs.eq(head.flag)
                        with m.If(~head.flag):
                            m.d.sync += state.eq(TxState.IDLE)
                            m.d.comb += [self.sent.eq(1), self.sent_bytes.eq(count + head.n)]
                        with m.Elif(self.psp & (count + head.n < MIN_FRAME - FCS_BYTES)):
                            m.d.sync += state.eq(TxState.PAD)
                        with m.Else():
                            m.d.sync += state.eq(TxState.FCS)
            with m.Case(TxState.PAD):
                left = (MIN_FRAME - FCS_BYTES) - count
                n = Signal(3)
                m.d.comb += [n.eq(Mux(left >= 4, 4, left)), pk.i.valid.eq(1),
                             beat.data.eq(0), beat.n.eq(n)]
                with m.If(fire):
                    m.d.sync += [crc.eq(crc32_bytes(crc, Const(0, 32), n)), count.eq(count + n)]
                    with m.If(left <= 4):
                        m.d.sync += state.eq(TxState.FCS)
            with m.Case(TxState.FCS):
                m.d.comb += [pk.i.valid.eq(1), beat.data.eq(~crc), beat.n.eq(4),
                             beat.last.eq(1)]
                with m.If(fire):
                    m.d.sync += state.eq(TxState.IDLE)
                    m.d.comb += [self.sent.eq(1), self.sent_bytes.eq(count + FCS_BYTES)]

        busy_wire = self._pacer(m, pk.o)
        m.d.comb += self.busy.eq(q.r_rdy | (state != TxState.IDLE) | pk.busy | busy_wire)
        return m

    def _pacer(self, m, src):
        """``src`` beats onto ``phy`` at wire speed; returns 'the wire is busy'."""
        P = self.period_ps
        debt = Signal(range(P + (4 + IFG_BYTES) * BYTE_PS + 1))  # ps the wire is busy ahead
        in_frame = Signal()
        go = src.valid & (debt < P)
        cost = src.payload.n * BYTE_PS + Mux(src.payload.last, IFG_BYTES * BYTE_PS, 0)
        after = Mux(go, debt + cost, debt)
        m.d.comb += [src.ready.eq(debt < P), self.phy.valid.eq(go),
                     self.phy.payload.data.eq(src.payload.data),
                     self.phy.payload.n.eq(src.payload.n),
                     self.phy.payload.first.eq(~in_frame),
                     self.phy.payload.last.eq(src.payload.last)]
        m.d.sync += debt.eq(Mux(after > P, after - P, 0))
        with m.If(go):
            m.d.sync += in_frame.eq(~src.payload.last)
        return debt != 0


class MacRx(wiring.Component):
    """Receive MAC with its FIFO (see the module docstring)."""

    def __init__(self, fifo_words: int = 1024, info_depth: int = 8):
        if fifo_words < 2 * MAX_FRAME_WORDS:
            raise ValueError(f"receive FIFO of {fifo_words} dwords holds less than two "
                             f"frames of {MAX_FRAME} bytes")
        self.fifo_words = fifo_words
        self.info_depth = info_depth
        super().__init__({
            "phy": In(stream.Signature(PhyBeat, always_ready=True)),
            "enable": In(1),
            "station": In(48),          # RAL0/RAH0: byte 0 in bits 7:0
            "station_valid": In(1),
            "upe": In(1), "mpe": In(1), "bam": In(1),
            "words": Out(stream.Signature(32)),
            "info": Out(stream.Signature(RxInfo)),
            # one-clock event pulses for the statistics and causes
            "frame_seen": Out(1),       # TPR
            "crc_error": Out(1),        # CRCERRS
            "oversize": Out(1),         # ROC
            "good": Out(1),             # GPRC, with good_bytes for GORC
            "good_bytes": Out(16),
            "missed": Out(1),           # MPC, RXO
            "busy": Out(1),
            "state": Out(RxState),
        })
        self.fifo = fifo.SyncFIFOBuffered(width=32, depth=fifo_words)
        self.infoq = fifo.SyncFIFOBuffered(width=RxInfo.size, depth=info_depth)

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = q = self.fifo
        m.submodules.infoq = iq = self.infoq
        m.d.comb += [self.words.payload.eq(q.r_data), self.words.valid.eq(q.r_rdy),
                     q.r_en.eq(self.words.ready),
                     self.info.payload.eq(iq.r_data), self.info.valid.eq(iq.r_rdy),
                     iq.r_en.eq(self.info.ready)]

        state = self.state
        b = self.phy.payload
        beat = self.phy.valid
        crc = Signal(32)
        length = Signal(16)
        nwords = Signal(12)
        dest = Signal(48)
        room = Signal()
        m.d.comb += room.eq((q.level <= self.fifo_words - MAX_FRAME_WORDS) & iq.w_rdy)
        m.d.comb += self.busy.eq((state != RxState.IDLE) | q.r_rdy | iq.r_rdy)

        with m.Switch(state):
            with m.Case(RxState.IDLE):
                with m.If(beat & b.first & ~b.last & self.enable):
                    with m.If((b.data == PREAMBLE) & (b.n == 4)):
                        m.d.sync += state.eq(RxState.SFD)
                    with m.Else():
                        m.d.sync += state.eq(RxState.SKIP)
            with m.Case(RxState.SFD):
                with m.If(beat):
                    m.d.comb += self.frame_seen.eq((b.data == SFD_WORD) & ~b.last)
                    with m.If((b.data != SFD_WORD) | (b.n != 4) | b.last):
                        m.d.sync += state.eq(Mux(b.last, RxState.IDLE, RxState.SKIP))
                    with m.Elif(room):
                        m.d.sync += [state.eq(RxState.DATA), crc.eq(CRC_INIT),
                                     length.eq(0), nwords.eq(0)]
                    with m.Else():
                        m.d.comb += self.missed.eq(1)
                        m.d.sync += state.eq(RxState.SKIP)
            with m.Case(RxState.DATA):
                with m.If(beat):
                    self._data_beat(m, q, iq, b, crc, length, nwords, dest)
            with m.Case(RxState.SKIP):
                with m.If(beat & b.last):
                    m.d.sync += state.eq(RxState.IDLE)
        return m

    def _data_beat(self, m, q, iq, b, crc, length, nwords, dest):
        crc_n = crc32_bytes(crc, b.data, b.n)
        len_n = length + b.n
        m.d.sync += [crc.eq(crc_n), length.eq(len_n)]
        keep = nwords < MAX_FRAME_WORDS
        with m.If(keep):
            m.d.comb += [q.w_en.eq(1), q.w_data.eq(b.data)]
            m.d.sync += nwords.eq(nwords + 1)
        with m.If(nwords == 0):
            m.d.sync += dest[0:32].eq(b.data)
        with m.If(nwords == 1):
            m.d.sync += dest[32:48].eq(b.data[0:16])
        with m.If(b.last):
            m.d.sync += self.state.eq(RxState.IDLE)
            good_crc = crc_n == RESIDUE
            too_long = len_n > MAX_FRAME
            broadcast = dest == (1 << 48) - 1
            multicast = dest[0]
            accepted = (self.station_valid & (dest == self.station)) \
                | (broadcast & self.bam) | (~multicast & self.upe) \
                | (multicast & ~broadcast & self.mpe)
            ok = good_crc & ~too_long & accepted
            info = RxInfo(iq.w_data)
            m.d.comb += [iq.w_en.eq(1), info.length.eq(len_n),
                         info.nwords.eq(nwords + keep), info.ok.eq(ok),
                         self.crc_error.eq(~good_crc), self.oversize.eq(too_long),
                         self.good.eq(ok), self.good_bytes.eq(len_n)]
