"""Text that came from an agent (a name, an error, a rationale), made safe to show: every
character that is not printable is written as its escape (`\\x1b`), so no terminal
sequence, bell or line break of an agent's reaches an operator. Each surface adds its own
escaping on top: rich markup on the CLI, HTML in the pages, Slack's `<>&` in alerts."""

from __future__ import annotations


def visible(value: object) -> str:
    """`value` as text, with its control characters made visible."""
    return "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in str(value)
    )
