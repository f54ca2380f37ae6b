"""netinet: the simulated kernel's TCP/IP stack, the wire and the link partner.

* :mod:`netinet.mbuf` — mbufs, clusters and socket buffers in host memory;
* :mod:`netinet.socket` — sockets (``sosend``/``soreceive``, the user requests);
* :mod:`netinet.tcp` — TCP (4.4BSD ``tcp_output``/``tcp_input``/timers);
* :mod:`netinet.proto`, :mod:`netinet.in_cksum` — wire formats and RFC 1071;
* :mod:`netinet.stack` — one host's stack: IP, Ethernet, the ifnet, system calls;
* :mod:`netinet.wire` — the gigabit link, faults, the software interface;
* :mod:`netinet.if_em` — the em NIC as the stack's interface (``EmIf``);
* :mod:`netinet.socrypt` — ``SO_CRYPT``: TLS 1.0 / SSH2 records built in the kernel through OCF;
* :mod:`netinet.pcap` — the capture file;
* :mod:`netinet.partner` — hosts on the link and the link partner.

It uses :mod:`sim` (the loop, the kernel, memory) and nothing above it; a
NIC driver in ``drivers/`` plugs in as an :class:`netinet.stack.IfNet`.
See docs/network.md.
"""
