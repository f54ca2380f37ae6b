"""Transform descriptions shared by cryptodev and cryptosoft (sys/crypto/xform.c)."""

from __future__ import annotations

from dataclasses import dataclass

from .cryptodefs import (CRYPTO_3DES_CBC, CRYPTO_DES_CBC, CRYPTO_MD5, CRYPTO_MD5_HMAC,
                         CRYPTO_NULL, CRYPTO_SHA1, CRYPTO_SHA1_HMAC)


@dataclass(frozen=True)
class EncXform:
    alg: int
    name: str
    blocksize: int
    ivsize: int
    minkey: int       # bytes
    maxkey: int


@dataclass(frozen=True)
class AuthHash:
    alg: int
    name: str
    keysize: int      # key bytes /dev/crypto requires (0: no key)
    hashsize: int     # full digest bytes
    authsize: int     # default MAC bytes (OpenBSD *_96 for HMACs)
    blocksize: int
    hmac: bool

    def maclen(self, mlen: int = 0) -> int:
        return mlen if mlen else self.authsize


ENC_XFORMS = {
    CRYPTO_DES_CBC: EncXform(CRYPTO_DES_CBC, "DES", 8, 8, 8, 8),
    CRYPTO_3DES_CBC: EncXform(CRYPTO_3DES_CBC, "3DES", 8, 8, 24, 24),
    # enc_xform_null: 4-byte "blocks", keys 0..256 bytes, no IV
    CRYPTO_NULL: EncXform(CRYPTO_NULL, "NULL", 4, 0, 0, 256),
}

AUTH_HASHES = {
    CRYPTO_MD5_HMAC: AuthHash(CRYPTO_MD5_HMAC, "HMAC-MD5", 16, 16, 12, 64, True),
    CRYPTO_SHA1_HMAC: AuthHash(CRYPTO_SHA1_HMAC, "HMAC-SHA1", 20, 20, 12, 64, True),
    CRYPTO_MD5: AuthHash(CRYPTO_MD5, "MD5", 0, 16, 16, 64, False),
    CRYPTO_SHA1: AuthHash(CRYPTO_SHA1, "SHA1", 0, 20, 20, 64, False),
}
