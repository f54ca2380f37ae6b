"""Fault injection at a simulated time: register pokes behind the driver, PCI
command-register outages, DRAM retry storms and latency, lost interrupts and
garbage in the structures a driver hands over to its card.

An experiment arms a plan on a booted system; every time in a plan is
relative to the moment it is armed::

    plan = FaultPlan.parse(["reset@60us", "bme-off@60us+60us"])
    plan.arm(system)            # returns at once; injections run on the loop
    ...                         # run a workload
    plan.log                    # [{"time_us", "fault", "card", "event", ...}, ...]

Textual SPEC (``ocfsim run --fault SPEC``; grammar in ``docs/faults.md``)::

    KIND@TIME[+DURATION][:KEY=VALUE[,KEY=VALUE...]]

with TIME and DURATION a number and a unit (``ns``, ``us``, ``ms``), e.g.
``reset@60us``, ``mse-off@60us+60us``, ``poke@80us:bar=1,reg=0x44,value=0``,
``lost-irq@50us:count=2``, ``dram-retry@40us+100us:every=1``,
``target-abort@40us+20us``,
``bad-session@30us:card=1``. ``card=N`` picks the N-th attached card
(default 0).

Injections act *behind the driver*: register writes and configuration
cycles go through the host bridge as bus transactions from an agent of
their own, not through the driver's code, and hand-over faults rewrite DMA
memory through the backdoor between the driver's write and the moment the
card is told (the drivers' ``handover_hook(kind, addr, size)``).
"""

from __future__ import annotations

import argparse
import random
import re
import struct
from dataclasses import dataclass, field
from typing import Any, Callable

from hw.cards import hifn7751reg as hifnreg, ubsecreg
from hw.pci import pcireg
from hw.structs import byte_offset, pack, unpack

__all__ = ["Fault", "FaultPlan", "FaultError", "KINDS", "parse_fault", "check_cards",
           "fault_arg", "report_lines", "UNDECODED"]

#: a bus address no agent decodes on the standard machines: above the 4 MiB
#: of host DRAM and below the BAR window that starts at 0x8000_0000
#: (``sim.host.Host.mmio_window``), so a DMA there ends in master abort
UNDECODED = 0x7FF0_0000
CARD_IDS = {(ubsecreg.VENDOR_ID, ubsecreg.DEVICE_ID): "bcm5820",
            (hifnreg.VENDOR_ID, hifnreg.DEVICE_ID): "hifn7751"}
#: memory BARs of each card (the headers' register blocks)
CARD_BARS = {"bcm5820": 1, "hifn7751": 2}
BOTH = ("bcm5820", "hifn7751")

#: DMA_CSR value disabling the four Hifn rings (each x_ctrl = DIS)
HIFN_CSR_ALL_DIS = hifnreg.DMA_CSR.bits(**{f"{x}_ctrl": hifnreg.RingCtrl.DIS.value
                                           for x in "csrd"})
#: byte offsets in a 5820 record (struct ubsec_mcr): the context address, the
#: first input particle
UBS_PKT_CTX = byte_offset(ubsecreg.Mcr, "pkt", "ctxp")
UBS_PKT_IN = byte_offset(ubsecreg.Mcr, "pkt", "ipkt")


class FaultError(ValueError):
    """A SPEC or a plan that cannot be injected (one line, for the user)."""


@dataclass(frozen=True)
class Kind:
    cards: tuple[str, ...]          # card kinds it applies to
    duration: bool                  # needs +DURATION
    params: dict = field(default_factory=dict)    # name → default (None: required)


#: what each kind does: docs/faults.md
KINDS: dict[str, Kind] = {
    "reset": Kind(BOTH, False),                 # 5820 CTRL RESET, hifn PUCTRL RESET
    "rings-off": Kind(("hifn7751",), False),    # hifn DMA_CSR: the four rings disabled
    "poke": Kind(BOTH, False, {"bar": 0, "reg": None, "value": None}),
    "bme-off": Kind(BOTH, True),                # PCI command: Bus Master Enable off
    "mse-off": Kind(BOTH, True),                # PCI command: Memory Space Enable off
    "lost-irq": Kind(BOTH, False, {"count": 1}),
    "dram-retry": Kind(BOTH, True, {"every": 1}),
    "dram-latency": Kind(BOTH, True, {"latency": 15, "wait_every": 4, "wait_len": 31}),
    # 66 clocks: about 1 µs at 66 MHz, the order of a delayed read of host
    # memory through a chipset of the period (an estimate, docs/faults.md)
    "dram-delayed": Kind(BOTH, True, {"delayed": 66}),
    "target-abort": Kind(BOTH, True, {"every": 1}),   # host DRAM aborts transactions
    "master-abort": Kind(BOTH, False),          # a DMA pointer to an undecoded address
    "zero-particle": Kind(("bcm5820",), False),  # a zero-length self-linked particle
    "res-novalid": Kind(("hifn7751",), False),  # a result descriptor without VALID
    "bad-session": Kind(("hifn7751",), False),  # session word 0xFFFF
    "garbage": Kind(BOTH, False, {"kind": None, "seed": 1}),
}

#: hand-over kind each hand-over fault waits for, per card kind
HANDOVER = {
    ("master-abort", "bcm5820"): "mcr", ("master-abort", "hifn7751"): "hifn-src",
    ("zero-particle", "bcm5820"): "mcr", ("res-novalid", "hifn7751"): "hifn-res",
    ("bad-session", "hifn7751"): "hifn-cmdbuf",
}
#: the kinds of structure each driver hands over (drivers/ubsec.py, drivers/hifn.py)
HANDOVER_KINDS = {"bcm5820": ("ctx", "particle", "mcr"),
                  "hifn7751": ("hifn-cmdbuf", "hifn-res", "hifn-dst", "hifn-src", "hifn-cmd")}

_UNITS = {"ns": 1_000, "us": 1_000_000, "µs": 1_000_000, "ms": 1_000_000_000}
_TIME = r"(\d+(?:\.\d+)?)(ns|us|µs|ms)"
_SPEC = re.compile(rf"^([a-z-]+)@{_TIME}(?:\+{_TIME})?(?::(.*))?$")


@dataclass(frozen=True)
class Fault:
    """One fault: ``kind`` at ``at_ps`` after arming, for ``duration_ps``."""
    kind: str
    at_ps: int
    duration_ps: int = 0
    card: int = 0
    params: tuple = ()              # sorted (name, value) pairs

    @property
    def end_ps(self) -> int:
        return self.at_ps + self.duration_ps

    def param(self, name: str) -> Any:
        return dict(self.params).get(name, KINDS[self.kind].params.get(name))

    def __str__(self) -> str:
        text = f"{self.kind}@{self.at_ps / 1e6:g}us"
        if self.duration_ps:
            text += f"+{self.duration_ps / 1e6:g}us"
        extra = ([f"card={self.card}"] if self.card else []) \
            + [f"{k}={v:#x}" if isinstance(v, int) and k in ("reg", "value") else f"{k}={v}"
               for k, v in self.params]
        return text + (":" + ",".join(extra) if extra else "")


def _ps(number: str, unit: str) -> int:
    return int(round(float(number) * _UNITS[unit]))


def _value(name: str, text: str) -> Any:
    if name == "kind":
        return text
    try:
        return int(text, 0)
    except ValueError:
        raise FaultError(f"{name}={text!r} is not an integer") from None


def parse_fault(text: str) -> Fault:
    """``"bme-off@60us+60us"`` → :class:`Fault`; :class:`FaultError` on a bad SPEC."""
    m = _SPEC.match(text.strip())
    if not m:
        raise FaultError(f"fault {text!r} is not KIND@TIME[+DURATION][:KEY=VALUE,...] "
                         f"(TIME like 60us; kinds: {', '.join(KINDS)})")
    name, at, at_unit, dur, dur_unit, rest = m.groups()
    kind = KINDS.get(name)
    if kind is None:
        raise FaultError(f"unknown fault kind {name!r} (choose from {', '.join(KINDS)})")
    duration = _ps(dur, dur_unit) if dur else 0
    if kind.duration and not duration:
        raise FaultError(f"fault {name!r} needs a duration: {name}@TIME+DURATION")
    if not kind.duration and dur:
        raise FaultError(f"fault {name!r} is instantaneous: no +DURATION")
    card, params = 0, {}
    for item in filter(None, (rest or "").split(",")):
        key, eq, val = item.partition("=")
        if not eq:
            raise FaultError(f"fault {name!r}: {item!r} is not KEY=VALUE")
        if key == "card":
            card = _value(key, val)
            if card < 0:
                raise FaultError(f"card={card} is negative")
        elif key in kind.params:
            params[key] = _value(key, val)
        else:
            allowed = ", ".join(["card", *kind.params])
            raise FaultError(f"fault {name!r} takes no {key!r} (takes {allowed})")
    missing = [k for k, v in kind.params.items() if v is None and k not in params]
    if missing:
        raise FaultError(f"fault {name!r} needs {', '.join(k + '=' for k in missing)}")
    _check_params(name, params)
    return Fault(name, _ps(at, at_unit), duration, card, tuple(sorted(params.items())))


#: inclusive ranges of the numeric parameters (the host-bridge knob widths of
#: hw/pci/host_bridge.py; a dword register offset inside a 4 KiB BAR)
_RANGES = {"bar": (0, 5), "reg": (0, 0xFFC), "value": (0, 0xFFFF_FFFF), "count": (1, 1000),
           "every": (1, 255), "latency": (0, 15), "wait_every": (0, 255), "wait_len": (0, 31),
           "delayed": (1, 255), "seed": (0, 2**32 - 1)}


def _check_params(name: str, params: dict) -> None:
    for key, value in params.items():
        if key == "kind":
            continue
        lo, hi = _RANGES[key]
        if not lo <= value <= hi:
            raise FaultError(f"fault {name!r}: {key}={value} is not in {lo}..{hi}")
        if key == "reg" and value % 4:
            raise FaultError(f"fault {name!r}: reg={value:#x} is not dword aligned")


def fault_arg(text: str) -> str:
    """argparse type for ``--fault SPEC``: the SPEC, normalised."""
    try:
        return str(parse_fault(text))
    except FaultError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def check_cards(faults: list[Fault], kinds: list[str]) -> None:
    """Refuse faults naming a card the machine lacks or a kind it does not apply to."""
    for f in faults:
        if f.card >= len(kinds):
            raise FaultError(f"fault {f}: card={f.card} but the machine has "
                             f"{len(kinds)} card(s)")
        if kinds[f.card] not in KINDS[f.kind].cards:
            raise FaultError(f"fault {f.kind!r} applies to {' and '.join(KINDS[f.kind].cards)} "
                             f"only, card {f.card} is a {kinds[f.card]}")
        nbars = CARD_BARS[kinds[f.card]]
        if f.kind == "poke" and f.param("bar") >= nbars:
            raise FaultError(f"fault {f}: a {kinds[f.card]} has no BAR{f.param('bar')} "
                             f"(BARs 0..{nbars - 1})")
        known = HANDOVER_KINDS[kinds[f.card]]
        if f.kind == "garbage" and f.param("kind") not in known:
            raise FaultError(f"fault {f}: a {kinds[f.card]} hands over {', '.join(known)}, "
                             f"not {f.param('kind')!r}")


class FaultPlan:
    """Faults to inject into one running system, and the log of what happened."""

    def __init__(self, faults: list[Fault]):
        self.faults = list(faults)
        self.log: list[dict] = []
        self.t0 = 0
        self._system = None

    @classmethod
    def parse(cls, specs: list[str]) -> "FaultPlan":
        return cls([parse_fault(s) for s in specs])

    # ------------------------------------------------------------ arming
    def arm(self, system: Any) -> "FaultPlan":
        """Schedule every fault relative to now; returns at once."""
        self._system = system
        host = system.host
        self.t0 = host.now
        kinds = [CARD_IDS.get((sc.dev.vendor, sc.dev.device), "?") for sc in system.softcs]
        check_cards(self.faults, kinds)
        for f in self.faults:
            host.loop.spawn(self._inject(f, system.softcs[f.card], kinds[f.card]), f"fault {f}")
        return self

    @property
    def injected(self) -> bool:
        """Whether every fault of the plan took effect (a hand-over fault waits
        for its structure; a run may end first)."""
        done = {e["fault"] for e in self.log if e["event"] == "inject"}
        return all(str(f) in done for f in self.faults)

    @property
    def window_end_ps(self) -> int:
        """Absolute time the last fault window closes (instantaneous faults: their time)."""
        return self.t0 + max((f.end_ps for f in self.faults), default=0)

    def _note(self, f: Fault, event: str, **detail: Any) -> None:
        now = self._system.host.now
        self.log.append({"time_us": (now - self.t0) / 1e6, "fault": str(f), "card": f.card,
                         "event": event, **detail})

    async def _inject(self, f: Fault, softc: Any, card: str) -> None:
        host = self._system.host
        await host.sleep(max(0, self.t0 + f.at_ps - host.now))
        await INJECTORS[f.kind](self, f, softc, card)

    # ------------------------------------------------------------ injectors
    async def _poke(self, f: Fault, softc: Any, bar: int, reg: int, value: int) -> None:
        host = self._system.host
        addr = softc.dev.bar(bar).addr + reg
        await host.mmio_write(addr, value)
        back = await host.mmio_read(addr)
        self._note(f, "inject", write=f"BAR{bar}+{reg:#x} = {value:#010x}", readback=back)

    async def reset(self, f, softc, card):
        if card == "bcm5820":
            reg = ubsecreg.CTRL
            await self._poke(f, softc, reg.bar, reg.offset, reg.board_reset.mask)
        else:
            reg = hifnreg.PUCTRL
            await self._poke(f, softc, reg.bar, reg.offset, reg.chip_reset.mask)

    async def rings_off(self, f, softc, card):
        reg = hifnreg.DMA_CSR
        await self._poke(f, softc, reg.bar, reg.offset, HIFN_CSR_ALL_DIS)

    async def poke(self, f, softc, card):
        await self._poke(f, softc, f.param("bar"), f.param("reg"), f.param("value"))

    async def command_off(self, f, softc, card):
        """Clear a PCI command-register bit for the fault's duration, then set it again."""
        host = self._system.host
        command = pcireg.COMMAND
        bit = (command.bus_master if f.kind == "bme-off" else command.memory_space).mask
        slot = softc.dev.slot
        cmd = await host.cfg_read(slot, command.offset) & 0xFFFF
        await host.cfg_write(slot, command.offset, cmd & ~bit, be=0x3)    # status bits untouched
        self._note(f, "inject", command=f"{cmd:#06x} -> {cmd & ~bit:#06x}")
        await host.sleep(f.duration_ps)
        now = await host.cfg_read(slot, command.offset) & 0xFFFF
        await host.cfg_write(slot, command.offset, now | bit, be=0x3)
        self._note(f, "restore", command=f"{now:#06x} -> {now | bit:#06x}")

    async def lost_irq(self, f, softc, card):
        """Swallow the next ``count`` assertions of the card's interrupt line."""
        host, line = self._system.host, softc.dev.irq
        left = [f.param("count")]
        previous = host.irq_filter

        def deliver(ln: int, asserted: bool) -> bool:
            if ln == line and asserted and left[0] > 0:
                left[0] -= 1
                self._note(f, "inject", dropped=f"assertion of line {line}")
                if not left[0]:
                    host.irq_filter = previous
                return False
            return previous is None or previous(ln, asserted)
        host.irq_filter = deliver
        self._note(f, "armed", line=line)

    async def dram_timing(self, f, softc, card):
        """Host-DRAM knobs for the fault's duration, then back to 0 (the default)."""
        host = self._system.host
        if f.kind == "dram-retry":
            knobs = {"retry_every": f.param("every")}
        elif f.kind == "target-abort":
            knobs = {"abort_every": f.param("every")}
        elif f.kind == "dram-delayed":
            knobs = {"delayed": f.param("delayed")}
        else:
            knobs = {k: f.param(k) for k in ("latency", "wait_every", "wait_len")}
        host.set_dram_timing(**knobs)
        self._note(f, "inject", **knobs)
        await host.sleep(f.duration_ps)
        host.set_dram_timing()
        self._note(f, "restore")

    async def handover(self, f, softc, card):
        """Rewrite the next structure of the wanted hand-over kind."""
        want = f.param("kind") if f.kind == "garbage" else HANDOVER[(f.kind, card)]
        if not hasattr(softc, "handover_hook"):
            self._note(f, "unsupported", reason=f"{softc.name} has no handover_hook")
            return
        previous = softc.handover_hook
        mem = self._system.host.memory
        rng = random.Random(f.param("seed"))

        def hook(kind: str, addr: int, size: int) -> None:
            if previous is not None:
                previous(kind, addr, size)
            if kind != want or softc.handover_hook is not hook:
                return
            softc.handover_hook = previous
            detail = CORRUPT[f.kind](mem, addr, size, rng)
            self._note(f, "inject", handover=kind, addr=addr, **detail)
        softc.handover_hook = hook
        self._note(f, "armed", handover=want)


def _master_abort(mem, addr: int, size: int, rng) -> dict:
    """5820 record: its context address; hifn descriptor {l, p}: its buffer address."""
    where = addr + (UBS_PKT_CTX if size > 8 else 4)
    mem.write(where, struct.pack("<I", UNDECODED))
    return {"pointer": f"{where:#x} -> {UNDECODED:#x}"}


def _zero_particle(mem, addr: int, size: int, rng) -> dict:
    """The record's first input particle: length 0, next = itself."""
    part = addr + UBS_PKT_IN
    paddr = unpack(ubsecreg.PktBuf, mem.read(part, ubsecreg.PKTBUF_BYTES))["addr"]
    mem.write(part, pack(ubsecreg.PktBuf, addr=paddr, next=part, len=0))
    return {"particle": f"{part:#x} len 0 next {part:#x}"}


def _res_novalid(mem, addr: int, size: int, rng) -> dict:
    (l,) = struct.unpack("<I", mem.read(addr, 4))
    mem.write(addr, struct.pack("<I", l & ~hifnreg.D_VALID))
    return {"descriptor": f"{l:#010x} -> {l & ~hifnreg.D_VALID:#010x}"}


def _bad_session(mem, addr: int, size: int, rng) -> dict:
    """Session word (the second u16 of the command buffer) = 0xFFFF."""
    word = addr + byte_offset(hifnreg.BaseCommand, "session")
    mem.write(word, struct.pack("<H", 0xFFFF))
    return {"session_word": f"{word:#x} = 0xffff"}


def _garbage(mem, addr: int, size: int, rng) -> dict:
    mem.write(addr, rng.randbytes(size))
    return {"bytes": size}


CORRUPT: dict[str, Callable] = {"master-abort": _master_abort, "zero-particle": _zero_particle,
                                "res-novalid": _res_novalid, "bad-session": _bad_session,
                                "garbage": _garbage}

INJECTORS: dict[str, Callable] = {
    "reset": FaultPlan.reset, "rings-off": FaultPlan.rings_off, "poke": FaultPlan.poke,
    "bme-off": FaultPlan.command_off, "mse-off": FaultPlan.command_off,
    "lost-irq": FaultPlan.lost_irq, "dram-retry": FaultPlan.dram_timing,
    "dram-latency": FaultPlan.dram_timing, "target-abort": FaultPlan.dram_timing,
    "dram-delayed": FaultPlan.dram_timing,
    **{k: FaultPlan.handover for k in CORRUPT},
}


def _counts(req: dict) -> str:
    errs = ", ".join(f"{k} {v}" for k, v in req["errno"].items())
    return (f"{req['dispatched']} dispatched: {req['ok']} verified, "
            f"{req['errno_total']} errno{f' ({errs})' if errs else ''}, {req['wrong']} wrong, "
            f"{req['lost']} never completed")


def report_lines(result: dict) -> list[str]:
    """The per-run fault report of a devcrypto result, for the terminal."""
    f = result.get("faults")
    if not f:
        return []
    lines = [f"  requests         {_counts(result['requests'])}",
             f"  faults           {', '.join(f['specs'])} (window closes at "
             f"{f['window_end_us']:g} µs, bound {f['timeout_us']:g} µs after it)"]
    for e in f["log"]:
        extra = ", ".join(f"{k} {v}" for k, v in e.items()
                          if k not in ("time_us", "fault", "card", "event"))
        lines.append(f"    {e['time_us']:9.2f} µs   {e['event']} {e['fault']}"
                     + (f": {extra}" if extra else ""))
    rec = f["recovery_us"]
    lines.append(f"  after the fault  probe {_counts(f['probe'])}; card "
                 f"{'serves again' if f['served_after'] else 'NOT serving'}"
                 + (f", first new request verified {rec:.1f} µs after the window" if rec is not None
                    else ""))
    lines.append(f"  kernel           {result['kernel_catchalls']} catch-all(s) fired")
    return lines
