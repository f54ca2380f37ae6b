"""The NIC's wire as host events: one :class:`WirePort` per NIC slot.

The card's ``phy`` port carries wire beats (:class:`hw.cards.em8254xreg.PhyBeat`)
at wire speed. Host software (a link model, a link partner) must see whole
frames at the simulated time they end, and inject whole frames at a time of
its choosing, without Python running per clock. The port turns beats into
frames in a buffer the host reads by backdoor, and frames the host writes by
backdoor into beats, as host DRAM is reached (:mod:`hw.pci.dram`).

Transmit (card → host). Beats of ``tx`` are captured: the first two beats of
a frame (preamble and SFD, IEEE 802.3 §3.2.1-2, which the MAC always sends as
two four-byte beats) are checked and not kept; the rest, from the destination
address through the FCS, go word by word into entry ``frames mod QUEUE`` of
the transmit buffer (``QUEUE`` entries of ``SLOT_WORDS`` dwords). At the
frame's last beat the entry's length and the bus cycle of that beat go into
the entry's meta word and ``tx_frames`` counts it; ``event`` pulses, and
the machine raises attention for it one clock later (``hw.machine``). The host reads the entry and counts it taken in ``tx_taken`` (an
input it writes: frames taken so far). A frame that starts while all
``QUEUE`` entries hold untaken frames, is longer than an entry, or does not
begin with preamble and SFD is not kept and counts in ``tx_dropped``: the
wire never waits (a host that takes frames at attention never lets that
happen; frames are at least 84 bytes = 672 ns apart).

Receive (host → card). The host writes a frame (destination address through
FCS) into entry ``posted mod QUEUE`` of the receive buffer — dword 0 its
length in bytes, the bytes from dword 1 — then counts it in ``rx_posted``
(an input: frames posted so far). When the wire is free the port sends the
preamble beat, the SFD beat (the receive MAC checks both,
:class:`hw.net.mac.MacRx`) and the frame, four bytes a beat, paced as the
transmit MAC paces (:class:`hw.net.mac.MacTx`: a beat of ``n`` bytes takes
``n`` × 8 ns, a frame's last beat adds the 12-byte inter-frame gap, IEEE
802.3 §4.4.2; one bus period comes off every clock). After the last beat
``rx_frames`` counts it and ``event`` pulses. Frames posted back to back
follow each other at wire speed.

Storage (``blackbox=False``): Amaranth memories, reached by the pysim
backend through the simulator (:class:`sim.backend_pysim.PysimBackend`);
``blackbox=True``: the Verilog module ``ocfsim_wire``
(``sim/verilator/ocfsim_wire.sv``) whose buffers are C arrays per port
(``ocfsim_wire.c``) that Python maps through ctypes.

``quiet`` (exact idle skipping, docs/simulation.md): no frame being captured
or sent, nothing posted and not started, the receive pacer at rest.
"""

from amaranth.hdl import Module, Signal, Mux, Instance, ClockSignal, Cat
from amaranth.lib import enum, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..cards.em8254xreg import BYTE_PS, IFG_BYTES, PhyBeat
from .mac import PREAMBLE, SFD_WORD

__all__ = ["WirePort", "RxPortState", "QUEUE", "SLOT_WORDS", "SLOT_BYTES", "RX_MAX_BYTES",
           "META_LEN_BITS", "COUNT_BITS", "meta_unpack", "wire_port_names"]

#: frames the port holds per direction (model's choice: frames end at least
#: 672 ns apart and the host takes each at its attention, so two would do)
QUEUE = 4
#: dwords per buffer entry: a 2 KiB frame (longer than the 1522 bytes the
#: receive MAC takes, IEEE 802.3 §3.5, and the transmit FIFO's 2 KiB)
SLOT_WORDS = 512
SLOT_BYTES = 4 * SLOT_WORDS
#: the longest frame the host can post: an entry less its length dword
RX_MAX_BYTES = SLOT_BYTES - 4
#: a transmit entry's meta word: length in bits 15:0, end cycle in bits 79:16
META_LEN_BITS = 16
META_BITS = META_LEN_BITS + 64
#: width of the frame counters (wrap around; the host counts alike)
COUNT_BITS = 32


def meta_unpack(meta: int) -> tuple[int, int]:
    """(length in bytes, bus cycle of the last beat) of a transmit entry's meta."""
    return meta & ((1 << META_LEN_BITS) - 1), meta >> META_LEN_BITS


def wire_port_names(slot: int) -> dict[str, tuple[str, int]]:
    """The machine's flat ports of the wire port in ``slot``: name → (dir, width)."""
    return {f"wire{slot}_tx_frames": ("out", COUNT_BITS),
            f"wire{slot}_tx_dropped": ("out", COUNT_BITS),
            f"wire{slot}_tx_taken": ("in", COUNT_BITS),
            f"wire{slot}_rx_posted": ("in", COUNT_BITS),
            f"wire{slot}_rx_frames": ("out", COUNT_BITS)}


class RxPortState(enum.Enum, shape=3):
    IDLE = 0        # nothing posted, or the wire busy
    LEN = 1         # the entry's length dword is being read
    PRE = 2         # the preamble beat
    SFD = 3         # the SFD beat
    DATA = 4        # the frame's beats


class WireStore(wiring.Component):
    """The port's buffers: transmit data and meta (written by the port), receive
    data (read by the port). Memories, or the ``ocfsim_wire`` blackbox."""

    def __init__(self, slot: int, blackbox: bool):
        self.slot = slot
        self.blackbox = blackbox
        words = QUEUE * SLOT_WORDS
        aw = (words - 1).bit_length()
        super().__init__({
            "tx_en": In(1), "tx_addr": In(aw), "tx_data": In(32),
            "meta_en": In(1), "meta_addr": In(range(QUEUE)), "meta_data": In(META_BITS),
            "rx_en": In(1), "rx_addr": In(aw), "rx_data": Out(32),
        })
        if not blackbox:
            self.tx_mem = memory.Memory(shape=32, depth=words, init=[])
            self.meta_mem = memory.Memory(shape=META_BITS, depth=QUEUE, init=[])
            self.rx_mem = memory.Memory(shape=32, depth=words, init=[])

    def elaborate(self, platform):
        m = Module()
        if self.blackbox:
            m.submodules.store = Instance(
                "ocfsim_wire", p_PORT=self.slot, p_ADDR_W=len(self.tx_addr),
                p_QUEUE=QUEUE, p_QUEUE_W=len(self.meta_addr), i_clk=ClockSignal(),
                i_tx_en=self.tx_en, i_tx_addr=self.tx_addr, i_tx_data=self.tx_data,
                i_meta_en=self.meta_en, i_meta_addr=self.meta_addr,
                i_meta_len=self.meta_data[:META_LEN_BITS],
                i_meta_cycle=self.meta_data[META_LEN_BITS:],
                i_rx_en=self.rx_en, i_rx_addr=self.rx_addr, o_rx_data=self.rx_data)
            return m
        m.submodules.tx_mem = self.tx_mem
        m.submodules.meta_mem = self.meta_mem
        m.submodules.rx_mem = self.rx_mem
        tw = self.tx_mem.write_port()
        mw = self.meta_mem.write_port()
        rr = self.rx_mem.read_port(domain="sync")
        m.d.comb += [tw.en.eq(self.tx_en), tw.addr.eq(self.tx_addr), tw.data.eq(self.tx_data),
                     mw.en.eq(self.meta_en), mw.addr.eq(self.meta_addr),
                     mw.data.eq(self.meta_data),
                     rr.en.eq(self.rx_en), rr.addr.eq(self.rx_addr), self.rx_data.eq(rr.data)]
        return m


class WirePort(wiring.Component):
    """The wire of the NIC in ``slot`` (module doc). ``period_ps``: the bus
    clock period the receive pacer counts."""

    def __init__(self, slot: int, period_ps: int, *, blackbox: bool = False):
        self.slot = slot
        self.period_ps = int(period_ps)
        super().__init__({
            "tx": In(stream.Signature(PhyBeat, always_ready=True)),
            "rx": Out(stream.Signature(PhyBeat, always_ready=True)),
            "cycle": In(64),
            "tx_frames": Out(COUNT_BITS), "tx_dropped": Out(COUNT_BITS),
            "tx_taken": In(COUNT_BITS),
            "rx_posted": In(COUNT_BITS), "rx_frames": Out(COUNT_BITS),
            "event": Out(1),
            "quiet": Out(1),
        })
        self.store = WireStore(slot, blackbox)

    def elaborate(self, platform):
        m = Module()
        m.submodules.store = self.store
        tx_busy = self._transmit(m)
        rx_quiet = self._receive(m)
        m.d.comb += self.quiet.eq(~tx_busy & ~self.tx.valid & rx_quiet)
        return m

    def _transmit(self, m):
        """Capture: returns 'inside a frame'."""
        st, b, valid = self.store, self.tx.payload, self.tx.valid
        in_frame = Signal()
        beat = Signal(range(SLOT_WORDS + 3))      # beats of this frame so far, capped
        length = Signal(16)                       # frame bytes so far
        keep = Signal()                           # this frame is going into the buffer
        cur = Signal()                            # ... still, with this beat
        entry = self.tx_frames[:(QUEUE - 1).bit_length()]
        full = (self.tx_frames - self.tx_taken)[:COUNT_BITS] >= QUEUE
        data_beat = ~b.first & (beat >= 2)
        word = (beat - 2)[:(SLOT_WORDS - 1).bit_length()]
        fits = beat < SLOT_WORDS + 2
        with m.If(b.first):
            m.d.comb += cur.eq(~full & (b.data == PREAMBLE) & (b.n == 4) & ~b.last)
        with m.Elif(beat == 1):
            m.d.comb += cur.eq(keep & (b.data == SFD_WORD) & (b.n == 4) & ~b.last)
        with m.Else():
            m.d.comb += cur.eq(keep & fits)
        m.d.comb += [st.tx_addr.eq(Cat(word, entry)), st.tx_data.eq(b.data),
                     st.tx_en.eq(valid & data_beat & cur),
                     st.meta_addr.eq(entry), st.meta_data.eq(Cat((length + b.n)[:META_LEN_BITS], self.cycle))]
        with m.If(valid):
            m.d.sync += [in_frame.eq(~b.last), keep.eq(cur),
                         beat.eq(Mux(b.first, 1, Mux(fits, beat + 1, beat))),
                         length.eq(Mux(b.first, 0, Mux(data_beat, length + b.n, length)))]
            with m.If(b.last):
                with m.If(data_beat & cur):
                    m.d.comb += [st.meta_en.eq(1), self.event.eq(1)]
                    m.d.sync += self.tx_frames.eq(self.tx_frames + 1)
                with m.Else():
                    m.d.sync += self.tx_dropped.eq(self.tx_dropped + 1)
        return in_frame

    def _receive(self, m):
        """Send posted frames; returns 'at rest'."""
        P = self.period_ps
        st, o = self.store, self.rx.payload
        state = Signal(RxPortState)
        self.rx_state = state
        debt = Signal(range(P + (4 + IFG_BYTES) * BYTE_PS + 1))   # ps the wire is busy ahead
        left = Signal(16)                          # frame bytes still to send
        addr = Signal((SLOT_WORDS - 1).bit_length())   # the entry's dword read next
        rd_word = Signal.like(addr)
        started = Signal(COUNT_BITS)
        free = debt < P
        go = Signal()
        n = Mux(left >= 4, 4, left)
        m.d.comb += st.rx_addr.eq(Cat(rd_word, started[:(QUEUE - 1).bit_length()]))
        with m.Switch(state):
            with m.Case(RxPortState.IDLE):
                with m.If(self.rx_posted != started):     # read the length dword
                    m.d.comb += [st.rx_en.eq(1), rd_word.eq(0)]
                    m.d.sync += state.eq(RxPortState.LEN)
            with m.Case(RxPortState.LEN):
                # the length is in rx_data; read the first data dword
                m.d.comb += [st.rx_en.eq(1), rd_word.eq(1)]
                m.d.sync += [left.eq(st.rx_data[:16]), addr.eq(2), state.eq(RxPortState.PRE)]
            with m.Case(RxPortState.PRE, RxPortState.SFD):
                pre = state == RxPortState.PRE
                m.d.comb += [go.eq(free), o.data.eq(Mux(pre, PREAMBLE, SFD_WORD)),
                             o.n.eq(4), o.first.eq(pre)]
                with m.If(free):
                    m.d.sync += state.eq(Mux(pre, RxPortState.SFD, RxPortState.DATA))
            with m.Case(RxPortState.DATA):
                last = left <= 4
                m.d.comb += [go.eq(free), o.data.eq(st.rx_data), o.n.eq(n), o.last.eq(last),
                             rd_word.eq(addr)]
                with m.If(free):
                    m.d.comb += st.rx_en.eq(~last)
                    m.d.sync += [left.eq(left - n), addr.eq(addr + 1)]
                    with m.If(last):
                        m.d.comb += self.event.eq(1)
                        m.d.sync += [state.eq(RxPortState.IDLE), started.eq(started + 1),
                                     self.rx_frames.eq(self.rx_frames + 1)]
        cost = o.n * BYTE_PS + Mux(o.last, IFG_BYTES * BYTE_PS, 0)
        after = Mux(go, debt + cost, debt)
        m.d.sync += debt.eq(Mux(after > P, after - P, 0))
        m.d.comb += self.rx.valid.eq(go)
        return (state == RxPortState.IDLE) & (self.rx_posted == started) & (debt == 0)
