"""The contract between host software and a simulator backend.

A backend runs one elaborated machine (``hw.machine``) and offers the host
side a handful of operations; everything above it (:mod:`sim.host`, drivers,
OCF, workloads) is backend-independent.

The machine's top level exposes *flat ports* (plain signals, names below);
the backend reads/writes them by name:

``attn`` (out)
    Attention counter. The RTL increments it whenever something the host
    must look at happens (host-bridge command done, an INTx line changed, the
    protocol checker fired). ``step`` returns as soon as it differs from its
    value at the start of the step.
``cycle`` (out, 64 bit)
    Bus clock cycles since reset.
``cpu_*`` (in/out)
    The host bridge's CPU-side command interface (see ``hw.pci.host_bridge``).
``irq`` (out, 4 bit)
    System interrupt lines INTA#..INTD# after the slot swizzle, 1 = asserted.
``chk_*`` / ``mon_*`` (out)
    Protocol-checker status and monitor counters.
``dram_*`` (in)
    Test knobs of the host-DRAM target (latency, wait/retry insertion).

Inputs written with :meth:`Backend.set` are sampled at the next rising edge.
Host DRAM is reached through :meth:`dram_read`/:meth:`dram_write`, a
backdoor that costs no bus cycles; both backends move bulk data without a
per-word simulator call on the Verilator side.
"""

from __future__ import annotations

__all__ = ["Backend", "SimulationError", "CheckerError"]


class SimulationError(RuntimeError):
    """The simulated machine cannot continue."""


class CheckerError(SimulationError):
    """The PCI protocol checker flagged a violation."""


class Backend:
    """One simulated machine, as the host side sees it."""

    name: str = "?"
    #: bus clock period in picoseconds (30 000 at 33 MHz, 15 000 at 66 MHz)
    period_ps: int

    async def step(self, max_cycles: int | None) -> int:
        """Run the RTL until ``attn`` changes or ``max_cycles`` have elapsed.

        Returns the number of cycles run (≥ 1 when ``max_cycles`` ≥ 1).
        ``None`` means no cycle limit; the backend still stops after a large
        safety bound and returns so the caller can detect a deadlock.
        """
        raise NotImplementedError

    @property
    def cycle(self) -> int:
        raise NotImplementedError

    def get(self, port: str) -> int:
        raise NotImplementedError

    def set(self, port: str, value: int) -> None:
        raise NotImplementedError

    def dram_read(self, addr: int, n: int) -> bytes:
        """Bytes ``[addr, addr+n)`` of host DRAM (bus address = byte offset)."""
        raise NotImplementedError

    def dram_write(self, addr: int, data: bytes) -> None:
        raise NotImplementedError
