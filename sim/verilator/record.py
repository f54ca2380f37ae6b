"""Records of the host's inputs, for the raw harness (:mod:`sim.verilator.raw`).

:class:`Recorder` is mixed into a Verilator backend (the cocotb one or the
direct one); the backend provides ``edge_index()``, the number of rising
edges made so far (the index of the falling edge it stands on). Every
:meth:`set` and :meth:`dram_write` is logged with that index: the bus cycle
before whose rising edge it takes effect. The record is text lines
``S cycle input-index value``, ``D cycle addr n`` followed by the n bytes and
a newline, ``W cycle slot*256+entry n`` followed by the n bytes of a wire
port's receive entry (``hw.net.wire_port``: length dword, frame, padding)
and a newline, and a final ``E cycle``.
"""

from __future__ import annotations

import json

__all__ = ["Recorder"]


class Recorder:
    """Mixin: log inputs and DRAM backdoor writes; :meth:`save` the record."""

    def _init_record(self, inputs: list[str]) -> None:
        self._index = {name: i for i, name in enumerate(inputs)}
        self._events: list[bytes] = []

    def set(self, port: str, value: int) -> None:
        super().set(port, value)
        self._events.append(b"S %d %d %d\n" % (self.edge_index(), self._index[port],
                                               int(value)))

    def dram_write(self, addr: int, data: bytes) -> None:
        data = bytes(data)
        super().dram_write(addr, data)
        self._events.append(b"D %d %d %d\n" % (self.edge_index(), addr, len(data))
                            + data + b"\n")

    def wire_rx_write(self, slot: int, entry: int, frame: bytes) -> None:
        frame = bytes(frame)
        super().wire_rx_write(slot, entry, frame)
        data = len(frame).to_bytes(4, "little") + frame + bytes(-len(frame) % 4)
        self._events.append(b"W %d %d %d\n" % (self.edge_index(), slot << 8 | entry, len(data))
                            + data + b"\n")

    def save(self, path: str, outputs: list[str]) -> None:
        """Write the record to ``path``, the output ports' values now to
        ``path.json`` and host DRAM now to ``path.dram``."""
        end = self.edge_index()
        with open(path, "wb") as f:
            f.writelines(self._events)
            f.write(b"E %d\n" % end)
        with open(f"{path}.json", "w") as f:
            json.dump({"cycles": end, "outputs": {p: self.get(p) for p in outputs}}, f)
        with open(f"{path}.dram", "wb") as f:
            f.write(self.dram_read(0, self.dram_size))
