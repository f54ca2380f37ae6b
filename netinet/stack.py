"""One host's TCP/IP stack: IP and Ethernet, the interface, the timers, the
socket system calls — all of it charged to the host's simulated CPU.

``NetStack(kernel, "10.0.0.1")`` builds the stack of the host whose CPU is
``kernel``; ``stack.attach(ifp)`` gives it its interface (an :class:`IfNet`:
:class:`netinet.if_em.EmIf` on the em NIC, or :class:`netinet.wire.SoftIf`) and
``stack.arp_add(ip, mac)`` a neighbour (a static ARP entry: no ARP is
modelled). System calls take the calling process, like ``/dev/crypto``'s
``ioctl``: ``err, fd = await stack.sys_socket(p)``, then ``sys_connect``,
``sys_bind``, ``sys_listen``, ``sys_accept``, ``sys_send``/``sys_write``,
``sys_recv``/``sys_read``, ``sys_recvmsg``, ``sys_setsockopt``, ``sys_getsockopt``,
``sys_shutdown``; ``kernel.sys_close`` closes a socket as any file.

CPU time, by kind (``kernel.accounting()``):

* ``socket`` — ``sosend``/``soreceive`` per mbuf (``net.sosend``, ``net.soreceive``);
* ``copy`` — ``copyin``/``copyout`` at ``copy.bandwidth`` (the kernel's own);
* ``tcp`` — ``tcp_output`` per segment, ``tcp_input`` per segment, timers,
  mbuf frees (``net.tcp_output``, ``net.tcp_input``, ``net.tcp_timer``, ``net.mbuf``);
* ``checksum`` — ``in_cksum`` over every byte summed: TCP segment plus
  pseudo-header on output and input, the IP header both ways
  (``net.cksum_op`` + ``net.cksum_byte`` per byte): no checksum offload in
  OpenBSD 3.x;
* ``ip``, ``ether`` — ``ip_output``/``ip_input``, ``ether_output``/``ether_input``;
* ``driver`` — the interface's per-frame work (the software interface
  charges ``net.swif_frame``; the em driver its ``em.*`` costs).

Input runs in the interface's interrupt handler (``ether_input`` →
``ip_input`` → ``tcp_input`` in one go; BSD defers ``ipintr`` to a software
interrupt at splsoftnet, which on one CPU runs right after the hardware
handler). Process-context protocol work runs at raised spl
(``kernel.splraise``), so an interrupt never finds TCP half-updated. The TCP
slow timer (500 ms) and each connection's delayed-ACK timeout run from a
software interrupt line (BSD's softclock).
"""

from __future__ import annotations

from typing import Any, Optional

from sim.kernel import Context, Kernel
from sim.kernel.errno import (EAFNOSUPPORT, EBADF, EHOSTUNREACH, EINVAL,
                              ENOTSOCK, EPROTONOSUPPORT)
from sim.loop import ms

from .mbuf import MbufPool, MHLEN
from .proto import (ETHER_ADDR_LEN, ETHER_HDR_LEN, ETHERMTU, ETHERTYPE_IP, IP_HDR_LEN,
                    IPPROTO_TCP, TCP_HDR_LEN, TcpHdr, ether_header, ip_aton, ip_header,
                    parse_ether, parse_ip, parse_tcp, tcp_segment)
from .socket import AF_INET, SOCK_STREAM, TCP_RECVSPACE, TCP_SENDSPACE, Socket
from .tcp import HZ, Tcp

__all__ = ["NetStack", "IfNet", "SOFTCLOCK_LINE", "TCP_MSSDFLT"]

#: the interrupt line of the stack's timer soft interrupt (software lines are
#: numbered above the 16 ISA IRQs)
SOFTCLOCK_LINE = 48
TCP_MSSDFLT = 512            # tcp_var.h tcp_mssdflt
SLOWTICK = ms(500)           # PR_SLOWHZ 2
CLOCKTICK = ms(1000) // HZ   # one hardclock tick, 10 ms at HZ 100
BROADCAST = b"\xff" * ETHER_ADDR_LEN
_NET_KEYS = ("net.sosend", "net.soreceive", "net.tcp_output", "net.tcp_input", "net.tcp_timer",
             "net.ip_output", "net.ip_input", "net.ether_output", "net.ether_input",
             "net.cksum_op", "net.cksum_byte", "net.mbuf", "net.swif_frame")


class IfNet:
    """``struct ifnet``: what the stack needs from an interface.

    ``await if_output(frame)`` sends one Ethernet frame (bytes, no FCS) and
    returns an errno (ENOBUFS when its queue is full), charging its own CPU
    work; ``stack.ether_input(frame)`` is what it calls, from its interrupt
    handler, for every frame it receives.
    """

    mtu = ETHERMTU
    lladdr = b"\0" * ETHER_ADDR_LEN
    name = "if0"
    stack: Optional["NetStack"] = None

    async def if_output(self, frame: bytes) -> int:  # pragma: no cover - interface
        raise NotImplementedError

    def attach(self, stack: "NetStack") -> None:
        self.stack = stack


class NetStack:
    """The TCP/IP stack of one host (see the module docstring)."""

    def __init__(self, kernel: Kernel, addr: str = "10.0.0.1", *,
                 sendspace: int = TCP_SENDSPACE, recvspace: int = TCP_RECVSPACE,
                 write_quantum: Optional[int] = None, initial_window: int = 1,
                 ack_on_push: bool = False, do_rfc1323: bool = True,
                 rfc3390: bool = False,
                 softclock_line: int = SOFTCLOCK_LINE):
        if write_quantum is not None and (type(write_quantum) is not int or write_quantum <= 0):
            raise ValueError(f"write_quantum must be a positive int, not {write_quantum!r}")
        if type(initial_window) is not int or initial_window < 1:
            raise ValueError(f"initial_window must be a positive int, not {initial_window!r}")
        for name, v in (("sendspace", sendspace), ("recvspace", recvspace)):
            if type(v) is not int or v <= 0:
                raise ValueError(f"{name} must be a positive int, not {v!r}")
        self.kernel = kernel
        self.loop = kernel.loop
        self.addr = ip_aton(addr)
        self.sendspace, self.recvspace = sendspace, recvspace
        self.write_quantum = write_quantum
        self.initial_window = initial_window
        self.ack_on_push = ack_on_push
        self.rfc3390 = bool(rfc3390)
        self.do_rfc1323 = do_rfc1323
        self.mssdflt = TCP_MSSDFLT
        self.pool = MbufPool(kernel.memory)
        self.ifp: Optional[IfNet] = None
        self.arp: dict[bytes, bytes] = {}
        #: local ports bound by sockets that still exist (in_pcbbind's check)
        self.bound_ports: dict[int, int] = {}
        self.stats: dict[str, int] = {}
        self._ip_id = kernel.random.getrandbits(16)
        self._next_port = 1024 + kernel.random.randrange(48128)
        p = kernel.profile
        missing = [k for k in _NET_KEYS if not p.has(k)]
        if missing:
            raise ValueError(f"host profile {p.name!r} lacks {', '.join(missing)} "
                             "(netinet's [net] constants; see sim/profiles/p3-1400-openbsd.toml)")
        self.c_sosend = p.cost("net.sosend")
        self.c_soreceive = p.cost("net.soreceive")
        self.c_tcp_output = p.cost("net.tcp_output")
        self.c_tcp_input = p.cost("net.tcp_input")
        self.c_tcp_timer = p.cost("net.tcp_timer")
        self.c_ip_output = p.cost("net.ip_output")
        self.c_ip_input = p.cost("net.ip_input")
        self.c_ether_output = p.cost("net.ether_output")
        self.c_ether_input = p.cost("net.ether_input")
        self.c_cksum_op = p.cost("net.cksum_op")
        self.c_cksum_byte = p.per_byte("net.cksum_byte")
        self.c_mbuf = p.cost("net.mbuf")
        #: payload bytes tcp_output copies into the header mbuf instead of
        #: referencing clusters (``len <= MHLEN - hdrlen - max_linkhdr``)
        self.mhlen_room = MHLEN - IP_HDR_LEN - TCP_HDR_LEN - 12 - ETHER_HDR_LEN - 2
        self.tcp = Tcp(self)
        self._line = softclock_line
        self._slow_due = False
        self._slow_at: Optional[int] = None
        #: delayed-ACK timeouts that fired, waiting for the soft interrupt
        self._delacks_due: list = []
        kernel.intr_establish(softclock_line, self._softclock, "softclock")

    # -------------------------------------------------------------- misc
    def stat(self, name: str, n: int = 1) -> None:
        self.stats[name] = self.stats.get(name, 0) + n

    def attach(self, ifp: IfNet) -> None:
        self.ifp = ifp
        ifp.attach(self)

    def arp_add(self, ip: str, mac: bytes) -> None:
        if type(mac) is not bytes or len(mac) != ETHER_ADDR_LEN:
            raise ValueError(f"an Ethernet address is 6 bytes, not {mac!r}")
        self.arp[ip_aton(ip)] = mac

    async def charge(self, kind: str, duration: int) -> None:
        if duration > 0:
            await self.kernel.charge(kind, duration)

    def cksum_cost(self, nbytes: int) -> int:
        return self.c_cksum_op + int(round(self.c_cksum_byte * nbytes))

    def tcp_now(self) -> int:
        """BSD's ``tcp_now``: slow-timer ticks since boot (the timestamp clock)."""
        return 1 + self.loop.now // SLOWTICK

    def tcp_segment(self, src: bytes, dst: bytes, th: TcpHdr, data: bytes) -> bytes:
        return tcp_segment(src, dst, th, data)

    def ephemeral_port(self) -> int:
        used = self.ports_in_use()
        for _ in range(48128):
            port = self._next_port
            self._next_port = 1024 + (self._next_port - 1024 + 1) % 48128
            if port not in used:
                return port
        return 0

    def ports_in_use(self) -> set[int]:
        return {k[1] for k in self.tcp.pcbs} | set(self.tcp.listeners) | set(self.bound_ports)

    # ------------------------------------------------------------ timers
    def arm_timers(self) -> None:
        """Keep the 500 ms tick running while a connection needs it."""
        now = self.loop.now
        if self._slow_at is None and self.tcp.wants_slow():
            self._slow_at = (now // SLOWTICK + 1) * SLOWTICK
            fut, _ = self.loop.call_at(self._slow_at, "tcp_slowtimo")
            fut.add_done_callback(lambda _f: self._tick())

    def delack_arm(self, tp, ticks: int) -> int:
        """``timeout_add(&tp->t_delack_to, ticks)``: fire at the ``ticks``-th
        clock tick from now; returns that time (the timeout's identity)."""
        when = (self.loop.now // CLOCKTICK + ticks) * CLOCKTICK
        fut, _ = self.loop.call_at(when, "tcp_delack")
        fut.add_done_callback(lambda _f: self._delack_fired(tp, when))
        return when

    def _delack_fired(self, tp, when: int) -> None:
        if tp.delack_at != when:
            return                                # cancelled (an ACK went out)
        self._delacks_due.append((tp, when))
        self.kernel.interrupt(self._line, True)

    def _tick(self) -> None:
        self._slow_at, self._slow_due = None, True
        self.kernel.interrupt(self._line, True)

    async def _softclock(self) -> bool:
        if not (self._delacks_due or self._slow_due):
            return False
        self.kernel.interrupt(self._line, False)
        while self._delacks_due or self._slow_due:
            while self._delacks_due:
                tp, when = self._delacks_due.pop(0)
                await self.tcp.delack(tp, when)
            if self._slow_due:
                self._slow_due = False
                await self.tcp.slowtimo()
        self.arm_timers()
        return True

    # -------------------------------------------------------- IP / Ethernet
    async def ip_output(self, src: bytes, dst: bytes, seg: bytes) -> int:
        await self.charge("ip", self.c_ip_output)
        self._ip_id = (self._ip_id + 1) & 0xFFFF
        await self.charge("checksum", self.cksum_cost(IP_HDR_LEN))
        pkt = ip_header(src, dst, len(seg), self._ip_id) + seg
        self.stat("ip_opackets")
        return await self.ether_output(dst, pkt)

    async def ether_output(self, dst: bytes, pkt: bytes) -> int:
        await self.charge("ether", self.c_ether_output)
        mac = self.arp.get(dst)
        if mac is None or self.ifp is None:
            self.stat("ip_noroute")
            return EHOSTUNREACH
        return await self.ifp.if_output(ether_header(mac, self.ifp.lladdr, ETHERTYPE_IP) + pkt)

    async def ether_input(self, frame: bytes) -> None:
        """A received frame (called by the interface's interrupt handler)."""
        await self.charge("ether", self.c_ether_input)
        parsed = parse_ether(frame)
        if parsed is None:
            self.stat("ether_runt")
            return
        dst, _src, etype, payload = parsed
        if self.ifp is None or (dst != self.ifp.lladdr and dst != BROADCAST):
            self.stat("ether_notme")
            return
        if etype != ETHERTYPE_IP:
            self.stat("ether_noproto")
            return
        await self.ip_input(payload)

    async def ip_input(self, pkt: bytes) -> None:
        await self.charge("ip", self.c_ip_input)
        await self.charge("checksum", self.cksum_cost(IP_HDR_LEN))
        parsed = parse_ip(pkt)
        if parsed is None:
            self.stat("ip_badhdr")
            return
        src, dst, proto, seg = parsed
        if dst != self.addr:
            self.stat("ip_notme")
            return
        if proto != IPPROTO_TCP:
            self.stat("ip_noproto")
            return
        self.stat("ip_ipackets")
        await self.charge("checksum", self.cksum_cost(len(seg) + 12))
        t = parse_tcp(src, dst, seg)
        if t is None:
            self.tcp.stat("rcvbadsum")
            return
        await self.tcp.input(src, dst, t[0], t[1])

    # ----------------------------------------------------------- syscalls
    def _getsock(self, p: Context, fd: Any) -> tuple[int, Optional[Socket]]:
        f = self.kernel.fd_get(p, fd)
        if f is None:
            return EBADF, None
        if not isinstance(f, Socket) or f.stack is not self:
            return ENOTSOCK, None
        return 0, f

    async def _call(self, p: Context, fd: Any, fn, default: Any) -> Any:
        async def body():
            err, so = self._getsock(p, fd)
            if err:
                return (err,) + default if isinstance(default, tuple) else err
            return await fn(so)
        r = await self.kernel.syscall(p, body)
        if isinstance(default, tuple) and not isinstance(r, tuple):
            return (r,) + default
        return r

    async def sys_socket(self, p: Context, domain: Any = AF_INET, type_: Any = SOCK_STREAM,
                         protocol: Any = 0) -> tuple[int, int]:
        """``socket(AF_INET, SOCK_STREAM, 0)`` → (errno, fd)."""
        async def body():
            if domain != AF_INET:
                return EAFNOSUPPORT, -1
            if type_ != SOCK_STREAM or protocol not in (0, IPPROTO_TCP):
                return EPROTONOSUPPORT, -1
            return 0, self.kernel.fdalloc(p, Socket(self))
        r = await self.kernel.syscall(p, body)
        return r if isinstance(r, tuple) else (r, -1)

    async def sys_bind(self, p: Context, fd: Any, addr: Any) -> int:
        async def fn(so):
            return so.bind(addr)
        return await self._call(p, fd, fn, 0)

    async def sys_listen(self, p: Context, fd: Any, backlog: Any = 5) -> int:
        async def fn(so):
            return so.listen(backlog)
        return await self._call(p, fd, fn, 0)

    async def sys_connect(self, p: Context, fd: Any, addr: Any) -> int:
        async def fn(so):
            return await so.connect(p, addr)
        return await self._call(p, fd, fn, 0)

    async def sys_accept(self, p: Context, fd: Any, nonblock: bool = False
                         ) -> tuple[int, int, Optional[tuple[str, int]]]:
        """→ (errno, new fd, peer address)."""
        async def fn(so):
            err, nso = await so.accept(p, nonblock)
            if err:
                return err, -1, None
            tp = nso.tp
            peer = (".".join(map(str, tp.faddr)), tp.fport) if tp is not None else None
            return 0, self.kernel.fdalloc(p, nso), peer
        return await self._call(p, fd, fn, (-1, None))

    async def sys_send(self, p: Context, fd: Any, buf: Any, n: Optional[int] = None,
                       flags: int = 0) -> tuple[int, int]:
        """``send(fd, buf, n, flags)`` → (errno, bytes sent); ``n`` defaults to all of ``buf``."""
        async def fn(so):
            nn = _length(buf) if n is None else n
            if type(nn) is not int or nn < 0 or type(flags) is not int:
                return EINVAL, 0
            return await so.send(p, buf, nn, flags)
        return await self._call(p, fd, fn, (0,))

    sys_write = sys_send

    async def sys_recv(self, p: Context, fd: Any, buf: Any, n: Optional[int] = None,
                       flags: int = 0) -> tuple[int, int]:
        """``recv(fd, buf, n, flags)`` into a writable ``buf`` → (errno, bytes); 0 bytes at EOF."""
        async def fn(so):
            nn = _length(buf) if n is None else n
            if type(nn) is not int or nn < 0 or type(flags) is not int:
                return EINVAL, 0
            return await so.recv(p, buf, nn, flags)
        return await self._call(p, fd, fn, (0,))

    sys_read = sys_recv

    async def sys_sendmsg(self, p: Context, fd: Any, buf: Any, control: Any = (),
                          n: Optional[int] = None, flags: int = 0) -> tuple[int, int]:
        """``sendmsg`` with control messages as (level, type, data) → (errno,
        bytes sent); see :meth:`netinet.socket.Socket.sendmsg`."""
        async def fn(so):
            nn = _length(buf) if n is None else n
            if type(nn) is not int or nn < 0 or type(flags) is not int or \
                    not isinstance(control, (list, tuple)):
                return EINVAL, 0
            return await so.sendmsg(p, buf, nn, list(control), flags)
        return await self._call(p, fd, fn, (0,))

    async def sys_recvmsg(self, p: Context, fd: Any, buf: Any, n: Optional[int] = None,
                          flags: int = 0) -> tuple[int, int, list]:
        """``recvmsg`` → (errno, bytes, control messages as (level, type, data));
        see :meth:`netinet.socket.Socket.recvmsg`."""
        async def fn(so):
            nn = _length(buf) if n is None else n
            if type(nn) is not int or nn < 0 or type(flags) is not int:
                return EINVAL, 0, []
            return await so.recvmsg(p, buf, nn, flags)
        return await self._call(p, fd, fn, (0, []))

    async def sys_setsockopt(self, p: Context, fd: Any, level: Any, name: Any, value: Any) -> int:
        async def fn(so):
            return so.setsockopt(level, name, value)
        return await self._call(p, fd, fn, 0)

    async def sys_getsockopt(self, p: Context, fd: Any, level: Any, name: Any) -> tuple[int, int]:
        async def fn(so):
            return so.getsockopt(level, name)
        return await self._call(p, fd, fn, (0,))

    async def sys_shutdown(self, p: Context, fd: Any, how: Any) -> int:
        async def fn(so):
            return await so.shutdown(how)
        return await self._call(p, fd, fn, 0)


def _length(buf: Any) -> Any:
    try:
        return memoryview(buf).nbytes
    except TypeError:
        return 0
