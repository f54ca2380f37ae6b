"""What the crypto card drivers share: one softc shape and its recovery steps.

:class:`PciCryptoSoftc` is the base of :class:`drivers.hifn.HifnSoftc` and
:class:`drivers.ubsec.Ubsec`. Each driver module has the same shape:

- ``MATCH = {(vendor, device): description}`` from its chip header's IDs;
  :mod:`ocfsim.system` builds the autoconf table from these;
- ``async attach(pa: PciAttachArgs, **options)`` returning the softc, or
  None when the device cannot be used;
- the softc: an :class:`ocf.crypto.CryptoDriver` (``newsession``,
  ``freesession``, ``process``) registered with OCF by :meth:`register_algs`,
  with ``name``, ``dev``, ``cid``, ``stats()`` and ``handover_hook``.

The recovery steps are the same for both cards (docs/reliability.md):
:meth:`stop` makes sure the card can no longer master (its own reset; if
that fails, Bus Master Enable off through configuration space),
:meth:`reenable` brings it back (a reset with decoders on and mastering off
if the first one failed, then the command register as enumeration left it),
and :meth:`gone` is what an interrupt handler does when the registers read
all ones.
"""

from __future__ import annotations

from typing import Awaitable, Callable, Iterable, Optional

from drivers.pci import PciAttachArgs, Watchdog, quiesce, restore_command
from ocf.cryptodefs import CRYPTOCAP_F_ENCRYPT_MAC

__all__ = ["PciCryptoSoftc"]


class PciCryptoSoftc:
    """A crypto card's softc. Subclasses set ``driver`` (the name the units are
    numbered under), ``counters`` (their statistics, with ``gone``) and
    implement ``reset_board() -> bool`` and the :class:`ocf.crypto.CryptoDriver`
    methods."""

    driver = "?"
    #: the driver module's MATCH table
    MATCH: dict = {}
    counters: dict

    def __init__(self, pa: PciAttachArgs, *, watchdog_us: Optional[float] = None):
        if watchdog_us is not None and not watchdog_us > 0:
            raise ValueError(f"{self.driver}: watchdog_us must be > 0, not {watchdog_us!r}")
        self.watchdog_ps = int(watchdog_us * 1e6) if watchdog_us else None
        self.handover_hook: Optional[Callable[[str, int, int], None]] = None
        self.wd: Optional[Watchdog] = None
        self.quiesced = False             # BME off / INTx masked by the driver
        self.pa = pa
        self.dev = pa.dev
        self.unit = pa.unit
        self.name = f"{self.driver}{pa.unit}"
        self.kernel = pa.kernel
        self.crypto = pa.crypto
        self.memory = pa.memory
        self.config = pa.config
        self.cid = -1
        self.ih = None
        #: the product name of the device (its MATCH entry)
        self.product = self.MATCH.get((self.dev.vendor, self.dev.device), self.dev.name)

    async def reset_board(self) -> bool:      # pragma: no cover - each driver's own
        raise NotImplementedError

    # ------------------------------------------------------------ OCF and watchdog
    def register_algs(self, algs: Iterable[int], flags: int = 0) -> None:
        """``crypto_get_driverid`` + ``crypto_register`` of this softc for ``algs``
        (both cards do the IPsec order, ``CRYPTOCAP_F_ENCRYPT_MAC``; ``flags``:
        further capabilities)."""
        self.cid = self.crypto.get_driverid(CRYPTOCAP_F_ENCRYPT_MAC | flags)
        for alg in algs:
            self.crypto.register(self.cid, alg, 0, 0, self)

    def start_watchdog(self, *, mbps: float, outstanding: Callable[[], int],
                       collect: Callable[[], Awaitable[None]],
                       resume: Callable[[], Awaitable[None]],
                       on_idle: Optional[Callable[[], Awaitable[None]]] = None) -> None:
        """The completion timer (:class:`drivers.pci.Watchdog`); it recovers
        through ``self._recover(errno, why)`` and is idle when ``self._idle()``."""
        self.wd = Watchdog(self.kernel, f"{self.name}wd", mbps=mbps, outstanding=outstanding,
                           collect=collect, resume=resume, recover=self._recover,
                           idle=self._idle, on_idle=on_idle, override_ps=self.watchdog_ps)

    def watchdog_stats(self) -> dict:
        return dict(watchdog_expiries=self.wd.expiries if self.wd else 0,
                    timeouts=self.wd.timeouts if self.wd else 0)

    def _handover(self, kind: str, addr: int, size: int) -> None:
        """Tell ``handover_hook`` a structure is in DMA memory, before the card is told."""
        if self.handover_hook is not None:
            self.handover_hook(kind, addr, size)

    # ------------------------------------------------------------ recovery steps
    async def quiesce(self) -> None:
        """Bus Master Enable off, INTx# disabled (configuration space answers
        when the memory decoders do not)."""
        await quiesce(self.config)
        self.quiesced = True

    async def gone(self) -> bool:
        """The registers read all ones: the card does not decode. Stop it
        mastering and interrupting and let the watchdog recover it now.
        Claims the interrupt only the first time: afterwards INTx# is
        disabled, so it is someone else's."""
        if self.quiesced:
            return False
        self.counters["gone"] += 1
        self.kernel.printf(f"{self.name}: registers read all ones: device not responding")
        await self.quiesce()
        self.wd.kick()
        return True

    async def stop(self) -> None:
        """Make sure the card can no longer touch host memory: its reset, or
        (the reset fails, or the card reads all ones) Bus Master Enable off."""
        if not self.quiesced and not await self.reset_board():
            await self.quiesce()

    async def reenable(self) -> bool:
        """After :meth:`stop`: if the card was quiesced, reset it with decoders
        on and mastering off; then Memory Space and Bus Master Enable on.
        False: the card still does not respond (left with mastering off)."""
        if self.quiesced:
            await restore_command(self.config, master=False)
            if not await self.reset_board():
                return False
        await restore_command(self.config, master=True)
        self.quiesced = False
        return True

    # subclasses: async _recover(err, why), _idle() -> bool
    async def _recover(self, err: int, why: str) -> None:  # pragma: no cover
        raise NotImplementedError

    def _idle(self) -> bool:  # pragma: no cover
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} at pci0 dev {self.dev.slot}>"
