"""MIB views over the lab's state model: scalars and tables in exact lexicographic OID order.

The tree answers GET, GETNEXT and SET (RFC 3416 sections 4.2.1, 4.2.2, 4.2.5) and offers an
encoded walk (:meth:`MibTree.walk_encoded`) that the agent uses for GETNEXT / GETBULK without
allocating per-varbind Python objects beyond the encoded bytes.

Values are ``int`` for numeric syntaxes, ``bytes`` for OCTET_STRING and IP_ADDRESS (4 octets)
and ``tuple[int, ...]`` for OBJECT_IDENTIFIER. On encoding, COUNTER32 / TIMETICKS / COUNTER64
wrap modulo their size and GAUGE32 / UNSIGNED32 latch at 2^32-1 (RFC 2578 section 7.1).
"""

from __future__ import annotations

import enum
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from typing import Any, Final

from enforcer.transport.snmpwire.ber import (
    MAX_INT32,
    MAX_UINT32,
    MAX_UINT64,
    MIN_INT32,
    Tag,
    enc_int,
    enc_octets,
    enc_oid,
    enc_oid_body,
    enc_subids,
    enc_value,
    tlv,
)
from enforcer.transport.snmpwire.status import ErrorStatus as ErrorStatus  # re-exported

OID = tuple[int, ...]

_BYTE: Final = tuple(bytes((i,)) for i in range(256))


class Syntax(enum.Enum):
    """SMI base syntaxes a node can have (RFC 2578 section 7.1)."""

    INTEGER = "INTEGER"
    OCTET_STRING = "OCTET STRING"
    OBJECT_IDENTIFIER = "OBJECT IDENTIFIER"
    IP_ADDRESS = "IpAddress"
    COUNTER32 = "Counter32"
    GAUGE32 = "Gauge32"
    UNSIGNED32 = "Unsigned32"
    TIMETICKS = "TimeTicks"
    COUNTER64 = "Counter64"

    @property
    def tag(self) -> Tag:
        """The BER tag of values of this syntax (Unsigned32 shares Gauge32's)."""
        return SYNTAX_TAG[self]


SYNTAX_TAG: Final[dict[Syntax, Tag]] = {
    Syntax.INTEGER: Tag.INTEGER,
    Syntax.OCTET_STRING: Tag.OCTET_STRING,
    Syntax.OBJECT_IDENTIFIER: Tag.OBJECT_IDENTIFIER,
    Syntax.IP_ADDRESS: Tag.IP_ADDRESS,
    Syntax.COUNTER32: Tag.COUNTER32,
    Syntax.GAUGE32: Tag.GAUGE32,
    Syntax.UNSIGNED32: Tag.GAUGE32,
    Syntax.TIMETICKS: Tag.TIMETICKS,
    Syntax.COUNTER64: Tag.COUNTER64,
}


class Missing(enum.Enum):
    """Why :meth:`MibTree.get` has no value (RFC 3416 section 4.2.1)."""

    NO_SUCH_OBJECT = "noSuchObject"
    NO_SUCH_INSTANCE = "noSuchInstance"


NoSuchObject: Final = Missing.NO_SUCH_OBJECT
NoSuchInstance: Final = Missing.NO_SUCH_INSTANCE


class SetError(Exception):
    """Raised by validate / commit callbacks to refuse a SET with a given status."""

    def __init__(self, status: ErrorStatus, message: str = "") -> None:
        super().__init__(message or status.name)
        self.status = status
        self.message = message


# ---------------------------------------------------------------------------------------------
# Value encoders per syntax
# ---------------------------------------------------------------------------------------------

Encoder = Callable[[Any], bytes]


def _enc_octets(v: Any) -> bytes:
    if type(v) is bytes:
        return enc_octets(v)
    return enc_value(Tag.OCTET_STRING, v)


def _enc_ip(v: Any) -> bytes:
    return enc_value(Tag.IP_ADDRESS, v)


def _unsigned_encoder(tag: Tag, limit: int, wrap: bool) -> Encoder:
    """Encoder for an unsigned application type; wraps (counters) or latches (gauges)."""
    headers = tuple(bytes((tag, size)) for size in range(10))

    def encode(v: int) -> bytes:
        if v < 0 or v > limit:
            v = v & limit if wrap else min(max(v, 0), limit)
        size = (v.bit_length() + 8) >> 3
        return headers[size] + v.to_bytes(size, "big")

    return encode


_enc_counter32 = _unsigned_encoder(Tag.COUNTER32, MAX_UINT32, wrap=True)
_enc_gauge32 = _unsigned_encoder(Tag.GAUGE32, MAX_UINT32, wrap=False)
_enc_timeticks = _unsigned_encoder(Tag.TIMETICKS, MAX_UINT32, wrap=True)
_enc_counter64 = _unsigned_encoder(Tag.COUNTER64, MAX_UINT64, wrap=True)


def _enc_oid_value(v: Any) -> bytes:
    return enc_oid(tuple(v))


ENCODERS: Final[dict[Syntax, Encoder]] = {
    Syntax.INTEGER: enc_int,
    Syntax.OCTET_STRING: _enc_octets,
    Syntax.OBJECT_IDENTIFIER: _enc_oid_value,
    Syntax.IP_ADDRESS: _enc_ip,
    Syntax.COUNTER32: _enc_counter32,
    Syntax.GAUGE32: _enc_gauge32,
    Syntax.UNSIGNED32: _enc_gauge32,
    Syntax.TIMETICKS: _enc_timeticks,
    Syntax.COUNTER64: _enc_counter64,
}


def encode_value(syntax: Syntax, value: Any) -> bytes:
    """The value TLV for ``value`` of ``syntax``."""
    return ENCODERS[syntax](value)


def varbind_tlv(oid_body: bytes, value_tlv: bytes) -> bytes:
    """VarBind TLV from OID content octets and a value TLV (short forms fast-pathed)."""
    ol = len(oid_body)
    if ol < 0x80:
        n = ol + 2 + len(value_tlv)
        if n < 0x80:
            return b"\x30" + _BYTE[n] + b"\x06" + _BYTE[ol] + oid_body + value_tlv
    return tlv(Tag.SEQUENCE, tlv(Tag.OBJECT_IDENTIFIER, oid_body) + value_tlv)


def _check_value(syntax: Syntax, tag: int, value: Any) -> ErrorStatus | None:
    """wrongType / wrongLength / wrongValue checks of RFC 3416 section 4.2.5 steps 2-5."""
    if tag != SYNTAX_TAG[syntax]:
        return ErrorStatus.wrongType
    if syntax is Syntax.OCTET_STRING:
        return ErrorStatus.wrongLength if len(value) > 65535 else None
    if syntax is Syntax.IP_ADDRESS:
        return ErrorStatus.wrongLength if len(value) != 4 else None
    if syntax is Syntax.OBJECT_IDENTIFIER:
        return None
    if syntax is Syntax.INTEGER:
        return None if MIN_INT32 <= value <= MAX_INT32 else ErrorStatus.wrongValue
    limit = MAX_UINT64 if syntax is Syntax.COUNTER64 else MAX_UINT32
    return None if 0 <= value <= limit else ErrorStatus.wrongValue


def _validate(fn: Callable[..., None] | None, *args: Any) -> ErrorStatus | None:
    if fn is None:
        return None
    try:
        fn(*args)
    except SetError as exc:
        return exc.status
    except Exception:  # noqa: BLE001 - a buggy callback must not take the agent down
        return ErrorStatus.genErr
    return None


# ---------------------------------------------------------------------------------------------
# Nodes
# ---------------------------------------------------------------------------------------------


class Scalar:
    """A scalar object; its only instance is ``oid + (0,)``."""

    __slots__ = ("_body", "_enc", "get", "oid", "set", "syntax", "validate")

    def __init__(
        self,
        oid: OID,
        syntax: Syntax,
        get: Callable[[], Any],
        *,
        set: Callable[[Any], object] | None = None,
        validate: Callable[[Any], None] | None = None,
    ) -> None:
        self.oid = tuple(oid)
        self.syntax = syntax
        self.get = get
        self.set = set
        self.validate = validate
        self._body = enc_oid_body((*self.oid, 0))
        self._enc = ENCODERS[syntax]

    @property
    def base(self) -> OID:
        return self.oid

    def get_rest(self, rest: OID) -> tuple[Syntax | Missing, Any]:
        if rest != (0,):
            return NoSuchInstance, None
        value = self.get()
        if value is None:
            return NoSuchInstance, None
        return self.syntax, value

    def next_rest(self, rest: OID | None) -> tuple[OID, Syntax, Any] | None:
        if rest is not None and rest != ():
            return None
        value = self.get()
        if value is None:
            return None
        return (*self.oid, 0), self.syntax, value

    def walk_rest(self, rest: OID | None, n: int, out: list[bytes]) -> tuple[int, OID | None]:
        if n <= 0 or (rest is not None and rest != ()):
            return 0, None
        value = self.get()
        if value is None:
            return 0, None
        out.append(varbind_tlv(self._body, self._enc(value)))
        return 1, (*self.oid, 0)


class Column:
    """One columnar object of a :class:`Table`; ``get(index)`` may return ``None`` (no value)."""

    __slots__ = ("_body", "_enc", "creates_row", "get", "set", "subid", "syntax", "validate")

    def __init__(
        self,
        subid: int,
        syntax: Syntax,
        get: Callable[[OID], Any],
        *,
        set: Callable[[OID, Any], object] | None = None,
        validate: Callable[[OID, Any], None] | None = None,
        creates_row: bool = False,
    ) -> None:
        self.subid = subid
        self.syntax = syntax
        self.get = get
        self.set = set
        self.validate = validate
        self.creates_row = creates_row
        self._body = b""
        self._enc = ENCODERS[syntax]


class Table:
    """A conceptual table: ``entry_oid.column.index`` instances, column-major order.

    ``indexes()`` must return the row index tuples sorted ascending; it is called once per
    request and searched with bisect, never copied.
    """

    __slots__ = (
        "_by_subid",
        "_exists",
        "_subids",
        "_suffix",
        "columns",
        "create",
        "entry_oid",
        "index_len",
        "indexes",
    )

    def __init__(
        self,
        entry_oid: OID,
        columns: list[Column],
        indexes: Callable[[], Sequence[OID]],
        *,
        exists: Callable[[OID], bool] | None = None,
        create: Callable[[OID, dict[int, Any]], None] | None = None,
        index_len: int | None = None,
    ) -> None:
        self.entry_oid = tuple(entry_oid)
        self.columns = sorted(columns, key=lambda c: c.subid)
        self._subids = [c.subid for c in self.columns]
        if len(set(self._subids)) != len(self._subids):
            raise ValueError("duplicate column sub-identifier")
        self._by_subid = {c.subid: c for c in self.columns}
        for col in self.columns:
            col._body = enc_oid_body((*self.entry_oid, col.subid))
        self.indexes = indexes
        self._exists = exists
        self.create = create
        self.index_len = index_len
        self._suffix: dict[OID, bytes] = {}

    @property
    def base(self) -> OID:
        return self.entry_oid

    def exists(self, index: OID) -> bool:
        """Whether a row exists: the ``exists`` callback, else bisect in ``indexes()``."""
        if self.index_len is not None and len(index) != self.index_len:
            return False
        if self._exists is not None:
            return self._exists(index)
        rows = self.indexes()
        k = bisect_left(rows, index)
        return k < len(rows) and rows[k] == index

    def column(self, subid: int) -> Column | None:
        return self._by_subid.get(subid)

    def _start(self, rest: OID | None, rows: Sequence[OID]) -> tuple[int, int]:
        """(column position, row position) of the first instance strictly after ``rest``."""
        if not rest:
            return 0, 0
        c = rest[0]
        ci = bisect_left(self._subids, c)
        if ci < len(self._subids) and self._subids[ci] == c and len(rest) > 1:
            return ci, bisect_right(rows, rest[1:])
        return ci, 0

    def _suffix_of(self, index: OID) -> bytes:
        cache = self._suffix
        if len(cache) > 4096 + 2 * len(self.indexes()):
            cache.clear()  # rows come and go; keep the cache bounded
        s = cache[index] = enc_subids(index)
        return s

    def get_rest(self, rest: OID) -> tuple[Syntax | Missing, Any]:
        col = self._by_subid.get(rest[0]) if rest else None
        if col is None:
            return NoSuchObject, None
        index = rest[1:]
        if not index or not self.exists(index):
            return NoSuchInstance, None
        value = col.get(index)
        if value is None:
            return NoSuchInstance, None
        return col.syntax, value

    def next_rest(self, rest: OID | None) -> tuple[OID, Syntax, Any] | None:
        rows = self.indexes()
        ci, k = self._start(rest, rows)
        cols = self.columns
        nrows = len(rows)
        while ci < len(cols):
            col = cols[ci]
            get = col.get
            while k < nrows:
                index = rows[k]
                k += 1
                value = get(index)
                if value is not None:
                    return (*self.entry_oid, col.subid, *index), col.syntax, value
            ci += 1
            k = 0
        return None

    def walk_rest(self, rest: OID | None, n: int, out: list[bytes]) -> tuple[int, OID | None]:
        """Append up to ``n`` encoded VarBinds following ``rest``; return (count, last OID)."""
        if n <= 0:
            return 0, None
        rows = self.indexes()
        ci, k = self._start(rest, rows)
        cols = self.columns
        nrows = len(rows)
        cache = self._suffix
        got = 0
        last: tuple[int, OID] = (0, ())
        append = out.append
        while ci < len(cols):
            col = cols[ci]
            get = col.get
            enc = col._enc
            body = col._body
            while k < nrows:
                index = rows[k]
                k += 1
                value = get(index)
                if value is None:
                    continue
                s = cache.get(index)
                if s is None:
                    s = self._suffix_of(index)
                append(varbind_tlv(body + s, enc(value)))
                got += 1
                if got == n:
                    return got, (*self.entry_oid, col.subid, *index)
                last = (col.subid, index)
            ci += 1
            k = 0
        if got == 0:
            return 0, None
        return got, self.entry_oid + (last[0],) + last[1]


Node = Scalar | Table
_RowKeys = set[tuple[int, OID]]  # (id(table), index) of rows a SET creates


# ---------------------------------------------------------------------------------------------
# The tree
# ---------------------------------------------------------------------------------------------


class MibTree:
    """Scalars and tables with disjoint subtrees, kept in lexicographic order of their base."""

    def __init__(self) -> None:
        self._bases: list[OID] = []
        self._nodes: list[Node] = []

    def add(self, node: Scalar | Table) -> None:
        """Register a node; its subtree must not overlap any other node's."""
        base = node.base
        if len(base) < 2:
            raise ValueError("node OID too short")
        k = bisect_left(self._bases, base)
        for j in (k - 1, k):
            if 0 <= j < len(self._bases):
                other = self._bases[j]
                short = min(len(other), len(base))
                if other[:short] == base[:short]:
                    raise ValueError(f"node {base} overlaps node {other}")
        self._bases.insert(k, base)
        self._nodes.insert(k, node)

    @property
    def nodes(self) -> tuple[Node, ...]:
        return tuple(self._nodes)

    def _locate(self, oid: OID) -> tuple[int, OID | None]:
        """Position of the node whose subtree holds ``oid`` (rest returned) or that follows."""
        i = bisect_right(self._bases, oid) - 1
        if i >= 0:
            base = self._bases[i]
            if oid[: len(base)] == base:
                return i, oid[len(base) :]
        return i + 1, None

    def get(self, oid: OID) -> tuple[Syntax | Missing, Any]:
        """GET semantics: ``(syntax, value)`` or ``(NoSuchObject | NoSuchInstance, None)``."""
        i, rest = self._locate(oid)
        if rest is None:
            return NoSuchObject, None
        return self._nodes[i].get_rest(rest)

    def next(self, oid: OID) -> tuple[OID, Syntax, Any] | None:
        """GETNEXT semantics: the first instance after ``oid``; ``None`` means endOfMibView."""
        i, rest = self._locate(oid)
        nodes = self._nodes
        while i < len(nodes):
            found = nodes[i].next_rest(rest)
            if found is not None:
                return found
            rest = None
            i += 1
        return None

    def walk_encoded(self, oid: OID, n: int, out: list[bytes]) -> tuple[int, OID]:
        """Append up to ``n`` encoded VarBinds of the successors of ``oid`` to ``out``.

        Returns ``(count, last_oid)``: ``last_oid`` is the name of the last VarBind appended
        (``oid`` if none). ``count < n`` means the walk hit the end of the MIB view.
        """
        i, rest = self._locate(oid)
        nodes = self._nodes
        total = 0
        last = oid
        while i < len(nodes) and total < n:
            got, node_last = nodes[i].walk_rest(rest, n - total, out)
            if got:
                total += got
                if node_last is not None:
                    last = node_last
            rest = None
            i += 1
        return total, last

    # -----------------------------------------------------------------------------------------
    # SET (RFC 3416 section 4.2.5)
    # -----------------------------------------------------------------------------------------

    def set(self, varbinds: list[tuple[OID, Tag, Any]]) -> tuple[ErrorStatus, int]:
        """Two-phase SET. Returns ``(status, error_index)``; index is 1-based, 0 on success.

        Phase 1 checks every varbind in order (object exists and is writable, wrongType,
        wrongLength, wrongValue, noCreation, ``validate()``); nothing changes unless all pass.
        Phase 2 commits in varbind order; an exception there answers commitFailed.
        """
        targets: list[tuple[Node | None, OID | None]] = []
        new_rows: dict[tuple[int, OID], list[int]] = {}
        for pos, (oid, _tag, _value) in enumerate(varbinds):
            i, rest = self._locate(oid)
            node = self._nodes[i] if rest is not None else None
            targets.append((node, rest))
            if (
                isinstance(node, Table)
                and rest
                and len(rest) > 1
                and node.column(rest[0]) is not None
                and not node.exists(rest[1:])
            ):
                new_rows.setdefault((id(node), rest[1:]), []).append(pos)

        for pos, ((_oid, tag, value), (node, rest)) in enumerate(
            zip(varbinds, targets, strict=True)
        ):
            status = self._check_one(node, rest, tag, value, new_rows, varbinds)
            if status is not None:
                return status, pos + 1

        created: _RowKeys = set()
        for pos, ((_oid, _tag, value), (node, rest)) in enumerate(
            zip(varbinds, targets, strict=True)
        ):
            try:
                self._commit_one(node, rest, value, new_rows, created, varbinds)
            except Exception:  # noqa: BLE001 - RFC 3416 4.2.5: any commit failure
                return ErrorStatus.commitFailed, pos + 1
        return ErrorStatus.noError, 0

    @staticmethod
    def _check_one(
        node: Node | None,
        rest: OID | None,
        tag: int,
        value: Any,
        new_rows: dict[tuple[int, OID], list[int]],
        varbinds: list[tuple[OID, Tag, Any]],
    ) -> ErrorStatus | None:
        if node is None or rest is None:
            return ErrorStatus.notWritable
        if isinstance(node, Scalar):
            if node.set is None:
                return ErrorStatus.notWritable
            if rest != (0,):
                return ErrorStatus.noCreation
            return _check_value(node.syntax, tag, value) or _validate(node.validate, value)
        col = node.column(rest[0]) if rest else None
        if col is None or len(rest) < 2:
            return ErrorStatus.notWritable
        if col.set is None and not col.creates_row:
            return ErrorStatus.notWritable
        status = _check_value(col.syntax, tag, value)
        if status is not None:
            return status
        index = rest[1:]
        members = new_rows.get((id(node), index))
        if members is None:  # existing row
            if col.set is None:
                return ErrorStatus.notWritable
            return _validate(col.validate, index, value)
        if node.index_len is not None and len(index) != node.index_len:
            return ErrorStatus.noCreation
        if node.create is None or not any(
            _column_at(node, varbinds[m][0]).creates_row for m in members
        ):
            return ErrorStatus.noCreation
        return _validate(col.validate, index, value)

    @staticmethod
    def _commit_one(
        node: Node | None,
        rest: OID | None,
        value: Any,
        new_rows: dict[tuple[int, OID], list[int]],
        created: _RowKeys,
        varbinds: list[tuple[OID, Tag, Any]],
    ) -> None:
        assert node is not None and rest is not None  # phase 1 passed
        if isinstance(node, Scalar):
            assert node.set is not None
            node.set(value)
            return
        index = rest[1:]
        key = (id(node), index)
        members = new_rows.get(key)
        if members is None:
            col = node.column(rest[0])
            assert col is not None and col.set is not None
            col.set(index, value)
            return
        if key in created:
            return
        created.add(key)
        assert node.create is not None
        values = {varbinds[m][0][len(node.entry_oid)]: varbinds[m][2] for m in members}
        node.create(index, values)


def _column_at(table: Table, oid: OID) -> Column:
    col = table.column(oid[len(table.entry_oid)])
    assert col is not None
    return col
