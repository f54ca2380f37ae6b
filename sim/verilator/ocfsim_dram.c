/* Storage of the `ocfsim_dram` module (ocfsim_dram.sv), shared with Python.
 *
 * The SV side calls the three DPI-C functions below; Python (the cocotb
 * process, sim/backend_verilator.py) finds ocfsim_dram_base/_bytes with
 * ctypes in the simulator executable (exported with
 * -Wl,--export-dynamic-symbol=ocfsim_dram_*) and memmoves bulk data.
 * Bytes are stored in bus order (byte address = 4 * word address + lane), so
 * the layout is the same on any host endianness.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#ifdef __cplusplus
extern "C" {
#endif

static uint8_t *ocfsim_dram_mem;   /* 4 << addr_w bytes, zero-filled */
static uint64_t ocfsim_dram_len;   /* its size in bytes */

void ocfsim_dram_init(unsigned int addr_w) {
    uint64_t len = (uint64_t)4 << addr_w;  /* 4 bytes per 32-bit word */
    if (ocfsim_dram_mem != NULL) {
        if (len == ocfsim_dram_len) return;  /* re-run of the initial block */
        fprintf(stderr, "ocfsim_dram: a second instance with another size "
                        "(only one host DRAM per simulation)\n");
        abort();
    }
    if (addr_w > 30) {  /* 4 GiB: the 32-bit PCI address space */
        fprintf(stderr, "ocfsim_dram: ADDR_W=%u too large\n", addr_w);
        abort();
    }
    ocfsim_dram_mem = (uint8_t *)calloc(len, 1);
    if (ocfsim_dram_mem == NULL) {
        fprintf(stderr, "ocfsim_dram: cannot allocate %llu bytes\n",
                (unsigned long long)len);
        abort();
    }
    ocfsim_dram_len = len;
}

unsigned int ocfsim_dram_read(unsigned int addr) {
    const uint8_t *p = ocfsim_dram_mem + (((uint64_t)addr << 2) & (ocfsim_dram_len - 1));
    return (unsigned int)p[0] | (unsigned int)p[1] << 8
         | (unsigned int)p[2] << 16 | (unsigned int)p[3] << 24;
}

void ocfsim_dram_write(unsigned int addr, unsigned int data, unsigned int be) {
    uint8_t *p = ocfsim_dram_mem + (((uint64_t)addr << 2) & (ocfsim_dram_len - 1));
    for (int lane = 0; lane < 4; lane++)
        if (be & (1u << lane)) p[lane] = (uint8_t)(data >> (8 * lane));
}

/* For Python: the buffer and its size (NULL/0 before the initial block ran). */
void *ocfsim_dram_base(void) { return ocfsim_dram_mem; }
uint64_t ocfsim_dram_bytes(void) { return ocfsim_dram_len; }

#ifdef __cplusplus
}
#endif
