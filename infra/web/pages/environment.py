"""My IT Environment (R-PAR-2): a customer admin's own devices grouped by Insight RS hosting
device, each with its partner links and consent, and the forms that change them.

Reads are `projections.environment.my_it_environment` / `environment_device` under the
customer's own scope, as `GET /customers/{customer_id}/devices` serves them; commands are
the fleet's, as routes/devices.py calls them:

- the partner (Location ID, R-LNK-1…6): per selection of devices (checkboxes + one Location
  ID field, R-LNK-3 b), per device on its page (R-LNK-3 c), once on a hosting device for
  every device it manages (R-LNK-2); unlink the same ways; register devices, linked or not
  (R-LNK-3 a, R-PAR-3);
- "Optimize my IT environment" (R-CON-1…3): the wording shown is the version the form
  grants (`domain.consent.CONSENT_TEXTS`), per hosting device or per chosen device; withdraw.

Every form works without JavaScript: a command then 303 back to the page it came from; a
refusal of the domain is shown on that page above its forms (409/422), nothing recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Query
from fastapi.responses import Response
from pydantic import StringConstraints

from domain.base import DomainError
from domain.consent import CONSENT_TEXTS, CURRENT_CONSENT_TEXT
from handlers.access import CustomerScope, customer_scope
from handlers.devices import NewDevice, PartnerChoice
from infra.web.deps import CsrfDep, Portal, PortalDep, Refusal
from projections.environment import environment_device, my_it_environment

router = APIRouter()
PAGE_SIZE = 50
BASE = "/customers/{customer_id}"
ENVIRONMENT = BASE + "/environment"
DEVICE = BASE + "/devices/{serial}"
HOST = BASE + "/hosting-devices/{host_serial}"

Text = Annotated[str, StringConstraints(min_length=1, max_length=256)]
# R-LNK-3 (b), R-CON-1: many devices at once; R-PAR-3 bounds a Passport ID at 1,500.
Serials = Annotated[list[Text], Form(max_length=1_500)]
LocationId = Annotated[str, Form(min_length=1, max_length=256)]
OptionalLocationId = Annotated[str, Form(max_length=256)]
# The name a partner's new customer group shows (R-FAV-1); empty: the customer id.
CustomerName = Annotated[str, Form(max_length=200)]
LinkRole = Annotated[Literal["reseller", "service_partner"], Form()]
TextVersion = Annotated[str, Form(min_length=1, max_length=32)]
Next = Annotated[str | None, Form(max_length=2000)]
Connection = Literal["central_connect", "direct_connect", "pc_agent"]


@router.get(ENVIRONMENT)
def environment(
    portal: PortalDep,
    customer_id: str,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> Response:
    """R-PAR-2: the customer's devices by hosting device, with links and consent, paged."""
    scope = customer_scope(portal.actor, customer_id)
    return _environment_page(portal, scope, cursor)


@router.get(DEVICE)
def device(portal: PortalDep, customer_id: str, serial: str) -> Response:
    """R-LNK-3 (c), R-CON-1: one device's page: its links and consent, and their forms."""
    scope = customer_scope(portal.actor, customer_id)
    return _device_page(portal, scope, serial)


@router.post(ENVIRONMENT + "/links")
def link_selected(
    portal: PortalDep,
    _csrf: CsrfDep,
    customer_id: str,
    location_id: OptionalLocationId = "",
    serials: Serials = [],  # noqa: B006 (FastAPI copies a form default)
    role: LinkRole = "reseller",
    customer_name: CustomerName = "",
    next: Next = None,
) -> Response:
    """R-LNK-1, R-LNK-3, R-LNK-5: link the chosen devices to a partner's Location ID; the
    partner's customer group, when new, shows `customer_name` (else the customer id)."""
    if not location_id.strip():  # the selection form also unlinks, so the field is optional
        return _without_location_id(portal, customer_id, next)
    choice = PartnerChoice(location_id=location_id, role=role)
    return _act(
        portal,
        customer_id,
        next,
        lambda a: portal.fleet.link_devices(a, customer_id, serials, choice, customer_name),
    )


@router.post(ENVIRONMENT + "/link-removals")
def unlink_selected(
    portal: PortalDep,
    _csrf: CsrfDep,
    customer_id: str,
    serials: Serials = [],  # noqa: B006
    role: LinkRole = "reseller",
    next: Next = None,
) -> Response:
    """R-LNK-6: remove the partner of a role from the chosen devices; its access ends."""
    return _act(
        portal,
        customer_id,
        next,
        lambda a: portal.fleet.unlink_devices(a, customer_id, serials, role),
    )


@router.post(ENVIRONMENT + "/consent-grants")
def grant_selected(
    portal: PortalDep,
    _csrf: CsrfDep,
    customer_id: str,
    text_version: TextVersion,
    serials: Serials = [],  # noqa: B006
    next: Next = None,
) -> Response:
    """R-CON-1, R-CON-3: grant consent on the wording shown for the chosen devices."""
    return _act(
        portal,
        customer_id,
        next,
        lambda a: portal.fleet.grant_consent(a, customer_id, serials, text_version),
    )


@router.post(ENVIRONMENT + "/consent-withdrawals")
def withdraw_selected(
    portal: PortalDep,
    _csrf: CsrfDep,
    customer_id: str,
    serials: Serials = [],  # noqa: B006
    next: Next = None,
) -> Response:
    """R-CON-3: withdraw consent for the chosen devices; partners' access ends at once."""
    return _act(
        portal, customer_id, next, lambda a: portal.fleet.withdraw_consent(a, customer_id, serials)
    )


@router.post(HOST + "/partner")
def set_hosting_partner(
    portal: PortalDep,
    _csrf: CsrfDep,
    customer_id: str,
    host_serial: str,
    location_id: LocationId,
    role: LinkRole = "reseller",
    customer_name: CustomerName = "",
    next: Next = None,
) -> Response:
    """R-LNK-2: the partner set once on a hosting device, for every device it manages."""
    choice = PartnerChoice(location_id=location_id, role=role)
    fleet = portal.fleet
    return _act(
        portal,
        customer_id,
        next,
        lambda a: fleet.set_hosting_partner(a, customer_id, host_serial, choice, customer_name),
    )


@router.post(HOST + "/consent")
def grant_on_host(
    portal: PortalDep,
    _csrf: CsrfDep,
    customer_id: str,
    host_serial: str,
    text_version: TextVersion,
    next: Next = None,
) -> Response:
    """R-CON-1: one consent setting for every device of an Insight RS hosting device."""
    fleet = portal.fleet
    return _act(
        portal,
        customer_id,
        next,
        lambda a: fleet.grant_consent_on_host(a, customer_id, host_serial, text_version),
    )


@router.post(HOST + "/consent-withdrawal")
def withdraw_on_host(
    portal: PortalDep, _csrf: CsrfDep, customer_id: str, host_serial: str, next: Next = None
) -> Response:
    """R-CON-1, R-CON-3: withdraw consent for every device of an Insight RS hosting device."""
    fleet = portal.fleet
    return _act(
        portal,
        customer_id,
        next,
        lambda a: fleet.withdraw_consent_on_host(a, customer_id, host_serial),
    )


@router.post(ENVIRONMENT + "/registrations")
def register_device(
    portal: PortalDep,
    _csrf: CsrfDep,
    customer_id: str,
    serial: Annotated[str, Form(min_length=1, max_length=256)],
    connection: Annotated[Connection, Form()],
    model: Annotated[str, Form(max_length=200)] = "",
    hosting_serial: Annotated[str, Form(max_length=256)] = "",
    is_hosting_device: Annotated[bool, Form()] = False,
    location_id: Annotated[str, Form(max_length=256)] = "",
    role: LinkRole = "reseller",
    customer_name: CustomerName = "",
    next: Next = None,
) -> Response:
    """R-PAR-3, R-LNK-3 (a): register one device under your Passport ID, linked or not;
    a central-connect device names its hosting device and follows its settings (R-LNK-2)."""
    spec = NewDevice(
        serial=serial,
        connection=connection,
        model=model.strip(),
        hosting_serial=hosting_serial.strip() or None,
        is_hosting_device=is_hosting_device,
    )
    partner = PartnerChoice(location_id=location_id, role=role) if location_id.strip() else None
    fleet = portal.fleet
    return _act(
        portal,
        customer_id,
        next,
        lambda a: fleet.register_devices(a, customer_id, [spec], partner, customer_name),
    )


# --- what the pages show ----------------------------------------------------------------


def consent_wording(version: str = CURRENT_CONSENT_TEXT) -> dict[str, str]:
    """R-CON-3: the version a consent form grants and its wording, as recorded on grant."""
    return {"version": version, "text": CONSENT_TEXTS[version]}


def _environment_page(
    portal: Portal,
    scope: CustomerScope,
    cursor: str | None,
    refusal: Refusal | None = None,
) -> Response:
    listing = repr(("environment", scope.customer_id))
    with portal.views.transaction() as tx:
        found = my_it_environment(tx, scope, after=portal.after(listing, cursor), limit=PAGE_SIZE)
    here = ENVIRONMENT.format(customer_id=scope.customer_id)
    return portal.render(
        "customers/environment.html",
        refusal.status if refusal else 200,
        customer_id=scope.customer_id,
        groups=found.groups,
        next_cursor=portal.cursor(listing, found.next_after),
        consent=consent_wording(),
        refusal=refusal,
        back=here + (f"?cursor={cursor}" if cursor else ""),
    )


def _device_page(
    portal: Portal, scope: CustomerScope, serial: str, refusal: Refusal | None = None
) -> Response:
    with portal.views.transaction() as tx:
        found = environment_device(tx, scope, serial)
    return portal.render(
        "customers/device.html",
        refusal.status if refusal else 200,
        customer_id=scope.customer_id,
        device=found,
        consent=consent_wording(),
        refusal=refusal,
        back=DEVICE.format(customer_id=scope.customer_id, serial=found.serial),
    )


def _act(
    portal: Portal, customer_id: str, given: str | None, command: Callable[[Any], None]
) -> Response:
    """Run `command` as the actor for its own customer (403 / 404 pages before anything
    runs), then go back to the page the form was on; a refusal is shown on that page."""
    scope = customer_scope(portal.actor, customer_id, "change devices")
    back = _back(scope, given)
    try:
        command(portal.actor)
    except DomainError as refused:
        return _refused_on(portal, scope, back, portal.refusal(refused))
    portal.caught_up()
    return portal.go_back(back)


def _without_location_id(portal: Portal, customer_id: str, given: str | None) -> Response:
    """R-LNK-1: a link asked for without a Location ID, refused on the page it came from."""
    scope = customer_scope(portal.actor, customer_id, "change devices")
    text = portal.gettext("Enter the partner's Location ID to link the selected devices.")
    refusal = Refusal("invalid-fields", 422, text, None, {})  # a missing field, no rule
    return _refused_on(portal, scope, _back(scope, given), refusal)


def _back(scope: CustomerScope, given: str | None) -> str:
    """The page to come back to: one of this customer's pages, else My IT Environment."""
    own = BASE.format(customer_id=scope.customer_id) + "/"
    if given and given.startswith(own) and "\\" not in given and "//" not in given:
        return given
    return ENVIRONMENT.format(customer_id=scope.customer_id)


def _refused_on(portal: Portal, scope: CustomerScope, back: str, refusal: Refusal) -> Response:
    """The page the form was on, with the refusal above its forms."""
    path, _, query = back.partition("?")
    device_prefix = BASE.format(customer_id=scope.customer_id) + "/devices/"
    if path.startswith(device_prefix) and "/" not in path.removeprefix(device_prefix):
        return _device_page(portal, scope, path.removeprefix(device_prefix), refusal)
    cursor = query.removeprefix("cursor=") if query.startswith("cursor=") else None
    return _environment_page(portal, scope, cursor, refusal)
