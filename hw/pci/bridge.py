"""A transparent PCI-to-PCI bridge (in the manner of the Intel/DEC 21152).

Sources: *PCI-to-PCI Bridge Architecture Specification* 1.1 (cited "PPB
1.1"): §3.2 the type-1 header, §4.1 address decoding, chapter 5 transaction
ordering (posted writes, delayed transactions), §9.1 the interrupt swizzle;
*PCI Local Bus Specification* 2.3 §3.2.2.3 (configuration cycles, type 0
and type 1), §3.3.3.2.2 (retry), §3.3.3.3 (delayed transactions); the
Intel 21150/21152 datasheets (posted writes, delayed reads, prefetching and
discarding of prefetched data).

The bridge is two one-way paths, each a target on one bus and an initiator
on the other (the cores of :mod:`hw.pci.target` and :mod:`hw.pci.initiator`):

- **downstream** (:class:`BridgePath`, primary → secondary): claims type-0
  configuration cycles to itself (IDSEL, function 0: the type-1 header),
  type-1 configuration cycles to a bus in [secondary, subordinate] (to the
  secondary bus: converted to type 0 with IDSEL = AD[16 + device]; beyond
  it: forwarded as type 1), and memory cycles inside the memory or
  prefetchable window;
- **upstream** (secondary → primary): memory cycles OUTSIDE both windows
  (a card's DMA to host memory), while Bus Master Enable is set (PPB 1.1
  §3.2.2: the bridge's COMMAND bit 2 enables upstream forwarding).

Each path posts memory writes (and, a simplification, configuration
writes) into a FIFO that its initiator replays in order, as bursts: the
dwords of one run (consecutive addresses, all bytes enabled, memory
writes; up to POSTED_DEPTH) go out in one command of the initiator core,
a run being closed when the next dword does not continue it, when the
target core has no more dwords to hand over, or when the FIFO is full. Reads are delayed transactions (PCI 2.3 §3.3.3.3): the target
retries the requester (STOP# without data) and latches the request; once
the posted writes ahead of it are out, the initiator performs it on the
other bus (PREFETCH_DWORDS for Memory Read Multiple / Line, one dword for
Memory Read and configuration reads); the completion waits until the
posted writes moving the same way in the other path, accepted before the
read completed, are done (PPB 1.1 §5.2: a read completion does not pass a
posted write); then the requester's retry with the same address and command
gets the data. Prefetched dwords the requester does not take are discarded
when its transaction ends (21152 datasheet). One delayed transaction per
direction; another read meanwhile is retried until then.

A read that ends in master abort on the far bus completes with all ones
(PPB 1.1 §4.8.1, Master-Abort Mode 0), a posted write that does is dropped;
both set Received Master Abort in the status register of that side
(SECONDARY_STATUS for the secondary interface). No I/O forwarding (the I/O
window reads 0), no ISA/VGA modes, no 64-bit, no discard timer, no special
cycles.

The bridge also arbitrates its secondary bus (:class:`hw.pci.arbiter.Arbiter`,
its own initiator as master 0) and swizzles the secondary INTx# onto the
primary lines: device d's pin p (0 = INTA#) drives primary line (d + p) mod 4
(PPB 1.1 §9.1, table 9-1).
"""

from amaranth.hdl import Module, Signal, Cat, Const, Mux, ResetInserter
from amaranth.lib import enum, fifo, wiring
from amaranth.lib.wiring import In, Out

from . import pcireg as R
from .arbiter import Arbiter
from .bus import Cmd, Lines, agent_signature
from .initiator import InitiatorState, PciInitiator, Status
from .target import PciTarget, FIFO_DEPTH, merge_bytes

__all__ = ["PciBridge", "BridgePath", "Kind", "DelayedState", "PREFETCH_DWORDS",
           "POSTED_DEPTH", "VENDOR_DEC", "DEVICE_21152", "CLASS_PCI_PCI_BRIDGE",
           "swizzle"]

#: identification of the 21152 (OpenBSD sys/dev/pci/pcidevs: DEC 0x1011,
#: DEC_21152 0x0024); class 06 04 00: bridge, PCI-to-PCI (PCI Code and ID
#: Assignment spec)
VENDOR_DEC, DEVICE_21152, CLASS_PCI_PCI_BRIDGE = 0x1011, 0x0024, 0x060400
#: dwords a Memory Read Multiple / Line fetches on the far bus (the model's
#: choice: a 32-byte cache line; the 21152 prefetches to an aligned boundary)
PREFETCH_DWORDS = 8
#: posted-write entries per direction (21150 datasheet: room for an address
#: and 8 dwords before the bridge stops accepting)
POSTED_DEPTH = 8
#: a target seeing AD[30:0]: the paths decode a whole 2 GiB half and keep bit 31
_HALF = 1 << 31


class Kind(enum.IntEnum, shape=2):
    """What a claimed transaction is for (VCDs show the names)."""
    MEM = 0         # a memory cycle to forward
    OWN_CFG = 1     # a type-0 configuration cycle to the bridge's own header
    CFG0 = 2        # type 1 to the secondary bus: forward as type 0
    CFG1 = 3        # type 1 to a bus below the secondary: forward as type 1


class DelayedState(enum.IntEnum, shape=3):
    EMPTY = 0       # no delayed read
    QUEUED = 1      # latched, waiting for the posted writes ahead of it
    BUSY = 2        # the initiator performs it on the far bus
    ORDER = 3       # done; waiting for the other path's older posted writes
    READY = 4       # the completion waits for the requester's retry


class IssueState(enum.IntEnum, shape=2):
    IDLE = 0
    WRITE = 1       # a posted write on the far bus
    READ = 2        # the delayed read on the far bus


def swizzle(device: int, pin: int) -> int:
    """Primary INTx# line (0 = INTA#) of secondary ``device``'s ``pin``
    (0 = INTA#): PPB 1.1 §9.1."""
    return (device + pin) % 4


#: Memory Read Multiple and Memory Read Line may prefetch (PCI 2.3 §3.1.1)
_PREFETCH_CODES = (Cmd.MEM_READ_MULT, Cmd.MEM_READ_LINE)
_WRITE_CODES = (Cmd.MEM_WRITE, Cmd.MEM_WRITE_INV, Cmd.CFG_WRITE)


class BridgePath(wiring.Component):
    """One direction of the bridge: a target on the near bus (``t_pci``),
    an initiator on the far bus (``i_pci``), the posted-write FIFO and the
    delayed-read buffer between them.

    ``claim``/``kind`` (combinational, from the header's decoders) say in an
    address phase on the near bus whether this path takes the transaction.
    ``cfg_*`` is the own-header port (downstream only). ``pending`` counts
    this path's posted writes not yet done on the far bus, ``posted_done``
    pulses per write done; the other path's pair keeps this path's read
    completions behind them.
    """

    def __init__(self, name: str):
        self.name = name
        super().__init__({
            "t_pci": Out(agent_signature()), "i_pci": Out(agent_signature()),
            "req": Out(1), "gnt": In(1),
            "claim": In(1), "kind": In(Kind),
            "latency_timer": In(8), "master_enable": In(1),
            "cfg_we": Out(1), "cfg_reg": Out(6), "cfg_wdata": Out(32), "cfg_be": Out(4),
            "cfg_rdata": In(32),
            "pending": Out(range(FIFO_DEPTH + POSTED_DEPTH + 2)),
            "posted_done": Out(range(POSTED_DEPTH + 1)),     # dwords done this clock
            "other_pending": In(range(FIFO_DEPTH + POSTED_DEPTH + 2)),
            "other_done": In(range(POSTED_DEPTH + 1)),
            "master_abort": Out(1), "target_abort": Out(1),
            "quiet": Out(1),
        })
        self.target = PciTarget(fixed_base=0, fixed_size=_HALF, state_name=f"{name}_tgt_state")
        self.initiator = PciInitiator(depth=PREFETCH_DWORDS, state_name=f"{name}_ini_state")
        self.delayed = Signal(DelayedState, name=f"{name}_delayed")
        self.issue = Signal(IssueState, name=f"{name}_issue")

    def elaborate(self, platform):
        m = Module()
        m.submodules.target = tgt = self.target
        m.submodules.initiator = ini = self.initiator
        txn = self._near_side(m, tgt)
        self._far_side(m, tgt, ini, txn)
        return m

    def _near_side(self, m, tgt):
        """The target's view of the near bus: FRAME# hidden for transactions
        this path does not claim; in a claimed address phase AD[31] cleared
        (the core decodes one 2 GiB half) and a configuration command shown
        as a memory one (the core has no type-1 decoder)."""
        bus = self.t_pci.bus
        view = Signal(Lines)
        frame_prev = Signal()
        m.d.sync += frame_prev.eq(bus.frame)
        addr_phase = bus.frame & ~frame_prev
        ignore = Signal()                     # this transaction is not ours
        active = Signal()                     # this transaction is ours
        t = _Txn(addr=Signal(32), code=Signal(4), kind=Signal(Kind), active=active,
                 addr_phase=addr_phase, frame_prev=frame_prev, ignore=ignore)
        is_cfg = (bus.cbe_n == Cmd.CFG_READ) | (bus.cbe_n == Cmd.CFG_WRITE)
        with m.If(addr_phase):
            m.d.sync += [ignore.eq(~self.claim), active.eq(self.claim),
                         t.addr.eq(bus.ad & ~3), t.code.eq(bus.cbe_n), t.kind.eq(self.kind)]
        with m.Elif(~bus.frame & ~bus.irdy):
            m.d.sync += [ignore.eq(0), active.eq(0)]
        hide = Mux(addr_phase, ~self.claim, ignore)
        m.d.comb += [
            view.eq(bus), view.frame.eq(bus.frame & ~hide),
            self.t_pci.o.eq(tgt.pci.o),
            self.t_pci.oe.eq(tgt.pci.oe), tgt.pci.bus.eq(view),
        ]
        with m.If(addr_phase):
            m.d.comb += view.ad.eq(bus.ad & (_HALF - 4))
            with m.If(is_cfg):
                m.d.comb += view.cbe_n.eq(Mux(bus.cbe_n == Cmd.CFG_READ, Cmd.MEM_READ,
                                              Cmd.MEM_WRITE))
        t.is_read = Cat(*(t.code == c for c in Cmd.READS)).any()
        t.quiet = ~frame_prev & ~ignore & ~active
        return t

    def _far_side(self, m, tgt, ini, t):
        port = tgt.port
        # posted writes: address, data, byte enables, kind
        m.submodules.posted = pf = fifo.SyncFIFOBuffered(width=32 + 32 + 4 + 2,
                                                        depth=POSTED_DEPTH)
        discard = Signal()
        m.submodules.completion = cf = ResetInserter(discard)(
            fifo.SyncFIFO(width=32, depth=PREFETCH_DWORDS))
        # the core's posted-write FIFO holds offsets only: AD[31] and the kind
        # of each posted dword follow it here, entry for entry (the core may
        # hand an older transaction's writes over during a newer one)
        m.submodules.shadow = sh = fifo.SyncFIFO(width=3, depth=FIFO_DEPTH)
        m.d.comb += [sh.w_en.eq(tgt.pci.o.trdy & tgt.pci.oe.trdy & self.t_pci.bus.irdy
                                & t.active & ~t.is_read),
                     sh.w_data.eq(Cat(t.addr[31], t.kind))]
        w_hi, w_kind = sh.r_data[0], sh.r_data[1:3]
        full_addr = Cat(port.cmd.addr[:31], w_hi)
        own = t.kind == Kind.OWN_CFG
        runs, open_len = self._runs(m, pf, tgt, full_addr, port.cmd.be, w_kind)

        # ---- the target's user port
        rsp_valid, rsp_data = Signal(), Signal(32)
        m.d.comb += [port.rsp_valid.eq(rsp_valid), port.rsp_data.eq(rsp_data)]
        m.d.sync += rsp_valid.eq(0)
        d = self.delayed
        d_addr, d_code, d_kind, d_ones = Signal(32), Signal(4), Signal(Kind), Signal()
        served = Signal()
        match = (t.addr == d_addr) & (t.code == d_code) & (t.kind == d_kind)
        serve = t.active & ~own & t.is_read & (d == DelayedState.READY) & match
        m.d.comb += port.retry.eq(t.active & ~own & t.is_read & ~serve)
        m.d.comb += [self.cfg_reg.eq(port.cmd.addr[2:8]), self.cfg_wdata.eq(port.cmd.data),
                     self.cfg_be.eq(port.cmd.be)]
        with m.If(port.cmd_valid & port.cmd.write):
            m.d.comb += sh.r_en.eq(port.cmd_ready)
            with m.If(w_kind == Kind.OWN_CFG):
                m.d.comb += [port.cmd_ready.eq(1), self.cfg_we.eq(1)]
            with m.Else():
                m.d.comb += [port.cmd_ready.eq(pf.w_rdy), pf.w_en.eq(1),
                             pf.w_data.eq(Cat(full_addr, port.cmd.data, port.cmd.be, w_kind))]
        with m.Elif(port.cmd_valid):
            with m.If(own):
                m.d.comb += port.cmd_ready.eq(1)
                m.d.sync += [rsp_valid.eq(1), rsp_data.eq(self.cfg_rdata)]
            with m.Elif(serve & (d_ones | cf.r_rdy)):
                m.d.comb += [port.cmd_ready.eq(1), cf.r_en.eq(~d_ones)]
                m.d.sync += [rsp_valid.eq(1), rsp_data.eq(Mux(d_ones, 0xFFFF_FFFF, cf.r_data)),
                             served.eq(1)]

        # a new delayed read is latched in its first address phase
        with m.If(t.addr_phase & self.claim & (self.kind != Kind.OWN_CFG)
                  & Cat(*(self.t_pci.bus.cbe_n == c for c in Cmd.READS)).any()
                  & (d == DelayedState.EMPTY)):
            m.d.sync += [d.eq(DelayedState.QUEUED), d_addr.eq(self.t_pci.bus.ad & ~3),
                         d_code.eq(self.t_pci.bus.cbe_n), d_kind.eq(self.kind), d_ones.eq(0)]
        # the requester took its data: the rest is discarded with its transaction
        with m.If(served & ~t.active):
            m.d.sync += [served.eq(0), d.eq(DelayedState.EMPTY)]
            m.d.comb += discard.eq(1)

        # ---- the far side: replay posted writes, perform the delayed read
        ist = self.issue
        type1 = Signal()                      # the initiator's cycle is type 1
        o = self.i_pci.o
        m.d.comb += [
            o.eq(ini.pci.o), self.i_pci.oe.eq(ini.pci.oe), ini.pci.bus.eq(self.i_pci.bus),
            self.req.eq(ini.req), ini.gnt.eq(self.gnt),
            ini.latency_timer.eq(self.latency_timer), ini.master_enable.eq(self.master_enable),
        ]
        # the core clears AD[1:0]; a type-1 address phase has 01 (PCI 2.3 §3.2.2.3.1)
        with m.If((ini.state == InitiatorState.ADDR) & type1):
            m.d.comb += o.ad.eq(ini.pci.o.ad | R.CONFIG_TYPE_1)
        p_addr, p_data, p_be, p_kind = pf.r_data[:32], pf.r_data[32:64], pf.r_data[64:68], \
            pf.r_data[68:70]                                       # noqa: F841 (p_kind again)
        cmd = ini.cmd.payload
        left, fed = Signal(range(POSTED_DEPTH + 1)), Signal(range(POSTED_DEPTH + 1))
        m.d.comb += ini.wdata.payload.eq(p_data)
        with m.Switch(ist):
            with m.Case(IssueState.IDLE):
                with m.If(runs.r_rdy & pf.r_rdy):   # a closed run at the FIFO's head
                    m.d.comb += [
                        ini.cmd.valid.eq(1), cmd.addr.eq(_far_address(p_kind, p_addr)),
                        cmd.count.eq(runs.r_data),
                        cmd.code.eq(Mux(p_kind == Kind.MEM, Cmd.MEM_WRITE, Cmd.CFG_WRITE)),
                        cmd.first_be.eq(p_be), cmd.last_be.eq(Mux(runs.r_data == 1, p_be, 0xF)),
                    ]
                    with m.If(ini.cmd.ready):
                        m.d.comb += runs.r_en.eq(1)
                        m.d.sync += [ist.eq(IssueState.WRITE), type1.eq(p_kind == Kind.CFG1),
                                     left.eq(runs.r_data), fed.eq(0)]
                with m.Elif((pf.level == 0) & (d == DelayedState.QUEUED) & (tgt.posted == 0)):
                    prefetch = Cat(*(d_code == c for c in _PREFETCH_CODES)).any()
                    m.d.comb += [
                        ini.cmd.valid.eq(1), cmd.addr.eq(_far_address(d_kind, d_addr)),
                        cmd.count.eq(Mux(prefetch, PREFETCH_DWORDS, 1)),
                        cmd.code.eq(Mux(d_kind == Kind.MEM, d_code, Cmd.CFG_READ)),
                        cmd.first_be.eq(0xF), cmd.last_be.eq(0xF),
                    ]
                    with m.If(ini.cmd.ready):
                        m.d.sync += [ist.eq(IssueState.READ), d.eq(DelayedState.BUSY),
                                     type1.eq(d_kind == Kind.CFG1)]
            with m.Case(IssueState.WRITE):
                # the run's dwords into the initiator (it starts a
                # transaction once the burst is in its FIFO)
                m.d.comb += ini.wdata.valid.eq(pf.r_rdy & (left != 0))
                with m.If(ini.wdata.valid & ini.wdata.ready):
                    m.d.comb += pf.r_en.eq(1)
                    m.d.sync += [left.eq(left - 1), fed.eq(fed + 1)]
                with m.If(ini.done):
                    m.d.sync += ist.eq(IssueState.IDLE)
                    m.d.comb += self.posted_done.eq(fed)
            with m.Case(IssueState.READ):
                with m.If(ini.done):
                    m.d.sync += ist.eq(IssueState.IDLE)
        with m.If(ini.done & (ini.done_status != Status.OK)):
            m.d.comb += [ini.flush.eq(1),
                         self.master_abort.eq(ini.done_status == Status.MASTER_ABORT),
                         self.target_abort.eq(ini.done_status == Status.TARGET_ABORT)]
        # read data into the completion buffer
        m.d.comb += [cf.w_data.eq(ini.rdata.payload), cf.w_en.eq(ini.rdata.valid),
                     ini.rdata.ready.eq(cf.w_rdy)]

        # ---- completion ordering behind the other path's older posted writes
        older = Signal.like(self.other_pending)
        with m.If((ist == IssueState.READ) & ini.done):
            m.d.sync += [d.eq(DelayedState.ORDER), older.eq(self.other_pending - self.other_done),
                         d_ones.eq(ini.done_status != Status.OK)]
        with m.If(d == DelayedState.ORDER):
            m.d.sync += older.eq(older - self.other_done)
            with m.If((older - self.other_done == 0) & ~ini.rdata.valid):
                m.d.sync += d.eq(DelayedState.READY)

        m.d.comb += self.pending.eq(tgt.posted + pf.level
                                    + Mux(ist == IssueState.WRITE, fed, 0))
        m.d.comb += self.quiet.eq(
            t.quiet & tgt.quiet & ini.quiet & (ist == IssueState.IDLE) & (pf.level == 0)
            & (sh.level == 0) & (runs.level == 0) & (open_len == 0)
            & ((d == DelayedState.EMPTY) | (d == DelayedState.READY)) & ~rsp_valid & ~served
            & (self.other_done == 0))

    def _runs(self, m, pf, tgt, addr, be, kind):
        """The posted-write FIFO's dwords cut into runs, one burst each: a
        dword continues the open run if it is a memory write with all bytes
        enabled at the next address, the run's dwords so far being such too,
        and the run is shorter than POSTED_DEPTH; the open run closes (its
        length into ``runs``) when a dword does not continue it, or in a
        clock without a dword while the target core holds none or the FIFO
        is full."""
        m.submodules.runs = runs = fifo.SyncFIFO(width=len(Const(POSTED_DEPTH)),
                                                 depth=POSTED_DEPTH + 1)
        open_len = Signal(range(POSTED_DEPTH + 1))
        open_next = Signal(32)
        open_burst = Signal()                 # the open run may grow
        wrote = pf.w_en & pf.w_rdy
        whole = (be == 0xF) & (kind == Kind.MEM)
        cont = (open_len != 0) & open_burst & whole & (addr == open_next) \
            & (open_len < POSTED_DEPTH)
        with m.If(wrote):
            m.d.sync += open_next.eq(addr + 4)
            with m.If(cont):
                m.d.sync += open_len.eq(open_len + 1)
            with m.Else():
                m.d.comb += [runs.w_en.eq(open_len != 0), runs.w_data.eq(open_len)]
                m.d.sync += [open_len.eq(1), open_burst.eq(whole)]
        with m.Elif((open_len != 0) & ((tgt.posted == 0) | ~pf.w_rdy
                                       | (open_len == POSTED_DEPTH))):
            m.d.comb += [runs.w_en.eq(1), runs.w_data.eq(open_len)]
            m.d.sync += open_len.eq(0)
        return runs, open_len


class _Txn:
    """What the near side latched of the transaction on the bus."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


def _far_address(kind, addr):
    """The address phase on the far bus: a memory address as it is; type 1
    to the secondary bus as type 0 with IDSEL = AD[16 + device] (devices
    16-31 get none), function and register kept (PPB 1.1 §3.2.5.3, PCI 2.3
    §3.2.2.3.1); type 1 to a bus beyond as it is (AD[1:0] added back)."""
    dev = addr[R.CONFIG_ADDRESS.device.lsb:R.CONFIG_ADDRESS.device.lsb + 5]
    idsel = (Const(1, 48) << (dev + 16))[:32]
    low = addr[:R.CONFIG_ADDRESS.device.lsb] & ~3
    return Mux(kind == Kind.CFG0, idsel | low, addr)


class PciBridge(wiring.Component):
    """The bridge: type-1 header, two :class:`BridgePath`, the secondary
    arbiter, the INTx# swizzle. ``masters``: bus masters on the secondary
    besides the bridge; ``devices``: the secondary device numbers whose
    INTA#..INTD# come in on ``dev_int``."""

    def __init__(self, *, masters: int = 1, devices=(1,), revision: int = 0, m66: bool = False):
        #: 66MHz Capable in STATUS and SECONDARY_STATUS (PCI 2.3 §6.2.3, PPB
        #: 1.1 §3.2.5.7): a 21152 is a 33 MHz part, a 21154 would say 1
        self.m66 = bool(m66)
        self.devices = tuple(devices)
        self.masters = masters
        self.revision = revision
        super().__init__({
            "pri_t": Out(agent_signature()), "pri_m": Out(agent_signature()),
            "sec_t": Out(agent_signature()), "sec_m": Out(agent_signature()),
            "idsel": In(1), "pri_req": Out(1), "pri_gnt": In(1),
            "sec_req": In(masters), "sec_gnt": Out(masters),
            "sec_arb_gnt": Out(masters + 1),   # every secondary GNT#, the bridge's first
            "dev_int": In(4).array(max(len(self.devices), 1)),
            "int_out": Out(4),                 # primary INTA#..INTD#
            "quiet": Out(1),
        })
        self.down = BridgePath("down")
        self.up = BridgePath("up")
        self.arbiter = Arbiter(masters + 1)

    def elaborate(self, platform):
        m = Module()
        m.submodules.down = down = self.down
        m.submodules.up = up = self.up
        m.submodules.arbiter = arb = self.arbiter
        for path, t, i in ((down, self.pri_t, self.sec_m), (up, self.sec_t, self.pri_m)):
            m.d.comb += [t.o.eq(path.t_pci.o), t.oe.eq(path.t_pci.oe),
                         path.t_pci.bus.eq(t.bus),
                         i.o.eq(path.i_pci.o), i.oe.eq(path.i_pci.oe),
                         path.i_pci.bus.eq(i.bus)]
        m.d.comb += [
            down.other_pending.eq(up.pending), down.other_done.eq(up.posted_done),
            up.other_pending.eq(down.pending), up.other_done.eq(down.posted_done),
            self.pri_req.eq(up.req), up.gnt.eq(self.pri_gnt),
            arb.req.eq(Cat(down.req, self.sec_req)), down.gnt.eq(arb.gnt[0]),
            self.sec_gnt.eq(arb.gnt[1:]), self.sec_arb_gnt.eq(arb.gnt),
            arb.bus.eq(self.sec_m.bus),
        ]
        h = self._header(m, down, up)
        self._decode(m, h, down, up)
        ints = [0, 0, 0, 0]
        for k, dev in enumerate(self.devices):
            for pin in range(4):
                ints[swizzle(dev, pin)] = ints[swizzle(dev, pin)] | self.dev_int[k][pin]
        m.d.comb += self.int_out.eq(Cat(*ints))
        m.d.comb += self.quiet.eq(down.quiet & up.quiet & arb.quiet & ~h.status_event)
        return m

    def _header(self, m, down, up):
        """The type-1 header (PPB 1.1 §3.2) behind the downstream path's
        own-configuration port."""
        command, status, sec_status = Signal(16), Signal(16), Signal(16)
        cache_line, latency_timer, int_line = Signal(8), Signal(8), Signal(8)
        buses, mem_win, pf_win, control = Signal(32), Signal(32), Signal(32), Signal(16)
        writable = R.COMMAND.mask("memory_space", "bus_master", "parity_error_response",
                                  "serr_enable")
        w1c = R.STATUS.mask("received_target_abort", "received_master_abort")
        sec_w1c = R.SECONDARY_STATUS.mask("received_target_abort", "received_master_abort")
        win_mask = R.MEMORY_WINDOW.mask("base", "limit")
        ctl_mask = R.BRIDGE_CONTROL.mask("parity_error_response", "serr_enable",
                                         "isa_enable", "vga_enable", "master_abort_mode",
                                         "secondary_bus_reset", "fast_b2b_enable")
        devsel = R.STATUS.devsel_timing.value(R.DEVSEL_MEDIUM) \
            | (R.STATUS.mhz66_capable.mask if self.m66 else 0)
        rd = Signal(32)
        with m.Switch(down.cfg_reg):
            for reg, value in (
                    (R.ID, R.ID.bits(vendor_id=VENDOR_DEC, device_id=DEVICE_21152)),
                    (R.COMMAND, Cat(command, status | devsel)),
                    (R.CLASS, R.CLASS.bits(class_code=CLASS_PCI_PCI_BRIDGE,
                                           revision_id=self.revision)),
                    (R.HEADER, Cat(cache_line, latency_timer,
                                   Const(R.HEADER_TYPE_BRIDGE, 16))),
                    (R.BUS_NUMBERS, buses),
                    (R.IO_WINDOW, Cat(Const(0, 16), sec_status | devsel)),
                    (R.MEMORY_WINDOW, mem_win), (R.PREFETCH_WINDOW, pf_win),
                    (R.BRIDGE_INTERRUPT, Cat(int_line, Const(0, 8), control))):
                with m.Case(reg.offset >> 2):
                    m.d.comb += rd.eq(value)
        m.d.comb += down.cfg_rdata.eq(rd)
        we, be, wd = down.cfg_we, down.cfg_be, down.cfg_wdata
        stat_clr, sec_clr = Signal(16), Signal(16)
        with m.If(we):
            with m.Switch(down.cfg_reg):
                with m.Case(R.COMMAND.offset >> 2):
                    m.d.sync += command.eq(merge_bytes(command, wd[:16], be[:2]) & writable)
                    m.d.comb += stat_clr.eq(wd[16:] & Cat(be[2].replicate(8), be[3].replicate(8)))
                with m.Case(R.HEADER.offset >> 2):
                    m.d.sync += [cache_line.eq(Mux(be[0], wd[:8], cache_line)),
                                 latency_timer.eq(Mux(be[1], wd[8:16], latency_timer))]
                with m.Case(R.BUS_NUMBERS.offset >> 2):
                    m.d.sync += buses.eq(merge_bytes(buses, wd, be))
                with m.Case(R.IO_WINDOW.offset >> 2):
                    m.d.comb += sec_clr.eq(wd[16:] & Cat(be[2].replicate(8), be[3].replicate(8)))
                with m.Case(R.MEMORY_WINDOW.offset >> 2):
                    m.d.sync += mem_win.eq(merge_bytes(mem_win, wd, be) & win_mask)
                with m.Case(R.PREFETCH_WINDOW.offset >> 2):
                    m.d.sync += pf_win.eq(merge_bytes(pf_win, wd, be) & win_mask)
                with m.Case(R.BRIDGE_INTERRUPT.offset >> 2):
                    m.d.sync += [int_line.eq(Mux(be[0], wd[:8], int_line)),
                                 control.eq(merge_bytes(control, wd[16:], be[2:]) & ctl_mask)]
        # Received Master/Target Abort: the upstream path's initiator is the
        # primary master, the downstream path's the secondary (PPB 1.1 §3.2.5.7)
        st_set = Cat(Const(0, 12), up.target_abort, up.master_abort)
        sec_set = Cat(Const(0, 12), down.target_abort, down.master_abort)
        m.d.sync += [status.eq((status | st_set) & ~(stat_clr & w1c)),
                     sec_status.eq((sec_status | sec_set) & ~(sec_clr & sec_w1c))]
        m.d.comb += [up.latency_timer.eq(latency_timer),
                     up.master_enable.eq(command[R.COMMAND.bus_master.lsb]),
                     down.latency_timer.eq(buses[R.BUS_NUMBERS.secondary_latency_timer.lsb:]),
                     down.master_enable.eq(1)]
        return _Txn(command=command, buses=buses, mem_win=mem_win, pf_win=pf_win,
                    status_event=(st_set | sec_set).any())

    def _decode(self, m, h, down, up):
        """Which path claims an address phase (PPB 1.1 §4.1: positive decode
        of the windows downstream, of everything outside them upstream)."""
        pb, sb = down.t_pci.bus, up.t_pci.bus

        def inside(win, ad):
            base = win[R.MEMORY_WINDOW.base.lsb:R.MEMORY_WINDOW.base.lsb + 12]
            limit = win[R.MEMORY_WINDOW.limit.lsb:R.MEMORY_WINDOW.limit.lsb + 12]
            top = ad[R.WINDOW_SHIFT:32]
            return (base <= limit) & (top >= base) & (top <= limit)

        def memory(bus):
            return Cat(*(bus.cbe_n == c for c in (Cmd.MEM_READ, Cmd.MEM_WRITE, Cmd.MEM_READ_MULT,
                                                   Cmd.MEM_READ_LINE, Cmd.MEM_WRITE_INV))).any()

        mem_en = h.command[R.COMMAND.memory_space.lsb]
        master_en = h.command[R.COMMAND.bus_master.lsb]
        in_p = inside(h.mem_win, pb.ad) | inside(h.pf_win, pb.ad)
        in_s = inside(h.mem_win, sb.ad) | inside(h.pf_win, sb.ad)
        cfg = (pb.cbe_n == Cmd.CFG_READ) | (pb.cbe_n == Cmd.CFG_WRITE)
        A = R.CONFIG_ADDRESS
        bus_no = pb.ad[A.bus.lsb:A.bus.lsb + 8]
        sec = h.buses[R.BUS_NUMBERS.secondary_bus.lsb:][:8]
        sub = h.buses[R.BUS_NUMBERS.subordinate_bus.lsb:][:8]
        own = cfg & self.idsel & (pb.ad[:2] == R.CONFIG_TYPE_0) \
            & (pb.ad[A.function.lsb:A.function.lsb + 3] == 0)
        fwd = cfg & (pb.ad[:2] == R.CONFIG_TYPE_1) & (bus_no >= sec) & (bus_no <= sub) \
            & (sec != 0)
        m.d.comb += [
            down.claim.eq(own | fwd | (memory(pb) & mem_en & in_p)),
            down.kind.eq(Mux(own, Kind.OWN_CFG, Mux(fwd, Mux(bus_no == sec, Kind.CFG0,
                                                              Kind.CFG1), Kind.MEM))),
            up.claim.eq(memory(sb) & master_en & ~in_s),
            up.kind.eq(Kind.MEM),
        ]
