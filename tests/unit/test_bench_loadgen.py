"""The HTTP benchmarks' load generator (bench/loadgen.py): wrk's latencies taken back from
its coordinated-omission correction, and both generators checking every answer."""

from __future__ import annotations

import os
import shutil
import socket
import socketserver
import threading
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.loadgen import LoadError, closed_loop, request_bytes, uncorrected

PAGE = b'{"items": []}'


def wrk_corrected(histogram: dict[int, int], interval: int) -> dict[int, int]:
    """What wrk 4's stats_correct makes of `histogram` (us -> count): for each latency n
    from 2 x interval up, its count added at n - interval, n - 2 x interval, ... while
    above interval (wrk's src/stats.c, transcribed)."""
    out = dict(histogram)
    for n in sorted(histogram):  # the latencies below 2 x interval add nothing
        count = histogram[n] if n >= 2 * interval else 0
        m = n - interval
        while count and m > interval:
            out[m] = out.get(m, 0) + count
            m -= interval
    return {n: c for n, c in out.items() if c}


@given(
    st.dictionaries(st.integers(1, 3_000), st.integers(1, 50), max_size=60),
    st.integers(1, 700),
)
def test_uncorrected_gives_back_what_wrk_measured(histogram: dict[int, int], interval: int) -> None:
    assert uncorrected(wrk_corrected(histogram, interval), interval) == histogram


def test_a_histogram_wrk_did_not_correct_so_is_refused() -> None:
    """A count that would go below 0 cannot come from wrk's correction."""
    with pytest.raises(ValueError, match="no wrk correction"):
        uncorrected({100: 1, 300: 1}, 100)  # 300 would have added one at 200


def test_no_interval_leaves_the_histogram_as_it_is() -> None:
    assert uncorrected({5: 2, 900: 1}, 0) == {5: 2, 900: 1}


def test_the_request_is_a_keep_alive_get_with_its_headers() -> None:
    sent = request_bytes("http://127.0.0.1:8000/p/x?limit=50", {"Authorization": "Bearer t"})

    assert sent == (
        b"GET /p/x?limit=50 HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nAuthorization: Bearer t\r\n\r\n"
    )


class _Answers(socketserver.StreamRequestHandler):
    """Answers each request on a keep-alive connection with the server's `answer`."""

    def handle(self) -> None:
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while True:
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                line = self.rfile.readline()
                if not line:
                    return
                head += line
            self.wfile.write(self.server.answer)  # type: ignore[attr-defined]


@pytest.fixture
def server() -> Iterator[tuple[socketserver.ThreadingTCPServer, str]]:
    """A loopback HTTP/1.1 server answering 200 with PAGE (its `answer` can be changed)."""
    httpd = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Answers)
    httpd.daemon_threads = True
    httpd.answer = answer(200, PAGE)  # type: ignore[attr-defined]
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd, f"http://127.0.0.1:{httpd.server_address[1]}/page?limit=50"
    httpd.shutdown()
    httpd.server_close()


def answer(status: int, body: bytes) -> bytes:
    """A whole HTTP/1.1 answer with its Content-Length."""
    return f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body


# wrk is the distribution's package: skipped where it is missing, except under
# PARTNERFLEET_REQUIRE_WRK=1 (.ci/run installs it), where its cases must run.
WRK_MISSING = not shutil.which("wrk") and os.environ.get("PARTNERFLEET_REQUIRE_WRK") != "1"
TOOLS = [
    "python",
    pytest.param("wrk", marks=pytest.mark.skipif(WRK_MISSING, reason="no wrk")),
]


@pytest.mark.parametrize("tool", TOOLS)
def test_a_closed_loop_checks_every_answer(
    server: tuple[socketserver.ThreadingTCPServer, str], tool: str
) -> None:
    _, url = server

    run = closed_loop(url, {"Authorization": "Bearer t"}, PAGE, 0.5, 3, tool=tool)

    assert run.tool == tool
    assert run.count > 3
    assert min(run.latencies) > 0
    assert run.seconds > 0


@pytest.mark.parametrize("tool", TOOLS)
@pytest.mark.parametrize(
    "given", [answer(200, b'{"items": [1]}'), answer(404, PAGE), answer(500, b"")]
)
def test_an_unexpected_answer_fails_the_load(
    server: tuple[socketserver.ThreadingTCPServer, str], tool: str, given: bytes
) -> None:
    httpd, url = server
    httpd.answer = given  # type: ignore[attr-defined]

    with pytest.raises(LoadError):
        closed_loop(url, {}, PAGE, 0.5, 2, tool=tool)


def test_an_unknown_tool_or_no_client_is_refused() -> None:
    with pytest.raises(LoadError, match="unknown load generator"):
        closed_loop("http://127.0.0.1:1/", {}, PAGE, 1.0, 1, tool="ab")
    with pytest.raises(LoadError, match="at least one client"):
        closed_loop("http://127.0.0.1:1/", {}, PAGE, 1.0, 0)
