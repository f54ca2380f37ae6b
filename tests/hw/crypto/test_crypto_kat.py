"""Known-answer tests of the transform engine (pysim): NIST CAVP TDES-CBC
(TCBC KAT + MMT), SHA-1 short/long messages (CAVS 11), RFC 2202 HMAC-SHA1,
all read from the `cryptography-vectors` package. The default run uses a
deterministic sample of each file; ``-m slow`` runs them whole."""

import pytest
from conftest import (TCBC_KAT, TCBC_MMT, check_engine, rfc2202_cases, sample,
                      sha_cases, tdes_cases)
from crypto_ref import make_cmd

from hw.crypto.engine import Cipher, Mac, Order


def run_tdes(cases, des_rounds, **kw):
    res = check_engine(cases, des_rounds=des_rounds, **kw)
    # The reference is `cryptography`; also check the file's own answer.
    for (c, _), r in zip(cases, res):
        assert r.out == c["_expect"]


@pytest.mark.parametrize("fname", TCBC_KAT + TCBC_MMT)
def test_tdes_cbc_sample(fname):
    cases = tdes_cases(fname, single_des=fname in TCBC_KAT)
    every = 16 if fname in TCBC_KAT else 4
    run_tdes(sample(cases, every, offset=len(fname)), des_rounds=2)


@pytest.mark.slow
@pytest.mark.parametrize("des_rounds", [1, 2, 4, 8, 16])
@pytest.mark.parametrize("fname", TCBC_KAT + TCBC_MMT)
def test_tdes_cbc_full(fname, des_rounds):
    run_tdes(tdes_cases(fname), des_rounds=des_rounds)


def run_sha(cases, **kw):
    res = check_engine(cases, **kw)
    for (c, _), r in zip(cases, res):
        assert r.mac == c["_expect"]


def test_sha1_short_sample():
    run_sha(sample(sha_cases("SHA1ShortMsg.rsp"), 6))


def test_sha1_long_sample():
    cases = sha_cases("SHA1LongMsg.rsp")
    run_sha([cases[0], cases[5]])


@pytest.mark.slow
@pytest.mark.parametrize("fname", ["SHA1ShortMsg.rsp", "SHA1LongMsg.rsp"])
def test_sha1_full(fname):
    run_sha(sha_cases(fname))


@pytest.mark.parametrize("form", ["key", "state"])
def test_rfc2202_hmac_sha1(form):
    cases = rfc2202_cases(form, 0) + rfc2202_cases(form, 1)[4:5]
    run_sha(cases)


def test_rfc2202_with_cipher_region():
    """RFC 2202 messages as the MAC region of a packet whose other bytes are
    3DES-encrypted (encrypt-then-MAC with the MAC region before the cipher
    region, so the MAC still covers the RFC's bytes)."""
    cases = []
    keys = (bytes(range(8)), bytes(range(8, 16)), bytes(range(16, 24)))
    for (c0, msg) in rfc2202_cases("state", 1)[:3]:
        tail = bytes(range(16))
        data = msg + tail
        c = make_cmd(cipher=Cipher.TDES, mac=Mac.HMAC_STATE, hmac_form="state", trunc=1,
                     order=Order.CIPHER_FIRST, length=len(data), cipher_skip=len(msg),
                     cipher_len=16, mac_len=len(msg), keys=keys, mac_key=c0["_key"])
        c["_expect"] = c0["_expect"]
        cases.append((c, data))
    run_sha(cases, des_rounds=4)
