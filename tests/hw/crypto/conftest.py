"""Shared helpers for the crypto datapath tests: NIST CAVP / RFC vector
readers (from the `cryptography-vectors` package, never copied into the
repo) and a checker that runs requests through the engine and compares
every output with the independent reference in ``crypto_ref``."""

import os
import sys

import cryptography_vectors

sys.path.insert(0, os.path.dirname(__file__))

from crypto_ref import expected, make_cmd  # noqa: E402
from cryptography.hazmat.primitives import hashes  # noqa: E402

from hw.crypto.engine import Cipher, Mac  # noqa: E402
from hw.crypto.harness import run_engine  # noqa: E402


def read_rsp(path):
    """NIST .rsp → list of dicts (keys lower-case, with 'section')."""
    out = []
    section = None
    cur = {}
    with cryptography_vectors.open_vector_file(path, "r") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                if cur:
                    out.append(cur)
                    cur = {}
                continue
            if line.startswith("["):
                if cur:
                    out.append(cur)
                    cur = {}
                section = line.strip("[]")
                continue
            k, _, v = line.partition("=")
            cur[k.strip().lower()] = v.strip()
            cur["section"] = section
    if cur:
        out.append(cur)
    return out


def read_rfc2202():
    """RFC 2202 HMAC-SHA1 cases: list of (key, msg, digest)."""
    cases = []
    cur = {}
    with cryptography_vectors.open_vector_file(
            os.path.join("HMAC", "rfc-2202-sha1.txt"), "r") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            k, _, v = line.partition("=")
            k = k.strip()
            if k == "Len":
                cur = {}
            cur[k] = v.strip()
            if k == "MD":
                cases.append((bytes.fromhex(cur["Key"]), bytes.fromhex(cur["Msg"]),
                              bytes.fromhex(cur["MD"])))
    return cases


# Known-answer cases as (cmd, data) with the file's answer in cmd["_expect"]
# (3DES: output bytes; SHA-1/HMAC: the MAC as the engine reports it).

TCBC_KAT = ["TCBCinvperm.rsp", "TCBCpermop.rsp", "TCBCsubtab.rsp",
            "TCBCvarkey.rsp", "TCBCvartext.rsp"]
TCBC_MMT = ["TCBCMMT1.rsp", "TCBCMMT2.rsp", "TCBCMMT3.rsp"]


def tdes_cases(fname, *, single_des=False):
    vecs = read_rsp(os.path.join("ciphers", "3DES", "CBC", fname))
    cases = []
    for v in vecs:
        if "iv" not in v:
            continue
        if "keys" in v:
            keys = (bytes.fromhex(v["keys"]),) * 3
        else:
            keys = tuple(bytes.fromhex(v[f"key{i}"]) for i in (1, 2, 3))
        dec = v["section"] == "DECRYPT"
        src = bytes.fromhex(v["ciphertext" if dec else "plaintext"])
        dst = bytes.fromhex(v["plaintext" if dec else "ciphertext"])
        cipher = Cipher.DES if single_des and keys[0] == keys[1] == keys[2] else Cipher.TDES
        c = make_cmd(cipher=cipher, decrypt=int(dec), length=len(src),
                     cipher_len=len(src), keys=keys, iv=bytes.fromhex(v["iv"]))
        c["_expect"] = dst
        cases.append((c, src))
    return cases


def sha_cases(fname):
    vecs = read_rsp(os.path.join("hashes", "SHA1", fname))
    cases = []
    for v in vecs:
        if "md" not in v:
            continue
        n = int(v["len"]) // 8
        msg = bytes.fromhex(v["msg"])[:n]
        c = make_cmd(mac=Mac.SHA1, length=n, mac_len=n)
        c["_expect"] = int(v["md"], 16)
        cases.append((c, msg))
    return cases


def rfc2202_cases(form, trunc):
    cases = []
    for key, msg, md in read_rfc2202():
        if len(key) > 64:
            # RFC 2104 §2: keys longer than B=64 are hashed first (software's job;
            # the Hifn takes a 64-byte key field, HIFN_MAC_KEY_LENGTH in hifn7751var.h).
            h = hashes.Hash(hashes.SHA1())
            h.update(key)
            key = h.finalize()
        c = make_cmd(mac=Mac.HMAC_KEY, hmac_form=form, trunc=trunc, length=len(msg),
                     mac_len=len(msg), mac_key=key)
        c["_expect"] = int.from_bytes(md[:12] + b"\0" * 8 if trunc else md, "big")
        cases.append((c, msg))
    return cases


def sample(items, every, offset=0):
    """Deterministic sample: every ``every``-th item (always the first and
    last, so both ends of each file are exercised)."""
    if every <= 1:
        return list(items)
    idx = sorted(set(range(offset % every, len(items), every)) | {0, len(items) - 1})
    return [items[i] for i in idx if 0 <= i < len(items)]


def check_engine(cases, *, tls_orders=True, **kw):
    """Run (cmd, data) cases through one engine; assert every response
    against the reference. Returns the responses."""
    exps = [expected(c, d, tls_orders=tls_orders) for c, d in cases]
    reqs = [({k: v for k, v in c.items() if not k.startswith("_")}, d) for c, d in cases]
    outs = [e["out"] is not None and c.get("length", len(d)) > 0
            for e, (c, d) in zip(exps, cases)]
    res = run_engine(reqs, expect_out=outs, tls_orders=tls_orders, **kw)
    for n, (r, e) in enumerate(zip(res, exps)):
        assert r.status == e["status"], (n, r.status, e["status"])
        if e["out"] is not None:
            assert r.out == e["out"], (n, r.out.hex(), e["out"].hex())
            assert r.mac == e["mac"], (n, hex(r.mac), hex(e["mac"]))
            assert r.iv == e["iv"], (n, hex(r.iv), hex(e["iv"]))
        else:
            assert r.out == b"" and r.mac == 0, n
    return res
