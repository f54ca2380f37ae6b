"""The BCM5820-like card at register level, through the Host API only.

Records, contexts and particles come from the ``lib.data`` layouts (not from
the driver); outputs are checked against ``cryptography``/``hmac``. pysim
cases stay small (the 3DES core costs pysim ~100 cycles/s); the Verilator
cases repeat them larger.
"""

import pytest

from hw.cards.ubsecreg import (CTRL, STAT, ERR, ERR_CHAIN, ERR_OUTPUT, MAX_PARTICLES,
                               UBS_MCR_DONE, UBS_MCR_ERROR)
from hw.machine import MachineSpec, CardSpec
from hw.pci.target import STATUS_RX_MASTER_ABORT
from sim.experiment import run
from tests.hw.cards.both import run_on_both

SC = "tests.hw.cards.bcm5820_scenarios"


def machine(dram=1 << 20):
    # OCF paper §5.1: the 5820 sits on a 66 MHz bus (hw.crypto.params)
    return MachineSpec(clock_mhz=66, dram_bytes=dram, cards=[CardSpec("bcm5820", 1)])


def records(backend, dram=1 << 20, **kw):
    r = run(machine(dram), f"{SC}:records", kw, backend=backend)
    assert r["checker"] == []
    assert r["failures"] == []
    assert r["completed"] == kw.get("n_records", 1)
    return r


def test_ids_class_and_registers(backend):
    r = run(machine(), f"{SC}:register_basics", backend=backend)
    assert r["ctrl"] == CTRL.mcr1int.mask | CTRL.dmaerr.mask
    assert r["stat"] == STAT.mcr2_full.mask          # idle, no key engine
    assert r["err"] == 0 and r["mcr2"] == 0
    assert r["stat_after_mcr2"] == STAT.mcr2_full.mask
    assert r["imod"] == 0x6403
    assert r["ctrl_after_reset"] == 0 and r["imod_after_reset"] == 0
    assert r["irq"] == 0 and r["checker"] == []
    r = records(backend, sizes=[8])
    assert r["ident"] == 0x5820_14E4 and r["class"] == 0x0B4000


# (name, kwargs): outbound/inbound, cipher/MAC on/off, offsets, multi-packet
# records, particle chains of several segments at any byte alignment
CASES = [
    ("3des-hmac-out", dict(sizes=[24], inbound=False)),
    ("3des-hmac-in", dict(sizes=[32], inbound=True)),
    ("cipher-only", dict(sizes=[16], mac=False)),
    ("mac-only-odd", dict(sizes=[13], cipher=False, in_segs=3, misalign=True)),
    ("offset-hdr", dict(sizes=[24], offset_words=2)),
    ("chains", dict(sizes=[40], in_segs=4, out_segs=3, misalign=True)),
    ("multi-packet", dict(sizes=[8, 16], pkts_per_record=3)),
]


@pytest.mark.parametrize("name,kw", CASES, ids=[c[0] for c in CASES])
def test_records_byte_exact_pysim(name, kw):
    records("pysim", **kw)


@pytest.mark.verilator
@pytest.mark.parametrize("name,kw", CASES, ids=[c[0] for c in CASES])
def test_records_byte_exact_verilator(name, kw):
    big = dict(kw, sizes=[s * 37 - (s * 37) % 8 for s in kw["sizes"]], n_records=4, seed=11)
    if name == "mac-only-odd":
        big["sizes"] = [13, 501, 1999]
    records("verilator", **big)


@pytest.mark.verilator
def test_long_chains_and_big_packets_verilator():
    records("verilator", dram=4 << 20, sizes=[4096, 16384, 65528], in_segs=9, out_segs=7, misalign=True,
            n_records=3, pkts_per_record=2, seed=3)


def test_mcr1_full_back_pressure(backend):
    n = 6 if backend == "pysim" else 40
    r = records(backend, sizes=[16], n_records=n)
    assert r["full_seen"] > 0          # the queue filled and the host held records back


def test_packet_errors_flag_the_record_and_spare_the_others(backend):
    r = run(machine(), f"{SC}:errors_in_packets", backend=backend)
    assert r["checker"] == [] and r["irq"]
    assert r["stat"] & STAT.mcr1_done.mask
    assert r["flags"] & (UBS_MCR_DONE | UBS_MCR_ERROR) == UBS_MCR_DONE | UBS_MCR_ERROR
    assert r["flags"] >> 8 == ERR_OUTPUT         # the last error of the record
    assert r["res"] == {"good": [], "good2": [], "short_prefix_ok": True}
    assert r["follow_flags"] == UBS_MCR_DONE and r["follow_bad"] == []


@pytest.mark.parametrize("where", ["input", "mcr"])
def test_dma_error_sets_dmaerr_err_and_reset_recovers(backend, where):
    r = run(machine(), f"{SC}:dma_error", {"where": where}, backend=backend)
    assert r["checker"] == [] and r["irq"]
    assert r["stat"] & STAT.dmaerr.mask and not r["stat"] & STAT.mcr1_done.mask
    assert r["stat"] & STAT.mcr1_busy.mask            # halted mid-record
    assert r["err"] == r["expect_err"] | ERR.read.mask
    assert r["flags"] == 0                       # no DONE for the failed record
    assert r["pci_status"] & STATUS_RX_MASTER_ABORT
    assert r["stat_after_reset"] == STAT.mcr2_full.mask
    assert r["irq2"] and r["flags2"] == UBS_MCR_DONE and r["bad2"] == []


def test_interrupt_moderation_n_records_or_t_cycles(backend):
    # N=3: the first three records raise one interrupt, the fourth comes by timer
    r = run(machine(), f"{SC}:moderation", {"imod_n": 3, "imod_t": 3000}, backend=backend)
    assert r["done"] == 4 and r["checker"] == []
    assert r["edges"] == 2
    assert r["stamps"][1] - r["stamps"][0] >= 3000 - 1000
    # T first: a 400-clock timer fires before 8 records complete
    r = run(machine(), f"{SC}:moderation", {"imod_n": 8, "imod_t": 400}, backend=backend)
    assert r["done"] == 4 and r["edges"] >= 2


def test_interrupt_moderation_without_timer_raises_when_idle():
    """N = 8, T = 0 and only 4 records: their interrupt comes when the card
    goes idle, not never."""
    r = run(machine(), f"{SC}:moderation", {"imod_n": 8, "imod_t": 0, "wait_cycles": 50_000},
            backend="pysim")
    assert r["done"] == 4 and r["checker"] == []
    assert 1 <= r["edges"] < 4


def test_bus_master_disabled_is_a_dma_error_and_reset_recovers(backend):
    """PCI 2.3 §6.2.2: with command bit 2 clear the card starts no access; the
    refused DMA is a DMA error (DMAERR, ERR, the record not DONE), not a hang
    at MCR1_BUSY; after CTRL RESET new records complete."""
    r = run(machine(), f"{SC}:bme_outage", backend=backend)
    assert r["checker"] == []
    assert r["starts_while_off"] == 0
    assert r["irq"] and r["stat"] & STAT.dmaerr.mask and not r["stat"] & STAT.mcr1_done.mask
    assert r["err"] != 0
    assert r["flags"] == 0
    assert r["stat_after_reset"] == STAT.mcr2_full.mask
    assert r["irq2"] and r["flags2"] == UBS_MCR_DONE and r["bad2"] == []


@pytest.mark.parametrize("kind", ["in_self", "out_self", "in_first0", "in_long", "out_long"])
def test_chain_errors_are_dma_errors_not_loops(kind):
    """A zero-length particle owing data (self-linked or the record's own) or a
    chain of more than UBS_MAX_SCATTER particles: the record gets ERROR +
    ERR_CHAIN (not DONE), STAT DMAERR, ERR = the particle; reset recovers."""
    r = run(machine(), f"{SC}:chain_error", {"kind": kind}, backend="pysim")
    assert r["checker"] == [] and r["irq"]
    assert r["stat"] & STAT.dmaerr.mask and not r["stat"] & STAT.mcr1_done.mask
    assert r["err"] == r["expect_err"] | ERR.read.mask
    assert r["flags"] == UBS_MCR_ERROR | ERR_CHAIN << 8
    assert r["irq2"] and r["flags2"] == UBS_MCR_DONE and r["bad2"] == []


def test_chains_of_max_particles_are_walked():
    n = MAX_PARTICLES   # 1-byte particles: exactly the limit
    records("pysim", sizes=[n], cipher=False, in_segs=n)
    records("pysim", sizes=[n], mac=False, out_segs=n)


@pytest.mark.verilator
@pytest.mark.parametrize("scenario,args", [("bme_outage", {}), ("chain_error", {"kind": "in_self"})])
def test_error_paths_identical_on_both_backends(scenario, args):
    """The error paths take the same clocks on pysim and Verilator."""
    a, b = run_on_both(machine(), f"{SC}:{scenario}", args)
    assert a == b and a["_cycles"] > 0


# ---------------------------------------------------------------- one-pass TLS (extension)
# (gap, n, pad_len, flags): n + 20 + pad_len + 1 a multiple of 8 (RFC 2246 §6.2.3.2)
TLS_CASES = [(13, 0, 3, 0), (13, 1, 2, 0), (13, 9, 2, 0), (13, 45, 6, 0), (13, 45, 254, 0),
             (4, 20, 7, 0), (14, 3, 0, 0), (0, 8, 3, 0)]


def test_tls_flag_record_byte_exact(backend):
    cases = TLS_CASES if backend == "pysim" else TLS_CASES + [(13, 4000, 3, 0)]
    r = run(machine(), f"{SC}:tls_packets", {"cases": cases}, backend=backend)
    assert r["checker"] == [] and r["irq"]
    assert r["flags"] == UBS_MCR_DONE                     # no error
    assert r["res"] == [{"out_ok": True, "mac_ok": True}] * len(cases)


def test_tls_flag_errors():
    from hw.cards.ubsecreg import ERR_CONTEXT, ERR_LENGTH, UBS_PKTCTX_INBOUND
    # good, bad padding (data | MAC | padding not a multiple of 8), then INBOUND
    r = run(machine(), f"{SC}:tls_packets",
            {"cases": [(13, 9, 2, 0), (13, 9, 1, 0), (13, 9, 2, UBS_PKTCTX_INBOUND)]})
    assert r["checker"] == [] and r["irq"]
    assert r["flags"] & (UBS_MCR_DONE | UBS_MCR_ERROR) == UBS_MCR_DONE | UBS_MCR_ERROR
    assert r["flags"] >> 8 == ERR_CONTEXT                 # the last error of the record
    assert r["res"][0] == {"out_ok": True, "mac_ok": True}
    assert not r["res"][1]["out_ok"] and not r["res"][2]["out_ok"]
    r = run(machine(), f"{SC}:tls_packets", {"cases": [(13, 9, 1, 0)]})
    assert r["flags"] >> 8 == ERR_LENGTH


@pytest.mark.verilator
def test_tls_flag_identical_on_both_backends():
    """A one-pass TLS record takes the same clocks on pysim and Verilator."""
    a, b = run_on_both(machine(), f"{SC}:tls_packets", {"cases": TLS_CASES[:4]})
    assert a == b and a["cycles"] > 0 and a["flags"] == UBS_MCR_DONE
