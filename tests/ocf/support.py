"""Software-only OCF test machine: a kernel on a Python memory, OCF attached."""

from ocf.attach import attach
from sim.kernel import Kernel
from sim.loop import SimLoop
from sim.memory import ByteMemory


class System:
    def __init__(self, allow_soft=False, software=True, profile="p3-1400-openbsd"):
        self.loop = SimLoop()
        self.memory = ByteMemory(8 << 20)
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
