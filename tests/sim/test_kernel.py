"""The simulated kernel: CPU ownership, scheduler, interrupts, profiles, copies."""

import pytest

from sim.kernel import KernelError, Kernel, load_profile, profile_names
from sim.kernel.errno import EFAULT, EWOULDBLOCK
from sim.loop import SimLoop, ms, us
from sim.memory import ByteMemory


def make():
    loop = SimLoop()
    return loop, Kernel(loop, ByteMemory(1 << 20))


def test_profiles_have_sources_and_load_by_name(tmp_path):
    assert {"p3-1400-openbsd", "p4-2800-openbsd"} <= set(profile_names())
    for name in profile_names():
        p = load_profile(name)
        assert p.hz > 0 and all(src.strip() for _, _, _, src in p.table())
        Kernel(SimLoop(), ByteMemory(1 << 16), name)
    p3 = load_profile("p3-1400-openbsd")
    assert p3.per_byte("copy.bandwidth") == pytest.approx(8000 / 2.4)   # 2.4 Gbps
    with pytest.raises(ValueError):
        load_profile("no-such-host")
    bad = tmp_path / "bad.toml"
    bad.write_text('[cpu]\nhz = { value = 1, unit = "Hz" }\n')
    with pytest.raises(ValueError):
        load_profile(bad)


def test_interrupt_preempts_charge_which_resumes_with_remaining_time():
    loop, k = make()
    c = k.profile.cost
    done = {}

    async def thread(t):
        await k.charge("driver", us(10))
        done["t"] = loop.now

    async def handler():
        await k.charge("driver", us(1))
        k.interrupt(3, False)
        return True
    k.intr_establish(3, handler, "dev")
    t = k.kthread_create("t", thread)

    async def device():
        await loop.sleep(us(4))
        k.interrupt(3, True)
    loop.spawn(device())
    loop.run(t.task)
    intr = c("kernel.intr_entry") + c("kernel.intr_handler_call") + us(1) + c("kernel.intr_exit")
    assert done["t"] == c("kernel.context_switch") + us(10) + intr
    assert t.cpu["driver"] == us(10) and k._intr_ctx.cpu["driver"] == us(1)
    acct = k.accounting()
    assert sum(acct.values()) == loop.now and acct["intr"] == intr - us(1)


def test_shared_level_line_runs_handlers_while_asserted_and_masks_stray():
    loop, k = make()
    pending = {"a": 0, "b": 0}

    def level():
        k.interrupt(9, pending["a"] + pending["b"] > 0)

    def mk(name):
        async def h():
            if not pending[name]:
                return False
            await k.charge("driver", us(1))
            pending[name] -= 1
            level()
            return True
        return h
    ha = k.intr_establish(9, mk("a"), "a")
    hb = k.intr_establish(9, mk("b"), "b")

    async def main():
        pending["a"], pending["b"] = 2, 1
        level()
        await loop.sleep(us(50))
        k.interrupt(11, True)          # nobody claims line 11
        await loop.sleep(us(50))
    loop.run(main())
    assert pending == {"a": 0, "b": 0}
    assert ha.count == 2 and hb.count == 1 and k.nintr == 2
    st = k.intr_stats()
    assert st[11]["stray"] == 1 and st[9]["stray"] == 0


def test_interrupt_waits_for_a_stalled_cpu():
    """A CPU stalled on an uncached read takes the interrupt at the next boundary."""
    loop, k = make()
    seen = {}

    async def thread(t):
        await k.charge("driver", us(1))
        mmio = loop.create_future()
        loop.call_at(loop.now + us(5))[0].add_done_callback(lambda _f: mmio.set_result(0))
        await mmio                       # stall: holds the CPU, not pre-emptible
        seen["after_mmio"] = loop.now
        await k.charge("driver", us(1))

    async def h():
        seen["intr"] = loop.now
        k.interrupt(2, False)
        return True
    k.intr_establish(2, h, "dev")
    t = k.kthread_create("t", thread)

    async def device():
        await loop.sleep(k.c_switch + us(2))
        k.interrupt(2, True)
    loop.spawn(device())
    loop.run(t.task)
    assert seen["intr"] >= seen["after_mmio"]
    assert t.cpu["stall"] == us(5)


def test_tsleep_wakeup_and_timeout():
    loop, k = make()
    out = []

    async def sleeper(t):
        out.append(await k.tsleep("chan", 24, "w", timo=us(100)))
        out.append(await k.tsleep("chan", 24, "w", timo=us(100)))

    async def waker(t):
        await k.charge("driver", us(10))
        assert k.wakeup("chan") == 1
        assert k.wakeup("nobody") == 0
    a = k.kthread_create("a", sleeper)
    k.kthread_create("b", waker)
    loop.run(a.task)
    assert out == [0, EWOULDBLOCK]


def test_user_mode_hogs_round_robin():
    loop, k = make()
    finish = {}

    async def hog(p, name):
        await k.user(ms(300))
        finish[name] = loop.now
    ps = [k.fork(n, hog, n) for n in ("a", "b")]

    async def main():
        for p in ps:
            await p.task
    loop.run(main())
    q = k.profile.cost("kernel.quantum")
    assert abs(finish["a"] - finish["b"]) <= q + 2 * k.c_switch
    assert ps[0].cpu["user"] == ps[1].cpu["user"] == ms(300)
    assert k.nswitch > 4


def test_woken_kernel_thread_preempts_user_mode():
    loop, k = make()
    ran = {}

    async def kt(t):
        await k.tsleep("go", 36, "w")
        ran["kt"] = loop.now

    async def hog(p):
        await k.user(ms(10))
        ran["hog"] = loop.now
    k.kthread_create("kt", kt)
    p = k.fork("hog", hog)
    loop.call_at(us(100))[0].add_done_callback(lambda _f: k.wakeup("go"))
    loop.run(p.task)
    assert ran["kt"] < ran["hog"] and ran["kt"] < us(100) + 2 * k.c_switch + us(1)


@pytest.mark.expect_catchall
def test_handler_exception_does_not_escape():
    loop, k = make()

    async def bad():
        raise RuntimeError("driver bug")
    k.intr_establish(4, bad, "bad")

    async def main():
        k.interrupt(4, True)
        await loop.sleep(us(20))
    loop.run(main())
    assert k.intr_stats()[4]["handlers"]["bad"]["errors"] == 1 and k.catchalls == 1
    assert k.intr_stats()[4]["stray"] == 1


def test_copyin_copyout_faults_and_cost():
    loop, k = make()
    addr = k.malloc(64)

    async def p(proc):
        r = [await k.copyin(None, addr, 8), await k.copyin(b"ab", addr, 8),
             await k.copyin(b"x" * 8, addr, -1), await k.copyout(addr, bytes(8), 8),
             await k.copyout(addr, None, 8)]
        t0 = loop.now
        r.append(await k.copyin(b"y" * 64, addr, 64))
        out = bytearray(64)
        r.append(await k.copyout(addr, out, 64))
        return r, loop.now - t0, bytes(out)
    r, dt, out = loop.run(k.fork("p", p).task)
    assert r == [EFAULT, EFAULT, 22, EFAULT, EFAULT, 0, 0]
    assert dt == 2 * k.copy_cost(64) and out == b"y" * 64


def test_charge_without_context_is_an_error():
    loop, k = make()

    async def main():
        with pytest.raises(KernelError):
            await k.charge("driver", 5)
    loop.run(main())
