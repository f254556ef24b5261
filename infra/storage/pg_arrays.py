"""Arrays sent to PostgreSQL already in its binary form, built in a few C-level calls.

psycopg dumps a list parameter element by element in Python (a dumper call, a struct
pack and a list append each): for the group commit's eleven arrays that was a third of a
group's client CPU (session 17). These build the same bytes as PostgreSQL's `array_send`
(`array_recv` reads them): a header (1 dimension, no NULLs, the element type, length,
lower bound 1) and each element as its length and its binary value. Empty arrays are the
0-dimension header.

`packed_*` return a `Packed` (bytes) of the array type's oid; `use_packed_arrays(conn)`
lets a connection send them (once per connection; `Packed` values need it).
"""

from __future__ import annotations

import struct
import weakref
from collections.abc import Collection, Iterable, Sequence
from itertools import repeat
from typing import Any
from uuid import UUID

from psycopg import Connection
from psycopg.adapt import Dumper
from psycopg.pq import Format

_HEADER = struct.Struct(">iiIii")  # ndim, has nulls, element oid, length, lower bound
_EMPTY = struct.Struct(">iiI")
_INT4 = struct.Struct(">ii")  # each element: its length (4) and value
_INT8 = struct.Struct(">iq")
_LENGTH = struct.Struct(">i")
Buffer = bytes | bytearray | memoryview  # what a bytea element may be given as
_UUID_LENGTH = _LENGTH.pack(16)

# Element type oid, array type oid (pg_type), per element type.
INT4, INT8, TEXT, BYTEA, UUID_OID = (23, 1007), (20, 1016), (25, 1009), (17, 1001), (2950, 2951)


class Packed(bytes):
    """An array in PostgreSQL's binary form; `oid` is its array type's."""

    oid = 0


class PackedInt4(Packed):
    oid = INT4[1]


class PackedInt8(Packed):
    oid = INT8[1]


class PackedText(Packed):
    oid = TEXT[1]


class PackedBytea(Packed):
    oid = BYTEA[1]


class PackedUuid(Packed):
    oid = UUID_OID[1]


def _array(element_oid: int, count: int, body: Iterable[bytes]) -> bytes:
    if not count:
        return _EMPTY.pack(0, 0, element_oid)
    return b"".join([_HEADER.pack(1, 0, element_oid, count, 1), *body])


# The `*_array` functions build plain bytes (what `_send_directly` sends, with no psycopg
# dumper to pick); the `packed_*` ones the same bytes as a `Packed` for psycopg. The
# fixed-size elements are packed by `map` over a bound `Struct.pack`: no Python frame per
# element (issue 11, session 20).


def int4_array(values: Sequence[int]) -> bytes:
    """int4[] (each -2**31 <= value < 2**31, else struct.error)."""
    count = len(values)
    return _array(INT4[0], count, map(_INT4.pack, repeat(4, count), values))


def int8_array(values: Sequence[int]) -> bytes:
    """int8[] (bigint; each -2**63 <= value < 2**63, else struct.error)."""
    count = len(values)
    return _array(INT8[0], count, map(_INT8.pack, repeat(8, count), values))


def text_array(values: Sequence[str]) -> bytes:
    """text[] (UTF-8, the store's encoding; UnicodeEncodeError for a lone surrogate)."""
    return _array(TEXT[0], len(values), _sized([v.encode() for v in values]))


def bytea_array(values: Sequence[Buffer]) -> bytes:
    """bytea[] (bytes or any buffer: a bytearray, a memoryview of any format, as its bytes)."""
    return _array(BYTEA[0], len(values), _sized(values))


def uuid_array(values: Collection[UUID]) -> bytes:
    """uuid[]."""
    # `v.int.to_bytes(16, "big")` is what `UUID.bytes` returns, without its property's
    # Python call (two or so per saved command; session 22).
    return _array(
        UUID_OID[0], len(values), [_UUID_LENGTH + v.int.to_bytes(16, "big") for v in values]
    )


def packed_int4(values: Sequence[int]) -> Packed:
    """int4[] as `int4_array`."""
    return PackedInt4(int4_array(values))


def packed_int8(values: Sequence[int]) -> Packed:
    """int8[] as `int8_array`."""
    return PackedInt8(int8_array(values))


def packed_text(values: Sequence[str]) -> Packed:
    """text[] as `text_array`."""
    return PackedText(text_array(values))


def packed_bytea(values: Sequence[Buffer]) -> Packed:
    """bytea[] as `bytea_array`."""
    return PackedBytea(bytea_array(values))


def _sized(values: Sequence[Buffer]) -> list[bytes]:
    """Each value after its length (in bytes: a buffer that is not bytes, a memoryview of
    4-byte items say, is taken as its bytes, so its length is theirs, not its items')."""
    parts: list[bytes] = []
    for given in values:
        value = given if type(given) is bytes else bytes(given)
        parts += (_LENGTH.pack(len(value)), value)
    return parts


def packed_uuid(values: Collection[UUID]) -> Packed:
    """uuid[] as `uuid_array`."""
    return PackedUuid(uuid_array(values))


class _PackedDumper(Dumper):
    format = Format.BINARY

    def dump(self, obj: Any) -> bytes:
        return obj  # type: ignore[no-any-return]


def _dumper(cls: type[Packed]) -> type[Dumper]:
    return type(f"{cls.__name__}Dumper", (_PackedDumper,), {"oid": cls.oid})


_DUMPERS = [
    (cls, _dumper(cls)) for cls in (PackedInt4, PackedInt8, PackedText, PackedBytea, PackedUuid)
]
_READY: weakref.WeakSet[Connection[Any]] = weakref.WeakSet()


def use_packed_arrays(conn: Connection[Any]) -> None:
    """Let `conn` send `Packed` arrays (their dumpers registered once per connection)."""
    if conn in _READY:
        return
    for cls, dumper in _DUMPERS:
        conn.adapters.register_dumper(cls, dumper)
    _READY.add(conn)
