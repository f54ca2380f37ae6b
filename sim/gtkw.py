"""GTKWave save files for a run's waveform, the same on either backend.

A save file (``x.gtkw`` beside ``x.vcd``) names the dump by a path relative
to the save file's own folder, so the pair can be moved or copied together;
it opens zoomed on the first bus transactions with the marker on the first
address phase, and shows the traces a machine offers
(``hw.machine.Machine.vcd_traces()``) in named groups.

Signals whose shape is a ``lib.enum`` enumeration (FSM states) show their
member names: Amaranth's VCD writer (pysim) stores them as strings already;
a Verilator dump carries only numbers, so each such trace gets a GTKWave
translate filter file generated from the enumeration class. The bus's
C/BE# lines appear twice, as wire values and translated with the PCI 2.3
bus command codes (``hw.pci.bus.Cmd``; meaningful in the address phase).

Filter files live in ``x.filters/`` beside the save file and are named by
absolute path (GTKWave opens them relative to its working folder, not to
the save file).

The small VCD reader here (:func:`read_header`, :func:`iter_steps`) is the
one ``ocfsim vcd`` uses too. The save-file format is GTKWave's (the GTKWave
3.3 user's guide, "Save files"): ``@FLAGS`` lines, trace names as the VCD
scopes joined by dots, ``-name`` group labels, ``^N file`` filter files
numbered per save file.
"""

from __future__ import annotations

import enum
import math
import os
import re
import zlib
from dataclasses import dataclass
from typing import Iterable, Iterator

__all__ = ["Var", "read_header", "iter_steps", "model_root", "signal_paths", "write_save",
           "first_transactions", "cmd_filter", "enum_filter", "enum_names", "FLAGS"]

#: GTKWave trace flags (GTKWave's ``TR_*`` bits, as pyvcd's ``GTKWFlag``)
FLAGS = {"hex": 0x2, "rjustify": 0x20, "blank": 0x200, "ftranslated": 0x2000,
         "grp_begin": 0x800000, "grp_end": 0x1000000}

#: window the save file opens on: from a little before the first address
#: phase to a little after the N-th
ZOOM_TRANSACTIONS = 8
ZOOM_MARGIN_CYCLES = 4
#: waveform pane width the zoom is computed for (``[size]`` minus ``[signals_width]``)
WINDOW_PX = (1400, 800)
SIGNALS_PX = 320


# ------------------------------------------------------------------ reading
@dataclass(frozen=True)
class Var:
    """One ``$var`` of a VCD: identifier code, type, width, scope and name.

    ``name`` has Amaranth's escaping backslash removed and no bit range
    (Verilator writes ``state [2:0]``, Amaranth ``state``).
    """
    code: str
    kind: str
    width: int
    scope: tuple[str, ...]
    name: str
    raw: str = ""           # the name as the file spells it (with its backslash)

    @property
    def path(self) -> tuple[str, ...]:
        return self.scope + (self.name,)

    def gtkw_name(self) -> str:
        """The name GTKWave knows this variable by in a save file."""
        rng = f"[{self.width - 1}:0]" if self.width > 1 and self.kind != "string" else ""
        return ".".join(self.scope + (self.raw or self.name,)) + rng


_TIMESCALE = {"s": 10**15, "ms": 10**12, "us": 10**9, "ns": 10**6, "ps": 10**3, "fs": 1}


def read_header(path: str) -> tuple[int, list[Var]]:
    """The dump's timescale in femtoseconds and its variables (a VCD file)."""
    scope: list[str] = []
    out: list[Var] = []
    timescale = 1000
    with open(path, "r", errors="replace") as f:
        text = []
        for line in f:
            text.append(line)
            if "$enddefinitions" in line:
                break
    tokens = " ".join(text).split()
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok == "$scope":
            scope.append(tokens[i + 2])
            i += 3
        elif tok == "$upscope":
            scope.pop()
            i += 1
        elif tok == "$var":
            end = tokens.index("$end", i)
            kind, width, code, name = tokens[i + 1:i + 5]
            out.append(Var(code, kind, int(width), tuple(scope), name.lstrip("\\"), name))
            i = end + 1
        elif tok == "$timescale":
            end = tokens.index("$end", i)
            spec = "".join(tokens[i + 1:end])
            m = re.fullmatch(r"(\d+)\s*([munpf]?s)", spec)
            if m:
                timescale = int(m.group(1)) * _TIMESCALE[m.group(2)]
            i = end + 1
        else:
            i += 1
    return timescale, out


def _value(text: str):
    """A vector ``b0101`` or scalar ``1`` as an int (x and z read as 0); a
    string variable's text as str."""
    if text[0] in "bB":
        bits = text[1:]
        return int(bits, 2) if bits.isdigit() else int(re.sub("[^01]", "0", bits) or "0", 2)
    if text[0] in "sS":
        return text[1:]
    return 1 if text[0] == "1" else 0


def iter_steps(path: str, codes: set[str] | None = None) -> Iterator[tuple[int, list]]:
    """Each timestamp of the dump with its changes ``[(code, value), ...]``,
    in dump units, restricted to ``codes`` (timestamps with no such change
    are skipped); values as :func:`_value` reads them."""
    with open(path, "r", errors="replace") as f:
        for line in f:
            if "$enddefinitions" in line:
                break
        t = 0
        changes: list = []
        for line in f:
            if not line or line[0] in "$ \n":
                continue
            c = line[0]
            if c == "#":
                if changes:
                    yield t, changes
                    changes = []
                t = int(line[1:])
                continue
            if c in "bBrRsS":
                value, _, code = line.rstrip("\n").partition(" ")
                code = code.strip()
            else:
                value, code = c, line[1:].strip()
            if codes is None or code in codes:
                changes.append((code, _value(value)))
        if changes:
            yield t, changes


def model_root(variables: Iterable[Var]) -> tuple[str, ...]:
    """The scope of the machine's top module: ``bench.top`` in an Amaranth
    dump, ``TOP.ocfsim_machine`` in a Verilator one (the scope holding the
    bus resolver)."""
    for v in variables:
        if len(v.scope) >= 1 and v.scope[-1] == "resolver" and v.name in ("bus", "bus.frame"):
            return v.scope[:-1]
    raise ValueError("no PCI bus resolver in this waveform (not an ocfsim machine?)")


# ------------------------------------------------------------------ naming
def signal_paths(top):
    """Each signal of ``top`` (an Amaranth elaboratable) → its path below the
    top module, ``("slot1", "target", "state")``, as every backend's dump
    scopes it (Amaranth's own fragment and signal names)."""
    from amaranth.hdl import Fragment
    from amaranth.hdl._ast import SignalDict
    design = Fragment.get(top, None).prepare()
    paths = SignalDict()
    for info in design.fragments.values():
        for sig, name in info.signal_names.items():
            if sig not in paths:
                paths[sig] = tuple(info.name[1:]) + (name,)
    return paths


def _signals(trace) -> list:
    from amaranth.hdl import Value
    return list(Value.cast(trace)._rhs_signals())


def enum_names(sig) -> tuple[str, dict[int, str]] | None:
    """(enumeration name, value → member name) of a signal whose shape is a
    ``lib.enum`` enumeration (Amaranth keeps it as the signal's format), or None."""
    from amaranth.hdl._ast import Format
    fmt = getattr(sig, "_format", None)
    if isinstance(fmt, Format.Enum):
        return fmt._name, dict(fmt._variants)
    return None


# ------------------------------------------------------------------ filters
def enum_filter(members: dict[int, str] | type[enum.Enum], width: int) -> str:
    """A GTKWave translate filter for an enumeration (value → name, or the
    class) on a ``width``-bit hex trace: one ``VALUE NAME`` line per member,
    the value with as many hex digits as GTKWave shows."""
    if isinstance(members, enum.EnumMeta):
        members = {m.value: m.name for m in members}
    digits = max(1, math.ceil(width / 4))
    return "".join(f"{value:0{digits}x} {name}\n" for value, name in sorted(members.items()))


def cmd_filter() -> str:
    """A translate filter for C/BE#[3:0] carrying a bus command (PCI 2.3
    table 3-1, ``hw.pci.bus.Cmd``)."""
    from hw.pci.bus import Cmd
    codes = {v: k for k, v in vars(Cmd).items() if k.isupper() and isinstance(v, int)}
    return "".join(f"{code:x} {name}\n" for code, name in sorted(codes.items()))


# ------------------------------------------------------------------ zoom
def first_transactions(vcd: str, variables: list[Var], timescale_fs: int,
                       period_ps: int, count: int = ZOOM_TRANSACTIONS):
    """(start, end, first address phase) in dump units around the first
    ``count`` FRAME# assertions, or None when the bus never started one."""
    root = model_root(variables)
    frame = next((v.code for v in variables
                  if v.scope == root + ("resolver",) and v.name == "bus.frame"), None)
    if frame is None:
        return None
    rises = []
    level = 0
    for t, changes in iter_steps(vcd, {frame}):
        for _, value in changes:
            if value and not level:
                rises.append(t)
            level = value
        if len(rises) >= count:
            break
    if not rises:
        return None
    margin = ZOOM_MARGIN_CYCLES * period_ps * 1000 // timescale_fs
    return max(0, rises[0] - margin), rises[-1] + 4 * margin, rises[0]


# ------------------------------------------------------------------ writing
def write_save(gtkw: str, vcd: str, groups: dict, paths, *, period_ps: int) -> dict:
    """Write the save file ``gtkw`` for dump ``vcd`` showing ``groups``
    (``Machine.vcd_traces()``: nested dicts of lists of signals), whose
    paths below the top module ``paths`` gives (:func:`signal_paths`).

    Returns what was written: ``{"gtkw", "filters": [...], "missing": [...]}``
    (``missing``: traced signals the dump does not have).
    """
    timescale, variables = read_header(vcd)
    root = model_root(variables)
    by_path = {}
    for v in variables:
        if v.scope[:len(root)] == root:
            by_path.setdefault(v.path[len(root):], v)
    folder = os.path.dirname(os.path.abspath(gtkw))
    stem = os.path.splitext(os.path.basename(gtkw))[0]
    filter_dir = os.path.join(folder, stem + ".filters")
    lines = [f'[dumpfile] "{os.path.relpath(os.path.abspath(vcd), folder)}"',
             f"[dumpfile_size] {os.path.getsize(vcd)}",
             f'[savefile] "{os.path.basename(gtkw)}"',
             f"[size] {WINDOW_PX[0]} {WINDOW_PX[1]}",
             f"[signals_width] {SIGNALS_PX}"]
    window = first_transactions(vcd, variables, timescale, period_ps)
    if window:
        start, end, marker = window
        zoom = -math.log2(max(1, end - start) / (WINDOW_PX[0] - SIGNALS_PX))
        lines += [f"[timestart] {start}", f"*{zoom:.6f} {marker}" + " -1" * 26]
    lines.append(f"[treeopen] {'.'.join(root)}.")
    filters: dict[str, str] = {}
    missing: list[str] = []

    def filter_file(name: str, text: str) -> str:
        """``^N path``: GTKWave numbers each distinct filter file of a save file."""
        path = os.path.join(filter_dir, name + ".txt")
        filters.setdefault(path, text)
        return f"^{list(filters).index(path) + 1} {path}"

    def trace(var: Var, sig):
        flags = FLAGS["hex"] | FLAGS["rjustify"]
        names = enum_names(sig)
        if names and var.kind != "string":        # a number in the dump: translate it
            text = enum_filter(names[1], var.width)
            use = filter_file(f"{names[0]}-{zlib.crc32(text.encode()):08x}", text)
            lines.extend([f"@{flags | FLAGS['ftranslated']:x}", use, var.gtkw_name()])
        else:
            lines.extend([f"@{flags:x}", var.gtkw_name()])
        if var.path[len(root):] == ("resolver", "cbe_n"):
            use = filter_file("pci_command", cmd_filter())
            lines.extend([f"@{flags | FLAGS['ftranslated']:x}", use,
                          f"+{{command (address phase)}} {var.gtkw_name()}"])

    def walk(items):
        if isinstance(items, dict):
            for name, sub in items.items():
                lines.extend([f"@{FLAGS['grp_begin'] | FLAGS['blank']:x}", f"-{name}"])
                walk(sub)
                lines.extend([f"@{FLAGS['grp_end'] | FLAGS['blank']:x}", f"-{name}"])
            return
        for item in items:
            for sig in _signals(item):
                path = paths.get(sig) if sig in paths else None
                var = by_path.get(path) if path else None
                if var is None and path:                 # Amaranth's dedup suffix: gnt$31
                    var = by_path.get(path[:-1] + (path[-1].split("$")[0],))
                if var is None:
                    missing.append(".".join(path) if path else sig.name)
                    continue
                trace(var, sig)

    walk(groups)
    if filters:
        os.makedirs(filter_dir, exist_ok=True)
        for path, text in filters.items():
            with open(path, "w") as f:
                f.write(text)
    with open(gtkw, "w") as f:
        f.write("\n".join(lines) + "\n")
    return {"gtkw": gtkw, "filters": sorted(filters), "missing": missing}
