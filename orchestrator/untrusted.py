"""Text that came from an agent (a name, an error, a rationale), made safe to show: every
character that is not printable is written as its escape (`\\x1b`), so no terminal
sequence, bell or line break of an agent's reaches an operator. Each surface adds its own
escaping on top: rich markup on the CLI, HTML in the pages, Slack's `<>&` in alerts.
An operator's own reference echoed in an error is quoted and clipped, so a mistaken paste
of a page of text comes back as one line.

A request body, from an operator or an agent, is read as sent (`Body`): a value of the
wrong type is refused, not converted, so `{"size": true}` scales nothing and
`{"count": "5"}` spawns nothing. No text in it may hold a NUL character, which PostgreSQL
cannot store: refused here, it is the sender's error, not a store that fails."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationInfo, model_validator


def visible(value: object, keep: str = "") -> str:
    """`value` as text, with its control characters made visible, but for those in `keep`
    (an agent's log keeps its line breaks and tabs)."""
    return "".join(
        ch if ch.isprintable() or ch in keep else ch.encode("unicode_escape").decode()
        for ch in str(value)
    )


def quoted(value: str, limit: int = 60) -> str:
    """`value` quoted as in an error message (`'abc'`), and past `limit` characters clipped
    with its length told: `'abc…' (10,000 characters)`."""
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}… ({len(value):,} characters)"


def answered(url: str, status: int, content_type: str | None) -> str:
    """What a server that is not the expected one answered, for an operator:
    `http://127.0.0.1:8787 answered HTTP 200 (text/html)`; its content type is its own text,
    so it is clipped and its control characters made visible."""
    return f"{url} answered HTTP {status} ({visible((content_type or 'no content type')[:60])})"


def refusal(error: Mapping[str, Any]) -> str:
    """What one of pydantic's validation errors says, without its `Value error, ` prefix:
    the validator's own words are the operator's message."""
    return str(error.get("msg", "invalid")).removeprefix("Value error, ")


class Body(BaseModel):
    """A request body: no field it does not declare, and no value taken for another type
    (`"3"`, `3.0` or `true` for a count is refused, where pydantic would read 3, 3 and 1;
    a whole number for a float is still a number)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any, info: ValidationInfo) -> Any:
        # the outermost body walks all of it; a body within it (a field) is not walked again
        if info.field_name is None and (where := _nul_in(data)) is not None:
            raise ValueError(f"{where}: no text may hold a NUL character (\\u0000)")
        return data


def _nul_in(document: Any) -> str | None:
    """Where in `document` (parsed JSON) some text holds a NUL (`records.0.error`, or `a
    key of records.0`); None if none does. A walk, not a recursion: however deep the
    document, it cannot run out of stack."""
    waiting: list[tuple[str, Any]] = [("", document)]
    while waiting:
        where, value = waiting.pop()
        if isinstance(value, dict):
            items = value.items()
        elif isinstance(value, list):
            items = enumerate(value)
        elif isinstance(value, str) and "\x00" in value:
            return where or "the body"
        else:
            continue
        for key, item in items:
            if isinstance(key, str) and "\x00" in key:
                return f"a key of {where or 'the body'}"
            waiting.append((f"{where}.{key}" if where else str(key), item))
    return None
