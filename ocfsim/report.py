"""Human-readable formatting shared by the commands (units always shown)."""

from hw.pci.monitor import CLASSES

__all__ = ["si_time", "table", "bus_lines", "bus_window_s"]


def si_time(seconds: float) -> str:
    for unit, scale in (("s", 1), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if abs(seconds) >= scale or unit == "ns":
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds} s"


def bus_text(spec) -> str:
    """The machine's buses in one phrase: ``64-bit/33 MHz PCI (66 offered;
    behind slot1: 32-bit/33 MHz)``; ``spec`` a ``hw.machine.MachineSpec``."""
    segs = spec.segments()
    text = f"{segs[0].width}-bit/{spec.clock_mhz} MHz PCI"
    extra = [f"{spec.offered_mhz} MHz offered, M66EN"] if spec.offered_mhz != spec.clock_mhz \
        else []
    extra += [f"behind {s.name}: {s.width}-bit/{mhz} MHz"
              for s, mhz in zip(segs[1:], spec.segment_clocks()[1:])]
    return text + (f" ({'; '.join(extra)})" if extra else "")


def table(headers: list[str], rows: list[list]) -> str:
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def bus_window_s(result: dict) -> float | None:
    """The simulated time the bus figures cover: the monitor's clocks in the
    breakdown times the bus clock's period (``bus_period_ps``: 30 / 15 ns, so
    "33" and "66" MHz are 33 1/3 and 66 2/3 MHz, hw/machine.py), else at
    ``clock_mhz`` (None without either)."""
    cycles = sum(result["breakdown"].values())
    if result.get("bus_period_ps"):
        return cycles * result["bus_period_ps"] / 1e12
    mhz = result.get("clock_mhz")
    return cycles / (mhz * 1e6) if mhz else None


def bus_lines(result: dict) -> list[str]:
    """The PCI figures of a result, saying the window they cover (so it can
    be read beside the throughput's)."""
    total = sum(result["breakdown"].values()) or 1
    window = bus_window_s(result)
    over = f", over {si_time(window)} ({total} bus cycles)" if window else ""
    out = [f"  PCI utilisation  {100 * result['pci_utilisation']:.1f} % of bus cycles "
           f"carried data{over}"]
    out.append("  by cycle class   " + ", ".join(
        f"{c} {result['breakdown'][c]} ({100 * result['breakdown'][c] / total:.1f} %)"
        for c in CLASSES))
    for name, counts in sorted(result.get("by_master", {}).items()):
        busy = sum(counts.values())
        out.append(f"  master {name:<13} {busy} cycles ({100 * busy / total:.1f} %): "
                   + ", ".join(f"{k} {v}" for k, v in counts.items() if v))
    return out
