"""One socket write per response (infra/http/coalesce.py): the writes of one turn of the
event loop leave joined, in order, and no later than the end of that turn; large bodies
still meet flow control; close sends, abort drops. Then uvicorn with the protocol, over a
real socket: pages, streams, large bodies, HEAD, keep-alive and Connection: close."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from infra.http.coalesce import MAX_HELD, CoalescingHttpToolsProtocol, CoalescingTransport


class FakeTransport:
    """Records what is written, and whether it was closed or aborted."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closing = False
        self.aborted = False
        self.buffered = 7

    def write(self, data: bytes) -> None:
        assert not self.closing, "written after close"
        self.written.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = self.aborted = True

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 1) if name == "peername" else default


def run_turns(work: Any) -> Any:
    """`work(loop)` on a fresh event loop, then the loop's pending callbacks run."""

    async def main() -> Any:
        result = work(asyncio.get_running_loop())
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return result

    return asyncio.run(main())


def test_the_writes_of_one_turn_leave_as_one_at_its_end() -> None:
    fake = FakeTransport()

    def work(loop: asyncio.AbstractEventLoop) -> list[bytes]:
        coalescing = CoalescingTransport(fake, loop)  # type: ignore[arg-type]
        coalescing.write(b"HTTP/1.1 200 OK\r\n\r\n")
        coalescing.write(b"")
        coalescing.write(memoryview(b"body"))
        seen_in_turn = list(fake.written)
        assert coalescing.get_write_buffer_size() == 7 + 23
        return seen_in_turn

    assert run_turns(work) == []
    assert fake.written == [b"HTTP/1.1 200 OK\r\n\r\nbody"]


def test_a_write_past_the_bound_sends_what_is_held_first_then_itself() -> None:
    fake = FakeTransport()
    large = b"x" * MAX_HELD

    def work(loop: asyncio.AbstractEventLoop) -> list[bytes]:
        coalescing = CoalescingTransport(fake, loop)  # type: ignore[arg-type]
        coalescing.write(b"head")
        coalescing.write(large)  # at once: the transport's flow control sees it
        in_turn = list(fake.written)
        coalescing.write(b"tail")
        return in_turn

    assert run_turns(work) == [b"head", large]
    assert fake.written == [b"head", large, b"tail"]


def test_close_sends_what_is_held_and_abort_drops_it() -> None:
    closed, aborted = FakeTransport(), FakeTransport()

    def work(loop: asyncio.AbstractEventLoop) -> None:
        first = CoalescingTransport(closed, loop)  # type: ignore[arg-type]
        first.write(b"last words")
        first.close()
        second = CoalescingTransport(aborted, loop)  # type: ignore[arg-type]
        second.write(b"dropped")
        second.abort()

    run_turns(work)

    assert closed.written == [b"last words"]
    assert closed.closing
    assert aborted.written == []
    assert aborted.aborted


def test_nothing_is_written_to_a_transport_already_closing_and_the_rest_is_its_own() -> None:
    fake = FakeTransport()

    def work(loop: asyncio.AbstractEventLoop) -> Any:
        coalescing = CoalescingTransport(fake, loop)  # type: ignore[arg-type]
        coalescing.write(b"too late")
        fake.closing = True  # the peer went away within the turn
        return coalescing.get_extra_info("peername")

    assert run_turns(work) == ("127.0.0.1", 1)
    assert fake.written == []


# --- uvicorn with the protocol, over a real socket -------------------------------------------

PAGE = b'{"items": [' + b",".join(b'{"n": %d}' % n for n in range(500)) + b"]}"
LARGE = bytes(range(256)) * 1024  # 256 KiB: past MAX_HELD


async def page(request: Request) -> Response:
    return Response(PAGE, media_type="application/json")


async def large(request: Request) -> Response:
    return Response(LARGE, media_type="application/octet-stream")


async def stream(request: Request) -> StreamingResponse:
    async def parts() -> AsyncIterator[bytes]:
        for n in range(3):
            await asyncio.sleep(0.01)  # the body's parts in turns of their own
            yield b"part %d;" % n

    return StreamingResponse(parts(), media_type="text/plain")


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    app = Starlette(routes=[Route("/page", page), Route("/large", large), Route("/stream", stream)])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, http=CoalescingHttpToolsProtocol, log_level="warning")
    served = uvicorn.Server(config)
    thread = threading.Thread(target=served.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not served.started:
        threading.Event().wait(0.01)
    yield f"http://127.0.0.1:{port}"
    served.should_exit = True
    thread.join(10)
    sock.close()


def test_pages_streams_and_large_bodies_arrive_whole_on_one_keep_alive_connection(
    server: str,
) -> None:
    with httpx.Client(base_url=server) as client:
        answers = [client.get(path) for path in ("/page", "/large", "/stream", "/page")]
        head = client.head("/page")

    assert [a.status_code for a in answers] == [200, 200, 200, 200]
    assert answers[0].content == PAGE
    assert answers[0].headers["content-length"] == str(len(PAGE))
    assert answers[1].content == LARGE
    assert answers[2].content == b"part 0;part 1;part 2;"
    assert answers[2].headers["transfer-encoding"] == "chunked"
    assert answers[3].content == PAGE
    assert head.status_code == 200
    assert head.content == b""


def test_pipelined_requests_and_connection_close_over_a_raw_socket(server: str) -> None:
    port = int(server.rsplit(":", 1)[1])
    request = b"GET /page HTTP/1.1\r\nHost: x\r\n\r\n"
    last = b"GET /page HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request + request + last)
        received = b""
        while chunk := sock.recv(65536):  # the server closes after the third
            received += chunk

    assert received.count(b"HTTP/1.1 200 OK\r\n") == 3
    assert received.count(PAGE) == 3
    assert received.endswith(PAGE)
    assert b"connection: close\r\n" in received
