"""Software-only OCF test machine: a kernel on a Python memory, OCF attached."""

import bisect

from ocf.attach import attach
from sim.kernel import Kernel
from sim.loop import SimLoop
from sim.memory import ByteMemory


class BoundsCheckedMemory(ByteMemory):
    """Host memory that records every access not inside one live allocation.

    ``violations`` lists ``(op, addr, n)``; a kernel that keeps within its
    buffers leaves it empty. Accesses of 0 bytes touch nothing and pass.
    """

    def __init__(self, size: int):
        super().__init__(size)
        self.violations: list[tuple[str, int, int]] = []

    def _inside(self, addr: int, n: int) -> bool:
        if n == 0:
            return True
        starts = sorted(self._used)
        i = bisect.bisect_right(starts, addr) - 1
        return i >= 0 and addr + n <= starts[i] + self._used[starts[i]]

    def read(self, addr: int, n: int) -> bytes:
        if not self._inside(addr, n):
            self.violations.append(("read", addr, n))
        return super().read(addr, n)

    def write(self, addr: int, data: bytes) -> None:
        if not self._inside(addr, len(data)):
            self.violations.append(("write", addr, len(data)))
        super().write(addr, data)


class System:
    """A kernel with OCF on a :class:`BoundsCheckedMemory`; every instance is
    listed in ``System.made`` so a fixture can check them after each test."""

    made: list["System"] = []

    def __init__(self, allow_soft=False, software=True, profile="p3-1400-openbsd"):
        System.made.append(self)
        self.loop = SimLoop()
        self.memory = BoundsCheckedMemory(8 << 20)
        self.kernel = Kernel(self.loop, self.memory, profile)
        self.ocf = attach(self.kernel, software=software, allow_soft=allow_soft)
        self.crypto = self.ocf.crypto

    def run_proc(self, fn, *args, deadline=None):
        """Run ``fn(p, *args)`` as a process to completion; its return value."""
        p = self.kernel.fork("test", fn, *args)
        return self.loop.run(p.task, deadline=deadline)

    def run_kthread(self, fn, *args, deadline=None):
        t = self.kernel.kthread_create("test", fn, *args)
        return self.loop.run(t.task, deadline=deadline)
