"""Crypto datapath RTL: DES/3DES-EDE (CBC in the engine), SHA-1, HMAC-SHA1
and the streaming transform engine both cards share (docs/crypto.md).

Per-card engine parameters: :data:`CARD_ENGINE_PARAMS` /
:func:`card_engine_params` (see :mod:`hw.crypto.params`)."""

from .bytestream import BytePacker, WordUnpacker
from .des import DESCore, des_cycles_per_block
from .engine import (Cipher, CommandLayout, EngineState, Mac, MacState, Order,
                     ResultLayout, StatusLayout, TransformEngine, WordLayout)
from .params import CARD_ENGINE_PARAMS, EngineParams, card_engine_params
from .sha1 import SHA1Core, sha1_cycles_per_block

__all__ = ["DESCore", "SHA1Core", "TransformEngine", "Cipher", "Mac", "Order",
           "CommandLayout", "WordLayout", "StatusLayout", "ResultLayout",
           "EngineState", "MacState", "CARD_ENGINE_PARAMS", "EngineParams",
           "card_engine_params", "des_cycles_per_block", "sha1_cycles_per_block",
           "WordUnpacker", "BytePacker"]
