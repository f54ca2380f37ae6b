"""The streaming transform engine both crypto cards share (docs/crypto.md).

One request = one command (``cmd`` stream) + ``length`` bytes of data on the
``i`` word stream → the transformed bytes on the ``o`` word stream + one
``result`` record (status, MAC, last cipher block).

Conventions
-----------
* Data words are PCI-style little-endian: byte k of the packet sits in lane
  ``k % 4`` (``data[8k+7:8k]``). ``be`` marks valid lanes; lanes are taken in
  lane order, disabled lanes are skipped (so an unaligned first/last word is
  fine). ``last`` marks the final word of a request. Output words are packed
  from lane 0, ``be`` set for valid lanes, ``last`` on the final word. A
  request of ``length`` 0 has no data words.
* Keys, IV and midstates in the command are big-endian integers of the byte
  strings (``int.from_bytes(b, "big")``), the order of FIPS 46-3/180-4.
* Regions are byte offsets into the packet: cipher bytes
  [cipher_skip, cipher_skip + cipher_len), MAC bytes
  [mac_skip, mac_skip + mac_len). Bytes outside the cipher region pass
  through unchanged; regions may overlap in any way.
* Ordering (``order``): ``CIPHER_FIRST`` with encrypt = encrypt-then-MAC
  (IPsec outbound: the MAC covers the output ciphertext); ``MAC_FIRST`` with
  decrypt = MAC-then-decrypt (IPsec inbound: MAC over the input ciphertext).
  These two are what the Hifn 7751 and BCM5820 accept (hifn7751.c, ubsec.c).
  Extension (``tls_orders=True``, switchable): ``MAC_FIRST`` with encrypt =
  MAC-then-encrypt (MAC over the input plaintext, SSH order; TLS puts the
  MAC inside the encrypted record, which the caller does with a second
  request) and ``CIPHER_FIRST`` with decrypt = decrypt-then-MAC (MAC over
  the output plaintext). In short: MAC_FIRST taps the input bytes,
  CIPHER_FIRST taps the output bytes; cipher and MAC always run
  concurrently.
* One-pass extension (``tls_onepass=True``, switchable; not in either
  chip): ``mac_append`` with MAC_FIRST and encrypt feeds, after the data,
  the MAC (20 bytes, 12 with ``trunc``) and then ``pad_len + 1`` bytes of
  value ``pad_len`` through the cipher, so the output is
  ``data | E(region | MAC | padding)`` of ``length + maclen + pad_len + 1``
  bytes: a whole TLS 1.0 record (RFC 2246 §6.2.3.2) in one request. The
  cipher region must end at ``length`` (else ``region``) and, with the
  tail, be a multiple of 8 (else ``cipher_len``); the MAC region may start
  before it (the 13-byte seq/type/version/length pseudo-header of
  RFC 2246 §6.2.3.1, MAC'd and passed through). ``mac_append`` without
  the extension, or without that ordering, is ``unsupported``. The result
  still carries the MAC and the last ciphertext block.
* MAC: ``SHA1`` plain hash of the MAC region; ``HMAC_KEY`` from a raw key of
  up to 64 bytes, zero padded to 64 (``mac_key``, first key byte in the top
  bits), the engine derives the ipad/opad midstates itself (RFC 2104; as the
  Hifn does, hifn7751.c). Longer keys must be hashed first by software,
  as RFC 2104 §2 says. ``HMAC_STATE`` from the precomputed inner and outer
  midstates (as the BCM5820 is given, ubsec.c). ``trunc`` keeps the
  first 12 bytes (RFC 2104 §5, HMAC-SHA1-96) and zeroes the rest.
* Result: ``mac`` (160 bits, first MAC byte in the top bits), ``iv`` = the
  last ciphertext block of the request (encrypt: last output block;
  decrypt: last input block), i.e. the IV that chains the next request;
  the command IV when the cipher region is empty.
* Status bits: ``cipher_len`` (cipher length not a multiple of 8),
  ``region`` (a region ends past ``length``), ``unsupported`` (reserved
  cipher code, or a TLS ordering while ``tls_orders`` is off) — any of these
  makes the command invalid: its data words are consumed and dropped (the
  same ``length``/``last`` rules as a valid request, so the stream stays in
  step), nothing is output, ``mac`` is 0 and the result carries the status.
  ``length``: the data did not match ``length`` (``last`` came early — the
  missing bytes are processed as zero — or the word holding the final byte
  lacked ``last`` or held extra bytes, which are dropped).

Datapath
--------
The engine moves one byte per cycle at each of its stages (unpacker, cipher
block buffers, MAC block buffer, packer), which is above what the chosen core
parameters need (see :mod:`hw.crypto.params`). The DES core has an 8-byte
input and an 8-byte output buffer, so loading, computing and draining
overlap; the SHA-1 core copies its block at start, so the 64-byte MAC
buffer refills while it computes. Padding, ipad/opad and the outer hash
block are formed by logic in front of the SHA-1 core.
"""

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .bytestream import BytePacker, WordLayout, WordUnpacker
from .cbc import CipherStage
from .command import (LEN_BITS, Cipher, CommandLayout, Mac, Order, ResultLayout,
                      StatusLayout)
from .mac import IPAD, OPAD, SHA1_BLOCK, MacStage, MacState
from .router import ByteRouter, TailSource
from .sequencer import EngineState, RequestSequencer

__all__ = ["Cipher", "Mac", "Order", "CommandLayout", "WordLayout",
           "StatusLayout", "ResultLayout", "TransformEngine", "EngineState",
           "MacState", "LEN_BITS", "IPAD", "OPAD", "SHA1_BLOCK"]


class TransformEngine(wiring.Component):
    """Streaming DES/3DES-CBC + SHA-1/HMAC-SHA1 engine.

    Parameters
    ----------
    des_rounds : DES rounds per cycle (1, 2, 4, 8, 16).
    sha_rounds : SHA-1 rounds per cycle (a divisor of 80).
    tls_orders : accept MAC-then-encrypt and decrypt-then-MAC (extension).
    tls_onepass : accept ``mac_append``: MAC and padding encrypted after
        the data (extension).

    Ports
    -----
    cmd : In(stream of CommandLayout), taken when the engine is idle.
    i : In(stream of WordLayout), the request's data.
    o : Out(stream of WordLayout), the transformed data.
    result : Out(stream of ResultLayout), one per command.
    state, mac_state : FSM states for VCDs (EngineState, MacState).
    in_pos, out_pos : byte positions of the input and output sides.
    idle : 1 exactly when the next clock edge changes none of the engine's
        state: no request in flight (sequencer IDLE, so every stage has
        finished: no block in the DES or SHA-1 core, buffers empty) and no
        command offered on ``cmd``. A reset from outside is not covered.

    Structure: :class:`~hw.crypto.sequencer.RequestSequencer` (command,
    checks, result), :class:`~hw.crypto.bytestream.WordUnpacker` →
    :class:`~hw.crypto.router.ByteRouter` → :class:`~hw.crypto.cbc.CipherStage`
    and :class:`~hw.crypto.mac.MacStage` → :class:`~hw.crypto.bytestream.BytePacker`.
    """

    def __init__(self, des_rounds=1, sha_rounds=1, tls_orders=True, tls_onepass=False):
        self.des_rounds = des_rounds
        self.sha_rounds = sha_rounds
        self.tls_orders = tls_orders
        self.tls_onepass = tls_onepass
        super().__init__({
            "cmd": In(stream.Signature(CommandLayout)),
            "i": In(stream.Signature(WordLayout)),
            "o": Out(stream.Signature(WordLayout)),
            "result": Out(stream.Signature(ResultLayout)),
            "state": Out(EngineState),
            "mac_state": Out(MacState),
            "in_pos": Out(LEN_BITS),
            "out_pos": Out(LEN_BITS),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.sequencer = seq = RequestSequencer(self.tls_orders, self.tls_onepass)
        m.submodules.unpacker = up = WordUnpacker(LEN_BITS)
        m.submodules.router = rt = ByteRouter(tail=self.tls_onepass)
        m.submodules.cipher = cs = CipherStage(self.des_rounds)
        m.submodules.mac = ms = MacStage(self.sha_rounds)
        m.submodules.packer = pk = BytePacker(LEN_BITS)

        # Streams: words in → bytes → stages → words out.
        wiring.connect(m, wiring.flipped(self.cmd), seq.cmd)
        wiring.connect(m, seq.result, wiring.flipped(self.result))
        wiring.connect(m, wiring.flipped(self.i), up.i)
        wiring.connect(m, up.o, rt.src)
        wiring.connect(m, rt.cin, cs.i)
        wiring.connect(m, cs.o, rt.cout)
        wiring.connect(m, rt.mac, ms.i)
        wiring.connect(m, rt.dst, pk.i)
        wiring.connect(m, pk.o, wiring.flipped(self.o))

        # Each stage samples its command fields in the clock it starts.
        p = self.cmd.payload
        for stage in (up, cs, ms, pk):
            m.d.comb += stage.start.eq(seq.start)
        m.d.comb += [
            cs.cipher.eq(p.cipher), cs.decrypt.eq(p.decrypt), cs.iv.eq(p.iv),
            cs.key1.eq(p.key1), cs.key2.eq(p.key2), cs.key3.eq(p.key3),
            ms.mode.eq(p.mac), ms.length.eq(p.mac_len), ms.trunc.eq(p.trunc),
            ms.key.eq(p.mac_key), ms.inner.eq(p.inner), ms.outer.eq(p.outer),
        ]

        # Control from the sequencer.
        m.d.comb += [
            up.enable.eq(seq.running), up.length.eq(seq.length),
            pk.length.eq(seq.out_length if self.tls_onepass else seq.length),
            pk.drop.eq(seq.bad),
            cs.enable.eq(seq.running),
            ms.abort.eq(seq.running & seq.bad),
            rt.enable.eq(seq.running), rt.cipher_on.eq(seq.cipher_on),
            rt.mac_on.eq(seq.mac_on), rt.tap_in.eq(seq.tap_in),
            rt.cipher_skip.eq(seq.cipher_skip), rt.cipher_end.eq(seq.cipher_end),
            rt.mac_skip.eq(seq.mac_skip), rt.mac_end.eq(seq.mac_end),
            rt.in_pos.eq(up.pos), rt.out_pos.eq(pk.pos),
        ]

        # Stage status to the sequencer and the engine's own ports.
        m.d.comb += [
            seq.in_pos.eq(up.pos), seq.out_pos.eq(pk.pos), seq.out_full.eq(pk.o.valid),
            seq.cipher_idle.eq(cs.idle), seq.mac_done.eq(ms.done),
            seq.length_error.eq(up.length_error), seq.chain.eq(cs.chain),
            seq.digest.eq(ms.digest),
            self.state.eq(seq.state), self.mac_state.eq(ms.state),
            self.in_pos.eq(up.pos), self.out_pos.eq(pk.pos),
            # IDLE is entered only once every stage is done (sequencer RUN)
            # and the result is taken, and no stage moves without RUN or start
            self.idle.eq((seq.state == EngineState.IDLE) & ~self.cmd.valid),
        ]
        if self.tls_onepass:
            self._tail(m, seq, up, ms, rt)
        return m

    def _tail(self, m, seq, up, ms, rt):
        """One-pass extension: MAC and padding into the cipher after the data."""
        m.submodules.tail = tl = TailSource()
        wiring.connect(m, tl.o, rt.tail)
        m.d.comb += [
            tl.start.eq(seq.start),
            # every input byte taken (so every MAC byte) and the MAC final
            tl.enable.eq(seq.running & (up.pos == seq.length) & ms.done),
            tl.tail_len.eq(seq.tail_len), tl.mac_bytes.eq(seq.mac_bytes),
            tl.pad_len.eq(seq.pad_len), tl.digest.eq(ms.digest),
        ]
