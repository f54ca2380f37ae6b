"""``ocfsim net`` and ``ocfsim bench table-i``: refusals (one line on stderr,
exit status 2, nothing on disk) and one short real run of each command's
path, its output checked against the file sent and the capture."""

import json
import random

import pytest

from ocfsim.cli import main


@pytest.fixture
def empty_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def refused(argv, capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    assert exc.value.code == 2, err
    assert out == ""
    assert len(err.splitlines()) == 1 and "Traceback" not in err and "error:" in err, err
    return err


@pytest.mark.parametrize("argv, says", [
    (["net"], "one of --bytes N or --file PATH"),
    (["net", "--bytes", "10", "--file", "x"], "one of --bytes N or --file PATH"),
    (["net", "--file", "no/such/file"], "not a readable regular file"),
    (["net", "--file", "."], "not a readable regular file"),
    (["net", "--bytes", "0"], "outside"),
    (["net", "--bytes", "ten"], "not an integer"),
    (["net", "--bytes", "100", "--write-size", "0"], "outside"),
    (["net", "--bytes", "100", "--encrypt", "evp", "--write-size", "4090"],
     "not a multiple of the 8-byte 3DES block; try --write-size 4088"),
    (["net", "--bytes", "100", "--encrypt", "devcrypto", "--write-size", "1048576"],
     "/dev/crypto takes at most 262140"),
    (["net", "--bytes", "100", "--encrypt", "aes"], "invalid choice"),
    (["net", "--bytes", "100", "--card", "dmatest"], "invalid choice"),
    (["net", "--bytes", "100", "--pcap", "/proc/x/y.pcap"], "--pcap"),
    (["net", "--bytes", "100", "--pcap", "sub/dir/"], "names a folder"),
    (["net", "--bytes", "100", "--drop", "1"], "not a rate in [0, 1)"),
    (["net", "--bytes", "100", "--corrupt", "x"], "not a number"),
    (["net", "--bytes", "100", "--sockbuf", "2047"], "give 2048..233016 bytes"),
    (["net", "--bytes", "100", "--sockbuf", "233017"], "give 2048..233016 bytes"),
    (["net", "--bytes", "100", "--sockbuf", "64K"], "invalid int value"),
    (["net", "--bytes", "100", "--machine", "quad7751"], "invalid choice"),
    (["net", "--bytes", "100", "--machine", "s2567-5820-em-64-66", "--card", "bcm5820"],
     "is a whole machine: drop --card"),
    (["bench", "table-i", "--mb", "0"], "outside"),
    (["bench", "table-i", "--mb", "101"], "outside"),
    (["bench", "table-i", "--methods", "soft"], "not one of"),
    (["bench", "table-i", "--sizes", "4090"], "not a multiple of the 8-byte 3DES block"),
])
def test_bad_options_are_refused(empty_cwd, capsys, argv, says):
    err = refused(argv, capsys)
    assert says in err
    assert list(empty_cwd.iterdir()) == []


def test_net_sends_a_file_and_writes_the_capture(empty_cwd, capsys):
    import dpkt
    data = random.Random(5).randbytes(3000)
    (empty_cwd / "in.bin").write_bytes(data)
    status = main(["net", "--file", "in.bin", "--write-size", "1000", "--pcap",
                   "out/w.pcap", "--json"])
    out, _ = capsys.readouterr()
    r = json.loads(out)
    assert status == 0 and r["ok"] and r["exact"] and r["bytes"] == 3000
    assert r["writes"] == 3 and r["bus_width"] == 64 and r["clock_mhz"] == 66
    assert set(r["cpu_by_kind"]) >= {"copy", "tcp", "checksum", "driver", "intr"}
    assert 0 < r["wire_utilisation"]["tx"] < 1
    assert "slot2.master" in r["by_master"]            # the NIC's DMA
    with open(empty_cwd / "out" / "w.pcap", "rb") as f:
        frames = list(dpkt.pcap.Reader(f))
    sent = b"".join(bytes(dpkt.ethernet.Ethernet(b).data.data.data) for _, b in frames
                    if dpkt.ethernet.Ethernet(b).data.src == bytes([10, 0, 0, 1]))
    assert sent == data                                # no retransmissions on a clean link
    assert len(frames) == r["frames"]["tx"] + r["frames"]["rx"]


def test_net_sockbuf_sets_both_hosts_buffers(empty_cwd, capsys):
    """--sockbuf 65536: both ends offer a window scale of 1 (65535 << 1 covers
    65536, RFC 7323 §2.3) and the partner's SYN-ACK its whole 16-bit window;
    the JSON says the size."""
    import dpkt
    status = main(["net", "--bytes", "3000", "--sockbuf", "65536", "--pcap", "w.pcap",
                   "--json"])
    r = json.loads(capsys.readouterr()[0])
    assert status == 0 and r["ok"] and r["sockbuf"] == 65536
    with open(empty_cwd / "w.pcap", "rb") as f:
        tcps = [dpkt.ethernet.Ethernet(b).data.data for _, b in dpkt.pcap.Reader(f)]
    syns = [t for t in tcps if t.flags & dpkt.tcp.TH_SYN]
    assert len(syns) == 2
    for t in syns:
        ws = [o for k, o in dpkt.tcp.parse_opts(t.opts) if k == dpkt.tcp.TCP_OPT_WSCALE]
        assert ws == [b"\x01"]
    assert syns[1].win == 65535


def test_net_on_the_standard_machine(empty_cwd, capsys):
    """--machine s2567-5820-em-64-66 is the machine --card bcm5820 builds: the
    same run to the cycle; lspci finds the NIC beside the 5820 on a
    64-bit/66 MHz bus (82544GC copper: 8086:100c, class 02/00 Ethernet)."""
    runs = []
    for how in (["--machine", "s2567-5820-em-64-66"], ["--card", "bcm5820"]):
        assert main(["net", "--bytes", "3000", "--json", *how]) == 0
        runs.append(json.loads(capsys.readouterr()[0]))
    a, b = runs
    assert a["machine"] == "s2567-5820-em-64-66" and b["machine"] is None
    assert a["card"] == b["card"] == "bcm5820"
    assert (a["sim_cycles"], a["mbps"], a["frames"]) == (b["sim_cycles"], b["mbps"], b["frames"])
    assert main(["lspci", "--machine", "s2567-5820-em-64-66"]) == 0
    out = capsys.readouterr()[0]
    assert "bus 00: 64-bit/66 MHz" in out
    assert "class 020000: Intel 82544GC Gigabit Ethernet Controller (Copper) [8086:100c]" in out
    assert "Broadcom BCM5820" in out


def test_net_human_output(empty_cwd, capsys):
    status = main(["net", "--bytes", "2000", "--rx"])
    out, _ = capsys.readouterr()
    assert status == 0
    assert "partner → host" in out and "byte-exact" in out
    for word in ("throughput", "s per 100 MB", "CPU busy", "interrupts/s", "em0", "wire",
                 "PCI utilisation", "master slot2.master"):
        assert word in out, word


def test_net_with_a_lossy_wire(empty_cwd, capsys):
    """Frames lost, reordered and corrupted both ways: still byte-exact."""
    status = main(["net", "--bytes", "12000", "--drop", "0.08", "--reorder", "0.08",
                   "--corrupt", "0.05", "--seed", "4"])
    out, _ = capsys.readouterr()
    assert status == 0 and "byte-exact" in out and "wire faults" in out, out


def test_table_i_help_names_the_paper_and_the_rule(capsys):
    with pytest.raises(SystemExit):
        main(["bench", "table-i", "--help"])
    out, _ = capsys.readouterr()
    assert "--mb" in out and "--warmup-mb" in out and "-j" in out and "--dask" in out


@pytest.mark.slow
@pytest.mark.verilator
def test_table_i_one_cell_against_the_paper(capsys):
    """One /dev/crypto cell on Verilator, a quarter MiB past the warm-up:
    extrapolated, within a third of the paper's 4.13 s (a prediction)."""
    status = main(["bench", "table-i", "--methods", "devcrypto", "--sizes", "4088",
                   "--mb", "0.25", "-j", "1", "--json"])
    r = json.loads(capsys.readouterr()[0])
    row, = r["rows"]
    assert status == 0 and row["ok"] and row["extrapolated"]
    assert row["method"] == "/dev/crypto" and row["size"] == 4088
    assert abs(row["seconds"] - 4.13) / 4.13 < 0.33
    assert set(row) >= {"method", "size", "seconds", "ref_seconds", "mbps", "mb_simulated",
                        "extrapolated"}
    proj = r["projection"]
    whole = row["fixed_wall_s"] + row["wall_s_per_mb"] * 100
    assert proj["serial_s"] == pytest.approx(whole) and proj["workers"]["2"] == pytest.approx(whole)


def test_table_i_projection_deals_cells_to_workers():
    """The projected makespan obeys Graham's bounds for list scheduling:
    at least the mean load and the longest cell, at most their sum; with a
    worker per cell it is the longest cell."""
    import random as _random
    from bench.table_i import projection
    rng = _random.Random(3)
    rows = [{"fixed_wall_s": rng.uniform(1, 30), "wall_s_per_mb": rng.uniform(1, 40)}
            for _ in range(9)]
    cells = [r["fixed_wall_s"] + 100 * r["wall_s_per_mb"] for r in rows]
    p = projection(rows, workers=(1, 2, 16))
    assert p["serial_s"] == pytest.approx(sum(cells)) == pytest.approx(p["workers"]["1"])
    assert p["workers"]["16"] == pytest.approx(max(cells)) == pytest.approx(p["cell_wall_s"])
    w2 = p["workers"]["2"]
    assert max(sum(cells) / 2, max(cells)) <= w2 + 1e-9 <= sum(cells) / 2 + max(cells) + 1e-9
