"""The 82544GC-class NIC in a machine, through the Host API only.

The non-slow cases run on Verilator, except the register walk, which runs on
both backends and must agree cycle for cycle; the slow ones on pysim (the phy
stream is watched by a second Amaranth testbench, so pysim only).

Frames go through the TX ring, the MAC in loopback (RCTL.LBM)
and the RX ring; bytes and FCS are checked against the frames sent and
zlib.crc32. The PCI protocol checker must stay silent.
"""

import pytest

from hw.cards.em8254xreg import (CTRL, STATUS, EECD, RAH0, ICR_TXDW, ICR_TXQE, ICR_RXT0,
                                 ICR_RXO, ICR_LSC, ICR_RXDMT0, ITR_UNIT_PS, eeprom_image)
import hw.machine
from hw.machine import CardSpec, MachineSpec
from sim.experiment import run

SC = "tests.hw.nic.em_scenarios"
MAC = "0002b3aabbcc"


#: the backend of the non-slow cases (one build, shared with tests/drivers/test_em.py)
FAST = "verilator"


def machine(clock=66):
    # 2 MiB of DRAM and this MAC: the machine of tests/drivers/test_em.py too
    return MachineSpec(clock_mhz=clock, dram_bytes=2 << 20,
                       cards=[CardSpec("em82544", 1, {"mac": MAC, "bus_mhz": clock})])


@pytest.mark.verilator
def test_registers_reset_values_and_read_to_clear():
    """Also the NIC's pysim = Verilator case: the same results and cycle count."""
    r = run(machine(), f"{SC}:register_basics")
    v = run(machine(), f"{SC}:register_basics", backend="verilator")
    assert {k: x for k, x in r.items() if not k.startswith("_")} == \
        {k: x for k, x in v.items() if not k.startswith("_")}
    assert r["_cycles"] == v["_cycles"]
    assert r["checker"] == []
    assert r["ident"] == [0x8086, 0x100C, 0x020000]
    assert r["CTRL"] == 0 and r["ICR"] == 0 and r["IMS"] == 0 and r["RCTL"] == 0
    assert r["STATUS"] == STATUS.bits(fd=1, speed=2, pci66=1)     # link down, 32-bit, 66 MHz
    assert r["EECD"] == EECD.pres.mask
    assert r["RAL0"] == 0xAAB30200 and r["RAH0"] == RAH0.av.mask | 0xCCBB
    words = eeprom_image(bytes.fromhex(MAC))
    assert [w >> 16 for w in r["eerd"]] == [words[0], words[1], words[2], words[0x3F], 0xFFFF]
    assert all(w & 0x10 for w in r["eerd"])                       # DONE
    assert r["irq_masked"] == 0                                   # causes, no mask
    assert r["icr_1"] == ICR_TXQE | ICR_RXO and r["icr_2"] == 0
    assert r["ims"] == ICR_TXDW | ICR_LSC
    assert r["irq_on"] == 1 and r["irq_off"] == 0 and r["icr_3"] == 0
    assert r["status_up"] & STATUS.lu.mask and r["icr_lsc"] & ICR_LSC
    assert r["GPRC"] == r["TPT"] == r["RDH"] == r["TDLEN"] == 0
    assert r["after_reset"] == [0, 0, 0, 0xAAB30200]


def _check_loopback(r, n):
    assert r["checker"] == []
    assert r["got"] == r["sent"]                                  # bytes and FCS
    assert r["status"] == [[1, 1, 0]] * n
    assert r["tx_dd"] and all(r["tx_dd"]) and r["tdh"] == r["tdt"]
    assert r["icr"] & (ICR_TXDW | ICR_TXQE | ICR_RXT0) == ICR_TXDW | ICR_TXQE | ICR_RXT0
    octets = sum(len(s) // 2 for s in r["sent"])
    st = r["stats"]
    assert st["GPTC"] == st["TPT"] == st["GPRC"] == st["TPR"] == n
    assert (st["GOTCL"], st["GORCL"], st["GOTCH"], st["GORCH"]) == (octets, octets, 0, 0)
    assert st["CRCERRS"] == st["MPC"] == 0
    # GORCH's read cleared the octet count; GPTC/GPRC cleared by their reads
    assert r["stats_again"] == [0, 0, 0]


@pytest.mark.verilator
def test_mac_loopback_small_frames_through_the_rings():
    r = run(machine(), f"{SC}:loopback", {"sizes": [60, 61, 62, 63, 20], "segs": 1},
            backend=FAST)
    _check_loopback(r, 5)


@pytest.mark.slow
def test_mac_loopback_full_size_segments_and_alignments():
    r = run(machine(), f"{SC}:loopback", {"sizes": [1514, 64, 1000], "segs": 3,
                                          "rx_offset": 2})
    _check_loopback(r, 3)
    r = run(machine(33), f"{SC}:loopback", {"sizes": [1514, 127], "segs": 2, "rx_offset": 1})
    _check_loopback(r, 2)


@pytest.mark.slow
def test_receive_fifo_overrun_without_descriptors():
    r = run(machine(), f"{SC}:overrun", {"frames": 3})
    assert r["checker"] == []
    assert r["icr"] & ICR_RXO and r["mpc"] == 1 and r["rnbc"] >= 1 and r["tpr"] == 3
    assert r["rdh"] == 0
    assert r["rdh_after"] == 2 and r["delivered_ok"] == [True, True]


@pytest.mark.verilator
def test_itr_spaces_interrupt_assertions():
    itr = 100                                                     # 25.6 us
    r = run(machine(), f"{SC}:throttle", {"itr": itr, "frames": 3, "gap_us": 4.0},
            backend=FAST)
    assert r["checker"] == []
    times = [t for t, icr in r["edges"]]
    assert len(times) >= 2 and all(icr & ICR_TXDW for _, icr in r["edges"])
    period = 15_000
    for a, b in zip(times, times[1:]):
        assert b - a >= itr * ITR_UNIT_PS - period
    # without ITR the three frames interrupt three times, ~4 us apart
    r = run(machine(), f"{SC}:throttle", {"itr": 0, "frames": 3, "gap_us": 4.0},
            backend=FAST)
    assert len(r["edges"]) == 3


US = 1_000_000          # ps


@pytest.mark.slow
def test_rdtr_delays_rxt0_and_each_frame_restarts_it():
    # RDTR 20 x 1.024 us: one frame, RXT0 ~20.5 us after its arrival (a
    # frame's loopback takes ~2 us); three frames 5 us apart: one interrupt,
    # RDTR after the last
    r = run(machine(), f"{SC}:moderation", {"rdtr": 20})
    (t, icr), = r["edges"]
    assert icr & ICR_RXT0 and 20.48 * US <= t - r["starts"][0] <= 24 * US
    r = run(machine(), f"{SC}:moderation", {"rdtr": 20, "frames": 3, "gap_us": 5.0})
    (t, icr), = r["edges"]
    assert 20.48 * US <= t - r["starts"][2] <= 24 * US
    # RADV 8 caps it: ~8 us after the first frame, though RDTR keeps restarting
    r = run(machine(), f"{SC}:moderation", {"rdtr": 20, "radv": 8, "frames": 3,
                                           "gap_us": 5.0})
    t = r["edges"][0][0]
    assert 8.19 * US <= t - r["starts"][0] <= 11 * US
    assert r["checker"] == []


@pytest.mark.slow
def test_tidv_delays_txdw_for_ide_descriptors_and_rxdmt0():
    r = run(machine(), f"{SC}:moderation", {"tidv": 10, "ims": ICR_TXDW, "ide": True})
    (t, icr), = r["edges"]
    assert icr & ICR_TXDW and 10.24 * US <= t - r["starts"][0] <= 13 * US
    # TADV 8 caps three IDE frames 5 us apart that keep restarting TIDV 20
    r = run(machine(), f"{SC}:moderation", {"tidv": 20, "tadv": 8, "ims": ICR_TXDW,
                                           "ide": True, "frames": 3, "gap_us": 5.0})
    assert 8.19 * US <= r["edges"][0][0] - r["starts"][0] <= 11 * US
    # without IDE the same TIDV does not delay it
    r = run(machine(), f"{SC}:moderation", {"tidv": 10, "ims": ICR_TXDW, "ide": False})
    assert r["edges"][0][0] - r["starts"][0] < 5 * US
    # 8-descriptor ring, 7 buffers: the 3rd frame leaves 4 = half free: RXDMT0
    r = run(machine(), f"{SC}:moderation", {"ims": ICR_RXDMT0, "frames": 3, "gap_us": 3.0})
    assert r["rdh"] == 3 and len(r["edges"]) == 1 and r["edges"][0][1] & ICR_RXDMT0


@pytest.mark.slow
def test_idle_skipping_changes_nothing(monkeypatch):
    """The card's quiet/quiet_for against a run without skipping: the same
    interrupts at the same times, the same cycle count."""
    args = {"itr": 100, "frames": 3, "gap_us": 4.0}
    monkeypatch.setenv("OCFSIM_SKIP", "0")
    a = run(machine(), f"{SC}:throttle", args)
    monkeypatch.setenv("OCFSIM_SKIP", "1")
    b = run(machine(), f"{SC}:throttle", args)
    assert a["edges"] == b["edges"] and a["_cycles"] == b["_cycles"]
    assert b["_speed"].get("skipped", 0) > 0


def _run_watching_phy(spec, entry, args):
    """sim.experiment.run on pysim with a second testbench recording the
    card's phy.tx beats, stamped with the machine's cycle counter."""
    from amaranth.sim import Simulator
    from sim.backend_pysim import PysimBackend
    from sim.experiment import execute
    top = hw.machine.Machine(spec)
    card = top.cards[0]
    sim = Simulator(top)
    sim.add_clock(spec.period_ps * 1e-12)
    out, beats, done = {}, [], []

    async def host(ctx):
        out["r"] = await execute(PysimBackend(ctx, top, spec.period_ps), spec.to_dict(),
                                 entry, args)
        done.append(1)

    async def watch(ctx):
        while not done:
            _, _, v, p, cyc = await ctx.tick().sample(card.phy.tx.valid, card.phy.tx.payload,
                                                      top.cycle)
            if v:
                beats.append((cyc, p.data, p.n, p.first, p.last))
    sim.add_testbench(host)
    sim.add_testbench(watch)
    sim.run()
    return out["r"], beats


@pytest.mark.slow
def test_frames_on_the_cards_phy_stream():
    """What the card puts on phy.tx: preamble, SFD, the frame, its FCS
    (zlib.crc32), no closer than wire time plus the gap."""
    import zlib
    from hw.cards.em8254xreg import BYTE_PS, IFG_BYTES, PREAMBLE_BYTES
    r, beats = _run_watching_phy(machine(), f"{SC}:loopback", {"sizes": [60, 200, 61]})
    _check_loopback(r, 3)
    wire, cur = [], None
    for cyc, d, n, first, last in beats:
        if first:
            cur = [cyc, b""]
        cur[1] += d.to_bytes(4, "little")[:n]
        if last:
            wire.append(tuple(cur))
    assert [raw[:PREAMBLE_BYTES] for _, raw in wire] == [b"\x55" * 7 + b"\xd5"] * 3
    bodies = [raw[PREAMBLE_BYTES:] for _, raw in wire]
    assert [b.hex() for b in bodies] == r["sent"]
    assert all(zlib.crc32(b[:-4]).to_bytes(4, "little") == b[-4:] for b in bodies)
    for (s0, raw), (s1, _) in zip(wire, wire[1:]):
        assert s1 - s0 >= (len(raw) + IFG_BYTES) * BYTE_PS / 15_000 - 1
