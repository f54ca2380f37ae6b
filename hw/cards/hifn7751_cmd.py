"""The Hifn 7751's command buffer: parser (dwords → command registers) and
decoder (command registers → engine command and validity).

A command buffer (hifn7751reg.h) is, in order: the base command; a
compression command (refused); the MAC command (base ``mac``); the crypt
command (base ``crypt``); the MAC key (MAC ``new_key``, 64 bytes); the cipher
key (crypt ``new_key``, 24 bytes 3DES / 8 bytes DES); the IV (crypt
``new_iv``, 8 bytes). :class:`CommandParser` takes the buffer a dword at a
time, steps through the sections the earlier ones announce, and flags a
buffer that is longer or shorter than its sections (``bad``).
:class:`CommandDecoder` is combinational: the engine command, and whether the
card can run the command at all (``refused``: algorithms and modes the card
does not have, a locked enable level, a session beyond the context RAM, a MAC
or crypt region past the total source count).
"""

from amaranth.hdl import Module, Signal, Mux, Cat, Const
from amaranth.lib import enum, wiring
from amaranth.lib.wiring import In, Out

from ..crypto.engine import Cipher, CommandLayout, Mac, Order
from . import hifn7751reg as H
from .hifn7751_ctx import CKEY_BITS, IV_BITS, MKEY_BITS

__all__ = ["Section", "CommandParser", "CommandDecoder"]


class Section(enum.Enum, shape=3):
    """Command-buffer sections, in buffer order (``parser.section`` in VCDs)."""
    BASE = 0
    COMP = 1
    MAC = 2
    CRYPT = 3
    MKEY = 4
    CKEY = 5
    IV = 6
    END = 7


def _bswap(w):
    """A little-endian dword → the big-endian integer of its 4 bytes."""
    return Cat(w[24:32], w[16:24], w[8:16], w[0:8])


class CommandParser(wiring.Component):
    """Command-buffer dwords into the command registers and key/IV registers.

    ``clear`` starts a new buffer; ``word_valid``/``word`` deliver its dwords;
    ``desc_bad`` marks the buffer bad (its descriptor); ``finish`` ends it (bad
    if a section is missing). ``ctx_load`` takes the keys and IV the command
    did not carry from the context RAM (``ctx_*``)."""

    def __init__(self):
        super().__init__({
            "clear": In(1),
            "word_valid": In(1),
            "word": In(32),
            "desc_bad": In(1),
            "finish": In(1),
            "ctx_load": In(1),
            "ctx_ckey": In(CKEY_BITS),
            "ctx_mkey": In(MKEY_BITS),
            "ctx_iv": In(IV_BITS),
            "base": Out(H.BaseCommand),
            "mac": Out(H.MacCommand),
            "crypt": Out(H.CryptCommand),
            "ckey": Out(CKEY_BITS),      # key1 in 191:128 for 3DES, 63:0 for DES
            "mkey": Out(MKEY_BITS),
            "iv": Out(IV_BITS),
            "bad": Out(1),
            "new_mkey": Out(1),          # the buffer carries a MAC key
            "new_ckey": Out(1),          # ... a cipher key
            "new_iv": Out(1),            # ... an IV
            "tdes": Out(1),              # crypt alg is 3DES (the key section is 24 bytes)
            "section": Out(Section),
        })

    def elaborate(self, platform):
        m = Module()
        base, mac, crypt = Signal(H.BaseCommand), Signal(H.MacCommand), Signal(H.CryptCommand)
        ckey, mkey, iv = Signal(CKEY_BITS), Signal(MKEY_BITS), Signal(IV_BITS)
        bad = Signal()
        psec = Signal(Section)
        pcnt = Signal(4)                 # dword within the section
        bm, mm, cm = base.masks, mac.masks, crypt.masks
        m.d.comb += [self.base.eq(base), self.mac.eq(mac), self.crypt.eq(crypt),
                     self.ckey.eq(ckey), self.mkey.eq(mkey), self.iv.eq(iv),
                     self.bad.eq(bad), self.section.eq(psec),
                     self.new_mkey.eq(bm.mac & mm.new_key),
                     self.new_ckey.eq(bm.crypt & cm.new_key),
                     self.new_iv.eq(bm.crypt & cm.new_iv),
                     self.tdes.eq(cm.alg == H.CryptAlg.TDES)]

        # dwords per section; the sections present (Section order)
        sec_len = Signal(5)
        with m.Switch(psec):
            with m.Case(Section.MKEY): m.d.comb += sec_len.eq(H.MAC_KEY_LENGTH // 4)
            with m.Case(Section.CKEY): m.d.comb += sec_len.eq(
                Mux(self.tdes, H.TDES_KEY_LENGTH // 4, H.DES_KEY_LENGTH // 4))
            with m.Default():          m.d.comb += sec_len.eq(2)
        present = Signal(8)
        m.d.comb += present.eq(Cat(Const(1, 1), bm.comp, bm.mac, bm.crypt, self.new_mkey,
                                   self.new_ckey, self.new_iv, Const(1, 1)))
        nxt = Signal(3)
        m.d.comb += nxt.eq(Section.END.value)
        for s in reversed(range(1, 8)):
            with m.If((psec.as_value() < s) & present[s]):
                m.d.comb += nxt.eq(s)

        w = self.word
        with m.If(self.word_valid):
            with m.Switch(psec):
                for sec, reg in ((Section.BASE, base), (Section.MAC, mac),
                                 (Section.CRYPT, crypt)):
                    with m.Case(sec):
                        with m.If(pcnt == 0):
                            m.d.sync += reg.as_value()[0:32].eq(w)
                        with m.Else():
                            m.d.sync += reg.as_value()[32:64].eq(w)
                # keys and IV are big-endian byte strings, first byte highest
                with m.Case(Section.MKEY):
                    m.d.sync += mkey.eq(Cat(_bswap(w), mkey[0:MKEY_BITS - 32]))
                with m.Case(Section.CKEY):
                    m.d.sync += ckey.eq(Cat(_bswap(w), ckey[0:CKEY_BITS - 32]))
                with m.Case(Section.IV):
                    m.d.sync += iv.eq(Cat(_bswap(w), iv[0:IV_BITS - 32]))
                with m.Case(Section.END):
                    m.d.sync += bad.eq(1)                 # longer than its sections
            with m.If(psec != Section.END):
                with m.If(pcnt == sec_len - 1):
                    m.d.sync += [psec.eq(nxt), pcnt.eq(0)]
                with m.Else():
                    m.d.sync += pcnt.eq(pcnt + 1)
        with m.If(self.desc_bad | (self.finish & (psec != Section.END))):
            m.d.sync += bad.eq(1)                         # bad descriptor; truncated
        with m.If(self.ctx_load):
            with m.If(~self.new_ckey):
                m.d.sync += ckey.eq(self.ctx_ckey)
            with m.If(~self.new_mkey):
                m.d.sync += mkey.eq(self.ctx_mkey)
            with m.If(~self.new_iv):
                m.d.sync += iv.eq(self.ctx_iv)
        with m.If(self.clear):
            m.d.sync += [bad.eq(0), base.eq(0), mac.eq(0), crypt.eq(0),
                         psec.eq(Section.BASE), pcnt.eq(0)]
        return m


class CommandDecoder(wiring.Component):
    """The parsed command as an engine command, and the checks the card makes
    before a data phase. ``sessions``: the context RAM's size."""

    def __init__(self, sessions: int):
        self.sessions = sessions
        super().__init__({
            "base": In(H.BaseCommand),
            "mac": In(H.MacCommand),
            "crypt": In(H.CryptCommand),
            "ckey": In(CKEY_BITS),
            "mkey": In(MKEY_BITS),
            "iv": In(IV_BITS),
            "bad": In(1),
            "tdes": In(1),
            "level": In(2),              # enable level: 0 locked, 1 DES, 2 3DES/SHA1
            "length": Out(18),           # total source count
            "has_mac": Out(1),
            "has_cry": Out(1),
            "mac_result": Out(1),        # the result buffer carries the MAC
            "refused": Out(1),           # no data phase: CMDINVAL
            "unsupported": Out(1),
            "engine": Out(CommandLayout),
        })

    def elaborate(self, platform):
        m = Module()
        bc, mc, cc = self.base, self.mac, self.crypt
        bm, mm, cm = bc.masks, mc.masks, cc.masks
        length, has_mac, has_cry, tdes = self.length, self.has_mac, self.has_cry, self.tdes
        decode = bm.decode
        m.d.comb += [length.eq(Cat(bc.src_count, bc.src_hi)),
                     has_mac.eq(bm.mac), has_cry.eq(bm.crypt),
                     self.mac_result.eq(has_mac & mm.result)]
        mac_len = Cat(mc.source_count, mm.count_hi)
        cry_len = Cat(cc.source_count, cm.count_hi)

        # algorithms, modes, level, session the card has (hifn7751reg.h names)
        unsupported = self.unsupported
        m.d.comb += unsupported.eq(
            bm.comp |
            (has_cry & ((cm.alg != H.CryptAlg.DES) & (cm.alg != H.CryptAlg.TDES) |
                        (cm.mode != H.CryptMode.CBC))) |
            (has_cry & (self.level < Mux(tdes, 2, 1))) |
            (has_mac & ((mm.alg == H.MacAlg.MD5) | (mm.mode == H.MacMode.SSL_MAC) |
                        (mm.mode == H.MacMode.FULL))) |
            (has_mac & (self.level < 2)) |
            (bc.session >= self.sessions))
        # regions within the total source count (header_skip + source_count of
        # the MAC / crypt command)
        overrun = Signal()
        m.d.comb += overrun.eq((has_cry & (cc.header_skip + cry_len > length)) |
                               (has_mac & (mc.header_skip + mac_len > length)))
        m.d.comb += self.refused.eq(self.bad | unsupported | overrun)

        ec = self.engine
        ckey = self.ckey
        m.d.comb += [
            # 3 is the engine's reserved cipher: it answers status.unsupported
            ec.cipher.eq(Mux(self.bad | unsupported, 3,
                             Mux(has_cry, Mux(tdes, Cipher.TDES, Cipher.DES), Cipher.NONE))),
            ec.decrypt.eq(decode),
            ec.mac.eq(Mux(has_mac, Mux(mm.mode == H.MacMode.HASH, Mac.SHA1, Mac.HMAC_KEY),
                          Mac.NONE)),
            ec.order.eq(Mux(decode, Order.MAC_FIRST, Order.CIPHER_FIRST)),
            ec.trunc.eq(mm.trunc),
            ec.length.eq(length),
            ec.cipher_skip.eq(cc.header_skip),
            ec.cipher_len.eq(cry_len),
            ec.mac_skip.eq(mc.header_skip),
            ec.mac_len.eq(mac_len),
            ec.key1.eq(Mux(tdes, ckey[128:192], ckey[0:64])),
            ec.key2.eq(ckey[64:128]),
            ec.key3.eq(ckey[0:64]),
            ec.iv.eq(self.iv),
            ec.mac_key.eq(self.mkey),
        ]
        return m
