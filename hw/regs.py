"""Register descriptions: one definition of every register and field of a chip.

A chip's header module (``hw/pci/pcireg.py``, ``hw/cards/hifn7751reg.py``,
``hw/cards/ubsecreg.py``, …) describes each register once with
:class:`Register` and :class:`Field`. The RTL builds its register file from
those descriptions (:mod:`hw.cards.regfile`), drivers take offsets and masks
from them, and tests import the same objects — in the manner of OpenBSD's
one ``*reg.h`` per chip, with amaranth-soc's per-field access kinds.

Pure Python: nothing here builds hardware.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field as dc_field

from amaranth.lib import data

__all__ = ["Access", "Field", "Register", "RegisterBlock"]


class Access(enum.Enum):
    """How software sees a field (amaranth-soc's field actions)."""
    #: read/write storage; a write replaces the enabled bytes
    RW = "rw"
    #: the card drives the value; writes are ignored
    RO = "ro"
    #: event bits: the card sets them, writing 1 clears them
    W1C = "w1c"
    #: a write hands the value to the card (a strobe); reads return 0
    WO = "wo"
    #: self-clearing command: writing 1 starts an action; reads the card's
    #: busy value (1 until the action is done)
    SC = "sc"


@dataclass(frozen=True)
class Field:
    """Bits ``lsb .. lsb + width - 1`` of a register."""
    name: str
    lsb: int
    width: int = 1
    access: Access = Access.RW
    reset: int = 0
    doc: str = ""

    def __post_init__(self):
        if self.lsb < 0 or self.width < 1:
            raise ValueError(f"field {self.name}: bad position {self.lsb}+{self.width}")
        if not 0 <= self.reset < 1 << self.width:
            raise ValueError(f"field {self.name}: reset {self.reset:#x} does not fit")

    @property
    def mask(self) -> int:
        """The field's bits in the register."""
        return ((1 << self.width) - 1) << self.lsb

    def value(self, v: int) -> int:
        """``v`` placed in the field (checked to fit)."""
        v = int(v)
        if not 0 <= v < 1 << self.width:
            raise ValueError(f"field {self.name}: {v:#x} does not fit {self.width} bits")
        return v << self.lsb

    def get(self, reg_value: int) -> int:
        """The field's value in a register value."""
        return (reg_value >> self.lsb) & ((1 << self.width) - 1)


@dataclass(frozen=True)
class Register:
    """A register at byte ``offset`` of BAR ``bar``; ``width`` in bits.
    Fields are reachable as attributes: ``STAT.mcr1_done.mask``."""
    name: str
    offset: int
    fields: tuple[Field, ...] = ()
    bar: int = 0
    width: int = 32
    doc: str = ""
    _by_name: dict = dc_field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "fields", tuple(self.fields))
        by_name = {}
        used = 0
        for f in self.fields:
            if f.name in by_name:
                raise ValueError(f"register {self.name}: field {f.name} twice")
            if f.name.startswith("_") or hasattr(type(self), f.name) or \
                    f.name in self.__dataclass_fields__:
                raise ValueError(f"register {self.name}: field name {f.name!r} is taken by "
                                 f"the Register itself (it would not be reachable as "
                                 f"an attribute)")
            if f.mask & used:
                raise ValueError(f"register {self.name}: field {f.name} overlaps")
            if f.lsb + f.width > self.width:
                raise ValueError(f"register {self.name}: field {f.name} past bit {self.width}")
            used |= f.mask
            by_name[f.name] = f
        object.__setattr__(self, "_by_name", by_name)

    def __getattr__(self, name: str) -> Field:
        by_name = self.__dict__.get("_by_name") or {}
        try:
            return by_name[name]
        except KeyError:
            raise AttributeError(f"register {self.__dict__.get('name')} has no field "
                                 f"{name!r}") from None

    def field(self, name: str) -> Field:
        return self._by_name[name]

    def mask(self, *names: str) -> int:
        """The bits of the named fields (all fields when none are named)."""
        fs = [self._by_name[n] for n in names] if names else self.fields
        m = 0
        for f in fs:
            m |= f.mask
        return m

    def bits(self, **values: int) -> int:
        """A register value from field values (others 0)."""
        v = 0
        for n, x in values.items():
            v |= self._by_name[n].value(x)
        return v

    def decode(self, value: int) -> dict:
        """Field name → value of a register value."""
        return {f.name: f.get(value) for f in self.fields}

    @property
    def reset(self) -> int:
        v = 0
        for f in self.fields:
            v |= f.reset << f.lsb
        return v

    @property
    def layout(self) -> data.StructLayout:
        """A ``lib.data`` layout of the register (unnamed bits as padding)."""
        members = {}
        pos = 0
        for f in sorted(self.fields, key=lambda f: f.lsb):
            if f.lsb > pos:
                members[f"_{pos}"] = f.lsb - pos
            members[f.name] = f.width
            pos = f.lsb + f.width
        if pos < self.width:
            members[f"_{pos}"] = self.width - pos
        return data.StructLayout(members)


@dataclass(frozen=True)
class RegisterBlock:
    """The registers one BAR (or configuration space) decodes."""
    name: str
    registers: tuple[Register, ...]
    size: int = 4096
    _by_name: dict = dc_field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "registers", tuple(self.registers))
        by_name, offsets = {}, set()
        for r in self.registers:
            if r.name in by_name or (r.bar, r.offset) in offsets:
                raise ValueError(f"{self.name}: register {r.name} defined twice")
            if not 0 <= r.offset < self.size or r.offset % 4:
                raise ValueError(f"{self.name}: register {r.name} at {r.offset:#x}")
            by_name[r.name] = r
            offsets.add((r.bar, r.offset))
        object.__setattr__(self, "_by_name", by_name)

    def __getattr__(self, name: str) -> Register:
        by_name = self.__dict__.get("_by_name") or {}
        try:
            return by_name[name]
        except KeyError:
            raise AttributeError(f"block {self.__dict__.get('name')} has no register "
                                 f"{name!r}") from None

    def __iter__(self):
        return iter(self.registers)

    def at(self, offset: int, bar: int = 0) -> Register | None:
        for r in self.registers:
            if r.offset == offset and r.bar == bar:
                return r
        return None
