"""/dev/crypto: errno paths, byte-exact results through cryptosoft, time accounting."""

import hmac as pyhmac
import hashlib

import pytest
from .support import System
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from .fakes import FakeCard

from ocf.cryptodefs import (CRYPTO_3DES_CBC, CRYPTO_DES_CBC, CRYPTO_MD5, CRYPTO_MD5_HMAC,
                            CRYPTO_NULL, CRYPTO_SHA1, CRYPTO_SHA1_HMAC)
from ocf.cryptodev import (CIOCCRYPT, CIOCFSESSION, CIOCGSESSION, COP_DECRYPT, COP_ENCRYPT,
                           CRIOGET, CrioGet, CryptOp, SessionOp)
from sim.kernel.errno import E2BIG, EBADF, EFAULT, EINVAL, ENODEV

K3 = bytes(range(1, 25))
K1 = bytes(range(8, 16))
MK = b"mac-key-0123456789ab"


def tdes(key, iv, data, enc=True):
    c = Cipher(TripleDES(key if len(key) == 24 else key * 3), modes.CBC(iv))
    x = c.encryptor() if enc else c.decryptor()
    return x.update(data) + x.finalize()


async def opendev(k, p):
    err, fd = await k.sys_open(p, "/dev/crypto")
    assert err == 0
    g = CrioGet()
    assert await k.sys_ioctl(p, fd, CRIOGET, g) == 0
    return fd, g.fd


def run(s, body):
    async def proc(p):
        fd, cfd = await opendev(s.kernel, p)
        return await body(p, cfd, fd)
    return s.run_proc(proc, deadline=10**12)


def ioctl(s, p, fd, cmd, arg):
    return s.kernel.sys_ioctl(p, fd, cmd, arg)


# ------------------------------------------------------------------ sessions
@pytest.mark.parametrize("sop,err", [
    (SessionOp(cipher=99, keylen=8, key=K1), EINVAL),                    # unknown cipher
    (SessionOp(mac=99, mackeylen=20, mackey=MK), EINVAL),                # unknown mac
    (SessionOp(), EINVAL),                                               # nothing
    (SessionOp(cipher=CRYPTO_3DES_CBC, keylen=16, key=K3), EINVAL),      # bad key length
    (SessionOp(cipher=CRYPTO_DES_CBC, keylen=-8, key=K1), EINVAL),
    (SessionOp(cipher=CRYPTO_DES_CBC, keylen=1 << 40, key=K1), EINVAL),  # huge key length
    (SessionOp(cipher=CRYPTO_DES_CBC, keylen=8, key=None), EFAULT),
    (SessionOp(cipher=CRYPTO_DES_CBC, keylen=8, key=b"abc"), EFAULT),
    (SessionOp(mac=CRYPTO_SHA1_HMAC, mackeylen=16, mackey=MK), EINVAL),
    (SessionOp(mac=CRYPTO_SHA1_HMAC, mackeylen=20, mackey=None), EFAULT),
    (SessionOp(mac=CRYPTO_SHA1_HMAC, mackeylen=20, mackey=MK, mlen=21), EINVAL),
    (SessionOp(cipher="1", keylen=8, key=K1), EINVAL),
    (None, EFAULT),
    ("garbage", EFAULT),
])
def test_gsession_errors(sop, err):
    s = System(allow_soft=True)

    async def body(p, cfd, fd):
        return await ioctl(s, p, cfd, CIOCGSESSION, sop)
    assert run(s, body) == err


def test_no_hardware_is_einval_unless_allowsoft():
    for allow, want in ((False, EINVAL), (True, 0)):
        s = System(allow_soft=allow)

        async def body(p, cfd, fd):
            return await ioctl(s, p, cfd, CIOCGSESSION, SessionOp(cipher=CRYPTO_3DES_CBC, keylen=24, key=K3))
        assert run(s, body) == want


def test_hardware_session_without_allowsoft():
    s = System()
    card = FakeCard(s.crypto)

    async def body(p, cfd, fd):
        sop = SessionOp(cipher=CRYPTO_NULL)
        assert await ioctl(s, p, cfd, CIOCGSESSION, sop) == 0
        src = bytes(range(64))
        dst = bytearray(64)
        assert await ioctl(s, p, cfd, CIOCCRYPT, CryptOp(ses=sop.ses, op=COP_ENCRYPT, len=64, src=src, dst=dst)) == 0
        return bytes(dst)
    assert run(s, body) == bytes(range(64))
    assert s.crypto.driver_stats(card.cid).operations == 1


def test_base_descriptor_and_bad_descriptors():
    s = System(allow_soft=True)

    async def body(p, cfd, fd):
        r = [await ioctl(s, p, fd, CIOCGSESSION, SessionOp(cipher=CRYPTO_NULL)),   # not on the base fd
             await ioctl(s, p, cfd, CRIOGET, CrioGet()),                          # not on a clone
             await ioctl(s, p, fd, CRIOGET, None),
             await ioctl(s, p, cfd, 12345, None),
             await ioctl(s, p, 99, CIOCGSESSION, SessionOp()),
             await ioctl(s, p, "x", CIOCGSESSION, SessionOp()),
             await s.kernel.sys_close(p, cfd),
             await ioctl(s, p, cfd, CIOCGSESSION, SessionOp(cipher=CRYPTO_NULL)),  # closed
             await s.kernel.sys_close(p, cfd),
             (await s.kernel.sys_open(p, "/dev/nothing"))[0],
             (await s.kernel.sys_open(p, None))[0]]
        return r
    assert run(s, body) == [EINVAL, EINVAL, EFAULT, EINVAL, EBADF, EBADF, 0, EBADF, EBADF, ENODEV, ENODEV]


def test_sessions_are_per_descriptor_and_freed_on_close():
    s = System(allow_soft=True)

    async def body(p, cfd, fd):
        g2 = CrioGet()
        assert await ioctl(s, p, fd, CRIOGET, g2) == 0
        sop = SessionOp(cipher=CRYPTO_DES_CBC, keylen=8, key=K1)
        assert await ioctl(s, p, cfd, CIOCGSESSION, sop) == 0
        sop2 = SessionOp(cipher=CRYPTO_DES_CBC, keylen=8, key=K1)
        assert await ioctl(s, p, cfd, CIOCGSESSION, sop2) == 0
        cop = CryptOp(ses=sop.ses, op=COP_ENCRYPT, len=16, src=bytes(16), dst=bytearray(16))
        foreign = await ioctl(s, p, g2.fd, CIOCCRYPT, cop)             # other descriptor's session
        ffree = await ioctl(s, p, g2.fd, CIOCFSESSION, sop.ses)
        before = s.crypto.driver_stats(s.ocf.swcr.cid).sessions
        freed = await ioctl(s, p, cfd, CIOCFSESSION, sop.ses)
        again = await ioctl(s, p, cfd, CIOCFSESSION, sop.ses)
        garbage = [await ioctl(s, p, cfd, CIOCFSESSION, x) for x in (None, -1, "0", 1 << 70)]
        await s.kernel.sys_close(p, cfd)
        after = s.crypto.driver_stats(s.ocf.swcr.cid).sessions
        return foreign, ffree, before, freed, again, garbage, after
    foreign, ffree, before, freed, again, garbage, after = run(s, body)
    assert (foreign, ffree, before, freed, again) == (EINVAL, EINVAL, 2, 0, EINVAL)
    assert garbage == [EINVAL] * 4 and after == 0 and len(s.ocf.swcr.sessions) == 0


def test_process_exit_closes_descriptors():
    s = System(allow_soft=True)

    async def body(p, cfd, fd):
        assert await ioctl(s, p, cfd, CIOCGSESSION, SessionOp(cipher=CRYPTO_NULL)) == 0
    run(s, body)
    assert s.crypto.driver_stats(s.ocf.swcr.cid).sessions == 0


# ------------------------------------------------------------------ CIOCCRYPT errors
def crypt_errors_cases():
    ok = dict(op=COP_ENCRYPT, len=16, src=bytes(16), dst=bytearray(16))
    return [
        (dict(ok, len=262144, src=bytes(262144), dst=bytearray(262144)), E2BIG),
        (dict(ok, len=262141), E2BIG),
        (dict(ok, len=12, src=bytes(12)), EINVAL),                    # not a block multiple
        (dict(ok, len=-8), EINVAL),
        (dict(ok, len=0), EINVAL),
        (dict(ok, len=None), EINVAL),
        (dict(ok, op=3), EINVAL),
        (dict(ok, op=None), EINVAL),
        (dict(ok, flags=1), EINVAL),
        (dict(ok, src=None), EFAULT),
        (dict(ok, src=bytes(8)), EFAULT),
        (dict(ok, dst=bytes(16)), EFAULT),                           # read-only user buffer
        (dict(ok, dst=bytearray(4)), EFAULT),
        (dict(ok, iv=b"1234"), EFAULT),
        (dict(ok, iv=5), EFAULT),
        (dict(ok, mac=bytearray(12)), EINVAL),                        # no MAC in session
        (dict(ok, ses=77), EINVAL),
        (dict(ok, ses=None), EINVAL),
    ]


@pytest.mark.parametrize("fields,err", crypt_errors_cases())
def test_crypt_errors(fields, err):
    s = System(allow_soft=True)

    async def body(p, cfd, fd):
        sop = SessionOp(cipher=CRYPTO_DES_CBC, keylen=8, key=K1)
        assert await ioctl(s, p, cfd, CIOCGSESSION, sop) == 0
        cop = CryptOp(ses=sop.ses)
        for k_, v in fields.items():
            setattr(cop, k_, v)
        r = await ioctl(s, p, cfd, CIOCCRYPT, cop)
        return r, s.memory.bytes_free
    free0 = s.memory.bytes_free
    r, free1 = run(s, body)
    assert r == err
    assert free1 == free0                     # no kernel buffer leaked


def test_crypt_garbage_arg():
    s = System(allow_soft=True)

    async def body(p, cfd, fd):
        return [await ioctl(s, p, cfd, CIOCCRYPT, x) for x in (None, 3, "x", SessionOp())]
    assert run(s, body) == [EFAULT] * 4


# ------------------------------------------------------------------ byte-exact
@pytest.mark.parametrize("cipher,key", [(CRYPTO_DES_CBC, K1), (CRYPTO_3DES_CBC, K3)])
@pytest.mark.parametrize("explicit_iv", [True, False])
def test_cipher_byte_exact(cipher, key, explicit_iv):
    s = System(allow_soft=True)
    data = bytes((i * 7 + 3) & 0xFF for i in range(256))
    iv = b"IVIVIVIV"

    async def body(p, cfd, fd):
        sop = SessionOp(cipher=cipher, keylen=len(key), key=key)
        assert await ioctl(s, p, cfd, CIOCGSESSION, sop) == 0
        if explicit_iv:
            enc, dec = bytearray(256), bytearray(256)
            assert await ioctl(s, p, cfd, CIOCCRYPT, CryptOp(sop.ses, COP_ENCRYPT, 0, 256, data, enc, None, iv)) == 0
            assert await ioctl(s, p, cfd, CIOCCRYPT, CryptOp(sop.ses, COP_DECRYPT, 0, 256, bytes(enc), dec, None, iv)) == 0
            return bytes(enc), bytes(dec)
        src = iv + data
        enc, dec = bytearray(264), bytearray(264)
        assert await ioctl(s, p, cfd, CIOCCRYPT, CryptOp(sop.ses, COP_ENCRYPT, 0, 264, src, enc)) == 0
        assert await ioctl(s, p, cfd, CIOCCRYPT, CryptOp(sop.ses, COP_DECRYPT, 0, 264, bytes(enc), dec)) == 0
        return bytes(enc), bytes(dec)
    enc, dec = run(s, body)
    if explicit_iv:
        assert enc == tdes(key, iv, data) and dec == data
    else:   # the first block is the IV and passes through
        assert enc == iv + tdes(key, iv, data) and dec == iv + data


@pytest.mark.parametrize("mac,key,hname,mlen,want", [
    (CRYPTO_SHA1_HMAC, MK, "sha1", 0, 12), (CRYPTO_SHA1_HMAC, MK, "sha1", 20, 20),
    (CRYPTO_MD5_HMAC, MK[:16], "md5", 0, 12), (CRYPTO_MD5_HMAC, MK[:16], "md5", 16, 16),
    (CRYPTO_SHA1, None, "sha1", 0, 20), (CRYPTO_MD5, None, "md5", 0, 16),
])
def test_mac_byte_exact(mac, key, hname, mlen, want):
    s = System(allow_soft=True)
    data = bytes(range(200)) + bytes(56)

    async def body(p, cfd, fd):
        sop = SessionOp(mac=mac, mackeylen=len(key) if key else 0, mackey=key, mlen=mlen)
        assert await ioctl(s, p, cfd, CIOCGSESSION, sop) == 0
        out = bytearray(want)
        assert await ioctl(s, p, cfd, CIOCCRYPT, CryptOp(sop.ses, COP_ENCRYPT, 0, 256, data, None, out)) == 0
        return bytes(out)
    if key:
        ref = pyhmac.new(key, data, hname).digest()
    else:
        ref = hashlib.new(hname, data).digest()
    assert run(s, body) == ref[:want]


def test_cipher_then_mac_order():
    s = System(allow_soft=True)
    data = bytes(range(64))
    iv = b"\x01" * 8

    async def body(p, cfd, fd):
        sop = SessionOp(cipher=CRYPTO_3DES_CBC, keylen=24, key=K3, mac=CRYPTO_SHA1_HMAC,
                        mackeylen=20, mackey=MK)
        assert await ioctl(s, p, cfd, CIOCGSESSION, sop) == 0
        enc, m1 = bytearray(64), bytearray(12)
        assert await ioctl(s, p, cfd, CIOCCRYPT, CryptOp(sop.ses, COP_ENCRYPT, 0, 64, data, enc, m1, iv)) == 0
        dec, m2 = bytearray(64), bytearray(12)
        assert await ioctl(s, p, cfd, CIOCCRYPT, CryptOp(sop.ses, COP_DECRYPT, 0, 64, bytes(enc), dec, m2, iv)) == 0
        return bytes(enc), bytes(m1), bytes(dec), bytes(m2)
    enc, m1, dec, m2 = run(s, body)
    assert enc == tdes(K3, iv, data) and dec == data
    assert m1 == m2 == pyhmac.new(MK, enc, "sha1").digest()[:12]   # MAC over the ciphertext


# ------------------------------------------------------------------ time
def test_request_costs_exactly_the_sum_of_its_parts():
    s = System(allow_soft=True)
    k, prof = s.kernel, s.kernel.profile
    n = 1024

    async def body(p, cfd, fd):
        sop = SessionOp(cipher=CRYPTO_NULL)
        assert await ioctl(s, p, cfd, CIOCGSESSION, sop) == 0
        await s.kernel.tsleep(body, 24, "settle", timo=10**6)    # let the machine go idle
        acct0, t0 = k.accounting(), s.loop.now
        assert await ioctl(s, p, cfd, CIOCCRYPT, CryptOp(sop.ses, COP_ENCRYPT, 0, n, bytes(n), bytearray(n))) == 0
        return acct0, t0, k.accounting(), s.loop.now
    acct0, t0, acct1, t1 = run(s, body)
    expect = (prof.cost("kernel.syscall_entry") + prof.cost("cryptodev.op")
              + k.copy_cost(n) + prof.cost("ocf.dispatch") + prof.cost("kernel.tsleep")
              + prof.cost("kernel.context_switch")                       # to the crypto thread
              + prof.cost("ocf.invoke") + prof.cost("cryptosoft.process")
              + prof.cost("cryptosoft.null.op") + prof.bytes_cost("cryptosoft.null.byte", n)
              + prof.cost("kernel.tsleep") + prof.cost("kernel.context_switch")  # back
              + k.copy_cost(n) + prof.cost("cryptodev.done") + prof.cost("kernel.syscall_exit"))
    assert t1 - t0 == expect
    delta = {kind: acct1.get(kind, 0) - acct0.get(kind, 0) for kind in acct1}
    assert delta.get("idle", 0) == 0 and delta.get("stall", 0) == 0
    assert sum(delta.values()) == expect
    assert delta["copy"] == 2 * k.copy_cost(n)
    assert delta["switch"] == 2 * prof.cost("kernel.context_switch")


def test_null_throughput_matches_paper_calibration():
    from bench.null import measure
    for size, ref in ((1024, 420.0), (8192, 600.0)):
        row = measure(size, 1, rounds=5)
        assert abs(row["mbps"] - ref) / ref < 0.02


def test_processes_share_the_cpu_fairly():
    s = System(allow_soft=True)
    k = s.kernel
    counts = {}
    stop = []

    async def worker(p, i):
        fd, cfd = await opendev(k, p)
        sop = SessionOp(cipher=CRYPTO_NULL)
        assert await ioctl(s, p, cfd, CIOCGSESSION, sop) == 0
        counts[i] = 0
        while not stop:
            assert await ioctl(s, p, cfd, CIOCCRYPT, CryptOp(sop.ses, COP_ENCRYPT, 0, 512, bytes(512), bytearray(512))) == 0
            counts[i] += 1
    procs = [k.fork(f"w{i}", worker, i) for i in range(4)]

    async def main():
        await s.loop.sleep(2_000_000_000)       # 2 ms
        stop.append(1)
        for p in procs:
            await p.task
    s.loop.run(main())
    c = list(counts.values())
    assert min(c) > 20 and max(c) - min(c) <= 1
    cpu = [p.cpu_total for p in procs]
    assert max(cpu) / min(cpu) < 1.05
    acct = k.accounting()
    assert sum(acct.values()) == s.loop.now


# ------------------------------------------------------------------ user buffers
def released(n):
    m = memoryview(bytearray(n))
    m.release()
    return m


def crypt_on_null_session(s, **fields):
    """CIOCCRYPT on a NULL-cipher session with ``fields``; (errno, crypto thread stats)."""
    async def body(p, cfd, fd):
        sop = SessionOp(cipher=CRYPTO_NULL)
        assert await ioctl(s, p, cfd, CIOCGSESSION, sop) == 0
        return await ioctl(s, p, cfd, CIOCCRYPT, CryptOp(ses=sop.ses, op=COP_ENCRYPT, **fields))
    return run(s, body)


def test_user_buffer_of_wide_items_cannot_overflow_a_kernel_buffer():
    """A memoryview of doubles holds 8 bytes per item: 16 items are 128 bytes,
    which must not be copied into the 16-byte kernel buffer (or at all)."""
    s = System(allow_soft=True)
    src = memoryview(bytearray(b"\xAA" * 128)).cast("d")
    assert crypt_on_null_session(s, len=16, src=src, dst=bytearray(16)) == EFAULT
    assert s.memory.violations == []          # nothing outside a live allocation
    assert s.crypto.dispatched == 0


@pytest.mark.parametrize("fields", [
    dict(src=released(16), dst=bytearray(16)),
    dict(src=bytes(16), dst=released(16)),
    dict(src=bytes(16), dst=memoryview(bytearray(16)).cast("I")),      # itemsize 4
    dict(src=memoryview(bytearray(32))[::2], dst=bytearray(16)),       # not contiguous
    dict(src=memoryview(bytearray(16)).cast("B", (4, 4)), dst=bytearray(16)),  # 2-D
    dict(src=bytes(16), dst=memoryview(bytearray(16)).toreadonly()),
    dict(src=bytes(16), dst=memoryview(bytearray(8))),
    dict(src=[0] * 16, dst=bytearray(16)),
])
def test_bad_user_buffers_are_efault(fields):
    s = System(allow_soft=True)
    assert crypt_on_null_session(s, len=16, **fields) == EFAULT
    assert s.kernel.catchalls == 0 and s.memory.violations == []


def test_byte_memoryviews_are_user_buffers():
    s = System(allow_soft=True)
    out = bytearray(32)
    src = memoryview(bytearray(range(64)))[16:48].cast("c")
    assert crypt_on_null_session(s, len=32, src=src, dst=memoryview(out)) == 0
    assert out == bytes(range(16, 48))


def test_released_buffers_in_session_keys_and_iv_are_efault():
    s = System(allow_soft=True)

    async def body(p, cfd, fd):
        r = [await ioctl(s, p, cfd, CIOCGSESSION,
                         SessionOp(cipher=CRYPTO_DES_CBC, keylen=8, key=released(8))),
             await ioctl(s, p, cfd, CIOCGSESSION,
                         SessionOp(mac=CRYPTO_SHA1_HMAC, mackeylen=20, mackey=released(20)))]
        sop = SessionOp(cipher=CRYPTO_DES_CBC, keylen=8, key=memoryview(K1))
        assert await ioctl(s, p, cfd, CIOCGSESSION, sop) == 0
        r.append(await ioctl(s, p, cfd, CIOCCRYPT, CryptOp(sop.ses, COP_ENCRYPT, 0, 16, bytes(16),
                                                          bytearray(16), None, released(8))))
        r.append(await ioctl(s, p, cfd, CIOCCRYPT, CryptOp(sop.ses, COP_ENCRYPT, 0, 16, bytes(16),
                                                          bytearray(16), None,
                                                          memoryview(bytearray(8)).cast("Q"))))
        return r
    assert run(s, body) == [EFAULT] * 4
    assert s.kernel.catchalls == 0


def test_struct_changed_while_the_call_sleeps_is_not_seen():
    """The kernel works on its copy of struct crypt_op: another process raising
    ``len`` while the request is on the card reads no kernel memory beyond it."""
    s = System()
    FakeCard(s.crypto, delay=50_000_000)
    k = s.kernel
    cop = CryptOp(op=COP_ENCRYPT, len=16, src=bytes(range(16)), dst=bytearray(4096))

    async def owner(p):
        fd, cfd = await opendev(k, p)
        sop = SessionOp(cipher=CRYPTO_NULL)
        assert await ioctl(s, p, cfd, CIOCGSESSION, sop) == 0
        cop.ses = sop.ses
        return await ioctl(s, p, cfd, CIOCCRYPT, cop)

    async def meddler(p):
        await k.tsleep(meddler, 24, "later", timo=20_000_000)
        cop.len = 4096
    a = k.fork("owner", owner)
    k.fork("meddler", meddler)
    assert s.loop.run(a.task, deadline=10**12) == 0
    assert cop.dst[:16] == bytes(range(16)) and cop.dst[16:] == bytes(4080)
    assert s.memory.violations == []


# ------------------------------------------------------------------ empty hash
@pytest.mark.parametrize("mac,key,hname", [
    (CRYPTO_SHA1, None, "sha1"), (CRYPTO_MD5, None, "md5"),
    (CRYPTO_SHA1_HMAC, MK, "sha1"), (CRYPTO_MD5_HMAC, MK[:16], "md5"),
])
def test_zero_length_hash_is_the_digest_of_the_empty_message(mac, key, hname):
    s = System(allow_soft=True)
    want = hashlib.new(hname).digest_size if not key else 12

    async def body(p, cfd, fd):
        sop = SessionOp(mac=mac, mackeylen=len(key) if key else 0, mackey=key)
        assert await ioctl(s, p, cfd, CIOCGSESSION, sop) == 0
        out = bytearray(want)
        r = [await ioctl(s, p, cfd, CIOCCRYPT, CryptOp(sop.ses, COP_ENCRYPT, 0, 0, b"", None, out)),
             bytes(out)]
        r.append(await ioctl(s, p, cfd, CIOCCRYPT, CryptOp(sop.ses, COP_ENCRYPT, 0, 0, None, None,
                                                          bytearray(want))))
        return r
    ref = pyhmac.new(key, b"", hname).digest()[:12] if key else hashlib.new(hname, b"").digest()
    assert run(s, body) == [0, ref, 0]
