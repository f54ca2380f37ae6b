"""Engine parameters chosen per card, and the arithmetic behind them.

A card instantiates ``TransformEngine(**card_engine_params(name))``.
Throughput of the cores (``bench/crypto_cores.py`` measures it in
simulation): 3DES costs ``48 / des_rounds`` cycles per 8-byte block
(FIPS 46-3: 16 rounds x 3 passes), SHA-1 ``80 / sha_rounds`` cycles per
64-byte block (FIPS 180-4: 80 rounds); the engine's byte datapath moves one
byte per cycle and overlaps the cores, so long-packet throughput is bounded
by max(cipher cycles/8 B, MAC cycles/8 B, 1 cycle/B).
"""

from dataclasses import dataclass

__all__ = ["EngineParams", "CARD_ENGINE_PARAMS", "card_engine_params", "mbps"]


@dataclass(frozen=True)
class EngineParams:
    des_rounds: int
    sha_rounds: int
    tls_orders: bool
    tls_onepass: bool         # MAC and padding encrypted after the data (extension)
    clock_mhz: float          # clock the engine runs at on that card
    ref_mbps: float           # datasheet rate to meet (OCF paper §5.1)
    ref_what: str

    def engine_kwargs(self):
        return dict(des_rounds=self.des_rounds, sha_rounds=self.sha_rounds,
                    tls_orders=self.tls_orders, tls_onepass=self.tls_onepass)

    def cycles_per_8_bytes(self, mac=False):
        """Long-packet steady state, cycles per 8 bytes."""
        des = 48 / self.des_rounds          # 3DES: 3 x 16 rounds (FIPS 46-3)
        sha = (80 / self.sha_rounds) / 8 if mac else 0   # 80 rounds / 64 B (FIPS 180-4)
        return max(des, sha, 8)            # byte datapath: 1 byte/cycle

    def model_mbps(self, mac=False):
        return mbps(self.cycles_per_8_bytes(mac), 8, self.clock_mhz)


def mbps(cycles, nbytes, clock_mhz):
    return nbytes * 8 * clock_mhz / cycles


CARD_ENGINE_PARAMS = {
    # Hifn 7751: 32-bit/33 MHz chip (OCF paper §5.4);
    # 3DES 83 Mbps (Hifn datasheet, quoted in OCF paper §5.1). 2 DES rounds/cycle → 24 cycles/block →
    # 88.0 Mbps at 33 MHz; 1 round/cycle would give 44 Mbps.
    "hifn7751": EngineParams(des_rounds=2, sha_rounds=1, tls_orders=True,
                             tls_onepass=False,
                             clock_mhz=33.0, ref_mbps=83.0, ref_what="3DES"),
    # BCM5820: on the 64-bit/66 MHz bus (OCF paper §5.1); 310 Mbps 3DES-SHA1
    # (Broadcom, quoted in OCF paper §5.1). 4 DES rounds/cycle → 12 cycles/8 B → 352 Mbps at 66 MHz
    # steady state; SHA-1 runs concurrently. 2 SHA rounds/cycle (not 1) halves
    # the per-packet MAC tail (last block + padding + outer hash, 3 x 80/r
    # cycles), which at 1 round/cycle pulled a 1 KB packet to 301 Mbps.
    # One-pass TLS records (docs/bcm5820.md): the card's UBS_PKTCTX_TLS flag.
    "bcm5820": EngineParams(des_rounds=4, sha_rounds=2, tls_orders=True, tls_onepass=True,
                            clock_mhz=66.0, ref_mbps=310.0, ref_what="3DES+HMAC-SHA1"),
}


def card_engine_params(card):
    """Keyword arguments for ``TransformEngine`` on ``card``."""
    return CARD_ENGINE_PARAMS[card].engine_kwargs()
