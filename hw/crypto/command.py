"""The transform engine's request and result records and their field codes
(docs/crypto.md, "Transform engine"); shared by the engine's stages."""

from amaranth.lib import data, enum

__all__ = ["Cipher", "Mac", "Order", "CommandLayout", "StatusLayout", "ResultLayout",
           "LEN_BITS", "MAC_FULL_BYTES", "MAC_96_BYTES", "PAD_LEN_BITS", "TAIL_BITS"]

# hifn7751reg.h: Hifn byte counts are 18 bits (bits 17:16 carried in
# session_num); the BCM5820 packet length is 16 bits (ubsecreg.h).
LEN_BITS = 18
#: HMAC-SHA1 output (RFC 2104 with SHA-1, FIPS 180-4: 160 bits) and its
#: truncation HMAC-SHA1-96 (RFC 2404)
MAC_FULL_BYTES = 20
MAC_96_BYTES = 12
#: TLS 1.0 padding_length is a uint8 (RFC 2246 §6.2.3.2)
PAD_LEN_BITS = 8
#: bytes the one-pass extension appends: MAC (<= 20) + padding (<= 256)
TAIL_BITS = 9


class Cipher(enum.Enum, shape=2):
    NONE = 0
    DES = 1          # one pass with key1 (FIPS 46-3)
    TDES = 2         # 3DES-EDE with key1, key2, key3 (SP 800-67)
    # 3 is reserved → status.unsupported


class Mac(enum.Enum, shape=2):
    NONE = 0
    SHA1 = 1         # FIPS 180-4 hash of the MAC region
    HMAC_KEY = 2     # RFC 2104 from the raw key (Hifn style)
    HMAC_STATE = 3   # RFC 2104 from inner/outer midstates (BCM5820 style)


class Order(enum.Enum, shape=1):
    CIPHER_FIRST = 0  # encrypt-then-MAC / (ext.) decrypt-then-MAC
    MAC_FIRST = 1     # MAC-then-decrypt / (ext.) MAC-then-encrypt


CommandLayout = data.StructLayout({
    "cipher": Cipher,
    "decrypt": 1,
    "mac": Mac,
    "order": Order,
    "trunc": 1,                 # 1: 12-byte MAC (HMAC-SHA1-96), 0: 20 bytes
    "length": LEN_BITS,         # bytes of data in the request
    "cipher_skip": LEN_BITS,
    "cipher_len": LEN_BITS,
    "mac_skip": LEN_BITS,
    "mac_len": LEN_BITS,
    "key1": 64,
    "key2": 64,
    "key3": 64,
    "iv": 64,
    "mac_key": 512,             # raw HMAC key, zero padded to 64 bytes
    "inner": 160,               # HMAC inner midstate H0..H4
    "outer": 160,               # HMAC outer midstate
    # one-pass extension (``tls_onepass``): after the data the MAC and
    # pad_len + 1 bytes of value pad_len go through the cipher too
    # (RFC 2246 §6.2.3.2, MAC-then-encrypt of a TLS 1.0 record)
    "mac_append": 1,
    "pad_len": PAD_LEN_BITS,
})

StatusLayout = data.StructLayout({
    "cipher_len": 1,
    "region": 1,
    "unsupported": 1,
    "length": 1,
})

ResultLayout = data.StructLayout({
    "status": StatusLayout,
    "mac": 160,
    "iv": 64,
})
