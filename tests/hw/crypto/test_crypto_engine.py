"""Transform engine: property tests against `cryptography` (random keys,
IVs, lengths, regions, orderings, byte enables, stalls), invalid commands,
stream length errors, and the Verilog export."""

import random

import pytest
from conftest import check_engine
from crypto_ref import make_cmd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hw.crypto.engine import Cipher, Mac, Order, TransformEngine
from hw.crypto.harness import pack_command, run_engine, to_words

SETTINGS = dict(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@st.composite
def request(draw, max_len=96):
    length = draw(st.integers(0, max_len))
    data = draw(st.binary(min_size=length, max_size=length))
    cipher = draw(st.sampled_from([Cipher.NONE, Cipher.DES, Cipher.TDES, Cipher.TDES]))
    mac = draw(st.sampled_from([Mac.NONE, Mac.SHA1, Mac.HMAC_KEY, Mac.HMAC_STATE]))
    nblk = draw(st.integers(0, length // 8))
    cskip = draw(st.integers(0, length - 8 * nblk))
    mlen = draw(st.integers(0, length))
    mskip = draw(st.integers(0, length - mlen))
    keys = tuple(draw(st.binary(min_size=8, max_size=8)) for _ in range(3))
    c = make_cmd(cipher=cipher, decrypt=draw(st.integers(0, 1)), mac=mac,
                 order=draw(st.sampled_from([Order.CIPHER_FIRST, Order.MAC_FIRST])),
                 trunc=draw(st.integers(0, 1)), length=length, cipher_skip=cskip,
                 cipher_len=8 * nblk, mac_skip=mskip, mac_len=mlen, keys=keys,
                 iv=draw(st.binary(min_size=8, max_size=8)),
                 mac_key=draw(st.binary(min_size=0, max_size=64)),
                 hmac_form="key" if mac == Mac.HMAC_KEY else "state")
    return c, data


@settings(max_examples=14, **SETTINGS)
@given(reqs=st.lists(request(), min_size=1, max_size=4),
       stalls=st.sampled_from([(0, 0), (0.5, 0), (0, 0.5), (0.3, 0.6)]),
       sparse=st.sampled_from([0.0, 0.3]), seed=st.integers(0, 2**16))
def test_engine_matches_reference(reqs, stalls, sparse, seed):
    check_engine(reqs, des_rounds=2, sha_rounds=1, in_stall=stalls[0],
                 out_stall=stalls[1], res_stall=stalls[1] / 2, sparse=sparse, seed=seed)


@settings(max_examples=4, **SETTINGS)
@given(reqs=st.lists(request(max_len=72), min_size=2, max_size=3),
       rounds=st.sampled_from([(1, 4), (4, 1), (8, 5), (16, 16), (16, 80)]))
def test_engine_other_rounds(reqs, rounds):
    check_engine(reqs, des_rounds=rounds[0], sha_rounds=rounds[1],
                 in_stall=0.2, out_stall=0.2, sparse=0.2, seed=1)


def test_stalls_do_not_change_results():
    rng = random.Random(7)
    keys = tuple(rng.randbytes(8) for _ in range(3))
    data = rng.randbytes(150)
    c = make_cmd(cipher=Cipher.TDES, mac=Mac.HMAC_KEY, length=150, cipher_skip=6,
                 cipher_len=136, mac_skip=2, mac_len=145, keys=keys, iv=rng.randbytes(8),
                 mac_key=rng.randbytes(20), trunc=1)
    base = check_engine([(c, data)], des_rounds=4)[0]
    for s in (1, 2):
        r = check_engine([(c, data)], des_rounds=4, in_stall=0.6, out_stall=0.6,
                         res_stall=0.5, sparse=0.4, seed=s)[0]
        assert (r.out, r.mac, r.iv) == (base.out, base.mac, base.iv)
        assert r.cycles > base.cycles


def _valid(**kw):
    args = dict(cipher=Cipher.TDES, mac=Mac.SHA1, length=32, cipher_len=16,
                mac_len=32, keys=(b"k" * 8, b"e" * 8, b"y" * 8), iv=b"i" * 8)
    args.update(kw)
    return make_cmd(**args)


INVALID = {
    "cipher_len_not_block": dict(cipher_len=12),
    "cipher_region_past_end": dict(cipher_skip=24, cipher_len=16),
    "mac_region_past_end": dict(mac_skip=1, mac_len=32),
    "des_region_past_end": dict(cipher=Cipher.DES, cipher_len=40),
}


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_command_reports_status(name):
    ok = _valid()
    bad = _valid(**INVALID[name])
    data = bytes(range(32))
    # The invalid request in the middle: its data is drained, nothing comes
    # out, and the requests around it still work.
    res = check_engine([(ok, data), (bad, data), (ok, data)], des_rounds=2)
    key = "cipher_len" if "not_block" in name else "region"
    assert res[1].status[key] == 1
    assert res[0].out == res[2].out


def test_reserved_cipher_code_unsupported():
    bad = _valid()
    bad["cipher"] = 3
    res = check_engine([(bad, bytes(32)), (_valid(), bytes(32))])
    assert res[0].status["unsupported"] == 1 and res[1].status["unsupported"] == 0


@pytest.mark.parametrize("decrypt,order", [(0, Order.MAC_FIRST), (1, Order.CIPHER_FIRST)])
def test_tls_orders_switchable(decrypt, order):
    c = _valid(decrypt=decrypt, order=order)
    data = bytes(range(32))
    on = check_engine([(c, data)], tls_orders=True)[0]
    assert not any(on.status.values())
    off = check_engine([(c, data), (_valid(), data)], tls_orders=False)
    assert off[0].status["unsupported"] == 1 and not any(off[1].status.values())


@pytest.mark.parametrize("order", [Order.CIPHER_FIRST, Order.MAC_FIRST])
def test_chip_orders_valid_without_extension(order):
    c = _valid(decrypt=int(order == Order.MAC_FIRST), order=order)
    res = check_engine([(c, bytes(range(32)))], tls_orders=False)
    assert not any(res[0].status.values())


def test_length_error_early_last():
    """`last` arrives 4 bytes early: the missing bytes count as zero, the
    status says so, and the next request is unaffected."""
    c = _valid(cipher=Cipher.NONE, mac=Mac.SHA1)
    data = bytes(range(32))
    c2 = {k: v for k, v in c.items() if not k.startswith("_")}
    words = [to_words(data[:28]), to_words(data)]
    res = run_engine([(c2, data), (c2, data)], words=words)
    assert res[0].status["length"] == 1
    assert res[0].out == data[:28] + bytes(4)
    assert res[1].status["length"] == 0 and res[1].out == data


def test_length_error_missing_last():
    c = _valid(cipher=Cipher.NONE, mac=Mac.NONE)
    c2 = {k: v for k, v in c.items() if not k.startswith("_")}
    data = bytes(range(32))
    w = to_words(data)
    w[-1] = (w[-1][0], w[-1][1], 0)          # no `last` on the final word
    res = run_engine([(c2, data), (c2, data)], words=[w, to_words(data)])
    assert res[0].status["length"] == 1 and res[0].out == data
    assert res[1].status["length"] == 0 and res[1].out == data


def test_zero_length_request():
    c = make_cmd(mac=Mac.SHA1, length=0)
    res = check_engine([(c, b""), (_valid(), bytes(32))])
    assert res[0].mac == 0xDA39A3EE5E6B4B0D3255BFEF95601890AFD80709  # FIPS 180 SHA1("")


def test_pack_command_rejects_overflow():
    with pytest.raises(ValueError):
        pack_command(length=1 << 18)


def test_verilog_export():
    from amaranth.back import verilog
    for des_r, sha_r in [(2, 1), (4, 2)]:
        text = verilog.convert(TransformEngine(des_r, sha_r), name="crypto_engine")
        assert "module crypto_engine" in text
        for port in ("cmd__valid", "i__payload", "o__ready", "result__payload"):
            assert port in text


@pytest.mark.parametrize("card", ["hifn7751", "bcm5820"])
def test_card_params_meet_datasheet(card):
    """The chosen parameters reach the datasheet rate (OCF paper §5.1) on a
    1 KB packet, measured in engine cycles (results checked too)."""
    from hw.crypto.params import CARD_ENGINE_PARAMS, mbps
    p = CARD_ENGINE_PARAMS[card]
    rng = random.Random(5)
    data = rng.randbytes(1024)
    kw = dict(cipher=Cipher.TDES, length=1024, cipher_len=1024,
              keys=tuple(rng.randbytes(8) for _ in range(3)), iv=rng.randbytes(8))
    if p.ref_what != "3DES":
        kw.update(mac=Mac.HMAC_STATE, hmac_form="state", mac_len=1024, trunc=1,
                  mac_key=rng.randbytes(20))
    r = check_engine([(make_cmd(**kw), data)], **p.engine_kwargs())[0]
    assert mbps(r.cycles, 1024, p.clock_mhz) >= p.ref_mbps
