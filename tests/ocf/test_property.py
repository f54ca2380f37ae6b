"""Property: whatever drivers do (fail, ERESTART, vanish), every dispatched request's
callback runs exactly once, and garbage in /dev/crypto fields gives an errno."""

from .support import System
from .fakes import FakeCard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ocf.cryptodefs import CRYPTO_NULL, CryptoBuf, CryptoDesc, CryptoIni, CryptoOp
from ocf.cryptodev import CIOCCRYPT, CIOCGSESSION, CRIOGET, CrioGet, CryptOp, SessionOp
from sim.kernel.errno import EAGAIN

BEHAVIOURS = ("ok", "ok", "ok", "fail", "reject", "restart", "vanish")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ncards=st.integers(1, 4), nreq=st.integers(1, 25), software=st.booleans(),
       seed=st.integers(0, 2**32 - 1),
       plan=st.lists(st.sampled_from(BEHAVIOURS), min_size=1, max_size=40),
       gap=st.sampled_from([0, 3_000_000, 20_000_000]))
def test_every_request_completes_exactly_once(ncards, nreq, software, seed, plan, gap):
    s = System(software=software)
    k = s.kernel
    step = iter(plan * 1000)
    cards = [FakeCard(s.crypto, f"c{i}", delay=5_000_000 * (i + 1),
                      behave=lambda crp: next(step)) for i in range(ncards)]
    calls = {}
    final = {}
    chan = object()
    redispatch = []

    def cb(crp):
        calls[id(crp)] = calls.get(id(crp), 0) + 1
        assert crp.ndone == crp.ndispatch
        if crp.etype == EAGAIN:
            assert s.crypto.dispatch(crp) == 0
            redispatch.append(crp)
            return
        assert id(crp) not in final
        final[id(crp)] = crp.etype
        if len(final) == nreq:
            k.wakeup(chan)

    reqs = []

    async def consumer(t):
        for i in range(nreq):
            err, sid = await s.crypto.newsession([CryptoIni(CRYPTO_NULL)], False)
            addr = s.memory.alloc(32)
            crp = CryptoOp(sid=sid if not err else (7 << 32), ilen=32, olen=32,
                           buf=CryptoBuf.contiguous(s.memory, addr, 32),
                           desc=[CryptoDesc(CryptoIni(CRYPTO_NULL), 0, 32, 0, 1)], callback=cb)
            reqs.append(crp)
            assert s.crypto.dispatch(crp) == 0
            if gap:
                await k.tsleep(object(), 24, "gap", timo=gap)
        while len(final) < nreq:
            await k.tsleep(chan, 24, "wait")

    s.run_kthread(consumer, deadline=10**13)
    assert len(final) == nreq
    for crp in reqs:
        assert crp.ndone == crp.ndispatch == calls[id(crp)]
        assert crp.driver is None
    assert s.crypto.dup_done == 0 and s.crypto.callback_errors == 0
    for c in cards:
        st_ = s.crypto.driver_stats(c.cid)
        assert st_ is None or st_.outstanding == 0
    assert sum(s.kernel.accounting().values()) == s.loop.now


garbage = st.one_of(st.none(), st.integers(-2**70, 2**70), st.text(max_size=3),
                    st.binary(max_size=40), st.floats(allow_nan=True), st.just(bytearray(64)))


@settings(max_examples=60, deadline=None)
@given(ses=garbage, op=garbage, flags=garbage, len_=garbage, src=garbage, dst=garbage,
       mac=garbage, iv=garbage, cmd=st.sampled_from([CIOCCRYPT, CIOCGSESSION, CRIOGET, 0, -1]))
def test_garbage_fields_give_errno(ses, op, flags, len_, src, dst, mac, iv, cmd):
    s = System(allow_soft=True)
    k = s.kernel

    async def proc(p):
        err, fd = await k.sys_open(p, "/dev/crypto")
        g = CrioGet()
        assert await k.sys_ioctl(p, fd, CRIOGET, g) == 0
        sop = SessionOp(cipher=CRYPTO_NULL)
        assert await k.sys_ioctl(p, g.fd, CIOCGSESSION, sop) == 0
        r1 = await k.sys_ioctl(p, g.fd, CIOCCRYPT, CryptOp(ses, op, flags, len_, src, dst, mac, iv))
        r2 = await k.sys_ioctl(p, g.fd, cmd, SessionOp(ses, op, len_, src, flags, mac, 0, 0))
        r3 = await k.sys_ioctl(p, g.fd, cmd, len_)
        return r1, r2, r3
    rs = s.run_proc(proc, deadline=10**12)
    assert all(type(r) is int and r >= 0 for r in rs)
    assert not [m for m in k.msgbuf if "raised" in m]
    assert s.crypto.dispatched == s.crypto.completed
