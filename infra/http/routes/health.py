"""GET /healthz: the storage in use and how every loop, view and policy is doing."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime
from typing import Literal, TypeVar

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from infra.follow.policy_follower import PolicyFollower
from infra.follow.view_faults import Fault
from infra.follow.view_runner import ViewRunner
from infra.http.deps import FleetDep
from infra.kafka.relay import Relay
from infra.loops import Follower, Status, describe

T = TypeVar("T")
READ_SECONDS = 3.0  # what /healthz waits for one read of the store or the views
_READS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="healthz-read")


class StorageInfo(BaseModel):
    """Which event store the service uses (never its password)."""

    kind: Literal["sqlite", "postgres"]
    location: str
    schema_name: str


class LoopHealth(BaseModel):
    """A loop, or one view or policy in it: running, retrying (why, since when, where), or
    stopped. Times are UTC."""

    state: Literal["running", "retrying", "stopped"]
    since: datetime
    error: str | None = None
    failures: int = 0
    retry_in_seconds: float | None = None
    position: int | None = None
    notification_id: int | None = None
    topic: str | None = None

    @classmethod
    def of(cls, status: Status) -> LoopHealth:
        """The health of a follower's status."""
        return cls.model_validate(status.as_dict())

    @classmethod
    def of_fault(cls, fault: Fault) -> LoopHealth:
        """A view stuck on an event, as recorded by whichever runner follows it."""
        return cls(
            state="retrying",
            since=datetime.fromisoformat(fault.since),
            error=fault.error,
            failures=fault.failures,
            position=fault.position,
            notification_id=fault.notification_id,
            topic=fault.topic,
        )


class RelayHealth(BaseModel):
    """The in-process relay: events not yet acknowledged by the broker (None until it has
    reached its destination once) and why its last pass failed (None once one succeeds)."""

    lag: int | None
    last_error: str | None


class Health(BaseModel):
    """The service on this storage: "ok" (HTTP 200) only while the store answers and every
    loop, view and policy runs; "degraded" (HTTP 503) otherwise, saying which and why."""

    status: Literal["ok", "degraded"]
    storage: StorageInfo
    events: int | None
    views_lag: dict[str, int]
    policies_lag: dict[str, int]
    runners: dict[str, LoopHealth]  # the loops this process runs: "views", "policies"
    views: dict[str, LoopHealth]
    policies: dict[str, LoopHealth]
    relay: RelayHealth | None = None  # only when this process runs the relay
    errors: list[str]  # what could not be read for this answer (e.g. the store is away)

    def judged(self) -> Health:
        """The same, with `status` saying whether everything is well."""
        loops = [*self.runners.values(), *self.views.values(), *self.policies.values()]
        relay_failing = self.relay is not None and self.relay.last_error is not None
        well = not self.errors and not relay_failing and all(x.state == "running" for x in loops)
        return self.model_copy(update={"status": "ok" if well else "degraded"})


router = APIRouter(tags=["health"])


@router.get("/healthz", responses={503: {"model": Health}})
def healthz(request: Request, fleet: FleetDep, response: Response) -> Health:
    """Liveness, the storage in use, and how every follower is doing (503 if not well)."""
    state = request.app.state
    views: ViewRunner | None = state.views
    policies: PolicyFollower | None = state.policies
    storage = state.settings.storage
    info = StorageInfo(kind=storage.kind, location=storage.location, schema_name=storage.schema)
    errors: list[str] = []
    health = Health(
        status="ok",
        storage=info,
        events=_read(errors, lambda: fleet.recorder.max_notification_id() or 0),
        views_lag=(_read(errors, views.lag) if views else None) or {},
        policies_lag=(_read(errors, policies.lag) if policies else None) or {},
        runners=_runners(views, policies, state.loops),
        views=_views(views, errors),
        policies={k: LoopHealth.of(s) for k, s in (policies.health() if policies else {}).items()},
        relay=_relay(state.relay, errors),
        errors=errors,
    ).judged()
    response.status_code = 200 if health.status == "ok" else 503
    return health


def _read(errors: list[str], read: Callable[[], T]) -> T | None:
    # The health check answers even when the store is away: it says so instead, within
    # READ_SECONDS rather than after the pools' own timeouts (30 s and more). A read past
    # its deadline goes on in one of few threads; when all are busy, later reads time out.
    try:
        return _READS.submit(read).result(timeout=READ_SECONDS)
    except FutureTimeout:
        errors.append(f"the store gave no answer within {READ_SECONDS:g} s")
        return None
    except Exception as error:
        errors.append(describe(error))
        return None


def _relay(relay: Relay | None, errors: list[str]) -> RelayHealth | None:
    if relay is None:
        return None
    return RelayHealth(lag=_read(errors, relay.lag), last_error=relay.last_error)


def _runners(
    views: ViewRunner | None, policies: PolicyFollower | None, others: Mapping[str, Follower]
) -> dict[str, LoopHealth]:
    loops = {
        "views": views.runner_status() if views else None,
        "policies": policies.runner_status() if policies else None,
        **{name: loop.status() for name, loop in others.items()},
    }
    return {name: LoopHealth.of(status) for name, status in loops.items() if status is not None}


def _views(views: ViewRunner | None, errors: list[str]) -> dict[str, LoopHealth]:
    if views is None:
        return {}
    faults = _read(errors, views.faults) or {}  # recorded by whichever process follows them
    return {
        name: LoopHealth.of_fault(faults[name])
        if status.healthy and name in faults
        else LoopHealth.of(status)
        for name, status in views.health().items()
    }
