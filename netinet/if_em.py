"""The em(4) NIC as the stack's interface: :class:`EmIf` joins a
:class:`netinet.stack.NetStack` to an attached ``drivers.em`` softc.

Output is 4.4BSD's ``ether_output`` → ``IFQ_ENQUEUE`` → ``if_start``
(``net/if_ethersubr.c``): :meth:`EmIf.if_output` hands the frame to the
driver's ``em_start``, which queues it on ``if_snd`` and places what fits on
the transmit ring, charging its ``driver`` work (``em_encap``) to the CPU
that sends. ENOBUFS comes back when the send queue (IFQ_MAXLEN 50) is full
and the frame is dropped (TCP then quenches, as ``tcp_quench``); a frame
that does not fit on the ring stays queued with IFF_OACTIVE set and goes
out from the interrupt handler's transmit cleanup.

Input: the driver's receive path (``em_process_receive_interrupts``) runs
in its interrupt handler and hands every good frame, without its FCS, to
``stack.ether_input``, as OpenBSD's ``em_rxeof`` calls ``ether_input_mbuf``
(``sys/dev/pci/if_em.c`` rev 1.17); ``ether_input`` → ``ip_input`` →
``tcp_input`` run there in one go (docs/network.md).

The softc is used by duck typing (``mac``, ``name``, ``receive``,
``em_start``, ``stats()``): netinet imports nothing of the project but
``sim``.
"""

from __future__ import annotations

from typing import Any

from .stack import IfNet

__all__ = ["EmIf"]


class EmIf(IfNet):
    """``struct ifnet`` of an em softc (``sc``: ``drivers.em.Em``, attached)."""

    def __init__(self, sc: Any):
        if not getattr(sc, "mac", b""):
            raise ValueError("EmIf needs an attached em softc (it has no station address)")
        self.sc = sc
        self.name = sc.name
        self.lladdr = bytes(sc.mac)
        self.opackets = self.oerrors = self.ipackets = 0
        sc.receive = self._input

    async def if_output(self, frame: bytes) -> int:
        err = await self.sc.em_start([frame])
        if err:
            self.oerrors += 1
        else:
            self.opackets += 1
        return err

    async def _input(self, frame: bytes) -> None:
        self.ipackets += 1
        if self.stack is not None:
            await self.stack.ether_input(frame)

    def stats(self) -> dict:
        return dict(self.sc.stats(), if_opackets=self.opackets, if_oerrors=self.oerrors,
                    if_ipackets=self.ipackets)
