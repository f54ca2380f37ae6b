"""PCI target core: type-0 configuration space, memory BARs, data phases.

Bus behaviour (PCI 2.3 chapter 3):

- medium DEVSEL# (asserted two clocks after the address phase);
- single and burst reads and writes, linear addressing;
- reads are fetched ahead from the user port into a small FIFO when the BAR
  is prefetchable; a non-prefetchable BAR (registers) is read exactly once
  and the target disconnects with data after the first data phase;
- retry when the first data phase is not ready after ``INITIAL_LIMIT``
  clocks or when the user asks for it (``retry``); disconnect without data
  when a later phase is not ready after ``SUBSEQUENT_LIMIT`` clocks; target
  abort when the user raises ``abort``.

User port (``port``), one command per data dword, in bus order:

``cmd`` (stream out)  ``{addr, bar, write, data, be}`` — byte offset within
    the BAR (dword aligned), BAR index, write flag, write data, byte enables
    (1 = enabled). Writes are posted through a FIFO; reads are requests.
``rsp_valid``/``rsp_data`` (in)  read data, in request order, any latency.
``retry``/``abort`` (in)  see above.

A target with ``fixed_base``/``fixed_size`` has no configuration space and
decodes a fixed window (the host bridge's DRAM target).
"""

from dataclasses import dataclass
from types import SimpleNamespace

from amaranth.hdl import Module, Signal, Cat, Const, Mux, ResetInserter
from amaranth.lib import data, enum, fifo, wiring
from amaranth.lib.wiring import In, Out

from . import pcireg
from .bus import AgentSignature, Cmd, agent_signature, lines
from .pcireg import COMMAND, STATUS

__all__ = ["PciTarget", "BarSpec", "TargetPort", "TargetCommand", "TargetState",
           "merge_bytes", "INITIAL_LIMIT", "SUBSEQUENT_LIMIT", "COMMAND_WRITABLE",
           "STATUS_W1C"]


def merge_bytes(old, new, be):
    """``old`` with the bytes of ``new`` whose enable bit in ``be`` is set."""
    return Cat(*(Mux(be[k], new[8 * k:8 * k + 8], old[8 * k:8 * k + 8])
                 for k in range(len(old) // 8)))

#: PCI 2.3 §3.5.1.1: a target completes the first data phase within 16
#: clocks of FRAME#; we retry at 14 so STOP# is on the bus by clock 16.
INITIAL_LIMIT = 14
#: PCI 2.3 §3.5.1.2: subsequent data phases within 8 clocks.
SUBSEQUENT_LIMIT = 7
#: read prefetch / posted-write depth, in dwords
FIFO_DEPTH = 4


@dataclass(frozen=True)
class BarSpec:
    size: int                 # bytes, a power of two ≥ 16 (PCI 2.3 §6.2.5.1)
    prefetchable: bool = False
    #: a 64-bit memory BAR (type 10b, §6.2.5.1): it takes this register and
    #: the next, which holds address bits 63:32. The target decodes single
    #: address cycles only, so it answers while the upper dword is 0.
    wide: bool = False

    def __post_init__(self):
        if self.size < 16 or self.size & (self.size - 1):
            raise ValueError(f"BAR size {self.size} is not a power of two ≥ 16")
        if self.size > 1 << 31:
            raise ValueError(f"BAR size {self.size} does not fit below 4 GiB")

    @property
    def registers(self) -> int:
        """Configuration registers the BAR takes (2 for a 64-bit BAR)."""
        return 2 if self.wide else 1


class TargetCommand(data.Struct):
    addr:  32
    bar:   3
    write: 1
    data:  32
    be:    4


TargetPort = wiring.Signature({
    "cmd_valid": Out(1),
    "cmd_ready": In(1),
    "cmd":       Out(TargetCommand),
    "rsp_valid": In(1),
    "rsp_data":  In(32),
    "retry":     In(1),
    "abort":     In(1),
})


class TargetCommand64(data.Struct):
    """A 64-bit target's user command: the quadword at ``addr`` (8-byte
    aligned), byte enables for its eight bytes (a 32-bit data phase enables
    one half)."""
    addr:  32
    bar:   3
    write: 1
    data:  64
    be:    8


TargetPort64 = wiring.Signature({
    "cmd_valid": Out(1),
    "cmd_ready": In(1),
    "cmd":       Out(TargetCommand64),
    "rsp_valid": In(1),
    "rsp_data":  In(64),
    "retry":     In(1),
    "abort":     In(1),
})

#: the COMMAND bits this target implements (the rest read 0, PCI 2.3 §6.2.2)
COMMAND_WRITABLE = COMMAND.mask("memory_space", "bus_master", "parity_error_response",
                                "intx_disable")
#: the STATUS event bits this target keeps (write 1 to clear, PCI 2.3 §6.2.3)
STATUS_W1C = STATUS.mask("signaled_target_abort", "received_target_abort",
                         "received_master_abort")
#: DEVSEL timing this target reports: medium (it asserts DEVSEL# at A+2)
STATUS_DEVSEL = STATUS.devsel_timing.value(pcireg.DEVSEL_MEDIUM)

# Older names of the command/status bits (cards and tests import them from
# here); the description is hw.pci.pcireg.
CMD_MEM_ENABLE = COMMAND.memory_space.mask
CMD_BUS_MASTER = COMMAND.bus_master.mask
CMD_INT_DISABLE = COMMAND.intx_disable.mask
STATUS_INT = STATUS.interrupt_status.mask
STATUS_DEVSEL_MEDIUM = STATUS_DEVSEL
STATUS_SIG_TARGET_ABORT = STATUS.signaled_target_abort.mask
STATUS_RX_TARGET_ABORT = STATUS.received_target_abort.mask
STATUS_RX_MASTER_ABORT = STATUS.received_master_abort.mask


class TargetState(enum.IntEnum, shape=2):
    """The target's transaction FSM (VCDs show the names)."""
    IDLE = 0        # waiting for an address phase that hits
    DEVSEL = 1      # clock A+1: decoding; DEVSEL# goes out next clock
    DATA = 2        # data phases
    TURN = 3        # one clock driving the control lines deasserted


S_IDLE, S_DEVSEL, S_DATA, S_TURN = TargetState


class PciTarget(wiring.Component):
    """Target half of a PCI agent (see module docstring)."""

    def __init__(self, *, vendor_id=0, device_id=0, class_code=0, revision=0,
                 subsystem=0, int_pin=0, bars=(), fixed_base=None, fixed_size=None,
                 state_name="state", width=32):
        self.has_config = fixed_base is None
        if not self.has_config:
            bars = (BarSpec(fixed_size, prefetchable=True),)
        self.bars = tuple(bars)
        #: BAR register index (0..5) of each BarSpec's (lower) dword
        self.bar_index = []
        for spec in self.bars:
            self.bar_index.append(sum(b.registers for b in self.bars[:len(self.bar_index)]))
        if sum(b.registers for b in self.bars) > 6:
            self._MustUse__silence = True          # never built: no unused warning
            raise ValueError("at most six BAR registers")
        self.ids = dict(vendor_id=vendor_id, device_id=device_id, class_code=class_code,
                        revision=revision, subsystem=subsystem, int_pin=int_pin)
        self.fixed_base = fixed_base
        lines(width)                                   # ValueError unless 32 or 64
        self.width = width
        super().__init__({
            "pci":   Out(agent_signature(width)),
            "idsel": In(1),
            "port":  Out(TargetPort if width == 32 else TargetPort64),
            # configuration state for the rest of the card
            "command":       Out(16),
            "latency_timer": Out(8),
            "bar_base":      Out(32).array(max(len(self.bars), 1)),
            "set_status":    In(16),   # one-clock pulses OR-ed into status (W1C bits)
            "int_status":    In(1),    # status bit 3: the function's interrupt is pending
            "started":       Out(1),   # pulse: this target claimed a transaction
            # posted writes accepted on the bus but not yet given to the user
            # port, and a pulse per one handed over (oldest first): a bridge
            # uses them to keep read completions behind posted writes
            "posted":        Out(range(FIFO_DEPTH + 1)),
            "posted_done":   Out(1),
            # exact idle skipping: with these inputs held and the bus idle, the
            # next edge changes none of this core's registers
            "quiet":         Out(1),
        })
        #: the transaction FSM; ``state_name`` tells two targets apart in a VCD
        self.state = Signal(TargetState, name=state_name)
        #: the status register's 66MHz Capable bit (PCI 2.3 §6.2.3, the
        #: device's M66EN, §7.5.1): driven by the slot (hw/machine.py, from
        #: the card kind's entry in hw/cards/slot.py ``M66_CAPABLE``); 0 if not
        self.m66 = Signal()

    def elaborate(self, platform):
        m = Module()
        port, bus = self.port, self.pci.bus

        c = self._config_space(m)
        command, status_set, status_clr = c.command, c.status_set, c.status_clr
        latency_timer, cache_line, int_line, bars = \
            c.latency_timer, c.cache_line, c.int_line, c.bars
        cfg_rdata, cfg_reg = c.rdata, c.reg
        addr_phase, frame_prev, is_mem_cmd, is_read_cmd, hit_bar, mem_hit, cfg_hit = \
            self._decode(m, bus, command, bars)

        # ---------------------------------------------------------------
        # Transaction state
        state = self.state
        self._wide = None
        is_cfg = Signal()
        is_read = Signal()
        cur_bar = Signal(3)
        prefetch = Signal()           # this transaction may read ahead
        phase_addr = Signal(32)       # byte offset of the current data phase
        self._phase_addr = phase_addr
        issue_addr = Signal(32)       # byte offset of the next read request
        issued = Signal(range(1 << 16))
        inflight = Signal(range(FIFO_DEPTH + 1))
        drop = Signal(range(FIFO_DEPTH + 1))   # stale responses to discard
        any_xfer = Signal()           # a data phase completed in this transaction
        wait_count = Signal(range(INITIAL_LIMIT + 2))

        w64 = self.width == 64
        dw = self.width               # data bits per entry (a phase, or a quadword)
        ad_o = Signal(dw)
        trdy_o = Signal()
        stop_o = Signal()
        devsel_o = Signal()
        drive_ctl = Signal()          # DEVSEL#/TRDY#/STOP# enabled
        drive_ad = Signal()
        wide, par64_oe = self._drive_lines(m, ad_o, trdy_o, stop_o, devsel_o, drive_ctl,
                                           drive_ad)

        # Read FIFO (prefetch) and posted-write FIFO, both flushed per transaction
        flush = Signal()
        rfifo = ResetInserter(flush)(fifo.SyncFIFO(width=dw, depth=FIFO_DEPTH))
        wfifo = fifo.SyncFIFO(width=32 + dw + 3 + dw // 8, depth=FIFO_DEPTH)
        m.submodules.rfifo = rfifo
        m.submodules.wfifo = wfifo
        m.d.comb += self.posted.eq(wfifo.level)

        # responses: discard stale ones after a transaction ended early
        with m.If(port.rsp_valid):
            with m.If(drop != 0):
                m.d.sync += drop.eq(drop - 1)
            with m.Else():
                m.d.comb += [rfifo.w_en.eq(1), rfifo.w_data.eq(port.rsp_data)]

        read_issue = self._user_commands(m, state, is_read, is_cfg, stop_o, rfifo, wfifo,
                                         inflight, prefetch, issued, issue_addr, cur_bar)
        rsp_taken = port.rsp_valid & (drop == 0)
        m.d.sync += inflight.eq(inflight + read_issue - rsp_taken)
        with m.If(read_issue):
            m.d.sync += [issue_addr.eq(issue_addr + (Mux(wide, 8, 4) if w64 else 4)),
                         issued.eq(issued + 1)]

        xfer = trdy_o & bus.irdy
        ad32 = bus.ad[:32] if w64 else bus.ad
        be = ~bus.cbe_n[:4] & 0xF if w64 else ~bus.cbe_n & 0xF

        quiet = ~bus.frame & ~bus.irdy & (state == S_IDLE) & ~frame_prev \
            & ~drive_ctl & ~drive_ad & ~trdy_o & ~stop_o & ~devsel_o \
            & (wfifo.level == 0) & (rfifo.level == 0) & (inflight == 0) & (drop == 0) \
            & ~port.rsp_valid & ~(self.set_status & STATUS_W1C & ~c.status).any()
        m.d.comb += self.quiet.eq(quiet & ~par64_oe if w64 else quiet)

        with m.Switch(state):
            with m.Case(S_IDLE):
                m.d.sync += [drive_ctl.eq(0), drive_ad.eq(0), trdy_o.eq(0),
                             stop_o.eq(0), devsel_o.eq(0)]
                with m.If(addr_phase & (mem_hit & is_mem_cmd | cfg_hit)):
                    m.d.sync += [
                        state.eq(S_DEVSEL),
                        is_cfg.eq(cfg_hit),
                        is_read.eq(is_read_cmd),
                        cur_bar.eq(hit_bar),
                        prefetch.eq(0),
                        any_xfer.eq(0),
                        wait_count.eq(0),
                        issued.eq(0),
                    ]
                    with m.If(cfg_hit):
                        m.d.sync += [cfg_reg.eq(bus.ad[2:8]), phase_addr.eq(0)]
                        if w64:
                            m.d.sync += wide.eq(0)
                    with m.Else():
                        for i, spec in enumerate(self.bars):
                            with m.If(hit_bar == self.bar_index[i]):
                                off = ad32 & (spec.size - 1) & ~3
                                m.d.sync += [phase_addr.eq(off), issue_addr.eq(off),
                                             prefetch.eq(int(spec.prefetchable))]
                                if w64:
                                    # ACK64# for a quadword-aligned memory cycle with
                                    # REQ64# (PCI 2.3 §3.8); else 32-bit phases
                                    m.d.sync += wide.eq(bus.req64 & ~ad32[2])

            with m.Case(S_DEVSEL):
                # clock A+1: decode done; DEVSEL# goes out at A+2 (medium)
                m.d.comb += self.started.eq(1)
                m.d.sync += [state.eq(S_DATA), drive_ctl.eq(1), devsel_o.eq(1),
                             drive_ad.eq(is_read), wait_count.eq(1)]

            with m.Case(S_DATA):
                m.d.sync += wait_count.eq(wait_count + 1)
                with m.If(xfer):
                    m.d.sync += [any_xfer.eq(1), wait_count.eq(0),
                                 phase_addr.eq(phase_addr + (Mux(wide, 8, 4) if w64 else 4))]
                    with m.If(is_cfg & ~is_read):
                        self._config_write(m, cfg_reg, ad32, be, command, status_clr,
                                           latency_timer, cache_line, int_line, bars)
                    with m.If(~is_cfg & ~is_read):
                        self._post_write(m, wfifo, phase_addr, cur_bar, be, wide)
                ended = (bus.irdy & ~bus.frame & (xfer | stop_o))
                with m.If(ended):
                    m.d.sync += [state.eq(S_TURN), trdy_o.eq(0), stop_o.eq(0),
                                 devsel_o.eq(0), drive_ad.eq(0)]
                with m.Elif(stop_o):
                    # hold STOP# until FRAME# goes; no more data
                    m.d.sync += trdy_o.eq(0)
                with m.Elif(self.port.abort):
                    m.d.sync += [stop_o.eq(1), devsel_o.eq(0), trdy_o.eq(0)]
                    m.d.comb += status_set.eq(STATUS_SIG_TARGET_ABORT)
                with m.Elif(trdy_o & ~xfer):
                    pass                                   # phase still open
                with m.Else():
                    self._next_phase(m, is_cfg, is_read, prefetch, any_xfer, xfer,
                                     wait_count, cfg_rdata, rfifo, wfifo, ad_o,
                                     trdy_o, stop_o, bus)

            with m.Case(S_TURN):
                # drive DEVSEL#/TRDY#/STOP# deasserted for one clock, then release
                m.d.sync += [state.eq(S_IDLE), drive_ctl.eq(0)]
                m.d.comb += flush.eq(1)
                m.d.sync += [drop.eq(inflight - rsp_taken), inflight.eq(0)]
        return m

    def _drive_lines(self, m, ad_o, trdy_o, stop_o, devsel_o, drive_ctl, drive_ad):
        """The target's drivers: AD for reads, TRDY#/STOP#/DEVSEL# and, 64-bit,
        ACK64# and PAR64 (PCI 2.3 §3.8). Returns the 64-bit core's ``wide``
        (this transaction has 64-bit phases) and its PAR64 enable."""
        pci, bus = self.pci, self.pci.bus
        wide = par64_oe = None
        if self.width == 64:
            wide = Signal()           # this transaction has 64-bit phases (ACK64#)
            self._wide = wide
            ad_hi = Mux(drive_ad & wide, 0xFFFF_FFFF, 0)
            par64_o, par64_oe = Signal(), Signal()
            # PAR64: even parity over the AD[63:32] and C/BE[7:4]# of the
            # clock before, from the agent that drove AD[63:32] (§3.8, §3.7.1)
            m.d.sync += par64_oe.eq(ad_hi[0])
            with m.If(ad_hi[0]):
                m.d.sync += par64_o.eq(ad_o[32:].xor() ^ bus.cbe_n[4:].xor())
            m.d.comb += [
                pci.o.ad.eq(ad_o), pci.oe.ad.eq(Cat(Mux(drive_ad, 0xFFFF_FFFF, 0), ad_hi)),
                pci.o.ack64.eq(devsel_o & wide), pci.oe.ack64.eq(drive_ctl),
                pci.o.par64.eq(par64_o), pci.oe.par64.eq(par64_oe),
            ]
        else:
            m.d.comb += [pci.o.ad.eq(ad_o), pci.oe.ad.eq(Mux(drive_ad, 0xFFFF_FFFF, 0))]
        m.d.comb += [
            pci.o.trdy.eq(trdy_o), pci.oe.trdy.eq(drive_ctl),
            pci.o.stop.eq(stop_o), pci.oe.stop.eq(drive_ctl),
            pci.o.devsel.eq(devsel_o), pci.oe.devsel.eq(drive_ctl),
        ]
        return wide, par64_oe

    def _post_write(self, m, wfifo, phase_addr, cur_bar, be, wide):
        """A write data phase into the posted-write FIFO."""
        bus = self.pci.bus
        if self.width == 64:
            # a quadword entry: both halves, or the half this 32-bit phase addressed
            ad32 = bus.ad[:32]
            hi = phase_addr[2]
            data64 = Mux(wide, bus.ad, Mux(hi, Cat(Const(0, 32), ad32),
                                           Cat(ad32, Const(0, 32))))
            be8 = Mux(wide, ~bus.cbe_n & 0xFF,
                      Mux(hi, Cat(Const(0, 4), be), Cat(be, Const(0, 4))))
            m.d.comb += [wfifo.w_en.eq(1),
                         wfifo.w_data.eq(Cat(Const(0, 3), phase_addr[3:], data64, cur_bar, be8))]
        else:
            m.d.comb += [wfifo.w_en.eq(1),
                         wfifo.w_data.eq(Cat(phase_addr, bus.ad, cur_bar, be))]

    def _user_commands(self, m, state, is_read, is_cfg, stop_o, rfifo, wfifo, inflight,
                       prefetch, issued, issue_addr, cur_bar):
        """The user port's command mux: posted writes first, then read
        requests (ahead of the bus when prefetchable). Returns the clock's
        read-request handshake."""
        port = self.port
        w64 = self.width == 64
        dw = self.width
        want_read = Signal()
        m.d.comb += want_read.eq(
            (state != S_IDLE) & (state != S_TURN) & is_read & ~is_cfg & ~stop_o
            & (rfifo.level + inflight < FIFO_DEPTH)
            & (prefetch | (issued == 0)) & ~wfifo.r_rdy)
        read_issue = Signal()
        with m.If(wfifo.r_rdy):
            m.d.comb += [
                port.cmd_valid.eq(1),
                port.cmd.addr.eq(wfifo.r_data[0:32]),
                port.cmd.data.eq(wfifo.r_data[32:32 + dw]),
                port.cmd.bar.eq(wfifo.r_data[32 + dw:35 + dw]),
                port.cmd.be.eq(wfifo.r_data[35 + dw:35 + dw + dw // 8]),
                port.cmd.write.eq(1),
                wfifo.r_en.eq(port.cmd_ready),
                self.posted_done.eq(port.cmd_ready),
            ]
        with m.Elif(want_read):
            m.d.comb += [
                port.cmd_valid.eq(1),
                port.cmd.addr.eq(Cat(Const(0, 3), issue_addr[3:]) if w64 else issue_addr),
                port.cmd.bar.eq(cur_bar),
                port.cmd.write.eq(0), port.cmd.be.eq(0xFF if w64 else 0xF),
                read_issue.eq(port.cmd_ready),
            ]
        return read_issue

    def _config_space(self, m) -> SimpleNamespace:
        """The type-0 header's registers (PCI 2.3 §6.1) and the read mux of
        the dword a configuration cycle addresses."""
        command = Signal(16)
        status = Signal(16)
        latency_timer = Signal(8)
        cache_line = Signal(8)
        int_line = Signal(8)
        bars = [Signal(32, name=f"bar{self.bar_index[i]}") for i in range(len(self.bars))]
        #: the upper dwords of the 64-bit BARs, by BarSpec index
        bars_hi = {i: Signal(32, name=f"bar{self.bar_index[i] + 1}")
                   for i, spec in enumerate(self.bars) if spec.wide}
        self._bars_hi = bars_hi
        m.d.comb += [self.command.eq(command), self.latency_timer.eq(latency_timer)]
        for i, b in enumerate(bars):
            m.d.comb += self.bar_base[i].eq(b)
        status_set = Signal(16)       # bits set this clock (comb, several sources)
        status_clr = Signal(16)       # bits cleared by a config write of 1
        m.d.sync += status.eq((status | status_set | (self.set_status & STATUS_W1C))
                              & ~status_clr)

        ids = self.ids
        cfg_rdata = Signal(32)
        cfg_reg = Signal(6)            # dword index within the 256-byte header
        R = pcireg
        with m.Switch(cfg_reg):
            with m.Case(R.ID.offset >> 2):
                m.d.comb += cfg_rdata.eq(R.ID.bits(vendor_id=ids["vendor_id"],
                                                   device_id=ids["device_id"]))
            with m.Case(R.COMMAND.offset >> 2):      # STATUS is the upper half
                m.d.comb += cfg_rdata.eq(Cat(command, status | STATUS_DEVSEL
                                             | Mux(self.int_status, STATUS_INT, 0)
                                             | Mux(self.m66, STATUS.mhz66_capable.mask, 0)))
            with m.Case(R.CLASS.offset >> 2):
                m.d.comb += cfg_rdata.eq(R.CLASS.bits(class_code=ids["class_code"],
                                                      revision_id=ids["revision"]))
            with m.Case(R.HEADER.offset >> 2):       # header type 0, no BIST
                m.d.comb += cfg_rdata.eq(Cat(cache_line, latency_timer, Const(0, 16)))
            for i, spec in enumerate(self.bars):
                reg = R.bar(self.bar_index[i])
                with m.Case(reg.offset >> 2):
                    if spec.wide:
                        flags = reg.bits(prefetchable=int(spec.prefetchable),
                                         type=R.BAR_MEM_64)
                    else:
                        flags = reg.bits(prefetchable=int(spec.prefetchable))
                    m.d.comb += cfg_rdata.eq(bars[i] | flags)
                if spec.wide:
                    with m.Case(R.bar(self.bar_index[i] + 1).offset >> 2):
                        m.d.comb += cfg_rdata.eq(bars_hi[i])
            with m.Case(R.SUBSYSTEM.offset >> 2):
                m.d.comb += cfg_rdata.eq(ids["subsystem"])
            with m.Case(R.INTERRUPT.offset >> 2):
                m.d.comb += cfg_rdata.eq(Cat(int_line, Const(ids["int_pin"], 8), Const(0, 16)))
        return SimpleNamespace(command=command, status=status, status_set=status_set,
                               status_clr=status_clr,
                               latency_timer=latency_timer, cache_line=cache_line,
                               int_line=int_line, bars=bars, rdata=cfg_rdata, reg=cfg_reg)

    def _decode(self, m, bus, command, bars):
        """The address phase: memory or configuration command, read or write,
        which BAR (or IDSEL) it hits."""
        frame_prev = Signal()
        m.d.sync += frame_prev.eq(bus.frame)
        addr_phase = bus.frame & ~frame_prev
        bus_cmd = bus.cbe_n[:4] if self.width == 64 else bus.cbe_n
        is_mem_cmd = Signal()
        m.d.comb += is_mem_cmd.eq(
            (bus_cmd == Cmd.MEM_READ) | (bus_cmd == Cmd.MEM_READ_LINE)
            | (bus_cmd == Cmd.MEM_READ_MULT) | (bus_cmd == Cmd.MEM_WRITE)
            | (bus_cmd == Cmd.MEM_WRITE_INV))
        is_read_cmd = Signal()
        m.d.comb += is_read_cmd.eq(
            (bus_cmd == Cmd.MEM_READ) | (bus_cmd == Cmd.MEM_READ_LINE)
            | (bus_cmd == Cmd.MEM_READ_MULT) | (bus_cmd == Cmd.CFG_READ))

        hit_bar = Signal(3)
        mem_hit = Signal()
        for i, spec in reversed(list(enumerate(self.bars))):
            mask = ~(spec.size - 1) & 0xFFFF_FFFF
            if self.has_config:
                base = bars[i]
                enabled = command[COMMAND.memory_space.lsb] & (bars[i] != 0)
                if spec.wide:            # above 4 GiB: only a DAC could reach it
                    enabled = enabled & (self._bars_hi[i] == 0)
            else:
                base = Const(self.fixed_base, 32)
                enabled = Const(1)
            ad32 = bus.ad[:32] if self.width == 64 else bus.ad
            with m.If(enabled & ((ad32 & mask) == (base & mask))):
                m.d.comb += [mem_hit.eq(1), hit_bar.eq(self.bar_index[i])]
        cfg_hit = Signal()
        if self.has_config:
            m.d.comb += cfg_hit.eq(self.idsel & (bus.ad[0:2] == 0)
                                   & ((bus_cmd == Cmd.CFG_READ) | (bus_cmd == Cmd.CFG_WRITE)))
        return addr_phase, frame_prev, is_mem_cmd, is_read_cmd, hit_bar, mem_hit, cfg_hit

    def _next_phase(self, m, is_cfg, is_read, prefetch, any_xfer, xfer, wait_count,
                    cfg_rdata, rfifo, wfifo, ad_o, trdy_o, stop_o, bus):
        """Decide TRDY#/STOP#/AD for the next clock of an open transaction."""
        first = ~any_xfer & ~xfer
        single = Signal()             # this target takes one data phase only
        m.d.comb += single.eq(is_cfg | ~prefetch)
        m.d.sync += trdy_o.eq(0)
        with m.If(single & (any_xfer | xfer)):
            # disconnect after the one data phase
            m.d.sync += stop_o.eq(1)
        with m.Elif(is_cfg):
            m.d.sync += [ad_o.eq(cfg_rdata), trdy_o.eq(1), stop_o.eq(bus.frame)]
        with m.Elif(is_read):
            with m.If(rfifo.r_rdy):
                m.d.comb += rfifo.r_en.eq(1)
                if self.width == 64:
                    # a 32-bit phase takes its half of the quadword onto AD[31:0];
                    # the next phase's address is phase_addr after this clock's step
                    nxt = self._phase_addr + Mux(xfer, Mux(self._wide, 8, 4), 0)
                    q = rfifo.r_data
                    m.d.sync += ad_o.eq(Mux(self._wide, q, Mux(nxt[2], q[32:], q[:32])))
                else:
                    m.d.sync += ad_o.eq(rfifo.r_data)
                m.d.sync += [trdy_o.eq(1), stop_o.eq(~prefetch & bus.frame)]
            with m.Elif(self.port.retry & first):
                m.d.sync += stop_o.eq(1)
            with m.Elif(wait_count >= Mux(first, INITIAL_LIMIT, SUBSEQUENT_LIMIT)):
                m.d.sync += stop_o.eq(1)                  # retry / disconnect w/o data
        with m.Else():
            free = FIFO_DEPTH - wfifo.level
            with m.If(self.port.retry & first):
                m.d.sync += stop_o.eq(1)
            with m.Elif(free - (wfifo.w_en) >= 1):
                m.d.sync += [trdy_o.eq(1), stop_o.eq(~prefetch & bus.frame)]
            with m.Elif(wait_count >= Mux(first, INITIAL_LIMIT, SUBSEQUENT_LIMIT)):
                m.d.sync += stop_o.eq(1)

    def _config_write(self, m, cfg_reg, wdata, be, command, status_clr, latency_timer,
                      cache_line, int_line, bars):
        def merged(old, byte_lo, width):
            """Merge the enabled bytes of wdata into a register at byte offset."""
            parts = []
            for k in range(width // 8):
                b = byte_lo + k
                parts.append(Mux(be[b], wdata[8 * b:8 * b + 8], old[8 * k:8 * k + 8]))
            return Cat(*parts)
        R = pcireg
        with m.Switch(cfg_reg):
            with m.Case(R.COMMAND.offset >> 2):
                m.d.sync += command.eq(merged(command, R.COMMAND.offset & 3, 16)
                                       & COMMAND_WRITABLE)
                m.d.comb += status_clr.eq(merged(Const(0, 16), R.STATUS.offset & 3, 16)
                                          & STATUS_W1C)
            with m.Case(R.HEADER.offset >> 2):
                m.d.sync += [
                    cache_line.eq(merged(cache_line, R.HEADER.cache_line_size.lsb // 8, 8)),
                    latency_timer.eq(merged(latency_timer, R.HEADER.latency_timer.lsb // 8, 8))]
            for i, spec in enumerate(self.bars):
                with m.Case(R.bar(self.bar_index[i]).offset >> 2):
                    mask = ~(spec.size - 1) & R.BAR_MEM_MASK
                    m.d.sync += bars[i].eq(merged(bars[i], 0, 32) & mask)
                if spec.wide:            # every upper address bit is writable
                    hi = self._bars_hi[i]
                    with m.Case(R.bar(self.bar_index[i] + 1).offset >> 2):
                        m.d.sync += hi.eq(merged(hi, 0, 32))
            with m.Case(R.INTERRUPT.offset >> 2):
                m.d.sync += int_line.eq(merged(int_line, R.INTERRUPT.interrupt_line.lsb // 8, 8))
