"""`positional`: psycopg's `%(name)b` placeholders as PostgreSQL's $n (issue 11, session
18: the save's statements prepared on libpq directly)."""

from __future__ import annotations

import pytest

from infra.storage.pg_recorder import FleetProcessRecorder, positional


def test_session18_names_numbered_in_order_of_first_use() -> None:
    text, names = positional(b"SELECT %(b)b, %(a)b, %(b)b::int[], '%%'")
    assert text == b"SELECT $1, $2, $1::int[], '%'"
    assert names == ("b", "a")


def test_session18_no_placeholder_is_left_as_it_is() -> None:
    assert positional(b"LOCK TABLE x IN EXCLUSIVE MODE") == (b"LOCK TABLE x IN EXCLUSIVE MODE", ())


@pytest.mark.parametrize("statement", [b"SELECT %s", b"SELECT %(a)s", b"SELECT 5 % 2"])
def test_session18_other_placeholders_are_refused(statement: bytes) -> None:
    with pytest.raises(ValueError, match="placeholders"):
        positional(statement)


def test_session18_the_recorders_statements_convert() -> None:
    """Every statement the recorder sends directly has only %(name)b placeholders."""
    from infra.storage import pg_recorder

    for template in (pg_recorder.GROUP_STATEMENT, pg_recorder.READS_STATEMENT):
        text, names = positional(template.encode())
        assert b"%" not in text.replace(b"%%", b"")
        assert names
    assert FleetProcessRecorder.checks_read_versions
