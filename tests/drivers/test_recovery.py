"""Both drivers recover from faults behind their back (docs/reliability.md).

Each case: processes loop on CIOCCRYPT, a fault is injected at a simulated
time, and afterwards no process is asleep, every request ended with a
verified result or an errno, nothing completed twice, and a probe batch on
the same card completes with results checked against ``cryptography``. The
watchdog bound is shortened with the ``watchdog_us`` driver option so the
cases fit pysim; the derived bound is checked on its own.
"""

import pytest

from drivers import hifn as H, ubsec as U
from hw.machine import CardSpec, MachineSpec
from sim.experiment import run
from sim.kernel.errno import EINVAL, EIO, ETIMEDOUT

SC = "tests.drivers.fault_scenarios:loop_with_fault"


def machine(card):
    return MachineSpec(clock_mhz=66 if card == "bcm5820" else 33, cards=[CardSpec(card, 1)])


def _recovered(r, errnos=(ETIMEDOUT, EIO)):
    assert r["asleep"] == [], r["msgs"]
    assert r["wrong"] == 0 and r["dup_done"] == 0 and r["raised"] == [] and r["checker"] == []
    assert set(r["errnos"]) <= set(errnos), r
    assert r["probe"] and all(e == 0 and ok for e, ok in r["probe"]), (r["probe"], r["msgs"])
    assert r["struck_at_us"], "the fault never happened"
    assert r["driver"]["on_chip"] == 0


def _run(card, fault, backend="pysim", **kw):
    opts = {"ubsec" if card == "bcm5820" else "hifn": {"watchdog_us": kw.pop("wd_us", 40)}}
    return run(machine(card), SC, dict(fault=fault, driver_options=opts, **kw), backend=backend)


# ---------------------------------------------------------------- ubsec
def test_ubsec_ctrl_reset_behind_driver_times_out_and_serves_again():
    """Three processes on a BCM5820; CTRL RESET at 60 µs drops the records on
    the chip. Before the watchdog all three slept forever."""
    r = _run("bcm5820", "ubsec-ctrl-reset", ops=5, size=64, until_us=600)
    _recovered(r, errnos=(ETIMEDOUT,))
    assert r["errnos"] == [ETIMEDOUT] and r["requests"] == 15
    assert r["driver"]["timeouts"] >= 1 and r["driver"]["resets"] >= 2
    assert any("no completion" in m for m in r["msgs"])


@pytest.mark.verilator
def test_ubsec_ctrl_reset_default_bound_verilator():
    """The full-length reproducer on the derived bound: 3 processes x 50 ops."""
    r = run(machine("bcm5820"), SC, dict(fault="ubsec-ctrl-reset", ops=50, size=256,
                                         until_us=20000), backend="verilator")
    _recovered(r, errnos=(ETIMEDOUT,))
    assert r["requests"] == 150 and r["ok"] >= 140


def test_ubsec_watchdog_bound_derived_from_outstanding_work():
    # 4 x (bytes at 310 Mbit/s) + 1 ms
    assert U.WD_FACTOR == 4 and U.WD_MARGIN_PS == 1_000_000_000
    assert int(U.WD_FACTOR * 65535 * 8e6 / U.DATASHEET_MBPS) + U.WD_MARGIN_PS \
        == pytest.approx(4 * 65535 * 8 / 310e6 * 1e12 + 1e9, rel=1e-6)


# ---------------------------------------------------------------- hifn
@pytest.mark.parametrize("fault,at_us", [("hifn-puctrl-reset", 60), ("hifn-rings-off", 60),
                                         ("hifn-res-novalid", 20), ("hifn-session-ffff", 20)])
def test_hifn_recovers(fault, at_us):
    """PUCTRL reset, all rings disabled in DMA_CSR (the driver's busy flags go
    stale), a result descriptor handed over without VALID, a command whose
    session word is 0xFFFF: each wedged the card for good before the watchdog."""
    r = _run("hifn7751", fault, ops=3, size=64, until_us=900, procs=2, at_us=at_us)
    # a chip that refuses the 0xFFFF command (CMDINVAL) answers EINVAL instead
    _recovered(r, errnos=(ETIMEDOUT, EINVAL))
    assert r["errnos"], "the fault cost no request: it did not bite"
    d = r["driver"]
    assert d["timeouts"] >= 1 and d["recoveries"] >= 1 or r["errnos"] == [EINVAL], r["msgs"]


# ---------------------------------------------------------------- all ones
@pytest.mark.parametrize("card", ["bcm5820", "hifn7751"])
@pytest.mark.parametrize("fault", ["mse-off-60us", "mse-off"])
def test_all_ones_registers_quiesce_and_recover(card, fault):
    """Memory Space Enable off (for 60 µs, or for good) while the card raises
    INTA#: the handler reads all ones. ubsec took it for a DMA error (a
    livelock in interrupt context, or EFAULT with the card never reset); hifn
    declined it and the line stayed masked. Now the driver quiesces the card
    through configuration space, resets it and restores the command register."""
    r = _run(card, fault, ops=4, size=64, until_us=900, procs=2, at_us=40)
    _recovered(r, errnos=(EIO,))
    d = r["driver"]
    assert d["gone"] == 1 and d["recoveries"] == 1 and d["timeouts"] == 0
    assert any("all ones" in m for m in r["msgs"])
    if card == "bcm5820":
        assert d["dma_errors"] == 0
