"""The simulated kernel: one CPU, who holds it, and what the time is charged to.

The model is a *timeline of CPU ownership*. At any instant the CPU is held by
one context (a process, a kernel thread, or the interrupt context) or is idle.
All simulated time that passes while a context holds the CPU is charged to it,
under the kind of work it declared (``await kernel.charge("copy", ps)``), or
under ``"stall"`` while it holds the CPU without a charge in progress (e.g.
awaiting an uncached MMIO read: the CPU stalls). Time with no holder is
``"idle"``; so busy + idle always equals elapsed time.

Scheduling is 4.4BSD-like: a context gives up the CPU only by sleeping
(:meth:`tsleep`), exiting or yielding; kernel code is never pre-empted by
another thread. A process charging ``"user"`` time is pre-empted when a
better-priority context becomes runnable (priorities as in BSD: lower is
better) and round-robin after a quantum. Interrupts pre-empt any charge
(unless the holder raised its spl): the charge is suspended and resumes
with its remaining time after the handlers; a CPU stalled outside a charge
takes the interrupt at its next charge or when it gives up the CPU (an
instruction boundary).

Host code calls these only from the task of the context holding the CPU
(``kernel.curctx``); :meth:`interrupt` and :meth:`wakeup` are plain functions
callable from anywhere in the loop (a hardware port, a timer callback).
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections import defaultdict, deque
from typing import Any, Awaitable, Callable, Optional

from sim.loop import Future, SimLoop
from sim.memory import HostMemory

from .errno import EWOULDBLOCK
from .profile import DEFAULT_PROFILE, Profile, load_profile
from .syscalls import File, FileSyscalls

__all__ = ["Kernel", "Context", "IntrHandler", "File", "KernelError",
           "PSWP", "PVM", "PINOD", "PRIBIO", "PVFS", "PZERO", "PSOCK", "PWAIT",
           "PLOCK", "PPAUSE", "PUSER", "KINDS"]

# sys/param.h sleep priorities (lower is better)
PSWP, PVM, PINOD, PRIBIO, PVFS, PZERO, PSOCK, PWAIT, PLOCK, PPAUSE, PUSER = (
    0, 4, 8, 16, 20, 22, 24, 32, 36, 40, 50)

#: kinds of CPU work the accounting distinguishes (the network stack's:
#: socket, tcp, ip, ether, checksum — see netinet/stack.py)
KINDS = ("user", "syscall", "copy", "sched", "switch", "ocf", "crypto", "driver",
         "socket", "tcp", "ip", "ether", "checksum", "intr", "stall", "idle")


class KernelError(RuntimeError):
    """Misuse of the kernel API by host code (a harness bug, not an errno)."""


class Context:
    """Something that can hold the CPU: a process, a kernel thread, the interrupt context."""

    _pids = itertools.count(1)

    def __init__(self, name: str, kind: str, prio: int = PUSER):
        self.name = name
        self.kind = kind                      # "proc" | "kthread" | "intr"
        self.pid = next(Context._pids)
        self.prio = prio                      # current priority
        self.usrpri = prio                    # priority when running in user mode
        self.state = "new"                    # new runnable run sleep zombie
        self.cpu: dict[str, int] = defaultdict(int)
        self.segs: deque[list] = deque()      # pending CPU work [kind, ps]
        self.waiter: Optional[Future] = None  # resolved when segs drain on the CPU
        #: for a kernel-internal charge: ``quiet(end)``, the earliest time the
        #: kernel code after it can reach the hardware or other host code
        self.quiet: Optional[Callable[[int], int]] = None
        self.seg_timer = None
        self.seg_gen = 0
        self.seg_start = 0
        self.slice_start = 0
        self.spl = 0
        self.wchan: Any = None
        self.wmesg = ""
        self.timed_out = False
        self.sleep_timer = None
        self.rq_seq = -1
        self.fds: dict[int, "File"] = {}
        self.task = None
        self.retval: Any = None
        self.exc: Optional[BaseException] = None
        self.nswitch = 0

    @property
    def cpu_total(self) -> int:
        return sum(self.cpu.values())

    def __repr__(self) -> str:
        return f"<{self.kind} {self.pid} {self.name} {self.state}>"


class IntrHandler:
    """An established interrupt handler (``intr_establish``)."""

    def __init__(self, line: int, fn: Callable[[], Awaitable[bool]], name: str):
        self.line, self.fn, self.name = line, fn, name
        self.calls = 0      # times run
        self.count = 0      # times it claimed the interrupt
        self.errors = 0
        self.time_ps = 0


class _Line:
    def __init__(self, line: int):
        self.line = line
        self.handlers: list[IntrHandler] = []
        self.level = False
        self.masked = False   # stray: ignored until released or the retry timer
        self.asserts = 0
        self.stray = 0        # times no handler claimed it while asserted
        self.storm = 0        # consecutive strays since a claim or a release
        self.retries = 0      # times the retry timer unmasked it


class Kernel(FileSyscalls):
    """One CPU running processes, kernel threads and interrupt handlers on simulated time."""

    def __init__(self, loop: SimLoop, memory: HostMemory,
                 profile: "str | Profile" = DEFAULT_PROFILE, seed: int = 0):
        self.loop = loop
        self.memory = memory
        self.profile = load_profile(profile)
        self.random = random.Random(seed)
        self.cur: Optional[Context] = None
        self.contexts: list[Context] = []
        self._runq: list[tuple[int, int, Context]] = []
        self._rq_seq = itertools.count()
        self._last_thread: Optional[Context] = None
        self._sleepq: dict[int, list[Context]] = {}
        self._chan_keep: dict[int, Any] = {}
        self._rr_timer = None
        self.want_resched = False
        # accounting
        self._mark = loop.now
        self._mark_ctx: Optional[Context] = None
        self._mark_kind = "idle"
        self.cpu_by_kind: dict[str, int] = defaultdict(int)
        self.start_ps = loop.now
        self.nswitch = 0
        # interrupts
        self._lines: dict[int, _Line] = {}
        self._in_intr = False
        self._intr_prev: Optional[Context] = None
        self._intr_ctx = Context("interrupt", "intr", prio=PSWP)
        self._intr_ctx.state = "intr"
        self.nintr = 0
        self._stray_timer = None
        # files and devices (sim.kernel.syscalls)
        self.devices: dict[str, Any] = {}
        self.msgbuf: list[str] = []
        self.catchalls = 0       # times a catch-all fired (see catchall())
        p = self.profile
        self.c_syscall_entry = p.cost("kernel.syscall_entry")
        self.c_syscall_exit = p.cost("kernel.syscall_exit")
        self.c_switch = p.cost("kernel.context_switch")
        self.c_tsleep = p.cost("kernel.tsleep")
        self.c_intr_entry = p.cost("kernel.intr_entry")
        self.c_intr_exit = p.cost("kernel.intr_exit")
        self.c_intr_call = p.cost("kernel.intr_handler_call")
        self.c_quantum = p.cost("kernel.quantum")
        self.c_copy_setup = p.cost("copy.setup")
        #: ps a stray (masked) line waits before it is unmasked and re-checked;
        #: tests and drivers may set a shorter one
        self.stray_retry = p.cost("kernel.stray_retry")

    # ------------------------------------------------------------------ misc
    @property
    def now(self) -> int:
        return self.loop.now

    @property
    def curctx(self) -> Optional[Context]:
        """The context holding the CPU (None: idle)."""
        return self.cur

    def printf(self, msg: str) -> None:
        """Kernel message buffer (``dmesg``)."""
        self.msgbuf.append(f"[{self.loop.now / 1e6:.3f}us] {msg}")

    def catchall(self, where: str, exc: BaseException) -> None:
        """A catch-all caught ``exc`` (a bug somewhere): log "``where`` raised" and count it.

        Every ``except Exception`` that keeps a bug from killing the kernel
        (system calls, interrupt handlers, OCF) reports through here, so
        ``catchalls`` is 0 in normal and in hostile use.
        """
        self.catchalls += 1
        self.printf(f"{where} raised {exc!r}")

    # ------------------------------------------------------------ accounting
    def _account(self) -> None:
        now = self.loop.now
        dt = now - self._mark
        if dt > 0:
            self.cpu_by_kind[self._mark_kind] += dt
            if self._mark_ctx is not None:
                self._mark_ctx.cpu[self._mark_kind] += dt
        self._mark = now

    def _set_mark(self, ctx: Optional[Context], kind: str) -> None:
        self._account()
        self._mark_ctx, self._mark_kind = ctx, kind

    def accounting(self) -> dict[str, int]:
        """CPU time (ps) by kind of work up to now, including ``idle``."""
        self._account()
        return dict(self.cpu_by_kind)

    @property
    def busy_ps(self) -> int:
        return sum(v for k, v in self.accounting().items() if k != "idle")

    # ------------------------------------------------------- CPU work engine
    def _run_segments(self, ctx: Context) -> None:
        """Start ctx's next pending segment, or wake its waiter when none is left."""
        segs = ctx.segs
        while segs and segs[0][1] <= 0:
            segs.popleft()
        if not segs:
            self._set_mark(ctx, "stall")
            w, ctx.waiter = ctx.waiter, None
            ctx.quiet = None
            if w is not None and not w.done():
                w.set_result(None)
            return
        kind, remaining = segs[0]
        self._set_mark(ctx, kind)
        ctx.seg_gen += 1
        gen = ctx.seg_gen
        ctx.seg_start = self.loop.now
        end = self.loop.now + remaining
        fut, ctx.seg_timer = self.loop.call_at(end, f"{ctx.name}:{kind}",
                                               self._seg_horizon(ctx, end))
        fut.add_done_callback(lambda _f: self._seg_fired(ctx, gen))
        if kind == "user":
            self._arm_roundrobin()

    def _seg_horizon(self, ctx: Context, end: int) -> Optional[Callable[[], int]]:
        """The horizon of the segment timer ending at ``end`` (:meth:`SimLoop.call_at`),
        or None when what follows it may run host code at ``end``.

        Quiet: a segment followed by another of the same context that is not
        user mode (its start only arms the next timer), or the last segment
        of a kernel-internal charge (``ctx.quiet``). A user segment's start
        may arm the round-robin timer, so it is never passed over.
        """
        segs = ctx.segs
        if len(segs) > 1:
            kind, remaining = segs[1]
            if kind == "user":
                return None
            return lambda: end + max(0, remaining)
        quiet = ctx.quiet
        if quiet is None:
            return None
        return lambda: quiet(end)

    def _seg_fired(self, ctx: Context, gen: int) -> None:
        if gen != ctx.seg_gen or ctx.seg_timer is None or self.cur is not ctx:
            return  # stale: suspended or re-armed since
        ctx.seg_timer = None
        ctx.segs.popleft()
        self._run_segments(ctx)

    def _suspend(self, ctx: Context) -> None:
        """Stop ctx's running segment, keeping its remaining time."""
        if ctx.seg_timer is None:
            return
        ctx.seg_timer.cancel()
        ctx.seg_timer = None
        ctx.seg_gen += 1
        ctx.segs[0][1] -= self.loop.now - ctx.seg_start
        self._account()

    def _in_user(self, ctx: Optional[Context]) -> bool:
        return (ctx is not None and ctx.seg_timer is not None and bool(ctx.segs)
                and ctx.segs[0][0] == "user")

    async def charge(self, kind: str, duration: int) -> None:
        """Hold the CPU for ``duration`` ps of ``kind`` work (pre-emptible by interrupts)."""
        ctx = self.cur
        if ctx is None:
            raise KernelError("charge() with no context on the CPU")
        duration = int(duration)
        if duration <= 0:
            return
        if kind == "user":
            ctx.prio = ctx.usrpri
        fut = self.loop.create_future(f"{ctx.name}:{kind}")
        ctx.segs.append([kind, duration])
        ctx.waiter = fut
        self._run_segments(ctx)
        if kind == "user":
            self._maybe_schedule()
        self._intr_check()          # an interrupt deferred by a stall is taken here
        await fut

    async def _kcharge(self, kind: str, duration: int, quiet: Callable[[int], int]) -> None:
        """:meth:`charge` for the kernel's own work, after which only kernel
        code runs until ``quiet(end)`` ps at the earliest (see
        :meth:`_seg_horizon`): lets the hardware run past its end."""
        ctx = self.cur
        if ctx is not None and int(duration) > 0:
            ctx.quiet = quiet
        await self.charge(kind, duration)

    def _after_release(self, end: int, timo: int = 0) -> int:
        """Earliest host code after a context gives up the CPU at ``end``:
        another context's switch, an interrupt's entry, or a sleep timeout."""
        b = end + min(self.c_switch, self.c_intr_entry)
        if timo and timo > 0:
            b = min(b, end + int(timo))
        best = self._runq_best()
        if best is not None and (best is self._last_thread or best.segs):
            return end
        return max(end, b)

    def _after_intr(self, end: int) -> int:
        """Earliest host code after the interrupt context's exit cost ends at
        ``end``: the interrupted context resumes its segment, or the CPU goes
        to another context, or another interrupt is entered."""
        prev = self._intr_prev
        if prev is None:
            return self._after_release(end)
        segs = [sg for sg in prev.segs if sg[1] > 0]
        if not segs or segs[0][0] == "user":
            return end
        return max(end, end + min(segs[0][1], self.c_switch, self.c_intr_entry))

    async def user(self, duration: int) -> None:
        """Compute in user mode for ``duration`` ps (pre-emptible by the scheduler)."""
        await self.charge("user", duration)

    # ------------------------------------------------------------- scheduler
    def _runq_push(self, ctx: Context) -> None:
        ctx.state = "runnable"
        ctx.rq_seq = next(self._rq_seq)
        heapq.heappush(self._runq, (ctx.prio, ctx.rq_seq, ctx))

    def _runq_best(self) -> Optional[Context]:
        rq = self._runq
        while rq and (rq[0][2].rq_seq != rq[0][1] or rq[0][2].state != "runnable"):
            heapq.heappop(rq)
        return rq[0][2] if rq else None

    def _setrunnable(self, ctx: Context) -> None:
        self._runq_push(ctx)
        self._need_resched(ctx)
        self._maybe_schedule()

    def _need_resched(self, ctx: Context) -> None:
        """BSD ``need_resched``: a better-priority context became runnable; the
        running one yields at its next return to user mode."""
        running = self._intr_prev if self._in_intr else self.cur
        if running is not None and ctx.prio < running.prio:
            self.want_resched = True

    def _maybe_schedule(self) -> None:
        if self._in_intr:
            return
        cur = self.cur
        if cur is None:
            self._schedule()
        elif self._in_user(cur):
            best = self._runq_best()
            if best is not None and best.prio < cur.prio:
                self._preempt(cur)
            else:
                self._arm_roundrobin()

    def _schedule(self) -> None:
        """The CPU is free: give it to the best runnable context, or idle."""
        if self._in_intr or self.cur is not None:
            return
        ctx = self._runq_best()
        if ctx is None:
            self._set_mark(None, "idle")
            return
        heapq.heappop(self._runq)
        self._switch_to(ctx)

    def _switch_to(self, ctx: Context) -> None:
        ctx.state = "run"
        ctx.rq_seq = -1
        self.cur = ctx
        self.want_resched = False
        ctx.slice_start = self.loop.now
        if ctx is not self._last_thread:
            self.nswitch += 1
            ctx.nswitch += 1
            ctx.segs.appendleft(["switch", self.c_switch])
            self._last_thread = ctx
        self._run_segments(ctx)

    def _preempt(self, ctx: Context) -> None:
        self._suspend(ctx)
        ctx.prio = ctx.usrpri
        self._runq_push(ctx)
        self.cur = None
        self._set_mark(None, "idle")
        self._schedule()

    def _arm_roundrobin(self) -> None:
        cur = self.cur
        if not self._in_user(cur) or self._runq_best() is None:
            return
        when = cur.slice_start + self.c_quantum
        if self._rr_timer is not None and not self._rr_timer.cancelled:
            if self._rr_timer.when == when:
                return
            self._rr_timer.cancel()
        fut, self._rr_timer = self.loop.call_at(when, "roundrobin")
        fut.add_done_callback(lambda _f: self._roundrobin())

    def _roundrobin(self) -> None:
        self._rr_timer = None
        cur = self.cur
        if self._in_intr or not self._in_user(cur):
            return
        best = self._runq_best()
        if best is not None and best.prio <= cur.prio and \
                self.loop.now >= cur.slice_start + self.c_quantum:
            self._preempt(cur)

    def _release(self, ctx: Context) -> None:
        """ctx gives up the CPU (it must not be in a charge)."""
        if self.cur is not ctx:
            raise KernelError(f"{ctx.name} gives up a CPU it does not hold")
        self.cur = None
        self._set_mark(None, "idle")
        self._intr_check()
        self._schedule()

    async def _wait_cpu(self, ctx: Context) -> None:
        fut = self.loop.create_future(f"{ctx.name}:runnable")
        ctx.waiter = fut
        self._setrunnable(ctx)
        await fut

    def _require(self, ctx: Optional[Context] = None) -> Context:
        cur = self.cur
        if cur is None or (ctx is not None and cur is not ctx):
            raise KernelError(f"{ctx.name if ctx else 'caller'} does not hold the CPU "
                              f"(held by {cur.name if cur else 'nobody'})")
        return cur

    # ------------------------------------------------------ sleep / wakeup
    async def tsleep(self, chan: Any, prio: int, wmesg: str, timo: int = 0) -> int:
        """Sleep on ``chan`` until :meth:`wakeup` (0) or ``timo`` ps pass (EWOULDBLOCK)."""
        ctx = self._require()
        if ctx.kind == "intr":
            raise KernelError("tsleep from interrupt context")
        # tsleep's own work runs at raised spl, as BSD's tsleep queues the
        # context at splhigh: an interrupt whose handler wakes ``chan`` is
        # taken once the context is on the sleep queue, never in between
        # (where its wakeup would be lost and the caller sleep for good)
        s = ctx.spl
        ctx.spl = s + 1
        await self._kcharge("sched", self.c_tsleep, lambda end: self._after_release(end, timo))
        ctx.spl = s
        key = id(chan)
        ctx.wchan, ctx.wmesg, ctx.prio, ctx.timed_out = chan, wmesg, prio, False
        ctx.state = "sleep"
        self._sleepq.setdefault(key, []).append(ctx)
        self._chan_keep[key] = chan
        if timo and timo > 0:
            fut, ctx.sleep_timer = self.loop.call_at(self.loop.now + int(timo), "tsleep-timo")
            fut.add_done_callback(lambda _f: self._endtsleep(ctx, chan))
        fut = self.loop.create_future(f"{ctx.name}:{wmesg}")
        ctx.waiter = fut
        self._release(ctx)
        await fut
        return EWOULDBLOCK if ctx.timed_out else 0

    def _unsleep(self, ctx: Context) -> None:
        key = id(ctx.wchan)
        q = self._sleepq.get(key)
        if q and ctx in q:
            q.remove(ctx)
            if not q:
                del self._sleepq[key]
                self._chan_keep.pop(key, None)
        if ctx.sleep_timer is not None:
            ctx.sleep_timer.cancel()
            ctx.sleep_timer = None
        ctx.wchan = None

    def _endtsleep(self, ctx: Context, chan: Any) -> None:
        if ctx.state == "sleep" and ctx.wchan is chan:
            ctx.timed_out = True
            self._unsleep(ctx)
            self._setrunnable(ctx)

    def wakeup(self, chan: Any) -> int:
        """Make every context sleeping on ``chan`` runnable; returns how many."""
        q = self._sleepq.pop(id(chan), None)
        self._chan_keep.pop(id(chan), None)
        if not q:
            return 0
        for ctx in q:
            if ctx.sleep_timer is not None:
                ctx.sleep_timer.cancel()
                ctx.sleep_timer = None
            ctx.wchan = None
            self._runq_push(ctx)
            self._need_resched(ctx)
        self._maybe_schedule()
        return len(q)

    async def yield_cpu(self) -> None:
        """Give the CPU to an equal- or better-priority runnable context, if any."""
        ctx = self._require()
        best = self._runq_best()
        if best is None or best.prio > ctx.prio:
            return
        fut = self.loop.create_future(f"{ctx.name}:yield")
        ctx.waiter = fut
        self._runq_push(ctx)
        self._release(ctx)
        await fut

    async def userret(self, p: Context) -> None:
        """Return to user mode: drop to user priority; switch if ``want_resched``
        (a better-priority context was woken since this one got the CPU)."""
        p.prio = p.usrpri
        if self.want_resched and self._runq_best() is not None:
            fut = self.loop.create_future(f"{p.name}:userret")
            p.waiter = fut
            self._runq_push(p)
            self._release(p)
            await fut

    # ------------------------------------------------- processes and threads
    def _new_context(self, name: str, kind: str, prio: int, main, args) -> Context:
        ctx = Context(name, kind, prio)
        self.contexts.append(ctx)
        ctx.task = self.loop.spawn(self._bootstrap(ctx, main, args), name)
        return ctx

    def fork(self, name: str, main: Callable[..., Awaitable[Any]], *args: Any,
             prio: int = PUSER) -> Context:
        """Start a user process running ``await main(p, *args)``.

        It first runs at PWAIT, as a child leaving ``fork`` in kernel mode (so a
        batch of new processes all start before a waiting kernel thread at
        PLOCK), and at ``prio`` (its user priority) after its first system call.
        """
        ctx = self._new_context(name, "proc", PWAIT, main, args)
        ctx.usrpri = prio
        return ctx

    def kthread_create(self, name: str, main: Callable[..., Awaitable[Any]], *args: Any,
                       prio: int = PSWP) -> Context:
        """Start a kernel thread running ``await main(t, *args)``."""
        return self._new_context(name, "kthread", prio, main, args)

    async def _bootstrap(self, ctx: Context, main, args) -> Any:
        await self._wait_cpu(ctx)
        try:
            ctx.retval = await main(ctx, *args)
        except BaseException as exc:
            ctx.exc = exc
            self.printf(f"{ctx.name}[{ctx.pid}]: uncaught {exc!r}")
            raise
        finally:
            await self._exit(ctx)
        return ctx.retval

    async def _exit(self, ctx: Context) -> None:
        if self.cur is ctx:
            await self.fdcloseall(ctx)
        ctx.state = "zombie"
        if ctx.wchan is not None:
            self._unsleep(ctx)
        if self.cur is ctx:
            self._suspend(ctx)
            ctx.segs.clear()
            self._release(ctx)
        if self._last_thread is ctx:
            self._last_thread = None

    # ----------------------------------------------------------- interrupts
    def _line(self, line: int) -> _Line:
        st = self._lines.get(line)
        if st is None:
            st = self._lines[line] = _Line(line)
        return st

    def intr_establish(self, line: int, handler: Callable[[], Awaitable[bool]],
                       name: str) -> IntrHandler:
        """Attach ``async handler() -> claimed`` to (possibly shared) level-triggered ``line``."""
        ih = IntrHandler(int(line), handler, name)
        self._line(ih.line).handlers.append(ih)
        return ih

    def intr_disestablish(self, ih: IntrHandler) -> None:
        st = self._lines.get(ih.line)
        if st and ih in st.handlers:
            st.handlers.remove(ih)

    def interrupt(self, line: int, asserted: bool) -> None:
        """The hardware drives interrupt ``line`` (plain function, callable from the port)."""
        st = self._line(int(line))
        asserted = bool(asserted)
        if asserted == st.level:
            return
        st.level = asserted
        if asserted:
            st.asserts += 1
            self.loop.call_soon(lambda _a: self._intr_check())
        else:
            st.masked = False
            st.storm = 0
            if not any(x.masked for x in self._lines.values()):
                self._cancel_stray_retry()

    # A level-triggered line that stays asserted with no handler claiming it
    # would interrupt the CPU forever, so it is masked; BSD's interrupt code
    # does not leave it masked for good (FreeBSD kern_intr.c: a storming source
    # is paused one clock tick, then re-enabled), and neither does
    # this kernel: while any line is masked one timer runs, and when it fires
    # every masked line is unmasked and, if still asserted, its handlers run
    # again. A line that stays stray is masked again at once, so it costs one
    # interrupt per retry interval and other work runs in between.
    def _mask_stray(self, st: _Line) -> None:
        st.stray += 1
        st.storm += 1
        st.masked = True
        if st.storm == 1:
            self.printf(f"stray interrupt on line {st.line}: masked, "
                        f"retried every {self.stray_retry / 1e6:g} us")
        if self._stray_timer is None:
            fut, self._stray_timer = self.loop.call_at(self.loop.now + self.stray_retry,
                                                       "stray-retry")
            fut.add_done_callback(lambda _f: self._stray_retry())

    def _cancel_stray_retry(self) -> None:
        if self._stray_timer is not None:
            self._stray_timer.cancel()
            self._stray_timer = None

    def _stray_retry(self) -> None:
        self._stray_timer = None
        for st in self._lines.values():
            if st.masked:
                st.masked = False
                st.retries += 1
        self._intr_check()

    def intr_stats(self) -> dict:
        return {st.line: {"asserts": st.asserts, "stray": st.stray, "retries": st.retries,
                          "handlers": {ih.name: {"calls": ih.calls, "claimed": ih.count,
                                                 "time_ps": ih.time_ps, "errors": ih.errors}
                                       for ih in st.handlers}}
                for st in self._lines.values()}

    def splraise(self) -> int:
        """Block interrupts for the holder (returns the level for :meth:`splx`)."""
        ctx = self._require()
        s = ctx.spl
        ctx.spl = s + 1
        return s

    def splx(self, s: int) -> None:
        ctx = self._require()
        ctx.spl = s
        if s == 0:
            self.loop.call_soon(lambda _a: self._intr_check())

    def _intr_pending(self) -> bool:
        return any(st.level and not st.masked for st in self._lines.values())

    def _intr_check(self) -> None:
        if self._in_intr or not self._intr_pending():
            return
        cur = self.cur
        if cur is not None and (cur.seg_timer is None or cur.spl > 0):
            return  # stalled or at raised spl: taken at the next boundary
        if cur is not None:
            self._suspend(cur)
        self._in_intr = True
        self._intr_prev = cur
        self.cur = self._intr_ctx
        self._set_mark(self._intr_ctx, "stall")
        self.loop.spawn(self._intr_service(), "interrupt")

    async def _intr_service(self) -> None:
        self.nintr += 1
        await self._kcharge("intr", self.c_intr_entry,
                            lambda end: end + max(0, min(self.c_intr_call, self.c_intr_exit,
                                                         self.stray_retry)))
        while True:
            pending = [st for st in sorted(self._lines.values(), key=lambda s: s.line)
                       if st.level and not st.masked]
            if not pending:
                break
            for st in pending:
                claimed = False
                for ih in list(st.handlers):
                    await self.charge("intr", self.c_intr_call)
                    t0 = self.loop.now
                    ih.calls += 1
                    try:
                        r = await ih.fn()
                    except Exception as exc:  # noqa: BLE001 — a driver bug must not kill the kernel
                        ih.errors += 1
                        r = False
                        self.catchall(f"{ih.name}: interrupt handler", exc)
                    ih.time_ps += self.loop.now - t0
                    if r:
                        claimed = True
                        ih.count += 1
                if claimed:
                    st.storm = 0
                elif st.level:
                    self._mask_stray(st)
        await self._kcharge("intr", self.c_intr_exit, self._after_intr)
        prev, self._intr_prev = self._intr_prev, None
        self._in_intr = False
        self.cur = prev
        if prev is None:
            self._set_mark(None, "idle")
            self._schedule()
        else:
            self._run_segments(prev)
            self._maybe_schedule()
        self._intr_check()

    # ------------------------------------------------------------ memory
    def malloc(self, size: int, align: int = 64) -> Optional[int]:
        """Kernel memory a card may DMA (bus address), or None when exhausted."""
        try:
            return self.memory.alloc(max(1, int(size)), align)
        except (MemoryError, ValueError):
            return None

    def free(self, addr: int) -> None:
        self.memory.free(addr)

