"""What every `partnerfleet` command shares: settings or a clear exit, the broker, failing,
and who acts (`--as ROLE:SUBJECT` or `--token TOKEN`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, NoReturn, Protocol

import structlog
import typer
from pydantic import ValidationError

from domain.base import DomainError
from handlers import PartnerFleet
from handlers.access import (
    Actor,
    AuthenticationError,
    ClaimsVerifier,
    Role,
    authenticate,
    service_actor,
)
from infra.logging import configure_logging
from infra.settings import Settings
from infra.tokens import LOCAL_ISSUER, AuthConfigurationError


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, or a clear message and exit code 2."""
    try:
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as error:
        problems = "; ".join(_problem(e["loc"], e["msg"]) for e in error.errors())
        typer.echo(f"partnerfleet: bad configuration: {problems}", err=True)
        raise typer.Exit(2) from None
    configure_logging(settings)
    return settings


def _problem(loc: tuple[int | str, ...], message: str) -> str:
    """One refused setting, named as the environment spells it (CREATE_TABLE, not
    create_table), without pydantic's "Value error, " in front of our own messages."""
    message = message.removeprefix("Value error, ")
    name = ".".join(map(str, loc)).upper()
    return f"{name}: {message}" if name and not message.startswith(name) else message


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


# --- who acts: `--as ROLE:SUBJECT` or `--token TOKEN` -------------------------------------

LOCAL_ROLES = (Role.OPERATOR, Role.AUDITOR, Role.FEED)
_LOCAL = ", ".join(role.value for role in LOCAL_ROLES)


def checked_as(value: str | None) -> str | None:
    """`--as`: ROLE:SUBJECT with a local role and a subject, else a usage error (exit 2)."""
    if value is not None:
        parse_as(value)
    return value


def parse_as(value: str) -> tuple[Role, str]:
    """The role and subject of `ROLE:SUBJECT`; typer.BadParameter saying what is wrong."""
    role_text, colon, subject = value.partition(":")
    if not colon or not subject.strip() or not role_text.strip():
        raise typer.BadParameter(
            f"{value!r} is not ROLE:SUBJECT; e.g. operator:ops@example.com (roles: {_LOCAL})."
        )
    try:
        role = Role(role_text.strip())
    except ValueError:
        raise typer.BadParameter(f"unknown role {role_text.strip()!r}; use {_LOCAL}.") from None
    if role not in LOCAL_ROLES:
        raise typer.BadParameter(
            f"the role {role.value} is checked against the store: sign in with --token "
            f"instead (local roles: {_LOCAL})."
        )
    return role, subject.strip()


AsOption = Annotated[
    str | None,
    typer.Option(
        "--as",
        metavar="ROLE:SUBJECT",
        callback=checked_as,
        help=f"Act locally as ROLE ({_LOCAL}) named SUBJECT, e.g. operator:ops@example.com;"
        " recorded as the principal of what the command causes.",
    ),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        metavar="TOKEN",
        envvar="PARTNERFLEET_TOKEN",
        show_envvar=True,
        help="Act as the principal of this bearer token (better from the environment:"
        " a token on the command line shows in the process list).",
    ),
]


def require_principal(as_: str | None, token: str | None) -> None:
    """Exactly one of `--as` and `--token`, else a clear message and exit code 2 (checked
    before anything is opened)."""
    if (as_ is None) == (token is None):
        fail("say who acts: --as ROLE:SUBJECT or --token TOKEN (one of them, not both).")


def principal(
    fleet: PartnerFleet, verifier: Callable[[], ClaimsVerifier], as_: str | None, token: str | None
) -> Actor:
    """The actor of `--as` or `--token` (exactly one), checked by the access model: a local
    role through `service_actor`, a token's claims through `authenticate` (partner roles
    against the store). Anything else: a clear message and exit code 2, never the token."""
    require_principal(as_, token)
    try:
        if as_ is not None:
            role, subject = parse_as(as_)
            return service_actor(subject, role)
        assert token is not None
        return authenticate(fleet, verifier().claims(token))
    except AuthConfigurationError as refused:  # says how a server is configured: add the CLI's
        fail(f"not signed in: {refused} {TOKEN_CHECK_HINT}")
    except AuthenticationError as refused:
        fail(f"not signed in: {refused}")


# How a verb checks a --token (README, "HTTP API"): the keys and issuer of the tokens.
TOKEN_CHECK_HINT = (
    "A --token is checked like an HTTP request's: set JWKS_URL or JWKS_PATH and JWT_ISSUER "
    "(a `serve --demo` token: JWKS_URL=http://HOST:PORT/.well-known/jwks.json "
    f"JWT_ISSUER={LOCAL_ISSUER}); or act with --as ROLE:SUBJECT."
)


@contextmanager
def refusals() -> Iterator[None]:
    """A command refused (a rule, the role, an unknown or foreign resource): its reason on
    stderr and exit code 1; nothing was recorded."""
    try:
        yield
    except DomainError as refused:
        typer.echo(f"partnerfleet: refused: {refused}", err=True)
        raise typer.Exit(1) from None
