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
* From the stages: ``in_pos``, ``out_pos`` (unpacker and packer
  positions), ``out_full`` (the packer still offers a word), ``cipher_idle``,
  ``mac_done``, ``length_error``, ``chain`` and ``digest`` for the result.
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import enum, stream, wiring
from amaranth.lib.wiring import In, Out

from .command import LEN_BITS, Cipher, CommandLayout, Mac, Order, ResultLayout

__all__ = ["RequestSequencer", "EngineState"]


class EngineState(enum.IntEnum, shape=2):
    IDLE = 0
    RUN = 1
    RESULT = 2


class RequestSequencer(wiring.Component):
    """IDLE → RUN → RESULT for each command (module docstring)."""

    def __init__(self, tls_orders=True):
        self.tls_orders = tls_orders
        super().__init__({
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
        cend, mend = self.cipher_end, self.mac_end
        m.d.comb += [cend.eq(c.cipher_skip + c.cipher_len),
                     mend.eq(c.mac_skip + c.mac_len)]
        err_cl = Signal()
        err_rg = Signal()
        err_un = Signal()
        # FIPS 46-3 / SP 800-38A: CBC works on whole 8-byte blocks.
        m.d.comb += err_cl.eq(cipher_on_raw & (c.cipher_len[0:3] != 0))
        m.d.comb += err_rg.eq((cipher_on_raw & (cend > c.length)) |
                              (mac_on_raw & (mend > c.length)))
        ext_order = cipher_on_raw & mac_on_raw & \
            ((c.order == Order.MAC_FIRST) ^ c.decrypt)
        unsup = c.cipher.as_value() == 3
        if not self.tls_orders:
            unsup = unsup | ext_order
        m.d.comb += err_un.eq(unsup)
        bad = self.bad
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
                    m.d.sync += [c[name].eq(p[name]) for name in (
                        "cipher", "decrypt", "mac", "order", "length",
                        "cipher_skip", "cipher_len", "mac_skip", "mac_len")]
                    m.d.sync += state.eq(EngineState.RUN)
            with m.Case(EngineState.RUN):
                done = (self.in_pos == c.length) & (self.out_pos == c.length) & \
                    ~self.out_full & self.cipher_idle & self.mac_done
                with m.If(done):
                    m.d.sync += state.eq(EngineState.RESULT)
            with m.Case(EngineState.RESULT):
                with m.If(self.result.ready):
                    m.d.sync += state.eq(EngineState.IDLE)
        return m
