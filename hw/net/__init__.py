"""Ethernet MAC blocks of the NIC model: CRC-32, byte packing, transmit and
receive MACs (:mod:`hw.net.mac`). Pure RTL, no knowledge of PCI."""
