"""One socket write per response: uvicorn's HTTP protocol with its writes coalesced (issue 11).

uvicorn writes a response's status line and headers (`http.response.start`) and then its
body (`http.response.body`) with two `transport.write` calls, so two `send` system calls
and, on loopback, two segments the client reads separately: 23 % of the server's samples
under load were these writes (docs/decisions.md, "HTTP load generator and server CPU per
request (session 17)"). `CoalescingTransport` keeps the writes given in one turn of the
event loop and sends them joined at the end of that turn (`loop.call_soon`), so a response
whose start and body are sent without waiting in between (every Response but a stream that
waits for its data) leaves in one write.

Shapes and bounds:
- bytes go out in the order written; nothing written is held past the current turn of the
  loop, and a write that would hold more than `MAX_HELD` bytes (64 KiB, asyncio's default
  high-water mark) sends what is held at once, so a body too large to coalesce still meets
  the transport's flow control (pause_writing) as before;
- `close()` sends what is held first; `abort()` drops it (as the transport drops its
  buffer); a transport already closing gets nothing more;
- everything else (`get_extra_info`, `pause_reading`, `is_closing`, ...) is the transport's.

`CoalescingHttpToolsProtocol` is the protocol class `partnerfleet serve` gives uvicorn
(`http=`): httptools' (a dependency, as uvicorn would choose) with this transport.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol  # httptools: a dependency

MAX_HELD = 64 * 1024


class CoalescingTransport:
    """`transport`, its writes of one turn of `loop` sent as one (see the module)."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []
        self._size = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Hold `data` until the end of this turn of the loop (or send at once past MAX_HELD)."""
        if not data:
            return
        if self._size + len(data) > MAX_HELD:
            self.flush()
            self._transport.write(data)
            return
        if not self._held:
            self._loop.call_soon(self.flush)
        self._held.append(bytes(data))
        self._size += len(data)

    def flush(self) -> None:
        """Send what is held, joined (nothing once the transport is closing)."""
        if not self._held:
            return
        held = self._held[0] if len(self._held) == 1 else b"".join(self._held)
        self._held, self._size = [], 0
        if not self._transport.is_closing():
            self._transport.write(held)

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + self._size

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held, self._size = [], 0
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol writing through a CoalescingTransport."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        coalescing: Any = CoalescingTransport(transport, self.loop)
        super().connection_made(coalescing)
