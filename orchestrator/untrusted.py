"""Text that came from an agent (a name, an error, a rationale), made safe to show: every
character that is not printable is written as its escape (`\\x1b`), so no terminal
sequence, bell or line break of an agent's reaches an operator. Each surface adds its own
escaping on top: rich markup on the CLI, HTML in the pages, Slack's `<>&` in alerts.
An operator's own reference echoed in an error is quoted and clipped, so a mistaken paste
of a page of text comes back as one line."""

from __future__ import annotations


def visible(value: object) -> str:
    """`value` as text, with its control characters made visible."""
    return "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in str(value)
    )


def quoted(value: str, limit: int = 60) -> str:
    """`value` quoted as in an error message (`'abc'`), and past `limit` characters clipped
    with its length told: `'abc…' (10,000 characters)`."""
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}… ({len(value):,} characters)"
