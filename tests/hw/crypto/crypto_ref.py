"""Independent reference model of the transform engine, built on the
`cryptography` package (plus a plain-Python SHA-1 compression used only to
*derive* HMAC midstates as input to the engine; the MAC it is checked
against comes from `cryptography`'s HMAC)."""


from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher as _Cipher, modes

from hw.crypto.engine import Cipher, Mac, Order

__all__ = ["expected", "hmac_midstates", "cbc"]


def cbc(k1, k2, k3, iv, data, decrypt):
    c = _Cipher(TripleDES(k1 + k2 + k3), modes.CBC(iv))
    x = c.decryptor() if decrypt else c.encryptor()
    return x.update(data) + x.finalize()


from ocf.sha1 import sha1_compress as _compress  # noqa: E402  (FIPS 180-4 §6.1.2)


def hmac_midstates(key):
    """(inner, outer) midstates as 160-bit ints, as a BCM5820 driver computes
    them at session set-up (ubsec.c)."""
    iv = (0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0)
    k = key.ljust(64, b"\0")
    out = []
    for padbyte in (0x36, 0x5C):
        st = _compress(iv, bytes(b ^ padbyte for b in k))
        v = 0
        for h in st:
            v = (v << 32) | h
        out.append(v)
    return tuple(out)


def expected(cmd, data, tls_orders=True):
    """-> dict(out=bytes|None, mac=int, iv=int, status=dict)."""
    raw = {k: int(getattr(v, "value", v)) for k, v in cmd.items() if not k.startswith("_")}
    cipher = Cipher(raw.get("cipher", 0)) if raw.get("cipher", 0) in (0, 1, 2) else None
    mac = Mac(raw.get("mac", 0))
    dec = raw.get("decrypt", 0)
    order = Order(raw.get("order", 0))
    length = cmd.get("length", len(data))
    cs, cl = cmd.get("cipher_skip", 0), cmd.get("cipher_len", 0)
    ms, ml = cmd.get("mac_skip", 0), cmd.get("mac_len", 0)
    status = dict(cipher_len=0, region=0, unsupported=0, length=0)
    c_on = cipher is None or cipher != Cipher.NONE
    m_on = mac != Mac.NONE
    if c_on and cl % 8:
        status["cipher_len"] = 1
    if (c_on and cs + cl > length) or (m_on and ms + ml > length):
        status["region"] = 1
    ext = c_on and m_on and ((order == Order.MAC_FIRST) != bool(dec))
    if cipher is None or (ext and not tls_orders):
        status["unsupported"] = 1
    iv = cmd.get("iv", 0)
    if any(status.values()):
        return dict(out=None, mac=0, iv=iv, status=status)
    data = bytes(data[:length]).ljust(length, b"\0")
    out = bytearray(data)
    if c_on and cl:
        k1 = cmd["key1"].to_bytes(8, "big")
        if cipher == Cipher.DES:
            k2 = k3 = k1
        else:
            k2 = cmd["key2"].to_bytes(8, "big")
            k3 = cmd["key3"].to_bytes(8, "big")
        out[cs:cs + cl] = cbc(k1, k2, k3, iv.to_bytes(8, "big"), data[cs:cs + cl], dec)
        ct = data if dec else out
        iv = int.from_bytes(ct[cs + cl - 8:cs + cl], "big")
    out = bytes(out)
    macv = 0
    if m_on:
        src = data if (not c_on or order == Order.MAC_FIRST) else out
        msg = src[ms:ms + ml]
        if mac == Mac.SHA1:
            h = hashes.Hash(hashes.SHA1())
            h.update(msg)
            d = h.finalize()
        else:
            key = cmd["_key"]
            h = hmac.HMAC(key, hashes.SHA1())
            h.update(msg)
            d = h.finalize()
        if cmd.get("trunc", 0):
            d = d[:12] + b"\0" * 8
        macv = int.from_bytes(d, "big")
    return dict(out=out, mac=macv, iv=iv, status=status)


def make_cmd(*, cipher=Cipher.NONE, decrypt=0, mac=Mac.NONE, order=Order.CIPHER_FIRST,
             trunc=0, length, cipher_skip=0, cipher_len=0, mac_skip=0, mac_len=0,
             keys=(b"\0" * 8,) * 3, iv=b"\0" * 8, mac_key=b"", hmac_form="key"):
    """Command dict for the harness; for HMAC, ``mac_key`` is the raw key and
    ``hmac_form`` chooses HMAC_KEY ("key") or HMAC_STATE ("state")."""
    if mac in (Mac.HMAC_KEY, Mac.HMAC_STATE):
        mac = Mac.HMAC_KEY if hmac_form == "key" else Mac.HMAC_STATE
    c = dict(cipher=cipher, decrypt=decrypt, mac=mac, order=order, trunc=trunc,
             length=length, cipher_skip=cipher_skip, cipher_len=cipher_len,
             mac_skip=mac_skip, mac_len=mac_len,
             key1=int.from_bytes(keys[0], "big"), key2=int.from_bytes(keys[1], "big"),
             key3=int.from_bytes(keys[2], "big"), iv=int.from_bytes(iv, "big"))
    if mac in (Mac.HMAC_KEY, Mac.HMAC_STATE):
        assert len(mac_key) <= 64
        c["mac_key"] = int.from_bytes(mac_key.ljust(64, b"\0"), "big")
        c["inner"], c["outer"] = hmac_midstates(mac_key)
    c["_key"] = mac_key
    return c
