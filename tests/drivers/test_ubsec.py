"""ubsec + BCM5820-like card end to end: OCF directly and /dev/crypto.

Every output is checked against ``cryptography``/``hmac`` by the scenarios.
pysim cases are small (a few thousand bus cycles); Verilator repeats them
larger.
"""

import hashlib
import random

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from drivers.ubsec import hmac_sha1_midstates, sha1_compress, _particles
from hw.machine import MachineSpec, CardSpec
from sim.experiment import run
from sim.kernel.errno import EFAULT, EINVAL, ENOMEM
from tests.hw.crypto.crypto_ref import hmac_midstates

SC = "tests.drivers.ubsec_scenarios"
ALGS = ("3des", "des", "3des-sha1", "des-sha1", "sha1")


def machine():
    return MachineSpec(clock_mhz=66, cards=[CardSpec("bcm5820", 1)])


def _check(r, n, bad=()):
    assert r["checker"] == [] and r["dup_done"] == 0
    res = r["results"]
    assert len(res) == n
    for i, x in enumerate(res):
        assert x["newsession"] == 0 and x["hw"], x
        assert x["calls"] == 1, (i, x)                     # exactly once
        if i in bad:
            assert x["etype"] == EFAULT, (i, x)
        elif not bad:
            assert x["etype"] == 0 and x["ok"], (i, x)
        else:                                             # on the chip with the bad one?
            assert x["etype"] in (0, EFAULT), (i, x)
            assert x["etype"] or x["ok"], (i, x)
    d = r["driver"]
    assert d["completed"] == n and d["queued"] == 0 and d["on_chip"] == 0
    return d


# ---------------------------------------------------------------- host side
def test_sha1_midstates_match_reference():
    rng = random.Random(5)
    for n in (0, 1, 20, 63, 64, 65, 100):
        key = bytes(rng.getrandbits(8) for _ in range(n))
        inner, outer = hmac_sha1_midstates(key)
        if n <= 64:
            ri, ro = hmac_midstates(key)
            assert inner == tuple((ri >> 32 * (4 - j)) & 0xFFFF_FFFF for j in range(5))
            assert outer == tuple((ro >> 32 * (4 - j)) & 0xFFFF_FFFF for j in range(5))
    # the compression of the padded empty message is SHA-1("")
    block = b"\x80" + bytes(63)
    h = sha1_compress((0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0), block)
    assert b"".join(x.to_bytes(4, "big") for x in h) == hashlib.sha1(b"").digest()


def test_particles_split_and_trim():
    segs = [(0x1000, 10), (0x2001, 0x20000), (0x90000, 6)]
    p = _particles(segs, 4, 10 + 0x20000 + 6 - 4 - 2)
    assert p[0] == (0x1004, 6) and p[-1] == (0x90000, 4)
    assert all(n <= 0xFFFC for _, n in p)
    assert sum(n for _, n in p) == 10 + 0x20000 + 6 - 4 - 2


# ---------------------------------------------------------------- /dev/crypto
DEVCRYPTO = [
    dict(alg="3des", size=16, ops=2),
    dict(alg="3des-sha1", size=24, ops=2, decrypt=True),
    dict(alg="des", size=8, ops=3, threads=2),
]


@pytest.mark.parametrize("args", DEVCRYPTO, ids=lambda a: f"{a['alg']}-{a['size']}")
def test_devcrypto_byte_exact(backend, args):
    if backend == "verilator":
        args = dict(args, size=args["size"] * 64, ops=8, threads=args.get("threads", 1) * 2)
    r = run(machine(), "ocfsim.workloads.devcrypto:devcrypto", args, backend=backend)
    assert r["ok"], (r["failures"], r["errnos"], r["checker"])
    assert r["drivers"]["ubsec0"]["completed"] == args["ops"]
    assert r["interrupts"] >= 1


# ---------------------------------------------------------------- OCF direct
def test_ocf_mixed_byte_exact(backend):
    n = 5 if backend == "pysim" else 40
    sizes = [8, 16, 24] if backend == "pysim" else [8, 64, 512, 1024, 4096]
    r = run(machine(), f"{SC}:mixed", {"seed": 2, "n": n, "sizes": sizes, "max_segs": 3},
            backend=backend)
    _check(r, n)


def test_aggregation_one_interrupt_for_several_requests(backend):
    # requests arrive faster than the card finishes them: while MCR1 is full
    # they wait in the driver's queue and go out merged, up to maxaggr a record
    # (pysim: the faster host profile and 256 B, which the host outruns; at 64 B
    # the calibrated interrupt and MMIO-read costs let the card keep up)
    n, size, prof = (8, 256, "p4-2800-openbsd") if backend == "pysim" else \
        (40, 1024, "p3-1400-openbsd")
    specs = [{"alg": "3des-sha1", "size": size, "segs": 1, "encrypt": True, "hdr": 0,
              "bad": False, "implicit_iv": False, "seed": i} for i in range(n)]
    r = run(machine(), f"{SC}:spec_list", {"specs": specs, "profile": prof}, backend=backend)
    d = _check(r, n)
    assert d["mcr1_full"] > 0                    # back-pressure held requests, none lost
    assert d["max_aggr"] > 1 and d["records"] < n
    assert d["claimed"] <= d["records"] < n      # one interrupt per record at most
    # maxaggr=1: one record per request
    m = 5 if backend == "pysim" else n
    r = run(machine(), f"{SC}:spec_list",
            {"specs": specs[:m], "profile": prof, "driver_options": {"ubsec": {"maxaggr": 1}}},
            backend=backend)
    d = _check(r, m)
    assert d["records"] == m and d["max_aggr"] == 1


def test_moderation_option_cuts_interrupts(backend):
    n = 6 if backend == "pysim" else 30
    specs = [{"alg": "3des", "size": 16, "segs": 1, "encrypt": True, "hdr": 0,
              "bad": False, "implicit_iv": False, "seed": i} for i in range(n)]
    opts = {"ubsec": {"maxaggr": 1, "imod_records": 4, "imod_usec": 20}}
    r = run(machine(), f"{SC}:spec_list", {"specs": specs, "driver_options": opts},
            backend=backend)
    d = _check(r, n)
    assert d["records"] == n and d["claimed"] < n


def test_dma_error_fails_chip_requests_with_efault_and_recovers(backend):
    n = 6 if backend == "pysim" else 30
    bad = 1
    r = run(machine(), f"{SC}:mixed",
            {"seed": 4, "n": n, "sizes": [8, 16], "max_segs": 2, "bad_index": bad},
            backend=backend)
    d = _check(r, n, bad={bad})
    assert d["dma_errors"] == 1 and d["resets"] == 2      # attach + recovery
    assert any("dma error" in m for m in r["msgs"])
    # requests after the failed ones completed correctly
    res = r["results"]
    last_bad = max(i for i, x in enumerate(res) if x["etype"])
    assert last_bad < n - 1 and all(x["etype"] == 0 and x["ok"] for x in res[last_bad + 1:])


def test_invalid_requests_get_errnos_and_card_keeps_serving():
    r = run(machine(), f"{SC}:invalid")
    assert r["sid_hw"]
    assert r["md5_session"] == EINVAL and r["bad_key"] == EINVAL
    e = r["etypes"]
    for name in ("len_not_block", "tls_order", "ends_differ", "past_buffer", "bad_session"):
        assert e[name] == EINVAL, name
    assert e["good"] == 0
    assert r["driver"]["records"] == 1 and r["checker"] == []


# ---------------------------------------------------------------- randomized
request = st.fixed_dictionaries({
    "alg": st.sampled_from(ALGS),
    "size": st.sampled_from([8, 16, 24, 40]),
    "segs": st.integers(1, 3),
    "encrypt": st.booleans(),
    "hdr": st.sampled_from([0, 4, 8]),
    "bad": st.just(False),
    "implicit_iv": st.booleans(),
    "seed": st.integers(0, 2**32 - 1),
})


@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
@given(specs=st.lists(request, min_size=1, max_size=4), bad=st.integers(-1, 3),
       burst=st.booleans(), maxaggr=st.integers(1, 5))
def test_randomized_mix_completes_exactly_once(specs, bad, burst, maxaggr):
    badset = set()
    if 0 <= bad < len(specs):
        specs[bad] = dict(specs[bad], bad=True)
        badset = {bad}
    r = run(machine(), f"{SC}:spec_list",
            {"specs": specs, "burst": burst,
             "driver_options": {"ubsec": {"maxaggr": maxaggr}}})
    _check(r, len(specs), bad=badset)


@pytest.mark.verilator
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(specs=st.lists(request, min_size=4, max_size=24), bad=st.integers(-1, 30),
       burst=st.booleans(), maxaggr=st.integers(1, 5))
def test_randomized_mix_verilator(specs, bad, burst, maxaggr):
    badset = set()
    if 0 <= bad < len(specs):
        specs[bad] = dict(specs[bad], bad=True)
        badset = {bad}
    r = run(machine(), f"{SC}:spec_list",
            {"specs": specs, "burst": burst,
             "driver_options": {"ubsec": {"maxaggr": maxaggr}}}, backend="verilator")
    _check(r, len(specs), bad=badset)


def test_chain_longer_than_the_card_walks_is_enomem_and_spares_the_others():
    # a buffer of 70 segments needs 70 particles; the card refuses chains of
    # more than MAX_PARTICLES (a DMA error, which failed every request on the
    # chip with EFAULT): the driver refuses it up front, as ubsec_process does
    # when bus_dmamap_load exceeds UBS_MAX_SCATTER, and the others are served
    spec = {"alg": "des", "encrypt": True, "hdr": 0, "bad": False, "implicit_iv": False}
    specs = [dict(spec, size=16, segs=1, seed=1), dict(spec, size=560, segs=70, seed=2),
             dict(spec, size=16, segs=2, seed=3)]
    r = run(machine(), f"{SC}:spec_list", {"specs": specs})
    res = r["results"]
    assert [x["calls"] for x in res] == [1, 1, 1] and r["dup_done"] == 0
    assert res[1]["etype"] == ENOMEM
    assert all(res[i]["etype"] == 0 and res[i]["ok"] for i in (0, 2)), res
    assert r["driver"]["dma_errors"] == 0


# ---------------------------------------------------------------- one-pass TLS records
def _tls_reference(datas, mlen=20):
    """The record bodies, built here from cryptography and hmac (RFC 2246
    §6.2.3: HMAC-SHA1 over seq | type | version | length | data, then
    3DES-CBC over data | MAC | padding, each record's IV the last block of
    the one before)."""
    import hmac as _hmac
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
    from cryptography.hazmat.primitives.ciphers import Cipher, modes
    key, mackey = bytes(range(1, 25)), bytes(range(0x40, 0x54))
    iv = bytes.fromhex("0123456789abcdef")
    out = []
    for seq, data in enumerate(datas):
        n = len(data)
        ad = seq.to_bytes(8, "big") + bytes([23, 3, 1]) + n.to_bytes(2, "big")
        mac = _hmac.new(mackey, ad + data, hashlib.sha1).digest()[:mlen or 12]
        pad = (-(n + len(mac) + 1)) % 8
        e = Cipher(TripleDES(key), modes.CBC(iv)).encryptor()
        body = e.update(data + mac + bytes([pad]) * (pad + 1)) + e.finalize()
        out.append((ad, body))
        iv = body[-8:]
    return out


TLS_SIZES = [0, 1, 7, 8, 9, 16, 45, 100]


def test_tls_one_pass_record_byte_exact_and_same_as_two_requests():
    r1 = run(machine(), f"{SC}:tls_records", {"sizes": TLS_SIZES})
    r2 = run(machine(), f"{SC}:tls_records", {"sizes": TLS_SIZES, "mode": "two"})
    for r in (r1, r2):
        assert r["hw"] and r["checker"] == [] and r["dup_done"] == 0
        assert r["bad_layout"] == EINVAL
    datas = [bytes.fromhex(x["data"]) for x in r1["records"]]
    assert [len(d) for d in datas] == TLS_SIZES
    for (ad, body), a, b in zip(_tls_reference(datas), r1["records"], r2["records"]):
        assert a["etype"] == 0 and b["etype"] == 0
        assert bytes.fromhex(a["ad"]) == ad                   # pseudo-header untouched
        assert bytes.fromhex(a["body"]) == body, a["n"]
        assert a["body"] == b["body"]
        assert a["chip_records"] == 1                         # one packet on the card
        assert a["ses_iv"] == body[-8:].hex()
    d1, d2 = r1["driver"], r2["driver"]
    assert d1["tls_onepass"] == len(TLS_SIZES) and d1["tls_host"] == 0
    assert d1["completed"] == len(TLS_SIZES) and d2["completed"] == 2 * len(TLS_SIZES)


def test_tls_one_pass_host_fallback_and_refusal():
    """A 12-byte MAC (the card appends 20) is served with MAC and padding on
    the host and the cipher on the chip: the same bytes as cryptosoft;
    a one-pass request on a session the card cannot hold goes nowhere else."""
    r = run(machine(), f"{SC}:tls_records", {"sizes": [0, 5, 30], "mlen": 12, "pieces": 1})
    assert r["hw"] and r["driver"]["tls_host"] == 3 and r["driver"]["tls_onepass"] == 0
    datas = [bytes.fromhex(x["data"]) for x in r["records"]]
    for (ad, body), a in zip(_tls_reference(datas, mlen=12), r["records"]):
        assert a["etype"] == 0 and bytes.fromhex(a["body"]) == body


def test_tls_one_pass_same_bytes_on_cryptosoft_and_refused_without_capability():
    from ocf.cryptodefs import CRYPTOCAP_F_TLS_ONEPASS
    sizes = [0, 9, 45]
    soft = run(MachineSpec(clock_mhz=66, cards=[]), f"{SC}:tls_records",
               {"sizes": sizes, "hard": False})
    card = run(machine(), f"{SC}:tls_records", {"sizes": sizes})
    assert not soft["hw"] and soft["driver_flags"] & CRYPTOCAP_F_TLS_ONEPASS
    assert [x["body"] for x in soft["records"]] == [x["body"] for x in card["records"]]
    assert all(x["etype"] == 0 for x in soft["records"]) and soft["bad_layout"] == EINVAL
    # the Hifn 7751 does not advertise the capability: OCF refuses the flag
    hifn = run(MachineSpec(clock_mhz=33, cards=[CardSpec("hifn7751", 1)]), f"{SC}:tls_records",
               {"sizes": [9]})
    assert not hifn["driver_flags"] & CRYPTOCAP_F_TLS_ONEPASS
    assert hifn["newsession"] == 0 and hifn["records"][0]["etype"] == EINVAL
