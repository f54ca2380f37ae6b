"""Sockets: the socket layer of 4.4BSD (``sys/kern/uipc_socket.c``,
``uipc_socket2.c``) over TCP (``sys/netinet/tcp_usrreq.c``).

A socket is a :class:`sim.kernel.File` in the process's descriptor table.
Its send and receive buffers are :class:`netinet.mbuf.SockBuf` of
``TCP_SENDSPACE`` = ``TCP_RECVSPACE`` = 16384 bytes (OpenBSD
``tcp_usrreq.c`` rev 1.84), low water marks ``MCLBYTES`` (send) and 1
(receive) as ``soreserve`` sets them.

``send`` is ``sosend``: while bytes remain it waits (``sbwait``, a
``tsleep`` on the buffer) until the free space reaches the low water mark
or covers the rest, then takes one mbuf per pass — a cluster (up to
MCLBYTES) when at least ``MINCLSIZE`` bytes remain and a cluster fits,
else a plain mbuf — and ``uiomove``s the user's bytes into it (the one
user→kernel copy, ``copyin`` at the profile's memory bandwidth). TCP is not
an atomic protocol, so each mbuf goes to the protocol by itself
(``PRU_SEND``: ``sbappendstream`` + ``tcp_output``). With
``write_quantum`` set the stack instead models the socket-crypto paper's
observation (Burnside & Keromytis §IV-A, §IV-C: "OpenBSD fragments large
write() operations into 4088 byte chunks"): the write is handed to the
protocol in pieces of at most that many bytes, each piece appended whole and
followed by one ``tcp_output``.

``recv`` is ``soreceive``: it waits until data, EOF or an error, copies out
what is there (up to the request) mbuf by mbuf, drops it from the buffer and
tells TCP (``PRU_RCVD``, which may send a window update).

Errors as 4.4BSD/OpenBSD: sending after ``shutdown(SHUT_WR)`` or on a
connection that was reset → EPIPE (SIGPIPE is not modelled); a pending
``so_error`` (ECONNRESET, ETIMEDOUT) is returned once; ``connect`` to a port
nobody listens on → ECONNREFUSED (the peer's RST); ``accept`` on a socket
that is not listening → EINVAL; a second ``bind`` → EINVAL (``in_pcbbind``);
``listen`` on a connected socket → EINVAL (POSIX ``listen()``).
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, Optional

from sim.kernel import PSOCK, Context, File
from sim.kernel.errno import (EADDRINUSE, EADDRNOTAVAIL, EAFNOSUPPORT, EALREADY, ECONNABORTED,
                              EBADMSG, ECONNRESET, EFAULT, EINVAL, EIO, EISCONN, EMSGSIZE,
                              ENOBUFS, ENOPROTOOPT, ENOTCONN, EOPNOTSUPP, EPIPE, EWOULDBLOCK)

from .mbuf import MCLBYTES, MINCLSIZE, MLEN, MSIZE, SockBuf
from .proto import IPPROTO_TCP, ip_aton
from .socrypt import (BOTH, RX, SO_CRYPT, SOL_TLS, TLS_APPLICATION_DATA, TLS_GET_RECORD_TYPE,
                      TLS_HDR, TLS_SET_RECORD_TYPE, TX, SoCryptRx, SoCryptTx, check_transform)
from .tcp import (TCP_MAX_WINSHIFT, TCP_MAXWIN, TCPS_ESTABLISHED, TCPS_LISTEN, TCPS_SYN_SENT,
                  TCPT_KEEP, TCPTV_KEEP_INIT, TF_NODELAY, TcpCb)

if TYPE_CHECKING:
    from .stack import NetStack

__all__ = ["Socket", "AF_INET", "SOCK_STREAM", "SOL_SOCKET", "SO_SNDBUF", "SO_RCVBUF",
           "SO_SNDLOWAT", "SO_RCVLOWAT", "SO_ERROR", "SO_TYPE", "TCP_NODELAY", "TCP_MAXSEG",
           "MSG_PEEK", "MSG_EOR", "MSG_WAITALL", "MSG_DONTWAIT", "SHUT_RD", "SHUT_WR", "SHUT_RDWR",
           "SOMAXCONN", "SB_MAX", "SB_RESERVE_MAX", "TCP_SENDSPACE", "TCP_RECVSPACE"]

# sys/socket.h (OpenBSD 3.x)
AF_INET = 2
SOCK_STREAM = 1
SOL_SOCKET = 0xFFFF
SO_ACCEPTCONN = 0x0002
SO_SNDBUF, SO_RCVBUF, SO_SNDLOWAT, SO_RCVLOWAT = 0x1001, 0x1002, 0x1003, 0x1004
SO_ERROR, SO_TYPE = 0x1007, 0x1008
MSG_PEEK, MSG_EOR, MSG_WAITALL, MSG_DONTWAIT = 0x2, 0x8, 0x40, 0x80
SHUT_RD, SHUT_WR, SHUT_RDWR = 0, 1, 2
SOMAXCONN = 128
# netinet/tcp.h
TCP_NODELAY, TCP_MAXSEG = 0x01, 0x02
# sys/socketvar.h so_state
SS_NOFDREF, SS_ISCONNECTED, SS_ISCONNECTING, SS_ISDISCONNECTING = 0x001, 0x002, 0x004, 0x008
SS_CANTSENDMORE, SS_CANTRCVMORE = 0x010, 0x020
SB_MAX = 256 * 1024          # uipc_socket2.c sb_max
#: the largest high-water mark sbreserve grants (uipc_socket2.c:
#: sb_max * MCLBYTES / (MSIZE + MCLBYTES))
SB_RESERVE_MAX = SB_MAX * MCLBYTES // (MSIZE + MCLBYTES)
TCP_SENDSPACE = TCP_RECVSPACE = 16384


def _sockaddr(addr: Any) -> Optional[tuple[bytes, int]]:
    """A ``sockaddr_in`` given as ("a.b.c.d", port), or None."""
    if type(addr) is not tuple or len(addr) != 2:
        return None
    host, port = addr
    if type(host) is not str or type(port) is not int or not 0 <= port <= 0xFFFF:
        return None
    try:
        return ip_aton(host), port
    except ValueError:
        return None


class Socket(File):
    """A TCP socket (``struct socket`` with its inpcb/tcpcb)."""

    def __init__(self, stack: "NetStack"):
        self.stack = stack
        self.state = 0
        self.options = 0
        self.error = 0
        self.snd = SockBuf(stack.pool, stack.sendspace, MCLBYTES)
        self.rcv = SockBuf(stack.pool, stack.recvspace, 1)
        self.tp: Optional[TcpCb] = TcpCb(self, stack)
        self.bound = False
        self.port_held: Optional[int] = None
        self.head: Optional[Socket] = None
        self.q0: list[Socket] = []
        self.q: deque[Socket] = deque()
        self.qlimit = 0
        self.crypt_tx = None               # SO_CRYPT transmit state (netinet.socrypt)
        self.crypt_rx = None               # SO_CRYPT receive state

    # ------------------------------------------------------- state helpers
    @property
    def nofdref(self) -> bool:
        return bool(self.state & SS_NOFDREF)

    @property
    def cantrcvmore(self) -> bool:
        return bool(self.state & SS_CANTRCVMORE)

    def cantrcvmore_set(self) -> None:
        self.state |= SS_CANTRCVMORE
        self.rwakeup()

    def rwakeup(self) -> None:
        self.stack.kernel.wakeup(self.rcv)

    def wwakeup(self) -> None:
        self.stack.kernel.wakeup(self.snd)

    def isconnected(self) -> None:
        self.state = (self.state & ~(SS_ISCONNECTING | SS_ISDISCONNECTING)) | SS_ISCONNECTED
        head = self.head
        if head is not None and self in head.q0:
            head.q0.remove(self)
            head.q.append(self)
            self.stack.kernel.wakeup(head.q)
        self.stack.kernel.wakeup(self)
        self.rwakeup()
        self.wwakeup()

    def isdisconnected(self) -> None:
        self.state &= ~(SS_ISCONNECTING | SS_ISCONNECTED | SS_ISDISCONNECTING)
        self.state |= SS_CANTRCVMORE | SS_CANTSENDMORE
        self.stack.kernel.wakeup(self)
        self.rwakeup()
        self.wwakeup()

    def free(self) -> None:
        """``sofree``: a socket with no descriptor and no protocol state goes."""
        if not self.nofdref or self.tp is not None:
            return
        head = self.head
        if head is not None:
            if self in head.q0:
                head.q0.remove(self)
            if self in head.q:
                head.q.remove(self)
            self.head = None
        self.snd.flush()
        self.rcv.flush()
        port, self.port_held = self.port_held, None
        if port is not None:
            bp = self.stack.bound_ports
            bp[port] -= 1
            if not bp[port]:
                del bp[port]

    async def rcv_append(self, data: bytes) -> bool:
        """Put received bytes in the receive buffer, in clusters (the
        interface's receive buffers, filled by its DMA: no CPU copy)."""
        pool = self.stack.pool
        for i in range(0, len(data), MCLBYTES):
            m = pool.get()
            if m is None or not pool.clget(m):
                if m is not None:
                    pool.free(m)
                return False
            pool.write(m, data[i:i + MCLBYTES])
            self.rcv.append(m)
        return True

    def sonewconn(self, laddr: bytes, lport: int, faddr: bytes, fport: int) -> Optional[TcpCb]:
        """An embryonic connection on a listening socket (``sonewconn``)."""
        if len(self.q) + len(self.q0) > 3 * self.qlimit // 2:
            return None
        so = Socket(self.stack)
        so.head = self
        so.bound = True
        # sonewconn (uipc_socket2.c): the listener's options but
        # SO_ACCEPTCONN, and soreserve() with its buffers' high-water marks
        so.options = self.options & ~SO_ACCEPTCONN
        for mine, head in ((so.snd, self.snd), (so.rcv, self.rcv)):
            mine.hiwat, mine.mbmax = head.hiwat, head.mbmax
        so.snd.lowat = min(so.snd.lowat, so.snd.hiwat)
        tp = so.tp
        tp.laddr, tp.lport, tp.faddr, tp.fport = laddr, lport, faddr, fport
        tp.flags = (tp.flags & ~TF_NODELAY) | (self.tp.flags & TF_NODELAY)
        _request_scale(tp, so)
        self.q0.append(so)
        self.stack.tcp.attach(tp)
        return tp

    # -------------------------------------------------- user requests
    def bind(self, addr: Any) -> int:
        sa = _sockaddr(addr)
        if sa is None:
            return EINVAL
        if self.bound or self.tp is None:
            return EINVAL
        ip, port = sa
        st = self.stack
        if ip != b"\0\0\0\0" and ip != st.addr:
            return EADDRNOTAVAIL
        if port == 0:
            port = st.ephemeral_port()
        elif port in st.ports_in_use():
            return EADDRINUSE
        self.tp.laddr, self.tp.lport = st.addr, port
        self.bound = True
        self.port_held = port
        st.bound_ports[port] = st.bound_ports.get(port, 0) + 1
        return 0

    def listen(self, backlog: Any) -> int:
        if type(backlog) is not int:
            return EINVAL
        if self.tp is None or self.state & (SS_ISCONNECTED | SS_ISCONNECTING):
            return EINVAL
        if not self.bound:
            err = self.bind(("0.0.0.0", 0))
            if err:
                return err
        if backlog < 0 or backlog > SOMAXCONN:
            backlog = SOMAXCONN
        self.qlimit = backlog
        self.options |= SO_ACCEPTCONN
        self.tp.state = TCPS_LISTEN
        self.stack.tcp.listeners[self.tp.lport] = self
        return 0

    async def connect(self, p: Context, addr: Any) -> int:
        st, k = self.stack, self.stack.kernel
        if self.options & SO_ACCEPTCONN:
            return EOPNOTSUPP
        if self.state & SS_ISCONNECTED:
            return EISCONN
        if self.state & SS_ISCONNECTING:
            return EALREADY
        if self.tp is None:
            return EINVAL
        sa = _sockaddr(addr)
        if sa is None:
            return EAFNOSUPPORT if type(addr) is not tuple else EINVAL
        faddr, fport = sa
        if fport == 0 or faddr == b"\0\0\0\0":
            return EADDRNOTAVAIL
        if not self.bound:
            self.bind(("0.0.0.0", 0))
        tp = self.tp
        tp.faddr, tp.fport = faddr, fport
        if tp.key() in st.tcp.pcbs:
            return EADDRINUSE
        s = k.splraise()
        try:
            st.tcp.attach(tp)
            self.state |= SS_ISCONNECTING
            _request_scale(tp, self)
            tp.state = TCPS_SYN_SENT
            tp.timer[TCPT_KEEP] = TCPTV_KEEP_INIT
            tp.iss = st.tcp.new_iss()
            tp.snd_una = tp.snd_nxt = tp.snd_max = tp.iss
            st.tcp.stat("connattempt")
            await st.tcp.output(tp)
            while self.state & SS_ISCONNECTING and not self.error:
                await k.tsleep(self, PSOCK, "netcon")
        finally:
            k.splx(s)
        err, self.error = self.error, 0
        return err

    async def accept(self, p: Context, nonblock: bool = False) -> tuple[int, Optional["Socket"]]:
        k = self.stack.kernel
        if not self.options & SO_ACCEPTCONN:
            return EINVAL, None
        while not self.q:
            if self.error:
                err, self.error = self.error, 0
                return err, None
            if nonblock:
                return EWOULDBLOCK, None
            await k.tsleep(self.q, PSOCK, "netcon")
        so = self.q.popleft()
        so.head = None
        return 0, so

    async def send(self, p: Context, buf: Any, n: int, flags: int = 0) -> tuple[int, int]:
        """``sosend``; (errno, bytes sent). A partial count comes with the errno
        that stopped it, as ``write(2)`` reports the bytes moved."""
        st, k = self.stack, self.stack.kernel
        if k.user_buffer(buf, n) is None:
            return EFAULT, 0
        if self.crypt_tx is not None:
            return await self._sosend_crypt(buf, n, flags)
        nonblock = bool(flags & MSG_DONTWAIT)
        quantum = st.write_quantum
        sent = 0
        while sent < n or n == 0:
            piece = n - sent if not quantum else min(quantum, n - sent)
            err, moved = await self._sosend(buf, sent, piece, nonblock, whole=bool(quantum))
            sent += moved
            if err or n == 0:
                return (err if not sent or err != EWOULDBLOCK else 0), sent
        return 0, sent

    async def sendmsg(self, p: Context, buf: Any, n: int, control: list,
                      flags: int = 0) -> tuple[int, int]:
        """``sendmsg``: ``send`` with control messages ``(level, type, data)``.
        On a socket with SO_CRYPT transmit and a TLS framing, ``(SOL_TLS,
        TLS_SET_RECORD_TYPE, bytes([type]))`` makes the records of this call's
        bytes of that content type (Linux kTLS, Documentation/networking/tls.rst;
        the call ends its record, as MSG_EOR; piecemeal: EINVAL while a record
        is open). Any other control message → EINVAL, as TCP's PRU_SEND
        refuses control data (OpenBSD tcp_usrreq.c)."""
        if not control:
            return await self.send(p, buf, n, flags)
        tx = self.crypt_tx
        ok = tx is not None and tx.t.framing != "ssh2" and len(control) == 1 and \
            isinstance(control[0], tuple) and len(control[0]) == 3 and \
            control[0][:2] == (SOL_TLS, TLS_SET_RECORD_TYPE) and \
            type(control[0][2]) is bytes and len(control[0][2]) == 1
        if not ok or tx.remaining():
            return EINVAL, 0
        if self.stack.kernel.user_buffer(buf, n) is None:
            return EFAULT, 0
        tx.rtype = control[0][2][0]
        try:
            return await self._sosend_crypt(buf, n, flags | (MSG_EOR if tx.piecemeal else 0))
        finally:
            tx.rtype = tx.t.rtype

    async def _sosend(self, buf: Any, start: int, resid: int, nonblock: bool,
                      whole: bool) -> tuple[int, int]:
        st, k = self.stack, self.stack.kernel
        pool, sb = st.pool, self.snd
        done = 0
        while True:
            if self.state & SS_CANTSENDMORE:
                return EPIPE, done
            if self.error:
                err, self.error = self.error, 0
                return err, done
            if not self.state & SS_ISCONNECTED:
                return ENOTCONN, done
            if resid == 0:
                return 0, done
            space = sb.space()
            if space < resid and space < sb.lowat:
                if nonblock:
                    return EWOULDBLOCK, done
                s = k.splraise()
                await k.tsleep(sb, PSOCK, "netio")
                k.splx(s)
                continue
            top = []
            while space > 0 and resid > 0:
                await st.charge("socket", st.c_sosend)
                m = pool.get()
                if m is None:
                    return ENOBUFS, done
                if resid >= MINCLSIZE and space >= MCLBYTES and pool.clget(m):
                    length = min(MCLBYTES, resid)
                else:
                    length = min(MLEN, resid, space)
                view = memoryview(buf).cast("B")[start + done:start + done + length]
                err = await k.copyin(view, m.data, length)
                view.release()
                if err:
                    pool.free(m)
                    self._pru_send_nowait(top)
                    return err, done
                m.len = length
                top.append(m)
                done += length
                resid -= length
                space -= length
                if not whole:
                    break                    # non-atomic: one mbuf per PRU_SEND
            await self._pru_send(top)

    async def _sosend_crypt(self, buf: Any, n: int, flags: int) -> tuple[int, int]:
        """SO_CRYPT transmit (netinet.socrypt). Whole frame: the write cut into
        records of at most ``record_size`` bytes, each built and protected
        when all its bytes are in the kernel and handed to TCP as one
        ``PRU_SEND``. Piecemeal: records of ``record_size`` bytes, fed piece
        by piece (a piece is at most the stack's write quantum when it has
        one), each piece's whole cipher blocks sent at once.

        ``MSG_EOR`` asks for the write to be (or, piecemeal, to end) one
        record: more bytes than a record holds → EMSGSIZE (FreeBSD
        ``sosend_generic`` for a KTLS atomic send); a piecemeal write that
        would end the open record short of the length its header already
        carries → EINVAL."""
        k, sb, tx = self.stack.kernel, self.snd, self.crypt_tx
        nonblock = bool(flags & MSG_DONTWAIT)
        eor = bool(flags & MSG_EOR)
        t = tx.t
        if eor:
            left = tx.remaining()
            if n > (left or t.record_size):
                return EMSGSIZE, 0
            if left and n < left:
                return EINVAL, 0
        err = await tx.open()
        if err:
            return err, 0
        quantum = self.stack.write_quantum if tx.piecemeal else None
        empty = n == 0 and t.framing != "ssh2" and not tx.remaining()
        sent = 0
        while sent < n or (empty and not sent):
            if self.state & SS_CANTSENDMORE:
                return EPIPE, sent
            if self.error:
                err, self.error = self.error, 0
                return err, sent
            if not self.state & SS_ISCONNECTED:
                return ENOTCONN, sent
            if tx.piecemeal:
                left = tx.remaining()
                # a record's length is fixed when its header goes out
                rlen = left or (n - sent if eor or n == 0 else t.record_size)
                take = min(left or rlen, n - sent, quantum or n)
                wlen = take + TLS_HDR + 64            # at most: header, held block, trailer
            else:
                take = min(t.record_size, n - sent)
                wlen = tx.layout(take)[3]
            # a record (piece) goes whole, as soon as it fits or, as sosend's
            # non-atomic rule (uipc_socket.c: space < resid && space < lowat),
            # once the low-water mark is free: a record close to the buffer's
            # size would otherwise wait for the buffer to drain, its tail held
            # by Nagle behind a delayed ACK (200 ms a record)
            space = sb.space()
            if space < wlen and space < sb.lowat and sb.cc:
                if nonblock:
                    return (EWOULDBLOCK if not sent else 0), sent
                s = k.splraise()
                await k.tsleep(sb, PSOCK, "netio")
                k.splx(s)
                continue
            if tx.piecemeal:
                err, top = await tx.piece(buf, sent, take, rlen)
            else:
                err, top = await tx.record(buf, sent, take)
            if err:
                return err, sent
            if top:
                await self._pru_send(top)
            sent += take
            if n == 0:
                break
        return 0, sent

    def _pru_send_nowait(self, top: list) -> None:
        for m in top:
            self.snd.append(m)

    async def _pru_send(self, top: list) -> None:
        k = self.stack.kernel
        s = k.splraise()
        try:
            for m in top:
                self.snd.append(m)
            if self.tp is not None:
                await self.stack.tcp.output(self.tp)
        finally:
            k.splx(s)

    async def recv(self, p: Context, buf: Any, n: int, flags: int = 0) -> tuple[int, int]:
        """``soreceive``; (errno, bytes received); (0, 0) at EOF."""
        st, k = self.stack, self.stack.kernel
        if k.user_buffer(buf, n, writable=True) is None:
            return EFAULT, 0
        if self.crypt_rx is not None:
            err, got, _ = await self._soreceive_crypt(buf, n, flags, False)
            return err, got
        nonblock = bool(flags & MSG_DONTWAIT)
        got = 0
        while True:
            sb = self.rcv
            want = n - got
            # soreceive waits while nothing is there, or with MSG_WAITALL
            # while less than the rest is there and the rest fits the buffer
            if sb.cc == 0 or (flags & MSG_WAITALL and sb.cc < want <= sb.hiwat and not (
                    self.error or self.cantrcvmore)):
                if got and not flags & MSG_WAITALL:
                    return 0, got
                if self.error:
                    if got:
                        return 0, got
                    err, self.error = self.error, 0
                    return err, 0
                if self.cantrcvmore:
                    if sb.cc == 0:
                        return 0, got
                elif not self.state & (SS_ISCONNECTED | SS_ISCONNECTING):
                    return ENOTCONN, got
                elif n == 0:
                    return 0, 0
                elif nonblock:
                    return EWOULDBLOCK, got
                else:
                    s = k.splraise()
                    await k.tsleep(sb, PSOCK, "netio")
                    k.splx(s)
                    continue
            await st.charge("socket", st.c_soreceive)
            moved = 0
            peek = bool(flags & MSG_PEEK)
            i = 0
            while i < len(sb.chain) and got < n:
                m = sb.chain[i]
                take = min(m.len, n - got)
                view = memoryview(buf).cast("B")[got:got + take]
                err = await k.copyout(m.data, view, take)
                view.release()
                if err:
                    return err, got
                got += take
                moved += take
                if peek:
                    i += 1                    # MSG_PEEK: copy, leave it in the buffer
                    continue
                freed = sb.drop(take)
                if freed:
                    await st.charge("socket", freed * st.c_mbuf)
            if moved and not peek and self.tp is not None:
                s = k.splraise()
                try:
                    await st.tcp.output(self.tp)       # PRU_RCVD: maybe a window update
                finally:
                    k.splx(s)
            if got >= n or peek or not flags & MSG_WAITALL:
                return 0, got

    async def recvmsg(self, p: Context, buf: Any, n: int, flags: int = 0
                      ) -> tuple[int, int, list[tuple[int, int, bytes]]]:
        """``recvmsg``: (errno, bytes, control messages). On a socket with
        SO_CRYPT receive and a TLS framing every call returns bytes of one
        record type and says which in a ``(SOL_TLS, TLS_GET_RECORD_TYPE,
        bytes([type]))`` control message (Linux kTLS's interface,
        Documentation/networking/tls.rst); otherwise as ``recv``, no
        control messages."""
        k = self.stack.kernel
        if k.user_buffer(buf, n, writable=True) is None:
            return EFAULT, 0, []
        if self.crypt_rx is None:
            err, got = await self.recv(p, buf, n, flags)
            return err, got, []
        err, got, rtype = await self._soreceive_crypt(buf, n, flags, True)
        cm = [(SOL_TLS, TLS_GET_RECORD_TYPE, bytes([rtype]))] if rtype is not None and not err \
            else []
        return err, got, cm

    async def _soreceive_crypt(self, buf: Any, n: int, flags: int, cmsg: bool
                               ) -> tuple[int, int, Optional[int]]:
        """SO_CRYPT receive (netinet.socrypt.SoCryptRx): whole records
        reassembled from the receive buffer, decrypted and verified, then
        their plaintext copied out; at most one record per call. A TLS
        record that is not application data read without room for its
        control message → EIO (Linux kTLS). (errno, bytes, record type)."""
        st, k, rx = self.stack, self.stack.kernel, self.crypt_rx
        err = await rx.open()
        if err:
            return err, 0, None
        while True:
            if rx.error:
                return rx.error, 0, None
            if rx.ready is None:
                s = k.splraise()
                moved = 0
                while True:              # the header first, then the record it announces
                    want, err = rx.need()
                    got = rx.pull(want) if not err else 0
                    moved += got
                    if err or not got or rx.asm.cc < want:
                        want, err = rx.need() if not err else (want, err)
                        break
                k.splx(s)
                if moved and self.tp is not None:
                    s = k.splraise()
                    try:
                        await st.tcp.output(self.tp)       # PRU_RCVD: the window opens
                    finally:
                        k.splx(s)
                if err:
                    return rx.fail(err), 0, None
                if rx.asm.cc >= want:
                    if rx.t.framing == "ssh2" and rx.ssh_len is None:
                        err = await rx.ssh_first()
                    else:
                        err = await rx.record()
                    if err:
                        return rx.fail(err), 0, None
                    continue
                if self.error:
                    err, self.error = self.error, 0
                    return err, 0, None
                if self.cantrcvmore:
                    if rx.asm.cc == 0 and self.rcv.cc == 0:
                        return 0, 0, None           # EOF between records
                    return rx.fail(EBADMSG), 0, None  # a record cut short
                if not self.state & (SS_ISCONNECTED | SS_ISCONNECTING):
                    return ENOTCONN, 0, None
                if n == 0:
                    return 0, 0, None
                if flags & MSG_DONTWAIT:
                    return EWOULDBLOCK, 0, None
                s = k.splraise()
                await k.tsleep(self.rcv, PSOCK, "netio")
                k.splx(s)
                continue
            rtype, off, left, _ = rx.ready
            if rtype is not None and rtype != TLS_APPLICATION_DATA and not cmsg:
                return EIO, 0, None
            if left == 0 and rtype in (None, TLS_APPLICATION_DATA):
                rx.consumed(0)                       # an empty data record: nothing to give
                continue
            await st.charge("socket", st.c_soreceive)
            take = min(n, left)
            view = memoryview(buf).cast("B")
            pos = 0
            for addr, ln in rx._segs(off, take):
                err = await k.copyout(addr, view[pos:pos + ln], ln)
                if err:
                    view.release()
                    return err, pos, rtype
                pos += ln
            view.release()
            if not flags & MSG_PEEK:
                rx.consumed(take)
            return 0, take, rtype

    async def shutdown(self, how: Any) -> int:
        if how not in (SHUT_RD, SHUT_WR, SHUT_RDWR) or type(how) is not int:
            return EINVAL
        if not self.state & SS_ISCONNECTED:
            return ENOTCONN
        k = self.stack.kernel
        if how in (SHUT_RD, SHUT_RDWR):
            self.state |= SS_CANTRCVMORE
            self.rcv.flush()
        if how in (SHUT_WR, SHUT_RDWR):
            self.state |= SS_CANTSENDMORE
            tp = self.tp
            if tp is not None:
                s = k.splraise()
                try:
                    tp = self.stack.tcp.usrclosed(tp)
                    if tp is not None:
                        await self.stack.tcp.output(tp)
                finally:
                    k.splx(s)
        return 0

    def setsockopt(self, level: Any, name: Any, value: Any) -> int:
        """``sosetopt`` / ``tcp_ctloutput``; values are ints (an ``int`` optval)."""
        if type(level) is not int or type(name) is not int:
            return EINVAL
        if level == SOL_SOCKET and name == SO_CRYPT:
            return self._so_crypt(value)
        if type(value) is not int:
            return EINVAL                       # optval shorter than an int
        if level == SOL_SOCKET:
            cnt = max(1, value)
            if name in (SO_SNDBUF, SO_RCVBUF):
                if cnt > SB_RESERVE_MAX:
                    return ENOBUFS              # sbreserve refuses
                sb = self.snd if name == SO_SNDBUF else self.rcv
                sb.hiwat, sb.mbmax = cnt, min(2 * cnt, SB_MAX)
                sb.lowat = min(sb.lowat, cnt)
                return 0
            if name in (SO_SNDLOWAT, SO_RCVLOWAT):
                sb = self.snd if name == SO_SNDLOWAT else self.rcv
                sb.lowat = min(cnt, sb.hiwat)
                return 0
            return ENOPROTOOPT
        if level == IPPROTO_TCP:
            tp = self.tp
            if tp is None:
                return ECONNRESET
            if name == TCP_NODELAY:
                tp.flags = tp.flags | TF_NODELAY if value else tp.flags & ~TF_NODELAY
                return 0
            if name == TCP_MAXSEG:
                if value <= 0 or value > tp.t_maxseg:
                    return EINVAL
                tp.t_maxseg = value
                return 0
            return ENOPROTOOPT
        return ENOPROTOOPT

    def _so_crypt(self, t: Any) -> int:
        """SO_CRYPT (netinet.socrypt): EINVAL for a bad transform, ENOPROTOOPT
        when the host has no OCF for it, EINVAL when already set or not
        connected (FreeBSD ktls_enable_tx: connected TCP only)."""
        crypto = getattr(self.stack, "socrypt_crypto", None)
        if crypto is None:
            return ENOPROTOOPT
        if check_transform(t) or not self.state & SS_ISCONNECTED:
            return EINVAL
        tx, rx = t.direction in (TX, BOTH), t.direction in (RX, BOTH)
        if (tx and self.crypt_tx is not None) or (rx and self.crypt_rx is not None):
            return EINVAL                       # each direction is set once (TLS_TX, TLS_RX)
        if tx:
            self.crypt_tx = SoCryptTx(self, t, crypto)
        if rx:
            self.crypt_rx = SoCryptRx(self, t, crypto)
        return 0

    def getsockopt(self, level: Any, name: Any) -> tuple[int, int]:
        if level == SOL_SOCKET:
            if name == SO_SNDBUF:
                return 0, self.snd.hiwat
            if name == SO_RCVBUF:
                return 0, self.rcv.hiwat
            if name == SO_SNDLOWAT:
                return 0, self.snd.lowat
            if name == SO_RCVLOWAT:
                return 0, self.rcv.lowat
            if name == SO_ERROR:
                err, self.error = self.error, 0
                return 0, err
            if name == SO_TYPE:
                return 0, SOCK_STREAM
        if level == IPPROTO_TCP and self.tp is not None:
            if name == TCP_NODELAY:
                return 0, int(bool(self.tp.flags & TF_NODELAY))
            if name == TCP_MAXSEG:
                return 0, self.tp.t_maxseg
        return ENOPROTOOPT, 0

    async def close(self, p: Context) -> int:
        """``soclose``: abort pending connections of a listener; otherwise a
        graceful close (FIN after the queued data) that outlives the descriptor."""
        st, k = self.stack, self.stack.kernel
        for c in (self.crypt_tx, self.crypt_rx):
            if c is not None:
                await c.close()                  # the OCF sessions go with the socket
        s = k.splraise()
        try:
            if self.options & SO_ACCEPTCONN:
                if self.tp is not None:
                    st.tcp.listeners.pop(self.tp.lport, None)
                for so in list(self.q0) + list(self.q):
                    so.state |= SS_NOFDREF
                    if so.tp is not None:
                        await st.tcp.drop(so.tp, ECONNABORTED)
                    so.free()
                if self.tp is not None:
                    st.tcp.close(self.tp)
            elif self.tp is not None:
                tp = self.tp
                if tp.state < TCPS_ESTABLISHED:
                    st.tcp.close(tp)
                else:
                    self.state |= SS_ISDISCONNECTING
                    tp = st.tcp.usrclosed(tp)
                    if tp is not None:
                        await st.tcp.output(tp)
            self.state |= SS_NOFDREF
            self.free()
        finally:
            k.splx(s)
        return 0


def _request_scale(tp: TcpCb, so: Socket) -> None:
    """The window-scale shift asked for on the SYN: the least that covers the
    receive buffer (4.4BSD ``tcp_usrreq`` PRU_CONNECT, ``tcp_input`` LISTEN)."""
    r = 0
    while r < TCP_MAX_WINSHIFT and (TCP_MAXWIN << r) < so.rcv.hiwat:
        r += 1
    tp.request_r_scale = r

