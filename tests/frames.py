"""Reading the telemetry descriptor's frames, as Lambda does: type, length, timestamp, message."""

from __future__ import annotations

import struct

HEADER = struct.Struct(">IIQ")
# The managed runtime's frame types.
TEXT, TEXT_ERROR = 0xA55A0003, 0xA55A0017
JSON_WARNING, JSON_ERROR = 0xA55A0012, 0xA55A0016


def read_frames(data: bytes) -> list[tuple[int, int, str]]:
    """(type, timestamp in microseconds, message) of each frame; fails on a torn or interleaved one."""
    frames = []
    while data:
        assert len(data) >= HEADER.size, f"a torn frame header: {data[:40]!r}"
        kind, length, timestamp = HEADER.unpack_from(data)
        assert kind >> 16 == 0xA55A, f"not a frame: {data[:40]!r}"
        message = data[HEADER.size : HEADER.size + length]
        assert len(message) == length, "a torn frame"
        frames.append((kind, timestamp, message.decode()))
        data = data[HEADER.size + length :]
    return frames
