"""The engine's one-pass extension (``tls_onepass``, ``mac_append``): a
whole TLS 1.0 record, MAC and padding encrypted too (RFC 2246 §6.2.3.2),
checked against a record built here with the ``cryptography`` package and
``hmac``; and the same ciphertext as the two-request path (a MAC request,
then an encrypt request over data ‖ MAC ‖ padding)."""

import hashlib
import hmac
import os
import struct
import sys

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher as _Cipher, modes

from hw.crypto.engine import Cipher, Mac, Order, TransformEngine
from hw.crypto.harness import run_engine

sys.path.insert(0, os.path.dirname(__file__))
from crypto_ref import hmac_midstates  # noqa: E402

KEY = bytes(range(1, 25))
IV = bytes.fromhex("0123456789abcdef")
MACKEY = bytes(range(0x40, 0x54))
TLS_HDR = 13        # seq(8) type(1) version(2) length(2), RFC 2246 §6.2.3.1


def tls_record(data, seq, maclen, pad_len):
    """(pseudo-header, E(data | MAC | padding)) from cryptography and hmac."""
    ad = struct.pack("!QBBBH", seq, 23, 3, 1, len(data))
    mac = hmac.new(MACKEY, ad + data, hashlib.sha1).digest()[:maclen]
    plain = data + mac + bytes([pad_len]) * (pad_len + 1)
    enc = _Cipher(TripleDES(KEY), modes.CBC(IV)).encryptor()
    return ad, enc.update(plain) + enc.finalize(), mac


def min_pad(n, maclen):
    return (-(n + maclen + 1)) % 8


def onepass_cmd(n, maclen, pad_len, mac=Mac.HMAC_STATE):
    inner, outer = hmac_midstates(MACKEY)
    return dict(cipher=Cipher.TDES, decrypt=0, mac=mac, order=Order.MAC_FIRST,
                trunc=int(maclen == 12), length=TLS_HDR + n,
                cipher_skip=TLS_HDR, cipher_len=n, mac_skip=0, mac_len=TLS_HDR + n,
                key1=int.from_bytes(KEY[0:8], "big"), key2=int.from_bytes(KEY[8:16], "big"),
                key3=int.from_bytes(KEY[16:24], "big"), iv=int.from_bytes(IV, "big"),
                mac_key=int.from_bytes(MACKEY.ljust(64, b"\0"), "big"),
                inner=inner, outer=outer, mac_append=1, pad_len=pad_len)


def check(cases, **kw):
    reqs, want = [], []
    for seq, (n, maclen, pad_len, mac) in enumerate(cases):
        data = bytes((7 * i + n) & 0xFF for i in range(n))
        ad, ct, m = tls_record(data, seq, maclen, pad_len)
        reqs.append((onepass_cmd(n, maclen, pad_len, mac), ad + data))
        want.append((ad, ct, m))
    got = run_engine(reqs, des_rounds=4, sha_rounds=2, tls_onepass=True,
                     expect_out=[True] * len(reqs), **kw)
    for (ad, ct, m), r, case in zip(want, got, cases):
        assert r.status == dict(cipher_len=0, region=0, unsupported=0, length=0), case
        assert r.out == ad + ct, case                 # header passed through, rest encrypted
        assert r.mac >> 160 - 8 * len(m) == int.from_bytes(m, "big"), case
        assert r.iv == int.from_bytes(ct[-8:], "big"), case   # chains the next record
    return got


def test_lengths_0_to_100_sha1_and_96():
    cases = [(n, maclen, min_pad(n, maclen), Mac.HMAC_STATE)
             for n in range(0, 101) for maclen in (20, 12) if (n + maclen) % 3 == 0 or n < 20]
    check(cases)


@pytest.mark.parametrize("n", [7, 8, 9, 15, 16, 17, 63, 64, 65])
def test_around_blocks_with_longer_padding_and_raw_key(n):
    # any padding up to 255 is legal (RFC 2246 §6.2.3.2); HMAC_KEY as the Hifn
    check([(n, 20, min_pad(n, 20) + 8 * k, Mac.HMAC_KEY) for k in (0, 1, 31)]
          + [(n, 12, min_pad(n, 12) + 240, Mac.HMAC_STATE)])


def test_stalls_and_sparse_words():
    check([(n, 20, min_pad(n, 20), Mac.HMAC_STATE) for n in (0, 5, 33, 90)],
          in_stall=0.3, out_stall=0.3, res_stall=0.3, sparse=0.2, seed=5)


@pytest.mark.slow
def test_few_kilobytes():
    check([(n, 20, min_pad(n, 20), Mac.HMAC_STATE) for n in (1024, 4093)])


def test_same_ciphertext_as_two_requests():
    """Two requests as an IPsec-order card does it: MAC alone, then
    encrypt of data | MAC | padding; the one-pass output is identical."""
    n, maclen = 45, 20
    pad = min_pad(n, maclen)
    data = bytes(range(n))
    ad = struct.pack("!QBBBH", 9, 23, 3, 1, n)
    one = run_engine([(onepass_cmd(n, maclen, pad), ad + data)], tls_onepass=True,
                     expect_out=[True])[0]
    inner, outer = hmac_midstates(MACKEY)
    r1 = run_engine([(dict(mac=Mac.HMAC_STATE, length=TLS_HDR + n, mac_len=TLS_HDR + n,
                           inner=inner, outer=outer), ad + data)],
                    tls_onepass=True)[0]
    mac = r1.mac.to_bytes(20, "big")
    plain = data + mac + bytes([pad]) * (pad + 1)
    cmd = onepass_cmd(n, maclen, pad)
    cmd.update(mac=Mac.NONE, order=Order.CIPHER_FIRST, length=len(plain), cipher_skip=0,
               cipher_len=len(plain), mac_len=0, mac_append=0)
    r2 = run_engine([(cmd, plain)], tls_onepass=True)[0]
    assert one.out[TLS_HDR:] == r2.out
    assert one.iv == r2.iv
    assert one.cycles < r1.cycles + r2.cycles


def _status(cmd, data, **kw):
    return run_engine([(cmd, data)], tls_onepass=True, expect_out=[False], **kw)[0].status


@pytest.mark.parametrize("change,bit", [
    (dict(pad_len=0), "cipher_len"),            # 45 + 20 + 1 not a multiple of 8
    (dict(cipher_len=40), "region"),            # cipher region ends before the data
    (dict(decrypt=1), "unsupported"),           # only MAC-then-encrypt
    (dict(order=Order.CIPHER_FIRST), "unsupported"),
    (dict(mac=Mac.NONE), "unsupported"),
])
def test_bad_one_pass_commands(change, bit):
    n = 45
    cmd = onepass_cmd(n, 20, min_pad(n, 20))
    cmd.update(change)
    st = _status(cmd, bytes(TLS_HDR + n))
    assert st[bit] == 1


def test_extension_switchable():
    """Without tls_onepass a mac_append command is unsupported, and the
    engine builds without the tail source."""
    n = 3
    cmd = onepass_cmd(n, 20, min_pad(n, 20))
    r = run_engine([(cmd, bytes(TLS_HDR + n))], tls_onepass=False, expect_out=[False])[0]
    assert r.status["unsupported"] == 1 and r.mac == 0
    from amaranth.back import rtlil
    off = rtlil.convert(TransformEngine(4, 2, tls_onepass=False))
    on = rtlil.convert(TransformEngine(4, 2, tls_onepass=True))
    assert "tail" not in off and "tail" in on
