"""Tables that fit an 80-column terminal: short ids (the last 8 characters, which the
commands accept back), relative times, identifiers and MAC addresses never wrapped, and
free text cut with an ellipsis. ``--wide`` shows every column in full."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

SHORT = 8


def short_id(full: str | None) -> str:
    """``ord_01J9Z3...K4F7Q2XA`` -> ``K4F7Q2XA`` (the random tail of the ULID)."""
    if not full:
        return ""
    tail = full.partition("_")[2]
    return tail[-SHORT:] if tail else full


def ago(iso: str | None, now: datetime | None = None) -> str:
    """An ISO timestamp as ``12 s ago``, ``5 min ago``, ``3 h ago``, ``2 d ago``,
    ``in 4 h``."""
    if not iso:
        return ""
    at = datetime.fromisoformat(iso)
    secs = ((now or datetime.now(UTC)) - at).total_seconds()
    s = int(abs(secs))
    text = (f"{s} s" if s < 60 else f"{s // 60} min" if s < 3600
            else f"{s // 3600} h" if s < 86400 else f"{s // 86400} d")
    return f"{text} ago" if secs >= 0 else f"in {text}"


@dataclass(frozen=True)
class Col:
    """A column: ``fixed`` ones (ids, MACs, states, times) never wrap or shrink; the
    others give way first, cut with an ellipsis."""

    name: str
    fixed: bool = False
    justify: str = "left"


#: Characters between two columns (padding and the rule's gap).
GAP = 3


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def grid(title: str | None, columns: Sequence[Col | str], rows: Iterable[Sequence[Any]],
         width: int | None = None) -> Table:
    """A table for a terminal ``width`` columns wide (the console's when None): fixed
    columns keep their full width, the others share what is left, each value on one
    line (cut with an ellipsis)."""
    cols = [c if isinstance(c, Col) else Col(c) for c in columns]
    data = [["" if v is None else str(v).replace("\n", " ") for v in row] for row in rows]
    natural = [max([len(c.name), *(len(r[i]) for r in data)]) for i, c in enumerate(cols)]
    avail = (width or Console().width) - GAP * (len(cols) - 1)
    free = [i for i, c in enumerate(cols) if not c.fixed]
    budget = avail - sum(natural[i] for i, c in enumerate(cols) if c.fixed)
    want = sum(natural[i] for i in free)
    limit = {i: natural[i] for i in range(len(cols))}
    if free and want > budget:
        # Share the room in proportion to each column's natural width (at least its
        # heading's), largest columns giving way first.
        for i in sorted(free, key=lambda j: natural[j]):
            share = max(len(cols[i].name), budget * natural[i] // max(1, want))
            limit[i] = min(natural[i], share)
            budget, want = budget - limit[i], want - natural[i]
    t = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left",
              show_edge=False)
    for i, c in enumerate(cols):
        t.add_column(c.name, no_wrap=True, overflow="ellipsis", min_width=limit[i],
                     max_width=limit[i], justify="right" if c.justify == "right" else "left")
    for r in data:
        t.add_row(*(_cut(v, limit[i]) for i, v in enumerate(r)))
    return t


def pairs(title: str, items: Iterable[tuple[str, Any]]) -> Table:
    t = Table(title=title, show_header=False, box=None, title_justify="left")
    t.add_column("key", style="bold", no_wrap=True)
    t.add_column("value", overflow="fold")
    for k, v in items:
        t.add_row(k, "" if v is None else str(v))
    return t


#: ``--wide``: as wide as the content (the terminal wraps what does not fit).
UNLIMITED = 100_000


def show(*tables: Table, console: Console | None = None, wide: bool = False) -> None:
    """Print tables with a blank line between them."""
    con = console or Console(highlight=False, width=UNLIMITED if wide else None)
    for i, t in enumerate(tables):
        if i:
            con.print()
        con.print(t)
