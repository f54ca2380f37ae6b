"""The system-call face of the simulated kernel: open files, descriptors, copies.

A process's descriptor table is ``Context.fds`` (fd → :class:`File`, a
``struct file`` with its ``fileops``), as in 4.4BSD's ``kern_descrip.c``:
``fdalloc`` takes the lowest free descriptor (from 3: 0-2 are the standard
streams a real process inherits), ``fd_get`` is ``fd_getfile``.
:meth:`FileSyscalls.syscall` is the trap path every system call takes
(``syscall()`` in ``arch/i386/i386/trap.c``: entry, body, exit, ``userret``);
``copyin``/``copyout`` move bytes between a user buffer and kernel memory and
are charged at the profile's memory bandwidth (``copy_cost``). Devices
(``/dev/crypto``) register a path; sockets (``netinet``) are Files too.

:class:`FileSyscalls` is a part of :class:`sim.kernel.core.Kernel`; it uses the
kernel's ``charge``, ``userret``, ``catchall``, ``profile`` and ``memory``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Awaitable, Callable, Optional

from .errno import EBADF, EFAULT, EINVAL, EIO, ENODEV, ENOTTY

if TYPE_CHECKING:
    from .core import Context

__all__ = ["File", "FileSyscalls"]


class File:
    """An open file's operations (a ``struct fileops``); return errnos."""

    async def ioctl(self, p: "Context", cmd: int, arg: Any) -> int:
        return ENOTTY

    async def close(self, p: "Context") -> int:
        return 0


class FileSyscalls:
    """Descriptors, devices, copies and the system-call wrapper (mixed into Kernel)."""

    devices: dict[str, Any]
    c_copy_setup: int

    async def fdcloseall(self, p: "Context") -> None:
        """Close every descriptor of an exiting process (``fdfree``), lowest first."""
        for fd in sorted(p.fds):
            f = p.fds.pop(fd)
            try:
                await f.close(p)
            except Exception as exc:  # noqa: BLE001 — a close must not kill exit
                self.catchall(f"{p.name}: close({fd})", exc)

    # ------------------------------------------------------------ copies
    @staticmethod
    def user_buffer(buf: Any, n: int, writable: bool = False) -> Optional[memoryview]:
        """The first ``n`` bytes of user buffer ``buf`` as a byte view, or None (EFAULT).

        A user buffer is ``bytes``, ``bytearray`` or a memoryview that is not
        released, one-dimensional, C-contiguous, of 1-byte items, and holds
        at least ``n`` bytes; a destination (``writable``) must not be
        read-only. Sizes are measured in bytes (``nbytes``), never in items.
        ``None`` is accepted only for ``n == 0``: a zero-length copy touches no
        user memory, so it cannot fault (OpenBSD ``copyin``/``copyout``).
        """
        if type(n) is not int or n < 0:
            return None
        if buf is None:
            return memoryview(b"") if n == 0 else None
        if type(buf) not in (bytes, bytearray, memoryview):
            return None
        try:
            view = memoryview(buf)
            ok = (view.ndim == 1 and view.itemsize == 1 and view.c_contiguous
                  and view.nbytes >= n and not (writable and view.readonly))
            return view.cast("B")[:n] if ok else None
        except (ValueError, TypeError):   # released, or a format cast() refuses
            return None

    def copy_cost(self, nbytes: int) -> int:
        return self.c_copy_setup + self.profile.bytes_cost("copy.bandwidth", nbytes)

    async def copyin(self, src: Any, kaddr: int, n: int) -> int:
        """Copy ``n`` bytes of user buffer ``src`` to kernel memory at ``kaddr``."""
        if type(n) is not int or n < 0:
            return EINVAL
        if self.user_buffer(src, n) is None:
            return EFAULT
        await self.charge("copy", self.copy_cost(n))
        view = self.user_buffer(src, n)       # another process may have changed it meanwhile
        if view is None:
            return EFAULT
        if n:
            self.memory.write(kaddr, bytes(view))
        view.release()
        return 0

    async def copyout(self, kaddr: int, dst: Any, n: int) -> int:
        """Copy ``n`` bytes of kernel memory at ``kaddr`` into user buffer ``dst``."""
        if type(n) is not int or n < 0:
            return EINVAL
        if self.user_buffer(dst, n, writable=True) is None:
            return EFAULT
        await self.charge("copy", self.copy_cost(n))
        view = self.user_buffer(dst, n, writable=True)
        if view is None:
            return EFAULT
        if n:
            view[:] = self.memory.read(kaddr, n)
        view.release()
        return 0

    # ------------------------------------------------------------ syscalls
    async def syscall(self, p: "Context", fn: Callable[[], Awaitable[Any]]) -> Any:
        """Run ``fn`` as a system call of ``p``: entry cost, body, exit cost, userret."""
        self._require(p)
        await self.charge("syscall", self.c_syscall_entry)
        try:
            result = await fn()
        except Exception as exc:  # noqa: BLE001 — never let a bug escape as an exception
            self.catchall(f"{p.name}: system call", exc)
            result = EIO
        await self.charge("syscall", self.c_syscall_exit)
        await self.userret(p)
        return result

    def register_device(self, path: str, dev: Any) -> None:
        """``dev.open(p) -> (errno, File)`` is awaited by :meth:`sys_open`."""
        self.devices[path] = dev

    def fdalloc(self, p: "Context", f: File) -> int:
        fd = 3
        while fd in p.fds:
            fd += 1
        p.fds[fd] = f
        return fd

    def fd_get(self, p: "Context", fd: Any) -> Optional[File]:
        if type(fd) is not int:
            return None
        return p.fds.get(fd)

    async def sys_open(self, p: "Context", path: Any) -> tuple[int, int]:
        """``open(path)`` → (errno, fd)."""
        async def body():
            dev = self.devices.get(path) if type(path) is str else None
            if dev is None:
                return (ENODEV, -1)
            err, f = await dev.open(p)
            if err:
                return (err, -1)
            return (0, self.fdalloc(p, f))
        r = await self.syscall(p, body)
        return r if isinstance(r, tuple) else (r, -1)

    async def sys_ioctl(self, p: "Context", fd: Any, cmd: Any, arg: Any = None) -> int:
        async def body():
            f = self.fd_get(p, fd)
            if f is None:
                return EBADF
            return await f.ioctl(p, cmd, arg)
        return await self.syscall(p, body)

    async def sys_close(self, p: "Context", fd: Any) -> int:
        async def body():
            f = self.fd_get(p, fd)
            if f is None:
                return EBADF
            del p.fds[fd]
            return await f.close(p)
        return await self.syscall(p, body)
