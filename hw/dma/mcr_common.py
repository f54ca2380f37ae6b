"""What the record engine's components share: request and tag layouts, read
destinations, the dword indices of the record and context words, and the
byte-enable helpers. Formats come from :mod:`hw.cards.ubsecreg`."""

from amaranth.hdl import Mux, Shape
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import Out

from ..cards.ubsecreg import ContextLong, McrPacket, PktBuf

__all__ = ["Dest", "request_layout", "tag_layout", "RequestSignature", "WordBusSignature",
           "count_bits", "dword_of", "in_word", "low_be", "end_be",
           "P_HDR", "P_CTXP", "P_IPKT", "P_PKTLEN", "P_OPKT", "PKTBUF_WORDS",
           "C_FLAGS", "C_KEY", "C_IV", "C_INNER", "C_OUTER"]


class Dest(enum.Enum, shape=3):
    """Where the words of a read go (carried in the tag FIFO)."""
    DATA = 0          # packet data: the data FIFO, then the transform engine
    PKT0 = 1          # the record's header and first packet
    PKT1 = 2          # a further packet
    CTX = 3           # a packet context
    IN = 4            # a further input particle
    OUT = 5           # a further output particle


def count_bits(chunk: int) -> int:
    """Width of a command's dword count: the largest command is a data burst
    (``chunk``), a context (20 dwords) or a first packet (9)."""
    return max(chunk, 20, 9).bit_length() + 1


def request_layout(cw: int) -> data.StructLayout:
    """One initiator request of a record-engine component."""
    return data.StructLayout({
        "addr": 32, "count": cw, "read": 1, "dest": Dest,
        "first_be": 4, "last_be": 4,
        "tag_last": 1,            # data read: holds the packet's final byte
    })


def tag_layout(cw: int) -> data.StructLayout:
    """What the tag FIFO remembers of a read until its data has come back."""
    return data.StructLayout({"dest": Dest, "count": cw, "first_be": 4, "last_be": 4,
                              "last": 1})


def RequestSignature(cw: int) -> stream.Signature:
    """A component's requests to the issuer (``ready``: granted this clock)."""
    return stream.Signature(request_layout(cw))


def WordBusSignature(index_bits: int) -> wiring.Signature:
    """Descriptor words as they arrive: ``valid`` for one clock, the dword's
    ``index`` in its structure and the ``word``."""
    return wiring.Signature({"valid": Out(1), "index": Out(index_bits), "word": Out(32)})


def _bit_offset(layout, *path):
    off, shape = 0, layout
    for p in path:
        f = data.Layout.cast(shape)[p]
        off += f.offset
        shape = f.shape
    return off, shape


def dword_of(layout, *path) -> int:
    """Dword index of a field of a layout."""
    return _bit_offset(layout, *path)[0] // 32


def in_word(word, layout, *path):
    """The field ``path`` of ``layout`` in ``word``, the dword that holds it
    (as a view when the field is itself a layout)."""
    off, shape = _bit_offset(layout, *path)
    lo = off % 32
    bits = word[lo:lo + Shape.cast(shape).width]
    return data.View(shape, bits) if isinstance(shape, (data.Layout, type)) else bits


# dword indices within "header + packet" (index 0 = header, 1.. = McrPacket)
P_HDR = 0
P_CTXP = 1 + dword_of(McrPacket, "ctxp")
P_IPKT = 1 + dword_of(McrPacket, "ipkt")          # addr, next, len follow
P_PKTLEN = 1 + dword_of(McrPacket, "pktlen")
P_OPKT = 1 + dword_of(McrPacket, "opkt")
PKTBUF_WORDS = data.Layout.cast(PktBuf).size // 32
# dword indices within the context
C_FLAGS = dword_of(ContextLong, "flags")
C_KEY = dword_of(ContextLong, "deskey")
C_IV = dword_of(ContextLong, "iv")
C_INNER = dword_of(ContextLong, "hminner")
C_OUTER = dword_of(ContextLong, "hmouter")
assert (P_IPKT, P_PKTLEN, P_OPKT, C_KEY, C_IV, C_INNER, C_OUTER) == (2, 5, 6, 2, 8, 10, 15)


def low_be(lane):
    """Byte enables of lanes >= lane (1 = enabled)."""
    return Mux(lane == 0, 0xF, Mux(lane == 1, 0xE, Mux(lane == 2, 0xC, 0x8)))


def end_be(end_lane):
    """Byte enables of lanes below end_lane (0 = all four)."""
    return Mux(end_lane == 0, 0xF, Mux(end_lane == 1, 0x1, Mux(end_lane == 2, 0x3, 0x7)))
