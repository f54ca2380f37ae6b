/* Storage of the `ocfsim_wire` module (ocfsim_wire.sv), shared with Python.
 *
 * One set of buffers per wire port (the NIC's slot): the transmit buffer and
 * the receive buffer (`words` dwords each, bytes in wire order) and the
 * transmit entries' meta (per entry two uint64: length in bytes, bus cycle
 * of the frame's last beat). The SV side calls the DPI-C functions; Python
 * (sim/verilator/direct.py) finds the buffers with the ocfsim_wire_*_base
 * functions through ctypes and memmoves frames.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#ifdef __cplusplus
extern "C" {
#endif

#define OCFSIM_WIRE_PORTS 16   /* slots 1..15 (IDSEL = AD[16 + slot]) */

struct ocfsim_wire {
    uint8_t *tx, *rx;          /* words * 4 bytes each, zero-filled */
    uint64_t *meta;            /* queue * 2 */
    uint32_t words, queue;
};

static struct ocfsim_wire ocfsim_wires[OCFSIM_WIRE_PORTS];

static struct ocfsim_wire *ocfsim_wire_port(unsigned int port) {
    if (port >= OCFSIM_WIRE_PORTS || ocfsim_wires[port].tx == NULL) {
        fprintf(stderr, "ocfsim_wire: no port %u\n", port);
        abort();
    }
    return &ocfsim_wires[port];
}

void ocfsim_wire_init(unsigned int port, unsigned int words, unsigned int queue) {
    struct ocfsim_wire *w;
    if (port >= OCFSIM_WIRE_PORTS) {
        fprintf(stderr, "ocfsim_wire: port %u outside 0..%d\n", port, OCFSIM_WIRE_PORTS - 1);
        abort();
    }
    w = &ocfsim_wires[port];
    if (w->tx != NULL) {
        if (w->words == words && w->queue == queue) return;  /* re-run of the initial block */
        fprintf(stderr, "ocfsim_wire: a second port %u of another size\n", port);
        abort();
    }
    w->tx = (uint8_t *)calloc(words, 4);
    w->rx = (uint8_t *)calloc(words, 4);
    w->meta = (uint64_t *)calloc(2 * (size_t)queue, sizeof(uint64_t));
    if (w->tx == NULL || w->rx == NULL || w->meta == NULL) {
        fprintf(stderr, "ocfsim_wire: cannot allocate port %u\n", port);
        abort();
    }
    w->words = words;
    w->queue = queue;
}

void ocfsim_wire_tx(unsigned int port, unsigned int addr, unsigned int data) {
    struct ocfsim_wire *w = ocfsim_wire_port(port);
    uint8_t *p = w->tx + 4 * (size_t)(addr % w->words);
    for (int lane = 0; lane < 4; lane++) p[lane] = (uint8_t)(data >> (8 * lane));
}

void ocfsim_wire_meta(unsigned int port, unsigned int entry, unsigned int len,
                      uint64_t cycle) {
    struct ocfsim_wire *w = ocfsim_wire_port(port);
    w->meta[2 * (entry % w->queue)] = len;
    w->meta[2 * (entry % w->queue) + 1] = cycle;
}

unsigned int ocfsim_wire_rx(unsigned int port, unsigned int addr) {
    const uint8_t *p = ocfsim_wire_port(port)->rx + 4 * (size_t)(addr % ocfsim_wires[port].words);
    return (unsigned int)p[0] | (unsigned int)p[1] << 8
         | (unsigned int)p[2] << 16 | (unsigned int)p[3] << 24;
}

/* For Python: a port's buffers and their size in dwords (NULL/0 before the
 * initial block ran, or for a slot without a wire port). */
void *ocfsim_wire_tx_base(unsigned int port) {
    return port < OCFSIM_WIRE_PORTS ? ocfsim_wires[port].tx : NULL;
}
void *ocfsim_wire_rx_base(unsigned int port) {
    return port < OCFSIM_WIRE_PORTS ? ocfsim_wires[port].rx : NULL;
}
void *ocfsim_wire_meta_base(unsigned int port) {
    return port < OCFSIM_WIRE_PORTS ? ocfsim_wires[port].meta : NULL;
}
unsigned int ocfsim_wire_words(unsigned int port) {
    return port < OCFSIM_WIRE_PORTS ? ocfsim_wires[port].words : 0;
}

#ifdef __cplusplus
}
#endif
