"""A card's register file, built from its :mod:`hw.regs` description.

:class:`RegisterFile` sits on a :class:`hw.pci.target.PciTarget`'s user
``port`` (``wiring.connect(m, tgt.port, regfile.port)``), decodes BAR and
byte offset, keeps the storage the description asks for and answers every
read one clock after the request — the timing the cards' hand-written
register code had, so a conversion is cycle-exact. It always accepts
(``cmd_ready`` = 1); its ``retry``/``abort`` inputs pass to the target.

Decoding is complete: a register answers only at its own BAR and offset;
any other dword of the BAR reads 0 and ignores writes.

Ports for the card, per register and field (``regfile.STAT.mcr1_done.set``,
or ``regfile.field("STAT", "mcr1_done").set``; ``regfile.reg("STAT")``):

Per register (every register has them):

``w_stb`` (out)   one-clock pulse: a write to this register (any byte enables)
``w_data`` (out)  the written dword with disabled bytes as 0
``w_be`` (out)    the write's byte enables (1 = enabled)

Per field, by :class:`hw.regs.Access`:

``RW``   ``data`` (out): storage, reset from ``Field.reset``; a write merges the
         enabled bytes. ``lock`` (in): writes are ignored while 1. ``clr`` (in):
         back to ``Field.reset`` next clock; wins over a write.
``RO``   ``data`` (in): what reads return; left undriven it reads ``Field.reset``
         (a constant such as an ID).
``W1C``  ``data`` (out): storage. ``set`` (in): bits to set (one-clock pulses).
         ``clr`` (in): bits the card clears. Next value:
         ``~clr & (set | (data & ~written_ones))`` — a set wins over software's
         write of 1, the card's clear wins over both (the cards' soft resets).
``WO``   ``w_stb`` (out): a write to the register (any byte enables, as the
         register strobe); ``w_data`` (out): the field's bits of the written
         value, disabled bytes 0. Reads return 0.
``SC``   ``w_stb`` (out): a write with a 1 in the field (enabled bytes only):
         start the action. ``busy`` (in): read back (1 until done).

A field named in ``external`` (``"REG.field"``) keeps its storage in the card
instead, whatever its access kind: ``data`` (in) is what reads return,
``w_stb`` (out) is the register write strobe and ``w_data`` (out) the field's
new value, the enabled bytes of the write merged over ``data``. For values
a card must transform on write (a saturating count) or that live elsewhere
(a ring engine's base address).
"""

from amaranth.hdl import Module, Signal, Cat, Const, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..pci.target import TargetPort
from ..regs import Access, Field, Register, RegisterBlock

__all__ = ["RegisterFile", "field_signature"]

#: per-register members (a field may not take these names)
_REG_MEMBERS = ("w_stb", "w_data", "w_be")


def field_signature(f: Field, external: bool = False) -> wiring.Signature:
    """The ports a field gives the card (see the module docstring)."""
    w = f.width
    if external:
        return wiring.Signature({"data": In(w, init=f.reset), "w_stb": Out(1),
                                 "w_data": Out(w)})
    if f.access is Access.RW:
        return wiring.Signature({"data": Out(w, init=f.reset), "lock": In(1), "clr": In(1)})
    if f.access is Access.RO:
        return wiring.Signature({"data": In(w, init=f.reset)})
    if f.access is Access.W1C:
        return wiring.Signature({"data": Out(w, init=f.reset), "set": In(w), "clr": In(w)})
    if f.access is Access.WO:
        return wiring.Signature({"w_stb": Out(1), "w_data": Out(w)})
    if f.access is Access.SC:
        return wiring.Signature({"w_stb": Out(1), "busy": In(w)})
    raise ValueError(f"field {f.name}: access {f.access}")


def _bytes_of(f: Field):
    """(byte index, first bit in the field, first bit in the byte, bits) per byte
    the field touches."""
    out = []
    bit = f.lsb
    end = f.lsb + f.width
    while bit < end:
        k = bit // 8
        top = min(end, 8 * k + 8)
        out.append((k, bit - f.lsb, bit - 8 * k, top - bit))
        bit = top
    return out


class RegisterFile(wiring.Component):
    """Registers ``registers`` (a :class:`RegisterBlock` or Registers) of a
    card's BARs, ``size`` bytes decoded per BAR (default: the block's size)."""

    def __init__(self, registers, *, size: int | None = None, external=()):
        regs = tuple(registers)
        if size is None:
            size = registers.size if isinstance(registers, RegisterBlock) else 4096
        if size < 4 or size & (size - 1):
            raise ValueError(f"size {size} is not a power of two")
        self.size = size
        self.registers = regs
        self.external = frozenset(external)
        names = {f"{r.name}.{f.name}" for r in regs for f in r.fields}
        unknown = self.external - names
        if unknown:
            raise ValueError(f"external fields not described: {sorted(unknown)}")
        self.n_bars = max((r.bar for r in regs), default=0) + 1
        members = {"port": In(TargetPort), "retry": In(1), "abort": In(1)}
        seen = set()
        for r in regs:
            if r.name in members or r.name in seen or not r.name.isidentifier():
                raise ValueError(f"register name {r.name!r} unusable")
            if r.offset + r.width // 8 > size or r.width != 32:
                raise ValueError(f"register {r.name}: 32-bit registers within {size} bytes")
            seen.add(r.name)
            sig = {"w_stb": Out(1), "w_data": Out(32), "w_be": Out(4)}
            for f in r.fields:
                if f.name in _REG_MEMBERS:
                    raise ValueError(f"register {r.name}: field name {f.name!r} is reserved")
                sig[f.name] = Out(field_signature(f, f"{r.name}.{f.name}" in self.external))
            members[r.name] = Out(wiring.Signature(sig))
        super().__init__(members)

    def reg(self, name: str):
        """The interface of register ``name`` (``w_stb``, ``w_data``, fields)."""
        return getattr(self, name)

    def field(self, reg: str, name: str):
        """The interface of field ``name`` of register ``reg``."""
        return getattr(getattr(self, reg), name)

    def _index(self, r: Register) -> int:
        return (r.bar << (self.size.bit_length() - 3)) | (r.offset >> 2)

    def elaborate(self, platform):
        m = Module()
        port = self.port
        m.d.comb += [port.cmd_ready.eq(1), port.retry.eq(self.retry),
                     port.abort.eq(self.abort)]
        dw = self.size.bit_length() - 3          # dword index bits within a BAR
        nb = (self.n_bars - 1).bit_length()      # BAR index bits
        index = Signal(dw + nb)
        in_bar = Signal()                        # a described BAR, offset inside `size`
        m.d.comb += [index.eq(Cat(port.cmd.addr[2:2 + dw], port.cmd.bar[0:nb])),
                     in_bar.eq((port.cmd.addr[2 + dw:] == 0) & (port.cmd.bar[nb:] == 0)
                               & (port.cmd.bar < self.n_bars))]

        be = port.cmd.be
        wd = Signal(32)                          # write data, disabled bytes 0
        m.d.comb += wd.eq(port.cmd.data & Cat(*(be[k].replicate(8) for k in range(4))))
        write = port.cmd_valid & port.cmd.write & in_bar

        rdata = Signal(32)
        with m.If(in_bar):
            with m.Switch(index):
                for r in self.registers:
                    with m.Case(self._index(r)):
                        m.d.comb += rdata.eq(self._read_value(r))
        # one-clock read response (the cards' pipeline: registered request
        # flag and data)
        rsp = Signal()
        rsp_data = Signal(32)
        m.d.sync += [rsp.eq(port.cmd_valid & ~port.cmd.write), rsp_data.eq(rdata)]
        m.d.comb += [port.rsp_valid.eq(rsp), port.rsp_data.eq(rsp_data)]

        for r in self.registers:
            ri = self.reg(r.name)
            hit = Signal(name=f"{r.name}_hit")
            m.d.comb += hit.eq(write & (index == self._index(r)))
            m.d.comb += [ri.w_stb.eq(hit), ri.w_data.eq(wd), ri.w_be.eq(be)]
            for f in r.fields:
                self._field_logic(m, r, f, self.field(r.name, f.name), hit, wd, be)
        return m

    def _read_value(self, r: Register):
        v = Const(0, 32)
        for f in r.fields:
            fi = self.field(r.name, f.name)
            if f"{r.name}.{f.name}" in self.external or f.access in (
                    Access.RW, Access.RO, Access.W1C):
                val = fi.data
            elif f.access is Access.SC:
                val = fi.busy
            else:                                  # WO reads 0
                continue
            v = v | (val << f.lsb)
        return v[0:32]

    def _field_logic(self, m, r, f, fi, hit, wd, be):
        name = f"{r.name}.{f.name}"
        new_bits = wd[f.lsb:f.lsb + f.width]       # written value, disabled bytes 0

        def merged(old):
            parts = []
            for k, fbit, _, n in _bytes_of(f):
                parts.append(Mux(be[k], new_bits[fbit:fbit + n], old[fbit:fbit + n]))
            return Cat(*parts)

        if name in self.external:
            m.d.comb += [fi.w_stb.eq(hit), fi.w_data.eq(merged(fi.data))]
        elif f.access is Access.RW:
            with m.If(fi.clr):
                m.d.sync += fi.data.eq(f.reset)
            with m.Elif(hit & ~fi.lock):
                m.d.sync += fi.data.eq(merged(fi.data))
        elif f.access is Access.W1C:
            ones = Mux(hit, new_bits, 0)
            m.d.sync += fi.data.eq(~fi.clr & (fi.set | (fi.data & ~ones)))
        elif f.access is Access.WO:
            m.d.comb += [fi.w_stb.eq(hit), fi.w_data.eq(new_bits)]
        elif f.access is Access.SC:
            m.d.comb += fi.w_stb.eq(hit & new_bits.any())
