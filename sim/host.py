"""The host API drivers use: config and MMIO cycles, interrupts, DMA memory, time.

:class:`Host` sits between the host event loop (:mod:`sim.loop`) and a
simulator backend (:mod:`sim.backend`). Drivers ``await`` its operations;
between operations the RTL runs free until the next timer or until the
machine raises attention (a bus operation finished, an INTx# line changed, the
protocol checker fired). Nothing here knows which backend runs the RTL.

CPU accesses go through the host bridge as real bus transactions, one at a
time in program order. Memory writes are *posted* (PCI 2.3 §3.2.5): the CPU
continues once the write is in the bridge's posting buffer, which holds
``POSTED_WRITES`` entries; reads and config cycles wait for their result and,
being queued behind earlier writes, flush them first.

Host DRAM is reached directly (:attr:`Host.memory`), as the CPU reaches its
own memory without PCI cycles.

A NIC's wire is host events (docs/em8254x.md, "The wire"):
:meth:`Host.wire_attach` gets every frame the card sends, with the simulated
time of its last beat; :meth:`Host.wire_send` puts a frame on the wire
towards the card at a simulated time. Frames go through the machine's wire
port by backdoor, at the cycle of the attention that announces them.

Wake-ups (each time the host steps the backend) are counted in
:attr:`Host.wakeups`. Two ways to need fewer of them, both cycle-exact and
on unless ``Host(coalesce=False)`` or ``OCFSIM_COALESCE=0`` (see
docs/simulation.md):

- *quiet timers*: when the next host event is a kernel timer whose firing
  runs only kernel code (:meth:`sim.loop.SimLoop.call_at`'s ``horizon``),
  the RTL runs on to the earliest time host code can touch it, in one step;
  an attention seen past the timer is kept and handled at its own time;
- *posted-write batches*: while a posted write is in flight and more
  accesses wait behind it, the backend starts each next access itself at
  the cycle the previous one completes (:meth:`Backend.step_ops`), up to
  and including the first one the CPU waits for.
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass
from typing import Callable, Optional

from hw.machine import MachineSpec, wire_slots
from hw.net.wire_port import COUNT_BITS, QUEUE, RX_MAX_BYTES
from hw.pci.host_bridge import CpuOp
from hw.pci.initiator import Status
from hw.pci.monitor import CLASSES, rules

from .backend import Backend, CheckerError, SimulationError
from .loop import Deadlock, Future, HardwarePort, SimLoop
from .memory import HostMemory

__all__ = ["Host", "ConfigBus", "DramMemory", "WireEnd", "BusError", "POSTED_WRITES", "COALESCE_ENV",
           "coalesce_default", "SKIP_ENV", "skip_default", "LAZY_ENV", "lazy_default"]

#: environment variable: ``0`` turns quiet-timer run-ahead and posted-write
#: batches off for every :class:`Host` made without ``coalesce=``
COALESCE_ENV = "OCFSIM_COALESCE"


#: environment variable: ``0`` turns exact idle skipping off for every
#: :class:`Host` made without ``skip=``
SKIP_ENV = "OCFSIM_SKIP"


#: environment variable: ``0`` turns the lazy RTL off for every :class:`Host`
#: made without ``lazy=``
LAZY_ENV = "OCFSIM_LAZY"

#: output ports a quiet clock advances, one per clock (the machine's cycle
#: counter and the monitor's total and idle counts: hw/machine.py adds the
#: clocks skipped to them; docs/simulation.md, "What a skipped edge
#: advances"); every other output port holds still while the machine is quiet
QUIET_COUNTERS = ("cycle", "mon_total", "mon_idle")


def _env_on(name: str) -> bool:
    return os.environ.get(name, "1").strip().lower() not in ("0", "off", "no", "false")


def lazy_default() -> bool:
    """Whether a :class:`Host` leaves a quiet machine's RTL behind unless told
    (``$OCFSIM_LAZY``)."""
    return _env_on(LAZY_ENV)


def skip_default() -> bool:
    """Whether a :class:`Host` lets its backend skip idle clocks unless told
    (``$OCFSIM_SKIP``)."""
    return _env_on(SKIP_ENV)


def coalesce_default() -> bool:
    """Whether a :class:`Host` coalesces wake-ups unless told (``$OCFSIM_COALESCE``)."""
    return _env_on(COALESCE_ENV)

#: posting-buffer entries of the host bridge (estimate: chipsets of the
#: period buffer a few dwords of CPU-to-PCI writes; 4 keeps the CPU from
#: stalling on short register sequences)
POSTED_WRITES = 4

#: highest bus number (CONFIG_ADDRESS bits 23:16, PCI 2.3 §3.2.2.3.2)
MAX_BUS = 255

STATUS_NAMES = {Status.OK: "ok", Status.MASTER_ABORT: "master-abort",
                Status.TARGET_ABORT: "target-abort", Status.GIVE_UP: "retry-limit"}


class BusError(SimulationError):
    """A CPU access ended in master or target abort (when asked to raise)."""


class DramMemory(HostMemory):
    """Host DRAM through the backend's backdoor (no bus cycles)."""

    def __init__(self, backend: Backend, size: int,
                 current: Callable[[str], None] = lambda what: None):
        super().__init__(size)
        self._backend = backend
        # raises if the RTL ran past the present cycle; it may lag behind
        # it (lazy RTL): a quiet machine does not touch DRAM
        self._current = current

    def read(self, addr: int, n: int) -> bytes:
        self._check(addr, n)
        self._current("DRAM read")
        return self._backend.dram_read(addr, n)

    def write(self, addr: int, data: bytes) -> None:
        self._check(addr, len(data))
        self._current("DRAM write")
        self._backend.dram_write(addr, bytes(data))


_COUNT_MASK = (1 << COUNT_BITS) - 1


class WireEnd:
    """The host's end of the wire port in one slot: frames taken and posted."""

    def __init__(self, slot: int):
        self.slot = slot
        self.on_frame: Optional[Callable[[int, bytes], None]] = None
        self.taken = 0          # transmit frames read (``wire<slot>_tx_taken``)
        self.posted = 0         # receive frames put in the buffer (``_rx_posted``)
        self.received = 0       # ... and sent into the card (``_rx_frames``)
        self.waiting: deque[bytes] = deque()   # due, but the buffer was full
        #: frames the card sent while nothing was attached (taken, not delivered)
        self.unclaimed = 0


@dataclass
class _Op:
    op: int
    addr: int
    data: int
    be: int
    future: Optional[Future]       # None for a posted write


class Host(HardwarePort):
    """One simulated machine as host software sees it."""

    def __init__(self, backend: Backend, spec: MachineSpec, loop: SimLoop | None = None,
                 coalesce: bool | None = None, skip: bool | None = None,
                 lazy: bool | None = None):
        self.backend = backend
        self.spec = spec
        self.loop = loop or SimLoop()
        self.loop.hardware = self
        self.period_ps = backend.period_ps
        self.memory = DramMemory(backend, spec.dram_bytes, self._not_ahead)
        #: quiet-timer run-ahead and posted-write batches (module doc)
        self.coalesce = coalesce_default() if coalesce is None else bool(coalesce)
        #: exact idle skipping in the backend's steps (:meth:`Backend.set_skip`)
        self.skip = skip_default() if skip is None else bool(skip)
        backend.set_skip(self.skip)
        #: lazy RTL (docs/simulation.md): while the machine is quiet, host
        #: events do not step it; it is caught up when host code touches the
        #: hardware, when its quiet stretch ends, or at the end of the run.
        #: Only on a machine that says when it is quiet (``quiet``, ``quiet_for``)
        self.lazy = (lazy_default() if lazy is None else bool(lazy)) and _has_quiet(backend)
        #: ``steps``: backend steps (wake-ups of the RTL), of which ``timer``
        #: ended at a host timer and ``attention`` on attention;
        #: ``coalesced``: host events reached without a step because a step
        #: had run the RTL past them; ``batched``: accesses (posted writes)
        #: whose completion the backend took inside a step; ``lazy``: host
        #: events reached with the RTL left behind (no step); ``caught_up``:
        #: steps (counted in ``steps``) that brought a lagging RTL to the present
        self.wakeups = backend.wakeups = {"steps": 0, "timer": 0, "attention": 0,
                                          "coalesced": 0, "batched": 0, "lazy": 0,
                                          "caught_up": 0}
        #: while the RTL lags (lazy): the last cycle of its quiet stretch, to
        #: which it may be caught up without meeting anything; else None
        self._lag_until: Optional[int] = None
        self._dirty = False           # inputs written since the last step
        self._deferred: list[Callable[[], None]] = []   # writes waiting for a catch-up
        self._settling: list[Future] = []   # host code waiting in settle()
        self._attn_pending = False    # the RTL stopped on attention past the last limit
        self._ahead = False           # the last step ran the RTL past its limit
        self._queue: deque[_Op] = deque()
        self._inflight: Optional[_Op] = None
        self._seq = 0
        self._attn = backend.get("attn")
        self._irq = backend.get("irq")
        self._irq_handlers: list[Callable[[int, bool], None]] = []
        self._post_waiters: deque[Future] = deque()
        #: posted writes that ended in an abort: (addr, status name)
        self.write_errors: list[tuple[int, str]] = []
        self.interrupt_edges = [0, 0, 0, 0]   # assertions seen per line
        #: fault injection (ocfsim.faults): ``irq_filter(line, asserted)`` returns
        #: whether a change reaches the handlers; None delivers every change
        self.irq_filter: Optional[Callable[[int, bool], bool]] = None
        #: slot → the host's end of that NIC's wire
        self.wires = {slot: WireEnd(slot) for slot in wire_slots(spec)}

    # ------------------------------------------------------------------ time
    @property
    def now(self) -> int:
        """Simulated time in picoseconds."""
        return self.loop.now

    def sleep(self, ps: int) -> Future:
        return self.loop.sleep(ps)

    @property
    def cycle(self) -> int:
        if self._current("cycle read"):
            return self.backend.cycle
        return self.loop.now // self.period_ps      # where the lagging RTL stands, virtually

    def _not_ahead(self, what: str) -> None:
        """Host code touches the hardware: the RTL must not stand past the
        present cycle (it may run ahead only over quiet timers)."""
        if self.backend.cycle > self.loop.now // self.period_ps:
            raise SimulationError(
                f"{what} at {self.loop.now} ps while the RTL is at cycle "
                f"{self.backend.cycle}: a quiet timer's horizon let it run past host code")

    def _current(self, what: str) -> bool:
        """Host code touches the hardware: True if the RTL stands at the
        present cycle; False while it lags (lazy RTL: the machine is quiet,
        so its ports but :data:`QUIET_COUNTERS` read as at the present
        cycle; writes wait for the next :meth:`advance`, which catches it
        up first). Host code cannot step the RTL itself: on pysim and
        cocotb a step is a coroutine of the simulator."""
        self._not_ahead(what)
        return self._lag_until is None

    def _caught_up(self, ran: int, n: int) -> None:
        w = self.wakeups
        w["steps"] += 1
        w["caught_up"] += 1
        if ran != n or self.backend.get("attn") != self._attn:
            raise SimulationError(
                f"the lazy RTL met attention at cycle {self.backend.cycle} while caught up "
                f"over {n} quiet clocks ({ran} run): its quiet_for was wrong")

    def _get(self, port: str) -> int:
        """An output port as it stands at the present cycle (a lagging RTL's
        counters read as they will be once caught up)."""
        if self._current(f"{port} read"):
            return self.backend.get(port)
        lag = self.loop.now // self.period_ps - self.backend.cycle
        return self.backend.get(port) + (lag if port in QUIET_COUNTERS else 0)

    def _set(self, port: str, value: int) -> None:
        """Write an input port (the RTL stands at the present cycle)."""
        self.backend.set(port, value)
        self._dirty = True

    def _write(self, what: str, fn: Callable[[], None]) -> None:
        """Host code writes the hardware: ``fn`` now, or, while the RTL lags
        and cannot be caught up from here, at the next :meth:`advance` right
        after the catch-up, before the RTL's next edge — so at the same
        cycle either way."""
        if self._current(what):
            fn()
        else:
            self._deferred.append(fn)

    def settle(self) -> Future:
        """``await host.settle()``: the RTL at the present cycle, for host
        code that reads the backend itself (the host's own reads need not).
        Done at once unless the RTL lags; then the next :meth:`advance`
        catches it up without moving time."""
        self._not_ahead("settle")
        fut = self.loop.create_future("settle")
        if self._lag_until is None:
            fut.set_result(None)
        else:
            self._settling.append(fut)
        return fut

    async def catch_up(self) -> None:
        """Bring a lagging RTL to the present cycle (the loop awaits it when
        the run ends, :class:`sim.loop.HardwarePort`)."""
        self._not_ahead("catch-up")
        if self._lag_until is not None:
            await self._catch_up()

    async def _catch_up(self) -> None:
        b = self.backend
        n = self.loop.now // self.period_ps - b.cycle
        self._lag_until = None
        if n > 0:
            self._caught_up(await b.step(n), n)
        self._dirty = False
        deferred, self._deferred = self._deferred, []
        for fn in deferred:
            fn()
        settling, self._settling = self._settling, []
        for fut in settling:
            fut.set_result(None)

    # ------------------------------------------------------------- bus access
    def _submit(self, op: int, addr: int, data: int = 0, be: int = 0xF,
                posted: bool = False) -> Future:
        if not 0 <= addr <= 0xFFFF_FFFF:
            raise ValueError(f"bus address {addr:#x} out of range")
        # started by the next advance (after a lagging RTL is caught up)
        self._not_ahead(_OP_NAMES[op])
        fut = None if posted else self.loop.create_future(f"{_OP_NAMES[op]} {addr:#x}")
        self._queue.append(_Op(op, addr, data & 0xFFFF_FFFF, be & 0xF, fut))
        return fut

    async def mmio_read(self, addr: int, *, raise_on_abort: bool = False) -> int:
        """One dword at bus address ``addr`` (all ones after a master abort)."""
        value, status = await self._submit(CpuOp.MEM_READ, addr)
        if status != Status.OK and raise_on_abort:
            raise BusError(f"read {addr:#010x}: {STATUS_NAMES[status]}")
        return value

    async def mmio_read_status(self, addr: int) -> tuple[int, str]:
        value, status = await self._submit(CpuOp.MEM_READ, addr)
        return value, STATUS_NAMES[status]

    async def mmio_write(self, addr: int, value: int, be: int = 0xF) -> None:
        """Posted write: returns once the bridge's posting buffer has room."""
        while sum(1 for o in self._queue if o.future is None) >= POSTED_WRITES:
            fut = self.loop.create_future("posting buffer")
            self._post_waiters.append(fut)
            await fut
        self._submit(CpuOp.MEM_WRITE, addr, value, be, posted=True)

    async def cfg_read(self, slot: int, reg: int, func: int = 0, bus: int = 0) -> int:
        value, _ = await self._submit(CpuOp.CFG_READ, self._cfg_addr(slot, func, reg, bus))
        return value

    async def cfg_write(self, slot: int, reg: int, value: int, func: int = 0,
                        be: int = 0xF, bus: int = 0) -> None:
        await self._submit(CpuOp.CFG_WRITE, self._cfg_addr(slot, func, reg, bus), value, be)

    def config_bus(self, bus: int) -> "ConfigBus":
        """Configuration access to bus ``bus`` (1..255) behind a PCI-PCI
        bridge: ``cfg_read``/``cfg_write`` as on the host, carried by the
        host bridge as type-1 cycles (bus 0 is :meth:`cfg_read` itself)."""
        if type(bus) is not int or not 1 <= bus <= MAX_BUS:
            raise ValueError(f"bus {bus!r} is not a bus behind a bridge (1..{MAX_BUS})")
        return ConfigBus(self, bus)

    @staticmethod
    def _cfg_addr(slot: int, func: int, reg: int, bus: int = 0) -> int:
        """The CPU's configuration address: ``bus << 16 | slot << 11 | func << 8
        | reg``, the fields of configuration mechanism #1's CONFIG_ADDRESS
        (PCI 2.3 §3.2.2.3.2) without its enable bit. Bus 0 reaches the
        board's slots 0..15 (one IDSEL line each, AD[16 + slot]); a bus
        behind a bridge has device numbers 0..31 (the type-1 address's
        5-bit device field, PCI-to-PCI Bridge Architecture 1.1 §3.1.2.1)."""
        slots = 15 if bus == 0 else 31
        if (not 0 <= bus <= MAX_BUS or not 0 <= slot <= slots or not 0 <= func <= 7
                or not 0 <= reg <= 0xFC or reg & 3):
            raise ValueError(f"bad config address bus={bus} slot={slot} func={func} "
                             f"reg={reg:#x}")
        return bus << 16 | slot << 11 | func << 8 | reg

    # ------------------------------------------------------------- interrupts
    def on_interrupt(self, handler: Callable[[int, bool], None]) -> None:
        """``handler(line, asserted)`` runs (from the loop) on every INTx# change."""
        self._irq_handlers.append(handler)

    @property
    def irq_lines(self) -> int:
        return self._irq

    def interrupt_route(self, slot: int, pin: int) -> int:
        """The board's routing table: system line (0..3 = INTA#..INTD#) of a slot's pin.

        Pin is the config-space interrupt pin (1 = INTA#). This board wires
        slot N's INTA# to system line (N-1) % 4 and swizzles the others.
        """
        if not 1 <= pin <= 4:
            raise ValueError(f"interrupt pin {pin} is not INTA#..INTD#")
        return (slot - 1 + pin - 1) % 4

    @property
    def mmio_window(self) -> tuple[int, int]:
        """Bus addresses free for BARs: everything above DRAM up to 4 GiB."""
        return max(self.spec.dram_bytes, 0x8000_0000), 0x1_0000_0000

    # ------------------------------------------------------------------ wire
    def _wire(self, slot: int) -> WireEnd:
        end = self.wires.get(slot)
        if end is None:
            raise ValueError(f"no NIC with a wire in slot {slot} "
                             f"(wires: {sorted(self.wires) or 'none'})")
        return end

    def wire_attach(self, slot: int, on_frame: Callable[[int, bytes], None]) -> None:
        """``on_frame(time_ps, frame)`` runs (from the loop) for every frame
        the NIC in ``slot`` sends: ``frame`` from the destination address
        through the FCS (kept: the wire carries it), ``time_ps`` the start
        of the bus cycle in which the MAC put its last beat on the wire."""
        if not callable(on_frame):
            raise ValueError("on_frame must be callable")
        self._wire(slot).on_frame = on_frame

    def wire_send(self, slot: int, frame: bytes, at_ps: int) -> None:
        """Put ``frame`` (destination address through FCS: the receive MAC
        checks it) on the wire towards the NIC in ``slot`` at ``at_ps`` (no
        earlier than now). It goes into the wire port at that bus cycle and
        onto the wire as soon as the frames before it are through."""
        end = self._wire(slot)
        frame = bytes(frame)
        if not 1 <= len(frame) <= RX_MAX_BYTES:
            raise ValueError(f"a wire frame of {len(frame)} bytes is outside 1..{RX_MAX_BYTES}")
        if type(at_ps) is not int:
            raise ValueError(f"at_ps must be an int of picoseconds, not {at_ps!r}")
        fut, _ = self.loop.call_at(max(at_ps, self.loop.now), f"wire{slot} frame")

        def due(_):
            end.waiting.append(frame)
            self._write("wire send", lambda: self._wire_post(end))
        fut.add_done_callback(due)

    def _wire_post(self, end: WireEnd) -> None:
        """Due frames into free receive-buffer entries."""
        b, posted = self.backend, end.posted
        while end.waiting and (end.posted - end.received) & _COUNT_MASK < QUEUE:
            b.wire_rx_write(end.slot, end.posted % QUEUE, end.waiting.popleft())
            end.posted = (end.posted + 1) & _COUNT_MASK
        if end.posted != posted:
            self._dirty = True          # the buffer entries too
            self._set(f"wire{end.slot}_rx_posted", end.posted)

    def _wire_events(self) -> None:
        b = self.backend
        for end in self.wires.values():
            s = end.slot
            frames, taken = b.get(f"wire{s}_tx_frames"), end.taken
            while end.taken != frames:
                frame, cycle = b.wire_tx_read(s, end.taken % QUEUE)
                end.taken = (end.taken + 1) & _COUNT_MASK
                if end.on_frame is None:
                    end.unclaimed += 1
                else:
                    t = cycle * self.period_ps
                    self.loop.call_soon(lambda _, f=frame, t=t, h=end.on_frame: h(t, f))
            if end.taken != taken:
                self._set(f"wire{s}_tx_taken", end.taken)
            received = b.get(f"wire{s}_rx_frames")
            if received != end.received:
                end.received = received
                self._wire_post(end)

    def wire_stats(self, slot: int) -> dict:
        """Frames of the wire in ``slot``: sent by the card (``tx``), not kept
        by the wire port (``tx_dropped``), sent into the card (``rx``), due
        but waiting for a free buffer entry (``rx_waiting``)."""
        end = self._wire(slot)
        get = self._get
        return {"tx": get(f"wire{slot}_tx_frames"), "tx_dropped": get(f"wire{slot}_tx_dropped"),
                "rx": get(f"wire{slot}_rx_frames"), "rx_waiting": len(end.waiting),
                "unclaimed": end.unclaimed}

    # ------------------------------------------------------------ test knobs
    def set_dram_timing(self, latency: int = 0, wait_every: int = 0, wait_len: int = 0,
                        retry_every: int = 0, abort_every: int = 0, delayed: int = 0) -> None:
        """Host-DRAM target knobs (see ``hw.pci.host_bridge``); ``delayed``:
        bus clocks a master's read of host memory takes as a delayed
        transaction (0: answered at DRAM speed)."""
        def knobs():
            self._set("dram_latency", latency)
            self._set("dram_wait_every", wait_every)
            self._set("dram_wait_len", wait_len)
            self._set("dram_retry_every", retry_every)
            self._set("dram_abort_every", abort_every)
            self._set("dram_delayed", delayed)
        self._write("DRAM timing knobs", knobs)

    # ------------------------------------------------------------ statistics
    def bus_stats(self, segment: int | None = None) -> dict:
        """Monitor counters: totals by class, per master and per target.

        Without ``segment``, bus 0's (the keys as on a machine without
        bridges) plus, on a machine with bus segments behind bridges,
        ``segments``: one such dict per segment in bus-number order, each
        with its ``bus``, ``name`` (the bridge card's path, "" for bus 0)
        and ``clock_mhz``. With ``segment``: that segment's counters alone."""
        segs = self.spec.segments()
        k = 0 if segment is None else segment
        if not 0 <= k < len(segs):
            raise ValueError(f"no bus segment {segment!r} (0..{len(segs) - 1})")
        stats = self._segment_stats(segs[k])
        if segment is None and len(segs) > 1:
            stats["segments"] = [self._segment_stats(seg) for seg in segs]
        return stats

    def _segment_stats(self, seg) -> dict:
        get, p = self._get, seg.prefix
        names = seg.agent_names()
        by_class = {c: get(f"{p}mon_{c}") for c in CLASSES}
        total = get(f"{p}mon_total")
        masters = {}
        for a in seg.master_agents():
            counts = {c: get(f"{p}mon_a{a}_{c}") for c in CLASSES[1:]}
            if any(counts.values()):
                masters[names[a]] = counts
        targets = {}
        for a in seg.target_agents():
            data = get(f"{p}mon_t{a}_data")
            if data:
                targets[names[a]] = data
        stats = {
            "total": total,
            "breakdown": by_class,
            "pci_utilisation": by_class["data"] / total if total else 0.0,
            "by_master": masters,
            "target_data": targets,
        }
        if seg.index:
            stats.update(bus=seg.index, name=seg.name, clock_mhz=self.spec.clock_mhz)
        if seg.width == 64:
            # a data phase moves up to 8 bytes: utilisation of the bus's
            # capacity is bytes over 8 per clock (PCI 2.3 §3.8)
            moved = {names[a]: get(f"{p}mon_a{a}_bytes") for a in seg.master_agents()}
            stats["bytes_by_master"] = {k: v for k, v in moved.items() if v}
            stats["data_bytes"] = sum(moved.values())
            stats["byte_utilisation"] = stats["data_bytes"] / (8 * total) if total else 0.0
        return stats

    def bus_stats_since(self, before: dict) -> dict:
        """:meth:`bus_stats` counted from an earlier snapshot ``before`` on."""
        return _stats_delta(self.bus_stats(), before)

    def arbiter_wait_max(self) -> dict[str, int]:
        """Longest wait for the bus per master so far (REQ# asserted until the
        master starts its transaction), in bus clocks; bus 0's masters, then
        those of each segment behind a bridge (their arbiter is the bridge's)."""
        out = {}
        for seg in self.spec.segments():
            out.update({name: self._get(f"{seg.prefix}arb_wait_max{i}")
                        for i, name in enumerate(seg.master_names())})
        return out

    def checker_errors(self, segment: int | None = None) -> list[str]:
        """Rules the protocol checkers saw broken: on any segment (without
        ``segment``), or on that segment alone."""
        segs = self.spec.segments()
        if segment is None:
            port, width = "chk_error", self.spec.bus_width
        elif not 0 <= segment < len(segs):
            raise ValueError(f"no bus segment {segment!r} (0..{len(segs) - 1})")
        else:
            seg = segs[segment]
            port = ("chk_error_bus0" if len(segs) > 1 else "chk_error") if segment == 0 \
                else f"{seg.prefix}chk_error"
            width = seg.width
        bits = self._get(port)
        return [r for i, r in enumerate(rules(width)) if bits >> i & 1]


    # ------------------------------------------------------- hardware port
    async def advance(self, limit: Optional[int], horizon: Optional[int] = None) -> int:
        """Run the RTL towards ``limit`` ps; stop early when it needs attention.

        With coalescing, the RTL runs on to ``horizon`` (the loop's bound
        over quiet timers) in the same step. What it meets past ``limit`` is
        kept: a later call reaches ``limit`` without a step, or handles the
        kept attention once ``limit`` is at or past its cycle. Host code thus
        sees every attention at the time and in the order it would without.
        """
        backend, period = self.backend, self.period_ps
        if self._lag_until is not None:
            if self._settling:
                await self._catch_up()          # and back to host code, at this time
                self._start_next()
                return self.loop.now
            if self._queue or self._deferred:
                await self._catch_up()          # then start the access at this cycle
            elif limit is not None and limit // period <= self._lag_until:
                self.wakeups["lazy"] += 1
                return limit
            else:
                # the quiet stretch ends before ``limit``: the step below runs
                # the RTL on from where it lags, through the stretch
                self._lag_until = None
        elif self._lazy_ok(limit):
            self.wakeups["lazy"] += 1
            return limit
        self._start_next()
        now = self.loop.now
        if self._attn_pending:
            at = backend.cycle * period
            if limit is not None and at > limit:
                self._ahead_ok(limit if horizon is None else horizon)
                self.wakeups["coalesced"] += 1
                return limit
            self._ahead = False
            self._attn_pending = False
            self._events()
            return max(now, at)
        if limit is None:
            ran = await self._step(None)
            if not self._events() and self._inflight is None:
                raise Deadlock(self.loop._describe_waiters()
                               + f" (hardware quiet for {ran} cycles)")
            return max(now, backend.cycle * period)
        hw = backend.cycle
        if hw >= limit // period:
            if hw > limit // period:
                self._ahead_ok(limit if horizon is None else horizon)
            if self._ahead:
                self.wakeups["coalesced"] += 1
            return limit
        # a posting-buffer waiter released by _start_next runs after this
        # step's end: the step must end where it would without coalescing
        quiet = self.coalesce and not self.loop._ready
        to = horizon if quiet and horizon is not None else limit
        await self._step(to // period - hw)
        self._ahead = backend.cycle > limit // period
        if backend.get("attn") != self._attn:
            at = backend.cycle * period
            if at > limit:
                self._attn_pending = True
                return limit
            self._events()
            return max(now, at)
        return limit

    def _lazy_ok(self, limit: Optional[int]) -> bool:
        """Whether the RTL may stay where it stands while the loop goes on
        to ``limit``: nothing to start or handle, no input written since the
        last step (``quiet`` would not show it yet), the machine quiet, and
        ``limit`` within its quiet stretch. Then the RTL lags from here on."""
        if (not self.lazy or limit is None or self._dirty or self._attn_pending
                or self._inflight is not None or self._queue or self._deferred):
            return False
        b, period = self.backend, self.period_ps
        hw = b.cycle
        if hw != self.loop.now // period or not b.get("quiet"):
            return False
        # ``quiet_for`` edges from here change nothing but QUIET_COUNTERS
        # and the cards' timers: no attention up to cycle hw + quiet_for
        until = hw + b.get("quiet_for")
        if limit // period > until:
            return False
        self._lag_until = until
        return True

    def _ahead_ok(self, horizon: int) -> None:
        if self.backend.cycle > horizon // self.period_ps:
            raise SimulationError(f"the RTL ran to cycle {self.backend.cycle}, past the next "
                                  f"host event at {horizon} ps (a quiet timer's horizon)")

    async def _step(self, cycles: Optional[int]) -> int:
        """One wake-up: a backend step, with posted writes completed inside
        it when coalescing (module doc)."""
        b, w = self.backend, self.wakeups
        w["steps"] += 1
        op = self._inflight
        if (self.coalesce and op is not None and op.future is None and not self._post_waiters
                and not self.loop._ready):
            batch = []
            for nxt in self._queue:
                batch.append((nxt.op, nxt.addr, nxt.data, nxt.be))
                if nxt.future is not None:
                    break
            absorb = not batch or self._queue[len(batch) - 1].future is None
            # ``ran`` as a plain step after the last completion would have run
            _, statuses, self._attn, ran = await b.step_ops(cycles, batch, self._seq,
                                                            self._irq, absorb)
            for k, status in enumerate(statuses):
                if status != Status.OK:
                    self.write_errors.append((self._inflight.addr, STATUS_NAMES[status]))
                if k < len(batch):
                    self._inflight = self._queue.popleft()
                    self._seq ^= 1
                else:
                    self._inflight = None
            w["batched"] += len(statuses)
        else:
            ran = await b.step(cycles)
        self._dirty = False
        w["attention" if b.get("attn") != self._attn else "timer"] += 1
        return ran

    def _start_next(self) -> None:
        if self._inflight is not None or not self._queue:
            return
        op = self._queue.popleft()
        self._inflight = op
        set_ = self._set
        set_("cpu_op", op.op)
        set_("cpu_addr", op.addr)
        set_("cpu_wdata", op.data)
        set_("cpu_be", op.be)
        self._seq ^= 1
        set_("cpu_seq", self._seq)
        if op.future is None and self._post_waiters:
            self._post_waiters.popleft().set_result(None)

    def _events(self) -> bool:
        """Handle whatever raised attention; True if anything did."""
        b = self.backend
        attn = b.get("attn")
        if attn == self._attn:
            return False
        self._attn = attn
        errors = b.get("chk_error")
        if errors:
            names = [r for i, r in enumerate(rules(self.spec.bus_width)) if errors >> i & 1]
            raise CheckerError(f"PCI protocol violation at cycle "
                               f"{b.get('chk_first_cycle')}: {', '.join(names)}")
        op = self._inflight
        if op is not None and b.get("cpu_ack") == self._seq:
            status = b.get("cpu_status")
            value = b.get("cpu_rdata")
            self._inflight = None
            if op.future is not None:
                op.future.set_result((value, status))
            elif status != Status.OK:
                self.write_errors.append((op.addr, STATUS_NAMES[status]))
            self._start_next()
        if self.wires:
            self._wire_events()
        irq = b.get("irq")
        if irq != self._irq:
            changed, self._irq = irq ^ self._irq, irq
            for line in range(4):
                if changed >> line & 1:
                    asserted = bool(irq >> line & 1)
                    self.interrupt_edges[line] += asserted
                    if self.irq_filter is not None and not self.irq_filter(line, asserted):
                        continue
                    for h in self._irq_handlers:
                        self.loop.call_soon(lambda _, h=h, l=line, a=asserted: h(l, a))
        return True


class ConfigBus:
    """Configuration space of one bus behind a bridge (:meth:`Host.config_bus`),
    with the host's ``cfg_read``/``cfg_write`` signature."""

    def __init__(self, host: Host, bus: int):
        self.host, self.bus = host, bus

    async def cfg_read(self, slot: int, reg: int, func: int = 0) -> int:
        return await self.host.cfg_read(slot, reg, func, bus=self.bus)

    async def cfg_write(self, slot: int, reg: int, value: int, func: int = 0,
                        be: int = 0xF) -> None:
        await self.host.cfg_write(slot, reg, value, func, be, bus=self.bus)

    def __repr__(self) -> str:
        return f"ConfigBus({self.bus})"


def _has_quiet(backend: Backend) -> bool:
    """Whether the machine has the ``quiet``/``quiet_for`` ports."""
    try:
        backend.get("quiet")
        backend.get("quiet_for")
    except (KeyError, AttributeError):
        return False
    return True


_OP_NAMES = {CpuOp.MEM_READ: "mmio read", CpuOp.MEM_WRITE: "mmio write",
             CpuOp.CFG_READ: "config read", CpuOp.CFG_WRITE: "config write"}


def _stats_delta(after: dict, before: dict) -> dict:
    """One segment's :meth:`Host.bus_stats` from ``before`` to ``after``."""
    out = {"total": after["total"] - before["total"],
           "breakdown": {k: v - before["breakdown"][k]
                         for k, v in after["breakdown"].items()},
           "by_master": {}, "target_data": {}}
    for name, counts in after["by_master"].items():
        prev = before["by_master"].get(name, {})
        delta = {k: v - prev.get(k, 0) for k, v in counts.items()}
        if any(delta.values()):
            out["by_master"][name] = delta
    for name, data in after["target_data"].items():
        if data - before["target_data"].get(name, 0):
            out["target_data"][name] = data - before["target_data"].get(name, 0)
    out["pci_utilisation"] = (out["breakdown"]["data"] / out["total"]
                              if out["total"] else 0.0)
    out.update({k: after[k] for k in ("bus", "name", "clock_mhz") if k in after})
    if "segments" in after:
        out["segments"] = [_stats_delta(a, b) for a, b in
                           zip(after["segments"], before["segments"])]
    if "data_bytes" in after:
        out["bytes_by_master"] = {k: v - before["bytes_by_master"].get(k, 0)
                                  for k, v in after["bytes_by_master"].items()
                                  if v != before["bytes_by_master"].get(k, 0)}
        out["data_bytes"] = after["data_bytes"] - before["data_bytes"]
        out["byte_utilisation"] = (out["data_bytes"] / (8 * out["total"])
                                   if out["total"] else 0.0)
    return out
