"""The judge <-> worker protocol: one JSON object per line over a pair of pipes.

JSON, never pickle: the judge must not run code the candidate's process chose. Messages are
bounded in size and checked to be objects; tensors travel separately (tensorio).
"""

from __future__ import annotations

import json
import os
import select
import time
from collections.abc import Callable
from typing import Any

MAX_MESSAGE = 16 << 20


class ChannelClosed(Exception):
    """The other side closed its end (it exited or crashed)."""


class ProtocolError(Exception):
    """The other side wrote something that is not a protocol message."""


class Channel:
    def __init__(self, fd_in: int, fd_out: int):
        self.fd_in = fd_in
        self.fd_out = fd_out
        self._buffer = bytearray()

    def send(self, message: dict[str, Any]) -> None:
        data = json.dumps(message, separators=(",", ":"), allow_nan=False).encode() + b"\n"
        view = memoryview(data)
        while view:
            try:
                written = os.write(self.fd_out, view)
            except BrokenPipeError:
                raise ChannelClosed("the other side closed the channel") from None
            view = view[written:]

    def _take_line(self) -> dict[str, Any] | None:
        end = self._buffer.find(b"\n")
        if end < 0:
            if len(self._buffer) > MAX_MESSAGE:
                raise ProtocolError(f"a message longer than {MAX_MESSAGE} bytes")
            return None
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        try:
            message = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            raise ProtocolError(f"not a JSON message: {line[:120]!r}") from None
        if not isinstance(message, dict):
            raise ProtocolError(f"not a JSON object: {line[:120]!r}")
        return message

    def recv(
        self,
        timeout: float | None = None,
        tick: float = 0.02,
        on_tick: Callable[[], None] | None = None,
    ) -> dict[str, Any] | None:
        """The next message; None when `timeout` seconds pass first. `on_tick` runs every `tick`
        seconds while waiting (the judge polls the worker's memory there) and may raise."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            message = self._take_line()
            if message is not None:
                return message
            wait = tick if on_tick is not None else None
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                wait = left if wait is None else min(wait, left)
            ready, _, _ = select.select([self.fd_in], [], [], wait)
            if ready:
                chunk = os.read(self.fd_in, 1 << 20)
                if not chunk:
                    raise ChannelClosed("the other side closed the channel")
                self._buffer += chunk
            if on_tick is not None:
                on_tick()

    def close(self) -> None:
        for fd in (self.fd_in, self.fd_out):
            try:
                os.close(fd)
            except OSError:
                pass
