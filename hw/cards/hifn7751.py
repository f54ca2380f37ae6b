"""Hifn 7751-like crypto card: polled descriptor rings, on-card key cache.

Facts from OpenBSD's sys/dev/pci/hifn7751reg.h / hifn7751.c of the era; the
registers and memory structures are described once, in
:mod:`hw.cards.hifn7751reg`. The card is built from components with one job
each; :class:`Hifn7751` only instantiates and connects them:

- :class:`~hw.pci.target.PciTarget` (configuration space, two 4 KiB memory
  BARs) and :class:`~hw.pci.initiator.PciInitiator` (the bus master);
- :class:`~hw.cards.hifn7751_regs.HifnRegisters`: the BAR0/BAR1 registers;
- :class:`~hw.dma.hifn_rings.RingEngine`: positions, polling and ownership
  of the four descriptor rings;
- :class:`~hw.cards.hifn7751_seq.PacketSequencer`: the packet FSM
  (:class:`~hw.cards.hifn7751_seq.CardState`), with its
  :class:`~hw.cards.hifn7751_seq.SourceFeeder` (source data into the engine)
  and :class:`~hw.cards.hifn7751_seq.ResultFormatter` (the result buffer);
- :class:`~hw.cards.hifn7751_cmd.CommandParser` and
  :class:`~hw.cards.hifn7751_cmd.CommandDecoder`: the command buffer;
- :class:`~hw.cards.hifn7751_ctx.ContextRam`: each session's keys and CBC chain;
- the shared :class:`~hw.crypto.engine.TransformEngine` at the Hifn's
  parameters, and an output FIFO.

IDs: vendor 13a3, device 0005, class 0x100000 (PCI code and ID assignment
spec: encryption controller, network and computing), revision 1.

Registers: BAR0 (processing unit: PUCTRL, PUISR, PUCNFG, PUIER, PUSTAT …)
and BAR1 (DMA unit: ring addresses, DMA_CSR, DMA_IER, DMA_CNFG, REVID, the
SECRET unlock) with their fields, offsets and access kinds are in
:mod:`hw.cards.hifn7751reg`; their behaviour in
:mod:`hw.cards.hifn7751_regs` and ``docs/hifn7751.md``.

Polling: the chip re-reads an invalid descriptor every
``max(1, POLL FREQUENCY) * 256 << POLL SCALAR`` bus clocks (model's
definition; OpenBSD's values 1 and 0 give 256 clocks, 7.7 µs at 33 MHz).

Command buffer (little-endian 16-bit fields, hifn7751reg.h)
-----------------------------------------------------------
``base {masks, session_num, total_source_count, total_dest_count}``, then
``[comp]`` (refused: CMDINVAL), ``[MAC cmd]``, ``[crypt cmd]`` (each
``{masks, header_skip, source_count, reserved}``), then ``[MAC key 64 B]``
(MAC NEW_KEY), ``[cipher key 24 B 3DES / 8 B DES]`` (crypt NEW_KEY),
``[IV 8 B]`` (crypt NEW_IV). Bits 17:16 of the counts: base session_num
15:14 (source) / 13:12 (dest), MAC/crypt masks 15:14. session_num 11:0 is
the session (context RAM index).

Keys given with NEW_KEY are stored in the session's context; a command
without them uses the stored ones. Without NEW_IV the IV is the session's
CBC chain (the last ciphertext block of its previous command). Supported:
DES/3DES CBC, HMAC-SHA1 (raw key, the chip forms the pads) and SHA-1, in the
IPsec orders (encrypt then MAC; DECODE: MAC then decrypt), TRUNC = 12-byte
MAC. Anything else (ECB, RC4, MD5, compression, a locked level, a session
beyond the RAM, a malformed buffer, a MAC or crypt region — header_skip +
source_count — ending past the total source count) is CMDINVAL: the chip
has no data phase (it reads no data and runs no engine), releases the
packet's destination and source descriptors up to the LAST of each, and
writes the result (CMDINVAL, destination count 0). The same happens when the
LAST source segment ends before the total source count (counts with bits
17:16 set by a garbled session word, say): the engine run is dropped there
(a partial output may already be in the destination) and the result is
CMDINVAL, so no command waits for source data the rings do not promise.
The total destination count is not used (no compression: the output is as
long as the input); a destination chain shorter than that is DSTOVERRUN.

Result buffer: ``{flags, session, src_cnt, dst_cnt}`` (8 B), then with MAC
RESULT ``{mac flags, reserved}`` (4 B) + 20 MAC bytes (32 B in all). flags:
DSTOVERRUN 0200, 15:14 / 13:12 count bits 17:16, and two extensions: 0001
CMDINVAL, 0002 DATAERR (engine length error, a cipher length not a
multiple of 8, or a non-final segment that is misaligned or not a multiple
of 4 bytes — the driver bounces those, as hifn's does).

Per packet the chip: fetches the command descriptor, reads the command,
releases the descriptor; fetches the result, destination and source
descriptors; streams source data through the engine into the destination
segments (reads and writes interleaved in bursts of ``BURST`` dwords),
releasing each source/destination descriptor when done with it and walking
to the LAST one; writes the result and releases its descriptor, which sets
R_DONE: one interrupt per result. A master or target abort on any DMA, a
DMA refused because Bus Master Enable is clear (PCI 2.3 §6.2.2), or a JUMP
descriptor reached right after a JUMP (:mod:`hw.dma.hifn_rings`) sets that ring's
ABORT bit and halts the chip until reset.
"""

from amaranth.hdl import Module, ResetInserter
from amaranth.lib import fifo, wiring

from ..crypto.engine import TransformEngine
from ..crypto.params import CARD_ENGINE_PARAMS
from ..dma.hifn_rings import RingEngine
from ..pci.initiator import PciInitiator
from ..pci.target import PciTarget, BarSpec
from . import hifn7751reg as H
from .hifn7751_cmd import CommandDecoder, CommandParser
from .hifn7751_ctx import ContextRam
from .hifn7751_regs import HifnRegisters
from .hifn7751_seq import (BURST, CMD_MAX_WORDS, DMA_DEPTH, OUT_DEPTH, SLACK, CardState,
                           PacketSequencer, ResultFormatter, SourceFeeder)
from .slot import CardSignature, connect_slot, drive_inta, report_aborts, drive_quiet

__all__ = ["Hifn7751", "VENDOR_ID", "DEVICE_ID", "REG0", "REG1", "UNLOCK_KEY",
           "BaseCommand", "BaseResult", "engine_params_for", "CardState",
           "R_DSTOVERRUN", "R_CMDINVAL", "R_DATAERR", "PUISR_CMDINVAL", "PUISR_DATAERR",
           "PUISR_DSTOVER"]

# Older names (tests and tools import them from here); the header is
# hw.cards.hifn7751reg.
VENDOR_ID, DEVICE_ID, CLASS_CODE, REVISION = H.VENDOR_ID, H.DEVICE_ID, H.CLASS_CODE, H.REVISION
REG0 = {r.name: r.offset for r in H.BAR0}
REG1 = {r.name: r.offset for r in H.BAR1}
UNLOCK_KEY = H.UNLOCK_KEY
PUISR_CMDINVAL, PUISR_DATAERR, PUISR_DSTOVER = \
    H.PUISR.cmdinval.mask, H.PUISR.dataerr.mask, H.PUISR.dstover.mask
R_DSTOVERRUN, R_CMDINVAL, R_DATAERR = H.BASE_RES_DSTOVERRUN, H.RES_CMDINVAL, H.RES_DATAERR
BaseCommand, BaseResult = H.BaseCommand, H.BaseResult


def engine_params_for(clock_mhz):
    """(des_rounds, sha_rounds, tls_orders) keeping the 7751's rate at ``clock_mhz``.

    The parameters in ``CARD_ENGINE_PARAMS`` are for the chip's 33 MHz
    (a 32-bit/33 MHz device, OCF paper §5.4); on a faster bus the rounds per cycle scale down."""
    p = CARD_ENGINE_PARAMS["hifn7751"]
    des = max(1, round(p.des_rounds * p.clock_mhz / clock_mhz))
    sha = max(1, round(p.sha_rounds * p.clock_mhz / clock_mhz))
    while 16 % des:
        des -= 1
    while 80 % sha:
        sha -= 1
    return des, sha, p.tls_orders


class Hifn7751(wiring.Component):
    """The card: its components and their connections (module docstring)."""

    def __init__(self, clock_mhz: int = 33, sessions: int = 2048, grade: int = 2):
        if sessions not in [16 << k for k in range(8)]:
            raise ValueError("sessions must be 16 << k, k = 0..7 (up to 2048, hifn7751var.h)")
        if grade not in (0, 1, 2):
            raise ValueError("grade: 0 locked, 1 DES, 2 DES/3DES/SHA1")
        self.clock_mhz = clock_mhz
        self.sessions = sessions
        self.grade = grade
        super().__init__(CardSignature)
        self.target = PciTarget(vendor_id=H.VENDOR_ID, device_id=H.DEVICE_ID,
                                class_code=H.CLASS_CODE, revision=H.REVISION, int_pin=1,
                                bars=[BarSpec(4096), BarSpec(4096)])
        self.initiator = PciInitiator(depth=DMA_DEPTH)
        self.rings = RingEngine()
        des, sha, tls = engine_params_for(clock_mhz)
        self.engine = TransformEngine(des_rounds=des, sha_rounds=sha, tls_orders=tls)
        self.regs = HifnRegisters(sessions, grade)
        self.seq = PacketSequencer()
        self.parser = CommandParser()
        #: the packet FSM's state (a CardState)
        self.state = self.seq.state

    def vcd_traces(self) -> dict:
        """GTKWave groups: the sequencer, ring engine and parser FSMs, the transform engine."""
        eng = self.engine
        return {
            "sequencer": [self.seq.state, self.regs.ring_en, self.regs.irq],
            "rings": [self.rings.state, self.rings.ring, self.rings.wait, self.rings.done],
            "command parser": [self.parser.section, self.parser.bad],
            "transform engine": [eng.state, eng.cmd.valid, eng.cmd.ready, eng.i.valid,
                                 eng.i.ready, eng.o.valid, eng.o.ready, eng.result.valid],
        }

    def elaborate(self, platform):
        m = Module()
        m.submodules.target = tgt = self.target
        m.submodules.initiator = ini = self.initiator
        m.submodules.rings = rings = self.rings
        m.submodules.regs = regs = self.regs
        m.submodules.seq = seq = self.seq
        m.submodules.parser = parser = self.parser
        m.submodules.decoder = dec = CommandDecoder(self.sessions)
        m.submodules.ctx = ctx = ContextRam(self.sessions)
        m.submodules.feeder = feeder = SourceFeeder()
        m.submodules.result = fmt = ResultFormatter()
        connect_slot(m, self, tgt, ini)
        S = CardState
        resting = (seq.state == S.RESET) | (seq.state == S.HALT)

        # ---- engine and output FIFO, reset with the card, a halt or a dropped run
        dp_reset = regs.card_reset | resting | seq.pkt_abort
        m.submodules.engine = eng = ResetInserter(dp_reset)(self.engine)
        outf = ResetInserter(dp_reset)(fifo.SyncFIFOBuffered(width=32, depth=OUT_DEPTH))
        m.submodules.outf = outf
        m.d.comb += ini.flush.eq(resting & ~ini.busy)

        # ---- registers ----------------------------------------------------
        wiring.connect(m, tgt.port, regs.port)
        drive_inta(m, self, tgt, regs.irq)
        m.d.comb += [regs.csr_set.eq(seq.csr_set), regs.puisr_set.eq(seq.puisr_set),
                     rings.base_we.eq(regs.base_we), rings.base_wdata.eq(regs.base_wdata),
                     rings.enable.eq(regs.ring_en), rings.poll_period.eq(regs.poll_period),
                     rings.reset.eq(regs.card_reset | resting),
                     seq.dmaena.eq(regs.dmaena), seq.ring_en.eq(regs.ring_en),
                     seq.card_reset.eq(regs.card_reset)]
        m.d.comb += [regs.ring_base[r].eq(rings.base[r]) for r in range(4)]

        # ---- ring requests -------------------------------------------------
        m.d.comb += [rings.req_valid.eq(seq.ring_req_valid), rings.req_ring.eq(seq.ring_req_ring),
                     rings.req_release.eq(seq.ring_req_release), rings.req_l.eq(seq.ring_req_l),
                     seq.ring_req_ready.eq(rings.req_ready), seq.ring_rsp_valid.eq(rings.rsp_valid),
                     seq.ring_rsp.eq(rings.rsp), seq.ring_rsp_error.eq(rings.rsp_error),
                     seq.ring_busy.eq(rings.busy), seq.ring_ring.eq(rings.ring),
                     seq.ring_done.eq(rings.done), seq.ring_last.eq(rings.last),
                     seq.ring_wait.eq(rings.wait)]

        # ---- the initiator: the ring engine's while it is busy, else the sequencer's
        with m.If(rings.busy):
            m.d.comb += [ini.cmd.valid.eq(rings.dma_cmd.valid),
                         ini.cmd.payload.eq(rings.dma_cmd.payload),
                         rings.dma_cmd.ready.eq(ini.cmd.ready),
                         ini.wdata.valid.eq(rings.dma_wdata.valid),
                         ini.wdata.payload.eq(rings.dma_wdata.payload),
                         rings.dma_wdata.ready.eq(ini.wdata.ready)]
        with m.Else():
            m.d.comb += [ini.cmd.valid.eq(seq.dma_cmd.valid),
                         ini.cmd.payload.eq(seq.dma_cmd.payload),
                         ini.wdata.valid.eq(seq.wdata.valid),
                         ini.wdata.payload.eq(seq.wdata.payload)]
        m.d.comb += [seq.dma_cmd.ready.eq(ini.cmd.ready), seq.wdata.ready.eq(ini.wdata.ready),
                     rings.dma_done.eq(ini.done), rings.dma_status.eq(ini.done_status),
                     seq.dma_done.eq(ini.done), seq.dma_status.eq(ini.done_status),
                     seq.dma_busy.eq(ini.busy), seq.rdata_valid.eq(ini.rdata.valid)]
        # read data: source data to the feeder, the rest to the parser / ring engine
        m.d.comb += [feeder.rdata.valid.eq(ini.rdata.valid),
                     feeder.rdata.payload.eq(ini.rdata.payload)]
        with m.If(feeder.feeding):
            m.d.comb += ini.rdata.ready.eq(feeder.rdata.ready)
        with m.Else():
            m.d.comb += [rings.dma_rdata.valid.eq(ini.rdata.valid),
                         rings.dma_rdata.payload.eq(ini.rdata.payload),
                         ini.rdata.ready.eq(seq.parsing | rings.dma_rdata.ready)]
        report_aborts(m, ini, tgt)

        # ---- command buffer → parser → decoder; context RAM -----------------
        m.d.comb += [parser.clear.eq(seq.parse_clear),
                     parser.word_valid.eq(seq.parsing & ini.rdata.valid),
                     parser.word.eq(ini.rdata.payload), parser.desc_bad.eq(seq.desc_bad),
                     parser.finish.eq(seq.parse_finish), parser.ctx_load.eq(seq.ctx_load),
                     parser.ctx_ckey.eq(ctx.ckey), parser.ctx_mkey.eq(ctx.mkey),
                     parser.ctx_iv.eq(ctx.iv)]
        m.d.comb += [dec.base.eq(parser.base), dec.mac.eq(parser.mac), dec.crypt.eq(parser.crypt),
                     dec.ckey.eq(parser.ckey), dec.mkey.eq(parser.mkey), dec.iv.eq(parser.iv),
                     dec.bad.eq(parser.bad), dec.tdes.eq(parser.tdes), dec.level.eq(regs.level)]
        m.d.comb += [seq.refused.eq(dec.refused), seq.unsupported.eq(dec.unsupported),
                     seq.length.eq(dec.length), seq.has_cry.eq(dec.has_cry),
                     seq.mac_result.eq(dec.mac_result), seq.new_ckey.eq(parser.new_ckey),
                     seq.new_mkey.eq(parser.new_mkey)]
        eres = eng.result.payload
        m.d.comb += [ctx.session.eq(parser.base.session), ctx.rd_en.eq(seq.ctx_rd_en),
                     ctx.ckey_we.eq(seq.ckey_we), ctx.mkey_we.eq(seq.mkey_we),
                     ctx.iv_we.eq(seq.iv_we), ctx.ckey_w.eq(parser.ckey),
                     ctx.mkey_w.eq(parser.mkey), ctx.iv_w.eq(eres.iv)]

        # ---- engine: command, source data in, output into the FIFO, result ---
        m.d.comb += [eng.cmd.valid.eq(seq.eng_cmd_valid), eng.cmd.payload.eq(dec.engine),
                     seq.eng_cmd_ready.eq(eng.cmd.ready),
                     seq.eng_done.eq(eng.result.valid), seq.eng_status.eq(eres.status),
                     eng.result.ready.eq(seq.eng_result_ready),
                     feeder.length.eq(dec.length), feeder.pend_inc.eq(seq.pend_inc),
                     feeder.clear.eq(seq.parse_clear),
                     feeder.reset.eq(regs.card_reset | (seq.state == S.HALT)),
                     seq.feed_pending.eq(feeder.pending), seq.feeding.eq(feeder.feeding),
                     seq.feed_need.eq(feeder.need)]
        wiring.connect(m, feeder.o, eng.i)
        m.d.comb += [outf.w_data.eq(eng.o.payload.data), outf.w_en.eq(eng.o.valid),
                     eng.o.ready.eq(outf.w_rdy),
                     seq.out_level.eq(outf.level), seq.out_rdy.eq(outf.r_rdy),
                     seq.out_data.eq(outf.r_data), outf.r_en.eq(seq.out_en)]

        # ---- result buffer ---------------------------------------------------
        m.d.comb += [fmt.index.eq(seq.res_index), fmt.cmdinval.eq(seq.res_cmdinval),
                     fmt.dataerr.eq(seq.res_dataerr), fmt.dstoverrun.eq(seq.res_dstover),
                     fmt.session.eq(parser.base.session), fmt.src_count.eq(dec.length),
                     fmt.dst_count.eq(seq.res_dst_count), fmt.mac.eq(eres.mac),
                     seq.res_word.eq(fmt.word)]

        # ---- at rest: waiting on a sleeping ring fetch, all else idle ------
        m.d.comb += [rings.skip.eq(self.skip)]
        drive_quiet(m, self, tgt, ini, rings, seq, eng, ~regs.card_reset,
                    feeder.pending == 0, outf.level == 0, quiet_for=rings.quiet_for)
        return m
