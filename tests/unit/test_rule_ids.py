"""Issue 9: every refusal that enforces a rule of DOMAIN.md names it (`DomainError.rule`).

The table (tests/unit/rule_refusals*.py) provokes each such refusal through the fleet;
the code names no rule DOMAIN.md lacks, and every rule a raise site gives is provoked.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from domain import DeletionRefusedError
from domain.base import DomainError, NotFoundError
from domain.rules import RULE_IDS
from tests.scenarios import event_count, in_memory_fleet
from tests.unit import rule_refusals, rule_refusals_more
from tests.unit.rule_refusals import Case, linked, partner

ROOT = Path(__file__).resolve().parents[2]
CODE = ("domain", "handlers", "projections", "infra")
RULE_ID = re.compile(r"\bR-[A-Z]{3}-\d+\b")
GIVEN_RULE = re.compile(r"""["'](R-[A-Z]{3}-\d+)["']""")  # a rule ID as a value, not prose
CASES: list[Case] = [*rule_refusals.CASES, *rule_refusals_more.CASES]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_i9_each_rule_refusal_names_its_rule_and_records_nothing(case: Case) -> None:
    """R-PAR-1…4, R-LNK-4, R-CON-1, R-CON-2, R-CON-4, R-FAV-2, R-FAV-3, R-GRP-1…3, R-SVC-1,
    R-HLD-3, R-ALR-1, R-ALR-2, R-ALR-4: the refusal is of its kind, names its rule, and
    leaves no event behind."""
    fleet = in_memory_fleet()
    act = case.arrange(fleet)
    before = event_count(fleet)

    with pytest.raises(case.error, match=case.match) as refused:
        act()

    assert refused.value.rule == case.rule
    assert event_count(fleet) == before


def test_r_grp_2_a_refused_deletion_gives_its_reasons_and_admins_as_data() -> None:
    """R-GRP-2: the refusal says why and whom to contact, in words and as `extensions`."""
    fleet = in_memory_fleet()
    anna, group = partner(fleet), linked(fleet)
    fleet.create_child_group(anna, group, "K1", "Racks")

    with pytest.raises(DeletionRefusedError) as refused:
        fleet.delete_customer_group(anna, group)

    assert refused.value.extensions == {
        "reasons": [
            "1 device(s) are still linked to it",
            "1 partner-created child group(s) remain, 0 of them not shared with you",
        ],
        "admins": ["anna@LOC-1"],
    }
    assert all(reason in str(refused.value) for reason in refused.value.reasons)


def test_i9_a_refusal_no_rule_makes_names_none() -> None:
    """Something not found, or a malformed request, is no rule's refusal: `rule` is None."""
    fleet = in_memory_fleet()

    with pytest.raises(NotFoundError) as missing:
        fleet.certify_partner(rule_refusals.OPS, "LOC-9", "resell_view_monitor")
    partner(fleet)
    with pytest.raises(DomainError) as malformed:
        fleet.certify_partner(rule_refusals.OPS, "LOC-1", "no_such_programme")

    assert (missing.value.rule, malformed.value.rule) == (None, None)
    assert (missing.value.extensions, malformed.value.extensions) == ({}, {})


def test_r_fav_2_a_refused_command_logs_its_rule() -> None:
    """R-FAV-2: the command's one 'refused' line names the rule beside the reason."""
    fleet = in_memory_fleet()
    act = rule_refusals.r_fav_2_the_26th_favourite(fleet)

    with capture_logs() as logs, pytest.raises(DomainError):
        act()

    [line] = [e for e in logs if e["event"] == "command" and e["outcome"] == "refused"]
    assert line["rule"] == "R-FAV-2"


def test_i9_every_rule_id_the_code_names_is_a_rule_of_the_catalogue() -> None:
    """Code, docstrings and comments name only rules that exist (domain/rules.py)."""
    named = {
        (path.relative_to(ROOT).as_posix(), rule)
        for path in _sources()
        for rule in RULE_ID.findall(path.read_text(encoding="utf-8"))
    }

    assert named, "no rule ID found: the scan looks in the wrong place"
    assert {(path, rule) for path, rule in named if rule not in RULE_IDS} == set()


def test_i9_every_rule_a_raise_site_gives_is_provoked_by_the_table() -> None:
    """Each rule ID given as a value in the code (`rule="R-…"`) has a case in the table."""
    given = {rule for path in _sources() for rule in GIVEN_RULE.findall(path.read_text())}

    assert "R-GRP-2" in given
    assert given - {case.rule for case in CASES} == set()


def test_i9_the_catalogue_is_the_rules_of_domain_md() -> None:
    """domain/rules.py lists exactly the rule IDs DOMAIN.md defines (`- **R-XXX-n**`)."""
    text = _domain_md().read_text(encoding="utf-8")

    defined = set(re.findall(r"^- \*\*(R-[A-Z]{3}-\d+)\*\*", text, flags=re.MULTILINE))

    assert defined == RULE_IDS


def _sources() -> list[Path]:
    return sorted(p for folder in CODE for p in (ROOT / folder).rglob("*.py"))


def _domain_md() -> Path:
    """DOMAIN.md, kept beside the repository in `shared/` (../shared from /work/main)."""
    for folder in ROOT.parents:
        found = folder / "shared" / "DOMAIN.md"
        if found.is_file():
            return found
    raise AssertionError(f"no shared/DOMAIN.md in a folder above {ROOT}")
