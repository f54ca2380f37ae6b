"""Request sequencing of the transform engine: takes a command, checks it,
runs the stages over its data and gives the result (docs/crypto.md).

Ports
-----
* ``cmd``: In(stream of CommandLayout), taken in IDLE; ``start`` is high in
  the clock it is taken (the stages sample their fields then).
* ``result``: Out(stream of ResultLayout), offered in RESULT.
* ``state``: :class:`EngineState`. ``running``: RUN.
* ``bad``: the latched command is invalid (a ``status`` error bit below):
  its data is consumed and dropped, no stage computes.
* To the router: ``cipher_on``, ``mac_on`` (valid command with a cipher /
  MAC), ``tap_in`` (the MAC reads the input bytes), the regions
  [``cipher_skip``, ``cipher_end``), [``mac_skip``, ``mac_end``) and
  ``length``.
* One-pass extension (``tls_onepass``): ``out_length`` (bytes the request
  outputs: ``length`` plus the tail), ``tail_len`` (MAC + padding bytes
  appended after the data, 0 unless a valid ``mac_append`` command),
  ``mac_bytes`` (20, or 12 with ``trunc``) and ``pad_len``; the router's
  ``cipher_end`` then includes the tail.
* From the stages: ``in_pos``, ``out_pos`` (unpacker and packer
  positions), ``out_full`` (the packer still offers a word), ``cipher_idle``,
  ``mac_done``, ``length_error``, ``chain`` and ``digest`` for the result.
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import enum, stream, wiring
from amaranth.lib.wiring import In, Out

from .command import (LEN_BITS, MAC_96_BYTES, MAC_FULL_BYTES, PAD_LEN_BITS, TAIL_BITS, Cipher,
                      CommandLayout, Mac, Order, ResultLayout)

__all__ = ["RequestSequencer", "EngineState"]


class EngineState(enum.IntEnum, shape=2):
    IDLE = 0
    RUN = 1
    RESULT = 2


class RequestSequencer(wiring.Component):
    """IDLE → RUN → RESULT for each command (module docstring)."""

    def __init__(self, tls_orders=True, tls_onepass=False):
        self.tls_orders = tls_orders
        self.tls_onepass = tls_onepass
        onepass = {
            "out_length": Out(LEN_BITS),
            "tail_len": Out(TAIL_BITS),
            "mac_bytes": Out(5),
            "pad_len": Out(PAD_LEN_BITS),
        } if tls_onepass else {}
        super().__init__({**onepass,
            "cmd": In(stream.Signature(CommandLayout)),
            "result": Out(stream.Signature(ResultLayout)),
            "state": Out(EngineState),
            "start": Out(1),
            "running": Out(1),
            "bad": Out(1),
            "cipher_on": Out(1),
            "mac_on": Out(1),
            "tap_in": Out(1),
            "length": Out(LEN_BITS),
            "cipher_skip": Out(LEN_BITS),
            "cipher_end": Out(LEN_BITS + 1),
            "mac_skip": Out(LEN_BITS),
            "mac_end": Out(LEN_BITS + 1),
            "in_pos": In(LEN_BITS),
            "out_pos": In(LEN_BITS),
            "out_full": In(1),
            "cipher_idle": In(1),
            "mac_done": In(1),
            "length_error": In(1),
            "chain": In(64),
            "digest": In(160),
        })

    def elaborate(self, platform):
        m = Module()
        c = Signal(CommandLayout)          # the fields of the command checked here
        state = self.state

        cipher_on_raw = Signal()
        mac_on_raw = Signal()
        m.d.comb += [cipher_on_raw.eq(c.cipher != Cipher.NONE),
                     mac_on_raw.eq(c.mac != Mac.NONE)]
        mend = self.mac_end
        cend = Signal(LEN_BITS + 1)        # end of the cipher region in the input
        m.d.comb += [cend.eq(c.cipher_skip + c.cipher_len),
                     mend.eq(c.mac_skip + c.mac_len)]
        err_cl = Signal()
        err_rg = Signal()
        err_un = Signal()
        bad = self.bad
        if self.tls_onepass:
            tail = self._tail(m, c, cend, cipher_on_raw, mac_on_raw, bad)
        else:
            tail = None
            m.d.comb += self.cipher_end.eq(cend)
        # FIPS 46-3 / SP 800-38A: CBC works on whole 8-byte blocks (with
        # the one-pass tail: data, MAC and padding together).
        clen = c.cipher_len if tail is None else c.cipher_len + tail
        m.d.comb += err_cl.eq(cipher_on_raw & (clen[0:3] != 0))
        rg = (cipher_on_raw & (cend > c.length)) | (mac_on_raw & (mend > c.length))
        if tail is not None:
            # the tail follows the data, so the cipher region must end there,
            # and the output must still be counted in LEN_BITS
            rg = rg | (c.mac_append & ((cend != c.length) |
                                      ((c.length + tail) >> LEN_BITS != 0)))
        m.d.comb += err_rg.eq(rg)
        ext_order = cipher_on_raw & mac_on_raw & \
            ((c.order == Order.MAC_FIRST) ^ c.decrypt)
        unsup = c.cipher.as_value() == 3
        if not self.tls_orders:
            unsup = unsup | ext_order
        if self.tls_onepass:
            # the tail needs MAC-then-encrypt: a cipher, a MAC, MAC_FIRST, encrypt
            unsup = unsup | (c.mac_append & ~(cipher_on_raw & mac_on_raw & ~c.decrypt &
                                              (c.order == Order.MAC_FIRST)))
        else:
            unsup = unsup | c.mac_append
        m.d.comb += err_un.eq(unsup)
        m.d.comb += bad.eq(err_cl | err_rg | err_un)
        m.d.comb += [
            self.cipher_on.eq(cipher_on_raw & ~bad),
            self.mac_on.eq(mac_on_raw & ~bad),
            self.tap_in.eq(~self.cipher_on | (c.order == Order.MAC_FIRST)),
            self.length.eq(c.length),
            self.cipher_skip.eq(c.cipher_skip),
            self.mac_skip.eq(c.mac_skip),
            self.running.eq(state == EngineState.RUN),
            self.start.eq((state == EngineState.IDLE) & self.cmd.valid),
            self.cmd.ready.eq(state == EngineState.IDLE),
        ]

        res = self.result.payload
        m.d.comb += [
            self.result.valid.eq(state == EngineState.RESULT),
            res.status.cipher_len.eq(err_cl),
            res.status.region.eq(err_rg),
            res.status.unsupported.eq(err_un),
            res.status.length.eq(self.length_error),
            res.mac.eq(Mux(self.mac_on, self.digest, 0)),
            res.iv.eq(self.chain),
        ]

        with m.Switch(state):
            with m.Case(EngineState.IDLE):
                with m.If(self.cmd.valid):
                    p = self.cmd.payload
                    m.d.sync += [c[name].eq(p[name]) for name in self._latched()]
                    m.d.sync += state.eq(EngineState.RUN)
            with m.Case(EngineState.RUN):
                out_len = self.out_length if self.tls_onepass else c.length
                done = (self.in_pos == c.length) & (self.out_pos == out_len) & \
                    ~self.out_full & self.cipher_idle & self.mac_done
                with m.If(done):
                    m.d.sync += state.eq(EngineState.RESULT)
            with m.Case(EngineState.RESULT):
                with m.If(self.result.ready):
                    m.d.sync += state.eq(EngineState.IDLE)
        return m

    def _latched(self):
        """Command fields kept for the request's run (the keys are the stages')."""
        names = ("cipher", "decrypt", "mac", "order", "length",
                 "cipher_skip", "cipher_len", "mac_skip", "mac_len", "mac_append")
        if self.tls_onepass:
            names += ("trunc", "pad_len")
        return names

    def _tail(self, m, c, cend, cipher_on_raw, mac_on_raw, bad):
        """One-pass extension: the tail after the data (MAC, then pad_len + 1
        bytes of value pad_len, RFC 2246 §6.2.3.2). Returns its length as
        the checks see it (any ``mac_append`` command)."""
        raw = Signal(TAIL_BITS)
        m.d.comb += raw.eq(Mux(c.mac_append,
                               Mux(c.trunc, MAC_96_BYTES, MAC_FULL_BYTES) + c.pad_len + 1, 0))
        m.d.comb += [
            self.tail_len.eq(Mux(bad, 0, raw)),
            self.mac_bytes.eq(Mux(c.trunc, MAC_96_BYTES, MAC_FULL_BYTES)),
            self.pad_len.eq(c.pad_len),
            self.out_length.eq(c.length + self.tail_len),
            # the output side's cipher region runs on through the tail
            self.cipher_end.eq(cend + self.tail_len),
        ]
        return raw
