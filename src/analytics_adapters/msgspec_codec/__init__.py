"""Typed JSON decoding of stream payloads with msgspec."""

from analytics_adapters.msgspec_codec.decoder import MsgspecEventDecoder

__all__ = ["MsgspecEventDecoder"]
