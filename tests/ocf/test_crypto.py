"""OCF core: driver table, session selection, dispatch/done, migration, statistics."""

import pytest

from .support import System
from .fakes import FakeCard

from ocf.cryptodefs import (CRYPTO_3DES_CBC, CRYPTO_ALGORITHM_ALL, CRYPTO_DES_CBC,
                            CRYPTO_F_DONE, CRYPTO_NULL, CRYPTO_SHA1_HMAC, CRYPTOCAP_F_MAC_ENCRYPT,
                            CRYPTOCAP_F_SOFTWARE, CryptoBuf, CryptoDesc, CryptoIni, CryptoOp)
from ocf.crypto import CryptoDriver
from sim.kernel.errno import EAGAIN, EINVAL, EIO, ENOENT


def null_ini():
    return CryptoIni(CRYPTO_NULL)


def tdes_chain():
    return [CryptoIni(CRYPTO_3DES_CBC, 192, bytes(24)), CryptoIni(CRYPTO_SHA1_HMAC, 160, bytes(20))]


def make_req(sys_, sid, n=64, cb=None):
    addr = sys_.memory.alloc(n)
    buf = CryptoBuf.contiguous(sys_.memory, addr, n)
    return CryptoOp(sid=sid, ilen=n, olen=n, buf=buf, desc=[CryptoDesc(null_ini(), 0, n, 0, 1)],
                    callback=cb or (lambda crp: None))


def newsession(s, chain, hard=False, **kw):
    async def body(t):
        return await s.crypto.newsession(chain, hard, **kw)
    return s.run_kthread(body)


def test_sid_encodes_driver_and_local_id():
    s = System()
    card = FakeCard(s.crypto)
    err, sid = newsession(s, [null_ini()])
    assert err == 0 and sid >> 32 == card.cid and sid & 0xFFFFFFFF in card.sessions
    assert s.crypto.driver_stats(card.cid).sessions == 1


def test_hardware_before_software():
    s = System()
    assert s.ocf.swcr.cid == 0
    card = FakeCard(s.crypto)
    for _ in range(3):
        err, sid = newsession(s, [null_ini()])
        assert err == 0 and sid >> 32 == card.cid


def test_software_unless_hard():
    s = System()
    err, sid = newsession(s, [null_ini()], hard=False)
    assert err == 0 and sid >> 32 == s.ocf.swcr.cid
    assert s.crypto.drivers[sid >> 32].flags & CRYPTOCAP_F_SOFTWARE
    assert newsession(s, [null_ini()], hard=True) == (EINVAL, 0)


def test_fewest_sessions_wins():
    s = System()
    cards = [FakeCard(s.crypto, f"c{i}") for i in range(3)]
    owners = [newsession(s, [null_ini()])[1] >> 32 for _ in range(9)]
    assert sorted(owners) == sorted([c.cid for c in cards] * 3)
    assert owners[:3] == [c.cid for c in cards]          # ties go to the lowest id
    # free two sessions on card 1: it is now the least loaded
    sids = [(c.cid << 32) | lid for c in cards for lid in c.sessions]
    victims = [sid for sid in sids if sid >> 32 == cards[1].cid][:2]

    async def free(t):
        for sid in victims:
            assert await s.crypto.freesession(sid) == 0
        return await s.crypto.newsession([null_ini()], False)
    err, sid = s.run_kthread(free)
    assert err == 0 and sid >> 32 == cards[1].cid


def test_driver_must_support_every_algorithm_in_chain():
    s = System(software=False)
    FakeCard(s.crypto, "cipher-only", algs=(CRYPTO_3DES_CBC,))
    both = FakeCard(s.crypto, "both", algs=(CRYPTO_3DES_CBC, CRYPTO_SHA1_HMAC))
    for _ in range(3):
        err, sid = newsession(s, tdes_chain())
        assert err == 0 and sid >> 32 == both.cid
    assert newsession(s, [CryptoIni(CRYPTO_DES_CBC, 64, bytes(8))]) == (EINVAL, 0)


def test_need_flags_selects_ordered_driver():
    s = System(software=False)
    FakeCard(s.crypto, "ipsec", algs=(CRYPTO_NULL,))
    tls = FakeCard(s.crypto, "tls", algs=(CRYPTO_NULL,), flags=CRYPTOCAP_F_MAC_ENCRYPT)
    for _ in range(2):
        assert newsession(s, [null_ini()], need_flags=CRYPTOCAP_F_MAC_ENCRYPT)[1] >> 32 == tls.cid


def test_newsession_garbage_is_einval():
    s = System()
    for chain in (None, [], [None], "x", [CryptoIni(0)], [CryptoIni(99)], [CryptoIni("1")]):
        assert newsession(s, chain) == (EINVAL, 0)


def test_freesession_errors():
    s = System()

    async def body(t):
        return [await s.crypto.freesession(x) for x in (-1, None, "1", 77 << 32)]
    assert s.run_kthread(body) == [EINVAL, EINVAL, EINVAL, ENOENT]


def test_register_unregister_errors():
    s = System()
    cid = s.crypto.get_driverid(0)

    class Driver:
        def newsession(self, chain):
            return 0, 1

        def freesession(self, lid):
            return 0

        def process(self, crp):
            return 0

    class NoProcess:                  # not a CryptoDriver: no process method
        def newsession(self, chain):
            return 0, 1

        def freesession(self, lid):
            return 0

    d = Driver()
    assert isinstance(d, CryptoDriver) and not isinstance(NoProcess(), CryptoDriver)
    assert s.crypto.register(cid, 0, 0, 0, d) == EINVAL
    assert s.crypto.register(cid, 99, 0, 0, d) == EINVAL
    assert s.crypto.register(cid + 5, CRYPTO_NULL, 0, 0, d) == EINVAL
    assert s.crypto.register(cid, CRYPTO_NULL, 0, 0, NoProcess()) == EINVAL
    assert s.crypto.register(cid, CRYPTO_NULL, 0, 0, None) == EINVAL
    assert s.crypto.register(cid, CRYPTO_NULL, 0, 0, d) == 0
    assert s.crypto.drivers[cid].driver is d
    # one driver id is one driver: another object cannot add algorithms to it
    assert s.crypto.register(cid, CRYPTO_3DES_CBC, 0, 0, Driver()) == EINVAL
    assert s.crypto.unregister(cid, CRYPTO_3DES_CBC) == EINVAL
    assert s.crypto.unregister(cid, CRYPTO_NULL) == 0          # last algorithm: removed
    assert s.crypto.drivers[cid] is None
    assert s.crypto.unregister(cid, CRYPTO_NULL) == EINVAL


def test_unregister_with_sessions_marks_cleanup_until_last_free():
    s = System()
    card = FakeCard(s.crypto)
    sids = [newsession(s, [null_ini()])[1] for _ in range(2)]
    assert s.crypto.unregister(card.cid, CRYPTO_ALGORITHM_ALL) == 0
    drv = s.crypto.drivers[card.cid]
    assert drv is not None and drv.cleanup and drv.driver is None
    # new sessions avoid it
    assert newsession(s, [null_ini()])[1] >> 32 == s.ocf.swcr.cid

    async def free(t):
        return [await s.crypto.freesession(sid) for sid in sids]
    assert s.run_kthread(free) == [0, 0]
    assert s.crypto.drivers[card.cid] is None
    # ids are not reused
    assert s.crypto.get_driverid(0) == len(s.crypto.drivers) - 1 != card.cid


def run_requests(s, reqs, deadline=10**12, gap=0):
    """Dispatch from a kernel thread; consumer re-submits on EAGAIN. Returns per-request
    list of errnos its callback saw."""
    seen = {id(r): [] for r in reqs}
    chan = object()
    left = [len(reqs)]

    def cb(crp):
        seen[id(crp)].append(crp.etype)
        if crp.etype == EAGAIN:
            assert s.crypto.dispatch(crp) == 0
            return
        left[0] -= 1
        if left[0] == 0:
            s.kernel.wakeup(chan)

    async def body(t):
        for r in reqs:
            if gap:
                await s.kernel.tsleep(object(), 24, "gap", timo=gap)
            r.callback = cb
            await s.kernel.charge("ocf", s.crypto.c_dispatch)
            assert s.crypto.dispatch(r) == 0
        while left[0]:
            await s.kernel.tsleep(chan, 24, "test")
    s.run_kthread(body, deadline=deadline)
    return seen


def test_dispatch_runs_in_crypto_thread_and_done_runs_callback():
    s = System()
    card = FakeCard(s.crypto)
    err, sid = newsession(s, [null_ini()])
    reqs = [make_req(s, sid) for _ in range(5)]
    seen = run_requests(s, reqs)
    assert all(v == [0] for v in seen.values())
    st = s.crypto.driver_stats(card.cid)
    assert (st.operations, st.bytes, st.outstanding, st.errors, st.completed_ok) == (5, 5 * 64, 0, 0, 5)
    assert (s.crypto.dispatched, s.crypto.completed, s.crypto.completed_ok,
            s.crypto.completed_errno, s.crypto.outstanding) == (5, 5, 5, 0, 0)
    assert all(r.flags & CRYPTO_F_DONE and r.ndone == r.ndispatch == 1 for r in reqs)
    assert s.kernel.intr_stats()[card.line]["handlers"]["fake"]["claimed"] >= 1


def test_dispatch_garbage():
    s = System()
    assert s.crypto.dispatch(None) == EINVAL
    assert s.crypto.dispatch("x") == EINVAL
    assert s.crypto.dispatch(CryptoOp()) == EINVAL            # no callback
    # malformed requests complete through the callback with EINVAL
    bad = [CryptoOp(sid=0, desc=[]), CryptoOp(sid=0, desc=None), CryptoOp(sid=-3, desc=[CryptoDesc(null_ini())]),
           CryptoOp(sid=0, desc=[CryptoDesc(null_ini())], buf=None), CryptoOp(sid="x", desc=[CryptoDesc(null_ini())])]
    for r in bad[2:]:
        r.buf = r.buf if r is bad[3] else CryptoBuf.contiguous(s.memory, 0x2000, 8)
    seen = run_requests(s, bad)
    assert all(v == [EINVAL] for v in seen.values())


def test_unknown_session_on_software_is_enoent():
    s = System()
    reqs = [make_req(s, (s.ocf.swcr.cid << 32) | 999)]
    assert list(run_requests(s, reqs).values()) == [[ENOENT]]


class DoubleDone(FakeCard):
    """A card whose interrupt handler completes each request twice in a row
    (the consumer's callback has re-dispatched it in between: the second
    ``done`` finds it queued), and once more ``late`` ps later."""

    def __init__(self, crypto, late, **kw):
        super().__init__(crypto, "double", **kw)
        self.late = late

    async def intr(self):
        if not self.finished:
            return False
        while self.finished:
            crp, err = self.finished.popleft()
            crp.etype = err
            self.crypto.done(crp)
            self.crypto.done(crp)
            fut, _ = self.loop.call_at(self.loop.now + self.late, "late")
            fut.add_done_callback(lambda _f, crp=crp: self.crypto.done(crp))
        self.kernel.interrupt(self.line, False)
        return True


def test_second_completion_is_counted_and_runs_no_callback():
    s = System(software=False)
    DoubleDone(s.crypto, late=100_000_000, delay=5_000_000)
    err, sid = newsession(s, [null_ini()])
    calls = []
    r = make_req(s, sid)
    chan = object()

    times = []

    def cb(crp):
        calls.append(crp.etype)
        times.append(s.loop.now)
        if len(calls) == 1:          # use it again at once
            assert s.crypto.dispatch(crp) == 0
        else:
            s.kernel.wakeup(chan)

    async def body(t):
        r.callback = cb
        assert s.crypto.dispatch(r) == 0
        while len(calls) < 2:
            await s.kernel.tsleep(chan, 24, "test")
        await s.kernel.tsleep(body, 24, "settle", timo=300_000_000)
    s.run_kthread(body)
    assert calls == [0, 0] and r.ndispatch == r.ndone == 2
    assert times[1] - times[0] > 5_000_000        # the second one did go through the card
    assert s.crypto.dup_done == 4 and s.crypto.dispatched == s.crypto.completed == 2
    assert sum("completed twice" in m for m in s.kernel.msgbuf) == 4


def test_done_of_a_request_never_dispatched_is_ignored():
    s = System()
    calls = []
    r = make_req(s, 0, cb=lambda crp: calls.append(1))
    s.crypto.done(r)
    assert calls == [] and s.crypto.dup_done == 1 and s.crypto.completed == 0


def test_dispatch_of_a_request_in_flight_is_refused():
    s = System()
    err, sid = newsession(s, [null_ini()])
    r = make_req(s, sid)
    assert s.crypto.dispatch(r) == 0
    assert s.crypto.dispatch(r) == EINVAL
    assert s.crypto.dispatched == 1


@pytest.mark.expect_catchall
def test_callback_exception_does_not_escape():
    s = System()

    def boom(crp):
        raise RuntimeError("consumer bug")
    err, sid = newsession(s, [null_ini()])
    r = make_req(s, sid, cb=boom)

    async def body(t):
        assert s.crypto.dispatch(r) == 0
        await s.kernel.tsleep(body, 24, "settle", timo=10_000_000)
    s.run_kthread(body)
    assert s.crypto.callback_errors == 1 and s.kernel.catchalls == 1
    assert s.crypto.completed == 1


def test_migration_when_driver_unregisters_mid_stream():
    s = System()
    a = FakeCard(s.crypto, "a", delay=50_000_000)
    err, sid = newsession(s, [null_ini()])
    assert sid >> 32 == a.cid
    b = FakeCard(s.crypto, "b")
    reqs = [make_req(s, sid) for _ in range(10)]
    # unplug card a shortly after the stream starts: in-flight ones fail (EIO),
    # queued ones migrate to b with EAGAIN and are re-submitted
    fut, _ = s.loop.call_at(75_000_000)
    fut.add_done_callback(lambda _f: a.detach())
    seen = run_requests(s, reqs, gap=10_000_000)
    assert all(len(v) >= 1 and v[-1] != EAGAIN for v in seen.values())
    assert {tuple(v) for v in seen.values()} <= {(0,), (EIO,), (EAGAIN, 0)}
    assert any(v == [EIO] for v in seen.values())       # in flight on the card when it left
    assert all(r.ndone == r.ndispatch for r in reqs)
    migrated = [r for r in reqs if seen[id(r)][0] == EAGAIN]
    assert migrated and all(seen[id(r)] == [EAGAIN, 0] for r in migrated)
    assert all(r.sid >> 32 == b.cid for r in migrated)
    assert s.crypto.migrated == len(migrated)
    assert s.crypto.driver_stats(b.cid).operations == len(migrated)


def test_erestart_unregisters_and_migrates():
    s = System(software=False)
    a = FakeCard(s.crypto, "a", behave=lambda crp: "restart")
    err, sid = newsession(s, [null_ini()])
    b = FakeCard(s.crypto, "b")
    reqs = [make_req(s, sid)]
    seen = run_requests(s, reqs)
    assert seen[id(reqs[0])] == [EAGAIN, 0]
    assert s.crypto.drivers[a.cid] is None        # its only session was freed: gone
    assert a.sessions == set()                    # ... on the driver too
    assert reqs[0].sid >> 32 == b.cid and s.crypto.driver_stats(b.cid).sessions == 1


def test_erestart_frees_only_the_request_session_and_counts_a_restart():
    s = System(software=False)
    a = FakeCard(s.crypto, "a", behave=lambda crp: "restart")
    sids = [newsession(s, [null_ini()])[1] for _ in range(2)]
    b = FakeCard(s.crypto, "b")
    reqs = [make_req(s, sids[0])]
    assert run_requests(s, reqs)[id(reqs[0])] == [EAGAIN, 0]
    drv = s.crypto.drivers[a.cid]
    assert drv.cleanup and drv.stats.sessions == 1 and a.sessions == {sids[1] & 0xFFFFFFFF}
    st = drv.stats
    assert (st.operations, st.restarts, st.outstanding, st.errors) == (1, 1, 0, 0)

    async def free(t):
        return [await s.crypto.freesession(sid) for sid in (sids[1], sids[1], sids[0])]
    assert s.run_kthread(free) == [0, ENOENT, ENOENT]   # freed once; the migrated one already
    assert s.crypto.drivers[a.cid] is None and b.sessions == {reqs[0].sid & 0xFFFFFFFF}


def test_migration_without_any_driver_fails_instead_of_looping():
    s = System(software=False)
    a = FakeCard(s.crypto, "a")
    err, sid = newsession(s, [null_ini()])
    a.detach()
    reqs = [make_req(s, sid)]
    assert run_requests(s, reqs)[id(reqs[0])] == [EINVAL]


@pytest.mark.expect_catchall
def test_process_error_and_exception_complete_the_request():
    s = System(software=False)
    FakeCard(s.crypto, "a", behave=lambda crp: "reject")
    err, sid = newsession(s, [null_ini()])
    reqs = [make_req(s, sid)]
    assert run_requests(s, reqs)[id(reqs[0])] == [EIO]

    s2 = System(software=False)
    card = FakeCard(s2.crypto, "b")

    def broken(crp):
        raise RuntimeError("driver bug")
    card.process = broken
    err, sid = newsession(s2, [null_ini()])
    reqs = [make_req(s2, sid)]
    assert run_requests(s2, reqs)[id(reqs[0])] == [EIO]


def test_defer_runs_in_crypto_thread():
    s = System()
    ran = []

    async def work():
        ran.append(s.kernel.curctx)
    s.crypto.defer(work)

    async def body(t):
        await s.kernel.tsleep(body, 30, "wait", timo=1_000_000)
    s.run_kthread(body)
    assert ran == [s.crypto.thread]


def test_cryptosoft_block_multiple_and_missing_alg():
    s = System()
    des = CryptoIni(CRYPTO_DES_CBC, 64, bytes(range(8)))
    err, sid = newsession(s, [des])
    assert err == 0 and sid >> 32 == s.ocf.swcr.cid
    addr = s.memory.alloc(32)
    buf = CryptoBuf.contiguous(s.memory, addr, 32)
    bad_len = CryptoOp(sid=sid, ilen=32, buf=buf, desc=[CryptoDesc(des, 8, 12, 0, 1)])
    no_alg = CryptoOp(sid=sid, ilen=32, buf=buf, desc=[CryptoDesc(null_ini(), 0, 32, 0, 1)])
    past_end = CryptoOp(sid=sid, ilen=32, buf=buf, desc=[CryptoDesc(des, 8, 32, 0, 1)])
    neg = CryptoOp(sid=sid, ilen=32, buf=buf, desc=[CryptoDesc(des, -8, 8, 0, 1)])
    seen = run_requests(s, [bad_len, no_alg, past_end, neg])
    assert list(seen.values()) == [[EINVAL]] * 4


def test_cryptosoft_charges_per_op_and_per_byte():
    s = System()
    prof = s.kernel.profile
    des = CryptoIni(CRYPTO_DES_CBC, 64, bytes(range(8)))
    err, sid = newsession(s, [des])
    addr = s.memory.alloc(1032)
    s.memory.write(addr, bytes(1032))
    r = CryptoOp(sid=sid, ilen=1032, buf=CryptoBuf.contiguous(s.memory, addr, 1032),
                 desc=[CryptoDesc(des, 8, 1024, 0, 1 | 2)])
    before = s.crypto.thread.cpu["crypto"]
    run_requests(s, [r])
    charged = s.crypto.thread.cpu["crypto"] - before
    assert charged == (prof.cost("cryptosoft.process") + prof.cost("cryptosoft.des.op")
                       + int(round(prof.per_byte("cryptosoft.des.byte") * 1024)))


def test_newsession_bad_keys_in_software():
    s = System()
    for ini in (CryptoIni(CRYPTO_DES_CBC, 128, bytes(16)), CryptoIni(CRYPTO_DES_CBC, 64, b"abc"),
                CryptoIni(CRYPTO_DES_CBC, 64, None), CryptoIni(CRYPTO_3DES_CBC, -192, bytes(24)),
                CryptoIni(CRYPTO_SHA1_HMAC, 8 * 65, bytes(65)), CryptoIni(CRYPTO_SHA1_HMAC, 160, bytes(20), mlen=21),
                CryptoIni(CRYPTO_DES_CBC, 1 << 40, bytes(8))):
        assert newsession(s, [ini]) == (EINVAL, 0)
    assert newsession(s, [null_ini(), null_ini()]) == (EINVAL, 0)   # same algorithm twice
