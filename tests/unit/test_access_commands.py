"""The access matrix, cell by cell (issue 9; docs/decisions.md, "Access matrix").

Every command in `COMMANDS` x every role x (own tenant, another tenant) -> the exact outcome
of tests/unit/access_matrix.py, each on its own copy of the world of
tests/unit/access_world.py, in memory; a refusal records nothing.
"""

from __future__ import annotations

import pytest

from domain import NotFoundError
from handlers.access import ForbiddenError, Role
from handlers.base import COMMANDS
from tests.actors import partner_user
from tests.scenarios import event_count
from tests.unit.access_matrix import FORBIDDEN, MATRIX, NOT_FOUND, OK, Outcome
from tests.unit.access_world import OTHER, OWN, Side, actor_for, world
from tests.unit.conftest import ANNA, BEN, OTTO


def expected(name: str, role: Role, side: Side) -> Outcome:
    """The matrix's outcome for `role` calling `name` on `side`."""
    outcomes = MATRIX[name].allowed.get(role, (FORBIDDEN, FORBIDDEN))
    return outcomes[0 if side is OWN else 1]


CASES = [
    pytest.param(name, role, side, id=f"{name}-{role.value}-{'own' if side is OWN else 'other'}")
    for name, row in MATRIX.items()
    for role in Role
    for side in ((OWN, OTHER) if row.other else (OWN,))
]


@pytest.mark.parametrize(("name", "role", "side"), CASES)
def test_issue_9_access_matrix_every_command_every_role_own_and_other_tenant(
    name: str, role: Role, side: Side
) -> None:
    """R-PAR-2, R-LNK-1, R-CON-3, R-GRP-1…3, R-HLD-3, R-ALR-1: the exact outcome per cell;
    a refusal records nothing."""
    fleet = world()
    actor, outcome = actor_for(fleet, role), expected(name, role, side)
    before = event_count(fleet)

    if outcome == OK:
        MATRIX[name].call(fleet, actor, side)
        return
    error, says = (
        {
            FORBIDDEN: (ForbiddenError, f"The role {role.value} may not"),
            NOT_FOUND: (NotFoundError, "^No "),
        }.get(outcome, (None, ""))
        if isinstance(outcome, str)
        else (outcome.error, outcome.says)
    )
    assert error is not None
    with pytest.raises(error, match=says) as refused:
        MATRIX[name].call(fleet, actor, side)
    assert type(refused.value) is error  # 403 and 404 are not each other's subclasses
    assert event_count(fleet) == before


def test_issue_9_the_matrix_lists_every_declared_command_and_its_roles() -> None:
    """A command added to COMMANDS without a row here fails; so does a row for no command,
    and a row allowing other roles than the declaration."""
    assert set(MATRIX) == set(COMMANDS)
    for name, row in MATRIX.items():
        assert set(row.allowed) == set(COMMANDS[name].roles), name


def test_r_par_1_the_unit_tests_partner_actors_are_what_the_store_authenticates() -> None:
    """R-PAR-1: ANNA (admin), BEN (user), OTTO (admin) of tests/unit/conftest.py are the
    actors `authenticate` makes once the fixtures registered them."""
    fleet = world()

    for constant in (ANNA, BEN, OTTO):
        checked = partner_user(fleet, constant.tenant, constant.subject)
        assert (checked.role, checked.tenant, checked.subject, checked.partner_type) == (
            constant.role,
            constant.tenant,
            constant.subject,
            constant.partner_type,
        )
