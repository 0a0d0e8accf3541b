"""Swarm placement constraints (FLEET_SWARM_CONSTRAINTS), read as Swarm reads them, so
`fleet up` can tell before any agent is placed that no node would take one.

Swarm's rules (its scheduler's constraint filter): `KEY==VALUE` or `KEY!=VALUE`; a node
must satisfy every constraint; values compare without regard to case; a node without the
attribute or label has the empty value, so `==` fails there and `!=` holds. Keys this
module does not know (a newer engine's) are left to the engine: every node passes them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.runtime import RuntimeFailure

_KEY = re.compile(r"(?i)[a-z_][a-z0-9\-_.]+")
_VALUE = re.compile(r"(?i)[a-z0-9:\-_\s.*()?+\[\]\\^$|/]+")
_NODE_LABEL, _ENGINE_LABEL = "node.labels.", "engine.labels."


@dataclass(frozen=True)
class Constraint:
    """One placement constraint: the node attribute, `==` or not, and the value."""

    key: str
    equal: bool
    value: str

    def holds(self, found: str) -> bool:
        """Whether a node whose attribute reads `found` satisfies the constraint."""
        return (found.casefold() == self.value.casefold()) == self.equal


def parse(expressions: Sequence[str]) -> list[Constraint]:
    """The constraints of FLEET_SWARM_CONSTRAINTS; RuntimeFailure names the first that
    Swarm would refuse, and why."""
    found = []
    for expression in expressions:
        operator = "==" if "==" in expression else "!=" if "!=" in expression else None
        if operator is None:
            raise _refused(expression, "it has neither == nor !=")
        key, _, value = (part.strip() for part in expression.partition(operator))
        if not _KEY.fullmatch(key):
            raise _refused(expression, f"{key!r} is not a node attribute such as node.role")
        if not _VALUE.fullmatch(value):
            raise _refused(expression, f"{value!r} is not a value Swarm accepts")
        found.append(Constraint(key, operator == "==", value))
    return found


def _refused(expression: str, why: str) -> RuntimeFailure:
    return RuntimeFailure(f"FLEET_SWARM_CONSTRAINTS: {expression!r}: {why}")


def admits(node: dict, constraints: Sequence[Constraint]) -> bool:
    """Whether Swarm may place a task with these constraints on `node` (as the engine's
    node list gives it)."""
    spec, description = node.get("Spec") or {}, node.get("Description") or {}
    platform = description.get("Platform") or {}
    for constraint in constraints:
        key = constraint.key.casefold()
        if key == "node.id":
            found = node.get("ID", "")
        elif key == "node.hostname":
            found = description.get("Hostname", "")
        elif key == "node.role":
            found = spec.get("Role", "")
        elif key in ("node.platform.os", "node.platform.arch"):
            found = platform.get("OS" if key.endswith("os") else "Architecture", "")
        elif key.startswith(_NODE_LABEL) and len(key) > len(_NODE_LABEL):
            found = (spec.get("Labels") or {}).get(constraint.key[len(_NODE_LABEL) :], "")
        elif key.startswith(_ENGINE_LABEL) and len(key) > len(_ENGINE_LABEL):
            labels = (description.get("Engine") or {}).get("Labels") or {}
            found = labels.get(constraint.key[len(_ENGINE_LABEL) :], "")
        else:
            continue  # the engine's to judge
        if not constraint.holds(found):
            return False
    return True
