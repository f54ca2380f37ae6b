"""Byte steering of the transform engine: which stage each byte goes to.

Combinational only. The input side (unpacker, at ``in_pos``) feeds cipher
bytes to the cipher stage and passes the others straight to the output side
(packer, at ``out_pos``) once every earlier byte has left; the output side
takes cipher-region bytes from the cipher stage. The MAC taps the input
bytes (``tap_in``: MAC_FIRST, or no cipher) or the output bytes; a byte in
the MAC region moves only in a clock the MAC stage can take it, so the
stages never need to buffer for each other.

Ports: ``src`` (from the unpacker), ``cin``/``cout`` (to and from the cipher
stage), ``mac`` (to the MAC stage; ``valid`` only with ``ready``), ``dst``
(to the packer), all byte streams; ``enable`` (RUN), ``cipher_on``,
``mac_on``, ``tap_in`` and the regions [``cipher_skip``, ``cipher_end``),
[``mac_skip``, ``mac_end``) of the request; ``in_pos``, ``out_pos``.
With ``tail=True`` (the one-pass extension) a further byte stream ``tail``
feeds the cipher stage after the input: the unpacker has given every byte
by then, so the two never offer at once.

:class:`TailSource` gives that tail: the first ``mac_bytes`` bytes of the
digest, then ``pad_len + 1`` bytes of value ``pad_len`` (TLS 1.0
padding, RFC 2246 §6.2.3.2), ``tail_len`` bytes in all, offered only while
``enable`` (every input byte taken and the MAC finished).
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .bytestream import ByteSignature
from .command import LEN_BITS, MAC_FULL_BYTES, PAD_LEN_BITS, TAIL_BITS

__all__ = ["ByteRouter", "TailSource"]


class ByteRouter(wiring.Component):
    """Steers bytes between the unpacker, the stages and the packer."""

    def __init__(self, tail=False):
        self.has_tail = tail
        super().__init__({**({"tail": In(ByteSignature)} if tail else {}),
            "enable": In(1),
            "cipher_on": In(1),
            "mac_on": In(1),
            "tap_in": In(1),
            "cipher_skip": In(LEN_BITS),
            "cipher_end": In(LEN_BITS + 1),
            "mac_skip": In(LEN_BITS),
            "mac_end": In(LEN_BITS + 1),
            "in_pos": In(LEN_BITS),
            "out_pos": In(LEN_BITS),
            "src": In(ByteSignature),
            "cin": Out(ByteSignature),
            "cout": In(ByteSignature),
            "mac": Out(ByteSignature),
            "dst": Out(ByteSignature),
        })

    def elaborate(self, platform):
        m = Module()
        src, cin, cout, mac, dst = self.src, self.cin, self.cout, self.mac, self.dst
        ipos, opos = self.in_pos, self.out_pos

        def in_cipher(p):
            return self.cipher_on & (p >= self.cipher_skip) & (p < self.cipher_end)

        def in_mac(p):
            return self.mac_on & (p >= self.mac_skip) & (p < self.mac_end)

        ic = Signal()                  # input byte is in the cipher region
        oc = Signal()                  # output byte is in the cipher region
        itap = Signal()                # input byte goes to the MAC
        otap = Signal()                # output byte goes to the MAC
        m.d.comb += [
            ic.eq(in_cipher(ipos)),
            oc.eq(in_cipher(opos)),
            itap.eq(self.tap_in & in_mac(ipos)),
            otap.eq(~self.tap_in & in_mac(opos)),
        ]
        mac_ok_in = Signal()           # the input byte may move as far as the MAC goes
        mac_ok_out = Signal()
        m.d.comb += [mac_ok_in.eq(~itap | mac.ready), mac_ok_out.eq(~otap | mac.ready)]

        # Output byte at out_pos: from the cipher stage or passed through.
        pass_valid = Signal()
        m.d.comb += pass_valid.eq(src.valid & (ipos == opos) & ~oc)
        from_cipher = Signal()
        passed = Signal()
        m.d.comb += [
            cout.ready.eq(self.enable & oc & dst.ready & mac_ok_out),
            from_cipher.eq(cout.valid & cout.ready),
            dst.valid.eq((cout.valid & self.enable & oc & mac_ok_out) |
                         (pass_valid & mac_ok_out & mac_ok_in)),
            dst.payload.eq(Mux(oc, cout.payload, src.payload)),
            passed.eq(pass_valid & dst.ready & mac_ok_out & mac_ok_in),
        ]
        out_take = Signal()
        m.d.comb += out_take.eq(from_cipher | passed)

        to_cipher = Signal()
        if self.has_tail:
            src_cipher = Signal()
            m.d.comb += [
                src_cipher.eq(src.valid & ic & mac_ok_in),
                cin.valid.eq(src_cipher | self.tail.valid),
                cin.payload.eq(Mux(self.tail.valid, self.tail.payload, src.payload)),
                self.tail.ready.eq(cin.ready),
                to_cipher.eq(src_cipher & cin.ready),
            ]
        else:
            m.d.comb += [
                cin.valid.eq(src.valid & ic & mac_ok_in),
                cin.payload.eq(src.payload),
                to_cipher.eq(cin.valid & cin.ready),
            ]
        m.d.comb += src.ready.eq(to_cipher | passed)

        in_take = Signal()
        m.d.comb += in_take.eq(src.valid & src.ready)
        m.d.comb += [
            mac.valid.eq(Mux(self.tap_in, in_take & itap, out_take & otap)),
            mac.payload.eq(Mux(self.tap_in, src.payload, dst.payload)),
        ]
        return m


class TailSource(wiring.Component):
    """MAC bytes then TLS padding, after the data (module docstring)."""

    def __init__(self):
        super().__init__({
            "start": In(1),
            "enable": In(1),
            "tail_len": In(TAIL_BITS),
            "mac_bytes": In(5),
            "pad_len": In(PAD_LEN_BITS),
            "digest": In(8 * MAC_FULL_BYTES),
            "o": Out(ByteSignature),
        })

    def elaborate(self, platform):
        m = Module()
        pos = Signal(TAIL_BITS)
        mac_byte = Signal(8)
        with m.Switch(pos):
            for j in range(MAC_FULL_BYTES):     # first MAC byte in the top bits
                with m.Case(j):
                    m.d.comb += mac_byte.eq(self.digest[8 * (19 - j):8 * (20 - j)])
        m.d.comb += [
            self.o.valid.eq(self.enable & (pos < self.tail_len)),
            self.o.payload.eq(Mux(pos < self.mac_bytes, mac_byte, self.pad_len)),
        ]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += pos.eq(pos + 1)
        with m.If(self.start):
            m.d.sync += pos.eq(0)
        return m
