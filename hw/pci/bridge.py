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
target core has no more dwords to hand over, or when the FIFO is full.

Reads are delayed transactions (PCI 2.3 §3.3.3.3): the target retries the
requester and latches the request in one of DELAYED_ENTRIES entries (a
retry that matches an entry is not latched twice; with all of them taken,
a new read is retried until one frees). The initiator performs the entries
in the order they were latched, each once the posted writes ahead of it are
out, prefetching to the 21152's aligned boundaries (PREFETCH_DWORDS for
Memory Read Multiple, LINE_DWORDS for Memory Read Line, one dword for
Memory Read and configuration reads); a completion waits until the posted
writes moving the same way in the other path, accepted before the read
completed, are done (PPB 1.1 §5.2: a read completion does not pass a
posted write); then the requester's retry with the same address and
command gets the data from its entry. Prefetched dwords the requester does
not take are discarded when its transaction ends (21152 datasheet).

A read that ends in master abort on the far bus completes with all ones
(PPB 1.1 §4.8.1, Master-Abort Mode 0), a posted write that does is dropped;
both set Received Master Abort in the status register of that side
(SECONDARY_STATUS for the secondary interface). No I/O forwarding (the I/O
window reads 0), no ISA/VGA modes, no 64-bit, no special cycles. A
completion whose requester does not come back within the discard timer
(DISCARD_CLOCKS) is discarded and its entry freed (PPB 1.1 §3.2.5.18).

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
           "POSTED_DEPTH", "DELAYED_ENTRIES", "DISCARD_CLOCKS", "DISCARD_CLOCKS_SHORT",
           "CTL_PRIMARY_DISCARD", "CTL_SECONDARY_DISCARD", "CTL_DISCARD_STATUS", "VENDOR_DEC", "DEVICE_21152", "CLASS_PCI_PCI_BRIDGE",
           "swizzle"]

#: identification of the 21152 (OpenBSD sys/dev/pci/pcidevs: DEC 0x1011,
#: DEC_21152 0x0024); class 06 04 00: bridge, PCI-to-PCI (PCI Code and ID
#: Assignment spec)
VENDOR_DEC, DEVICE_21152, CLASS_PCI_PCI_BRIDGE = 0x1011, 0x0024, 0x060400
#: how far a delayed read prefetches on the far bus: a Memory Read Multiple to
#: the next 32-dword aligned boundary, a Memory Read Line to the next 16-dword
#: one, with the cache line size register at 0 as the model's software leaves
#: it (21152 datasheet §4.6.3, Table 4-5; the same table in the compatible
#: Pericom PI7C8150 datasheet, Table 3-4); a Memory Read and a configuration
#: read fetch one dword. PREFETCH_DWORDS is the most, the completion buffer's size.
PREFETCH_DWORDS = 32
LINE_DWORDS = 16
#: posted-write dwords per direction in the path's FIFO, beside the target
#: core's FIFO_DEPTH: 20 data dwords in all, which with two transactions'
#: addresses is the 88 bytes (22 dwords) of posted-write buffering per
#: direction of the 21150 and 21152 (address and data, up to three
#: transactions: their datasheets' feature lists; the 21154 has 152 bytes
#: upstream, 88 downstream). So a 16-dword burst (a Hifn 7751's) is taken
#: whole and replayed as one burst of up to POSTED_DEPTH. (The 21150's "the
#: address and at least 8 Dwords of data", 21150 datasheet §4.5.1, is the
#: free space it needs before it accepts a posted write, not its size; the
#: model had 8 here, 12 dwords in all, until it was read so.)
POSTED_DEPTH = 16
#: delayed reads each direction holds at once, each with a completion buffer of
#: PREFETCH_DWORDS. PCI 2.3 §3.3.3.3 lets a bridge hold several; the 21150,
#: 21152 and 21154 hold up to three per direction (their datasheets' feature
#: lists), the Pericom PI7C8140A up to four (its datasheet §2.6, read
#: transactions). The model follows the PI7C8140A's four, one per master of the quad
#: card's four-chip secondary bus, so that no chip's read is refused an entry
#: (with three, a fourth chip's read is retried unlatched until one frees);
#: its read buffering (4 x 32 dwords) is more than the 21152's 72 bytes
DELAYED_ENTRIES = 4
#: the discard timer: a completion its requester has not come back for within
#: this many clocks of the far side finishing it is discarded and its entry
#: freed, 2^15 clocks, or 2^10 with the Bridge Control register's Primary
#: (bit 8, downstream completions) or Secondary (bit 9, upstream) Discard
#: Timeout bit set; either expiring sets Discard Timer Status (bit 10, write 1
#: to clear). PPB 1.1 §3.2.5.18 (Bridge Control) and §5.3 (the requester
#: must repeat a delayed transaction); the PI7C8140A's default is 2^15 (its
#: datasheet §2.6, master timeout timer)
DISCARD_CLOCKS, DISCARD_CLOCKS_SHORT = 1 << 15, 1 << 10
#: Bridge Control bits of the discard timer (PPB 1.1 §3.2.5.18)
CTL_PRIMARY_DISCARD, CTL_SECONDARY_DISCARD, CTL_DISCARD_STATUS = 1 << 8, 1 << 9, 1 << 10
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
    DROP = 3        # the write failed: the rest of its run leaves the FIFO unsent


def swizzle(device: int, pin: int) -> int:
    """Primary INTx# line (0 = INTA#) of secondary ``device``'s ``pin``
    (0 = INTA#): PPB 1.1 §9.1."""
    return (device + pin) % 4


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

    def __init__(self, name: str, entries: int = DELAYED_ENTRIES):
        if entries < 1:
            raise ValueError("a bridge path needs at least one delayed-read entry")
        self.name = name
        self.entries = entries
        super().__init__({
            "t_pci": Out(agent_signature()), "i_pci": Out(agent_signature()),
            "req": Out(1), "gnt": In(1),
            "claim": In(1), "kind": In(Kind),
            "latency_timer": In(8), "master_enable": In(1),
            "cfg_we": Out(1), "cfg_reg": Out(6), "cfg_wdata": Out(32), "cfg_be": Out(4),
            "cfg_rdata": In(32),
            "pending": Out(range(FIFO_DEPTH + 2 * POSTED_DEPTH + 1)),
            "posted_done": Out(range(POSTED_DEPTH + 1)),     # dwords done this clock
            "other_pending": In(range(FIFO_DEPTH + 2 * POSTED_DEPTH + 1)),
            "other_done": In(range(POSTED_DEPTH + 1)),
            "master_abort": Out(1), "target_abort": Out(1),
            "discard_short": In(1),        # the discard timer is 2^10 clocks, not 2^15
            "discarded": Out(1),           # a completion was discarded this clock
            "quiet": Out(1),
        })
        self.target = PciTarget(fixed_base=0, fixed_size=_HALF, state_name=f"{name}_tgt_state")
        # the far side feeds a run it holds whole, one dword a clock, so the
        # initiator starts the burst on its first dword (stream_writes)
        self.initiator = PciInitiator(depth=PREFETCH_DWORDS, state_name=f"{name}_ini_state",
                                      stream_writes=True)
        self.delayed = Signal(DelayedState, name=f"{name}_delayed")
        #: every delayed-read entry's state (``delayed`` is entry 0's)
        self.entry_states = [self.delayed] + [
            Signal(DelayedState, name=f"{name}_delayed{i}") for i in range(1, entries)]
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

        # ---- the target's user port: own configuration reads, delayed completions
        rsp_valid, rsp_data = Signal(), Signal(32)
        m.d.comb += [port.rsp_valid.eq(rsp_valid), port.rsp_data.eq(rsp_data)]
        m.d.sync += rsp_valid.eq(0)
        m.d.comb += [self.cfg_reg.eq(port.cmd.addr[2:8]), self.cfg_wdata.eq(port.cmd.data),
                     self.cfg_be.eq(port.cmd.be)]
        dq = self._delayed_reads(m, t, own, ini)
        m.d.comb += port.retry.eq(t.active & ~own & t.is_read & ~dq.serve)
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
            with m.Elif(dq.serve & (dq.s_ones | dq.s_rdy)):
                m.d.comb += [port.cmd_ready.eq(1), dq.s_take.eq(~dq.s_ones)]
                m.d.sync += [rsp_valid.eq(1),
                             rsp_data.eq(Mux(dq.s_ones, 0xFFFF_FFFF, dq.s_data)),
                             dq.served.eq(1)]

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
                with m.Elif((pf.level == 0) & dq.head_valid & (tgt.posted == 0)):
                    # the oldest queued read, once every posted write is out
                    # (PPB 1.1 §5.2: a read request pushes the posted writes ahead)
                    m.d.comb += [
                        ini.cmd.valid.eq(1), cmd.addr.eq(_far_address(dq.h_kind, dq.h_addr)),
                        cmd.count.eq(dq.h_count),
                        cmd.code.eq(Mux(dq.h_kind == Kind.MEM, dq.h_code, Cmd.CFG_READ)),
                        cmd.first_be.eq(0xF), cmd.last_be.eq(0xF),
                    ]
                    with m.If(ini.cmd.ready):
                        m.d.comb += dq.start.eq(1)
                        m.d.sync += [ist.eq(IssueState.READ), type1.eq(dq.h_kind == Kind.CFG1)]
            with m.Case(IssueState.WRITE):
                # the run's dwords into the initiator, one a clock (the whole
                # run is in the FIFO: it was closed after its last dword); the
                # initiator starts the burst on the first
                feed = Signal()
                m.d.comb += [ini.wdata.valid.eq(pf.r_rdy & (left != 0)),
                             feed.eq(ini.wdata.valid & ini.wdata.ready)]
                with m.If(feed):
                    m.d.comb += pf.r_en.eq(1)
                    m.d.sync += [left.eq(left - 1), fed.eq(fed + 1)]
                with m.If(ini.done & (left == feed)):
                    m.d.sync += ist.eq(IssueState.IDLE)
                    m.d.comb += self.posted_done.eq(fed + feed)
                with m.Elif(ini.done):
                    # master or target abort, or given up, before the run was
                    # all fed: the write is dropped (PPB 1.1 §4.8.1), and so
                    # are the dwords of it still in the FIFO
                    m.d.sync += ist.eq(IssueState.DROP)
            with m.Case(IssueState.DROP):
                with m.If(left != 0):
                    m.d.comb += pf.r_en.eq(1)
                    m.d.sync += [left.eq(left - 1), fed.eq(fed + 1)]
                with m.Else():
                    m.d.sync += ist.eq(IssueState.IDLE)
                    m.d.comb += self.posted_done.eq(fed)
            with m.Case(IssueState.READ):
                with m.If(ini.done):
                    m.d.comb += dq.finish.eq(1)
                    m.d.sync += ist.eq(IssueState.IDLE)
        with m.If(ini.done & (ini.done_status != Status.OK)):
            m.d.comb += [ini.flush.eq(1),
                         self.master_abort.eq(ini.done_status == Status.MASTER_ABORT),
                         self.target_abort.eq(ini.done_status == Status.TARGET_ABORT)]

        m.d.comb += self.pending.eq(tgt.posted + pf.level
                                    + Mux((ist == IssueState.WRITE) | (ist == IssueState.DROP),
                                          fed, 0))
        m.d.comb += self.quiet.eq(
            t.quiet & tgt.quiet & ini.quiet & (ist == IssueState.IDLE) & (pf.level == 0)
            & (sh.level == 0) & (runs.level == 0) & (open_len == 0)
            & dq.quiet & ~rsp_valid
            & (self.other_done == 0))

    def _delayed_reads(self, m, t, own, ini):
        """The delayed-read queue: ``self.entries`` requests, each with its
        own completion buffer (PCI 2.3 §3.3.3.3: a bridge may hold several
        delayed transactions; see DELAYED_ENTRIES).

        A read address phase on the near bus that matches no entry (address,
        command, kind) takes an empty entry, if one is free, and its number
        goes into a FIFO: the far side performs the requests in that order
        (``head_valid``/``h_*``; ``start`` when it takes the head, ``finish``
        when the initiator is done). The read data of the one in progress
        fills that entry's buffer; the entry is ready once the data is in
        and the other path's posted writes older than the completion are
        out. A retry that matches a ready entry is served from its buffer
        (``serve``, ``s_*``; ``s_take`` pops a dword); when that transaction
        ends, the entry and what is left in its buffer are discarded."""
        n = self.entries
        bus = self.t_pci.bus
        st = self.entry_states
        addr = [Signal(32, name=f"{self.name}_dr{i}_addr") for i in range(n)]
        code = [Signal(4, name=f"{self.name}_dr{i}_code") for i in range(n)]
        kind = [Signal(Kind, name=f"{self.name}_dr{i}_kind") for i in range(n)]
        ones = [Signal(name=f"{self.name}_dr{i}_ones") for i in range(n)]
        older = [Signal.like(self.other_pending, name=f"{self.name}_dr{i}_older")
                 for i in range(n)]
        discard = Signal(n)
        bufs = []
        for i in range(n):
            buf = ResetInserter(discard[i])(fifo.SyncFIFO(width=32, depth=PREFETCH_DWORDS))
            m.submodules[f"completion{i}"] = buf
            bufs.append(buf)
        m.submodules.order = order = fifo.SyncFIFO(width=max(1, (n - 1).bit_length()), depth=n)
        ns = _Txn(serve=Signal(), s_ones=Signal(), s_rdy=Signal(), s_data=Signal(32),
                  s_take=Signal(), served=Signal(), start=Signal(), finish=Signal(),
                  head_valid=Signal(), h_addr=Signal(32), h_code=Signal(4), h_kind=Signal(Kind),
                  h_count=Signal(range(PREFETCH_DWORDS + 1)), quiet=Signal())
        cur = Signal(range(n))                    # the entry being read on the far bus
        draining = Signal()                       # its data is not all in yet
        fill, need = Signal(range(PREFETCH_DWORDS + 1)), Signal(range(PREFETCH_DWORDS + 1))
        s_idx = Signal(range(n))                  # the entry being served

        # ---- near side: latch a new request, serve a ready one
        new_read = t.addr_phase & self.claim & (self.kind != Kind.OWN_CFG) \
            & Cat(*(bus.cbe_n == c for c in Cmd.READS)).any()
        seen = Cat(*((st[i] != DelayedState.EMPTY) & (addr[i] == (bus.ad & ~3))
                     & (code[i] == bus.cbe_n) & (kind[i] == self.kind)
                     for i in range(n))).any()
        free = Cat(*(st[i] == DelayedState.EMPTY for i in range(n)))
        with m.If(new_read & ~seen & free.any() & order.w_rdy):
            m.d.comb += order.w_en.eq(1)
            for i in reversed(range(n)):          # the lowest free entry
                with m.If(free[i]):
                    m.d.comb += order.w_data.eq(i)
            with m.Switch(order.w_data):
                for i in range(n):
                    with m.Case(i):
                        m.d.sync += [st[i].eq(DelayedState.QUEUED), addr[i].eq(bus.ad & ~3),
                                     code[i].eq(bus.cbe_n), kind[i].eq(self.kind),
                                     ones[i].eq(0)]
        hit = Cat(*((st[i] == DelayedState.READY) & (t.addr == addr[i]) & (t.code == code[i])
                    & (t.kind == kind[i]) for i in range(n)))
        for i in reversed(range(n)):
            with m.If(hit[i]):
                m.d.comb += s_idx.eq(i)
        m.d.comb += [ns.serve.eq(t.active & ~own & t.is_read & hit.any()),
                     ns.s_ones.eq(Cat(*ones).bit_select(s_idx, 1)),
                     ns.s_rdy.eq(Cat(*(b.r_rdy for b in bufs)).bit_select(s_idx, 1)),
                     ns.s_data.eq(Cat(*(b.r_data for b in bufs)).word_select(s_idx, 32))]
        served_idx = Signal(range(n))
        with m.If(ns.serve):
            m.d.sync += served_idx.eq(s_idx)
        for i in range(n):
            m.d.comb += bufs[i].r_en.eq(ns.s_take & (s_idx == i))
        # the requester took its data: the rest is discarded with its transaction
        with m.If(ns.served & ~t.active):
            m.d.sync += ns.served.eq(0)
            with m.Switch(served_idx):
                for i in range(n):
                    with m.Case(i):
                        m.d.sync += st[i].eq(DelayedState.EMPTY)
                        m.d.comb += discard[i].eq(1)
        self._discard_timer(m, st, discard, ns, s_idx, served_idx)

        # ---- far side: the head of the queue, its data, the ordering wait
        head = order.r_data
        m.d.comb += [ns.head_valid.eq(order.r_rdy & ~draining),
                     ns.h_addr.eq(Cat(*addr).word_select(head, 32)),
                     ns.h_code.eq(Cat(*code).word_select(head, 4)),
                     ns.h_kind.eq(Cat(*kind).word_select(head, Kind.as_shape().width)),
                     ns.h_count.eq(_prefetch_count(ns.h_code, ns.h_addr))]
        with m.If(ns.start):
            m.d.comb += order.r_en.eq(1)
            m.d.sync += [cur.eq(head), draining.eq(1), fill.eq(0), need.eq(ns.h_count)]
            with m.Switch(head):
                for i in range(n):
                    with m.Case(i):
                        m.d.sync += st[i].eq(DelayedState.BUSY)
        took = ini.rdata.valid & ini.rdata.ready
        m.d.comb += ini.rdata.ready.eq(Cat(*(b.w_rdy for b in bufs)).bit_select(cur, 1))
        for i in range(n):
            m.d.comb += [bufs[i].w_data.eq(ini.rdata.payload),
                         bufs[i].w_en.eq(ini.rdata.valid & (cur == i))]
        with m.If(took):
            m.d.sync += fill.eq(fill + 1)
        failed = ns.finish & (ini.done_status != Status.OK)   # the initiator flushes
        with m.If(draining & ((took & (fill + 1 == need)) | failed)):
            m.d.sync += draining.eq(0)
        for i in range(n):
            with m.If(ns.finish & (cur == i)):
                m.d.sync += [st[i].eq(DelayedState.ORDER),
                             older[i].eq(self.other_pending - self.other_done),
                             ones[i].eq(ini.done_status != Status.OK)]
            with m.If(st[i] == DelayedState.ORDER):
                m.d.sync += older[i].eq(older[i] - self.other_done)
                in_full = ones[i] | (cur != i) | ~draining
                with m.If((older[i] - self.other_done == 0) & in_full):
                    m.d.sync += st[i].eq(DelayedState.READY)
        m.d.comb += ns.quiet.eq(
            Cat(*(s == DelayedState.EMPTY for s in st)).all() & ~ns.served & ~draining)
        return ns

    def _discard_timer(self, m, st, discard, ns, s_idx, served_idx):
        """Each ready entry's discard timer (DISCARD_CLOCKS): it counts the
        clocks its completion waits for the requester's retry and restarts
        while the requester takes data; at the limit the entry and its data
        are discarded, so a master that never comes back cannot hold an entry
        (a retry after that is a new request)."""
        limit = Mux(self.discard_short, DISCARD_CLOCKS_SHORT - 1, DISCARD_CLOCKS - 1)
        expired = Signal(len(st))
        for i, s in enumerate(st):
            age = Signal(range(DISCARD_CLOCKS), name=f"{self.name}_dr{i}_age")
            taking = (ns.serve & (s_idx == i)) | (ns.served & (served_idx == i))
            with m.If((s != DelayedState.READY) | taking):
                m.d.sync += age.eq(0)
            with m.Elif(age >= limit):
                m.d.comb += [expired[i].eq(1), discard[i].eq(1)]
                m.d.sync += [s.eq(DelayedState.EMPTY), age.eq(0)]
            with m.Else():
                m.d.sync += age.eq(age + 1)
        m.d.comb += self.discarded.eq(expired.any())

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


def _prefetch_count(code, addr):
    """Dwords a delayed read of ``code`` at ``addr`` fetches: to the aligned
    boundary of its command (PREFETCH_DWORDS, LINE_DWORDS), else one."""
    dw = addr[2:]
    to_mult = PREFETCH_DWORDS - dw[:(PREFETCH_DWORDS - 1).bit_length()]
    to_line = LINE_DWORDS - dw[:(LINE_DWORDS - 1).bit_length()]
    return Mux(code == Cmd.MEM_READ_MULT, to_mult, Mux(code == Cmd.MEM_READ_LINE, to_line, 1))


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
                                         "secondary_bus_reset", "fast_b2b_enable") \
            | CTL_PRIMARY_DISCARD | CTL_SECONDARY_DISCARD
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
        ctl_we = Signal()
        # Bridge Control: the writable bits, and Discard Timer Status set by
        # either path's discard timer, cleared by writing 1 (PPB 1.1 §3.2.5.18)
        ctl_new = Mux(ctl_we, merge_bytes(control, wd[16:], be[2:]), control)
        ctl_clr = Mux(ctl_we & be[3], wd[16:] & CTL_DISCARD_STATUS, 0)
        ctl_set = Mux(down.discarded | up.discarded, CTL_DISCARD_STATUS, 0)
        m.d.sync += control.eq((ctl_new & ctl_mask)
                               | ((control | ctl_set) & CTL_DISCARD_STATUS & ~ctl_clr))
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
                    m.d.sync += int_line.eq(Mux(be[0], wd[:8], int_line))
                    m.d.comb += ctl_we.eq(1)
        # Received Master/Target Abort: the upstream path's initiator is the
        # primary master, the downstream path's the secondary (PPB 1.1 §3.2.5.7)
        st_set = Cat(Const(0, 12), up.target_abort, up.master_abort)
        sec_set = Cat(Const(0, 12), down.target_abort, down.master_abort)
        m.d.sync += [status.eq((status | st_set) & ~(stat_clr & w1c)),
                     sec_status.eq((sec_status | sec_set) & ~(sec_clr & sec_w1c))]
        m.d.comb += [up.latency_timer.eq(latency_timer),
                     up.master_enable.eq(command[R.COMMAND.bus_master.lsb]),
                     down.latency_timer.eq(buses[R.BUS_NUMBERS.secondary_latency_timer.lsb:]),
                     down.master_enable.eq(1),
                     # the downstream path's requesters are on the primary
                     down.discard_short.eq((control & CTL_PRIMARY_DISCARD) != 0),
                     up.discard_short.eq((control & CTL_SECONDARY_DISCARD) != 0)]
        return _Txn(command=command, buses=buses, mem_win=mem_win, pf_win=pf_win,
                    status_event=(st_set | sec_set).any() | down.discarded | up.discarded)

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
