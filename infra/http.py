"""HTTP: the FastAPI app, its health check, and the one place domain refusals become responses."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from domain.base import DomainError, NotAllowedError, NotFoundError
from handlers import PartnerFleet, PolicyRunner
from handlers.base import ConflictError
from infra.settings import Settings
from infra.view_runner import ViewRunner


class StorageInfo(BaseModel):
    """Which event store the service uses (never its password)."""

    kind: Literal["sqlite", "postgres"]
    location: str
    schema_name: str


class Health(BaseModel):
    """The service is up, on this storage, with this many events stored."""

    status: Literal["ok"]
    storage: StorageInfo
    events: int
    views_lag: dict[str, int]
    policies_lag: dict[str, int]


def get_fleet(request: Request) -> PartnerFleet:
    """The application the API was created over."""
    fleet: PartnerFleet = request.app.state.fleet
    return fleet


Fleet = Annotated[PartnerFleet, Depends(get_fleet)]


def _status_of(error: Exception) -> int:
    if isinstance(error, NotFoundError):
        return 404
    if isinstance(error, NotAllowedError):
        return 403
    if isinstance(error, ConflictError):
        return 409
    return 422


async def _refused(_: Request, error: Exception) -> JSONResponse:
    body = {"error": type(error).__name__, "detail": str(error)}
    return JSONResponse(status_code=_status_of(error), content=body)


def create_api(
    fleet: PartnerFleet,
    settings: Settings,
    views: ViewRunner | None = None,
    policies: PolicyRunner | None = None,
) -> FastAPI:
    """The HTTP application over `fleet` (and its read models and policies, when given)."""
    api = FastAPI(title="partnerfleet", version="0.1.0")
    api.state.fleet = fleet
    api.state.views = views
    api.add_exception_handler(DomainError, _refused)
    api.add_exception_handler(ConflictError, _refused)
    storage = settings.storage

    @api.get("/healthz")
    def healthz(fleet: Fleet) -> Health:
        """Liveness and the storage in use."""
        info = StorageInfo(kind=storage.kind, location=storage.location, schema_name=storage.schema)
        lag = views.lag() if views is not None else {}
        decided = policies.lag() if policies is not None else {}
        events = fleet.recorder.max_notification_id() or 0
        return Health(status="ok", storage=info, events=events, views_lag=lag, policies_lag=decided)

    return api
