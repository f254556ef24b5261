"""`partnerfleet token issue`: bearer tokens signed with the local key, for the demo and tests.

The key is JWT_SIGNING_KEY_PATH, or the demo key generated once under var/ (which only
`serve --demo` trusts by itself). Tokens go to stdout and never into the logs.
"""

from __future__ import annotations

from typing import Annotated

import structlog
import typer

from domain.text import TextError, checked
from handlers.access import TENANT_ROLES, TOKEN_ROLES, Claims, Role
from infra.bootstrap import build_signing_key, build_verifier
from infra.cli.support import fail, load_settings
from infra.demo import DEMO_PRINCIPALS
from infra.http.auth import TokenVerifier
from infra.settings import Settings
from infra.tokens import LOCAL_ISSUER, MAX_TTL_SECONDS, AuthConfigurationError, SigningKey, mint

token_cli = typer.Typer(
    help="Bearer tokens signed with the local key (demo and tests).", no_args_is_help=True
)
log = structlog.get_logger("partnerfleet.cli")
ROLE_NAMES = ", ".join(sorted(role.value for role in TOKEN_ROLES))


@token_cli.command("issue")
def issue(
    role: Annotated[str | None, typer.Option(help=f"One of: {ROLE_NAMES}.")] = None,
    subject: Annotated[str | None, typer.Option(help="The Passport ID or service account.")] = None,
    tenant: Annotated[
        str,
        typer.Option(help="Location ID (partner roles) or customer id (customer_admin, end_user)."),
    ] = "",
    pcs: Annotated[
        list[str] | None, typer.Option("--pcs", help="An end user's PC serial; repeat for more.")
    ] = None,
    ttl: Annotated[
        int, typer.Option(min=1, max=MAX_TTL_SECONDS, help="Seconds until the token expires.")
    ] = 3600,
    demo: Annotated[
        bool,
        typer.Option(
            "--demo", help="One token per demo principal: role, subject, tenant, token (tabs)."
        ),
    ] = False,
) -> None:
    """Print a signed bearer token for one principal (or, with --demo, for each demo one)."""
    if demo and (role or subject or tenant or pcs):
        fail(
            "--demo prints every demo principal's token; leave out --role/--subject/--tenant/--pcs."
        )
    principals = DEMO_PRINCIPALS if demo else [_claims(role, subject, tenant, pcs or [])]
    settings = load_settings()
    key = _signing_key(settings)
    for claims in principals:
        token = _mint(claims, key, ttl, settings)
        typer.echo(f"{claims.role}\t{claims.subject}\t{claims.tenant}\t{token}" if demo else token)


def _claims(role: str | None, subject: str | None, tenant: str, pcs: list[str]) -> Claims:
    if role is None or role not in TOKEN_ROLES:
        fail(f"--role must be one of {ROLE_NAMES}" + (f", not {role!r}." if role else "."))
    if subject is None or not subject.strip():
        fail("--subject is required: the Passport ID or service account the token speaks for.")
    if role in TENANT_ROLES and not tenant.strip():
        fail(f"--tenant is required for {role}: its Location ID or customer id.")
    if role not in TENANT_ROLES and tenant:
        fail(f"--tenant is not for {role}; it acts for no single tenant.")
    if pcs and role != Role.END_USER:
        fail("--pcs is only for end_user tokens.")
    try:  # no token a verifier would refuse (an argument that was not UTF-8, a control)
        for name, text in (
            ("--subject", subject),
            ("--tenant", tenant),
            *(("--pcs", p) for p in pcs),
        ):
            checked(name, text.strip())
    except TextError as error:
        fail(str(error))
    return Claims(subject.strip(), role, tenant.strip(), tuple(pcs))


def _signing_key(settings: Settings) -> SigningKey:
    try:
        return build_signing_key(settings)
    except AuthConfigurationError as error:
        fail(str(error))


def _mint(claims: Claims, key: SigningKey, ttl: int, settings: Settings) -> str:
    token = mint(
        claims, key, ttl, audience=settings.jwt_audience, issuer=settings.jwt_issuer or LOCAL_ISSUER
    )
    log.debug("token_issued", subject=claims.subject, role=claims.role, kid=key.kid, ttl=ttl)
    return token


def verifier_or_exit(settings: Settings, demo: bool) -> TokenVerifier:
    """The verifier `serve` authenticates with, or a clear message and exit code 2 (no
    trusted keys or issuer outside demo mode, or an untrusted JWKS file)."""
    try:
        return build_verifier(settings, demo)
    except AuthConfigurationError as error:
        fail(str(error))
