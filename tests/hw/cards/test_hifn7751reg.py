"""hw/cards/hifn7751reg.py against the values of OpenBSD's sys/dev/pci/hifn7751reg.h
(the literals below are the header's) and the byte layout of its structures
(checked with the struct module)."""

import struct

import pytest

from hw import structs
from hw.cards import hifn7751reg as h


def test_register_offsets_are_the_headers():
    # HIFN_0_* and HIFN_1_* offsets
    assert [(r.name, r.offset) for r in h.BAR0] == [
        ("PUDATA", 0x00), ("PUCTRL", 0x04), ("PUISR", 0x08), ("PUCNFG", 0x0C),
        ("PUIER", 0x10), ("PUSTAT", 0x14), ("FIFOSTAT", 0x18), ("FIFOCNFG", 0x1C)]
    assert [(r.name, r.offset) for r in h.BAR1] == [
        ("CRAR", 0x0C), ("SRAR", 0x1C), ("RRAR", 0x2C), ("DRAR", 0x3C),
        ("DMA_CSR", 0x40), ("DMA_IER", 0x44), ("DMA_CNFG", 0x48), ("REVID", 0x98),
        ("SECRET1", 0xF4), ("SECRET2", 0xFC)]
    assert {r.bar for r in h.BAR0} == {0} and {r.bar for r in h.BAR1} == {1}
    assert [r.offset for r in h.RING_ADDR] == [0x0C, 0x1C, 0x2C, 0x3C]


def test_register_bits_are_the_headers():
    assert (h.PUCTRL.chip_reset.mask, h.PUCTRL.dmaena.mask) == (0x01, 0x02)
    assert (h.PUISR.cmdinval.mask, h.PUISR.dataerr.mask, h.PUISR.dstover.mask) == \
        (0x8000, 0x4000, 0x0200)
    assert h.PUIER.dstover.mask == 0x0200 and h.PUIER.srcfifo.mask == 0x2000
    assert h.PUCNFG.dram.mask == 0xE000                       # HIFN_PUCNFG_DRAMMASK
    assert h.PUSTAT.chipena.mask == 0xFF00                    # HIFN_PUSTAT_CHIPENA
    assert [e.value << 8 for e in h.PuStatEna] == [0x3000, 0x1000, 0x1100]
    c = h.DMA_CNFG
    assert (c.mstreset.mask, c.dmareset.mask, c.mode.mask, c.last.mask) == \
        (0x01, 0x02, 0x04, 0x10)
    assert (c.pollinval.mask, c.unlock.mask, c.pollfreq.mask, c.bigendian.mask) == \
        (0x700, 0x800, 0x00FF_0000, 0x1000_0000)


@pytest.mark.parametrize("ring,shift", [(h.Ring.CMD, 0), (h.Ring.SRC, 8),
                                        (h.Ring.RES, 16), (h.Ring.DST, 24)])
def test_dma_csr_ring_fields(ring, shift):
    # HIFN_DMACSR_x_CTRLMASK c0, ABORT 20, DONE 10, LAST 08, WAIT 04, OVER 02
    assert h.csr_field(ring, "ctrl").mask == 0xC0 << shift
    assert h.csr_field(ring.value, "abort").mask == 0x20 << shift
    assert h.csr_field(ring, "done").mask == 0x10 << shift
    assert h.csr_field(ring, "last").mask == 0x08 << shift
    assert h.csr_field(ring, "wait").mask == 0x04 << shift
    if ring in (h.Ring.RES, h.Ring.DST):
        assert h.csr_field(ring, "over").mask == 0x02 << shift
    else:                                      # no C/S OVER bits in the header
        with pytest.raises(KeyError):
            h.csr_field(ring, "over")
    assert h.DMA_CSR.bits(**{h.csr_field(ring, "ctrl").name: h.RingCtrl.ENA.value}) == \
        0x80 << shift                           # HIFN_DMACSR_x_CTRL_ENA
    assert h.DMA_IER.field(h.csr_field(ring, "abort").name).mask == 0x20 << shift


def test_dma_csr_summary_masks():
    assert h.DMA_CSR.engine.mask == 0x1                       # HIFN_DMACSR_ENGINE
    assert h.DMACSR_ABORTS == 0x2020_2020
    assert h.DMACSR_STATUS == 0x3C3C_3C3C | 0x0002_0000 | 0x0200_0000


def test_descriptor_bits_and_layout():
    assert (h.D_VALID, h.D_JUMP, h.D_LAST, h.D_OVER, h.D_DESTOVER, h.D_MASKDONEIRQ,
            h.D_LENGTH) == (0x8000_0000, 0x4000_0000, 0x2000_0000, 0x0800_0000,
                            0x0400_0000, 0x0200_0000, 0x0000_FFFF)
    b = structs.pack(h.Descriptor, l=dict(valid=1, last=1, length=100), p=0x1234_5678)
    assert b == struct.pack("<II", 0x8000_0000 | 0x2000_0000 | 100, 0x1234_5678)
    assert (h.D_CMD_RSIZE, h.D_SRC_RSIZE, h.D_RES_RSIZE, h.D_DST_RSIZE) == (24, 80, 24, 80)


def test_command_buffer_layouts_match_struct_pack():
    assert [structs.size(x) for x in (h.BaseCommand, h.MacCommand, h.CryptCommand)] == \
        [8, 8, 8]
    # total counts 0x2_1234 / 0x1_5678 (bits 17:16 in session_num 15:14 / 13:12)
    base = structs.pack(h.BaseCommand, masks=dict(crypt=1, decode=1), session=0x123,
                        src_hi=2, dst_hi=1, src_count=0x1234, dst_count=0x5678)
    assert base == struct.pack("<HHHH", 0x0800 | 0x2000, 0x123 | 2 << 14 | 1 << 12,
                               0x1234, 0x5678)
    mac = structs.pack(h.MacCommand, masks=dict(mode=h.MacMode.HASH, trunc=1, result=1,
                                                pos_ipsec=1, new_key=1, count_hi=3),
                       header_skip=8, source_count=0xABCD)
    assert mac == struct.pack("<HHHH", 0x0008 | 0x0010 | 0x0020 | 0x0200 | 0x0800 | 0xC000,
                              8, 0xABCD, 0)
    cry = structs.pack(h.CryptCommand, masks=dict(alg=h.CryptAlg.TDES, mode=h.CryptMode.CBC,
                                                  new_key=1, new_iv=1, count_hi=1),
                       header_skip=16, source_count=64)
    assert cry == struct.pack("<HHHH", 0x0001 | 0x0008 | 0x0800 | 0x1000 | 0x4000, 16, 64, 0)
    assert h.MAX_COMMAND == 120 and h.MAC_KEY_LENGTH == 64 and h.IV_LENGTH == 8


def test_result_layout_matches_struct_unpack():
    assert structs.size(h.BaseResult) == 8 and structs.size(h.Result) == h.MAX_RESULT == 32
    mac = bytes(range(20))
    buf = struct.pack("<HHHHHH", 0x0200 | 1 << 12 | 2 << 14, 0x7FF, 0x10, 0x20, 0, 0) + mac
    r = structs.unpack(h.Result, buf)
    assert r["base"]["flags"]["dstoverrun"] == 1
    assert (r["base"]["flags"]["dst_hi"], r["base"]["flags"]["src_hi"]) == (1, 2)
    assert (r["base"]["session"], r["base"]["src_count"], r["base"]["dst_count"]) == \
        (0x7FF, 0x10, 0x20)
    assert r["mac"]["mac"].to_bytes(20, "little") == mac
    assert (h.BASE_RES_DSTOVERRUN, h.RES_CMDINVAL, h.RES_DATAERR) == (0x0200, 0x1, 0x2)
