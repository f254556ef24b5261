"""What every `partnerfleet` command shares: settings or a clear exit, the broker, failing."""

from __future__ import annotations

import time
from typing import Any, NoReturn, Protocol

import structlog
import typer
from pydantic import ValidationError

from infra.logging import configure_logging
from infra.settings import Settings


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, or a clear message and exit code 2."""
    try:
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in error.errors()
        )
        typer.echo(f"partnerfleet: bad configuration: {problems}", err=True)
        raise typer.Exit(2) from None
    configure_logging(settings)
    return settings


def fail(message: str) -> NoReturn:
    """A clear message on stderr and exit code 2."""
    typer.echo(f"partnerfleet: {message}", err=True)
    raise typer.Exit(2)


def require_broker(settings: Settings) -> str:
    """The configured broker, or a clear message and exit code 2."""
    if not settings.kafka_bootstrap_servers:
        fail("set KAFKA_BOOTSTRAP_SERVERS (host:port) to use Kafka.")
    return settings.kafka_bootstrap_servers


class Following(Protocol):
    """A follower running in the background: views or policies."""

    def lag(self) -> dict[str, int]: ...

    def stop(self) -> None: ...


def log_lag_until_interrupted(follower: Following, event: str) -> None:
    """Log the started `follower`'s lag every minute as `event`; on Ctrl-C, stop it."""
    log = structlog.get_logger("partnerfleet.cli")
    try:
        while True:
            time.sleep(60)
            log.info(event, **follower.lag())
    except KeyboardInterrupt:
        follower.stop()
