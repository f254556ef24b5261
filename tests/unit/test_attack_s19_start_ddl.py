"""Attack on session 19's CREATE_TABLE=no (infra/storage/start_ddl.py, `CheckedDDL`).

With CREATE_TABLE off a start must create nothing and must stop, naming it, when
something it needs is missing. Found: only `CREATE [UNIQUE] TABLE|INDEX IF NOT EXISTS
name` was recognised; any other form a view's DDL may take (an UNLOGGED table, a view,
a sequence, a statement without IF NOT EXISTS) was skipped unchecked, so the start passed
and the first use failed with "relation does not exist"; a statement after a comment was
run as it is (a CREATE under CREATE_TABLE=no); a schema-qualified name was looked up by
its schema's name (a start refused for a table that is there).
"""

from __future__ import annotations

from typing import Any

import pytest

from infra.storage.start_ddl import CheckedDDL, MissingTablesError


class FakeTx:
    """A Tx whose catalog holds `present`; records what ran and what was looked up."""

    def __init__(self, present: set[str]) -> None:
        self.present, self.ran, self.looked_up = present, list[str](), list[str]()

    def execute(self, statement: str, params: Any = ()) -> None:
        self.ran.append(statement)

    def query(self, statement: str, params: Any = ()) -> list[tuple[bool]]:
        self.looked_up.append(params[0])
        return [(params[0] in self.present,)]


MISSING_FORMS = [
    "CREATE TABLE pf_x (a INT)",
    "CREATE UNLOGGED TABLE IF NOT EXISTS pf_x (a INT)",
    "CREATE OR REPLACE VIEW pf_x AS SELECT 1",
    "CREATE MATERIALIZED VIEW IF NOT EXISTS pf_x AS SELECT 1",
    "CREATE SEQUENCE IF NOT EXISTS pf_x",
    "CREATE INDEX pf_x ON pf_t (a)",
    "-- the view's table\nCREATE TABLE IF NOT EXISTS pf_x (a INT)",
    "/* made at start */ create table if not exists pf_x (a int)",
]


@pytest.mark.parametrize("kind", ["postgres", "sqlite"])
@pytest.mark.parametrize("statement", MISSING_FORMS)
def test_attack_s19_a_missing_relation_in_any_form_stops_the_start(
    kind: str, statement: str
) -> None:
    tx = FakeTx(present=set())
    with pytest.raises(MissingTablesError, match="pf_x"):
        CheckedDDL(tx, kind).execute(statement)  # type: ignore[arg-type]
    assert tx.ran == []


@pytest.mark.parametrize("kind", ["postgres", "sqlite"])
@pytest.mark.parametrize("statement", MISSING_FORMS)
def test_attack_s19_a_present_relation_in_any_form_is_left_alone(kind: str, statement: str) -> None:
    tx = FakeTx(present={"pf_x"})
    CheckedDDL(tx, kind).execute(statement)  # type: ignore[arg-type]
    assert tx.ran == []
    assert tx.looked_up == ["pf_x"]


@pytest.mark.parametrize(
    ("kind", "statement", "name"),
    [
        ("postgres", 'CREATE TABLE IF NOT EXISTS "s"."pf_x" (a INT)', '"s"."pf_x"'),
        ("postgres", "CREATE TABLE IF NOT EXISTS s.pf_x (a INT)", "s.pf_x"),
        ("postgres", 'CREATE INDEX IF NOT EXISTS "i""x" ON "s"."t" (a)', '"i""x"'),
        ("sqlite", 'CREATE TABLE IF NOT EXISTS "main"."pf_x" (a INT)', "pf_x"),
        ("sqlite", 'CREATE TABLE IF NOT EXISTS "pf ""x""" (a INT)', 'pf "x"'),
    ],
)
def test_attack_s19_qualified_and_quoted_names_are_looked_up_whole(
    kind: str, statement: str, name: str
) -> None:
    tx = FakeTx(present={name})
    CheckedDDL(tx, kind).execute(statement)  # type: ignore[arg-type]
    assert tx.looked_up == [name]
    assert tx.ran == []


def test_attack_s19_a_create_it_cannot_read_is_refused_not_skipped() -> None:
    tx = FakeTx(present=set())
    with pytest.raises(MissingTablesError, match="cannot be checked"):
        CheckedDDL(tx, "postgres").execute("CREATE FUNCTION pf_f() RETURNS int AS 'select 1'")  # type: ignore[arg-type]
    assert tx.ran == []


def test_attack_s19_rows_and_repairs_still_as_before() -> None:
    """The tracking rows run; storage parameters, REINDEX and the schema are left out."""
    tx = FakeTx(present=set())
    checked = CheckedDDL(tx, "postgres")  # type: ignore[arg-type]
    for statement in (
        "INSERT INTO pf_tracking VALUES ('v', 0) ON CONFLICT DO NOTHING",
        "ALTER TABLE pf_x SET (fillfactor = 90)",
        "REINDEX INDEX pf_i",
        "CREATE SCHEMA IF NOT EXISTS s",
    ):
        checked.execute(statement)
    assert tx.ran == ["INSERT INTO pf_tracking VALUES ('v', 0) ON CONFLICT DO NOTHING"]
