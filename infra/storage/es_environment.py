"""eventsourcing's variables in the process environment: what the service cannot honour.

eventsourcing configures an application from the process environment with the `env` the
service passes laid over it (`Application.construct_env`), and looks each variable up
under the application's name first (PARTNERFLEET_X before X; a policy's
PARTNERFLEET.POLICY.ALERTS_X). So a variable set in the environment reaches the event
store although Settings never read it. `refusals` names each one the service cannot honour,
with its value and what is supported, for Settings to refuse at start (session 18: with
ORIGINATOR_ID_TYPE=text the fleet started and then failed at its first load, by UUID):

- the storage variables Settings writes (`Storage.env`): set otherwise, the event store and
  the views (which connect with `Storage.env` alone) would use different stores, or the
  variable is silently overridden; under an application's name they would give one
  application a store of its own;
- variables whose other values the code does not support: ORIGINATOR_ID_TYPE (every
  aggregate id is a UUID), SINGLE_ROW_TRACKING (FleetProcessRecorder needs it);
- variables the fleet never reads, because it builds that part itself: the transcoder,
  the mapper, the application and tracking recorders, the password function.

CREATE_TABLE is read by Settings (`create_table`) and honoured by every table the service
makes, not only the event store's; under an application's name it is refused (one value
for the whole service). Every other eventsourcing variable (pool sizes, timeouts, CIPHER_*,
COMPRESSOR_TOPIC, snapshotting, POSTGRES_ENABLE_DB_FUNCTIONS) is honoured by the event
store.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping

STORAGE_KEYS = frozenset(
    {
        "PERSISTENCE_MODULE",
        "PROCESS_RECORDER_TOPIC",
        "SQLITE_DBNAME",
        "POSTGRES_HOST",
        "POSTGRES_PORT",
        "POSTGRES_USER",
        "POSTGRES_PASSWORD",
        "POSTGRES_DBNAME",
        "POSTGRES_SCHEMA",
    }
)
NEVER_READ = {
    "APPLICATION_RECORDER_TOPIC": "the fleet records with its process recorder",
    "TRACKING_RECORDER_TOPIC": "the fleet records tracking with its process recorder",
    "TRANSCODER_TOPIC": "the fleet's own transcoder is always used (handlers/transcoding.py)",
    "MAPPER_TOPIC": "the fleet's own mapper is always used (handlers/transcoding.py)",
    "POSTGRES_GET_PASSWORD_TOPIC": "the views connect with DATABASE_URL's or POSTGRES_PASSWORD",
}
TRUE = frozenset({"y", "yes", "t", "true", "on", "1"})  # eventsourcing's strtobool
FALSE = frozenset({"n", "no", "f", "false", "off", "0"})  # and the words it reads as no
SUPPORTED: dict[str, tuple[Callable[[str], bool], str]] = {
    "ORIGINATOR_ID_TYPE": (
        lambda value: value.lower() == "uuid",
        "only 'uuid' (or unset): every aggregate id is a UUID (uuid5 of a natural key)",
    ),
    "SINGLE_ROW_TRACKING": (
        lambda value: value.lower() in TRUE,
        "only true (or unset): the fleet's recorder keeps one tracking row per application",
    ),
}
_WHY_STORAGE = {
    "PERSISTENCE_MODULE": "the store is chosen by DATABASE_URL, POSTGRES_HOST/POSTGRES_DBNAME "
    "or SQLITE_PATH, which choose {chosen!r}",
    "PROCESS_RECORDER_TOPIC": "leave it unset: the service sets {chosen!r}",
    "SQLITE_DBNAME": "name the SQLite file with SQLITE_PATH or DATABASE_URL=sqlite:///PATH "
    "(now {chosen!r})",
}
CREATE_TABLE = "CREATE_TABLE"  # Settings.create_table, written into the storage variables
ONE_STORE = "the service configures one store for all its applications; set it with DATABASE_URL"
_APPLICATION = re.compile(r"PARTNERFLEET[^_]*_(?P<key>.+)")


def refusals(environ: Mapping[str, str], chosen: Mapping[str, str]) -> list[str]:
    """Why each variable of `environ` cannot be honoured, given the storage variables
    `chosen` by Settings; empty if all can. Secrets (names ending PASSWORD or KEY) are
    never shown."""
    return [
        problem
        for name, value in sorted(environ.items())
        for problem in _check(name, value, chosen)
    ]


def _check(name: str, value: str, chosen: Mapping[str, str]) -> Iterator[str]:
    named = _APPLICATION.fullmatch(name)
    key = named["key"] if named else name
    given = f"{name}={_shown(name, value)}"
    if key in NEVER_READ:
        yield f"{given} is not supported, only unset: {NEVER_READ[key]}"
    elif key in SUPPORTED and not SUPPORTED[key][0](value):
        yield f"{given} is not supported, {SUPPORTED[key][1]}"
    elif key in STORAGE_KEYS and named:
        yield f"{given} is not supported: {ONE_STORE}"
    elif key == CREATE_TABLE and named:
        yield f"{given} is not supported: set CREATE_TABLE, for every process of the service"
    elif key in chosen and value and not _same(key, value, chosen[key]):
        yield f"{given} is not supported: {_why(key, chosen[key])}"


def _same(key: str, value: str, chosen: str) -> bool:
    if key == CREATE_TABLE:  # Settings read it (pydantic's bool) and wrote "yes" or "no"
        return (value.strip().lower() in TRUE) == (chosen in TRUE)
    numbers = ("POSTGRES_PORT", "POSTGRES_CONNECT_TIMEOUT")
    if key in numbers and value.strip().isascii() and value.strip().isdigit():
        return int(value) == int(chosen)
    return value == chosen


def _why(key: str, chosen: str) -> str:
    if key in _WHY_STORAGE:
        return _WHY_STORAGE[key].format(chosen=chosen)
    if "PASSWORD" in key:
        return "it differs from DATABASE_URL's password; set one of them"
    return f"it differs from DATABASE_URL's ({chosen!r}); set one of them"


def _shown(name: str, value: str) -> str:
    return "(hidden)" if name.endswith(("PASSWORD", "KEY")) else repr(value)
