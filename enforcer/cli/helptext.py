"""Help that reads well: option values named in words (``--account ACCOUNT``,
``--reason [threat_of_violence|...]``, flags with no value) instead of the Python type
hints typer shows by default (``<str>``, ``<list[str]>``, ``--help <bool>``).

Typer carries its own copy of click, so parameters are recognised by what they have
(``is_flag``, ``type_descriptor``), not by class."""

from __future__ import annotations

from typing import Any

import typer.core


def _metavar(p: Any) -> str:
    if getattr(p, "is_flag", False) or getattr(p, "count", False):
        return ""
    desc = getattr(p, "type_descriptor", None) or getattr(p, "type", None)
    choices = getattr(desc, "choices", None) if getattr(desc, "is_choice", True) else None
    if choices:
        return "[" + "|".join(str(getattr(c, "value", c)) for c in choices) + "]"
    name = str(p.name or "value").upper()
    many = getattr(p, "multiple", False) or getattr(desc, "is_list", False)
    return name[:-1] if many and name.endswith("S") else name


def _no_type(ctx: Any) -> None:
    return None


def tidy(cmd: Any) -> None:
    """Give every option of ``cmd`` (and its subcommands) a readable value name."""
    params = list(cmd.params)
    ctx = cmd.context_class(cmd)
    help_option = cmd.get_help_option(ctx)
    if help_option is not None:
        params.append(help_option)
    for p in params:
        kind = getattr(p, "param_type_name", "")
        if kind == "option" and p.metavar is None:
            p.metavar = _metavar(p)
        elif kind == "argument":
            if p.metavar is None:
                p.metavar = str(p.name or "value").upper()
            p.display_type_rich = _no_type  # the name says it; no "<str>" beside it
    for sub in getattr(cmd, "commands", {}).values():
        tidy(sub)


class TidyGroup(typer.core.TyperGroup):
    """The top ``enforcer`` group: tidies the whole command tree once it is built."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        tidy(self)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        tidy(self)  # again: typer adds the completion options after building the group
        super().format_help(ctx, formatter)
