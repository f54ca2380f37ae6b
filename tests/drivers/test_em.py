"""em driver + 82544GC-class NIC, in MAC loopback through the kernel (the
non-slow cases on Verilator, on the machine of tests/hw/nic/test_em8254x.py,
whose register walk is the NIC's pysim = Verilator case; the slow one on pysim).

The scenarios (below, run inside the simulator) boot a kernel, enumerate the
bus and attach drivers.em directly (no OCF needed); frames sent with em_start come back through the receive ring and
the driver's receive callback, and are compared with what was sent.
"""

import random

import pytest

from drivers import em
from drivers.pci import PciAttachArgs, enumerate_bus
from hw.cards.em8254xreg import ITR, RCTL, TCTL, TIDV, TADV, RADV, TIPG, LBM_MAC
from hw.machine import CardSpec, MachineSpec
from sim.experiment import run
from sim.kernel import Kernel, PWAIT
from sim.kernel.errno import EINVAL, ENOBUFS
from sim.loop import us

SC = "tests.drivers.test_em"
MAC = "0002b3aabbcc"
FAST = "verilator"


def machine():
    return MachineSpec(clock_mhz=66, dram_bytes=2 << 20,
                       cards=[CardSpec("em82544", 1, {"mac": MAC, "bus_mhz": 66})])


def _frames(seed, sizes, dest):
    rng = random.Random(seed)
    return [dest + bytes(rng.getrandbits(8) for _ in range(s - 6)) for s in sizes]


def _split(frame, segs, rng):
    cuts = sorted(rng.sample(range(1, len(frame)), segs - 1)) if segs > 1 else []
    return [frame[a:b] for a, b in zip([0] + cuts, cuts + [len(frame)])]


async def scenario(host, sizes=(60, 61, 1514), segs=1, batches=1, options=None,
                   flood=0, bad=False, wait_us=2000):
    kernel = Kernel(host.loop, host.memory)
    host.on_interrupt(kernel.interrupt)
    chan = object()
    got, out = [], {}

    def receive(frame):
        got.append(frame)
        kernel.wakeup(chan)

    async def main(_t):
        devs = await enumerate_bus(host)
        pa = PciAttachArgs(dev=devs[0], unit=0, kernel=kernel, crypto=None, host=host)
        sc = await em.attach(pa, loopback=True, receive=receive, **(options or {}))
        out["mac"] = sc.mac.hex()
        out["link"] = sc.link_active
        out["regs"] = {r.name: await sc.regs.read(r) for r in (ITR, RCTL, TCTL, TIDV, TADV,
                                                                RADV, TIPG)}
        rng = random.Random(7)
        frames = _frames(1, list(sizes) * batches, sc.mac)
        if bad:
            out["einval"] = [await sc.em_start([b"x" * 13]), await sc.em_start([b"x" * 1515]),
                             await sc.em_start([[b"x" * 20, b""]])]
        if flood:
            out["flood"] = await sc.em_start([frames[0]] * flood)
            out["snd_drops"] = sc.counters["snd_drops"]
            return
        out["start"] = [await sc.em_start([_split(f, segs, rng)]) for f in frames]
        deadline = kernel.now + us(wait_us)
        while len(got) < len(frames) and kernel.now < deadline:
            await kernel.tsleep(chan, PWAIT, "emrx", us(50))
        out["sent"] = [f.hex() for f in frames]
        out["got"] = [f.hex() for f in got]
        out["stats"] = sc.stats()
    await kernel.kthread_create("t", main).task
    out["checker"] = host.checker_errors()
    return out


@pytest.mark.verilator
def test_attach_reads_the_eeprom_and_programs_the_era_defaults():
    r = run(machine(), f"{SC}:scenario", {"sizes": [60]}, backend=FAST)
    assert r["checker"] == [] and r["mac"] == MAC and r["link"]
    regs = r["regs"]
    assert regs["ITR"] == 488 and em.ITR_DEFAULT == 488            # 10^9 / (8000 * 256)
    assert (regs["TIDV"], regs["TADV"], regs["RADV"]) == (64, 64, 64)
    assert regs["TIPG"] == 0x00602008
    assert RCTL.decode(regs["RCTL"])["lbm"] == LBM_MAC and regs["RCTL"] & RCTL.en.mask
    assert TCTL.decode(regs["TCTL"]) == dict(TCTL.decode(0), en=1, psp=1, ct=0x10, cold=0x40)
    assert r["got"] == r["sent"]


@pytest.mark.verilator
def test_loopback_frames_come_back_through_the_kernel():
    r = run(machine(), f"{SC}:scenario", {"sizes": [60, 100, 333], "segs": 2,
                                         "options": {"itr": 0, "tidv": 0}}, backend=FAST)
    assert r["checker"] == []
    assert r["start"] == [0, 0, 0]
    assert r["got"] == r["sent"]
    st = r["stats"]
    assert st["opackets"] == st["ipackets"] == 3 and st["claimed"] >= 1
    assert st["tx_avail"] == em.NTXD and st["snd"] == 0


@pytest.mark.slow
def test_full_size_frames_small_ring_oactive_and_moderation():
    # an 8-descriptor ring: packets of 3 segments wait on the send queue
    # (IFF_OACTIVE) and go out from the interrupt's cleanup; era moderation on
    r = run(machine(), f"{SC}:scenario", {"sizes": [1514, 60, 700], "segs": 3, "batches": 2,
                                         "options": {"ntxd": 8, "nrxd": 16}, "wait_us": 6000})
    assert r["checker"] == []
    assert r["got"] == r["sent"]
    assert r["stats"]["oactive"] >= 1 and r["stats"]["ipackets"] == 6


@pytest.mark.verilator
def test_bad_frames_einval_and_full_send_queue_enobufs():
    r = run(machine(), f"{SC}:scenario", {"sizes": [60], "bad": True,
                                         "flood": em.IFQ_MAXLEN + 10,
                                         "options": {"ntxd": 8, "nrxd": 8}}, backend=FAST)
    assert r["einval"] == [EINVAL, EINVAL, EINVAL]
    assert r["flood"] == ENOBUFS
    # the ring took up to 7 at once; of the rest the queue held IFQ_MAXLEN
    assert 10 <= r["snd_drops"] <= 10 + 7
    assert r["checker"] == []


def test_bad_options_are_refused():
    class PA:
        dev = unit = kernel = None
    with pytest.raises(ValueError):
        em.Em(PA, ntxd=12)
