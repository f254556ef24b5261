"""The service as `make run` starts it: HTTP health check, storage named, demo data seeded once."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from infra.bootstrap import build_fleet
from infra.demo import FULL_SIZE, store_summary
from infra.http.app import create_api
from infra.settings import DEFAULT_SQLITE_PATH, Settings
from infra.storage import pg_conn
from projections import all_views
from tests.auth_keys import ISSUER, jwks_file, signing_key
from tests.conftest import url_of
from tests.integration.test_demo_data import devices_by_connection
from tests.pg_faults import eventually, terminate_backends
from tests.scenarios import partner

CLI = Path(sys.executable).parent / "partnerfleet"
VIEWS = [view.name for view in all_views()]


def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def get_health(port: int, timeout: float = 30.0) -> dict[str, Any]:
    """GET /healthz once the server answers and its views and policies have caught up."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as answer:
                assert answer.status == 200
                body: dict[str, Any] = json.loads(answer.read())
                behind = [*body["views_lag"].values(), *body["policies_lag"].values()]
                if not any(behind) or time.monotonic() > deadline:
                    return body
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.2)


def unconfigured() -> dict[str, str]:
    """This process's environment without any storage or broker configuration."""
    names = ("POSTGRES_", "DATABASE_URL", "SQLITE_", "KAFKA_BOOTSTRAP_SERVERS")
    return {k: v for k, v in os.environ.items() if not k.startswith(names)}


def run_cli(workdir: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run `partnerfleet ARGS` in `workdir` and return what it did (no exception on failure)."""
    return subprocess.run(
        [str(CLI), *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@contextmanager
def demo_server(workdir: Path, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """`partnerfleet serve --demo` in `workdir` with `env` (its PORT), stopped by SIGINT
    at the block's end."""
    server = subprocess.Popen(
        [str(CLI), "serve", "--demo"],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield server
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)


def serve_once(workdir: Path, timeout: float = 30.0) -> dict[str, Any]:
    """Start `partnerfleet serve --demo` with no configuration, read /healthz once it has
    caught up (or `timeout` seconds after the start), stop it."""
    port = free_port()
    with demo_server(workdir, {**unconfigured(), "PORT": str(port)}):
        return get_health(port, timeout)


def test_serve_without_configuration_uses_sqlite_under_var_and_seeds_demo_data_once(
    tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    """`make run`: SQLite under var/, PORT honoured, the full demo (3 partners, 200
    customers, 3,000 devices) seeded and followed by views and policies, not duplicated on
    restart. How long until it is ready is reported (goal: 30 s), not asserted."""
    started = time.monotonic()
    first = serve_once(tmp_path, timeout=90)
    record_property("demo_ready_seconds", round(time.monotonic() - started, 1))
    assert first["status"] == "ok"
    assert first["storage"]["kind"] == "sqlite"
    assert first["storage"]["location"] == "var/partnerfleet.sqlite3"
    assert (tmp_path / "var" / "partnerfleet.sqlite3").exists()
    assert first["events"] > 0
    assert first["views_lag"] == dict.fromkeys(VIEWS, 0)
    assert set(first["policies_lag"]) == {
        "partnerfleet.policy.alerts",
        "partnerfleet.policy.repair-routing",
    }
    assert not any(first["policies_lag"].values())
    assert (tmp_path / "var" / "partnerfleet-views.sqlite3").exists()
    second = serve_once(tmp_path)
    assert second["events"] == first["events"]
    fleet = build_fleet(Settings(sqlite_path=tmp_path / DEFAULT_SQLITE_PATH))
    held = dict(store_summary(fleet))
    connections = devices_by_connection(fleet)
    fleet.close()
    assert (held["partners"], held["customers with devices"]) == (3, FULL_SIZE)
    assert set(connections) == {"central_connect", "direct_connect", "pc_agent"}
    assert sum(connections.values()) == 3_000


def test_healthz_names_postgresql_when_configured(postgres_settings: Settings) -> None:
    """With a PostgreSQL URL the health check names PostgreSQL and its schema."""
    fleet = build_fleet(postgres_settings)
    with TestClient(create_api(fleet, postgres_settings)) as client:
        body = client.get("/healthz").json()
    fleet.close()
    assert body["storage"]["kind"] == "postgres"
    assert body["storage"]["schema_name"] == postgres_settings.storage.schema
    assert body["storage"]["location"] == postgres_settings.storage.location


def test_bad_configuration_fails_fast_with_a_specific_message(tmp_path: Path) -> None:
    """A bad DATABASE_URL stops the CLI with exit code 2 and says what is wrong."""
    env = {**os.environ, "DATABASE_URL": "mysql://db/x"}
    done = run_cli(tmp_path, env, "serve")
    assert done.returncode == 2
    assert "DATABASE_URL scheme 'mysql' is not supported" in done.stderr
    assert not (tmp_path / "var").exists()


def test_projections_cli_rebuilds_every_view_and_reports_lag(tmp_path: Path) -> None:
    """`partnerfleet projections rebuild` shows events/s; `lag` is then 0 for every view."""
    env = unconfigured()

    def run(*args: str) -> str:
        done = run_cli(tmp_path, env, *args)
        assert done.returncode == 0, done.stderr
        return done.stdout

    run("demo", "--customers", "2")
    behind = run("projections", "lag")
    assert "customers: 0" not in behind
    rebuilt = run("projections", "rebuild")
    assert all(f"{view}: " in rebuilt for view in VIEWS)
    assert "events/s" in rebuilt
    assert run("projections", "lag").split() == [
        word for view in VIEWS for word in (f"{view}:", "0")
    ]


def test_kafka_processes_refuse_to_start_without_a_broker(tmp_path: Path) -> None:
    """`relay` and `consume` need KAFKA_BOOTSTRAP_SERVERS, and say so."""
    env = unconfigured()
    for args in (["relay"], ["consume", "e2open"]):
        done = run_cli(tmp_path, env, *args)
        assert done.returncode == 2
        assert "set KAFKA_BOOTSTRAP_SERVERS" in done.stderr


def test_an_unknown_feed_is_refused_with_the_known_ones(tmp_path: Path) -> None:
    """`consume nope` names the feeds there are."""
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    done = run_cli(tmp_path, env, "consume", "nope")
    assert done.returncode == 2
    assert "unknown feed 'nope'; use one of e2open, alerts" in done.stderr


def test_relay_shards_and_consumer_workers_are_checked_before_anything_starts(
    tmp_path: Path,
) -> None:
    """Impossible shards, both shard options, or zero workers: exit 2 with the reason."""
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    cases = [
        (["relay", "--shard", "3/2"], "relay shard 3/2 does not exist"),
        (["relay", "--shard", "half"], "relay shard 'half' is not I/N"),
        (["relay", "--shard", "1/2", "--shards", "2"], "not both"),
        (["relay", "--shards", "0"], "--shards"),
        (["consume", "e2open", "--workers", "0"], "--workers"),
    ]
    for args, message in cases:
        done = run_cli(tmp_path, env, *args)
        assert done.returncode == 2, args
        assert message in done.stderr, (args, done.stderr)


def health_when(port: int, wanted: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """/healthz (200 or 503) once `wanted(body)`, or the last body after a deadline."""
    deadline, body = time.monotonic() + 60, {}
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
                body = json.loads(answer.read())
        except urllib.error.HTTPError as refused:
            body = json.loads(refused.read())
        except OSError:
            pass
        if body and wanted(body):
            return body
        time.sleep(0.1)
    return body


def test_kind6_serve_on_postgresql_survives_its_listen_and_all_its_connections_ending(
    postgres_settings: Settings, tmp_path: Path
) -> None:
    """Given input: `serve` on PostgreSQL; its LISTEN connection ended, then a partner
    registered: the views apply it; the same after every connection of the service ended."""
    schema, port = postgres_settings.storage.schema, free_port()
    env = {
        **unconfigured(),
        "PORT": str(port),
        "DATABASE_URL": url_of(postgres_settings),
        "JWKS_PATH": str(jwks_file(tmp_path, signing_key())),  # no default key outside demo
        "JWT_ISSUER": ISSUER,
    }
    server = subprocess.Popen([str(CLI), "serve"], env=env, stdout=subprocess.DEVNULL)
    fleet = build_fleet(postgres_settings)

    def current(body: dict[str, Any]) -> bool:
        head = fleet.recorder.max_notification_id() or 0
        return (
            body["status"] == "ok"
            and body["events"] == head
            and not any(body["views_lag"].values())
        )

    try:
        assert current(health_when(port, current))
        assert eventually(lambda: terminate_backends(schema, pg_conn.LISTEN) == 1)
        partner(fleet, "LOC-1")
        assert current(health_when(port, current))
        assert terminate_backends(schema) >= 3
        partner(fleet, "LOC-2")
        after_all = health_when(port, current)
        assert current(after_all)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
        fleet.close()

    assert after_all["runners"]["views"]["state"] == "running"


def test_serve_workers_share_the_port_and_the_cursor_key_and_end_with_their_supervisor(
    tmp_path: Path,
) -> None:
    """`serve --workers 2`: two serving parts on one port; a cursor one part made is read by
    whichever part the next connection reaches (the supervisor gives them one key when
    CURSOR_KEY is unset); the parts end when the supervisor is killed outright."""
    from tests.unit.test_processes import alive, children, wait_until

    port = free_port()
    env = {**unconfigured(), "PORT": str(port)}
    env.pop("CURSOR_KEY", None)
    parent = subprocess.Popen(
        [str(CLI), "serve", "--demo", "--workers", "2"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        get_health(port, timeout=60)
        parts = children(parent.pid)
        assert len(parts) == 2
        issued = run_cli(tmp_path, env, "token", "issue", "--demo").stdout.splitlines()
        token = next(line.split("\t")[-1] for line in issued if "DEMO-RESELLER-1" in line)
        url = f"http://127.0.0.1:{port}/partners/DEMO-RESELLER-1/customer-groups?limit=1"
        headers = {"Authorization": f"Bearer {token}"}
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as first:
            cursor = json.loads(first.read())["next_cursor"]
        assert cursor
        statuses = []
        for _ in range(24):  # a new connection each: the kernel spreads them over the parts
            request = urllib.request.Request(f"{url}&cursor={cursor}", headers=headers)
            try:
                with urllib.request.urlopen(request) as answer:
                    statuses.append(answer.status)
            except urllib.error.HTTPError as refused:
                statuses.append(refused.code)
        assert statuses == [200] * 24
        parent.kill()
        parent.wait()
        assert wait_until(lambda: not any(alive(p) for p in parts), timeout=20)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


@pytest.mark.parametrize("storage", ["sqlite", "postgres"])
def test_served_pages_from_the_plain_front_are_the_routers_answers_on_one_connection(
    tmp_path: Path, storage: str, request: pytest.FixtureRequest
) -> None:
    """`serve --demo`: the first GET of a page is routed by FastAPI, the next ones are
    answered by PlainFront (infra/http/front.py; on PostgreSQL the partner's version read
    with the views' positions): same status, headers and body, on one keep-alive
    connection, with a refusal (answered by the stack) in between."""
    import http.client

    port = free_port()
    env = {**unconfigured(), "PORT": str(port)}
    if storage == "postgres":
        settings: Settings = request.getfixturevalue("postgres_settings")
        assert settings.database_url is not None
        env["DATABASE_URL"] = settings.database_url.get_secret_value()
    with demo_server(tmp_path, env):
        get_health(port, timeout=60)
        issued = run_cli(tmp_path, env, "token", "issue", "--demo").stdout.splitlines()
        token = next(line.split("\t")[-1] for line in issued if "DEMO-RESELLER-1" in line)
        path = "/partners/DEMO-RESELLER-1/customer-groups?limit=2"
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        answers: list[tuple[int, list[tuple[str, str]], bytes, str]] = []
        for bearer in (token, token, "not-a-token", token):
            rid = f"00000000-0000-4000-8000-00000000000{len(answers)}"
            connection.request(
                "GET", path, headers={"Authorization": f"Bearer {bearer}", "X-Request-Id": rid}
            )
            answer = connection.getresponse()
            headers = [(k.lower(), v) for k, v in answer.getheaders() if k.lower() != "date"]
            answers.append((answer.status, headers, answer.read(), rid))
        connection.close()

    routed, front, refused, again = answers
    assert routed[0] == front[0] == again[0] == 200
    assert json.loads(routed[2])["items"]
    assert routed[2] == front[2] == again[2]
    assert [h for h in routed[1] if h[0] != "x-request-id"] == [
        h for h in front[1] if h[0] != "x-request-id"
    ]
    assert ("x-request-id", front[3]) in front[1]
    assert refused[0] == 401
    assert json.loads(refused[2])["instance"].endswith(refused[3])
