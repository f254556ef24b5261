"""GET /problems/{kind}: what each problem `type` of the API's errors means (RFC 9457)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from domain.base import NotFoundError
from infra.http.errors import KINDS
from infra.http.routing import FleetRoute
from infra.http.schemas.common import problem_responses

router = APIRouter(route_class=FleetRoute, tags=["problems"])


class ProblemType(BaseModel):
    """One kind of problem the API answers with."""

    type: str
    title: str
    status: int
    description: str


@router.get("/problems/{kind}", responses=problem_responses(404))
def problem_type(kind: str) -> ProblemType:
    """The meaning of one problem type (the `type` member of a problem+json answer)."""
    known = KINDS.get(kind)
    if known is None:
        raise NotFoundError(f"No problem type {kind!r}; known: {', '.join(sorted(KINDS))}.")
    return ProblemType(
        type=known.type_uri(kind),
        title=known.title,
        status=known.status,
        description=known.description,
    )
