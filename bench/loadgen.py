"""A cheap closed-loop HTTP load generator for the HTTP benchmarks (issue 11, session 17).

`closed_loop(url, headers, expected, seconds, clients)` keeps `clients` keep-alive HTTP/1.1
connections busy with one GET each, the next sent as soon as the answer is in (closed
loop), for `seconds`, and returns every request's latency in ms. Every answer must be a
200 whose body is byte for byte `expected` (the page is the same while the views stand
still): any other answer, a dropped connection or a timeout raises `LoadError`.

Two implementations, the same contract:
- `wrk` (Debian's package, 4.1) on one thread, when it is on the PATH: a C event loop that
  spends ~0.1 ms of CPU per request, where httpx spent ~2 ms on the same 2 CPUs as the
  server and PostgreSQL (docs/decisions.md, "HTTP load generator and server CPU per
  request (session 17)"). A Lua script (`WRK_SCRIPT`) checks each answer's status and body
  and hands back the whole latency histogram (1 us buckets), so the percentiles are
  computed here exactly as for the Python generator.
- else this module run as a process of its own (`python -m bench.loadgen`): raw
  non-blocking sockets under one `selectors` loop, the request bytes encoded once, each
  answer read by its Content-Length; a message says wrk was not found.

Neither needs the network beyond the loopback server. The client's own CPU seconds are
reported (`Run.client_cpu_seconds`), so a figure can say what the load generator cost.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

WRK_TIMEOUT_SECONDS = 10  # an answer slower than this is an error (wrk's --timeout)
WRK_MISSING = (
    "wrk not found on the PATH: using the Python load generator (bench/loadgen.py, about"
    " 0.3 ms of client CPU per request where wrk spends 0.1 ms); `apt-get install wrk`"
    " to use wrk"
)


class LoadError(RuntimeError):
    """The load could not be run as asked, or an answer was not the expected one."""


@dataclass
class Run:
    """One closed-loop run: every latency in ms, how long it ran, which tool, its CPU."""

    tool: str
    clients: int
    seconds: float
    latencies: list[float] = field(repr=False)
    client_cpu_seconds: float

    @property
    def count(self) -> int:
        """Requests answered (as expected) within the run."""
        return len(self.latencies)


def request_bytes(url: str, headers: Mapping[str, str]) -> bytes:
    """The GET of `url` with `headers`, as sent on a keep-alive HTTP/1.1 connection."""
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"GET {target} HTTP/1.1", f"Host: {parts.netloc}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def closed_loop(
    url: str,
    headers: Mapping[str, str],
    expected: bytes,
    seconds: float,
    clients: int,
    *,
    tool: str | None = None,
) -> Run:
    """GET `url` from `clients` keep-alive connections for `seconds` (see the module
    docstring). `tool`: "wrk" or "python"; None takes wrk when it is installed.
    Raises LoadError when an answer is not a 200 with body `expected`, or on any
    connection error or timeout."""
    if clients < 1 or seconds <= 0:
        raise LoadError("a load needs at least one client and a positive duration")
    if tool is None:
        tool = "wrk" if shutil.which("wrk") else "python"
        if tool == "python":
            print(WRK_MISSING, file=sys.stderr)
    if tool == "wrk":
        return _wrk(url, headers, expected, seconds, clients)
    if tool == "python":
        return _python(url, headers, expected, seconds, clients)
    raise LoadError(f"unknown load generator {tool!r}: wrk or python")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# --- wrk -------------------------------------------------------------------------------------

WRK_SCRIPT = r"""
-- bench/loadgen.py: headers and the expected body from the files named after `--`;
-- every answer checked; the latency histogram and the counts written as JSON by done().
local function slurp(path)
  local f = assert(io.open(path, "rb")); local s = f:read("*a"); f:close(); return s
end
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args)
  for line in slurp(args[1]):gmatch("[^\n]+") do
    local name, value = line:match("^([^:]+): (.*)$")
    wrk.headers[name] = value
  end
  expected = slurp(args[2])
  good, bad, first_bad = 0, 0, ""
  req = wrk.format("GET", wrk.path, wrk.headers)
end
function request() return req end
function response(status, headers, body)
  if status == 200 and body == expected then
    good = good + 1
  else
    bad = bad + 1
    if first_bad == "" then first_bad = status .. " " .. string.sub(body or "", 1, 300) end
  end
end
function done(summary, latency, requests)
  local good, bad, first_bad = 0, 0, ""
  for _, t in ipairs(threads) do
    good = good + t:get("good"); bad = bad + t:get("bad")
    if first_bad == "" then first_bad = t:get("first_bad") end
  end
  local e = summary.errors
  local out = {}
  for i = 1, #latency do
    local value, n = latency(i)
    out[#out + 1] = string.format("[%d,%d]", value, n)
  end
  io.write(string.format(
    '\nLOADGEN {"requests":%d,"duration_us":%d,"good":%d,"bad":%d,"first_bad":%q,' ..
    '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"histogram":[%s]}\n',
    summary.requests, summary.duration, good, bad, first_bad,
    e.connect, e.read, e.write, e.status, e.timeout, table.concat(out, ",")))
end
"""


def _wrk(
    url: str, headers: Mapping[str, str], expected: bytes, seconds: float, clients: int
) -> Run:
    with tempfile.TemporaryDirectory() as tmp:
        script, head, body = Path(tmp, "check.lua"), Path(tmp, "headers"), Path(tmp, "body")
        script.write_text(WRK_SCRIPT)
        head.write_text("".join(f"{name}: {value}\n" for name, value in headers.items()))
        body.write_bytes(expected)
        command = ["wrk", "-t1", f"-c{clients}", f"-d{max(1, round(seconds))}s"]
        command += [f"--timeout={WRK_TIMEOUT_SECONDS}s", "-s", str(script), url, "--"]
        command += [str(head), str(body)]
        before = _children_cpu()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        cpu = _children_cpu() - before
    found = re.search(r"^LOADGEN (\{.*\})$", done.stdout, re.MULTILINE)
    if done.returncode != 0 or found is None:
        raise LoadError(f"wrk failed ({done.returncode}): {done.stderr[-500:]}{done.stdout[-500:]}")
    out = json.loads(found.group(1))
    errors = {k: out[k] for k in ("connect", "read", "write", "status", "timeout") if out[k]}
    if out["bad"] or errors:
        raise LoadError(f"wrk: {out['bad']} unexpected answers {errors}: {out['first_bad']}")
    timed_per_connection = out["requests"] // clients
    interval = out["duration_us"] // timed_per_connection if timed_per_connection else 0
    try:
        histogram = uncorrected(dict(out["histogram"]), interval)
    except ValueError as error:
        raise LoadError(f"wrk: {error}") from None
    latencies = [us / 1000 for us, n in sorted(histogram.items()) for _ in range(n)]
    # wrk counts, but does not time, each connection's answer that ends the run
    unseen = out["requests"] - len(latencies)
    if out["good"] != out["requests"] or not 0 <= unseen <= clients:
        raise LoadError(f"wrk: {out['requests']} requests, {out['good']} checked, {unseen} untimed")
    return Run("wrk", clients, out["duration_us"] / 1e6, latencies, cpu)


def uncorrected(histogram: dict[int, int], interval: int) -> dict[int, int]:
    """The latencies wrk measured (us -> count) from the histogram it hands its script.

    wrk 4 "corrects" for coordinated omission after the run: for every latency n of at
    least 2 x `interval` (the run's microseconds / (requests // connections)) it adds a
    sample at n - interval, n - 2 x interval, ... down to above `interval`, as if an open
    loop had sent a request every `interval` (wrk's stats_correct). The benchmark is a
    closed loop (each client waits for its answer), so those samples were never sent;
    taking them off from the largest latency down gives back what was measured.
    ValueError when the histogram is not one wrk could have corrected with `interval`."""
    if interval <= 0:
        return dict(histogram)
    out = dict(histogram)
    for n in sorted(out, reverse=True):
        if n < 2 * interval:
            break
        count = out[n]
        m = n - interval
        while count and m > interval:
            left = out.get(m, 0) - count
            if left < 0:
                raise ValueError(f"no wrk correction by {interval} us: {m} us would be {left}")
            out[m] = left
            m -= interval
    return {n: count for n, count in out.items() if count}


# --- the Python generator --------------------------------------------------------------------


def _python(
    url: str, headers: Mapping[str, str], expected: bytes, seconds: float, clients: int
) -> Run:
    with tempfile.TemporaryDirectory() as tmp:
        request, body = Path(tmp, "request"), Path(tmp, "body")
        request.write_bytes(request_bytes(url, headers))
        body.write_bytes(expected)
        parts = urlsplit(url)
        command = [sys.executable, "-m", "bench.loadgen", parts.hostname or "127.0.0.1"]
        command += [str(parts.port or 80), str(request), str(body), str(seconds), str(clients)]
        before = _children_cpu()
        done = subprocess.run(
            command, capture_output=True, text=True, check=False, cwd=Path(__file__).parent.parent
        )
        cpu = _children_cpu() - before
    if done.returncode != 0:
        raise LoadError(f"bench.loadgen failed ({done.returncode}): {done.stderr[-800:]}")
    out = json.loads(done.stdout)
    return Run("python", clients, out["seconds"], out["latencies"], cpu)


class _Connection:
    """One keep-alive connection of the Python generator: its socket and the answer read."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = socket.create_connection(address)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.buffer = bytearray()
        self.sent = 0.0

    def answer(self, expected: bytes) -> bool:
        """Whether the buffer holds a whole answer; LoadError unless it is a 200 with
        body `expected`. The answer is taken off the buffer."""
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return False
        head = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        length = None
        for line in head[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        if length is None:
            raise LoadError(f"an answer without Content-Length: {head[0]}")
        if len(self.buffer) < end + 4 + length:
            return False
        body = bytes(self.buffer[end + 4 : end + 4 + length])
        del self.buffer[: end + 4 + length]
        if not head[0].startswith("HTTP/1.1 200 ") or body != expected:
            raise LoadError(f"unexpected answer: {head[0]} {body[:300]!r}")
        return True


def generate(
    address: tuple[str, int], request: bytes, expected: bytes, seconds: float, clients: int
) -> tuple[float, list[float]]:
    """The Python generator's loop (see the module docstring): seconds it ran and every
    latency in ms. LoadError on an unexpected answer or a closed connection."""
    pool = [_Connection(address) for _ in range(clients)]
    selector = selectors.DefaultSelector()
    latencies: list[float] = []
    start = time.perf_counter()
    end = start + seconds
    for conn in pool:
        selector.register(conn.sock, selectors.EVENT_READ, conn)
        conn.sent = time.perf_counter()
        conn.sock.sendall(request)  # a few hundred bytes: fits an empty socket buffer
    open_ = len(pool)
    while open_:
        for key, _ in selector.select(timeout=WRK_TIMEOUT_SECONDS):
            conn = key.data
            chunk = conn.sock.recv(262_144)
            if not chunk:
                raise LoadError("the server closed a connection")
            conn.buffer += chunk
            if not conn.answer(expected):
                continue
            now = time.perf_counter()
            latencies.append((now - conn.sent) * 1000)
            if now < end:
                conn.sent = now
                conn.sock.sendall(request)
            else:
                selector.unregister(conn.sock)
                conn.sock.close()
                open_ -= 1
        if time.perf_counter() > end + WRK_TIMEOUT_SECONDS:
            raise LoadError(f"no answer within {WRK_TIMEOUT_SECONDS} s")
    return time.perf_counter() - start, latencies


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m bench.loadgen HOST PORT REQUEST_FILE BODY_FILE SECONDS CLIENTS`: the
    Python generator; prints {"seconds": s, "latencies": [ms, ...]} as JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__)
    for name in ("host", "port", "request", "body", "seconds", "clients"):
        parser.add_argument(name)
    args = parser.parse_args(argv)
    request, expected = Path(args.request).read_bytes(), Path(args.body).read_bytes()
    address = (args.host, int(args.port))
    seconds, latencies = generate(
        address, request, expected, float(args.seconds), int(args.clients)
    )
    json.dump({"seconds": seconds, "latencies": latencies}, sys.stdout)


if __name__ == "__main__":
    main()
