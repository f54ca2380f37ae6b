"""The host's configuration addresses: bus 0 as before, buses behind a bridge
through :meth:`Host.config_bus` with the bus number in bits 23:16 (PCI 2.3
§3.2.2.3.2, CONFIG_ADDRESS without the enable bit)."""

import pytest

from hw.machine import MachineSpec
from hw.pci.host_bridge import CpuOp
from hw.pci.initiator import Status
from sim.backend import Backend
from sim.host import Host


class RecordingBridge(Backend):
    """Completes every CPU access one cycle after it starts and keeps what
    the host put on ``cpu_op``/``cpu_addr``/``cpu_wdata``/``cpu_be``."""

    name = "recording"
    period_ps = 30_000

    def __init__(self):
        self.ports = {"attn": 0, "cycle": 0, "irq": 0, "cpu_ack": 0, "cpu_rdata": 0,
                      "cpu_status": Status.OK, "chk_error": 0, "cpu_seq": 0, "cpu_op": 0,
                      "cpu_addr": 0, "cpu_wdata": 0, "cpu_be": 0}
        self.accesses = []

    async def step(self, max_cycles):
        p = self.ports
        p["cycle"] += 1
        if p["cpu_seq"] != p["cpu_ack"]:
            self.accesses.append((p["cpu_op"], p["cpu_addr"], p["cpu_wdata"], p["cpu_be"]))
            p["cpu_rdata"] = p["cpu_addr"] ^ 0x5A5A_0000
            p["cpu_ack"] = p["cpu_seq"]
            p["attn"] += 1
        return 1

    @property
    def cycle(self):
        return self.ports["cycle"]

    def get(self, port):
        return self.ports[port]

    def set(self, port, value):
        self.ports[port] = value


def _run(body):
    bridge = RecordingBridge()
    host = Host(bridge, MachineSpec(dram_bytes=1 << 16))
    coro = host.loop.run_until_complete(body(host))
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value, bridge.accesses
    raise AssertionError("the host awaited something outside its loop")


def test_config_address_fields():
    # CONFIG_ADDRESS: bus 23:16, device 15:11, function 10:8, register 7:2
    assert Host._cfg_addr(3, 0, 0x10) == 0x0000_1810
    assert Host._cfg_addr(3, 5, 0x3C, bus=0) == 3 << 11 | 5 << 8 | 0x3C
    assert Host._cfg_addr(0, 0, 0, bus=1) == 0x0001_0000
    assert Host._cfg_addr(31, 7, 0xFC, bus=255) == 0x00FF_FFFC
    assert Host._cfg_addr(2, 1, 0x08, bus=0x12) == 0x0012_1108


@pytest.mark.parametrize("args", [
    dict(slot=16, func=0, reg=0),            # bus 0: one IDSEL per slot 0..15
    dict(slot=32, func=0, reg=0, bus=1),     # behind a bridge: 5-bit device field
    dict(slot=1, func=8, reg=0, bus=1),
    dict(slot=1, func=0, reg=0x100, bus=1),
    dict(slot=1, func=0, reg=0x12, bus=1),
    dict(slot=1, func=0, reg=0, bus=256),
    dict(slot=1, func=0, reg=0, bus=-1),
])
def test_bad_config_addresses_are_refused(args):
    with pytest.raises(ValueError, match="bad config address"):
        Host._cfg_addr(**args)


@pytest.mark.parametrize("bus", [0, 256, -3, 1.0, "1"])
def test_config_bus_needs_a_bus_behind_a_bridge(bus):
    host = Host(RecordingBridge(), MachineSpec(dram_bytes=1 << 16))
    with pytest.raises(ValueError, match="not a bus behind a bridge"):
        host.config_bus(bus)


def test_config_bus_accesses_carry_the_bus_number():
    async def body(host):
        b2 = host.config_bus(2)
        value = await b2.cfg_read(4, 0x08, func=1)
        await b2.cfg_write(4, 0x04, 0x0000_0146, be=0x3)
        plain = await host.cfg_read(4, 0x08, 1)
        await host.cfg_write(4, 0x04, 0x0006)
        return value, plain

    (value, plain), accesses = _run(body)
    a2 = 2 << 16 | 4 << 11 | 1 << 8 | 0x08
    a0 = 4 << 11 | 1 << 8 | 0x08
    assert accesses == [
        (CpuOp.CFG_READ, a2, 0, 0xF),
        (CpuOp.CFG_WRITE, 2 << 16 | 4 << 11 | 0x04, 0x146, 0x3),
        (CpuOp.CFG_READ, a0, 0, 0xF),
        (CpuOp.CFG_WRITE, 4 << 11 | 0x04, 0x6, 0xF),
    ]
    assert value == a2 ^ 0x5A5A_0000 and plain == a0 ^ 0x5A5A_0000
