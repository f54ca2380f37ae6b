"""Broadcom-style command-record (MCR) engine: the datapath of the BCM5820-like card.

The driver writes the bus address of a *master command record* to MCR1; the
engine fetches the record, and for every packet in it fetches the packet's
context, streams the input particle chain through the transform engine,
writes the output through the output particle chain, writes the MAC, and
finally sets DONE in the record and reports ``record_done``. Formats follow
OpenBSD's ``sys/dev/pci/ubsecreg.h`` (:mod:`hw.cards.ubsecreg`); every
multi-byte field is little-endian in host memory (the driver sets neither
BE32 nor BE64).

Memory formats: the ``lib.data`` layouts of :mod:`hw.cards.ubsecreg`
(``Mcr``, ``McrHeader``, ``McrPacket``, ``PktBuf``, ``ContextLong``), after
``ubsecreg.h``; docs/bcm5820.md draws them.

Key, IV and midstate words (the mapping the driver must match): each u32
word holds four bytes of the key/IV in *big-endian* order as an integer,
stored little-endian in memory, as OpenBSD's ubsec does with ``ntohl`` then
``htole32``: key bytes k0 k1 k2 k3 → word ``k0<<24 | k1<<16 | k2<<8 | k3`` →
memory bytes k3 k2 k1 k0. ``deskey[0..1]`` is key 1, ``[2..3]`` key 2,
``[4..5]`` key 3 (single DES: the same key three times, as the 5820 does,
OCF paper §5.2). ``hminner[j]``/``hmouter[j]`` are the SHA-1 chaining
values H0..H4 after one block of key^ipad / key^opad (RFC 2104), as integers.

Packet semantics (a reading of ubsec.c's ``ubsec_process``):

* The input chain supplies ``packet length`` bytes starting at the MAC
  start; the MAC (HMAC-SHA1 with the context's midstates, 12 bytes, RFC 2404)
  covers all of them; the cipher (3DES-EDE CBC) covers the bytes from
  ``offset * 4`` to the end, so cipher and MAC end at the same byte.
  Outbound: encrypt then MAC the ciphertext; INBOUND: MAC the ciphertext
  then decrypt (IPsec orders).
* Only the cipher region is written to the output chain (the bytes before
  it are not changed by the card); without 3DES no data is written at all.
* The MAC (12 bytes) goes to the address in the ``next`` field of the
  output particle where the output ended (of the first output particle
  when there is no output), as ubsec.c chains its MAC buffer.
* A chain longer than needed is used only as far as needed. Particles may
  start at any byte address.

Per-packet errors (record flags ERROR plus a code in bits 15:8; the record
still completes and the other packets are processed):
``ERR_CONTEXT`` 01 MD5 or both MAC bits (this card has no MD5);
``ERR_LENGTH`` 02 packet length 0, offset past the end, or a cipher region
not a multiple of 8; ``ERR_INPUT`` 03 input chain shorter than the packet
(missing bytes processed as zeros); ``ERR_OUTPUT`` 04 output chain shorter
than the output (the rest is dropped) or no MAC buffer (``next`` = 0).

Chain errors (``ERR_CHAIN`` 05): a particle of length 0 that the card reaches
while the chain still owes bytes, or a chain of more than ``MAX_PARTICLES``
(64, OpenBSD ubsecvar.h ``UBS_MAX_SCATTER``, the driver's scatter/gather
depth) particles. ubsec.c never hands such a chain over (it skips segments
consumed by the skip instead of emitting them, and its only zero-length
particle is a MAC-only packet's output particle, whose ``next`` is the MAC
buffer and which carries no data), so the card does not walk it: the packet's
input ends there (as for a short chain) or the rest of its output and its MAC
are dropped, the record ends with that packet, and its flags get ERROR and
code 05 but *not* DONE; then the engine reports a DMA error as below (ERR =
the bus address of the offending particle, READ) and halts. A self-linked or
cyclic chain is thus a bounded walk, never a loop.

DMA errors (master or target abort on any access): the engine pulses
``dma_error`` with the failing dword address and direction, flushes the
initiator FIFOs and halts until reset. The card resets it (CTRL RESET).

Structure: this component only instantiates and connects its parts — the
record sequencer (:mod:`hw.dma.mcr_record`, with the context registers of
:mod:`hw.dma.mcr_context`), the issuer (:mod:`hw.dma.mcr_issue`: requests
in fixed priority record > output > input, tag FIFO, DMA errors), the read
demultiplexer (:mod:`hw.dma.mcr_demux`: data FIFO, descriptor words), two
particle-chain walkers (:mod:`hw.dma.mcr_chain`), the input streamer
(:mod:`hw.dma.mcr_input`) and the output sequencer (:mod:`hw.dma.mcr_output`,
with the particle packer of :mod:`hw.dma.mcr_pack`). Data reads are only
issued when the data FIFO has room for them, so read data never blocks and
descriptor fetches always return, whatever the transform engine is doing.
"""



from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..cards.ubsecreg import McrPacket, byte_offset
from ..crypto.engine import TransformEngine
from ..pci.initiator import InitiatorCommand
from .mcr_chain import ChainState, ChainWalker
from .mcr_common import Dest, P_IPKT, P_OPKT, count_bits
from .mcr_context import ContextRegisters
from .mcr_demux import ReadDemux
from .mcr_input import InputStreamer, InState
from .mcr_issue import CommandIssuer
from .mcr_output import OutputSequencer, OutState
from .mcr_record import MainState, RecordSequencer

__all__ = ["McrEngine", "MainState", "InState", "OutState"]

#: issuer ports, highest priority first: the record sequencer, then the
#: output side, then the input side (each side's two ports never ask together)
ISSUER_PORTS = ("record", "out_write", "out_chain", "in_data", "in_chain")


class McrEngine(wiring.Component):
    """See module docstring.

    Parameters
    ----------
    engine_params : keyword arguments of :class:`TransformEngine`.
    chunk : dwords per data read/write command (≤ the initiator FIFO depth).
    data_depth : dwords of the input data FIFO (≥ chunk).
    mcr1_depth : MCR1 address queue entries (records accepted while one runs).
    """

    def __init__(self, engine_params: dict, chunk: int = 32, data_depth: int = 64,
                 mcr1_depth: int = 2):
        if not 1 <= chunk <= data_depth:
            raise ValueError("need 1 <= chunk <= data_depth")
        self.chunk = chunk
        self.data_depth = data_depth
        self.mcr1_depth = mcr1_depth
        self.engine = TransformEngine(**engine_params)
        super().__init__({
            "ini_cmd": Out(stream.Signature(InitiatorCommand)),
            "ini_wdata": Out(stream.Signature(32)),
            "ini_rdata": In(stream.Signature(32)),
            "ini_done": In(1),
            "ini_done_status": In(2),
            "ini_done_count": In(16),
            "ini_flush": Out(1),
            "mcr1_push": In(1),
            "mcr1_addr": In(32),
            "mcr1_full": Out(1),
            "busy": Out(1),
            "record_done": Out(1),        # pulse: a record's DONE flag is in memory
            "dma_error": Out(1),          # pulse
            "err_addr": Out(32),
            "err_read": Out(1),
            "halted": Out(1),
            # FSM states for VCDs
            "main_state": Out(MainState),
            "in_state": Out(InState),
            "out_state": Out(OutState),
            "records": Out(32),           # records completed since reset
            "packets": Out(32),           # packets processed since reset
            "idle": Out(1),               # the next clock edge changes no state
        })

    def elaborate(self, platform):
        m = Module()
        CH, depth = self.chunk, self.data_depth
        cw = count_bits(CH)
        m.submodules.engine = eng = self.engine
        m.submodules.record = rec = RecordSequencer(cw, self.mcr1_depth)
        m.submodules.context = ctx = ContextRegisters()
        m.submodules.issuer = iss = CommandIssuer(ISSUER_PORTS, cw)
        m.submodules.demux = dmx = ReadDemux(cw, CH, depth)
        m.submodules.in_chain = ich = ChainWalker(cw, Dest.IN, P_IPKT)
        m.submodules.out_chain = och = ChainWalker(cw, Dest.OUT, P_OPKT)
        m.submodules.input = inp = InputStreamer(cw, CH, depth)
        m.submodules.output = out = OutputSequencer(cw, CH)

        # the initiator side
        wiring.connect(m, iss.ini_cmd, wiring.flipped(self.ini_cmd))
        wiring.connect(m, wiring.flipped(self.ini_rdata), dmx.rdata)
        for name, port in zip(ISSUER_PORTS, (rec.req, out.req, och.req, inp.req, ich.req)):
            wiring.connect(m, port, getattr(iss, name))
        m.d.comb += [
            iss.ini_done.eq(self.ini_done), iss.ini_done_status.eq(self.ini_done_status),
            iss.ini_done_count.eq(self.ini_done_count), self.ini_flush.eq(iss.ini_flush),
            rec.ini_done.eq(self.ini_done), rec.ini_done_status.eq(self.ini_done_status),
            # write data: the output side's, or the record's flags (never together)
            self.ini_wdata.valid.eq(rec.wdata.valid | out.wdata.valid),
            self.ini_wdata.payload.eq(rec.wdata.payload | out.wdata.payload),
            rec.wdata.ready.eq(self.ini_wdata.ready), out.wdata.ready.eq(self.ini_wdata.ready),
        ]
        # read data: descriptors and context, data through the FIFO to the engine
        wiring.connect(m, iss.tag, dmx.tag)
        wiring.connect(m, dmx.packet, rec.packet, ich.packet, och.packet)
        wiring.connect(m, dmx.context, ctx.context)
        wiring.connect(m, ctx.regs, rec.ctx)
        wiring.connect(m, dmx.data, eng.i)
        wiring.connect(m, rec.cmd, eng.cmd)
        wiring.connect(m, eng.result, rec.result)
        wiring.connect(m, eng.o, out.eo)
        # the chains
        wiring.connect(m, ich.chain, inp.chain)
        wiring.connect(m, och.chain, out.chain)
        m.d.comb += [
            ich.first_at.eq(rec.packet_at + byte_offset(McrPacket, "ipkt")),
            och.first_at.eq(rec.packet_at + byte_offset(McrPacket, "opkt")),
            ich.fetched.eq(dmx.desc_end & (dmx.desc_dest == Dest.IN)),
            och.fetched.eq(dmx.desc_end & (dmx.desc_dest == Dest.OUT)),
            rec.desc_end.eq(dmx.desc_end),
        ]
        # input and output sides
        m.d.comb += [
            inp.start.eq(rec.start), inp.pktlen.eq(rec.pktlen), inp.halted.eq(iss.halted),
            inp.data_out.eq(dmx.data_out), inp.reads_pending.eq(dmx.reads_pending),
            dmx.reserve.eq(inp.reserve), dmx.term.eq(inp.term),
            out.start.eq(rec.start), out.cipher_on.eq(rec.cipher_on), out.mac_on.eq(rec.mac_on),
            out.out_len.eq(rec.out_len), out.drop_words.eq(ctx.regs.offset),
            out.result_valid.eq(eng.result.valid), out.mac.eq(eng.result.payload.mac),
            out.halted.eq(iss.halted), out.packet_next.eq(rec.state == MainState.NEXT),
            rec.in_idle.eq(inp.state == InState.IDLE), rec.out_finish.eq(out.finish),
            rec.in_error.eq(inp.chain_error), rec.in_error_addr.eq(inp.chain_addr),
            rec.out_error.eq(out.chain_error), rec.out_error_addr.eq(out.chain_addr),
            rec.out_short.eq(out.output_error),
        ]
        # errors and halt
        m.d.comb += [
            iss.chain_halt.eq(rec.chain_halt), iss.chain_addr.eq(rec.chain_addr),
            rec.halted.eq(iss.halted), rec.dma_error.eq(iss.dma_error),
            self.dma_error.eq(iss.dma_error), self.err_addr.eq(iss.err_addr),
            self.err_read.eq(iss.err_read), self.halted.eq(iss.halted),
        ]
        # the MCR1 queue, status and counters
        m.d.comb += [
            rec.mcr1_push.eq(self.mcr1_push), rec.mcr1_addr.eq(self.mcr1_addr),
            self.mcr1_full.eq(rec.mcr1_full), self.busy.eq(rec.busy),
            self.record_done.eq(rec.record_done), self.records.eq(rec.records),
            self.packets.eq(rec.packets), self.main_state.eq(rec.state),
            self.in_state.eq(inp.state), self.out_state.eq(out.state),
        ]
        # idle: no record queued or under way, both sides and both walkers at
        # rest, no read outstanding (tag FIFO empty), the data FIFO empty, no
        # bus completion arriving and the transform engine idle
        m.d.comb += self.idle.eq(
            rec.idle & (inp.state == InState.IDLE) & out.idle &
            (ich.state == ChainState.HOLD) & (och.state == ChainState.HOLD) &
            ~iss.tag.valid & ~dmx.data.valid & ~self.ini_done & eng.idle)
        return m
