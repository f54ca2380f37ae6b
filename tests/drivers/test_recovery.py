"""Both drivers recover from faults behind their back (docs/reliability.md).

Each case: processes loop on CIOCCRYPT, a fault is injected at a simulated
time, and afterwards no process is asleep, every request ended with a
verified result or an errno, nothing completed twice, and a probe batch on
the same card completes with results checked against ``cryptography``.
On pysim the watchdog bound is shortened with the ``watchdog_us`` driver
option so a case fits in seconds; on Verilator the cases run at a larger
load on the bound the drivers derive themselves.
"""

import pytest

from drivers import hifn as H, ubsec as U
from drivers.pci import watchdog_bound
from hw.machine import CardSpec, MachineSpec
from sim.experiment import run
from sim.kernel.errno import EFAULT, EINVAL, EIO, ETIMEDOUT

SC = "tests.drivers.fault_scenarios:loop_with_fault"
#: the load on Verilator: 3 processes x 12 ops on the derived bound
FULL = dict(procs=3, ops=12, size=256, until_us=30_000)


def machine(card):
    return MachineSpec(clock_mhz=66 if card == "bcm5820" else 33, cards=[CardSpec(card, 1)])


def _recovered(r, errnos):
    assert r["struck_at_us"], "the fault never happened"
    assert r["asleep"] == [], r["msgs"]
    assert r["wrong"] == 0 and r["dup_done"] == 0 and r["raised"] == [] and r["checker"] == []
    assert set(r["errnos"]) <= set(errnos), r
    assert r["probe"] and all(e == 0 and ok for e, ok in r["probe"]), (r["probe"], r["msgs"])
    assert r["driver"]["on_chip"] == 0


def _pysim(card, fault, **kw):
    """A short case on pysim, with a 40 µs watchdog bound."""
    opts = {"ubsec" if card == "bcm5820" else "hifn": {"watchdog_us": 40}}
    return run(machine(card), SC, dict(fault=fault, driver_options=opts, **kw))


def _verilator(card, fault, **kw):
    return run(machine(card), SC, dict(FULL, fault=fault, **kw), backend="verilator")


# ---------------------------------------------------------------- the bound
@pytest.mark.parametrize("mod", [U, H])
def test_watchdog_bound_is_four_times_the_datasheet_time_plus_1ms(mod):
    nbytes = 65535
    want_ps = 4 * nbytes * 8 / (mod.DATASHEET_MBPS * 1e6) * 1e12 + 1e9
    assert watchdog_bound(nbytes, mod.DATASHEET_MBPS) == pytest.approx(want_ps, rel=1e-9)
    assert (U.DATASHEET_MBPS, H.DATASHEET_MBPS) == (310.0, 83.0)


# ---------------------------------------------------------------- pysim
def test_ubsec_ctrl_reset_behind_driver_times_out_and_serves_again():
    """Three processes on a BCM5820; CTRL RESET at 60 µs drops the records on
    the chip. Before the watchdog all three slept forever."""
    r = _pysim("bcm5820", "ubsec-ctrl-reset", ops=5, size=64, until_us=600)
    _recovered(r, errnos=(ETIMEDOUT,))
    assert r["errnos"] == [ETIMEDOUT] and r["requests"] == 15
    assert r["driver"]["timeouts"] >= 1 and r["driver"]["resets"] >= 2
    assert any("no completion" in m for m in r["msgs"])


def test_hifn_rings_disabled_behind_driver_pysim():
    """All rings disabled in DMA_CSR: the driver's busy flags go stale and the
    chip polls nothing; the watchdog resets it and the rings come back."""
    r = _pysim("hifn7751", "hifn-rings-off", ops=3, size=64, until_us=900, procs=2)
    _recovered(r, errnos=(ETIMEDOUT,))
    assert r["driver"]["timeouts"] >= 1 and r["driver"]["recoveries"] >= 1


# ---------------------------------------------------------------- Verilator
@pytest.mark.verilator
def test_ubsec_ctrl_reset_default_bound_verilator():
    """The full-length reproducer on the derived bound: 3 processes x 50 ops."""
    r = _verilator("bcm5820", "ubsec-ctrl-reset", ops=50)
    _recovered(r, errnos=(ETIMEDOUT,))
    assert r["requests"] == 150 and r["ok"] >= 140 and r["driver"]["timeouts"] >= 1


@pytest.mark.verilator
def test_ubsec_particle_self_loop_ends_the_request_only_verilator():
    """A zero-length input particle linked to itself: the card loops on the
    chain (or, bounded, reports a DMA/record error); the request ends with an
    errno, the others and the card carry on."""
    r = _verilator("bcm5820", "ubsec-particle-loop", at_us=20)
    _recovered(r, errnos=(ETIMEDOUT, EFAULT, EIO))
    assert r["errnos"] and r["requests"] == 36 and r["ok"] >= 30


@pytest.mark.verilator
@pytest.mark.parametrize("fault,at_us", [("hifn-puctrl-reset", 60), ("hifn-rings-off", 60),
                                         ("hifn-res-novalid", 20), ("hifn-session-ffff", 20)])
def test_hifn_recovers_verilator(fault, at_us):
    """PUCTRL reset, all rings disabled in DMA_CSR, a result descriptor handed
    over without VALID, a command whose session word is 0xFFFF: each wedged
    the card for good before the watchdog."""
    r = _verilator("hifn7751", fault, at_us=at_us)
    # a chip that refuses the 0xFFFF command (CMDINVAL) answers EINVAL instead
    _recovered(r, errnos=(ETIMEDOUT, EINVAL))
    assert r["errnos"], "the fault cost no request: it did not bite"
    d = r["driver"]
    assert d["timeouts"] >= 1 and d["recoveries"] >= 1 or r["errnos"] == [EINVAL], r["msgs"]


@pytest.mark.verilator
@pytest.mark.parametrize("card", ["bcm5820", "hifn7751"])
@pytest.mark.parametrize("fault", ["mse-off-60us", "mse-off"])
def test_memory_space_off_recovers_verilator(card, fault):
    """Memory Space Enable off for 60 µs or for good under load. Either the
    card raised INTA# meanwhile and the handler read all ones (EIO at once), or
    a register write was lost and nothing moved (the watchdog: ETIMEDOUT);
    never a phantom DMA error, a masked line or a sleeping process."""
    r = _verilator(card, fault, at_us=40)
    _recovered(r, errnos=(EIO, ETIMEDOUT))
    d = r["driver"]
    assert d["recoveries"] == 1 and d["gone"] + d["timeouts"] == 1
    assert d.get("dma_errors", 0) == 0 and d.get("aborts", 0) == 0


@pytest.mark.parametrize("card", ["bcm5820", "hifn7751"])
def test_all_ones_registers_quiesce_and_recover(card):
    """Memory Space Enable off for good while the card raises INTA#: the
    handler reads all ones. ubsec took it for a DMA error (a livelock in
    interrupt context, 21 resets in 3 ms; with a 60 µs outage EFAULT with the
    card never reset); hifn declined it and the line stayed masked. Now the
    driver quiesces the card through configuration space, resets it and
    restores the command register."""
    r = _pysim(card, "mse-off", ops=4, size=64, until_us=900, procs=2, at_us=40)
    _recovered(r, errnos=(EIO,))
    d = r["driver"]
    assert d["gone"] == 1 and d["recoveries"] == 1 and d["timeouts"] == 0
    assert d.get("dma_errors", 0) == 0
    assert any("all ones" in m for m in r["msgs"])
