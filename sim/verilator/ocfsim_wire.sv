// A NIC's wire port buffers for the Verilator build of the machine
// (hw/net/wire_port.py, WireStore with blackbox=True).
//
// A blackbox for the Amaranth side; storage lives in C (ocfsim_wire.c), one
// set of buffers per PORT (the NIC's slot), so that Python maps the same
// bytes directly (sim/verilator/direct.py) and a frame costs one memmove.
//
//   tx_*   the port writes a transmit frame's dwords (word address);
//   meta_* the port writes a transmit entry's length and end cycle;
//   rx_*   the port reads a receive entry's dwords: rx_data is registered,
//          valid the cycle after rx_en, held otherwise.
// Bytes are stored in wire order (byte address = 4 * word address + lane).
module ocfsim_wire #(
    parameter int PORT = 1,            // the NIC's slot, 1..15
    parameter int ADDR_W = 11,         // dword-address width of each buffer
    parameter int QUEUE = 4,           // entries per buffer
    parameter int QUEUE_W = 2          // width of an entry number
) (
    input  wire               clk,
    input  wire               tx_en,
    input  wire [ADDR_W-1:0]  tx_addr,
    input  wire [31:0]        tx_data,
    input  wire               meta_en,
    input  wire [QUEUE_W-1:0] meta_addr,
    input  wire [15:0]        meta_len,
    input  wire [63:0]        meta_cycle,
    input  wire               rx_en,
    input  wire [ADDR_W-1:0]  rx_addr,
    output reg  [31:0]        rx_data
);
    import "DPI-C" function void ocfsim_wire_init(input int unsigned port,
                                                  input int unsigned words,
                                                  input int unsigned entries);
    import "DPI-C" function void ocfsim_wire_tx(input int unsigned port,
                                                input int unsigned addr,
                                                input int unsigned data);
    import "DPI-C" function void ocfsim_wire_meta(input int unsigned port,
                                                  input int unsigned entry,
                                                  input int unsigned len,
                                                  input longint unsigned cycle);
    import "DPI-C" function int unsigned ocfsim_wire_rx(input int unsigned port,
                                                        input int unsigned addr);

    initial begin
        rx_data = 32'h0;
        ocfsim_wire_init(PORT, 1 << ADDR_W, QUEUE);
    end

    always @(posedge clk) begin
        if (rx_en) rx_data <= ocfsim_wire_rx(PORT, 32'(rx_addr));
        if (tx_en) ocfsim_wire_tx(PORT, 32'(tx_addr), tx_data);
        if (meta_en) ocfsim_wire_meta(PORT, 32'(meta_addr), 32'(meta_len), meta_cycle);
    end
endmodule
