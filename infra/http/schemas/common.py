"""What every resource's schemas share: the problem document (RFC 9457) for OpenAPI."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from infra.http.errors import MEDIA_TYPE


class FieldError(BaseModel):
    """One invalid field: where it is (`in`: body, query, path, header) and what is wrong."""

    field: str
    in_: str = Field(alias="in")
    message: str


class Problem(BaseModel):
    """An error (application/problem+json): see GET /problems/{kind} for each `type`."""

    type: str = Field(examples=["/problems/rule-refused"])
    title: str
    status: int
    detail: str
    instance: str = Field(description="urn:uuid:<request id>, as in X-Request-Id and the logs")
    rule: str | None = Field(default=None, description="The rule ID that refused, e.g. R-FAV-2")
    errors: list[FieldError] | None = None
    reasons: list[str] | None = Field(
        default=None, description="R-GRP-2: every reason a customer group cannot be deleted"
    )
    admins: list[str] | None = Field(
        default=None, description="R-GRP-2: the group's admins to contact about a refused deletion"
    )


COMMON_STATUSES = (400, 401, 403, 404, 413, 422, 503)
COMMAND_STATUSES = (*COMMON_STATUSES, 409, 412)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` saying that these statuses answer with a problem document."""
    return {
        status: {"model": Problem, "content": {MEDIA_TYPE: {}}, "description": "A problem"}
        for status in statuses
    }
