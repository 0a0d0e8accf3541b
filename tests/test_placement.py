"""Swarm's placement constraints as `fleet up` reads them (`runtime.placement`), pure: the
nodes are shaped as the engine lists them. `tests/test_swarm.py` reads the real Swarm's."""

import pytest

from orchestrator.runtime import RuntimeFailure
from orchestrator.runtime.placement import admits, parse


def node(hostname: str, role: str = "worker", **labels: str) -> dict:
    return {
        "ID": f"id-{hostname}",
        "Spec": {"Role": role, "Availability": "active", "Labels": labels},
        "Description": {
            "Hostname": hostname,
            "Platform": {"Architecture": "x86_64", "OS": "linux"},
            "Engine": {"Labels": {"zone": "eu-1"}},
        },
    }


FLEET = [node("vps-1", "manager"), node("vps-2", fleet="agents"), node("vps-3", fleet="Agents")]


def placed(*expressions: str) -> list[str]:
    constraints = parse(expressions)
    return [n["Description"]["Hostname"] for n in FLEET if admits(n, constraints)]


def test_every_constraint_must_hold_and_values_compare_without_case():
    assert placed() == ["vps-1", "vps-2", "vps-3"]
    assert placed("node.labels.fleet==agents") == ["vps-2", "vps-3"]
    assert placed("node.labels.fleet == agents", "node.hostname!=VPS-3") == ["vps-2"]
    assert placed("node.role==manager") == ["vps-1"]
    assert placed("node.id==id-vps-2") == ["vps-2"]
    assert placed("node.platform.os==linux", "node.platform.arch!=aarch64") == [
        "vps-1",
        "vps-2",
        "vps-3",
    ]
    assert placed("engine.labels.zone==eu-2") == []


def test_a_missing_label_reads_empty_and_label_names_keep_their_case():
    assert placed("node.labels.fleet!=agents") == ["vps-1"]  # no label: != holds
    assert placed("node.labels.Fleet==agents") == []  # another label
    assert placed("node.labels.gpu==yes") == []


def test_a_key_swarm_knows_and_this_module_does_not_is_left_to_the_engine():
    assert placed("node.ip==10.0.0.0/8") == ["vps-1", "vps-2", "vps-3"]


@pytest.mark.parametrize(
    ("expression", "why"),
    [
        ("node.labels.fleet=agents", "it has neither == nor !="),
        ("node labels==agents", "'node labels' is not a node attribute"),
        ("node.labels.fleet==", "'' is not a value Swarm accepts"),
        ("node.labels.fleet==a<b", "'a<b' is not a value Swarm accepts"),
    ],
)
def test_a_constraint_swarm_would_refuse_is_refused_with_its_fault(expression, why):
    with pytest.raises(RuntimeFailure) as refused:
        parse(["node.role==worker", expression])
    assert str(refused.value).startswith(f"FLEET_SWARM_CONSTRAINTS: {expression!r}: {why}")
