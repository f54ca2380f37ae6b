"""``ocfsim vcd FILE``: a run's waveform read back — its signals and its PCI transactions.

The decoder reads the bus wires of a dump written by either backend and
follows the PCI 2.3 protocol itself (chapter 3), independently of the
machine's bus monitor: an address phase is the clock FRAME# is newly
asserted on an idle bus (§3.2); C/BE#[3:0] then carries the command (table
3-1) and AD the address; a data phase completes on a clock with IRDY# and
TRDY# asserted (§3.2.1); the transaction ends on the clock IRDY# is
asserted with FRAME# deasserted and TRDY# or STOP# asserted, or when the
master releases IRDY# after a master abort. Termination (§3.3.3): STOP#
with DEVSEL# and no data is a *retry*, STOP# after or with data a
*disconnect*, STOP# with DEVSEL# deasserted a *target abort*, no DEVSEL#
at all a *master abort* (§3.3.3.1); anything else is *normal*.

The initiator is the agent whose FRAME# output enable is set in the address
phase, the target the one driving DEVSEL#: both read from the resolver's
per-agent drivers (``resolver.agent__N__oe``), named as the bus monitor
names agents (``bridge.cpu``, ``bridge.dram``, then per slot
``slotN.target``, ``slotN.master``; ``hw.machine.MachineSpec.agent_names``).

Signals have hierarchical names below the machine's top module
(``resolver.bus.frame``, ``slot1.target.state``) and documented short names
for the bus lines (:data:`SHORT_NAMES`); docs/waveforms.md describes the
hierarchy.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field

from sim.gtkw import Var, iter_steps, model_root, read_header

__all__ = ["Waveform", "Transaction", "transactions", "SHORT_NAMES", "main", "TERMINATIONS"]

#: documented short names → path below the machine's top module
SHORT_NAMES = {**{f"bus.{line}": ("resolver", f"bus.{line}")
                  for line in ("ad", "cbe_n", "frame", "irdy", "trdy", "stop", "devsel")},
               "clk": ("clk",), "irq": ("irq",), "req": ("req",), "gnt": ("gnt",)}

TERMINATIONS = ("normal", "retry", "disconnect", "target abort", "master abort")


def _command_names() -> dict[int, str]:
    from hw.pci.bus import Cmd
    return {v: k for k, v in vars(Cmd).items() if k.isupper() and isinstance(v, int)}


class Waveform:
    """A dump's header: its variables, the machine's top scope, its agents."""

    def __init__(self, path: str):
        self.path = path
        if path.endswith(".fst"):
            raise ValueError(f"{path}: an FST; this reader takes VCD files "
                             "(fst2vcd converts one)")
        self.timescale_fs, self.vars = read_header(path)
        self.root = model_root(self.vars)
        self.by_path: dict[tuple, Var] = {}
        for v in self.vars:
            if v.scope[:len(self.root)] == self.root:
                self.by_path.setdefault(v.path[len(self.root):], v)

    def var(self, name: str) -> Var:
        """A variable by short name (``bus.frame``) or path below the top
        module (``slot1.target.state``); a trailing Amaranth ``$N`` may be left out."""
        path = SHORT_NAMES.get(name) or tuple(name.split("."))
        v = self.by_path.get(path)
        if v is None:
            for p, cand in self.by_path.items():
                if p[:-1] == path[:-1] and p[-1].split("$")[0] == path[-1]:
                    return cand
            if len(path) > 1:                # a field name such as bus.frame
                v = self.by_path.get(path[:-2] + (".".join(path[-2:]),))
        if v is None:
            raise KeyError(name)
        return v

    def signals(self) -> list[tuple[str, Var]]:
        """Every named variable below the top module, with its dotted name
        (the tools' own ``$N`` temporaries left out)."""
        out = []
        for p, v in sorted(self.by_path.items()):
            if any(part.startswith("$") or part.startswith("port$") for part in p):
                continue
            out.append((".".join(p), v))
        return out

    def agent_names(self) -> list[str]:
        """Bus agents in resolver order (``hw.machine.MachineSpec.agent_names``)."""
        slots = sorted({int(p[0][4:]) for p in self.by_path
                        if len(p) > 1 and p[0].startswith("slot") and p[0][4:].isdigit()})
        names = ["bridge.cpu", "bridge.dram"]
        for s in slots:
            names += [f"slot{s}.target", f"slot{s}.master"]
        n = sum(1 for p in self.by_path if p[:1] == ("resolver",)
                and p[-1].startswith("agent__") and p[-1].endswith("__oe.frame"))
        return names if n == len(names) else [f"agent {i}" for i in range(n)]


@dataclass
class Transaction:
    """One bus transaction as the wires show it."""
    cycle: int                  # bus clock the address phase begins on (0: the first)
    time_ns: float              # when that clock began (FRAME# asserted on the wires)
    command: str
    address: int
    initiator: str | None
    target: str | None = None
    data_phases: int = 0
    clocks: int = 1             # address phase to the final clock, inclusive
    termination: str = "normal"
    _devsel: bool = field(default=False, repr=False)


def transactions(path: str, limit: int | None = None) -> list[Transaction]:
    """The PCI transactions of the dump at ``path``, in order (at most ``limit``)."""
    w = Waveform(path)
    names = w.agent_names()
    clk = w.var("clk").code
    lines = {k: w.var(f"bus.{k}").code for k in ("ad", "cbe_n", "frame", "irdy", "trdy",
                                                  "stop", "devsel")}
    oe = {}
    for i in range(len(names)):
        for line in ("frame", "devsel"):
            oe[(i, line)] = w.by_path[("resolver", f"agent__{i}__oe.{line}")].code
    codes = {clk, *lines.values(), *oe.values()}
    value = dict.fromkeys(codes, 0)
    commands = _command_names()
    fs_per_unit = w.timescale_fs
    out: list[Transaction] = []
    cur: Transaction | None = None
    prev_f = prev_i = 0
    cycle = -1
    edge_t = 0                       # the rising edge that began the clock being sampled
    for t, changes in iter_steps(path, codes):
        rising = any(c == clk and v for c, v in changes) and not value[clk]
        if rising:                   # sample what the edge sees: values before it
            cycle += 1
            f, i, tr = value[lines["frame"]], value[lines["irdy"]], value[lines["trdy"]]
            s, d = value[lines["stop"]], value[lines["devsel"]]
            if cur is None:
                if f and not prev_f and not prev_i:
                    cmd = value[lines["cbe_n"]]
                    who = next((names[k] for k in range(len(names)) if value[oe[(k, "frame")]]),
                               None)
                    cur = Transaction(cycle - 1, edge_t * fs_per_unit / 1e6,
                                      commands.get(cmd, f"0x{cmd:x}"), value[lines["ad"]], who)
            else:
                cur.clocks += 1
                if d and not cur._devsel:
                    cur._devsel = True
                    cur.target = next((names[k] for k in range(len(names))
                                       if value[oe[(k, "devsel")]]), None)
                if i and tr:
                    cur.data_phases += 1
                if (i and not f and (tr or s)) or (not f and not i and prev_i):
                    if not cur._devsel:
                        cur.termination = "master abort"
                    elif s and not d and not tr:
                        cur.termination = "target abort"
                    elif s:
                        cur.termination = "retry" if cur.data_phases == 0 else "disconnect"
                    out.append(cur)
                    cur = None
                    if limit is not None and len(out) >= limit:
                        return out
            prev_f, prev_i = f, i
            edge_t = t
        for c, v in changes:
            value[c] = v
    if cur is not None:
        cur.termination = "unfinished"
        out.append(cur)
    return out


def _row(t: Transaction) -> dict:
    return {k: v for k, v in asdict(t).items() if not k.startswith("_")}


def format_transactions(txns: list[Transaction]) -> list[str]:
    lines = [f"{'time':>12}  {'cycle':>7}  {'command':<14} {'address':<10}  {'initiator':<13} "
             f"{'target':<13} {'data':>4}  termination"]
    for t in txns:
        lines.append(f"{t.time_ns:9.1f} ns  {t.cycle:7}  {t.command:<14} {t.address:#010x}  "
                     f"{t.initiator or '?':<13} {t.target or '-':<13} {t.data_phases:4}  "
                     f"{t.termination}")
    by_end = {k: sum(1 for t in txns if t.termination == k) for k in TERMINATIONS}
    lines.append(f"{len(txns)} transactions, {sum(t.data_phases for t in txns)} data phases; "
                 + ", ".join(f"{k} {v}" for k, v in by_end.items() if v))
    return lines


def format_signals(w: Waveform) -> list[str]:
    short = {v: k for k, v in SHORT_NAMES.items()}
    lines = []
    for name, v in w.signals():
        alias = short.get(v.path[len(w.root):])
        width = "" if v.kind == "string" else f"{v.width} bit{'s' if v.width > 1 else ''}"
        lines.append(f"{name:<48} {width:>8}  {v.kind}"
                     + (f"  (short: {alias})" if alias else ""))
    lines.append(f"{len(lines)} signals below {'.'.join(w.root)}; "
                 f"timescale {w.timescale_fs} fs")
    return lines


def cmd_vcd(args) -> int:
    """``ocfsim vcd FILE --signals | --transactions``."""
    from .cli import UsageError, provenance
    try:
        w = Waveform(args.file)
        if args.signals:
            doc = {"ok": True, "file": args.file, "root": ".".join(w.root),
                   "timescale_fs": w.timescale_fs,
                   "signals": [{"name": n, "width": v.width, "kind": v.kind} for n, v
                               in w.signals()]}
            human = format_signals(w)
        else:
            txns = transactions(args.file, args.limit)
            doc = {"ok": True, "file": args.file, "transactions": [_row(t) for t in txns]}
            human = format_transactions(txns)
    except (OSError, ValueError, KeyError) as exc:
        raise UsageError(f"{args.file}: {exc}") from None
    if args.json:
        doc["provenance"] = provenance(args.command_line)
        print(json.dumps(doc))
    else:
        print("\n".join(human))
    return 0


def add_parser(sub) -> None:
    from .cli import int_range
    sp = sub.add_parser("vcd", help="read a run's waveform: its signals or its PCI transactions",
                        description="Read a VCD written by `ocfsim run|dma --vcd`: list its "
                                    "signals, or decode its PCI bus transactions.")
    sp.add_argument("file", help="VCD file (either backend)")
    what = sp.add_mutually_exclusive_group(required=True)
    what.add_argument("--signals", action="store_true",
                      help="list the signals: hierarchical names, widths, short names")
    what.add_argument("--transactions", action="store_true",
                      help="one line per PCI transaction: time, command, address, initiator, "
                           "target, data phases, termination")
    sp.add_argument("--limit", type=int_range(1, 1 << 40), default=None, metavar="N",
                    help="stop after N transactions (default: all)")
    sp.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    sp.set_defaults(func=cmd_vcd)


if __name__ == "__main__":
    from .cli import main
    sys.exit(main(["vcd", *sys.argv[1:]]))
