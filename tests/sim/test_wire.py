"""The NIC's wire as host events (hw/net/wire_port.py, Host.wire_attach /
Host.wire_send): the em driver on an 82544GC-class card, not in loopback.

Frames the driver sends reach the host's callback byte for byte, with their
FCS (checked against zlib.crc32), padding to 60 bytes (TCTL.PSP) and times
spaced by at least their wire time; frames the host sends reach the
driver's receive callback byte for byte (without FCS); an echo of every sent
frame with the addresses swapped comes back in. The same scenarios give the
same results, cycle for cycle, on pysim and Verilator, with idle skipping on
and off.
"""

import random
import zlib

import pytest

from drivers import em
from drivers.pci import PciAttachArgs, enumerate_bus
from hw.cards.em8254xreg import BYTE_PS, IFG_BYTES, PREAMBLE_BYTES
from hw.machine import CardSpec, MachineSpec, wire_slots
from hw.net.wire_port import QUEUE, RX_MAX_BYTES
from sim.experiment import run
from sim.kernel import Kernel, PWAIT
from sim.loop import us

SC = "tests.sim.test_wire"
MAC = "0002b3123456"
PEER = bytes.fromhex("0002b3abcdef")
SLOT = 1


def machine(mhz=66):
    return MachineSpec(clock_mhz=mhz, dram_bytes=2 << 20,
                       cards=[CardSpec("em82544", SLOT, {"mac": MAC, "bus_mhz": mhz})])


def with_fcs(frame: bytes) -> bytes:
    """The frame as the wire carries it: CRC-32 FCS appended, least
    significant byte first (IEEE 802.3 §3.2.9)."""
    return frame + zlib.crc32(frame).to_bytes(4, "little")


def _payloads(seed, sizes):
    rng = random.Random(seed)
    return [bytes(rng.getrandbits(8) for _ in range(s - 12)) for s in sizes]


def swap(frame: bytes) -> bytes:
    """A frame (with FCS) sent back: destination and source swapped, FCS anew."""
    body = frame[6:12] + frame[0:6] + frame[12:-4]
    return with_fcs(body)


async def scenario(host, mode="tx", sizes=(60, 61, 200, 1514), gap_us=0, wait_us=1500,
                   one_call=False):
    """``tx``: the driver sends ``sizes``; ``rx``: the host sends them to
    the driver, all due at once (more than the port's queue); ``echo``: the
    driver sends, the host sends each frame back swapped ``gap_us`` after
    its end. (A frame that arrives before the driver's last posted writes of
    attach reached the card finds RCTL.EN clear and is not taken: ``rx``
    starts ``gap_us`` after attach.)"""
    kernel = Kernel(host.loop, host.memory)
    host.on_interrupt(kernel.interrupt)
    chan = object()
    wire, got, out = [], [], {}

    def receive(frame):
        got.append([kernel.now, frame.hex()])
        kernel.wakeup(chan)

    def on_frame(t, frame):
        wire.append([t, host.now, frame.hex()])
        if mode == "echo":
            host.wire_send(SLOT, swap(frame), t + us(gap_us))
        kernel.wakeup(chan)

    host.wire_attach(SLOT, on_frame)

    async def main(_t):
        devs = await enumerate_bus(host)
        pa = PciAttachArgs(dev=devs[0], unit=0, kernel=kernel, crypto=None, host=host)
        sc = await em.attach(pa, receive=receive, itr=0, tidv=0)
        me = sc.mac
        if mode == "rx":
            frames = [me + PEER + p for p in _payloads(2, sizes)]
            at = kernel.now + us(gap_us)
            for f in frames:
                host.wire_send(SLOT, with_fcs(f), at)
            want_wire, want_rx = 0, len(frames)
        else:
            frames = [PEER + me + p for p in _payloads(1, sizes)]
            if one_call:
                out["start"] = await sc.em_start(frames)
            else:
                out["start"] = max([await sc.em_start([f]) for f in frames])
            want_wire, want_rx = len(frames), len(frames) if mode == "echo" else 0
        deadline = kernel.now + us(wait_us)
        while (len(wire) < want_wire or len(got) < want_rx) and kernel.now < deadline:
            await kernel.tsleep(chan, PWAIT, "wire", us(50))
        out["sent"] = [f.hex() for f in frames]
        out["stats"] = sc.stats()
        out["wire_stats"] = host.wire_stats(SLOT)
    await kernel.kthread_create("t", main).task
    out["wire"], out["got"] = wire, got
    out["checker"] = host.checker_errors()
    out["period_ps"] = host.period_ps
    out["end_cycle"] = host.cycle
    return out


def check_tx(r):
    assert r["checker"] == [] and r["start"] == 0
    assert len(r["wire"]) == len(r["sent"])
    period = r["period_ps"]
    prev = None
    for (t, woke, hexframe), sent in zip(r["wire"], r["sent"]):
        frame, sent = bytes.fromhex(hexframe), bytes.fromhex(sent)
        body, fcs = frame[:-4], frame[-4:]
        assert body == sent + bytes(max(0, 60 - len(sent)))      # PSP pads to 60
        assert fcs == zlib.crc32(body).to_bytes(4, "little")
        assert t % period == 0 and woke == t + 2 * period      # attention a clock later
        if prev is not None:
            # the frame's preamble and bytes after the previous frame's gap,
            # less its last beat (up to four bytes) and one bus cycle of pacing
            wire_ps = (IFG_BYTES + PREAMBLE_BYTES + len(frame) - 4) * BYTE_PS
            assert t - prev >= wire_ps - period, (t - prev, wire_ps)
        prev = t
    assert r["wire_stats"]["tx"] == len(r["sent"]) and r["wire_stats"]["tx_dropped"] == 0


def test_driver_frames_reach_the_host_with_fcs_at_wire_spacing():
    r = run(machine(), f"{SC}:scenario", {"mode": "tx"})
    check_tx(r)
    assert r["got"] == []                     # not in loopback: nothing comes back


def test_frames_of_one_em_start_leave_in_order():
    """Several frames in one em_start: the interrupt handler's em_start
    must not place a later one first (the driver holds splnet)."""
    r = run(machine(), f"{SC}:scenario", {"mode": "tx", "one_call": True,
                                          "sizes": [60, 61, 200, 100, 1514]})
    check_tx(r)                                # in the order sent


def test_host_frames_reach_the_driver():
    sizes = [60, 1514, 64, 100, 61, 300]     # more than QUEUE due at once
    assert len(sizes) > QUEUE
    r = run(machine(), f"{SC}:scenario", {"mode": "rx", "sizes": sizes, "gap_us": 5})
    assert r["checker"] == [] and r["wire"] == []
    assert [f for _, f in r["got"]] == r["sent"]
    assert r["stats"]["ipackets"] == len(sizes)
    assert r["wire_stats"]["rx"] == len(sizes) and r["wire_stats"]["rx_waiting"] == 0
    # back to back on the wire: arrivals at least each frame's wire time apart
    times = [t for t, _ in r["got"]]
    assert all(b >= a for a, b in zip(times, times[1:]))
    span = sum((PREAMBLE_BYTES + s + 4 + IFG_BYTES) * BYTE_PS for s in sizes[1:])
    assert times[-1] - times[0] >= span - 2 * us(1)


def test_echo_every_frame_comes_back():
    r = run(machine(), f"{SC}:scenario", {"mode": "echo", "gap_us": 1})
    check_tx(r)
    echoes = [swap(bytes.fromhex(f))[:-4].hex() for _, _, f in r["wire"]]
    assert [f for _, f in r["got"]] == echoes


def test_bad_wire_frames_and_slots_are_refused():
    spec = machine()
    assert wire_slots(spec) == [SLOT]
    names = {n for n, _, _ in spec.ports()}
    assert {"wire1_tx_frames", "wire1_rx_posted", "wire_events"} <= names
    from sim.host import Host

    class Fake:
        name, period_ps = "fake", spec.period_ps

        def get(self, port):
            return 0

        def set_skip(self, on):
            pass
    host = Host(Fake(), spec)
    with pytest.raises(ValueError):
        host.wire_send(2, b"x" * 60, 0)
    with pytest.raises(ValueError):
        host.wire_send(SLOT, b"", 0)
    with pytest.raises(ValueError):
        host.wire_send(SLOT, b"x" * (RX_MAX_BYTES + 1), 0)
    with pytest.raises(ValueError):
        host.wire_attach(SLOT, None)
    assert "wire_events" not in {n for n, _, _ in MachineSpec(cards=[CardSpec("dmatest", 1)]).ports()}


def _three(backends, monkeypatch, mode, **args):
    out = {}
    for backend, skip in backends:
        monkeypatch.setenv("OCFSIM_SKIP", "1" if skip else "0")
        r = run(machine(), f"{SC}:scenario", {"mode": mode, **args}, backend=backend)
        out[backend, skip] = r
    return out


def _same(results):
    keys = ("wire", "got", "sent", "end_cycle", "stats", "wire_stats")
    first = next(iter(results.values()))
    for k, r in results.items():
        assert {x: r[x] for x in keys} == {x: first[x] for x in keys}, k


def test_skipping_changes_nothing_pysim(monkeypatch):
    r = _three([("pysim", False), ("pysim", True)], monkeypatch, "echo", sizes=[60, 333])
    _same(r)
    assert r["pysim", True]["_speed"]["skipped"] > 0


@pytest.mark.verilator
# echo covers both directions; tx and rx alone are slow cases
@pytest.mark.parametrize("mode", [pytest.param("tx", marks=pytest.mark.slow),
                                  pytest.param("rx", marks=pytest.mark.slow), "echo"])
def test_verilator_same_cycle_for_cycle(monkeypatch, mode):
    sizes = [60, 1514, 64, 100, 61, 300] if mode == "rx" else [60, 61, 200, 1514]
    r = _three([("pysim", True), ("verilator", True), ("verilator", False)], monkeypatch,
               mode, sizes=sizes, gap_us=5)
    _same(r)
    if mode != "rx":
        check_tx(r["verilator", True])
    assert r["verilator", True]["_speed"]["skipped"] > 0


@pytest.mark.verilator
def test_raw_harness_replays_wire_frames(tmp_path):
    """A record of a Verilator run with frames both ways (the host's frames
    go into the wire port by backdoor) replays in the raw harness to the
    same outputs and host DRAM."""
    from sim.experiment import direct_build
    from sim.verilator.raw import raw_harness, replay
    from sim.verilator.runner import RESET_CYCLES
    spec = machine()
    record = tmp_path / "wire.rec"
    r = run(spec, f"{SC}:scenario", {"mode": "echo", "sizes": [60, 300], "gap_us": 1},
            backend="verilator", record=str(record))
    assert len(r["got"]) == 2
    out = replay(raw_harness(direct_build(spec), spec.ports()), record)
    assert out["cycles"] == RESET_CYCLES + r["_sim_cycles"]
