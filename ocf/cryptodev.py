"""/dev/crypto (sys/crypto/cryptodev.c): OCF for user processes.

A process opens ``/dev/crypto`` and gets a private descriptor with CRIOGET;
sessions belong to that descriptor and are freed when it is closed::

    err, fd = await kernel.sys_open(p, "/dev/crypto")
    g = CrioGet(); err = await kernel.sys_ioctl(p, fd, CRIOGET, g)     # g.fd
    sop = SessionOp(cipher=CRYPTO_3DES_CBC, keylen=24, key=k)
    err = await kernel.sys_ioctl(p, g.fd, CIOCGSESSION, sop)           # sop.ses
    cop = CryptOp(ses=sop.ses, op=COP_ENCRYPT, len=n, src=data, dst=bytearray(n), iv=iv)
    err = await kernel.sys_ioctl(p, g.fd, CIOCCRYPT, cop)
    err = await kernel.sys_ioctl(p, g.fd, CIOCFSESSION, sop.ses)
    err = await kernel.sys_close(p, g.fd)

CIOCCRYPT pays ``cryptodev.op``, the copyin, ``ocf.dispatch``; sleeps until the
callback; then pays the copyout (and MAC copyout) and ``cryptodev.done``.
Errors follow OpenBSD: unknown algorithm, bad key length, or no hardware for
the combination (unless ``allow_soft``, OpenBSD's ``kern.cryptodevallowsoft``,
default off) → EINVAL; len > 262140 → E2BIG; a cipher len of 0 or not a
block multiple → EINVAL (a hash-only session takes any len, 0 included);
unknown session (including another descriptor's) → EINVAL; a bad user buffer
→ EFAULT (see ``Kernel.user_buffer``: sizes in bytes, only byte buffers).
The ioctl argument is snapshotted at entry, as the kernel copies the user's
struct in; its buffers are checked before the work and again at each copy.
Without an IV the first block of ``src`` is the IV. A MAC is computed over all ``len`` bytes (after encryption, before
decryption) and returned in ``mac`` (12 bytes for the HMACs unless ``mlen``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Optional

from sim.kernel import PSOCK, Context, File, Kernel
from sim.kernel.errno import E2BIG, EAGAIN, EFAULT, EINVAL, ENOMEM

from .crypto import Crypto
from .cryptodefs import (CRD_F_ENCRYPT, CRD_F_IV_EXPLICIT, CRD_F_IV_PRESENT, CRYPTO_F_IOV,
                         CryptoBuf, CryptoDesc, CryptoIni, CryptoOp)
from .xform import AUTH_HASHES, ENC_XFORMS, AuthHash, EncXform

__all__ = ["Cryptodev", "CrioGet", "SessionOp", "CryptOp", "CRIOGET", "CIOCGSESSION",
           "CIOCFSESSION", "CIOCCRYPT", "COP_ENCRYPT", "COP_DECRYPT", "CRYPTODEV_MAXLEN"]


def _ioc(inout: int, group: str, num: int, size: int) -> int:
    return inout | ((size & 0x1FFF) << 16) | (ord(group) << 8) | num


_IOC_IN, _IOC_INOUT = 0x8000_0000, 0xC000_0000
CRIOGET = _ioc(_IOC_INOUT, "c", 101, 4)          # 0xc0046365
CIOCGSESSION = _ioc(_IOC_INOUT, "c", 102, 28)    # struct session_op (i386)
CIOCFSESSION = _ioc(_IOC_IN, "c", 103, 4)
CIOCCRYPT = _ioc(_IOC_INOUT, "c", 104, 28)       # struct crypt_op (i386)

COP_ENCRYPT = 1
COP_DECRYPT = 2
CRYPTODEV_MAXLEN = 262140    # 256 KB - 4: hides a chip limit (OCF paper §4.2)


@dataclass
class CrioGet:
    fd: int = -1


@dataclass
class SessionOp:
    """``struct session_op``; ``mlen`` (MAC bytes, 0 = default) is an extension."""

    cipher: int = 0
    mac: int = 0
    keylen: int = 0
    key: Any = None
    mackeylen: int = 0
    mackey: Any = None
    ses: int = 0
    mlen: int = 0


@dataclass
class CryptOp:
    """``struct crypt_op``; src/dst/mac/iv are user buffers (bytes / bytearray)."""

    ses: int = 0
    op: int = 0
    flags: int = 0
    len: int = 0
    src: Any = None
    dst: Any = None
    mac: Any = None
    iv: Any = None


class CSession:
    """A /dev/crypto session of one descriptor (``struct csession``)."""

    def __init__(self, ses: int, sid: int, txform: Optional[EncXform],
                 thash: Optional[AuthHash], crie: Optional[CryptoIni],
                 cria: Optional[CryptoIni], maclen: int):
        self.ses, self.sid = ses, sid
        self.txform, self.thash = txform, thash
        self.crie, self.cria = crie, cria
        self.maclen = maclen


class _Wait:
    __slots__ = ("cse", "done")

    def __init__(self, cse: CSession):
        self.cse, self.done = cse, False


def _is_int(x: Any) -> bool:
    return type(x) is int


def _snapshot(arg: Any, cls: type) -> Any:
    """The ioctl argument as copied into the kernel at entry (a new ``cls``), or
    None (EFAULT) when it is not a ``cls``. Like the kernel's copy of the user's
    struct, it keeps the user's pointers (buffers) but no longer changes when
    the user changes the struct while the call sleeps."""
    if type(arg) is not cls:
        return None
    return cls(**{f.name: getattr(arg, f.name, None) for f in fields(cls)})


class Cryptodev:
    """The device; ``Cryptodev(crypto)`` registers ``/dev/crypto`` with the kernel."""

    def __init__(self, crypto: Crypto, allow_soft: bool = False, path: str = "/dev/crypto"):
        self.crypto = crypto
        self.kernel: Kernel = crypto.kernel
        self.allow_soft = allow_soft
        prof = self.kernel.profile
        self.c_op = prof.cost("cryptodev.op")
        self.c_done = prof.cost("cryptodev.done")
        self.kernel.register_device(path, self)

    async def open(self, p: Context) -> tuple[int, File]:
        return 0, _CryptoDevFile(self)


class _CryptoDevFile(File):
    """The opened /dev/crypto itself: only CRIOGET (``cryptoioctl``)."""

    def __init__(self, dev: Cryptodev):
        self.dev = dev

    async def ioctl(self, p: Context, cmd: Any, arg: Any) -> int:
        if type(cmd) is not int or cmd != CRIOGET:
            return EINVAL
        if type(arg) is not CrioGet:
            return EFAULT
        arg.fd = self.dev.kernel.fdalloc(p, FCrypt(self.dev))
        return 0


class FCrypt(File):
    """A private /dev/crypto descriptor (``struct fcrypt``) with its sessions."""

    def __init__(self, dev: Cryptodev):
        self.dev = dev
        self.sessions: dict[int, CSession] = {}
        self.sesn = 0

    async def ioctl(self, p: Context, cmd: Any, arg: Any) -> int:
        if type(cmd) is not int:
            return EINVAL
        if cmd == CIOCGSESSION:
            return await self._gsession(arg)
        if cmd == CIOCFSESSION:
            return await self._fsession(arg)
        if cmd == CIOCCRYPT:
            return await self._crypt(p, arg)
        return EINVAL

    async def close(self, p: Context) -> int:
        sessions, self.sessions = self.sessions, {}
        for cse in sessions.values():
            await self.dev.crypto.freesession(cse.sid)
        return 0

    # ------------------------------------------------------------ sessions
    async def _gsession(self, user_sop: Any) -> int:
        sop = _snapshot(user_sop, SessionOp)
        if sop is None:
            return EFAULT
        k = self.dev.kernel
        if not (_is_int(sop.cipher) and _is_int(sop.mac)):
            return EINVAL
        txform = thash = None
        if sop.cipher:
            txform = ENC_XFORMS.get(sop.cipher)
            if txform is None:
                return EINVAL
        if sop.mac:
            thash = AUTH_HASHES.get(sop.mac)
            if thash is None:
                return EINVAL
        if txform is None and thash is None:
            return EINVAL
        crie = cria = None
        if txform is not None:
            if not _is_int(sop.keylen) or not txform.minkey <= sop.keylen <= txform.maxkey:
                return EINVAL
            key = k.user_buffer(sop.key, sop.keylen)
            if key is None:
                return EFAULT
            crie = CryptoIni(sop.cipher, sop.keylen * 8, bytes(key))
            await k.charge("copy", k.copy_cost(sop.keylen))
        maclen = 0
        if thash is not None:
            if not _is_int(sop.mackeylen) or sop.mackeylen != thash.keysize:
                return EINVAL
            mk = k.user_buffer(sop.mackey, sop.mackeylen)
            if mk is None:
                return EFAULT
            if not _is_int(sop.mlen) or not 0 <= sop.mlen <= thash.hashsize:
                return EINVAL
            cria = CryptoIni(sop.mac, sop.mackeylen * 8, bytes(mk), mlen=sop.mlen)
            await k.charge("copy", k.copy_cost(sop.mackeylen))
            maclen = thash.maclen(sop.mlen)
        chain = [c for c in (crie, cria) if c is not None]
        err, sid = await self.dev.crypto.newsession(chain, not self.dev.allow_soft)
        if err:
            return err
        ses = self.sesn
        self.sesn += 1
        self.sessions[ses] = CSession(ses, sid, txform, thash, crie, cria, maclen)
        user_sop.ses = ses           # the ioctl copies the struct back out
        return 0

    async def _fsession(self, ses: Any) -> int:
        cse = self.sessions.pop(ses, None) if _is_int(ses) else None
        if cse is None:
            return EINVAL
        await self.dev.crypto.freesession(cse.sid)
        return 0

    # ------------------------------------------------------------ requests
    def _check(self, cop: CryptOp) -> tuple[int, Optional[CSession], Optional[bytes]]:
        """(errno, session, IV) for a snapshot of ``struct crypt_op``."""
        user_buffer = self.dev.kernel.user_buffer
        cse = self.sessions.get(cop.ses) if _is_int(cop.ses) else None
        if cse is None:
            return EINVAL, None, None
        if not _is_int(cop.len) or not _is_int(cop.op) or not _is_int(cop.flags):
            return EINVAL, None, None
        if cop.len > CRYPTODEV_MAXLEN:
            return E2BIG, None, None
        if cop.len < 0 or cop.op not in (COP_ENCRYPT, COP_DECRYPT) or cop.flags:
            return EINVAL, None, None
        tx = cse.txform
        # cryptodev.c crypto_op: only a cipher needs a (nonzero) block multiple;
        # a hash-only request may be empty (the digest of the empty message)
        if tx is not None and (cop.len == 0 or cop.len % tx.blocksize):
            return EINVAL, None, None
        iv = None
        if cop.iv is not None:
            if tx is None or tx.ivsize == 0:
                return EINVAL, None, None
            view = user_buffer(cop.iv, tx.ivsize)
            if view is None:
                return EFAULT, None, None
            iv = bytes(view)
        if cop.mac is not None:
            if cse.thash is None:
                return EINVAL, None, None
            if user_buffer(cop.mac, cse.maclen, writable=True) is None:
                return EFAULT, None, None
        if user_buffer(cop.src, cop.len) is None:
            return EFAULT, None, None
        if cop.dst is not None and user_buffer(cop.dst, cop.len, writable=True) is None:
            return EFAULT, None, None
        return 0, cse, iv

    def _request(self, cse: CSession, cop: CryptOp, iv: Optional[bytes],
                 buf: CryptoBuf) -> CryptoOp:
        n = cop.len
        descs: list[CryptoDesc] = []
        crde = crda = None
        if cse.txform is not None:
            tx = cse.txform
            crde = CryptoDesc(cse.crie, skip=0, len=n, inject=0,
                              flags=CRD_F_ENCRYPT if cop.op == COP_ENCRYPT else 0)
            if iv is not None:
                crde.iv = iv
                crde.flags |= CRD_F_IV_EXPLICIT | CRD_F_IV_PRESENT
            elif tx.ivsize:
                crde.flags |= CRD_F_IV_PRESENT
                crde.skip = tx.ivsize
                crde.len = n - tx.ivsize
        if cse.thash is not None:
            crda = CryptoDesc(cse.cria, skip=0, len=n, inject=n)
        if crde is not None and crda is not None:
            descs = [crde, crda] if cop.op == COP_ENCRYPT else [crda, crde]
        else:
            descs = [crde or crda]
        return CryptoOp(sid=cse.sid, ilen=n, olen=n, flags=CRYPTO_F_IOV, buf=buf,
                        opaque=_Wait(cse), desc=descs, callback=self._callback)

    def _callback(self, crp: CryptoOp) -> None:
        """``cryptodev_cb``: re-submit after a migration, else wake the process."""
        w: _Wait = crp.opaque
        if crp.etype == EAGAIN:
            w.cse.sid = crp.sid          # the session moved: remember the new sid
            if self.dev.crypto.dispatch(crp) == 0:
                return
        w.done = True
        self.dev.kernel.wakeup(w)

    async def _crypt(self, p: Context, user_cop: Any) -> int:
        cop = _snapshot(user_cop, CryptOp)
        if cop is None:
            return EFAULT
        err, cse, iv = self._check(cop)
        if err:
            return err
        k = self.dev.kernel
        await k.charge("ocf", self.dev.c_op)
        total = cop.len + cse.maclen
        kaddr = k.malloc(total)
        if kaddr is None:
            return ENOMEM
        try:
            err = await k.copyin(cop.src, kaddr, cop.len)
            if err:
                return err
            crp = self._request(cse, cop, iv, CryptoBuf.contiguous(k.memory, kaddr, total))
            await k.charge("ocf", self.dev.crypto.c_dispatch)
            err = self.dev.crypto.dispatch(crp)
            if err:
                return err
            w: _Wait = crp.opaque
            while not w.done:
                await k.tsleep(w, PSOCK, "crydev")
            if crp.etype:
                return crp.etype
            if cop.dst is not None:
                err = await k.copyout(kaddr, cop.dst, cop.len)
                if err:
                    return err
            if cop.mac is not None:
                err = await k.copyout(kaddr + cop.len, cop.mac, cse.maclen)
                if err:
                    return err
            return 0
        finally:
            await k.charge("ocf", self.dev.c_done)
            k.free(kaddr)
