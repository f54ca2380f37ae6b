"""Discrete-event loop on simulated time: where host software runs.

Host software (drivers, OCF, the simulated kernel, applications) is written as
ordinary ``async def`` coroutines. They never await a simulator primitive:
they await :class:`Future` objects of this loop (a timer, an MMIO completion,
a wakeup). The loop resolves futures in simulated-time order and, when it has
nothing runnable, asks the *hardware port* to run the RTL forward to the next
timer, or until the hardware needs attention (an MMIO finished, an interrupt
line changed). That is how Python stays off the per-cycle path: the RTL runs
free between host events.

Time is an integer number of picoseconds (``loop.now``); helpers ``ns``,
``us``, ``ms`` convert. Picoseconds represent both the PCI clock (30 000 ps at
33 MHz) and CPU-cycle costs (714 ps at 1.4 GHz) closely enough that rounding
is below any figure we report.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from typing import Any, Awaitable, Callable, Coroutine, Optional

__all__ = ["SimLoop", "Future", "Task", "TimerHandle", "Deadlock",
           "ps", "ns", "us", "ms", "s_from_ps"]


def ps(x: float) -> int:
    return int(round(x))


def ns(x: float) -> int:
    return int(round(x * 1_000))


def us(x: float) -> int:
    return int(round(x * 1_000_000))


def ms(x: float) -> int:
    return int(round(x * 1_000_000_000))


def s_from_ps(t: int) -> float:
    return t / 1e12


class Deadlock(RuntimeError):
    """Tasks are waiting but nothing (timer or hardware) can ever wake them."""


class CancelledError(Exception):
    """Raised inside a task whose wait was cancelled."""


_PENDING = object()


class Future:
    """A value that will be set later; ``await fut`` suspends the task until then."""

    __slots__ = ("_loop", "_result", "_exc", "_callbacks", "label")

    def __init__(self, loop: "SimLoop", label: str = ""):
        self._loop = loop
        self._result: Any = _PENDING
        self._exc: Optional[BaseException] = None
        self._callbacks: list[Callable[["Future"], None]] = []
        self.label = label

    def done(self) -> bool:
        return self._result is not _PENDING or self._exc is not None

    def result(self) -> Any:
        if self._exc is not None:
            raise self._exc
        if self._result is _PENDING:
            raise RuntimeError("future not done")
        return self._result

    def exception(self) -> Optional[BaseException]:
        return self._exc

    def set_result(self, value: Any = None) -> None:
        if self.done():
            raise RuntimeError(f"future {self.label!r} resolved twice")
        self._result = value
        self._fire()

    def set_exception(self, exc: BaseException) -> None:
        if self.done():
            raise RuntimeError(f"future {self.label!r} resolved twice")
        self._exc = exc
        self._fire()

    def add_done_callback(self, fn: Callable[["Future"], None]) -> None:
        if self.done():
            self._loop._ready.append((fn, self))
        else:
            self._callbacks.append(fn)

    def _fire(self) -> None:
        callbacks, self._callbacks = self._callbacks, []
        for fn in callbacks:
            self._loop._ready.append((fn, self))

    def __await__(self):
        if not self.done():
            yield self
        return self.result()


class Task(Future):
    """A coroutine scheduled on the loop; itself a future of its return value."""

    __slots__ = ("_coro", "_waiting_on", "name")

    def __init__(self, loop: "SimLoop", coro: Coroutine, name: str):
        super().__init__(loop, name)
        self._coro = coro
        self._waiting_on: Optional[Future] = None
        self.name = name

    def _step(self, fut: Optional[Future] = None) -> None:
        self._waiting_on = None
        try:
            if fut is not None and fut._exc is not None:
                waited = self._coro.throw(fut._exc)
            else:
                waited = self._coro.send(None if fut is None else fut._result)
        except StopIteration as stop:
            self.set_result(stop.value)
            return
        except BaseException as exc:  # noqa: BLE001 — handed to whoever awaits the task
            self.set_exception(exc)
            if not self._callbacks and self._loop._strict:
                self._loop._orphan_errors.append((self, exc))
            return
        if not isinstance(waited, Future):
            self._coro.throw(TypeError(
                f"task {self.name!r} awaited {waited!r}; host code may only await "
                "sim.loop futures (timers, MMIO, events), not simulator primitives"))
        self._waiting_on = waited
        waited.add_done_callback(self._step)

    def cancel(self) -> bool:
        """Throw :class:`CancelledError` into the task at its current wait."""
        if self.done():
            return False
        waiting = self._waiting_on
        if waiting is not None and self._step in waiting._callbacks:
            waiting._callbacks.remove(self._step)
        dummy = Future(self._loop, "cancel")
        dummy._exc = CancelledError(self.name)
        self._loop._ready.append((self._step, dummy))
        return True


class TimerHandle:
    """A pending timer. ``horizon`` is None for an ordinary timer; a *quiet*
    timer (see :meth:`SimLoop.call_at`) carries a function giving the
    earliest time at which anything its firing sets off can reach the
    hardware or host code other than the kernel's own."""

    __slots__ = ("when", "seq", "future", "cancelled", "horizon")

    def __init__(self, when: int, seq: int, future: Future,
                 horizon: Optional[Callable[[], int]] = None):
        self.when, self.seq, self.future, self.cancelled = when, seq, future, False
        self.horizon = horizon

    def cancel(self) -> None:
        self.cancelled = True

    def __lt__(self, other: "TimerHandle") -> bool:
        return (self.when, self.seq) < (other.when, other.seq)


class HardwarePort:
    """What the loop needs from the hardware (see :mod:`sim.host`).

    ``advance(limit, horizon)`` runs the RTL from the current time until
    ``limit`` picoseconds (``None``: until the hardware needs attention) and
    returns the time reached; it resolves futures for whatever happened on
    the way. ``horizon`` (≥ ``limit``, or ``None`` for ``limit``) is the
    earliest time host code can touch the hardware, when the events before
    it are quiet timers only: the port may run the RTL on to it in the same
    step, keeping what it saw past ``limit`` for later calls.
    With ``limit=None`` and nothing that can ever need attention, it raises
    :class:`Deadlock` rather than running forever. A port may leave its
    RTL behind the present while the machine is quiet; then it has an async
    ``catch_up()``, which the loop awaits when the run ends.
    """

    async def advance(self, limit: Optional[int],
                      horizon: Optional[int] = None) -> int:  # pragma: no cover - interface
        raise NotImplementedError


class SimLoop:
    """Single-threaded scheduler of host coroutines on simulated time."""

    def __init__(self, strict: bool = True):
        self.now: int = 0
        self._ready: deque[tuple[Callable, Any]] = deque()
        self._timers: list[TimerHandle] = []
        self._seq = itertools.count()
        self._strict = strict
        self._orphan_errors: list[tuple[Task, BaseException]] = []
        self.hardware: Optional[HardwarePort] = None
        self.tasks: list[Task] = []

    # -- creating work -------------------------------------------------------
    def create_future(self, label: str = "") -> Future:
        return Future(self, label)

    def spawn(self, coro: Coroutine, name: str = "") -> Task:
        task = Task(self, coro, name or getattr(coro, "__qualname__", "task"))
        self.tasks.append(task)
        self._ready.append((lambda _: task._step(), None))
        return task

    def call_at(self, when: int, label: str = "timer",
                horizon: Optional[Callable[[], int]] = None) -> tuple[Future, TimerHandle]:
        """A future resolved at simulated time ``when`` (ps), and its cancel handle.

        ``horizon`` marks a *quiet* timer: its callbacks run only kernel code
        that neither touches the hardware nor resumes other host code before
        ``horizon()`` ps (asked when the loop next runs the hardware; ≥
        ``when``). The hardware may then run past ``when`` in one step.
        """
        fut = Future(self, label)
        handle = TimerHandle(max(int(when), self.now), next(self._seq), fut, horizon)
        heapq.heappush(self._timers, handle)
        return fut, handle

    def sleep(self, duration: int) -> Future:
        """``await loop.sleep(ns(100))`` — a timer ``duration`` ps from now."""
        if duration < 0:
            raise ValueError(f"negative sleep {duration}")
        return self.call_at(self.now + int(duration), "sleep")[0]

    def call_soon(self, fn: Callable[[Any], None], arg: Any = None) -> None:
        self._ready.append((fn, arg))

    # -- running ---------------------------------------------------------------
    def _run_ready(self) -> None:
        ready = self._ready
        while ready:
            fn, arg = ready.popleft()
            fn(arg)
        if self._orphan_errors:
            task, exc = self._orphan_errors[0]
            self._orphan_errors.clear()
            raise exc

    def _next_timer(self) -> Optional[int]:
        timers = self._timers
        while timers and timers[0].cancelled:
            heapq.heappop(timers)
        return timers[0].when if timers else None

    def _horizon(self, target: int) -> int:
        """How far the hardware may run when the next timer (at ``target``) fires.

        ``target`` itself unless that timer is quiet; then its horizon, but
        no later than the next timer after it (any timer: bounded below by
        the heap's second level, so a later quiet timer only shortens it).
        """
        timers = self._timers
        first = timers[0]
        if first.horizon is None:
            return target
        h = max(target, first.horizon())
        for t in timers[1:3]:
            h = min(h, t.when)
        return h

    def _fire_timers(self) -> None:
        timers = self._timers
        while timers and (timers[0].cancelled or timers[0].when <= self.now):
            handle = heapq.heappop(timers)
            if not handle.cancelled and not handle.future.done():
                handle.future.set_result(None)

    async def run_until_complete(self, main: Task | Coroutine,
                                 deadline: Optional[int] = None) -> Any:
        """Run until ``main`` finishes; return its result (or raise its error).

        ``deadline`` (ps) bounds simulated time: reaching it raises TimeoutError.
        This is ``async`` because, with hardware attached, it awaits the
        backend (Amaranth testbench or cocotb); with no hardware it never
        suspends and :meth:`run` can drive it synchronously.
        """
        if not isinstance(main, Task):
            main = self.spawn(main, "main")
        while True:
            self._run_ready()
            if main.done():
                await self._settle()
                return main.result()
            target = self._next_timer()
            horizon = target
            if self.hardware is not None and target is not None:
                horizon = self._horizon(target)
            if deadline is not None:
                target = deadline if target is None else min(target, deadline)
                horizon = min(horizon if horizon is not None else deadline, deadline)
            if self.hardware is not None:
                self.now = await self.hardware.advance(target, horizon)
            elif target is None:
                raise Deadlock(self._describe_waiters())
            else:
                self.now = target
            self._fire_timers()
            if deadline is not None and self.now >= deadline:
                self._run_ready()
                await self._settle()
                if main.done():
                    return main.result()
                raise TimeoutError(f"simulated deadline {deadline} ps reached")

    async def _settle(self) -> None:
        """The run ends: a hardware port that left its RTL behind the present
        (``catch_up``, :meth:`sim.host.Host.catch_up`) brings it there."""
        catch_up = getattr(self.hardware, "catch_up", None)
        if catch_up is not None:
            await catch_up()

    def run(self, main: Coroutine, deadline: Optional[int] = None) -> Any:
        """Synchronous driver for software-only runs (no hardware attached)."""
        if self.hardware is not None:
            raise RuntimeError("a loop with hardware is driven by its backend")
        coro = self.run_until_complete(main, deadline)
        try:
            coro.send(None)
        except StopIteration as stop:
            return stop.value
        raise RuntimeError("software-only loop suspended unexpectedly")

    def _describe_waiters(self) -> str:
        waiting = [f"{t.name} on {t._waiting_on.label or 'future'}"
                   for t in self.tasks if not t.done() and t._waiting_on is not None]
        return "deadlock: no timer or hardware event can wake " + (", ".join(waiting) or "anything")


async def gather(loop: SimLoop, *aws: Awaitable) -> list:
    """Await several futures/coroutines; results in order (first error raised)."""
    futs = [a if isinstance(a, Future) else loop.spawn(a) for a in aws]
    return [await f for f in futs]
