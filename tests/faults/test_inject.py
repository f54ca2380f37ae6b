"""Each fault really happens: seen from outside the plan (config and MMIO reads
through the host bridge), at the simulated time the SPEC names."""

import pytest

from hw.pci.initiator import Status
from ocfsim.machines import crypto_machine, dma_machine
from sim.experiment import run

pytestmark = pytest.mark.verilator

ENTRY = "tests.faults.entries:observe"
BME, MSE = 0x4, 0x2


def _observe(card, faults, reads):
    return run(crypto_machine([card]), ENTRY, {"faults": faults, "reads": reads},
               backend="verilator")


@pytest.mark.parametrize("card, bar, reg", [("bcm5820", 0, 0x14),      # IMOD
                                            ("hifn7751", 1, 0x44)])    # DMA_IER
def test_command_register_outages_and_poke(card, bar, reg):
    value = 0x105 if card == "bcm5820" else 0x1
    r = _observe(card, [f"poke@10us:bar={bar},reg={reg:#x},value={value:#x}",
                        "bme-off@20us+40us", "mse-off@80us+20us"],
                 [[15, "mmio", bar, reg], [30, "command", 0, 0], [70, "command", 0, 0],
                  [90, "command", 0, 0], [90, "mmio", bar, reg], [110, "mmio", bar, reg]])
    seen = [s["value"] for s in r["seen"]]
    assert seen[0] == value                          # the poked register reads it back
    assert not seen[1] & BME and seen[1] & MSE       # bus mastering off inside the window
    assert seen[2] & BME                             # and on again after it
    assert not seen[3] & MSE                         # memory decoding off ...
    assert seen[4] == 0xFFFF_FFFF                    # ... so a read master-aborts (all ones)
    assert seen[5] == value                          # decoding back: the register again
    injected = {e["fault"].split("@")[0]: e["time_us"] for e in r["log"] if e["event"] == "inject"}
    assert 10 <= injected["poke"] < 12 and 20 <= injected["bme-off"] < 22 \
        and 80 <= injected["mse-off"] < 82
    restored = [e["time_us"] for e in r["log"] if e["event"] == "restore"]
    assert 60 <= restored[0] < 62 and 100 <= restored[1] < 102


@pytest.mark.parametrize("card, spec", [("bcm5820", "reset@20us"),
                                        ("hifn7751", "rings-off@20us")])
def test_register_faults_logged_with_their_time(card, spec):
    r = _observe(card, [spec], [[30, "command", 0, 0]])
    (e,) = [e for e in r["log"] if e["event"] == "inject"]
    assert 20 <= e["time_us"] < 22 and e["write"].endswith(
        "0x80000000" if card == "bcm5820" else "0x40404040")


def test_dram_target_abort_knob():
    """The DMA test card's copy ends in target abort while host DRAM aborts."""
    r = run(dma_machine(1), "ocfsim.workloads.dma:dma_copy",
            {"nbytes": 64, "dram_timing": {"abort_every": 1}}, backend="verilator")
    (card,) = r["per_card"]
    assert not card["ok"] and card["err_code"] == Status.TARGET_ABORT
    assert r["breakdown"]["abort"] > 0


def test_target_abort_fault_fails_requests_and_the_card_recovers():
    r = run(crypto_machine(["bcm5820"]), "ocfsim.workloads.devcrypto:devcrypto",
            {"alg": "3des", "size": 256, "ops": 20, "threads": 10,
             "faults": ["target-abort@20us+200us"], "timeout_us": 3000}, backend="verilator")
    assert r["drivers"]["ubsec0"]["dma_errors"] > 0 and r["requests"]["errno"]["EFAULT"] > 0
    assert r["requests"]["lost"] == 0 and r["faults"]["served_after"] and r["ok"]


def test_devcrypto_accounts_every_request_without_faults():
    r = run(crypto_machine(["bcm5820"]), "ocfsim.workloads.devcrypto:devcrypto",
            {"alg": "3des-sha1", "size": 64, "ops": 6, "threads": 3}, backend="verilator")
    assert r["ok"] and r["kernel_catchalls"] == 0 and "faults" not in r
    assert r["interrupts"] == r["interrupts_delivered"] > 0
    assert r["requests"] == {"dispatched": 6, "ok": 6, "wrong": 0, "errno": {},
                             "errno_total": 0, "lost": 0}


def test_lost_interrupt_and_handover_faults_take_effect():
    r = run(crypto_machine(["hifn7751"]), "ocfsim.workloads.devcrypto:devcrypto",
            {"alg": "3des", "size": 64, "ops": 20, "threads": 10,
             "faults": ["lost-irq@20us", "res-novalid@300us"], "timeout_us": 3000},
            backend="verilator")
    events = {(e["fault"].split("@")[0], e["event"]): e for e in r["faults"]["log"]}
    assert events[("lost-irq", "inject")]["dropped"] == "assertion of line 0"
    assert events[("res-novalid", "inject")]["descriptor"].endswith("-> 0x20000020")
    assert r["faults"]["injected"]
    # the card's line was asserted once more than the kernel was told
    assert r["interrupts"] - r["interrupts_delivered"] == 1
    req = r["requests"]
    assert req["dispatched"] == req["ok"] + req["errno_total"] + req["wrong"] + req["lost"]


@pytest.mark.parametrize("card", ["bcm5820", "hifn7751"])
def test_delayed_dram_reads_slow_the_card_and_lose_nothing(card):
    """Host memory answering the card's reads as delayed transactions (PCI
    2.3 §3.3.3.3) for the whole run: every request completes with the right
    bytes (devcrypto checks them against the cryptography package), the
    card's reads are retried (the abort class), and the run takes longer."""
    kw = {"alg": "3des", "size": 256, "ops": 8, "threads": 2}
    plain = run(crypto_machine([card]), "ocfsim.workloads.devcrypto:devcrypto", kw,
                backend="verilator")
    slow = run(crypto_machine([card]), "ocfsim.workloads.devcrypto:devcrypto",
               {**kw, "faults": ["dram-delayed@0us+10ms:delayed=120"]}, backend="verilator")
    for r in (plain, slow):
        req = r["requests"]
        assert r["ok"] and req["ok"] == req["dispatched"] >= 8 and req["lost"] == 0
    assert slow["breakdown"]["abort"] > plain["breakdown"]["abort"]
    assert slow["sim_time_s"] > plain["sim_time_s"]
