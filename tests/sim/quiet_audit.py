"""Auditing ``quiet`` against the RTL itself (pysim).

:func:`audit` runs a workload on a pysim machine with skipping off and, on
sampled clocks where the machine says it is quiet, compares every register
of the design (every signal a synchronous statement assigns) before and
after the clock edge. Only the free-running counters and timers skipping
advances may change (:data:`MAY_COUNT`); anything else that moves would make
a skipped run differ from a plain one.
"""

from amaranth.hdl import Fragment
from amaranth.sim import Simulator

from hw.machine import Machine, MachineSpec
from sim.backend_pysim import PysimBackend
from sim.experiment import execute

#: registers a quiet clock may change, by name: the machine's cycle counter,
#: the monitor's total and idle counts, the Hifn ring poll timer and the
#: BCM5820 interrupt moderation timer (both named ``timer``)
MAY_COUNT = {"cycle", "mon_own_total", "mon_own_idle", "timer"}


def registers(fragment) -> list:
    """Every signal assigned by a synchronous statement, in every fragment."""
    found, seen = [], set()

    def walk(frag):
        for domain, stmts in frag.statements.items():
            if domain == "comb":
                continue
            for stmt in stmts:
                for sig in stmt._lhs_signals():
                    if id(sig) not in seen:
                        seen.add(id(sig))
                        found.append(sig)
        for sub, _name, _src in frag.subfragments:
            walk(sub)
    walk(fragment)
    return found


class AuditBackend(PysimBackend):
    """A pysim backend that checks ``quiet`` on every ``every``-th quiet clock
    (and the first of each quiet stretch) instead of skipping."""

    def __init__(self, ctx, top, period_ps, regs, every):
        super().__init__(ctx, top, period_ps)
        self.regs, self.every = regs, every
        self.audited, self.violations, self._run = 0, {}, 0

    def set_skip(self, on):
        pass                        # never skips: it looks instead

    async def step(self, max_cycles):
        ctx, top = self.ctx, self.top
        start = ctx.get(top.attn)
        limit = 1 << 22 if max_cycles is None else max_cycles
        n = 0
        while n < limit:
            quiet = ctx.get(top.quiet)
            self._run = self._run + 1 if quiet else 0
            look = quiet and (self._run == 1 or self._run % self.every == 0)
            if look:
                before = [ctx.get(s) for s in self.regs]
            await ctx.tick()
            n += 1
            if look:
                self.audited += 1
                for sig, old in zip(self.regs, before):
                    if sig.name not in MAY_COUNT and ctx.get(sig) != old:
                        self.violations.setdefault(sig.name, self._cycle + n)
            if ctx.get(top.attn) != start:
                break
        self._cycle += n
        return n


def audit(spec: MachineSpec, entry: str, args: dict, every: int = 97) -> dict:
    """Run ``entry`` and audit; ``audited`` clocks and ``violations``
    (register name → first cycle it moved on a quiet clock)."""
    machine = Machine(spec)
    fragment = Fragment.get(machine, None)
    regs = registers(fragment)
    sim = Simulator(fragment)
    sim.add_clock(spec.period_ps * 1e-12)
    out = {}

    async def host(ctx):
        backend = AuditBackend(ctx, machine, spec.period_ps, regs, every)
        out["result"] = await execute(backend, spec.to_dict(), entry, args)
        out["audited"], out["violations"] = backend.audited, backend.violations

    sim.add_testbench(host)
    sim.run()
    return out
