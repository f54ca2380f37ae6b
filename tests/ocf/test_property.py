"""Properties: whatever drivers do (fail, ERESTART, vanish), every dispatched request's
callback runs exactly once; garbage in /dev/crypto fields gives an errno; and
hostile concurrent users get OpenBSD's errno for every call, correct results,
and never make the kernel touch memory outside its allocations."""

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ocf.cryptodefs import (CRYPTO_3DES_CBC, CRYPTO_DES_CBC, CRYPTO_MD5, CRYPTO_MD5_HMAC,
                            CRYPTO_NULL, CRYPTO_SHA1, CRYPTO_SHA1_HMAC, CryptoBuf, CryptoDesc,
                            CryptoIni, CryptoOp)
from ocf.cryptodev import (CIOCCRYPT, CIOCFSESSION, CIOCGSESSION, CRIOGET, CRYPTODEV_MAXLEN,
                           CrioGet, CryptOp, SessionOp)
from sim.kernel.errno import EAGAIN, EBADF, EFAULT, EINVAL, EIO

from .fakes import FakeCard
from .hostile import (BUFFER_KINDS, MACS, Session, crypt_errno, fits, make_buffer, session_errno,
                      user_bytes)
from .support import System

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
    assert s.crypto.dispatched == s.crypto.completed == s.crypto.completed_ok + s.crypto.completed_errno
    for c in cards:
        st_ = s.crypto.driver_stats(c.cid)
        assert st_ is None or st_.outstanding == 0
        assert st_ is None or st_.operations == st_.completed_ok + st_.errors + st_.restarts
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


# ------------------------------------------------------------------ hostile users
CIPHER_CHOICES = (0, 0, CRYPTO_DES_CBC, CRYPTO_3DES_CBC, CRYPTO_NULL, 99, -1, "1")
MAC_CHOICES = (0, 0, CRYPTO_SHA1, CRYPTO_MD5, CRYPTO_SHA1_HMAC, CRYPTO_MD5_HMAC, 3, None)
LENS = (0, 4, 8, 12, 16, 24, 64, -8, CRYPTODEV_MAXLEN + 1, 1 << 40, None, "16", 16.0)
SIZES = (0, 4, 8, 12, 16, 20, 24, 64, 96)
IOCTLS = (CRIOGET, CIOCGSESSION, CIOCFSESSION, CIOCCRYPT, 0, -1, 1 << 70, "cmd", None, 3.0)

GOOD_KINDS = ("bytes", "bytearray", "view", "cast_c")
buffers = st.tuples(st.sampled_from(BUFFER_KINDS), st.sampled_from(SIZES))
maybe_buffer = st.one_of(st.none(), buffers)


@st.composite
def sized_buffer(draw, n, good=0.8):
    """A buffer meant for ``n`` bytes: mostly a byte buffer of n or more bytes."""
    if draw(st.floats(0, 1)) < good:
        return draw(st.sampled_from(GOOD_KINDS)), n + draw(st.sampled_from((0, 0, 4, 8)))
    return draw(st.sampled_from(BUFFER_KINDS)), max(0, n + draw(st.sampled_from((-4, -1, 0, 8))))


@st.composite
def sessions(draw, valid=False):
    """CIOCGSESSION: a valid cipher/MAC pair (``valid``: with valid keys and MAC
    length), or mostly so, sometimes garbage."""
    if not valid and draw(st.floats(0, 1)) < 0.15:
        return ("gsession", draw(st.sampled_from(CIPHER_CHOICES)), draw(st.sampled_from(MAC_CHOICES)),
                draw(key_lengths), draw(buffers), draw(key_lengths), draw(buffers),
                draw(st.sampled_from((0, 12, 21, None))))
    cipher, mac = draw(st.sampled_from([(c, m) for c in (0, CRYPTO_DES_CBC, CRYPTO_3DES_CBC, CRYPTO_NULL)
                                        for m in (0, CRYPTO_SHA1, CRYPTO_MD5, CRYPTO_SHA1_HMAC,
                                                  CRYPTO_MD5_HMAC) if c or m]))
    keylen = {0: 0, CRYPTO_DES_CBC: 8, CRYPTO_3DES_CBC: 24, CRYPTO_NULL: draw(st.sampled_from((0, 8)))}[cipher]
    mackeylen = MACS[mac][0] if mac else 0
    mlens = (0, 0, MACS[mac][1]) + (() if valid else (MACS[mac][1] + 1,)) if mac else (0,)
    good = 1 if valid else 0.8
    return ("gsession", cipher, mac, keylen, draw(sized_buffer(keylen, good)), mackeylen,
            draw(sized_buffer(mackeylen, good)), draw(st.sampled_from(mlens)))


@st.composite
def crypts(draw):
    """CIOCCRYPT on one of the first sessions: mostly sane fields and buffers."""
    if draw(st.floats(0, 1)) < 0.75:
        ses, op, flags = draw(st.sampled_from((0, 0, 1))), draw(st.sampled_from((1, 2))), 0
        len_ = draw(st.sampled_from((0, 8, 16, 24, 64, 96)))
    else:
        ses, op = draw(st.sampled_from((0, 1, 2, -1, "0"))), draw(st.sampled_from((1, 2, 0, 3, None)))
        flags, len_ = draw(st.sampled_from((0, 1, "0"))), draw(st.sampled_from((4, 12) + LENS))
    n = len_ if type(len_) is int and 0 <= len_ <= 128 else 16
    mac = draw(st.one_of(st.none(), sized_buffer(20)))
    iv = draw(st.one_of(st.none(), st.none(), sized_buffer(8)))
    return ("crypt", ses, op, flags, len_, draw(sized_buffer(n)),
            draw(st.one_of(st.none(), sized_buffer(n), sized_buffer(n))), mac, iv)


key_lengths = st.sampled_from((0, 8, 16, 20, 24, 256, 257, -1, None))
others = st.one_of(
    st.tuples(st.just("fsession"), st.one_of(st.integers(-1, 4), st.none(), st.text(max_size=2))),
    st.tuples(st.just("ioctl"), st.sampled_from(("clone", "base", 99, "fd", None)),
              st.sampled_from(IOCTLS), st.one_of(st.none(), st.integers(-3, 3), buffers)),
    st.tuples(st.just("release"), st.integers(0, 30)),
    st.tuples(st.just("meddle"), st.sampled_from(("len", "dst", "src", "ses", "mac")),
              st.sampled_from((1 << 20, 4096, None, -1, 0))),
    st.tuples(st.just("user"), st.integers(0, 50_000_000)),
)
programs = st.tuples(st.lists(sessions(valid=True), min_size=1, max_size=2),
                     st.lists(st.one_of(sessions(), crypts(), crypts(), crypts(), others),
                              max_size=12)).map(lambda t: t[0] + t[1])


class Hostile:
    """Runs the programs of concurrent processes and checks each result against
    the model in :mod:`tests.ocf.hostile`; buffers to release and structs to
    change behind a sleeping call are shared by every process."""

    def __init__(self, s, rnd, flaky_card=False):
        self.s, self.k, self.rnd = s, s.kernel, rnd
        self.flaky_card = flaky_card
        self.releasable: list[memoryview] = []
        self.structs: list[CryptOp] = []

    def buffer(self, spec):
        if spec is None:
            return None
        kind, size = spec
        buf = make_buffer(kind, self.rnd.randbytes(size))
        if type(buf) is memoryview:
            self.releasable.append(buf)
        return buf

    async def run(self, p, program):
        k = self.k
        err, base = await k.sys_open(p, "/dev/crypto")
        assert err == 0
        g = CrioGet()
        assert await k.sys_ioctl(p, base, CRIOGET, g) == 0
        mine: dict[int, Session] = {}
        for action in program:
            await getattr(self, "do_" + action[0])(p, base, g.fd, mine, *action[1:])

    async def do_gsession(self, p, base, fd, mine, cipher, mac, keylen, key, mackeylen, mackey, mlen):
        sop = SessionOp(cipher=cipher, mac=mac, keylen=keylen, key=self.buffer(key),
                        mackeylen=mackeylen, mackey=self.buffer(mackey), mlen=mlen)
        want = session_errno(sop)
        model = Session(sop) if want == 0 else None
        r = await self.k.sys_ioctl(p, fd, CIOCGSESSION, sop)
        assert r == want, (sop, r, want)
        if r == 0:
            assert sop.ses not in mine
            mine[sop.ses] = model

    async def do_crypt(self, p, base, fd, mine, ses, op, flags, len_, src, dst, mac, iv):
        cop = CryptOp(ses=ses, op=op, flags=flags, len=len_, src=self.buffer(src),
                      dst=self.buffer(dst), mac=self.buffer(mac), iv=self.buffer(iv))
        self.structs.append(cop)
        sess = mine.get(ses)
        want = crypt_errno(sess, cop)
        expect = None
        if want == 0:
            expect = sess.result(user_bytes(cop.src)[:len_], op, cop.iv)
        dst_buf, mac_buf = cop.dst, cop.mac
        r = await self.k.sys_ioctl(p, fd, CIOCCRYPT, cop)
        if r != want and want == 0 and r == EIO:   # a card failing a NULL request
            assert self.flaky_card and sess.cipher == CRYPTO_NULL and not sess.mac
            return
        if r != want:    # only a buffer released while the request slept may change it
            assert want == 0 and r == EFAULT, (cop, r, want)
            assert not fits(dst_buf, len_, True) or not fits(mac_buf, sess.maclen, True)
            return
        if r == 0:
            out, m = expect
            got = user_bytes(dst_buf, True)
            if got is not None:
                assert got[:len_] == out
            got = user_bytes(mac_buf, True)
            if got is not None:
                assert got[:sess.maclen] == m

    async def do_fsession(self, p, base, fd, mine, ses):
        want = 0 if type(ses) is int and ses in mine else EINVAL
        assert await self.k.sys_ioctl(p, fd, CIOCFSESSION, ses) == want
        if want == 0:
            del mine[ses]

    async def do_ioctl(self, p, base, fd, mine, which, cmd, arg):
        target = {"clone": fd, "base": base}.get(which, which)
        if type(arg) is tuple:
            arg = self.buffer(arg)
        r = await self.k.sys_ioctl(p, target, cmd, arg)
        if target not in (fd, base):
            assert r == EBADF
        elif type(cmd) is not int or cmd not in (CRIOGET, CIOCGSESSION, CIOCFSESSION, CIOCCRYPT):
            assert r == EINVAL
        elif cmd == CIOCFSESSION and target == fd:
            assert r == (0 if type(arg) is int and arg in mine else EINVAL)
            mine.pop(arg, None) if type(arg) is int else None
        else:       # a buffer or an int where a struct belongs; the wrong descriptor
            assert r in (EFAULT, EINVAL)

    async def do_release(self, p, base, fd, mine, i):
        if self.releasable:
            self.releasable[i % len(self.releasable)].release()

    async def do_meddle(self, p, base, fd, mine, field, value):
        if self.structs:
            setattr(self.structs[-1], field, value)

    async def do_user(self, p, base, fd, mine, ps):
        await self.k.user(ps)


def check_accounting(s):
    c = s.crypto
    assert c.dispatched == c.completed and c.outstanding == 0
    assert c.completed == c.completed_ok + c.completed_errno and c.dup_done == 0
    for drv in c.drivers:
        if drv is not None:
            st_ = drv.stats
            assert st_.operations == st_.completed_ok + st_.errors + st_.restarts + st_.outstanding
            assert st_.outstanding == 0 and st_.sessions == len(drv.lids) == 0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(progs=st.lists(programs, min_size=1, max_size=3),
       card=st.sampled_from((None, "ok", "flaky")), seed=st.integers(0, 2**32 - 1))
def test_hostile_users_get_openbsd_errnos_and_never_touch_kernel_memory(progs, card, seed):
    s = System(allow_soft=True)
    rnd = random.Random(seed)
    if card:    # NULL sessions go to a card: requests sleep, others run and meddle meanwhile
        plan = ("ok",) if card == "ok" else BEHAVIOURS
        FakeCard(s.crypto, delay=30_000_000, behave=lambda crp: rnd.choice(plan))
    free0 = s.memory.bytes_free
    h = Hostile(s, rnd, flaky_card=card == "flaky")
    procs = [s.kernel.fork(f"hostile{i}", h.run, prog) for i, prog in enumerate(progs)]

    async def main():
        for p in procs:
            await p.task
    s.loop.run(main(), deadline=10**13)
    assert all(p.exc is None for p in procs)
    assert s.memory.violations == []
    assert s.kernel.catchalls == 0
    check_accounting(s)
    assert s.memory.bytes_free == free0          # every kernel buffer freed
    assert not s.ocf.swcr.sessions               # exit closed every descriptor and session
