"""The simulated host's TCP/IP stack through the em NIC (RTL) to the link
partner (ocfsim/workloads/net.py): NetStack on EmIf, the NIC's wire joined
to a Link by NicWire, the partner on the far port.

Checked independently: the bytes the partner got (or the process read)
against the file written here; the capture parsed by dpkt with every IP and
TCP checksum recomputed by a plain RFC 1071 sum (tests/netinet/support.py),
sequence and acknowledgement numbers consistent, the data stream rebuilt
from the capture equal to the file; encrypted runs decrypted with the
``cryptography`` package inside the workload and the MACs checked with
``hmac``; the PCI checker silent in every run.

The runs are on Verilator; one small run on pysim too must agree with it
cycle for cycle (a larger one, slow).
"""

import random

import pytest

from hw.cards.em8254xreg import BYTE_PS
from netinet.wire import Link, NicWire, PREAMBLE_LEN, wire_time
from ocfsim.workloads.net import LOCAL_IP, PARTNER_IP, PORT, net_machine
from sim.experiment import run
from sim.loop import SimLoop

from .support import read_pcap

ENTRY = "ocfsim.workloads.net:net"
TH_SYN, TH_FIN, TH_ACK = 0x02, 0x01, 0x10


def _file(tmp_path, n, seed):
    data = random.Random(seed).randbytes(n)
    path = tmp_path / f"data{n}.bin"
    path.write_bytes(data)
    return path, data


def _run(tmp_path, n, seed=3, backend="verilator", **kw):
    path, data = _file(tmp_path, n, seed)
    pcap = tmp_path / f"wire{n}.pcap"
    r = run(net_machine("bcm5820"), ENTRY,
            dict({"file": str(path), "write_size": 4088, "pcap": str(pcap), "seed": seed}, **kw),
            backend=backend)
    return r, data, pcap


def _stream(segs, src):
    """The data of one direction rebuilt from the capture by sequence number,
    checking that each byte offset is only ever sent with the same bytes and
    counting the segments that repeat data already sent (retransmissions)."""
    mine = [s for s in segs if s.src == src]
    syn = next(s for s in mine if s.has(TH_SYN))
    isn = syn.seq + 1
    buf, repeats, top = {}, 0, 0
    for s in mine:
        if not s.data:
            continue
        off = (s.seq - isn) % 2**32
        if off < top:
            repeats += 1
        for i, b in enumerate(s.data):
            assert buf.setdefault(off + i, b) == b, "a retransmission with other bytes"
        top = max(top, off + len(s.data))
    assert sorted(buf) == list(range(len(buf))), "a hole in the stream"
    return bytes(buf[i] for i in range(len(buf))), repeats, isn


def _check_capture(pcap, data, sender, receiver, clean=True):
    segs = read_pcap(pcap)
    assert segs, "nothing captured"
    assert all(s.ip_ok and s.tcp_ok for s in segs), "a bad checksum on the wire"
    assert [s.t_ps for s in segs] == sorted(s.t_ps for s in segs), "capture not in time order"
    stream, repeats, isn = _stream(segs, sender)
    assert stream == data
    if clean:
        assert repeats == 0
    # every ACK from the receiver acknowledges only what the sender had sent
    sent_top = isn
    for s in segs:
        if s.src == sender and (s.data or s.has(TH_FIN)):
            sent_top = max(sent_top, s.seq + len(s.data) + s.has(TH_FIN))
        if s.src == receiver and s.has(TH_ACK) and not s.has(TH_SYN) and not s.has(TH_FIN):
            assert (s.ack - isn) % 2**32 <= (sent_top - isn) % 2**32
    # ... and the last ones acknowledge all of it (plus the FIN)
    last = [s for s in segs if s.src == receiver and s.has(TH_ACK)][-1]
    assert (last.ack - isn) % 2**32 == len(data) + 1
    return segs


@pytest.mark.verilator
@pytest.mark.parametrize("n", [1, 5000, pytest.param(16000, marks=pytest.mark.slow)])
def test_bytes_reach_the_partner_exactly(tmp_path, n):
    r, data, pcap = _run(tmp_path, n)
    assert r["ok"] and r["exact"] and r["errors"] == [] and r["checker"] == []
    assert r["bytes"] == n and r["nic_bad_fcs"] == 0
    assert r["tcp"]["rexmttimeo"] == r["tcp"]["fastrexmt"] == 0
    segs = _check_capture(pcap, data, LOCAL_IP, PARTNER_IP)
    # the host's frames left the NIC padded to 60 bytes (TCTL.PSP) at least
    assert min(s.frame_len for s in segs if s.src == LOCAL_IP) >= 60
    assert r["wire_stats"]["tx"] == r["frames"]["tx"] == len([s for s in segs
                                                               if s.src == LOCAL_IP])
    assert r["nic"]["claimed"] > 0 and r["nic"]["ipackets"] == r["frames"]["rx"]


@pytest.mark.verilator
def test_partner_sends_and_the_process_reads(tmp_path):
    r, data, pcap = _run(tmp_path, 6000, rx=True)
    assert r["ok"] and r["exact"] and r["checker"] == []
    _check_capture(pcap, data, PARTNER_IP, LOCAL_IP)
    # every partner frame was received by the NIC's MAC, none with a bad FCS
    assert r["nic"]["ipackets"] == r["frames"]["rx"] and r["nic"]["ierrors"] == 0


@pytest.mark.verilator
def test_a_dropped_and_a_reordered_frame_are_recovered(tmp_path):
    r, data, pcap = _run(tmp_path, 14000, faults_tx={"at": {4: "drop", 7: "reorder"}},
                         faults_rx={"at": {3: "drop"}})
    assert r["ok"] and r["exact"] and r["checker"] == []
    assert [tuple(e) for e in r["fault_events"]["tx"]] == [(4, "drop"), (7, "reorder")]
    assert [tuple(e) for e in r["fault_events"]["rx"]] == [(3, "drop")]
    assert r["tcp"]["rexmttimeo"] + r["tcp"]["fastrexmt"] >= 1
    assert r["partner_tcp"]["rcvoopack"] >= 1
    _check_capture(pcap, data, LOCAL_IP, PARTNER_IP, clean=False)


@pytest.mark.verilator
def test_a_corrupted_frame_to_the_nic_fails_its_fcs_and_is_resent(tmp_path):
    """A bit flipped on the partner → NIC fibre: the NIC's MAC finds the FCS
    wrong (CRCERRS, IEEE 802.3 §3.2.9) and drops the frame; TCP resends."""
    r, data, pcap = _run(tmp_path, 6000, rx=True, faults_rx={"at": {4: "corrupt"}})
    assert r["ok"] and r["exact"] and r["checker"] == []
    assert r["wire_stats"]["rx"] == r["frames"]["rx"]          # all reached the MAC
    assert r["nic"]["ipackets"] == r["frames"]["rx"] - 1       # one failed its FCS
    assert r["partner_tcp"]["rexmttimeo"] + r["partner_tcp"]["fastrexmt"] >= 1


@pytest.mark.verilator
@pytest.mark.parametrize("encrypt", ["evp", pytest.param("devcrypto", marks=pytest.mark.slow)])
def test_encrypted_writes_decrypt_to_the_file(tmp_path, encrypt):
    r, data, pcap = _run(tmp_path, 9000, encrypt=encrypt, write_size=4096)
    assert r["ok"] and r["exact"] and r["mac_ok"] and r["writes"] == 3
    if encrypt == "evp":
        assert r["cpu_by_kind"].get("user", 0) > 0
    else:
        assert r["interrupts_per_s"].get("ubsec0", 0) > 0
        assert r["by_master"]["slot1.master"]["data"] > 0


@pytest.mark.verilator
@pytest.mark.slow
def test_encrypted_receive(tmp_path):
    r, data, _ = _run(tmp_path, 8192, encrypt="devcrypto", write_size=4088, rx=True)
    assert r["ok"] and r["exact"] and r["mac_ok"]


@pytest.mark.verilator
@pytest.mark.parametrize("n", [1, pytest.param(6000, marks=pytest.mark.slow)])
def test_pysim_and_verilator_agree(tmp_path, n):
    """One NIC-path run gives the same result, cycle count and capture on both."""
    (tmp_path / "p").mkdir()
    (tmp_path / "v").mkdir()
    a, _, pa = _run(tmp_path / "p", n, backend="pysim")
    b, _, pb = _run(tmp_path / "v", n, backend="verilator")

    def strip(r):
        return {k: v for k, v in r.items() if not k.startswith("_") and k != "pcap"}
    assert a["ok"] and strip(a) == strip(b)
    assert a["_cycles"] == b["_cycles"]
    assert pa.read_bytes() == pb.read_bytes()


# ------------------------------------------------------------ NicWire alone
class FakeHost:
    """The two wire calls of sim.host.Host, recording what the link does."""

    def __init__(self, loop):
        self.loop, self.sent, self.on_frame = loop, [], None

    @property
    def now(self):
        return self.loop.now

    def wire_attach(self, slot, cb):
        self.on_frame = cb

    def wire_send(self, slot, frame, at):
        self.sent.append((at, frame))


class Sink:
    def __init__(self, loop):
        self.loop, self.got = loop, []

    def receive(self, frame):
        self.got.append((self.loop.now, frame))


def test_nic_wire_counts_wire_time_once():
    """A NIC frame (already serialised by the MAC) reaches the far end one
    propagation delay after it has left, not a second wire time later; a
    far-end frame reaches wire_send as its first bit arrives, padded, with
    a good FCS (zlib.crc32), so the MAC's own pacing is the only one."""
    import zlib
    loop = SimLoop()
    host = FakeHost(loop)
    link = Link(loop, propagation=50_000, capture_lag=0)
    nic = NicWire(host, 2, link.a)
    sink = Sink(loop)
    link.b.ifp = sink
    body = bytes(range(60)) * 2                       # 120 bytes
    frame = body + zlib.crc32(body).to_bytes(4, "little")
    last = len(frame) % 4 or 4
    t_last = 10_000_000                               # its last beat's bus cycle

    async def main():
        await loop.sleep(t_last + 30_000)            # the host wakes a little later
        host.on_frame(t_last, frame)
        await loop.sleep(2_000_000)
        link.b.transmit(b"\x02" * 54)                # a runt from the partner
        await loop.sleep(2_000_000)
    loop.run(main())
    start = t_last - (PREAMBLE_LEN + len(frame) - last) * BYTE_PS
    assert link.log[0] == (start, 0, len(body))
    assert sink.got == [(start + wire_time(len(body)) + 50_000, body)]
    (at, sent), = host.sent
    padded = b"\x02" * 54 + bytes(6)
    assert sent == padded + zlib.crc32(padded).to_bytes(4, "little")
    assert at == link.log[1][0] + 50_000             # first bit + propagation
    assert nic.sent == 1 and nic.received == 1 and nic.bad_fcs == 0
    host.on_frame(t_last, frame[:-1] + b"\0")        # a bad FCS is not passed on
    assert nic.bad_fcs == 1
