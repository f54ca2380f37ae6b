"""Boot OCF on a kernel: the framework, the software driver and /dev/crypto."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from sim.kernel import Kernel

from .crypto import Crypto
from .cryptodev import Cryptodev
from .cryptosoft import CryptoSoft

__all__ = ["OCF", "attach"]


@dataclass
class OCF:
    crypto: Crypto
    swcr: Optional[CryptoSoft]
    cryptodev: Cryptodev


def attach(kernel: Kernel, *, software: bool = True, allow_soft: bool = False) -> OCF:
    """``crypto_init`` + ``swcr_init`` + cryptodev attach; ``allow_soft`` is
    ``kern.cryptodevallowsoft`` (default off, as in OpenBSD)."""
    crypto = Crypto(kernel)
    swcr = CryptoSoft(crypto) if software else None
    return OCF(crypto, swcr, Cryptodev(crypto, allow_soft=allow_soft))
