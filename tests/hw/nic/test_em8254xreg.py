"""hw.cards.em8254xreg against the numbers of Intel's e1000_hw.h as OpenBSD
(if_em_hw.h) and QEMU (its e1000_regs.h) print them, and the legacy
descriptor layouts against the C structs (written here with struct)."""

import struct

from hw import structs
from hw.cards import em8254xreg as e

# E1000_<REG> offsets, as printed in e1000_regs.h / if_em_hw.h
OFFSETS = {
    "CTRL": 0x00000, "STATUS": 0x00008, "EECD": 0x00010, "EERD": 0x00014,
    "ICR": 0x000C0, "ITR": 0x000C4, "ICS": 0x000C8, "IMS": 0x000D0, "IMC": 0x000D8,
    "RCTL": 0x00100, "TCTL": 0x00400, "TIPG": 0x00410,
    "RDBAL": 0x02800, "RDBAH": 0x02804, "RDLEN": 0x02808, "RDH": 0x02810, "RDT": 0x02818,
    "RDTR": 0x02820, "RADV": 0x0282C,
    "TDBAL": 0x03800, "TDBAH": 0x03804, "TDLEN": 0x03808, "TDH": 0x03810, "TDT": 0x03818,
    "TIDV": 0x03820, "TADV": 0x0382C,
    "CRCERRS": 0x04000, "MPC": 0x04010, "GPRC": 0x04074, "GPTC": 0x04080,
    "GORCL": 0x04088, "GORCH": 0x0408C, "GOTCL": 0x04090, "GOTCH": 0x04094,
    "RNBC": 0x040A0, "ROC": 0x040AC, "TPR": 0x040D0, "TPT": 0x040D4,
    "RAL0": 0x05400, "RAH0": 0x05404,
}
MASKS = {
    ("CTRL", "fd"): 0x1, ("CTRL", "lrst"): 0x8, ("CTRL", "asde"): 0x20,
    ("CTRL", "slu"): 0x40, ("CTRL", "frcspd"): 0x800, ("CTRL", "frcdpx"): 0x1000,
    ("CTRL", "rst"): 0x04000000, ("CTRL", "rfce"): 0x08000000,
    ("CTRL", "tfce"): 0x10000000, ("CTRL", "vme"): 0x40000000,
    ("CTRL", "phy_rst"): 0x80000000,
    ("STATUS", "fd"): 0x1, ("STATUS", "lu"): 0x2, ("STATUS", "txoff"): 0x10,
    ("STATUS", "tbimode"): 0x20, ("STATUS", "speed"): 0xC0, ("STATUS", "pci66"): 0x800,
    ("STATUS", "bus64"): 0x1000, ("STATUS", "pcix_mode"): 0x2000,
    ("RCTL", "en"): 0x2, ("RCTL", "sbp"): 0x4, ("RCTL", "upe"): 0x8, ("RCTL", "mpe"): 0x10,
    ("RCTL", "lpe"): 0x20, ("RCTL", "lbm"): 0xC0, ("RCTL", "rdmts"): 0x300,
    ("RCTL", "mo"): 0x3000, ("RCTL", "bam"): 0x8000, ("RCTL", "bsize"): 0x30000,
    ("RCTL", "bsex"): 0x02000000, ("RCTL", "secrc"): 0x04000000,
    ("TCTL", "en"): 0x2, ("TCTL", "psp"): 0x8, ("TCTL", "ct"): 0xFF0,
    ("TCTL", "cold"): 0x3FF000, ("TCTL", "rtlc"): 0x01000000,
    ("RAH0", "av"): 0x80000000, ("RDTR", "fpd"): 0x80000000,
}
CAUSES = {"txdw": 0x1, "txqe": 0x2, "lsc": 0x4, "rxseq": 0x8, "rxdmt0": 0x10,
          "rxo": 0x40, "rxt0": 0x80, "mdac": 0x200, "rxcfg": 0x400, "txd_low": 0x8000,
          "srpd": 0x10000}


def test_identity():
    assert (e.VENDOR_ID, e.DEVICE_ID) == (0x8086, 0x100C)   # E1000_DEV_ID_82544GC_COPPER
    assert e.CLASS_CODE == 0x020000 and e.BAR_SIZE == 0x20000


def test_offsets_and_bits():
    for name, off in OFFSETS.items():
        assert getattr(e.EM_REGS, name).offset == off, name
    for (reg, f), mask in MASKS.items():
        assert getattr(e.EM_REGS, reg).field(f).mask == mask, (reg, f)
    for reg in (e.ICR, e.ICS, e.IMS, e.IMC):
        for f, mask in CAUSES.items():
            assert reg.field(f).mask == mask, (reg.name, f)
    assert e.IMS_ENABLE_MASK == 0x9D            # RXT0|TXDW|RXDMT0|RXSEQ|LSC
    assert e.LBM_MAC << e.RCTL.lbm.lsb == 0x40  # E1000_RCTL_LBM_MAC
    assert e.RDMTS_QUARTER << e.RCTL.rdmts.lsb == 0x100
    assert e.STATUS_SPEED_1000 << e.STATUS.speed.lsb == 0x80
    assert [e.rx_buffer_size(b, 0) for b in range(4)] == [2048, 1024, 512, 256]
    assert [e.rx_buffer_size(b, 1) for b in (1, 2, 3)] == [16384, 8192, 4096]


def test_descriptors_are_the_c_structs():
    # struct em_tx_desc { u64 buffer_addr; u16 length; u8 cso; u8 cmd; u8 status;
    #                     u8 css; u16 special; }
    raw = struct.pack("<QHBBBBH", 0x1234_5678, 1514, 7, 0x0B, 1, 9, 0xABCD)
    assert structs.unpack(e.TxDesc, raw) == {
        "addr": 0x1234_5678, "length": 1514, "cso": 7,
        "cmd": {"eop": 1, "ifcs": 1, "ic": 0, "rs": 1, "rps": 0, "dext": 0, "vle": 0, "ide": 0},
        "status": {"dd": 1, "ec": 0, "lc": 0, "tu": 0, "rsv": 0}, "css": 9, "special": 0xABCD}
    # struct em_rx_desc { u64 buffer_addr; u16 length; u16 csum; u8 status;
    #                     u8 errors; u16 special; }
    raw = struct.pack("<QHHBBH", 0x2000, 64, 0x5555, 0x03, 0x01, 0)
    d = structs.unpack(e.RxDesc, raw)
    assert (d["length"], d["csum"], d["status"]["dd"], d["status"]["eop"], d["errors"]["ce"]) \
        == (64, 0x5555, 1, 1, 1)
    assert e.DESC_BYTES == 16 and e.RING_ALIGN == 8 * e.DESC_BYTES


def test_eeprom_image_checksum():
    mac = bytes.fromhex("0002b3123456")
    w = e.eeprom_image(mac)
    assert w[:3] == [0x0200, 0x12B3, 0x5634]
    assert sum(w) & 0xFFFF == e.EEPROM_SUM      # if_em_hw.h EEPROM_SUM 0xBABA
