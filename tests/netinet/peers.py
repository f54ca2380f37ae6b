"""Independent record peers for the SO_CRYPT tests.

* :func:`tls_read` — tlslite-ng 0.8.2's ``RecordLayer`` at version (3, 1),
  its read state keyed directly (``encContext``, ``macContext``,
  ``seqnum``), reading the simulated host's bytes from a socketpair.
  tlslite-ng's own 3DES is pure Python (~15 KB/s), so ``encContext`` is a
  thin adapter over the ``cryptography`` package's TripleDES-CBC (the duck
  type tlslite calls: ``isBlockCipher``, ``isAEAD``, ``block_size``,
  ``encrypt``/``decrypt``, one CBC chain per direction).
* :func:`ssh_read` — paramiko 5.1's ``Packetizer`` keyed with
  ``set_inbound_cipher`` (3des-cbc, hmac-sha1 or hmac-sha1-96).
"""

from __future__ import annotations

import hashlib
import socket

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes


class TripleDESCBC:
    """tlslite's block-cipher duck type over cryptography's TripleDES-CBC."""

    isBlockCipher = True
    isAEAD = False
    block_size = 8
    name = "3des"
    implementation = "cryptography"

    def __init__(self, key: bytes, iv: bytes):
        c = Cipher(TripleDES(key), modes.CBC(iv))
        self._enc, self._dec = c.encryptor(), c.decryptor()

    def encrypt(self, data: bytes) -> bytearray:
        return bytearray(self._enc.update(bytes(data)))

    def decrypt(self, data: bytes) -> bytearray:
        return bytearray(self._dec.update(bytes(data)))


def _feed(a: socket.socket, wire: bytes) -> None:
    a.sendall(wire)
    a.shutdown(socket.SHUT_WR)


def tls_read(wire: bytes, key: bytes, iv: bytes, mac_key: bytes, seq: int = 0,
             count: int = 0) -> list[tuple[int, bytes]]:
    """Every TLS 1.0 record in ``wire`` as (content type, plaintext), by tlslite-ng;
    raises tlslite's TLSBadRecordMAC (or another TLS error) on a bad record."""
    from tlslite.recordlayer import RecordLayer
    from tlslite.mathtls import createHMAC
    a, b = socket.socketpair()
    a.setblocking(True)
    import threading
    th = threading.Thread(target=_feed, args=(a, wire))
    th.start()
    try:
        rl = RecordLayer(b)
        rl.version = (3, 1)
        rl._readState.encContext = TripleDESCBC(key, iv)
        rl._readState.macContext = createHMAC(mac_key, digestmod=hashlib.sha1)
        rl._readState.seqnum = seq
        out = []
        while count == 0 or len(out) < count:
            if count == 0 and len(out) and not _more(b):
                break
            for r in rl.recvRecord():
                if r not in (0, 1):
                    header, parser = r
                    out.append((header.type, bytes(parser.bytes)))
                    break
        return out
    finally:
        th.join()
        a.close()
        b.close()


def _more(b: socket.socket) -> bool:
    try:
        return len(b.recv(1, socket.MSG_PEEK)) > 0
    except OSError:
        return False


def ssh_read(wire: bytes, key: bytes, iv: bytes, mac_key: bytes, mac_len: int, n: int,
             seq: int = 0) -> list:
    """The first ``n`` SSH2 packets of ``wire`` as paramiko's (cmd, Message)."""
    import paramiko.packet
    a, b = socket.socketpair()
    import threading
    th = threading.Thread(target=_feed, args=(a, wire))
    th.start()
    try:
        pk = paramiko.packet.Packetizer(b)
        pk.set_inbound_cipher(Cipher(TripleDES(key), modes.CBC(iv)).decryptor(), 8,
                              hashlib.sha1, mac_len, mac_key)
        pk._Packetizer__sequence_number_in = seq
        pk._initial_kex_done = True
        return [pk.read_message() for _ in range(n)]
    finally:
        th.join()
        a.close()
        b.close()


class _Capture:
    """A socket stand-in that keeps what a peer library writes."""

    def __init__(self) -> None:
        self.data = bytearray()

    def send(self, b) -> int:
        self.data += bytes(b)
        return len(b)

    def sendall(self, b) -> None:
        self.data += bytes(b)

    def settimeout(self, t) -> None:
        pass


def tls_write(records: list[tuple[int, bytes]], key: bytes, iv: bytes, mac_key: bytes,
              seq: int = 0) -> bytes:
    """TLS 1.0 records (content type, plaintext) as tlslite-ng's ``RecordLayer``
    writes them: MAC, padding, 3DES-CBC with the chained IV (RFC 2246 §6.2.3)."""
    from tlslite.mathtls import createHMAC
    from tlslite.messages import Message
    from tlslite.recordlayer import RecordLayer
    cap = _Capture()
    rl = RecordLayer(cap)
    rl.version = (3, 1)
    rl._writeState.encContext = TripleDESCBC(key, iv)
    rl._writeState.macContext = createHMAC(mac_key, digestmod=hashlib.sha1)
    rl._writeState.seqnum = seq
    for rtype, data in records:
        for _ in rl.sendRecord(Message(rtype, bytearray(data))):
            pass
    return bytes(cap.data)


def ssh_write(payloads: list[bytes], key: bytes, iv: bytes, mac_key: bytes, mac_len: int,
              seq: int = 0) -> bytes:
    """SSH2 binary packets (RFC 4253 §6) of the given payloads, as paramiko's
    ``Packetizer.send_message`` writes them (3des-cbc, hmac-sha1[-96])."""
    import paramiko.packet
    from paramiko.message import Message
    cap = _Capture()
    pk = paramiko.packet.Packetizer(cap)
    pk.set_outbound_cipher(Cipher(TripleDES(key), modes.CBC(iv)).encryptor(), 8,
                           hashlib.sha1, mac_len, mac_key)
    pk._Packetizer__sequence_number_out = seq
    pk._initial_kex_done = True
    for p in payloads:
        pk.send_message(Message(p))
    return bytes(cap.data)
