// Host DRAM for the Verilator build of the machine.
//
// A blackbox for the Amaranth side (the machine instantiates `ocfsim_dram`);
// storage lives in C (ocfsim_dram.c) so that Python maps the same bytes
// directly (sim/backend_verilator.py) and bulk backdoor access is one memmove.
//
// Ports: word-addressed, one read and one write port, both synchronous.
//   rd_data is registered: valid the cycle after rd_en, held otherwise.
//   wr_be bit i enables byte i of wr_data (little-endian: byte i = bits 8i+7..8i).
//   A read and a write of the same word in one cycle return the old data
//   (the read is done before the write below).
// Only one instance per simulation (the C storage is a single buffer).
module ocfsim_dram #(
    parameter int ADDR_W = 20          // word-address width; depth = 2**ADDR_W words
) (
    input  wire              clk,
    input  wire              rd_en,
    input  wire [ADDR_W-1:0] rd_addr,
    output reg  [31:0]       rd_data,
    input  wire              wr_en,
    input  wire [ADDR_W-1:0] wr_addr,
    input  wire [31:0]       wr_data,
    input  wire [3:0]        wr_be
);
    import "DPI-C" function void ocfsim_dram_init(input int unsigned addr_w);
    import "DPI-C" function int unsigned ocfsim_dram_read(input int unsigned addr);
    import "DPI-C" function void ocfsim_dram_write(input int unsigned addr,
                                                   input int unsigned data,
                                                   input int unsigned be);

    initial begin
        rd_data = 32'h0;
        ocfsim_dram_init(ADDR_W);
    end

    always @(posedge clk) begin
        if (rd_en) rd_data <= ocfsim_dram_read(32'(rd_addr));
        if (wr_en) ocfsim_dram_write(32'(wr_addr), wr_data, 32'(wr_be));
    end
endmodule

// The same host DRAM with 64-bit ports (a 64-bit host bridge, PCI 2.3 §3.8):
// quadword-addressed; quadword q is dwords 2q (bits 31..0) and 2q+1 (63..32)
// of the one C buffer, so the backdoor sees the same little-endian bytes.
module ocfsim_dram64 #(
    parameter int ADDR_W = 19          // quadword-address width; depth = 2**ADDR_W quadwords
) (
    input  wire              clk,
    input  wire              rd_en,
    input  wire [ADDR_W-1:0] rd_addr,
    output reg  [63:0]       rd_data,
    input  wire              wr_en,
    input  wire [ADDR_W-1:0] wr_addr,
    input  wire [63:0]       wr_data,
    input  wire [7:0]        wr_be
);
    import "DPI-C" function void ocfsim_dram_init(input int unsigned addr_w);
    import "DPI-C" function int unsigned ocfsim_dram_read(input int unsigned addr);
    import "DPI-C" function void ocfsim_dram_write(input int unsigned addr,
                                                   input int unsigned data,
                                                   input int unsigned be);

    initial begin
        rd_data = 64'h0;
        ocfsim_dram_init(ADDR_W + 1);
    end

    always @(posedge clk) begin
        if (rd_en) rd_data <= {ocfsim_dram_read(32'({rd_addr, 1'b1})),
                               ocfsim_dram_read(32'({rd_addr, 1'b0}))};
        if (wr_en) begin
            if (wr_be[3:0] != 4'h0)
                ocfsim_dram_write(32'({wr_addr, 1'b0}), wr_data[31:0], 32'(wr_be[3:0]));
            if (wr_be[7:4] != 4'h0)
                ocfsim_dram_write(32'({wr_addr, 1'b1}), wr_data[63:32], 32'(wr_be[7:4]));
        end
    end
endmodule
