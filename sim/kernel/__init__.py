"""The simulated kernel: CPU ownership timeline, scheduler, interrupts, host profiles.

``Kernel(loop, memory, profile="p3-1400-openbsd")`` — see :mod:`sim.kernel.core`
(CPU, scheduler, interrupts) and :mod:`sim.kernel.syscalls` (descriptors,
devices, copies, the system-call wrapper).
"""

from . import errno
from .core import (KINDS, PINOD, PLOCK, PPAUSE, PRIBIO, PSOCK, PSWP, PUSER, PVFS, PVM,
                   PWAIT, PZERO, Context, File, IntrHandler, Kernel, KernelError)
from .profile import DEFAULT_PROFILE, Profile, load_profile, profile_names
from .syscalls import FileSyscalls

__all__ = ["Kernel", "Context", "File", "IntrHandler", "KernelError", "errno",
           "Profile", "load_profile", "profile_names", "DEFAULT_PROFILE", "KINDS",
           "PSWP", "PVM", "PINOD", "PRIBIO", "PVFS", "PZERO", "PSOCK", "PWAIT",
           "PLOCK", "PPAUSE", "PUSER", "FileSyscalls"]
