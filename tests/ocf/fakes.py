"""Fake hardware crypto drivers for OCF tests: complete after a simulated delay
through a (simulated) level-triggered interrupt, like a real card."""

from __future__ import annotations

import itertools
from collections import deque

from ocf.cryptodefs import CRYPTO_ALGORITHM_ALL, CRYPTO_NULL, CryptoOp
from sim.kernel.errno import EIO, ERESTART
from sim.loop import ns, us

_lines = itertools.count(5)


class FakeCard:
    """A card driver: ``process`` queues, a timer "finishes" the work and raises
    the interrupt line, the handler calls ``crypto.done``.

    ``behave(crp) -> str`` picks per request: "ok", "fail" (EIO after the delay),
    "reject" (EIO returned by process), "restart" (ERESTART from process),
    "vanish" (the card detaches: in-flight requests fail with EIO, driver
    unregisters).
    """

    def __init__(self, crypto, name="fake", algs=(CRYPTO_NULL,), flags=0,
                 delay=us(20), behave=None, line=None):
        self.crypto, self.kernel = crypto, crypto.kernel
        self.loop = self.kernel.loop
        self.name, self.delay = name, delay
        self.behave = behave or (lambda crp: "ok")
        self.line = next(_lines) if line is None else line
        self.cid = crypto.get_driverid(flags)
        for alg in algs:
            crypto.register(self.cid, alg, 0, 0, self)
        self.ih = self.kernel.intr_establish(self.line, self.intr, name)
        self.sessions: set[int] = set()
        self._lid = itertools.count(1)
        self.inflight: dict[int, CryptoOp] = {}
        self.finished: deque = deque()
        self.processed = 0
        self.gone = False

    def newsession(self, chain):
        lid = next(self._lid)
        self.sessions.add(lid)
        return 0, lid

    def freesession(self, lid):
        self.sessions.discard(lid)
        return 0

    async def process(self, crp):
        await self.kernel.charge("driver", ns(400))
        self.processed += 1
        what = self.behave(crp)
        if what == "reject":
            return EIO
        if what == "restart":
            return ERESTART
        if what == "vanish":
            self.detach()
            return ERESTART
        key = id(crp)
        self.inflight[key] = crp
        fut, _ = self.loop.call_at(self.loop.now + self.delay, f"{self.name}-work")
        fut.add_done_callback(lambda _f: self._finish(key, 0 if what == "ok" else EIO))
        return 0

    def _finish(self, key, err):
        crp = self.inflight.pop(key, None)
        if crp is None:
            return
        self.finished.append((crp, err))
        self.kernel.interrupt(self.line, True)

    async def intr(self):
        if not self.finished:
            return False
        await self.kernel.charge("driver", ns(300))
        while self.finished:
            crp, err = self.finished.popleft()
            crp.etype = err
            self.crypto.done(crp)
        self.kernel.interrupt(self.line, False)
        return True

    def detach(self):
        """Fail everything in flight and unregister (a card pulled out)."""
        if self.gone:
            return
        self.gone = True
        while self.finished:                     # salvage finished results
            crp, err = self.finished.popleft()
            crp.etype = err
            self.crypto.done(crp)
        for crp in list(self.inflight.values()):
            crp.etype = EIO
            self.crypto.done(crp)
        self.inflight.clear()
        self.kernel.interrupt(self.line, False)
        self.crypto.unregister(self.cid, CRYPTO_ALGORITHM_ALL)
        self.kernel.intr_disestablish(self.ih)
