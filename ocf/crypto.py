"""The OCF core (sys/crypto/crypto.c): drivers, sessions, dispatch, completion.

Producer API (drivers)::

    cid = crypto.get_driverid(CRYPTOCAP_F_ENCRYPT_MAC)
    crypto.register(cid, CRYPTO_3DES_CBC, 0, 0, driver)   # driver: a CryptoDriver
    # driver.newsession(chain: list[CryptoIni]) -> (errno, lid)   (plain or async)
    # driver.freesession(lid) -> errno                            (plain or async)
    # driver.process(crp) -> errno                 (plain or async, must not sleep)
    crypto.done(crp)             # on completion, with crp.etype set (plain function)
    crypto.unregister(cid, alg)  # or CRYPTO_ALGORITHM_ALL
    crypto.defer(async_fn)       # run ``await async_fn()`` in the crypto thread

Consumer API::

    err, sid = await crypto.newsession(chain, hard)
    err = crypto.dispatch(crp)   # queue for the crypto thread; callback(crp) later
    err = await crypto.freesession(sid)

A driver is one object with those three methods (:class:`CryptoDriver`, the
``crypto_register`` callbacks of OpenBSD as one protocol); the framework keeps
a :class:`CryptoCap` record (``struct cryptocap``) per driver id.

``process`` runs in the crypto kernel thread; a nonzero return other than
ERESTART completes the request with that errno. ERESTART (OpenBSD
``crypto_invoke``) frees the request's session, unregisters the driver and
migrates the request. Driver ids are never reused, so a stale session id
cannot reach a newer driver.

Accounting (for tests and fault campaigns): per driver, ``DriverStats`` —
``operations`` handed to ``process`` = ``completed_ok`` + ``errors`` +
``restarts`` + ``outstanding``; in total, ``Crypto.dispatched`` =
``completed`` + ``outstanding`` and ``completed`` = ``completed_ok`` +
``completed_errno``. A ``done`` for a request that is not in flight (a second
completion) runs no callback: it is logged and counted in ``dup_done``.
``Crypto.stats()`` returns all of it as one dict.
"""

from __future__ import annotations

import inspect
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any, Awaitable, Callable, Optional, Protocol, runtime_checkable

from sim.kernel import PLOCK, Kernel
from sim.kernel.errno import EAGAIN, EINVAL, EIO, ENOENT, ERESTART

from .cryptodefs import (CRD_F_MAC_ENCRYPT_ALL, CRYPTO_ALGORITHM_ALL, CRYPTO_ALGORITHM_MAX,
                         CRYPTO_F_DONE, CRYPTOCAP_F_SOFTWARE, CRYPTOCAP_F_TLS_ONEPASS, SID_LOCAL_MASK, CryptoDesc, CryptoIni,
                         CryptoOp)

__all__ = ["Crypto", "CryptoCap", "CryptoDriver", "DriverStats"]


async def _call(fn: Callable, *args: Any) -> Any:
    r = fn(*args)
    if inspect.isawaitable(r):
        r = await r
    return r


@dataclass
class DriverStats:
    """One driver's counts; ``operations == completed_ok + errors + restarts + outstanding``."""

    operations: int = 0     # requests handed to process
    bytes: int = 0          # their crp_ilen
    completed_ok: int = 0   # completed with a result (etype 0)
    errors: int = 0         # completed with an errno (by the driver, or returned by process)
    restarts: int = 0       # process returned ERESTART: the request migrated elsewhere
    outstanding: int = 0    # handed to the driver, not yet completed
    sessions: int = 0       # live sessions
    newsessions: int = 0    # sessions ever created


@runtime_checkable
class CryptoDriver(Protocol):
    """What OCF calls in a driver (the ``crypto_register`` callbacks of
    sys/crypto/crypto.c as one object). Each may be a plain or an async method."""

    def newsession(self, chain: list[CryptoIni]) -> Any:
        """``(errno, lid)``: a driver-local session id for ``chain``."""

    def freesession(self, lid: int) -> Any:
        """errno; ``lid`` came from this driver's ``newsession``."""

    def process(self, crp: CryptoOp) -> Any:
        """errno; 0 means the driver calls ``crypto.done(crp)`` later. Must not sleep."""


class CryptoCap:
    """``struct cryptocap``: the framework's record of one registered driver."""

    def __init__(self, cid: int, flags: int):
        self.cid = cid
        self.flags = flags
        self.algs: dict[int, tuple[int, int]] = {}   # alg -> (maxoplen, flags)
        self.driver: Optional[CryptoDriver] = None   # set by the first register
        self.cleanup = False
        self.lids: set[int] = set()     # live local session ids
        self.stats = DriverStats()

    @property
    def sessions(self) -> int:
        return self.stats.sessions

    @property
    def software(self) -> bool:
        return bool(self.flags & CRYPTOCAP_F_SOFTWARE)

    def __repr__(self) -> str:
        return f"<crypto driver {self.cid} flags={self.flags:#x} sessions={self.sessions}>"


class Crypto:
    """The framework instance of one kernel, with its crypto kernel thread."""

    def __init__(self, kernel: Kernel):
        self.kernel = kernel
        self.drivers: list[Optional[CryptoCap]] = []
        self._queue: deque[CryptoOp] = deque()
        self._work: deque[Callable[[], Awaitable[Any]]] = deque()
        self._qchan = object()          # the wait channel of the crypto thread
        self.c_invoke = kernel.profile.cost("ocf.invoke")
        self.c_dispatch = kernel.profile.cost("ocf.dispatch")
        self.dispatched = 0         # requests queued by dispatch
        self.completed = 0          # callbacks run (one per dispatch)
        self.completed_ok = 0       # ... with etype 0
        self.completed_errno = 0    # ... with an errno (EAGAIN after a migration included)
        self.migrated = 0
        self.dup_done = 0           # done() for a request not in flight: ignored
        self.callback_errors = 0
        self.thread = kernel.kthread_create("crypto", self._crypto_thread)

    # ------------------------------------------------------------ drivers
    def get_driverid(self, flags: int = 0) -> int:
        """A new driver id (``crypto_get_driverid``); ids are never reused."""
        cid = len(self.drivers)
        self.drivers.append(CryptoCap(cid, int(flags) & ~0x01))
        return cid

    def _driver(self, cid: Any) -> Optional[CryptoCap]:
        if type(cid) is not int or cid < 0 or cid >= len(self.drivers):
            return None
        return self.drivers[cid]

    def register(self, cid: int, alg: int, maxoplen: int, flags: int,
                 driver: CryptoDriver) -> int:
        """Register support for ``alg`` (``crypto_register``) by ``driver``, a
        :class:`CryptoDriver`; the first call binds the driver id to it, later
        calls must name the same object."""
        drv = self._driver(cid)
        if drv is None or drv.cleanup or type(alg) is not int \
                or not 1 <= alg <= CRYPTO_ALGORITHM_MAX:
            return EINVAL
        if drv.driver is None:
            if not isinstance(driver, CryptoDriver) or not all(
                    callable(getattr(driver, m, None))
                    for m in ("newsession", "freesession", "process")):
                return EINVAL
            drv.driver = driver
        elif driver is not drv.driver:
            return EINVAL
        drv.algs[alg] = (maxoplen, flags)
        return 0

    def unregister(self, cid: int, alg: int = CRYPTO_ALGORITHM_ALL) -> int:
        """Withdraw ``alg`` (or all); a driver left with none is removed, or marked
        for cleanup while it still has sessions (their requests then migrate)."""
        drv = self._driver(cid)
        if drv is None or drv.cleanup:
            return EINVAL
        if alg != CRYPTO_ALGORITHM_ALL:
            if alg not in drv.algs:
                return EINVAL
            del drv.algs[alg]
            if drv.algs:
                return 0
        drv.algs.clear()
        drv.driver = None
        if drv.lids:
            drv.cleanup = True
        else:
            self.drivers[cid] = None
        return 0

    def driver_stats(self, cid: int) -> Optional[DriverStats]:
        drv = self._driver(cid)
        return drv.stats if drv else None

    @property
    def outstanding(self) -> int:
        """Dispatched requests whose callback has not run yet."""
        return self.dispatched - self.completed

    def stats(self) -> dict:
        """Totals and per-driver counts (drivers still registered or in cleanup)."""
        return {"dispatched": self.dispatched, "completed": self.completed,
                "completed_ok": self.completed_ok, "completed_errno": self.completed_errno,
                "outstanding": self.outstanding, "dup_done": self.dup_done,
                "migrated": self.migrated, "callback_errors": self.callback_errors,
                "drivers": {d.cid: asdict(d.stats) for d in self.drivers if d is not None}}

    # ------------------------------------------------------------ sessions
    @staticmethod
    def _check_chain(chain: Any) -> Optional[list[CryptoIni]]:
        if isinstance(chain, CryptoIni):
            chain = [chain]
        if not isinstance(chain, (list, tuple)) or not chain:
            return None
        for c in chain:
            if not isinstance(c, CryptoIni) or type(c.alg) is not int \
                    or not 1 <= c.alg <= CRYPTO_ALGORITHM_MAX:
                return None
        return list(chain)

    def select_driver(self, chain: list[CryptoIni], hard: bool,
                      need_flags: int = 0) -> Optional[CryptoCap]:
        """Hardware first, then software unless ``hard``; every algorithm supported;
        fewest sessions wins (lowest id on a tie)."""
        for software in (False, True):
            if software and hard:
                break
            best = None
            for drv in self.drivers:
                if drv is None or drv.cleanup or drv.driver is None \
                        or drv.software != software:
                    continue
                if need_flags and (drv.flags & need_flags) != need_flags:
                    continue
                if any(c.alg not in drv.algs for c in chain):
                    continue
                if best is None or drv.sessions < best.sessions:
                    best = drv
            if best is not None:
                return best
        return None

    async def newsession(self, chain: Any, hard: bool = False,
                         need_flags: int = 0) -> tuple[int, int]:
        """``crypto_newsession``: (errno, sid). ``need_flags``: required driver
        flags (e.g. CRYPTOCAP_F_MAC_ENCRYPT), an extension for ordered chains."""
        chain = self._check_chain(chain)
        if chain is None:
            return EINVAL, 0
        drv = self.select_driver(chain, bool(hard), int(need_flags or 0))
        if drv is None:
            return EINVAL, 0
        try:
            r = await _call(drv.driver.newsession, chain)
        except Exception as exc:  # noqa: BLE001 — a driver bug is an errno
            self.kernel.catchall(f"crypto{drv.cid}: newsession", exc)
            return EIO, 0
        if isinstance(r, tuple) and len(r) == 2:
            err, lid = r
        else:
            err, lid = EIO, None
        if err:
            return (err if type(err) is int else EIO), 0
        if type(lid) is not int or not 0 <= lid <= SID_LOCAL_MASK:
            self.kernel.printf(f"crypto{drv.cid}: newsession returned bad id {lid!r}")
            return EIO, 0
        if self.drivers[drv.cid] is not drv or drv.cleanup:   # went away meanwhile
            return EAGAIN, 0
        if lid in drv.lids:
            self.kernel.printf(f"crypto{drv.cid}: newsession returned live id {lid}")
            return EIO, 0
        drv.lids.add(lid)
        drv.stats.sessions = len(drv.lids)
        drv.stats.newsessions += 1
        return 0, (drv.cid << 32) | lid

    async def freesession(self, sid: Any) -> int:
        """``crypto_freesession``; the last session of a driver in cleanup removes it.

        A session that is not live (never made, or freed already) is ENOENT and
        does not reach the driver, so no session is freed twice."""
        if type(sid) is not int or sid < 0:
            return EINVAL
        hid, lid = sid >> 32, sid & SID_LOCAL_MASK
        drv = self._driver(hid)
        if drv is None or lid not in drv.lids:
            return ENOENT
        drv.lids.discard(lid)
        drv.stats.sessions = len(drv.lids)
        err = 0
        if drv.driver is not None:
            try:
                err = await _call(drv.driver.freesession, lid)
            except Exception as exc:  # noqa: BLE001
                self.kernel.catchall(f"crypto{hid}: freesession", exc)
                err = EIO
        if drv.cleanup and not drv.lids and self.drivers[hid] is drv:
            self.drivers[hid] = None
        return err if type(err) is int else EIO

    # ------------------------------------------------------------ requests
    def dispatch(self, crp: Any) -> int:
        """``crypto_dispatch``: queue for the crypto thread and return.

        The caller pays ``ocf.dispatch`` (``crypto.c_dispatch``). Only a request
        without a callable callback, or one still in flight, is refused here
        (EINVAL); every queued request completes through its callback exactly once.
        """
        if not isinstance(crp, CryptoOp) or not callable(crp.callback):
            return EINVAL
        if crp.state != "idle":
            self.kernel.printf("crypto_dispatch: request already in flight (refused)")
            return EINVAL
        crp.state = "queued"
        crp.flags &= ~CRYPTO_F_DONE
        crp.etype = 0
        crp.ndispatch += 1
        self.dispatched += 1
        self._queue.append(crp)
        self.kernel.wakeup(self._qchan)
        return 0

    def done(self, crp: Any) -> None:
        """``crypto_done``: run the consumer's callback (once per dispatch).

        Only a request the crypto thread has taken from its queue can complete.
        Any other (completed already, never dispatched, or dispatched again and
        still queued: a stale completion) is a second completion: counted in
        ``dup_done``, logged, no callback."""
        if not isinstance(crp, CryptoOp):
            self.kernel.printf(f"crypto_done: not a request: {crp!r}")
            return
        if crp.state != "active":
            self.dup_done += 1
            self.kernel.printf("crypto_done: request completed twice (ignored)")
            return
        crp.state = "idle"
        crp.flags |= CRYPTO_F_DONE
        crp.ndone += 1
        drv, crp.driver = crp.driver, None
        if drv is not None:
            drv.stats.outstanding -= 1
            if crp.etype:
                drv.stats.errors += 1
            else:
                drv.stats.completed_ok += 1
        self.completed += 1
        if crp.etype:
            self.completed_errno += 1
        else:
            self.completed_ok += 1
        try:
            crp.callback(crp)
        except Exception as exc:  # noqa: BLE001 — a consumer bug must not kill the kernel
            self.callback_errors += 1
            self.kernel.catchall("crypto_done: callback", exc)

    def _fail(self, crp: CryptoOp, err: int) -> None:
        crp.etype = err
        self.done(crp)

    def defer(self, fn: Callable[[], Awaitable[Any]]) -> None:
        """Run ``await fn()`` in the crypto kernel thread (before further requests)."""
        self._work.append(fn)
        self.kernel.wakeup(self._qchan)

    @property
    def queue_length(self) -> int:
        return len(self._queue)

    # ------------------------------------------------------ crypto thread
    async def _crypto_thread(self, t: Any) -> None:
        k = self.kernel
        while True:
            if self._work:
                fn = self._work.popleft()
                try:
                    await fn()
                except Exception as exc:  # noqa: BLE001
                    k.catchall("crypto thread: deferred work", exc)
                continue
            if not self._queue:
                await k.tsleep(self._qchan, PLOCK, "crypto_wait")
                continue
            crp = self._queue.popleft()
            crp.state = "active"
            await k.charge("ocf", self.c_invoke)
            try:
                await self._invoke(crp)
            except Exception as exc:  # noqa: BLE001 — never lose the request
                k.catchall("crypto_invoke", exc)
                if crp.state == "active":
                    self._fail(crp, EIO)

    async def _invoke(self, crp: CryptoOp) -> None:
        """``crypto_invoke``: hand the request to its driver, or migrate it."""
        if not isinstance(crp.desc, list) or not crp.desc \
                or not all(isinstance(d, CryptoDesc) and isinstance(d.ini, CryptoIni)
                           for d in crp.desc) or crp.buf is None:
            self._fail(crp, EINVAL)
            return
        sid = crp.sid
        if type(sid) is not int or sid < 0:
            self._fail(crp, EINVAL)
            return
        hid = sid >> 32
        drv = self._driver(hid)
        if drv is None or drv.cleanup or drv.driver is None:
            if drv is not None and drv.cleanup:
                await self.freesession(sid)
            await self._migrate(crp)
            return
        if not drv.flags & CRYPTOCAP_F_TLS_ONEPASS and \
                any(d.flags & CRD_F_MAC_ENCRYPT_ALL for d in crp.desc if type(d.flags) is int):
            self._fail(crp, EINVAL)          # the driver cannot do the one-pass record
            return
        drv.stats.operations += 1
        drv.stats.bytes += crp.ilen if type(crp.ilen) is int else 0
        drv.stats.outstanding += 1
        crp.driver = drv
        try:
            err = await _call(drv.driver.process, crp)
        except Exception as exc:  # noqa: BLE001
            self.kernel.catchall(f"crypto{hid}: process", exc)
            err = EIO
        if not err or crp.state != "active":
            return
        if err == ERESTART:
            await self._restart(drv, crp)
        else:
            self._fail(crp, err if type(err) is int else EIO)   # counted as the driver's error

    async def _restart(self, drv: CryptoCap, crp: CryptoOp) -> None:
        """``process`` returned ERESTART: the driver is going away. Free the
        request's session on it (OpenBSD's crypto_invoke does not, which leaves
        the driver in cleanup with that session for good), unregister it and
        migrate the request."""
        if crp.driver is drv:
            drv.stats.outstanding -= 1
            drv.stats.restarts += 1
            crp.driver = None
        self.kernel.printf(f"crypto{drv.cid}: ERESTART, driver unregistered")
        await self.freesession(crp.sid)
        if self.drivers[drv.cid] is drv and not drv.cleanup:
            self.unregister(drv.cid, CRYPTO_ALGORITHM_ALL)
        await self._migrate(crp)

    async def _migrate(self, crp: CryptoOp) -> None:
        """New session elsewhere from the request's init data; complete with EAGAIN.

        As OpenBSD, the new session may be a software one. If no driver can take
        it, the request completes with newsession's errno rather than EAGAIN
        (OpenBSD would let the consumer retry the dead session forever).
        """
        err, nid = await self.newsession([d.ini for d in crp.desc], False)
        if err:
            self._fail(crp, err)
            return
        crp.sid = nid
        self.migrated += 1
        self._fail(crp, EAGAIN)
