"""The cocotb-driven Verilator backend: the machine under a cocotb test bench.

``--backend verilator`` runs the direct backend (:mod:`sim.verilator.direct`,
no cocotb); this one stays for users' own cocotb test benches of a machine
(``sim.experiment.run(..., backend="verilator-cocotb")``) and as the
reference the direct backend is compared with cycle for cycle.

The clock and reset are generated inside the simulator by the test bench of
:func:`sim.verilator.runner.wrapper_verilog`; Python runs only when
:meth:`VerilatorBackend.step` returns (``attn`` changed or the cycle budget is
spent), never per bus cycle.

Phase discipline. The bench's clock rises at (k + 1/2)·period and falls at
k·period, and the backend is only ever resumed at a *falling-edge time*
k·period:

* reads there are stable (all state changes at rising edges), and writes made
  there (:meth:`set`) are sampled by the next rising edge, half a period
  later, whatever the order of events inside that time step;
* a step is one VPI write and one trigger: the bench's step control (in HDL,
  see :func:`sim.verilator.runner.wrapper_verilog`) toggles ``tb_wake`` at the
  first falling edge after ``attn`` moved or the cycle budget ran out, so the
  wake-up itself lands on a falling edge. There is no Timer that could race a
  clock edge, and no ``First`` of two triggers (which costs ~170 µs in
  cocotb 2.1, against ~15 µs for one trigger).

Host DRAM lives in C (``sim/verilator/ocfsim_dram.c``); the backend finds its
buffer in the simulator executable with ctypes, so a backdoor access of any
size is one memcpy.
"""

from __future__ import annotations

import ctypes

from cocotb.triggers import Timer, ValueChange
from cocotb.utils import get_sim_time

from sim.backend import Backend, SimulationError
from sim.verilator.record import Recorder

__all__ = ["VerilatorBackend", "RecordingBackend"]


class VerilatorBackend(Backend):
    """One machine in a Verilator simulation (see module docstring)."""

    name = "verilator"

    #: Cycle bound of ``step(None)``: 10**8 cycles = 3 s of simulated time at
    #: 33 MHz, far beyond any host event spacing, reached in about a minute
    #: of wall time; the caller then sees a long step and can flag a deadlock.
    SAFETY_CYCLES = 100_000_000

    def __init__(self, dut, period_ps: int, *, safety_cycles: int | None = None):
        import cocotb.simulator
        precision = cocotb.simulator.get_precision()      # power of ten of one step
        if precision > -12:
            raise SimulationError(f"simulator precision 1e{precision} s is coarser than 1 ps")
        self._steps_per_ps = 10 ** (-12 - precision)
        self.period_ps = int(period_ps)
        self._period = self.period_ps * self._steps_per_ps  # in simulator steps
        self._dut = dut
        self._handles: dict[str, object] = {}
        self._attn_seen = None        # attn when the last step returned
        self._ctl = self._handle("tb_ctl")      # {arm, attn_ref, stop_at}
        self._wake = self._handle("tb_wake")
        self._arm = 0
        self._arm_shift = 64 + len(self._handle("attn"))
        self._base = 0                # address of the DRAM buffer (0: not looked up)
        self._size = 0
        self.safety_cycles = safety_cycles or self.SAFETY_CYCLES
        #: cycles run by :meth:`step` so far, and the number of steps
        self.sim_cycles = 0
        self.steps = 0

    # -- time ---------------------------------------------------------------
    def _now(self) -> int:
        return int(get_sim_time("step"))

    async def start(self) -> None:
        """Advance to the end of reset: the falling edge at which the bench
        drops ``rst`` (``RESET_CYCLES`` periods in). The first rising edge
        after that is the machine's first cycle out of reset."""
        from sim.verilator.runner import RESET_CYCLES
        now = self._now()
        end = RESET_CYCLES * self._period
        if now < end:
            await Timer(end - now, "step")
        else:
            rem = now % self._period
            if rem:
                await Timer(self._period - rem, "step")
        self._attn_seen = self.get("attn")

    async def step(self, max_cycles: int | None) -> int:
        """Run until ``attn`` changes or ``max_cycles`` elapse; cycles run.

        Arms the bench's step control with one write (see
        :func:`sim.verilator.runner.wrapper_verilog`) and awaits one trigger,
        the toggle of ``tb_wake``, which the bench makes at the first falling
        edge after ``attn`` moved or the cycle budget ran out. The write is
        applied after the current time step's evaluation, so the first edge
        that can wake us is the next falling edge (one period later).
        """
        n = self.safety_cycles if max_cycles is None else int(max_cycles)
        if n <= 0:
            return 0
        t0 = self._now()
        if t0 % self._period:
            raise SimulationError(f"step() at {t0} steps, not at a falling edge "
                                  "(await backend.start() first)")
        # attn_ref is attn as the previous step left it: a change since then
        # (only possible through a combinational path from an input written
        # by set()) wakes us at the first falling edge, after one cycle.
        self._arm ^= 1
        self._ctl.value = ((self._arm << self._arm_shift) | (self._attn_seen << 64)
                           | (t0 // self._period + n))   # rising edges so far + n
        await ValueChange(self._wake)
        cycles = (self._now() - t0) // self._period
        self._attn_seen = self.get("attn")
        self.sim_cycles += cycles
        self.steps += 1
        return cycles

    # -- ports --------------------------------------------------------------
    def _handle(self, port: str):
        h = self._handles.get(port)
        if h is None:
            try:
                h = getattr(self._dut, port)
            except AttributeError:
                raise KeyError(f"machine has no port {port!r}") from None
            self._handles[port] = h
        return h

    @property
    def cycle(self) -> int:
        return self.get("cycle")

    def get(self, port: str) -> int:
        value = self._handle(port).value
        to_unsigned = getattr(value, "to_unsigned", None)   # LogicArray; Logic for 1 bit
        return to_unsigned() if to_unsigned is not None else int(value)

    def set(self, port: str, value: int) -> None:
        """Write an input port; sampled at the next rising edge."""
        self._handle(port).value = int(value)

    # -- host DRAM backdoor -------------------------------------------------
    def _dram(self) -> tuple[int, int]:
        if not self._base:
            exe = ctypes.CDLL(None)   # the simulator executable (symbols exported at link)
            try:
                base_fn, size_fn = exe.ocfsim_dram_base, exe.ocfsim_dram_bytes
            except AttributeError:
                raise SimulationError("simulator has no ocfsim_dram storage "
                                      "(not built by sim.verilator.runner?)") from None
            base_fn.restype, size_fn.restype = ctypes.c_void_p, ctypes.c_uint64
            base, size = base_fn(), size_fn()
            if not base:
                raise SimulationError("ocfsim_dram not initialised: no instance in the "
                                      "design, or accessed before the simulation started")
            self._base, self._size = base, size
        return self._base, self._size

    def _check(self, addr: int, n: int, size: int) -> None:
        if addr < 0 or n < 0 or addr + n > size:
            raise ValueError(f"host DRAM access [{addr:#x}, {addr + n:#x}) outside "
                             f"[0, {size:#x})")

    def dram_read(self, addr: int, n: int) -> bytes:
        base, size = self._dram()
        self._check(addr, n, size)
        return ctypes.string_at(base + addr, n)

    def dram_write(self, addr: int, data: bytes) -> None:
        base, size = self._dram()
        if not isinstance(data, bytes):
            data = bytes(data)
        self._check(addr, len(data), size)
        ctypes.memmove(base + addr, data, len(data))

    @property
    def dram_size(self) -> int:
        """Bytes of host DRAM (4 << ADDR_W of the ocfsim_dram instance)."""
        return self._dram()[1]


class RecordingBackend(Recorder, VerilatorBackend):
    """A :class:`VerilatorBackend` that records the host's inputs for a replay
    (:class:`sim.verilator.record.Recorder`)."""

    def __init__(self, dut, period_ps: int, inputs: list[str], **kwargs):
        super().__init__(dut, period_ps, **kwargs)
        self._init_record(inputs)

    def edge_index(self) -> int:
        """Rising edges so far: the falling edge we stand on."""
        return self._now() // self._period
