"""Every driver gives the same answer to the same valid /dev/crypto request.

The requests the BCM5820 cannot take as one packet (longer than its 16-bit
packet length, an empty MAC range, an empty cipher range behind an IV in the
buffer) used to get EINVAL from ubsec while cryptosoft and hifn served them.
Each answer is checked against ``cryptography``/``hmac`` and across drivers.
"""

import hashlib
import hmac
import random

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from hw.machine import CardSpec, MachineSpec
from sim.experiment import run

SC = "tests.drivers.answer_scenarios:answers"


def _case(rng, cipher, mac, n, decrypt=False, iv_in_buffer=False):
    return {"cipher": cipher, "mac": mac, "len": n, "decrypt": decrypt,
            "iv": None if iv_in_buffer or not cipher else rng.randbytes(8).hex(),
            "data": rng.randbytes(n).hex(), "key": rng.randbytes(24).hex(),
            "mackey": rng.randbytes(20).hex()}


def expected(c):
    """(output, MAC) by cryptography and hmac, /dev/crypto semantics."""
    data, key = bytes.fromhex(c["data"]), bytes.fromhex(c["key"])
    out = data
    if c["cipher"]:
        k = key[:24] if c["cipher"] == "3des" else key[:8] * 3
        iv, head, body = (bytes.fromhex(c["iv"]), b"", data) if c["iv"] else \
            (data[:8], data[:8], data[8:])
        op = Cipher(TripleDES(k), modes.CBC(iv))
        op = op.decryptor() if c["decrypt"] else op.encryptor()
        out = head + op.update(body) + op.finalize()
    tag = ""
    if c["mac"]:
        macced = data if c["decrypt"] else out
        tag = hmac.new(bytes.fromhex(c["mackey"]), macced, hashlib.sha1).digest()[:12].hex()
    return out.hex(), tag


def cases(n_long):
    rng = random.Random(9)
    return [
        _case(rng, "3des", True, n_long),                      # beyond one packet, MAC
        _case(rng, "3des", True, n_long, decrypt=True),
        _case(rng, "3des", False, n_long + 8, iv_in_buffer=True),
        _case(rng, "des", False, 8, decrypt=True, iv_in_buffer=True),   # empty cipher range
        _case(rng, "des", False, 8, iv_in_buffer=True),
        _case(rng, "", True, 0),                               # HMAC of the empty message
        _case(rng, "", True, 100),
        _case(rng, "3des", True, 24),                          # one packet, as always
    ]


MACHINES = {
    "soft": MachineSpec(cards=[]),
    "bcm5820": MachineSpec(clock_mhz=66, cards=[CardSpec("bcm5820", 1)]),
    "hifn7751": MachineSpec(cards=[CardSpec("hifn7751", 1)]),
}
DRIVER = {"soft": "cryptosoft", "bcm5820": "ubsec0", "hifn7751": "hifn0"}


def _answers(kind, cs, backend="pysim", opts=None):
    r = run(MACHINES[kind], SC, {"cases": cs, "driver_options": opts}, backend=backend)
    assert r["raised"] == [] and r["checker"] == []
    assert r["drivers"] == [DRIVER[kind]], r["drivers"]       # no fallback to software
    return r


def test_same_requests_same_answers_on_every_driver():
    # ubsec: packets of at most 64 bytes, so the 200-byte requests take the
    # split path on pysim as 65536-byte ones do on the real packet limit
    cs = cases(200)
    want = [[0, *expected(c)] for c in cs]
    got = {kind: _answers(kind, cs, opts={"ubsec": {"max_packet": 64}})["answers"]
           for kind in MACHINES}
    for kind, ans in got.items():
        for i, (a, w) in enumerate(zip(ans, want)):
            assert list(a) == w, (kind, i, cs[i]["cipher"], cs[i]["mac"], cs[i]["len"])


@pytest.mark.verilator
def test_ubsec_beyond_packet_length_verilator():
    """`ocfsim run --card bcm5820 --size 65536` got EINVAL: 16-bit packet length."""
    cs = cases(65536)[:3]
    r = _answers("bcm5820", cs, backend="verilator")
    assert [list(a) for a in r["answers"]] == [[0, *expected(c)] for c in cs]
