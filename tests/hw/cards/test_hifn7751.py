"""Hifn 7751-like card RTL through the Host API (config, MMIO, DRAM, INTA#).

Each case runs on pysim (small) and, where marked, on Verilator (larger)."""

import pytest

from drivers import hifn as H
from hw import structs
from hw.cards import hifn7751 as card
from hw.cards import hifn7751reg as reg
from hw.dma import hifn_rings as rings
from hw.machine import CardSpec, MachineSpec
from sim.experiment import run
from tests.hw.cards.both import run_on_both

SC = "tests.hw.cards.hifn_scenarios"

#: pysim by default; the Verilator run of the same case is ``slow`` (each
#: Verilator run costs ~20 s of elaboration and Verilog export)
slow_verilator = pytest.mark.parametrize("backend", [
    "pysim", pytest.param("verilator", marks=[pytest.mark.verilator, pytest.mark.slow])])


def machine(**params):
    return MachineSpec(cards=[CardSpec("hifn7751", 1, params)])


def test_driver_command_buffer_is_what_the_rtl_views():
    """The driver's command buffer, read with the header's layouts (the RTL's
    views), and its bytes where hifn7751reg.h puts them."""
    buf = H.pack_command(session=0x123, slen=0x2_1234, dlen=0x1_5678, decode=True,
                         crypt=(structs.pack_int(reg.CryptMasks, mode=reg.CryptMode.CBC),
                                8, 0x1_0000))
    lo, hi = int.from_bytes(buf[0:4], "little"), int.from_bytes(buf[4:8], "little")
    assert lo & 0xFFFF == 0x0800 | 0x2000          # HIFN_BASE_CMD_CRYPT | _DECODE
    assert (lo >> 16) & 0xFFF == 0x123 and lo >> 30 == 2 and (lo >> 28) & 3 == 1
    assert hi == 0x5678 << 16 | 0x1234
    base = structs.unpack(reg.BaseCommand, buf)
    assert base["masks"]["crypt"] == 1 and base["masks"]["decode"] == 1
    assert base["masks"]["mac"] == 0 and base["session"] == 0x123
    assert (base["src_hi"], base["dst_hi"]) == (2, 1)
    assert (base["src_count"], base["dst_count"]) == (0x1234, 0x5678)
    crypt = structs.unpack(reg.CryptCommand, buf[8:])
    assert crypt["masks"]["mode"] == reg.CryptMode.CBC.value
    assert (crypt["masks"]["count_hi"], crypt["header_skip"], crypt["source_count"]) == \
        (1, 8, 0)


def test_engine_parameters_follow_the_bus_clock():
    assert card.engine_params_for(33)[:2] == (2, 1)     # 24 cycles / 3DES block at 33 MHz
    assert card.engine_params_for(66)[:2] == (1, 1)     # 48 cycles at 66 MHz: same rate


@slow_verilator
def test_registers_unlock_and_csr(backend):
    r = run(machine(), f"{SC}:registers", backend=backend)
    assert (r["vendor"], r["device"], r["class"]) == (0x13A3, 0x0005, 0x100000)
    assert [tuple(b) for b in r["bars"]] == [(0, 4096), (1, 4096)]
    assert r["pustat_locked"] >> 8 == 0x30 and r["pustat_unlocked"] >> 8 == 0x11
    assert (r["pucnfg"] >> 13) & 7 == 7                  # 2048 sessions
    assert r["rar"] == r["bases"]
    assert r["csr_idle"] == 0
    assert r["csr_enabled"] == reg.csr_field(reg.Ring.CMD, "ctrl").value(reg.RingCtrl.ENA.value) | \
        reg.csr_field(reg.Ring.DST, "ctrl").value(reg.RingCtrl.ENA.value)
    assert r["csr_wait"] & reg.DMA_CSR.c_wait.mask
    assert r["csr_cleared"] == 0
    assert r["checker"] == []


def test_packets_byte_exact_mixed(backend):
    """Random sizes, keys, IVs, algorithms, both directions, with/without HMAC,
    skips and trailers; more packets than the (4-slot) rings hold."""
    n = 6 if backend == "pysim" else 60
    r = run(machine(), f"{SC}:packets", {"n": n, "seed": 11}, backend=backend)
    assert r["ok"] and r["failures"] == []
    assert r["irqs"] == n                                 # one interrupt per result
    assert r["checker"] == []


@slow_verilator
@pytest.mark.parametrize("segs", [3])
def test_scatter_gather_and_ring_wrap(backend, segs):
    n = 4 if backend == "pysim" else 40
    r = run(machine(), f"{SC}:packets",
            {"n": n, "seed": 3, "segs": segs, "size": 40 if backend == "pysim" else 200,
             "sizes": {"c": 3, "s": 4, "r": 3, "d": 5}}, backend=backend)
    assert r["ok"] and r["failures"] == []
    assert r["irqs"] == n
    assert r["checker"] == []


@slow_verilator
def test_key_cache_and_cbc_chain(backend):
    r = run(machine(), f"{SC}:key_cache", backend=backend)
    assert r["failures"] == []
    # 3DES+HMAC with keys: 8+8+8+64+24+8; without: 8+8+8+8; DES with keys: 8+8+8+8
    assert r["cmd_lens"][:3] == [120, 32, 32]
    assert r["cmd_lens"][-1] == 16                       # base + crypt only: the chain IV
    assert r["irqs"] == r["n"]
    assert r["checker"] == []


@slow_verilator
def test_poll_rate_follows_dma_cnfg(backend):
    fast = run(machine(), f"{SC}:poll_rate", {"freq": 1}, backend=backend)
    slow = run(machine(), f"{SC}:poll_rate", {"freq": 4}, backend=backend)
    # 60 µs = 2000 clocks at 33 MHz: every ~256 (+ read) clocks vs every ~1024
    assert 6 <= fast["polls"] <= 9
    assert 1 <= slow["polls"] <= 3
    assert fast["polls_disabled"] == 0 and slow["polls_disabled"] == 0
    assert fast["checker"] == [] and slow["checker"] == []


@slow_verilator
def test_invalid_command_and_overrun_complete_with_flags(backend):
    r = run(machine(), f"{SC}:errors", backend=backend)
    assert r["done"]
    assert r["flags"][0] & card.R_CMDINVAL
    assert r["flags"][1] & card.R_DSTOVERRUN
    assert r["flags"][2] == 0 and r["failures"] == []
    assert r["puisr"] & card.PUISR_CMDINVAL and r["puisr"] & card.PUISR_DSTOVER
    assert r["csr_seen"] & reg.DMA_CSR.d_over.mask
    assert r["checker"] == []


@slow_verilator
def test_dma_error_aborts_and_reset_recovers(backend):
    r = run(machine(), f"{SC}:abort", backend=backend)
    assert r["result_done"] == [True, False, False]      # halted at the bad packet
    assert r["first_failures"] == []
    assert r["csr_seen"] & reg.DMA_CSR.s_abort.mask
    assert r["cfg_status"] & (1 << 13)                   # received master abort
    assert r["recovered"] and r["failures"] == []
    assert r["checker"] == []


def test_bus_master_disabled_aborts_and_reset_recovers(backend):
    """PCI 2.3 §6.2.2: with command bit 2 clear the chip starts no access; the
    refused DMA raises a ring ABORT (and its interrupt), not a silent stall;
    after the abort recovery new packets complete."""
    r = run(machine(), f"{SC}:bme_outage", backend=backend)
    assert r["starts_while_off"] == 0
    assert r["csr_seen"] & reg.DMACSR_ABORTS and r["irqs"] >= 1
    assert r["recovered"] and r["failures"] == []
    assert r["checker"] == []


# (offset in the command buffer of a 3DES + HMAC packet of 32 bytes, new bytes)
BAD_COMMANDS = {
    "session-word-ffff": [[2, "ffff"]],         # session past the RAM, counts + 3 << 16
    "count-bits-17-16": [[2, "0140"]],          # session 1, source count + 1 << 16
    "source-count-past-chain": [[4, "6000"]],   # 96 bytes, the LAST segment holds 32
    "mac-past-source": [[12, "0010"]],          # MAC source_count 4096
    "crypt-past-source": [[20, "ffff"]],        # crypt source_count 65535
    "crypt-skip-past-source": [[18, "ff00"]],   # crypt header_skip 255
}


@pytest.mark.parametrize("name", list(BAD_COMMANDS))
def test_commands_the_chip_cannot_finish_are_cmdinval(name):
    """Counts or regions beyond what the command's LAST-terminated source chain
    holds: a CMDINVAL result at once (no wait for data, no zero fill of up to
    2^18 bytes), and the next packet is served."""
    r = run(machine(), f"{SC}:bad_command", {"patch": BAD_COMMANDS[name]}, backend="pysim")
    assert r["done"]
    assert r["flags"][0] & card.R_CMDINVAL and r["flags"][1] == 0
    assert r["puisr"] & card.PUISR_CMDINVAL
    assert r["failures"] == [] and r["checker"] == []


@pytest.mark.parametrize("ring", ["c", "s"])
def test_a_jump_to_itself_aborts_the_ring(ring):
    r = run(machine(), f"{SC}:jump_loop", {"ring": ring}, backend="pysim")
    assert r["csr_seen"] & reg.DMA_CSR.field(f"{ring}_abort").mask
    assert r["recovered"] and r["failures"] == []
    assert r["checker"] == []


@pytest.mark.verilator
@pytest.mark.parametrize("scenario,args", [
    ("bme_outage", {}),
    pytest.param("jump_loop", {"ring": "s"}, marks=pytest.mark.slow),
    pytest.param("bad_command", {"patch": BAD_COMMANDS["session-word-ffff"]},
                 marks=pytest.mark.slow)])
def test_error_paths_identical_on_both_backends(scenario, args):
    """The error paths take the same clocks on pysim and Verilator."""
    a, b = run_on_both(machine(), f"{SC}:{scenario}", args)
    assert a == b and a["_cycles"] > 0


@pytest.mark.verilator
@pytest.mark.slow
def test_16k_3des_throughput_on_verilator():
    """Card alone: ≥ 90% of the configured 3DES rate (88 Mbps at 33 MHz)."""
    r = run(machine(), f"{SC}:packets",
            {"n": 6, "seed": 4, "size": 16384, "cipher": "3des", "mac": False,
             "decrypt": False, "sizes": {"c": 4, "s": 8, "r": 4, "d": 8}},
            backend="verilator")
    assert r["ok"] and r["failures"] == []
    mbps = 8 * r["bytes"] / (r["elapsed_ps"] / 1e12) / 1e6
    assert mbps >= 0.9 * card.CARD_ENGINE_PARAMS["hifn7751"].model_mbps()
