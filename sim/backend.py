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

``wire<N>_*`` (in/out), ``wire_events`` (out)
    The wire port of the NIC in slot N (``hw.net.wire_port``): frames sent
    and taken, posted and received; each event raises attention.

Inputs written with :meth:`Backend.set` are sampled at the next rising edge.
Host DRAM is reached through :meth:`dram_read`/:meth:`dram_write`, a
backdoor that costs no bus cycles; both backends move bulk data without a
per-word simulator call on the Verilator side. A NIC's wire buffers are
reached the same way (:meth:`wire_tx_read`, :meth:`wire_rx_write`).
"""

from __future__ import annotations

__all__ = ["Backend", "SimulationError", "CheckerError", "speed_stats"]


class SimulationError(RuntimeError):
    """The simulated machine cannot continue."""


class CheckerError(SimulationError):
    """The PCI protocol checker flagged a violation."""


class Backend:
    """One simulated machine, as the host side sees it."""

    name: str = "?"
    #: bus clock period in picoseconds (30 000 at 33 MHz, 15 000 at 66 MHz)
    period_ps: int
    #: the wake-up counters of the host driving this backend (``sim.host.Host.wakeups``)
    wakeups: dict | None = None

    async def step(self, max_cycles: int | None) -> int:
        """Run the RTL until ``attn`` changes or ``max_cycles`` have elapsed.

        Returns the number of cycles run (≥ 1 when ``max_cycles`` ≥ 1).
        ``None`` means no cycle limit; the backend still stops after a large
        safety bound and returns so the caller can detect a deadlock.
        """
        raise NotImplementedError

    async def step_ops(self, max_cycles: int | None, ops, seq: int, irq: int,
                       absorb: bool = False) -> tuple[int, list[int], int, int]:
        """:meth:`step`, completing CPU accesses on the way (posted writes).

        A CPU access is in flight with sequence bit ``seq``; ``ops`` are the
        ``(op, addr, data, be)`` waiting behind it. Each time the access in
        flight completes (``cpu_ack`` equals its sequence bit) and nothing
        else raised attention (``irq`` still equals ``irq``, no checker
        error), its ``cpu_status`` is kept and the next access of ``ops`` is
        written to the ``cpu_*`` inputs with the sequence bit toggled, as the
        host would after that step (so it starts at the same cycle). With
        ``absorb`` the completion of the last access (a posted write) is kept
        the same way and the step goes on with none in flight. Returns the
        cycles run, the statuses of the accesses completed so (in order),
        ``attn`` as it stood after the last of them and the cycles run since. Otherwise stops as
        :meth:`step` does: on any other attention, the completion of an
        access it does not take, or after ``max_cycles``. This loop is the
        reference; a backend may do it closer to the model.
        """
        get, set_ = self.get, self.set
        attn = get("attn")
        wire = self._wire_events()
        ran, statuses, tail = 0, [], 0
        pending = list(ops)
        inflight = True
        while True:
            budget = None if max_cycles is None else max_cycles - ran
            if budget is not None and budget <= 0:
                break
            tail = await self.step(budget)
            ran += tail
            now_attn = get("attn")
            if now_attn == attn:
                break
            if (not inflight or get("cpu_ack") != seq or get("irq") != irq
                    or get("chk_error") or not (pending or absorb)
                    or self._wire_events() != wire):
                break
            statuses.append(get("cpu_status"))
            attn = now_attn
            if not pending:
                inflight = False
                continue
            op, addr, data, be = pending.pop(0)
            set_("cpu_op", op)
            set_("cpu_addr", addr)
            set_("cpu_wdata", data)
            set_("cpu_be", be)
            seq ^= 1
            set_("cpu_seq", seq)
        return ran, statuses, attn, tail

    #: clocks the backend skipped (exact idle skipping, :meth:`set_skip`)
    skipped: int = 0

    def set_skip(self, on: bool) -> None:
        """Let :meth:`step` skip idle clocks: where the machine says it is at
        rest (``quiet``) for ``quiet_for`` more clocks, make them one clock
        edge with ``skip`` = clocks − 1, which the RTL's counters and timers
        count as that many (docs/simulation.md). Exact: everything the host
        sees is the same cycle for cycle. A backend that cannot skip ignores
        it (the cocotb one)."""

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

    def _wire_events(self) -> int | None:
        """``wire_events``, or None for a machine without a NIC."""
        try:
            return self.get("wire_events")
        except (KeyError, AttributeError):
            return None

    def wire_tx_read(self, slot: int, entry: int) -> tuple[bytes, int]:
        """The frame in entry ``entry`` of the transmit buffer of the wire
        port in ``slot`` (destination address through FCS) and the bus cycle
        of its last beat (``hw.net.wire_port``)."""
        raise NotImplementedError(f"the {self.name} backend has no wire backdoor")

    def wire_rx_write(self, slot: int, entry: int, frame: bytes) -> None:
        """Put ``frame`` (destination address through FCS) in entry ``entry``
        of the receive buffer of the wire port in ``slot``; the host then
        counts it in ``wire<slot>_rx_posted``."""
        raise NotImplementedError(f"the {self.name} backend has no wire backdoor")


def speed_stats(backend: Backend) -> dict:
    """How the host woke the RTL during a run, for a result dict's ``_speed``
    entry: the host's wake-up counters (``sim.host.Host.wakeups``), empty
    when no host drove the backend, and the clocks skipped."""
    return {"wakeups": dict(backend.wakeups or {}), "skipped": backend.skipped}
