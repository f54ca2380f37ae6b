"""``ocfsim net --so-crypt`` and the SO_CRYPT rows of ``bench table-i``:
refusals (one line, exit status 2, nothing on disk), runs whose records are
read back from the capture by independent peers (tlslite-ng for TLS 1.0,
paramiko for SSH2), the far end's decoder refusing a damaged record, the
rx encoder read by the same peers, and one Table I cell with a SO_CRYPT row."""

import json
import random

import dpkt
import pytest

from ocfsim.cli import main
from ocfsim.workloads.net import RecordError, RecordReader, encode_records
from tests.netinet.peers import ssh_read, tls_read

from .test_net import empty_cwd, refused  # noqa: F401  (the fixture)


@pytest.mark.parametrize("argv, says", [
    (["net", "--bytes", "100", "--so-crypt", "tls1.0", "--encrypt", "evp"],
     "give one way of encrypting"),
    (["net", "--bytes", "100", "--piecemeal"], "needs --so-crypt"),
    (["net", "--bytes", "100", "--one-pass"], "needs --so-crypt"),
    (["net", "--bytes", "100", "--so-crypt", "aes"], "invalid choice"),
    (["net", "--bytes", "100", "--so-crypt", "tls1.0", "--whole-frame", "--piecemeal"],
     "not allowed with"),
    (["bench", "table-i", "--methods", "evp", "--variants", "paper"],
     "--variants needs so_crypt"),
    (["bench", "table-i", "--variants", "wholeframe"], "not one of"),
    (["net", "--bytes", "100", "--record-size", "4088"], "needs --so-crypt"),
    (["net", "--bytes", "100", "--so-crypt", "tls1.0", "--record-size", "16392"],
     "at most 16384 for tls1.0"),
    (["net", "--bytes", "100", "--so-crypt", "paper", "--piecemeal", "--record-size", "512"],
     "whole frame only"),
])
def test_so_crypt_refusals(empty_cwd, capsys, argv, says):
    err = refused(argv, capsys)
    assert says in err
    assert list(empty_cwd.iterdir()) == []


def test_piecemeal_write_over_a_record_is_refused(empty_cwd, capsys):
    err = refused(["net", "--bytes", "100", "--so-crypt", "tls1.0", "--piecemeal",
                   "--write-size", "16392"], capsys)
    assert "16384-byte tls1.0 record" in err


def _stream(pcap, src=bytes([10, 0, 0, 1])):
    """The host → partner TCP payload rebuilt from the capture by sequence number."""
    with open(pcap, "rb") as f:
        frames = [dpkt.ethernet.Ethernet(b) for _, b in dpkt.pcap.Reader(f)]
    segs = {}
    for e in frames:
        ip = e.data
        if ip.src == src and len(ip.data.data):
            segs[ip.data.seq] = bytes(ip.data.data)
    out, seq = bytearray(), min(segs)
    while seq in segs:
        out += segs[seq]
        seq += len(segs[seq])
    return bytes(out)


def _run(empty_cwd, capsys, framing, *extra, size=3000, write=1000):
    data = random.Random(7).randbytes(size)
    (empty_cwd / "in.bin").write_bytes(data)
    status = main(["net", "--file", "in.bin", "--write-size", str(write), "--so-crypt",
                   framing, *extra, "--pcap", "w.pcap", "--backend", "verilator", "--json"])
    r = json.loads(capsys.readouterr()[0])
    k = r["so_crypt"]
    return status, r, data, _stream(empty_cwd / "w.pcap"), \
        bytes.fromhex(k["key"]), bytes.fromhex(k["iv"]), bytes.fromhex(k["mac_key"])


@pytest.mark.verilator
def test_tls_records_through_the_nic_read_by_tlslite(empty_cwd, capsys):
    status, r, data, wire, key, iv, mk = _run(empty_cwd, capsys, "tls1.0")
    assert status == 0 and r["ok"] and r["exact"] and r["encrypt"] == "so_crypt"
    recs = tls_read(wire, key, iv, mk)
    assert [t for t, _ in recs] == [23, 23, 23]          # application_data
    assert b"".join(p for _, p in recs) == data
    assert [len(p) for _, p in recs] == [1000, 1000, 1000]
    sc = r["so_crypt"]
    assert sc["records"] == 3 and sc["records_per_s"] > 0
    # BCM5820: MAC then encrypt, two requests per record (docs/so_crypt.md)
    assert sc["ocf_requests_per_record"] == r["ocf_requests"] / 3 >= 1
    # a flipped bit in the second record's ciphertext: the far end's decoder refuses it
    bad = bytearray(wire)
    bad[len(wire) // 2] ^= 1
    with pytest.raises(RecordError):
        RecordReader("tls1.0", key, iv, mk).feed(bytes(bad))


@pytest.mark.verilator
def test_record_size_cuts_each_write_into_records_read_by_tlslite(empty_cwd, capsys):
    status, r, data, wire, key, iv, mk = _run(empty_cwd, capsys, "tls1.0", "--record-size",
                                              "400", "--one-pass", size=2400, write=1200)
    assert status == 0 and r["ok"] and r["so_crypt"]["record_size"] == 400
    recs = tls_read(wire, key, iv, mk)
    assert [len(p) for _, p in recs] == [400] * 6 and b"".join(p for _, p in recs) == data
    assert r["so_crypt"]["ocf_requests_per_record"] == 1      # one pass on the BCM5820


@pytest.mark.verilator
def test_ssh2_packets_through_the_nic_read_by_paramiko(empty_cwd, capsys):
    status, r, data, wire, key, iv, mk = _run(empty_cwd, capsys, "ssh2", size=2500, write=800)
    assert status == 0 and r["ok"] and r["so_crypt"]["records"] == 4
    msgs = ssh_read(wire, key, iv, mk, 20, 4)
    # paramiko hands back (first payload byte as the message type, the rest)
    assert b"".join(bytes([cmd]) + m.asbytes() for cmd, m in msgs) == data


@pytest.mark.verilator
def test_human_output_has_records_and_the_steady_rate(empty_cwd, capsys):
    status = main(["net", "--bytes", "40000", "--so-crypt", "paper", "--backend", "verilator"])
    out, _ = capsys.readouterr()
    assert status == 0 and "every record decoded by the partner" in out, out
    assert "records/s" in out and "OCF requests per record" in out
    assert "steady" in out and "Mbit/s over" in out


@pytest.mark.parametrize("framing", ["tls1.0", "ssh2"])
def test_rx_encoder_is_read_by_the_independent_peers(framing):
    """What the partner sends for ``--rx`` (encode_records) is what tlslite-ng
    and paramiko accept, and what the far end's decoder returns."""
    rng = random.Random(3)
    key, iv, mk = rng.randbytes(24), rng.randbytes(8), rng.randbytes(20)
    plain = rng.randbytes(2500)
    wire = encode_records(framing, plain, 700, key, iv, mk, random.Random(4))
    if framing == "tls1.0":
        got = b"".join(p for _, p in tls_read(wire, key, iv, mk))
    else:
        got = b"".join(bytes([c]) + m.asbytes() for c, m in ssh_read(wire, key, iv, mk, 20, 4))
    assert got == plain
    reader = RecordReader(framing, key, iv, mk)
    out = [reader.feed(wire[i:i + 97]) for i in range(0, len(wire), 97)]   # any cut
    assert b"".join(b"".join(o) for o in out) == plain and reader.records == 4


@pytest.mark.slow
@pytest.mark.verilator
def test_table_i_cell_with_a_so_crypt_row(capsys):
    """/dev/crypto and SO_CRYPT at 8176 B, a little past the warm-up: both
    verified, the SO_CRYPT row's paper value its Table I figure, Table II
    computed from the two rows, the supporting numbers present."""
    status = main(["bench", "table-i", "--methods", "devcrypto,so_crypt", "--variants",
                   "paper", "--sizes", "8176", "--mb", "0.125", "--warmup-mb", "0.125",
                   "-j", "1", "--json"])
    r = json.loads(capsys.readouterr()[0])
    dev, so = r["rows"]
    assert status == 0 and dev["ok"] and so["ok"]
    assert so["method"] == "so_crypt" and so["variant"] == "paper"
    assert so["ref_seconds"] == 3.97
    t2, = r["table_ii"]
    assert t2["improvement"] == pytest.approx((dev["seconds"] - so["seconds"]) / dev["seconds"])
    assert t2["ref_improvement"] == 0.06
    for row in (dev, so):
        assert row["ocf_requests_per_100mb"] > 0 and row["cpu_s_per_100mb"]["copy"] > 0
        assert "em0" in row["interrupts_per_100mb"] and 0 < row["pci_utilisation"] < 1
    # /dev/crypto: one request per write
    assert dev["ocf_requests_per_100mb"] == pytest.approx(100 * (1 << 20) / 8176, rel=0.05)


@pytest.mark.slow
@pytest.mark.verilator
def test_so_crypt_run_agrees_on_pysim_and_verilator(empty_cwd, capsys):
    """The same SO_CRYPT run on both backends: the same bus cycles, the same
    simulated time and the same counts."""
    out = {}
    for backend in ("pysim", "verilator"):
        status = main(["net", "--bytes", "2500", "--write-size", "1000", "--so-crypt", "tls1.0",
                       "--backend", backend, "--json"])
        out[backend] = json.loads(capsys.readouterr()[0])
        assert status == 0 and out[backend]["ok"]
    p, v = out["pysim"], out["verilator"]
    assert p["sim_cycles"] == v["sim_cycles"] and p["sim_time_s"] == v["sim_time_s"]
    for key in ("ocf_requests", "frames", "interrupts_per_s", "breakdown", "so_crypt"):
        assert p[key] == v[key], key
