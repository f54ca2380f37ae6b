"""Hosts on the wire, and the link partner: the far host of the testbed.

:class:`Host` is one simulated machine as the network sees it: a
:class:`sim.kernel.Kernel` (its own CPU and memory), a
:class:`netinet.stack.NetStack` and a :class:`netinet.wire.SoftIf` on one
port of a :class:`netinet.wire.Link`. The partner is a :class:`Host` too —
the same TCP code with the same era parameters — whose CPU is free by
default (:func:`free_profile`: every cost of the host profile set to zero,
so it answers at once; pass ``profile=`` to give it a real CPU). It runs
ordinary processes: :meth:`Partner.sink` accepts one connection and reads to
EOF (ACKs, delayed ACKs and window updates come from its TCP);
:meth:`Partner.source` accepts one connection and sends.

``link, local, partner = pair(loop, pcap="x.pcap")`` wires two hosts
(10.0.0.1 and 10.0.0.2) back to back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from sim.kernel import DEFAULT_PROFILE, Context, Kernel, Profile, load_profile
from sim.kernel.profile import Constant
from sim.loop import SimLoop
from sim.memory import ByteMemory

from .stack import NetStack
from .wire import Faults, Link, LinkPort, SoftIf

__all__ = ["Host", "Partner", "free_profile", "pair", "Transfer"]

#: constants a free CPU keeps (they are periods, not costs)
_KEEP = {"cpu.hz", "kernel.quantum", "kernel.stray_retry"}


def free_profile(base: "str | Profile" = DEFAULT_PROFILE) -> Profile:
    """``base`` with every CPU cost zero and every bandwidth infinite."""
    p = load_profile(base)
    out = {}
    for key, c in p.constants.items():
        if key in _KEEP:
            out[key] = c
        elif c.unit in ("Mbps", "Gbps", "MB/s"):
            out[key] = Constant(float("inf"), c.unit, "free CPU: the link partner is not modelled")
        else:
            out[key] = Constant(0.0, c.unit, "free CPU: the link partner is not modelled")
    return Profile(name=f"{p.name}-free", description=f"{p.description} (free CPU)",
                   hz=p.hz, constants=out)


class Host:
    """A kernel, a stack and a software interface on ``port``."""

    def __init__(self, loop: SimLoop, port: LinkPort, addr: str, lladdr: bytes, *,
                 profile: "str | Profile" = DEFAULT_PROFILE, memory_size: int = 8 << 20,
                 seed: int = 0, kernel: Optional[Kernel] = None, name: str = "sw0",
                 **stack_kw: Any):
        self.kernel = kernel if kernel is not None else Kernel(loop, ByteMemory(memory_size),
                                                               profile, seed)
        self.addr, self.lladdr = addr, lladdr
        self.stack = NetStack(self.kernel, addr, **stack_kw)
        self.ifp = SoftIf(self.kernel, port, lladdr, name=name)
        self.stack.attach(self.ifp)

    def neighbour(self, other: "Host") -> None:
        self.stack.arp_add(other.addr, other.lladdr)


@dataclass
class Transfer:
    """What a partner service saw: the bytes, the errors, when it ended."""

    data: bytearray = field(default_factory=bytearray)
    errors: list[tuple[str, int]] = field(default_factory=list)
    peer: Optional[tuple[str, int]] = None
    sent: int = 0
    done_ps: Optional[int] = None


class Partner(Host):
    """The link partner: a :class:`Host` with a free CPU unless ``profile`` is given."""

    def __init__(self, loop: SimLoop, port: LinkPort, addr: str = "10.0.0.2",
                 lladdr: bytes = b"\x02\x00\x00\x00\x00\x02", *,
                 profile: "str | Profile | None" = None, **kw: Any):
        super().__init__(loop, port, addr, lladdr,
                         profile=free_profile() if profile is None else profile, **kw)

    async def _listen(self, p: Context, port: int, t: Transfer) -> tuple[int, int]:
        st = self.stack
        err, lfd = await st.sys_socket(p)
        if not err:
            err = await st.sys_bind(p, lfd, ("0.0.0.0", port))
        if not err:
            err = await st.sys_listen(p, lfd, 5)
        if err:
            t.errors.append(("listen", err))
            return err, -1
        err, fd, t.peer = await st.sys_accept(p, lfd)
        await self.kernel.sys_close(p, lfd)
        if err:
            t.errors.append(("accept", err))
        return err, fd

    def sink(self, port: int, bufsize: int = 65536) -> Transfer:
        """Accept one connection on ``port`` and read it to EOF."""
        t = Transfer()

        async def main(p: Context) -> None:
            err, fd = await self._listen(p, port, t)
            if err:
                return
            buf = bytearray(bufsize)
            while True:
                err, n = await self.stack.sys_recv(p, fd, buf)
                if err:
                    t.errors.append(("recv", err))
                    break
                if n == 0:
                    break
                t.data += buf[:n]
            await self.kernel.sys_close(p, fd)
            t.done_ps = self.kernel.now
        self.kernel.fork(f"sink:{port}", main)
        return t

    def source(self, port: int, data: bytes, write_size: int = 65536) -> Transfer:
        """Accept one connection on ``port``, send ``data`` and close."""
        t = Transfer()

        async def main(p: Context) -> None:
            err, fd = await self._listen(p, port, t)
            if err:
                return
            view = memoryview(data)
            while t.sent < len(data):
                err, n = await self.stack.sys_send(p, fd, view[t.sent:t.sent + write_size])
                t.sent += n
                if err:
                    t.errors.append(("send", err))
                    break
            await self.kernel.sys_close(p, fd)
            t.done_ps = self.kernel.now
        self.kernel.fork(f"source:{port}", main)
        return t


def pair(loop: SimLoop, *, pcap: Any = None, faults_ab: Optional[Faults] = None,
         faults_ba: Optional[Faults] = None, local_profile: "str | Profile" = DEFAULT_PROFILE,
         partner_profile: "str | Profile | None" = None, local_kw: Optional[dict] = None,
         partner_kw: Optional[dict] = None, **link_kw: Any) -> tuple[Link, Host, Partner]:
    """A link with the local host (10.0.0.1) on port a and the partner (10.0.0.2) on b."""
    link = Link(loop, pcap=pcap, faults_ab=faults_ab, faults_ba=faults_ba, **link_kw)
    local = Host(loop, link.a, "10.0.0.1", b"\x02\x00\x00\x00\x00\x01", profile=local_profile,
                 **(local_kw or {}))
    partner = Partner(loop, link.b, profile=partner_profile, seed=1, **(partner_kw or {}))
    local.neighbour(partner)
    partner.neighbour(local)
    return link, local, partner
