"""`partnerfleet serve` on a port in use: one clear line and exit 2 before the demo is seeded
or the store opened, in every mode (session 19's found-not-fixed: the demo was seeded first,
then uvicorn's bind failed with exit 3)."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.cli import serve
from infra.cli.app import main


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port another process's socket (no SO_REUSEPORT) listens on."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    try:
        yield holder.getsockname()[1]
    finally:
        holder.close()


@pytest.mark.parametrize(
    "extra", [[], ["--demo"], ["--demo", "--workers", "2"], ["--demo", "--reuse-port"]]
)
def test_a_taken_port_is_one_line_and_exit_2_before_anything_starts(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    taken_port: int,
    extra: list[str],
) -> None:
    started: list[str] = []
    monkeypatch.setattr(serve, "open_demo_store", lambda *a: started.append("demo"))
    monkeypatch.setattr(serve, "build_fleet", lambda *a: started.append("fleet"))
    monkeypatch.setattr(serve, "run_children", lambda *a: started.append("children"))
    if "--demo" not in extra:  # keys trusted as configured (not the subject here)
        monkeypatch.setattr(serve, "verifier_or_exit", lambda *a: None)
    for name in ("DATABASE_URL", "POSTGRES_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SQLITE_PATH", str(tmp_path / "fleet.db"))
    monkeypatch.chdir(tmp_path)  # where a demo key would be made (var/)
    argv = ["partnerfleet", "serve", "--host", "127.0.0.1", "--port", str(taken_port), *extra]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exited:
        main()
    err = capsys.readouterr().err
    assert exited.value.code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err, err
    assert lines[0].startswith(f"partnerfleet: cannot listen on 127.0.0.1:{taken_port}: "), err
    assert "in use" in lines[0].lower(), err
    assert started == []  # nothing seeded, opened or spawned
    assert list(tmp_path.iterdir()) == []  # no store, no demo key


def test_run_serves_on_the_socket_it_is_given_and_closes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`serve` hands its bound socket to uvicorn (its "running on" line names the host and
    port), and the socket is closed when uvicorn returns."""
    import gc

    import uvicorn

    from infra.settings import Settings

    seen: dict[str, object] = {}

    def fake_server_run(self: uvicorn.Server, sockets: list[socket.socket]) -> None:
        seen.update(host=self.config.host, port=self.config.port, sockets=sockets)

    monkeypatch.setattr(uvicorn.Server, "run", fake_server_run)
    sock = serve.listening_socket("127.0.0.1", 0, shared=False)
    port = sock.getsockname()[1]
    thresholds = gc.get_threshold()
    try:
        serve.run(object(), Settings(host="127.0.0.1", port=port), sock=sock)
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
    assert seen == {"host": "127.0.0.1", "port": port, "sockets": [sock]}
    assert sock.fileno() == -1  # closed
