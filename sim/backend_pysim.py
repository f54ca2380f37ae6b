"""Backend on Amaranth's own simulator (pure Python; the default).

The host side runs inside one async testbench; ``step`` ticks the clock until
the machine's ``attn`` counter moves. Each tick is Python here by the nature
of pysim; what the host layer guarantees is that host software itself only
wakes for events.
"""

from __future__ import annotations

import contextlib

from amaranth.sim import Simulator
from amaranth.sim import pysim as _pysim

from hw.net.wire_port import QUEUE, RX_MAX_BYTES, SLOT_BYTES, SLOT_WORDS, meta_unpack

from .backend import Backend, SimulationError, speed_stats

__all__ = ["PysimBackend", "run_pysim"]

#: ``step(None)`` gives up after this many cycles without attention
#: (≈ 127 ms of bus time at 33 MHz), so a hung machine is reported.
IDLE_BOUND = 1 << 22


class PysimBackend(Backend):
    name = "pysim"

    def __init__(self, ctx, top, period_ps: int):
        self.ctx = ctx
        self.top = top
        self.period_ps = period_ps
        self._cycle = 0
        self._attn = top.attn
        #: exact idle skipping (:meth:`set_skip`) and the clocks it skipped
        self.skip = False
        self.skipped = 0
        dram = top.bridge.dram
        self._mem = dram.mem
        self._dram_bytes = dram.size
        self._wires = getattr(top, "wire_ports", {})

    async def step(self, max_cycles):
        ctx, attn = self.ctx, self._attn
        start = ctx.get(attn)
        limit = IDLE_BOUND if max_cycles is None else max_cycles
        n = 0
        top, skip = self.top, self.skip
        while n < limit:
            # exact idle skipping, as the direct backend's shim does it
            j = ctx.get(top.quiet_for) if skip and n and ctx.get(top.quiet) else 1
            j = min(j, limit - n)
            if j >= 2:
                ctx.set(top.skip, j - 1)
                await ctx.tick()
                ctx.set(top.skip, 0)
                self.skipped += j - 1
                n += j
            else:
                await ctx.tick()
                n += 1
            if ctx.get(attn) != start:
                break
        self._cycle += n
        return n

    @property
    def cycle(self) -> int:
        return self._cycle

    def set_skip(self, on: bool) -> None:
        self.skip = bool(on)

    def get(self, port: str) -> int:
        return self.ctx.get(getattr(self.top, port))

    def set(self, port: str, value: int) -> None:
        self.ctx.set(getattr(self.top, port), value)

    def _check(self, addr, n):
        if addr < 0 or n < 0 or addr + n > self._dram_bytes:
            raise ValueError(f"DRAM access [{addr:#x}, +{n}) out of range")

    def dram_read(self, addr: int, n: int) -> bytes:
        self._check(addr, n)
        if n == 0:
            return b""
        first, last = addr >> 2, (addr + n - 1) >> 2
        data = self._mem.data
        get = self.ctx.get
        raw = b"".join(get(data[i]).to_bytes(4, "little") for i in range(first, last + 1))
        off = addr & 3
        return raw[off:off + n]

    def dram_write(self, addr: int, data: bytes) -> None:
        n = len(data)
        self._check(addr, n)
        if n == 0:
            return
        first, last = addr >> 2, (addr + n - 1) >> 2
        off = addr & 3
        mem = self._mem.data
        get, set_ = self.ctx.get, self.ctx.set
        if off or (addr + n) & 3:
            # read-modify-write of partial edge words
            head = bytearray(get(mem[first]).to_bytes(4, "little"))
            tail = bytearray(get(mem[last]).to_bytes(4, "little"))
            full = head + bytearray(4 * (last - first - 1)) + tail if last > first else head
            full[off:off + n] = data
        else:
            full = bytes(data)
        for k, i in enumerate(range(first, last + 1)):
            set_(mem[i], int.from_bytes(full[4 * k:4 * k + 4], "little"))

    def _wire(self, slot: int, entry: int):
        port = self._wires.get(slot)
        if port is None:
            raise ValueError(f"no wire port in slot {slot}")
        if not 0 <= entry < QUEUE:
            raise ValueError(f"wire buffer entry {entry} outside 0..{QUEUE - 1}")
        return port.store

    def wire_tx_read(self, slot: int, entry: int) -> tuple[bytes, int]:
        store = self._wire(slot, entry)
        get = self.ctx.get
        length, cycle = meta_unpack(get(store.meta_mem.data[entry]))
        if length > SLOT_BYTES:
            raise SimulationError(f"wire{slot} transmit entry {entry}: length {length}")
        data = store.tx_mem.data
        base = entry * SLOT_WORDS
        raw = b"".join(get(data[base + i]).to_bytes(4, "little")
                       for i in range((length + 3) // 4))
        return raw[:length], cycle

    def wire_rx_write(self, slot: int, entry: int, frame: bytes) -> None:
        store = self._wire(slot, entry)
        frame = bytes(frame)
        if not 1 <= len(frame) <= RX_MAX_BYTES:
            raise ValueError(f"a wire frame of {len(frame)} bytes is outside 1..{RX_MAX_BYTES}")
        words = len(frame).to_bytes(4, "little") + frame + bytes(-len(frame) % 4)
        data, set_ = store.rx_mem.data, self.ctx.set
        base = entry * SLOT_WORDS
        for i in range(len(words) // 4):
            set_(data[base + i], int.from_bytes(words[4 * i:4 * i + 4], "little"))


#: memories deeper than this are left out of VCDs: Amaranth traces every row
#: of every memory, and host DRAM alone is a million rows
VCD_MEMORY_LIMIT = 64


@contextlib.contextmanager
def _small_memories_only(limit: int = VCD_MEMORY_LIMIT):
    """While the VCD writer is built, hide deep memories from its memory scan.

    Amaranth 0.5's VCD writer has no option for this; it recognises memories
    by ``isinstance(fragment, MemoryInstance)`` in ``amaranth.sim.pysim``, so
    we narrow that check for the duration. Untraced memories are skipped by
    the writer's updates already.
    """
    real = _pysim.MemoryInstance

    class _Meta(type):
        def __instancecheck__(cls, obj):
            return isinstance(obj, real) and obj._data.depth <= limit

    class SmallMemoryInstance(metaclass=_Meta):
        pass

    _pysim.MemoryInstance = SmallMemoryInstance
    try:
        yield
    finally:
        _pysim.MemoryInstance = real


def run_pysim(top, period_ps: int, body, vcd: str | None = None,
              gtkw: str | None = None, traces=()):
    """Simulate ``top`` with ``body(backend)`` (async) as the host; return its value.

    A dict value gains ``speed``: :func:`sim.backend.speed_stats` (wake-ups).

    With ``vcd``, the whole run is dumped; with ``gtkw`` too, a GTKWave save
    file shows ``traces`` (a dict of groups, as ``Machine.vcd_traces()``).
    """
    sim = Simulator(top)
    sim.add_clock(period_ps * 1e-12)
    result = {}

    async def host(ctx):
        backend = PysimBackend(ctx, top, period_ps)
        result["value"] = await body(backend)
        if isinstance(result["value"], dict):
            result["value"]["_speed"] = speed_stats(backend)

    sim.add_testbench(host)
    if vcd:
        with contextlib.ExitStack() as stack:
            with _small_memories_only():
                stack.enter_context(sim.write_vcd(vcd, gtkw, traces=traces))
            sim.run()
    else:
        sim.run()
    return result["value"]
