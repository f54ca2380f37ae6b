"""The Hifn 7751's context RAM: each session's cipher key, MAC key and CBC chain.

The chip keeps per-session state on the card (hifn7751.c sends a session's
keys once, with NEW_KEY, and later commands use the stored ones). Indexed by
the command's session number; one read port and one write port per field.
A read (``rd_en``) answers on the next clock.
"""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from . import hifn7751reg as H

__all__ = ["ContextRam", "CKEY_BITS", "MKEY_BITS", "IV_BITS"]

#: widths of the stored fields: a 3DES key (3 x 8 bytes), the 64-byte HMAC key,
#: the 8-byte CBC chain (hifn7751reg.h HIFN_MAC_KEY_LENGTH, HIFN_IV_LENGTH)
CKEY_BITS = 8 * H.TDES_KEY_LENGTH
MKEY_BITS = 8 * H.MAC_KEY_LENGTH
IV_BITS = 8 * H.IV_LENGTH


class ContextRam(wiring.Component):
    def __init__(self, sessions: int):
        self.sessions = sessions
        abits = max(1, (sessions - 1).bit_length())
        super().__init__({
            "session": In(abits),
            "rd_en": In(1),
            "ckey_we": In(1),
            "mkey_we": In(1),
            "iv_we": In(1),
            "ckey_w": In(CKEY_BITS),
            "mkey_w": In(MKEY_BITS),
            "iv_w": In(IV_BITS),
            "ckey": Out(CKEY_BITS),
            "mkey": Out(MKEY_BITS),
            "iv": Out(IV_BITS),
        })

    def elaborate(self, platform):
        m = Module()
        n = self.sessions
        m.submodules.ctx_ckey = ckey = Memory(shape=CKEY_BITS, depth=n, init=[])
        m.submodules.ctx_mkey = mkey = Memory(shape=MKEY_BITS, depth=n, init=[])
        m.submodules.ctx_iv = iv = Memory(shape=IV_BITS, depth=n, init=[])
        for mem, we, wdata, rdata in ((ckey, self.ckey_we, self.ckey_w, self.ckey),
                                      (mkey, self.mkey_we, self.mkey_w, self.mkey),
                                      (iv, self.iv_we, self.iv_w, self.iv)):
            rd, wr = mem.read_port(), mem.write_port()
            m.d.comb += [rd.addr.eq(self.session), rd.en.eq(self.rd_en), rdata.eq(rd.data),
                         wr.addr.eq(self.session), wr.en.eq(we), wr.data.eq(wdata)]
        return m
