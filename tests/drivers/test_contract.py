"""The driver contract: registers only through the chip headers, one shape per
driver (MATCH, attach, CryptoDriver), autoconf driven by the MATCH tables.

The headers (hw/cards/hifn7751reg.py, hw/cards/ubsecreg.py, hw/pci/pcireg.py)
describe the hardware the RTL decodes; these tests check the drivers against
them: in their source (no offsets or bit positions of their own) and in what
they do on the bus (every MMIO they make hits a register the header
describes, every write a register software may write).
"""

import ast
import asyncio
import io
import tokenize
from pathlib import Path

import pytest

import drivers.hifn
import drivers.ubsec
from drivers.bus_space import BusSpace, ConfigSpace
from drivers.softc import PciCryptoSoftc
from hw.cards import dmatest, hifn7751reg, ubsecreg
from hw.machine import CardSpec, MachineSpec
from hw.pci import pcireg
from hw.regs import Access
from ocf.crypto import CryptoDriver
from ocf.cryptodefs import CRYPTO_3DES_CBC, CRYPTO_DES_CBC, CRYPTO_SHA1_HMAC
from ocfsim.system import DRIVERS, match_table
from sim.experiment import run

from .test_same_answer import cases, expected

ROOT = Path(__file__).resolve().parents[2]
#: the driver code that must not know an offset or a bit position
DRIVER_FILES = ["drivers/hifn.py", "drivers/ubsec.py", "drivers/softc.py", "drivers/ring.py",
                "drivers/pci.py", "drivers/em.py"]
SC = "tests.drivers.contract_scenarios"


# ---------------------------------------------------------------- the source
def _functions(tree):
    return [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


@pytest.mark.parametrize("path", DRIVER_FILES)
def test_no_register_offsets_bits_or_struct_formats_in_driver_code(path):
    """Inside functions: no hex literal (an offset or a mask), no shift by a
    literal (a bit position), no ``struct`` (a hand-written memory format), no
    host MMIO or configuration call (that is drivers.bus_space's job)."""
    src = (ROOT / path).read_text()
    tree = ast.parse(src)
    spans = [(f.lineno, f.end_lineno) for f in _functions(tree)]

    def in_function(line):
        return any(a <= line <= b for a, b in spans)

    bad = []
    for tok in tokenize.generate_tokens(io.StringIO(src).readline):
        if tok.type == tokenize.NUMBER and tok.string.lower().startswith("0x") \
                and in_function(tok.start[0]):
            bad.append(f"{path}:{tok.start[0]}: hex literal {tok.string}")
    for f in _functions(tree):
        for n in ast.walk(f):
            if isinstance(n, ast.BinOp) and isinstance(n.op, (ast.LShift, ast.RShift)) \
                    and isinstance(n.right, ast.Constant):
                bad.append(f"{path}:{n.lineno}: shift by the literal {n.right.value}")
            if isinstance(n, ast.Attribute) and n.attr in (
                    "mmio_read", "mmio_write", "cfg_read", "cfg_write"):
                bad.append(f"{path}:{n.lineno}: direct {n.attr}")
    for n in ast.walk(tree):
        if isinstance(n, ast.Import) and any(a.name == "struct" for a in n.names) \
                or isinstance(n, ast.ImportFrom) and n.module == "struct":
            bad.append(f"{path}:{n.lineno}: imports struct")
    assert bad == []


def test_the_source_scan_finds_what_it_forbids():
    """The scan above is not vacuous: the code before the headers fails it."""
    old = "async def rd(self, reg):\n    return await self.host.mmio_read(self.base + 0x08) >> 3\n"
    tree = ast.parse(old)
    f = _functions(tree)[0]
    assert any(isinstance(n, ast.Attribute) and n.attr == "mmio_read" for n in ast.walk(f))
    assert any(t.string == "0x08" for t in tokenize.generate_tokens(io.StringIO(old).readline))


# ---------------------------------------------------------------- the accessors
class _Host:
    """Records the host calls the accessors make."""

    def __init__(self, dword=0):
        self.calls = []
        self.dword = dword

    async def mmio_read(self, addr):
        self.calls.append(("r", addr))
        return self.dword

    async def mmio_write(self, addr, value, be=0xF):
        self.calls.append(("w", addr, value, be))

    async def cfg_read(self, slot, reg, func=0):
        self.calls.append(("cr", slot, reg))
        return self.dword

    async def cfg_write(self, slot, reg, value, func=0, be=0xF):
        self.calls.append(("cw", slot, reg, value, be))


def test_bus_space_reaches_a_register_through_its_own_bar_only():
    host = _Host()
    regs = BusSpace(host, {0: (0xE000_0000, 4096), 1: (0xE000_1000, 4096)})
    asyncio.run(regs.write(hifn7751reg.DMA_CSR, 5))
    asyncio.run(regs.read(hifn7751reg.PUSTAT))
    assert host.calls == [("w", 0xE000_1000 + 0x40, 5, 0xF), ("r", 0xE000_0000 + 0x14)]
    only_bar0 = BusSpace(host, {0: (0xE000_0000, 4096)})
    with pytest.raises(ValueError):
        asyncio.run(only_bar0.read(hifn7751reg.DMA_CSR))          # a BAR1 register
    with pytest.raises(TypeError):
        asyncio.run(only_bar0.read(0x14))                          # an offset, not a Register


def test_config_space_reads_a_16_bit_register_as_its_own_bits():
    host = _Host(dword=0x0290_0006)        # STATUS 0x0290 : COMMAND 0x0006
    cfg = ConfigSpace(host, slot=3)
    assert asyncio.run(cfg.read(pcireg.COMMAND)) == 0x0006
    assert asyncio.run(cfg.read(pcireg.STATUS)) == 0x0290
    asyncio.run(cfg.write(pcireg.STATUS, pcireg.STATUS.mask("received_master_abort"), be=0b1100))
    assert host.calls[-1] == ("cw", 3, 0x04, (1 << 13) << 16, 0b1100)


# ---------------------------------------------------------------- one shape
@pytest.mark.parametrize("mod,cls,ids", [
    (drivers.hifn, drivers.hifn.HifnSoftc, (hifn7751reg.VENDOR_ID, hifn7751reg.DEVICE_ID)),
    (drivers.ubsec, drivers.ubsec.Ubsec, (ubsecreg.VENDOR_ID, ubsecreg.DEVICE_ID)),
])
def test_each_driver_has_the_same_shape(mod, cls, ids):
    assert list(mod.MATCH) == [ids]
    assert asyncio.iscoroutinefunction(mod.attach)
    assert issubclass(cls, PciCryptoSoftc) and cls.MATCH is mod.MATCH
    for m in ("newsession", "freesession", "process", "stats", "intr", "reset_board"):
        assert callable(getattr(cls, m)), m


def test_autoconf_table_is_the_drivers_match_tables():
    assert DRIVERS == {(0x13A3, 0x0005): "drivers.hifn:attach",     # pcidevs HIFN 7751
                       (0x14E4, 0x5820): "drivers.ubsec:attach",    # pcidevs BROADCOM 5820
                       (0x8086, 0x100C): "drivers.em:attach"}       # 82544GC copper (e1000_hw.h)
    with pytest.raises(ValueError, match="matched by"):
        match_table(("drivers.hifn", "drivers.hifn"))


def test_both_cards_attach_and_an_unknown_device_is_not_configured():
    spec = MachineSpec(cards=[CardSpec("hifn7751", 1), CardSpec("dmatest", 2),
                              CardSpec("bcm5820", 3), CardSpec("hifn7751", 4)])
    r = run(spec, f"{SC}:autoconf")
    assert [(n, slot, p) for n, slot, _, p in r["softcs"]] == [
        ("hifn0", 1, "Hifn 7751"), ("ubsec0", 3, "Broadcom 5820"), ("hifn1", 4, "Hifn 7751")]
    ident = f"{dmatest.VENDOR_ID:04x}:{dmatest.DEVICE_ID:04x}"
    assert [m for m in r["msgbuf"] if "not configured" in m] \
        and all(ident in m and "dev 2" in m for m in r["msgbuf"] if "not configured" in m)
    # each softc registered with OCF under its own driver id
    cids = [cid for _, _, cid, _ in r["softcs"]]
    assert len(set(cids)) == 3 and all(c >= 0 for c in cids)
    want = sorted([CRYPTO_DES_CBC, CRYPTO_3DES_CBC, CRYPTO_SHA1_HMAC])
    assert all(algs == want for algs in r["registered"].values())


def test_softcs_are_crypto_drivers():
    assert issubclass(drivers.hifn.HifnSoftc, CryptoDriver)
    assert issubclass(drivers.ubsec.Ubsec, CryptoDriver)


# ---------------------------------------------------------------- on the bus
def _writable(reg):
    return any(f.access is not Access.RO for f in reg.fields) or not reg.fields


def test_every_mmio_the_drivers_make_is_a_register_of_the_header():
    """Boot both cards, run requests on each; decode every MMIO address with
    the devices' BARs: each is a register of the card's header, each write
    goes to a register with a field software may write, and every
    configuration cycle is a dword of the PCI header."""
    spec = MachineSpec(cards=[CardSpec("bcm5820", 1), CardSpec("hifn7751", 2)])
    cs = [c for c in cases(40) if c["cipher"] or c["mac"]][:4]
    r = run(spec, f"{SC}:register_trace", {"cases": cs})
    assert [list(a) for a in r["answers"]] == [[0, *expected(c)] for c in cs]
    assert r["drivers"] == ["hifn0", "ubsec0"]             # sessions spread over both cards
    r2 = run(spec, f"{SC}:autoconf")
    blocks = {(ubsecreg.VENDOR_ID, ubsecreg.DEVICE_ID): {0: ubsecreg.UBSEC_REGS},
              (hifn7751reg.VENDOR_ID, hifn7751reg.DEVICE_ID): {0: hifn7751reg.BAR0,
                                                               1: hifn7751reg.BAR1}}
    bars = []
    for slot, vendor, device, bs in r2["devices"]:
        for index, addr, size in bs:
            bars.append((addr, size, index, blocks[(vendor, device)][index]))
    header = {r.offset for r in pcireg.TYPE0_HEADER}
    bad, seen = [], set()
    for kind, addr, value, be in r["accesses"]:
        if kind.startswith("cfg"):
            if addr & 0xFF not in header:
                bad.append((kind, hex(addr)))
            continue
        hit = [(index, block, addr - base) for base, size, index, block in bars
               if base <= addr < base + size]
        if not hit:
            bad.append((kind, hex(addr), "outside every BAR"))
            continue
        index, block, off = hit[0]
        reg = block.at(off, index)
        if reg is None:
            bad.append((kind, hex(addr), f"no register at BAR{index}+{off:#x}"))
            continue
        if kind == "mmio_write" and not _writable(reg):
            bad.append((kind, reg.name, "read-only"))
        seen.add(reg.name)
    assert bad == []
    # the trace covers both cards' data path, not just attach
    assert {"MCR1", "STAT", "CTRL", "DMA_CSR", "PUSTAT", "CRAR"} <= seen
