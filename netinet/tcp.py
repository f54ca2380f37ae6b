"""TCP: the control block, ``tcp_output``, ``tcp_input`` and the timers, as 4.4BSD.

The logic follows 4.4BSD-Lite's ``sys/netinet/tcp_output.c``, ``tcp_input.c``,
``tcp_timer.c`` and ``tcp_subr.c`` as OpenBSD 3.x still ran them (Stevens,
*TCP/IP Illustrated* vol. 2, ch. 24-29, walks through the same code), with
RFC 793 (states, sequence checks), RFC 1122 §4.2.3.2 (delayed ACK), RFC 5681
(slow start, congestion avoidance, fast retransmit/recovery), RFC 6298 (RTO,
here in BSD's 500 ms ticks) and RFC 7323 (timestamps, window scale).

What is modelled:

* ``tcp_output``'s send decision: a full segment; Nagle (send a short
  segment only when nothing is outstanding, or TCP_NODELAY, and it empties
  the buffer); ``t_force``; half the peer's largest window; retransmission;
  window updates (≥ 2 segments or ≥ half the receive buffer); ACKNOW, SYN,
  FIN, RST. Segment size ``t_maxseg`` = the peer's MSS, less 12 bytes when
  both ends use timestamps (1460 - 12 = 1448 on Ethernet).
* Congestion window: ``tcp_mss`` sets ``snd_cwnd`` to ``initial_window``
  segments (1, the ``tcp_do_rfc3390`` = 0 branch of OpenBSD's ``tcp_mss``,
  ``sys/netinet/tcp_input.c`` rev 1.194), or with ``rfc3390`` to
  min(4 MSS, max(2 MSS, 4380 bytes)) (RFC 3390 §1, the other branch); the
  ACK of our SYN opens it by one segment on both ends (the active opener in
  the SYN_SENT case, "Since new data was acked (the SYN)", unless the SYN was
  retransmitted; the passive one in the ordinary ACK processing it falls
  into from SYN_RECEIVED), so a connection starts sending with 2 segments;
  +1 segment per ACK below ``snd_ssthresh`` (slow
  start), + maxseg²/cwnd above (congestion avoidance, RFC 5681 §3.1, without
  4.4BSD's extra maxseg/8); back to one segment after an idle period longer
  than the RTO (RFC 5681 §4.1). Three duplicate ACKs retransmit the missing
  segment and enter fast recovery (ssthresh = max(flight/2, 2 segments),
  cwnd = ssthresh + 3 segments, +1 per further duplicate, deflated to
  ssthresh by the next new ACK: 4.4BSD-Lite's Reno code, RFC 5681 §3.2).
* Retransmission timer in 500 ms slow-timer ticks (``PR_SLOWHZ`` 2): RTT
  measured in ticks from the timestamp echo (RFC 7323 §4) or one timed
  segment; ``t_srtt`` scaled by 8, ``t_rttvar`` by 4 and RTO = srtt + 4
  rttvar (RFC 6298 §2), clamped to [``TCPTV_MIN`` 1 s, ``TCPTV_REXMTMAX`` 64 s];
  initial RTO 6 s (``TCPTV_SRTTDFLT`` 3 s with rttvar of the same, as
  ``tcp_newtcpcb``); exponential back-off (``tcp_backoff``); 12 tries
  (``TCP_MAXRXTSHIFT``) then ETIMEDOUT. A tick is a boundary of simulated
  time at a multiple of 500 ms, so a timer of n ticks fires after
  (n-1)·500 to n·500 ms, as BSD's.
* Receive: in-order data appended to the socket buffer; out-of-order
  segments held in the reassembly queue and answered with an immediate
  (duplicate) ACK; delayed ACK as OpenBSD's ``TCP_SETUP_ACK``: the second
  in-order segment is ACKed at once, a lone one when the connection's own
  delayed-ACK timeout fires (``TCP_SET_DELACK`` arms ``t_delack_to`` for
  ``tcp_delack_ticks``, OpenBSD ``tcp_var.h`` rev 1.78: ``TCP_DELACK_MSECS``
  200 at hz 100, i.e. at the 20th 10 ms clock tick, 190-200 ms after the
  segment; sending any ACK cancels it, ``TCP_CLEAR_DELACK``); optionally at
  once on PUSH (``tcp_ack_on_push``, off by default). PAWS (RFC 7323 §5).
* Connection set-up and tear-down: the three-way handshake (active and
  passive, the listen queue), RST on a segment for no connection (RFC 793
  "Reset Generation"), FIN in every state, TIME_WAIT of 2 MSL (MSL 30 s,
  ``TCPTV_MSL``), the persist timer probing a zero window.

Not modelled: SACK, urgent data, keep-alive probes, path MTU discovery,
window-scale shifts other than what ``sb_hiwat`` asks for (0 for 16 KB),
the MSS rounding of the socket buffers in ``tcp_mss``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from sim.kernel.errno import (ECONNREFUSED, ECONNRESET, ENOBUFS, ETIMEDOUT)

from .proto import (TH_ACK, TH_FIN, TH_PUSH, TH_RST, TH_SYN, TcpHdr, TcpOpts,
                    TCPOLEN_TSTAMP_APPA, IP_HDR_LEN, TCP_HDR_LEN)

if TYPE_CHECKING:
    from .socket import Socket
    from .stack import NetStack

__all__ = ["TcpCb", "Tcp", "TCPS_NAMES", "seq_lt", "seq_leq", "seq_gt", "seq_geq", "seq_sub"]

# tcp_fsm.h states
(TCPS_CLOSED, TCPS_LISTEN, TCPS_SYN_SENT, TCPS_SYN_RECEIVED, TCPS_ESTABLISHED,
 TCPS_CLOSE_WAIT, TCPS_FIN_WAIT_1, TCPS_CLOSING, TCPS_LAST_ACK, TCPS_FIN_WAIT_2,
 TCPS_TIME_WAIT) = range(11)
TCPS_NAMES = ("CLOSED", "LISTEN", "SYN_SENT", "SYN_RECEIVED", "ESTABLISHED", "CLOSE_WAIT",
              "FIN_WAIT_1", "CLOSING", "LAST_ACK", "FIN_WAIT_2", "TIME_WAIT")
#: tcp_fsm.h tcp_outflags: the flags tcp_output sends in each state
OUTFLAGS = (TH_RST | TH_ACK, 0, TH_SYN, TH_SYN | TH_ACK, TH_ACK, TH_ACK,
            TH_FIN | TH_ACK, TH_FIN | TH_ACK, TH_FIN | TH_ACK, TH_ACK, TH_ACK)

# t_flags (tcp_var.h)
TF_ACKNOW, TF_DELACK, TF_NODELAY, TF_SENTFIN = 0x0001, 0x0002, 0x0004, 0x0010
TF_REQ_SCALE, TF_RCVD_SCALE, TF_REQ_TSTMP, TF_RCVD_TSTMP = 0x0020, 0x0040, 0x0080, 0x0100

# timers (tcp_timer.h), in slow ticks of 500 ms (PR_SLOWHZ 2)
TCPT_REXMT, TCPT_PERSIST, TCPT_KEEP, TCPT_2MSL = range(4)
PR_SLOWHZ = 2
TCPTV_MSL = 30 * PR_SLOWHZ
TCPTV_SRTTBASE = 0
TCPTV_SRTTDFLT = 3 * PR_SLOWHZ
TCPTV_PERSMIN = 5 * PR_SLOWHZ
TCPTV_PERSMAX = 60 * PR_SLOWHZ
TCPTV_KEEP_INIT = 75 * PR_SLOWHZ
TCPTV_KEEPINTVL = 75 * PR_SLOWHZ
TCPTV_KEEPCNT = 8
TCPTV_MIN = 1 * PR_SLOWHZ
TCPTV_REXMTMAX = 64 * PR_SLOWHZ
TCP_MAXRXTSHIFT = 12
TCP_BACKOFF = (1, 2, 4, 8, 16, 32, 64, 64, 64, 64, 64, 64, 64)
TCP_RTT_SHIFT, TCP_RTTVAR_SHIFT = 3, 2
TCP_MAXIDLE = TCPTV_KEEPCNT * TCPTV_KEEPINTVL     # tcp_maxidle, 10 min
#: OpenBSD tcp_timer.h: how long a lone in-order segment's ACK may wait
TCP_DELACK_MSECS = 200
#: the kernel clock: HZ 100 (OpenBSD sys/conf/param.c, i386 default); a
#: timeout of n ticks fires at the n-th clock tick after it was armed
#: (timeout_add(9)), so the delayed ACK leaves 190-200 ms after its segment
HZ = 100
TCP_DELACK_TICKS = HZ * TCP_DELACK_MSECS // 1000
TCP_MAXWIN = 65535
TCP_MAX_WINSHIFT = 14
TCPREXMTTHRESH = 3

_M = 0xFFFFFFFF


def seq_sub(a: int, b: int) -> int:
    """a - b as a signed 32-bit difference (the SEQ_* macros of tcp_seq.h)."""
    d = (a - b) & _M
    return d - (1 << 32) if d & 0x8000_0000 else d


def seq_lt(a: int, b: int) -> bool:
    return seq_sub(a, b) < 0


def seq_leq(a: int, b: int) -> bool:
    return seq_sub(a, b) <= 0


def seq_gt(a: int, b: int) -> bool:
    return seq_sub(a, b) > 0


def seq_geq(a: int, b: int) -> bool:
    return seq_sub(a, b) >= 0


def _add(a: int, n: int) -> int:
    return (a + n) & _M


class TcpCb:
    """``struct tcpcb`` (tcp_var.h) plus the connection's addresses (its inpcb)."""

    def __init__(self, so: "Socket", stack: "NetStack"):
        self.so = so
        self.laddr, self.lport, self.faddr, self.fport = b"\0" * 4, 0, b"\0" * 4, 0
        self.state = TCPS_CLOSED
        self.flags = 0
        self.timer = [0, 0, 0, 0]
        self.t_force = False
        self.t_maxseg = stack.mssdflt
        self.dupacks = 0
        self.iss = self.snd_una = self.snd_nxt = self.snd_max = 0
        self.snd_wl1 = self.snd_wl2 = 0
        self.snd_wnd = 0
        self.max_sndwnd = 0
        self.snd_cwnd = TCP_MAXWIN << TCP_MAX_WINSHIFT
        self.snd_ssthresh = TCP_MAXWIN << TCP_MAX_WINSHIFT
        self.irs = self.rcv_nxt = self.rcv_adv = 0
        self.rcv_wnd = 0
        self.last_ack_sent = 0
        self.snd_scale = self.rcv_scale = 0
        self.request_r_scale = 0
        self.requested_s_scale = 0
        self.ts_recent = 0
        self.ts_recent_age = 0
        # RTT: t_rtt counting from the tick t_rtt_start (0: not timing)
        self.t_rtt_start = 0
        self.t_rtseq = 0
        self.t_srtt = TCPTV_SRTTBASE
        self.t_rttvar = TCPTV_SRTTDFLT << 2
        self.t_rttmin = TCPTV_MIN
        self.t_rxtshift = 0
        self.t_rxtcur = _rangeset(((TCPTV_SRTTBASE >> 2) + (TCPTV_SRTTDFLT << 2)) >> 1,
                                  TCPTV_MIN, TCPTV_REXMTMAX)
        self.t_rcvtime = stack.tcp_now()        # t_idle = tcp_now - t_rcvtime
        self.reass: list[tuple[int, bytes, bool]] = []
        #: when the armed delayed-ACK timeout fires (ps; None: not armed)
        self.delack_at: Optional[int] = None
        if stack.do_rfc1323:
            self.flags |= TF_REQ_SCALE | TF_REQ_TSTMP

    @property
    def state_name(self) -> str:
        return TCPS_NAMES[self.state]

    def key(self) -> tuple:
        return (self.laddr, self.lport, self.faddr, self.fport)


def _rangeset(v: int, lo: int, hi: int) -> int:
    """``TCPT_RANGESET`` (tcp_timer.h): ``v`` clamped to [lo, hi]."""
    return max(lo, min(hi, v))


class Tcp:
    """The TCP protocol of one stack: its control blocks, input, output, timers."""

    def __init__(self, stack: "NetStack"):
        self.st = stack
        self.pcbs: dict[tuple, TcpCb] = {}
        self.listeners: dict[int, "Socket"] = {}
        self.stats: dict[str, int] = {}

    def stat(self, name: str, n: int = 1) -> None:
        self.stats[name] = self.stats.get(name, 0) + n

    # ----------------------------------------------------------- helpers
    def mss_offer(self) -> int:
        """``tcp_mss(tp, 0)``: the interface MTU less the IP and TCP headers."""
        return self.st.ifp.mtu - IP_HDR_LEN - TCP_HDR_LEN

    def mss_update(self, tp: TcpCb, offer: Optional[int]) -> None:
        """``tcp_mss`` on the peer's offer: t_maxseg and the initial cwnd."""
        mss = self.mss_offer()
        mss = min(mss, offer) if offer else min(mss, self.st.mssdflt)
        if (tp.flags & (TF_REQ_TSTMP | TF_RCVD_TSTMP)) == (TF_REQ_TSTMP | TF_RCVD_TSTMP):
            mss -= TCPOLEN_TSTAMP_APPA
        tp.t_maxseg = max(mss, 32)
        if self.st.rfc3390:
            # RFC 3390 §1 (OpenBSD tcp_mss with tcp_do_rfc3390)
            tp.snd_cwnd = min(4 * tp.t_maxseg, max(2 * tp.t_maxseg, 4380))
        else:
            tp.snd_cwnd = self.st.initial_window * tp.t_maxseg

    def set_delack(self, tp: TcpCb) -> None:
        """``TCP_SET_DELACK``: mark the ACK delayed and arm its timeout (once)."""
        if not tp.flags & TF_DELACK:
            tp.flags |= TF_DELACK
            tp.delack_at = self.st.delack_arm(tp, TCP_DELACK_TICKS)

    @staticmethod
    def clear_delack(tp: TcpCb) -> None:
        """``TCP_CLEAR_DELACK``: an ACK went out; the timeout is void."""
        tp.flags &= ~TF_DELACK
        tp.delack_at = None

    def xmit_timer(self, tp: TcpCb, rtt: int) -> None:
        """``tcp_xmit_timer``: fold an RTT sample (ticks, ≥ 1) into srtt/rttvar."""
        if tp.t_srtt != 0:
            delta = rtt - 1 - (tp.t_srtt >> TCP_RTT_SHIFT)
            tp.t_srtt += delta
            if tp.t_srtt <= 0:
                tp.t_srtt = 1
            delta = abs(delta) - (tp.t_rttvar >> TCP_RTTVAR_SHIFT)
            tp.t_rttvar += delta
            if tp.t_rttvar <= 0:
                tp.t_rttvar = 1
        else:
            tp.t_srtt = rtt << TCP_RTT_SHIFT
            tp.t_rttvar = rtt << (TCP_RTTVAR_SHIFT - 1)
        tp.t_rtt_start = 0
        tp.t_rxtshift = 0
        tp.t_rxtcur = _rangeset(self.rexmtval(tp), tp.t_rttmin, TCPTV_REXMTMAX)

    @staticmethod
    def rexmtval(tp: TcpCb) -> int:
        """``TCP_REXMTVAL``: srtt + 4 * rttvar in ticks (RFC 6298 §2.3)."""
        return (tp.t_srtt >> TCP_RTT_SHIFT) + tp.t_rttvar

    def setpersist(self, tp: TcpCb) -> None:
        t = ((tp.t_srtt >> 2) + tp.t_rttvar) >> 1
        tp.timer[TCPT_PERSIST] = _rangeset(t * TCP_BACKOFF[tp.t_rxtshift],
                                           TCPTV_PERSMIN, TCPTV_PERSMAX)
        if tp.t_rxtshift < TCP_MAXRXTSHIFT:
            tp.t_rxtshift += 1

    def attach(self, tp: TcpCb) -> None:
        self.pcbs[tp.key()] = tp

    def close(self, tp: TcpCb) -> None:
        """``tcp_close``: free the control block; the socket is disconnected."""
        self.pcbs.pop(tp.key(), None)
        tp.state = TCPS_CLOSED
        tp.timer = [0, 0, 0, 0]
        self.clear_delack(tp)
        so = tp.so
        so.tp = None
        so.isdisconnected()
        if so.nofdref:
            so.free()

    async def drop(self, tp: TcpCb, err: int) -> None:
        """``tcp_drop``: RST a synchronized connection, record ``err``, close."""
        if tp.state >= TCPS_SYN_RECEIVED:
            tp.state = TCPS_CLOSED
            await self.output(tp)
            self.stat("drops")
        tp.so.error = err
        self.close(tp)

    def usrclosed(self, tp: TcpCb) -> Optional[TcpCb]:
        """``tcp_usrclosed``: the user will send no more; None if the pcb is gone."""
        if tp.state in (TCPS_CLOSED, TCPS_LISTEN, TCPS_SYN_SENT):
            self.close(tp)
            return None
        if tp.state in (TCPS_SYN_RECEIVED, TCPS_ESTABLISHED):
            tp.state = TCPS_FIN_WAIT_1
        elif tp.state == TCPS_CLOSE_WAIT:
            tp.state = TCPS_LAST_ACK
        if tp.state >= TCPS_FIN_WAIT_2:
            tp.so.isdisconnected()
        return tp

    def new_iss(self) -> int:
        """OpenBSD 3.x randomizes the ISS (``tcp_rndiss``): from the kernel's seeded RNG."""
        return self.st.kernel.random.getrandbits(32)

    # ------------------------------------------------------------ output
    async def output(self, tp: TcpCb) -> int:
        """``tcp_output``: send what the state and the windows allow."""
        st, so = self.st, tp.so
        while True:
            idle = tp.snd_max == tp.snd_una
            if idle and st.tcp_now() - tp.t_rcvtime >= tp.t_rxtcur:
                tp.snd_cwnd = tp.t_maxseg          # RFC 5681 §4.1 restart window
            sendalot = False
            off = seq_sub(tp.snd_nxt, tp.snd_una)
            win = min(tp.snd_wnd, tp.snd_cwnd)
            flags = OUTFLAGS[tp.state]
            if tp.t_force:
                if win == 0:
                    if off < so.snd.cc:
                        flags &= ~TH_FIN
                    win = 1
                else:
                    tp.timer[TCPT_PERSIST] = 0
                    tp.t_rxtshift = 0
            length = min(so.snd.cc, win) - off
            if flags & TH_RST:
                length = 0                         # a reset carries no data
            if length < 0:
                length = 0
                if win == 0:
                    tp.timer[TCPT_REXMT] = 0
                    tp.snd_nxt = tp.snd_una
            if length > tp.t_maxseg:
                length = tp.t_maxseg
                sendalot = True
            if seq_lt(_add(tp.snd_nxt, length), _add(tp.snd_una, so.snd.cc)):
                flags &= ~TH_FIN
            rwin = so.rcv.space()
            send = False
            if length:
                if length == tp.t_maxseg:
                    send = True
                elif (idle or tp.flags & TF_NODELAY) and length + off >= so.snd.cc:
                    send = True
                elif tp.t_force:
                    send = True
                elif tp.max_sndwnd and length >= tp.max_sndwnd // 2:
                    send = True
                elif seq_lt(tp.snd_nxt, tp.snd_max):
                    send = True
            if not send and rwin > 0 and tp.state >= TCPS_ESTABLISHED:
                adv = min(rwin, TCP_MAXWIN << tp.rcv_scale) - seq_sub(tp.rcv_adv, tp.rcv_nxt)
                if adv >= 2 * tp.t_maxseg or 2 * adv >= so.rcv.hiwat:
                    send = True
            if not send and (tp.flags & TF_ACKNOW or flags & (TH_SYN | TH_RST)):
                send = True
            if not send and flags & TH_FIN and (not tp.flags & TF_SENTFIN
                                                 or tp.snd_nxt == tp.snd_una):
                send = True
            if not send:
                if so.snd.cc and not tp.timer[TCPT_REXMT] and not tp.timer[TCPT_PERSIST]:
                    tp.t_rxtshift = 0
                    self.setpersist(tp)
                    st.arm_timers()
                return 0
            err = await self._send(tp, flags, off, length, rwin)
            if err:
                return err
            if not sendalot or tp.state == TCPS_CLOSED:
                return 0

    async def _send(self, tp: TcpCb, flags: int, off: int, length: int, rwin: int) -> int:
        st, so = self.st, tp.so
        opts = TcpOpts()
        if flags & TH_SYN:
            tp.snd_nxt = tp.iss
            opts.mss = self.mss_offer()
            if tp.flags & TF_REQ_SCALE and (not flags & TH_ACK or tp.flags & TF_RCVD_SCALE):
                opts.wscale = tp.request_r_scale
        if (tp.flags & TF_REQ_TSTMP and not flags & TH_RST
                and ((flags & (TH_SYN | TH_ACK)) == TH_SYN or tp.flags & TF_RCVD_TSTMP)):
            opts.ts = (st.tcp_now(), tp.ts_recent)
        data = so.snd.copydata(off, length) if length else b""
        if length and off + length == so.snd.cc:
            flags |= TH_PUSH
        if flags & TH_FIN and tp.flags & TF_SENTFIN and tp.snd_nxt == tp.snd_max:
            tp.snd_nxt = _add(tp.snd_nxt, -1)
        if length or flags & (TH_SYN | TH_FIN) or tp.timer[TCPT_PERSIST]:
            seq = tp.snd_nxt
        else:
            seq = tp.snd_max
        if rwin < so.rcv.hiwat // 4 and rwin < tp.t_maxseg:
            rwin = 0
        rwin = min(rwin, TCP_MAXWIN << tp.rcv_scale)
        if rwin < seq_sub(tp.rcv_adv, tp.rcv_nxt):
            rwin = seq_sub(tp.rcv_adv, tp.rcv_nxt)
        wfield = rwin if flags & TH_SYN else rwin >> tp.rcv_scale
        th = TcpHdr(tp.lport, tp.fport, seq, tp.rcv_nxt if flags & TH_ACK else 0, flags,
                    min(wfield, TCP_MAXWIN), opts)
        # CPU: tcp_output proper, the header mbuf, a copy of a short payload
        # into it (m_copydata below MHLEN, else cluster references), the checksum
        await st.charge("tcp", st.c_tcp_output + st.c_mbuf)
        if 0 < length <= st.mhlen_room:
            await st.charge("copy", st.kernel.copy_cost(length))
        seg = st.tcp_segment(tp.laddr, tp.faddr, th, data)
        await st.charge("checksum", st.cksum_cost(len(seg) + 12))
        if not tp.t_force or not tp.timer[TCPT_PERSIST]:
            startseq = tp.snd_nxt
            if flags & TH_SYN:
                tp.snd_nxt = _add(tp.snd_nxt, 1)
            if flags & TH_FIN:
                tp.snd_nxt = _add(tp.snd_nxt, 1)
                tp.flags |= TF_SENTFIN
            tp.snd_nxt = _add(tp.snd_nxt, length)
            if seq_gt(tp.snd_nxt, tp.snd_max):
                tp.snd_max = tp.snd_nxt
                if not tp.t_rtt_start:
                    tp.t_rtt_start = st.tcp_now()
                    tp.t_rtseq = startseq
            if tp.timer[TCPT_REXMT] == 0 and tp.snd_nxt != tp.snd_una:
                tp.timer[TCPT_REXMT] = tp.t_rxtcur
                if tp.timer[TCPT_PERSIST]:
                    tp.timer[TCPT_PERSIST] = 0
                    tp.t_rxtshift = 0
        elif seq_gt(_add(tp.snd_nxt, length), tp.snd_max):
            tp.snd_max = _add(tp.snd_nxt, length)
        if rwin > 0 and seq_gt(_add(tp.rcv_nxt, rwin), tp.rcv_adv):
            tp.rcv_adv = _add(tp.rcv_nxt, rwin)
        tp.last_ack_sent = tp.rcv_nxt
        tp.flags &= ~TF_ACKNOW
        self.clear_delack(tp)
        self.stat("sndtotal")
        if length:
            self.stat("sndbyte", length)
        st.arm_timers()
        err = await st.ip_output(tp.laddr, tp.faddr, seg)
        if err == ENOBUFS:
            tp.snd_cwnd = tp.t_maxseg            # tcp_quench
            return 0
        return err

    async def respond(self, laddr: bytes, faddr: bytes, th_in: TcpHdr, tlen: int) -> None:
        """``tcp_respond`` with RST for a segment that has no connection (RFC 793 p. 36)."""
        if th_in.flags & TH_RST:
            return
        if th_in.flags & TH_ACK:
            seq, ack, flags = th_in.ack, 0, TH_RST
        else:
            ack = _add(th_in.seq, tlen + (1 if th_in.flags & TH_SYN else 0)
                       + (1 if th_in.flags & TH_FIN else 0))
            seq, flags = 0, TH_RST | TH_ACK
        th = TcpHdr(th_in.dport, th_in.sport, seq, ack, flags, 0, TcpOpts())
        await self.st.charge("tcp", self.st.c_tcp_output)
        seg = self.st.tcp_segment(laddr, faddr, th, b"")
        await self.st.charge("checksum", self.st.cksum_cost(len(seg) + 12))
        self.stat("sndrst")
        await self.st.ip_output(laddr, faddr, seg)

    # ------------------------------------------------------------- input
    async def input(self, src: bytes, dst: bytes, th: TcpHdr, data: bytes) -> None:
        """``tcp_input`` for a segment whose checksum verified (ip_input did it)."""
        st = self.st
        await st.charge("tcp", st.c_tcp_input)
        self.stat("rcvtotal")
        tlen = len(data)
        flags = th.flags
        tp = self.pcbs.get((dst, th.dport, src, th.sport))
        if tp is None:
            lso = self.listeners.get(th.dport)
            if lso is None or flags & TH_RST:
                if not flags & TH_RST:
                    self.stat("noport")
                await self.respond(dst, src, th, tlen)
                return
            if flags & TH_ACK or not flags & TH_SYN:
                await self.respond(dst, src, th, tlen)
                return
            tp = lso.sonewconn(dst, th.dport, src, th.sport)
            if tp is None:
                self.stat("listendrop")
                return
            await self._listen_syn(tp, th)
            return
        so = tp.so
        tp.t_rcvtime = st.tcp_now()
        tp.rcv_wnd = max(so.rcv.space(), seq_sub(tp.rcv_adv, tp.rcv_nxt))
        if tp.state != TCPS_SYN_SENT and tp.state >= TCPS_ESTABLISHED:
            tp.timer[TCPT_KEEP] = 0
        o = th.opts
        if o.ts is not None and flags & TH_SYN:
            tp.flags |= TF_RCVD_TSTMP
            tp.ts_recent, tp.ts_recent_age = o.ts[0], st.tcp_now()
        tiwin = th.win if flags & TH_SYN else th.win << tp.snd_scale
        if tp.state == TCPS_SYN_SENT:
            await self._syn_sent(tp, th, tiwin)
            return

        seq = th.seq
        # --- trim to the receive window (tcp_input "trimthenstep6" path)
        todrop = seq_sub(tp.rcv_nxt, seq)
        if todrop > 0:
            if flags & TH_SYN:
                flags &= ~TH_SYN
                seq = _add(seq, 1)
                todrop -= 1
            # wholly old (a retransmitted SYN-ACK included: our ACK was lost)
            if todrop > tlen or (todrop == tlen and not flags & TH_FIN):
                # a duplicate: ACK it at once (it may be a lost ACK's retransmission)
                tp.flags |= TF_ACKNOW
                flags &= ~TH_FIN
                todrop = tlen
                self.stat("rcvduppack")
            data = data[todrop:]
            tlen -= todrop
            seq = _add(seq, todrop)
        if so.nofdref and tp.state > TCPS_CLOSE_WAIT and tlen:
            self.close(tp)
            self.stat("rcvafterclose")
            await self.respond(dst, src, th, len(data))
            return
        over = seq_sub(_add(seq, tlen), _add(tp.rcv_nxt, tp.rcv_wnd))
        if over > 0:
            if over >= tlen:
                if tp.rcv_wnd == 0 and seq == tp.rcv_nxt:
                    tp.flags |= TF_ACKNOW                 # a window probe
                else:
                    await self._drop_after_ack(tp, flags)
                    return
            data = data[:max(0, tlen - over)]
            tlen = len(data)
            flags &= ~(TH_PUSH | TH_FIN)
        # --- PAWS (RFC 7323 §5.3) and ts_recent
        if o.ts is not None and not flags & TH_RST and tp.ts_recent and \
                seq_lt(o.ts[0], tp.ts_recent):
            self.stat("pawsdrop")
            await self._drop_after_ack(tp, flags)
            return
        if o.ts is not None and seq_leq(seq, tp.last_ack_sent) and \
                seq_lt(tp.last_ack_sent, _add(seq, tlen + (1 if flags & (TH_SYN | TH_FIN) else 0))):
            tp.ts_recent, tp.ts_recent_age = o.ts[0], st.tcp_now()
        # --- RST
        if flags & TH_RST:
            if tp.state == TCPS_SYN_RECEIVED:
                so.error = ECONNREFUSED
                self.close(tp)
            elif tp.state in (TCPS_ESTABLISHED, TCPS_FIN_WAIT_1, TCPS_FIN_WAIT_2, TCPS_CLOSE_WAIT):
                so.error = ECONNRESET
                self.stat("rcvrst")
                self.close(tp)
            else:
                self.close(tp)
            return
        if flags & TH_SYN:
            await self.drop(tp, ECONNRESET)
            await self.respond(dst, src, th, tlen)
            return
        if not flags & TH_ACK:
            return
        # --- ACK processing
        if tp.state == TCPS_SYN_RECEIVED:
            if seq_gt(tp.snd_una, th.ack) or seq_gt(th.ack, tp.snd_max):
                await self.respond(dst, src, th, tlen)
                return
            tp.state = TCPS_ESTABLISHED
            tp.timer[TCPT_KEEP] = 0              # no keep-alive: the set-up timer ends
            so.isconnected()
            tp.snd_wl1 = _add(seq, -1)
        needoutput = False
        if seq_leq(th.ack, tp.snd_una):
            if tlen == 0 and tiwin == tp.snd_wnd:
                self.stat("rcvdupack")
                if tp.timer[TCPT_REXMT] == 0 or th.ack != tp.snd_una:
                    tp.dupacks = 0
                else:
                    tp.dupacks += 1
                    if tp.dupacks == TCPREXMTTHRESH:
                        await self._fast_retransmit(tp, th.ack)
                        return
                    if tp.dupacks > TCPREXMTTHRESH:
                        tp.snd_cwnd += tp.t_maxseg
                        await self.output(tp)
                        return
            else:
                tp.dupacks = 0
        else:
            if tp.dupacks >= TCPREXMTTHRESH and tp.snd_cwnd > tp.snd_ssthresh:
                tp.snd_cwnd = tp.snd_ssthresh          # leave fast recovery
            tp.dupacks = 0
            if seq_gt(th.ack, tp.snd_max):
                await self._drop_after_ack(tp, flags)
                return
            acked = seq_sub(th.ack, tp.snd_una)
            self.stat("rcvackpack")
            self.stat("rcvackbyte", acked)
            if o.ts is not None and o.ts[1]:
                self.xmit_timer(tp, st.tcp_now() - o.ts[1] + 1)
            elif tp.t_rtt_start and seq_gt(th.ack, tp.t_rtseq):
                self.xmit_timer(tp, st.tcp_now() - tp.t_rtt_start + 1)
            if th.ack == tp.snd_max:
                tp.timer[TCPT_REXMT] = 0
                needoutput = True
            elif not tp.timer[TCPT_PERSIST]:
                tp.timer[TCPT_REXMT] = tp.t_rxtcur
            cw, incr = tp.snd_cwnd, tp.t_maxseg
            if cw > tp.snd_ssthresh:
                incr = max(1, incr * incr // cw)
            tp.snd_cwnd = min(cw + incr, TCP_MAXWIN << tp.snd_scale)
            if acked > so.snd.cc:
                tp.snd_wnd -= so.snd.cc
                freed = so.snd.drop(so.snd.cc)
                ourfinisacked = True
            else:
                freed = so.snd.drop(acked)
                tp.snd_wnd -= acked
                ourfinisacked = False
            if freed:
                await st.charge("tcp", freed * st.c_mbuf)
            so.wwakeup()
            tp.snd_una = th.ack
            if seq_lt(tp.snd_nxt, tp.snd_una):
                tp.snd_nxt = tp.snd_una
            if tp.state == TCPS_FIN_WAIT_1 and ourfinisacked:
                if so.cantrcvmore:
                    so.isdisconnected()
                    tp.timer[TCPT_2MSL] = TCP_MAXIDLE
                tp.state = TCPS_FIN_WAIT_2
            elif tp.state == TCPS_CLOSING and ourfinisacked:
                tp.state = TCPS_TIME_WAIT
                tp.timer = [0, 0, 0, 2 * TCPTV_MSL]
                so.isdisconnected()
            elif tp.state == TCPS_LAST_ACK and ourfinisacked:
                self.close(tp)
                return
            elif tp.state == TCPS_TIME_WAIT:
                tp.timer[TCPT_2MSL] = 2 * TCPTV_MSL
                await self._drop_after_ack(tp, flags)
                return
        # --- window update (step 6)
        if (seq_lt(tp.snd_wl1, seq) or (tp.snd_wl1 == seq and (
                seq_lt(tp.snd_wl2, th.ack) or (tp.snd_wl2 == th.ack and tiwin > tp.snd_wnd)))):
            tp.snd_wnd = tiwin
            tp.snd_wl1, tp.snd_wl2 = seq, th.ack
            tp.max_sndwnd = max(tp.max_sndwnd, tp.snd_wnd)
            needoutput = True
        await self._data(tp, seq, data, flags)
        if needoutput or tp.flags & TF_ACKNOW:
            await self.output(tp)
        st.arm_timers()

    async def _data(self, tp: TcpCb, seq: int, data: bytes, flags: int) -> None:
        """Step 7-8: queue the data (in order or in the reassembly queue), the FIN."""
        so = tp.so
        fin = bool(flags & TH_FIN)
        if not (data or fin) or tp.state >= TCPS_TIME_WAIT:
            return
        if seq == tp.rcv_nxt and not tp.reass and tp.state == TCPS_ESTABLISHED:
            # TCP_SETUP_ACK (OpenBSD tcp_input.c): the second segment ACKs at once
            if tp.flags & TF_DELACK or (self.st.ack_on_push and flags & TH_PUSH):
                tp.flags |= TF_ACKNOW
            else:
                self.set_delack(tp)
            if data:
                tp.rcv_nxt = _add(tp.rcv_nxt, len(data))
                self.stat("rcvpack")
                self.stat("rcvbyte", len(data))
                await self._deliver(tp, data)
        else:
            fin = await self._reass(tp, seq, data, fin)
            tp.flags |= TF_ACKNOW
        if fin:
            if tp.state < TCPS_TIME_WAIT and not so.cantrcvmore:
                so.cantrcvmore_set()
                tp.flags |= TF_ACKNOW
                tp.rcv_nxt = _add(tp.rcv_nxt, 1)
            if tp.state in (TCPS_SYN_RECEIVED, TCPS_ESTABLISHED):
                tp.state = TCPS_CLOSE_WAIT
            elif tp.state == TCPS_FIN_WAIT_1:
                tp.state = TCPS_CLOSING
            elif tp.state == TCPS_FIN_WAIT_2:
                tp.state = TCPS_TIME_WAIT
                tp.timer = [0, 0, 0, 2 * TCPTV_MSL]
                so.isdisconnected()
            elif tp.state == TCPS_TIME_WAIT:
                tp.timer[TCPT_2MSL] = 2 * TCPTV_MSL

    async def _deliver(self, tp: TcpCb, data: bytes) -> None:
        if tp.so.cantrcvmore:
            return
        if not await tp.so.rcv_append(data):
            self.stat("rcvmemdrop")
        tp.so.rwakeup()

    async def _reass(self, tp: TcpCb, seq: int, data: bytes, fin: bool) -> bool:
        """``tcp_reass``: hold an out-of-order segment; deliver what became
        contiguous. Returns whether a FIN was reached."""
        if data or fin:
            if seq_gt(seq, tp.rcv_nxt):
                self.stat("rcvoopack")
            tp.reass.append((seq, data, fin))
        q = sorted(tp.reass, key=lambda e: seq_sub(e[0], tp.rcv_nxt))
        got_fin = False
        while q:
            s, d, f = q[0]
            skip = seq_sub(tp.rcv_nxt, s)
            if skip < 0:
                break
            q.pop(0)
            if skip < len(d):
                piece = d[skip:]
                tp.rcv_nxt = _add(tp.rcv_nxt, len(piece))
                self.stat("rcvbyte", len(piece))
                await self._deliver(tp, piece)
            if f and skip <= len(d):
                got_fin = True
                q.clear()
                break
        tp.reass = q
        return got_fin

    async def _drop_after_ack(self, tp: TcpCb, flags: int) -> None:
        if flags & TH_RST:
            return
        tp.flags |= TF_ACKNOW
        await self.output(tp)

    async def _fast_retransmit(self, tp: TcpCb, ack: int) -> None:
        """Three duplicate ACKs: retransmit from ``ack``, enter fast recovery."""
        self.stat("fastrexmt")
        onxt = tp.snd_nxt
        win = min(tp.snd_wnd, tp.snd_cwnd) // 2 // tp.t_maxseg
        tp.snd_ssthresh = max(win, 2) * tp.t_maxseg
        tp.timer[TCPT_REXMT] = 0
        tp.t_rtt_start = 0
        tp.snd_nxt = ack
        tp.snd_cwnd = tp.t_maxseg
        await self.output(tp)
        tp.snd_cwnd = tp.snd_ssthresh + tp.t_maxseg * tp.dupacks
        if seq_gt(onxt, tp.snd_nxt):
            tp.snd_nxt = onxt

    async def _listen_syn(self, tp: TcpCb, th: TcpHdr) -> None:
        """A SYN for a listening socket (LISTEN case of tcp_input)."""
        st = self.st
        o = th.opts
        if o.ts is not None:
            tp.flags |= TF_RCVD_TSTMP
            tp.ts_recent, tp.ts_recent_age = o.ts[0], st.tcp_now()
        else:
            tp.flags &= ~TF_REQ_TSTMP
        if o.wscale is not None and tp.flags & TF_REQ_SCALE:
            tp.flags |= TF_RCVD_SCALE
            tp.requested_s_scale = o.wscale
        else:
            tp.flags &= ~TF_REQ_SCALE
        tp.iss = self.new_iss()
        tp.snd_una = tp.snd_nxt = tp.snd_max = tp.iss
        tp.irs = th.seq
        tp.rcv_nxt = tp.rcv_adv = _add(th.seq, 1)
        tp.snd_wnd = th.win
        tp.snd_wl1, tp.snd_wl2 = th.seq, tp.iss
        self.mss_update(tp, o.mss)
        self._scale(tp)
        tp.flags |= TF_ACKNOW
        tp.state = TCPS_SYN_RECEIVED
        tp.timer[TCPT_KEEP] = TCPTV_KEEP_INIT
        self.stat("accepts")
        await self.output(tp)
        st.arm_timers()

    def _scale(self, tp: TcpCb) -> None:
        if (tp.flags & (TF_RCVD_SCALE | TF_REQ_SCALE)) == (TF_RCVD_SCALE | TF_REQ_SCALE):
            tp.snd_scale = tp.requested_s_scale
            tp.rcv_scale = tp.request_r_scale

    async def _syn_sent(self, tp: TcpCb, th: TcpHdr, tiwin: int) -> None:
        """The SYN_SENT case of tcp_input: the answer to our SYN."""
        so, flags = tp.so, th.flags
        if flags & TH_ACK and (seq_leq(th.ack, tp.iss) or seq_gt(th.ack, tp.snd_max)):
            await self.respond(tp.laddr, tp.faddr, th, 0)
            return
        if flags & TH_RST:
            if flags & TH_ACK:
                await self.drop(tp, ECONNREFUSED)
            return
        if not flags & TH_SYN:
            return
        o = th.opts
        if o.wscale is not None and tp.flags & TF_REQ_SCALE:
            tp.flags |= TF_RCVD_SCALE
            tp.requested_s_scale = o.wscale
        if o.ts is None:
            tp.flags &= ~TF_REQ_TSTMP
        if flags & TH_ACK:
            tp.snd_una = th.ack
            if seq_lt(tp.snd_nxt, tp.snd_una):
                tp.snd_nxt = tp.snd_una
            tp.timer[TCPT_REXMT] = 0
        tp.irs = th.seq
        tp.rcv_nxt = tp.rcv_adv = _add(th.seq, 1)
        tp.flags |= TF_ACKNOW
        self.mss_update(tp, o.mss)
        if tp.t_rxtshift > 0:
            tp.snd_cwnd = tp.t_maxseg       # the SYN was retransmitted: 1 segment
        if flags & TH_ACK and seq_gt(tp.snd_una, tp.iss):
            self.stat("connects")
            self._scale(tp)
            tp.state = TCPS_ESTABLISHED
            tp.timer[TCPT_KEEP] = 0
            so.isconnected()
            if o.ts is not None and o.ts[1]:
                self.xmit_timer(tp, self.st.tcp_now() - o.ts[1] + 1)
            elif tp.t_rtt_start:
                self.xmit_timer(tp, self.st.tcp_now() - tp.t_rtt_start + 1)
            # the SYN is acknowledged data: slow start opens the window by one
            # segment (OpenBSD tcp_input.c rev 1.194, SYN_SENT case)
            tp.snd_cwnd += tp.t_maxseg
        else:
            tp.state = TCPS_SYN_RECEIVED        # simultaneous open
        tp.snd_wnd = tiwin
        tp.snd_wl1, tp.snd_wl2 = th.seq, th.ack
        tp.max_sndwnd = max(tp.max_sndwnd, tiwin)
        await self.output(tp)
        self.st.arm_timers()

    # ------------------------------------------------------------ timers
    def wants_slow(self) -> bool:
        return any(any(tp.timer) for tp in self.pcbs.values())

    async def delack(self, tp: TcpCb, when: int) -> None:
        """``tcp_delack``: the connection's delayed-ACK timeout armed for
        ``when`` fired; send the ACK unless one went out since."""
        if tp.delack_at != when or not tp.flags & TF_DELACK or tp.state == TCPS_CLOSED:
            return
        await self.st.charge("tcp", self.st.c_tcp_timer)
        self.clear_delack(tp)
        tp.flags |= TF_ACKNOW
        self.stat("delack")
        await self.output(tp)

    async def slowtimo(self) -> None:
        """``tcp_slowtimo``: count every running timer down one tick (500 ms)."""
        for tp in list(self.pcbs.values()):
            if not any(tp.timer):
                continue
            await self.st.charge("tcp", self.st.c_tcp_timer)
            for i in range(4):
                if tp.timer[i] and tp.state != TCPS_CLOSED:
                    tp.timer[i] -= 1
                    if tp.timer[i] == 0:
                        await self._timer(tp, i)

    async def _timer(self, tp: TcpCb, which: int) -> None:
        """``tcp_timers``: one expired timer."""
        if which == TCPT_2MSL:
            if tp.state != TCPS_TIME_WAIT and self.st.tcp_now() - tp.t_rcvtime <= TCP_MAXIDLE:
                tp.timer[TCPT_2MSL] = TCPTV_KEEPINTVL
            else:
                self.close(tp)
        elif which == TCPT_REXMT:
            tp.t_rxtshift += 1
            if tp.t_rxtshift > TCP_MAXRXTSHIFT:
                tp.t_rxtshift = TCP_MAXRXTSHIFT
                self.stat("timeoutdrop")
                await self.drop(tp, ETIMEDOUT)
                return
            self.stat("rexmttimeo")
            tp.t_rxtcur = _rangeset(self.rexmtval(tp) * TCP_BACKOFF[tp.t_rxtshift],
                                    tp.t_rttmin, TCPTV_REXMTMAX)
            tp.timer[TCPT_REXMT] = tp.t_rxtcur
            if tp.t_rxtshift > TCP_MAXRXTSHIFT // 4:
                tp.t_rttvar += tp.t_srtt >> TCP_RTT_SHIFT
                tp.t_srtt = 0
            tp.snd_nxt = tp.snd_una
            tp.t_rtt_start = 0
            win = min(tp.snd_wnd, tp.snd_cwnd) // 2 // tp.t_maxseg
            tp.snd_cwnd = tp.t_maxseg
            tp.snd_ssthresh = max(win, 2) * tp.t_maxseg
            tp.dupacks = 0
            await self.output(tp)
        elif which == TCPT_PERSIST:
            self.stat("persisttimeo")
            self.setpersist(tp)
            tp.t_force = True
            await self.output(tp)
            tp.t_force = False
        elif which == TCPT_KEEP:
            if tp.state < TCPS_ESTABLISHED:
                self.stat("keepdrops")
                await self.drop(tp, ETIMEDOUT)
