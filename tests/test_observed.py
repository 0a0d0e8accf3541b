"""The observed-state cache (`runtime.observed`): its policy on recorded event shapes, then
the Docker runtime's cached list against the engine's own, through kills, removals,
pauses and a lost event stream."""

import threading
import time

import pytest

from orchestrator.runtime import (
    LABEL_AGENT_ID,
    LABEL_SPEC_HASH,
    AgentLaunch,
    ObservedAgent,
    RuntimeFailure,
)
from orchestrator.runtime.observed import ObservedCache
from orchestrator.tools.harness import wait_until

T = 1_764_650_000_000_000_000  # an event's timeNano


def event(action, container_id, **attributes):
    """An engine event as docker-py decodes it (Docker 20.10's shape)."""
    return {
        "status": action,
        "id": container_id,
        "Type": "container",
        "Action": action,
        "Actor": {"ID": container_id, "Attributes": attributes},
        "timeNano": T,
    }


def seen(container_id, state="running", agent_id="a1"):
    return ObservedAgent(container_id, agent_id, f"fleet-x-{agent_id}", state, None, "h1")


@pytest.fixture
def cache():
    clock = [0.0]
    observed = ObservedCache(resync_seconds=60, clock=lambda: clock[0])
    return observed, clock


def listed(observed, *agents):
    return observed.listed(agents, observed.listing())


def test_only_an_armed_cache_answers_and_a_full_list_is_due_every_resync(cache):
    observed, clock = cache
    assert listed(observed, seen("c1")) == [seen("c1")]
    assert observed.current() is None  # no event stream: every list is a full one
    observed.arm()
    assert observed.current() is None
    listed(observed, seen("c1"))
    assert observed.current() == [seen("c1")]
    clock[0] = 59.9
    assert observed.current() == [seen("c1")]
    clock[0] = 60.0
    assert observed.current() is None
    observed.lost()
    listed(observed, seen("c1"))
    assert observed.current() is None


def test_the_view_names_the_list_that_seeded_the_cache_while_events_keep_it(cache):
    observed, clock = cache
    assert observed.view() is None  # nothing seeded yet
    observed.arm()
    listed(observed, seen("c1"))
    first = observed.view()
    observed.event(event("die", "c1", exitCode="1"))
    assert first is not None and observed.view() == first  # events keep the same view
    clock[0] = 60.0
    assert observed.view() is None  # a full list is due: changes may have gone unreported
    listed(observed, seen("c1"))
    assert observed.view() not in (None, first)  # rebuilt: a reconciler plans for all
    observed.lost()
    assert observed.view() is None


def test_a_failed_list_keeps_the_stream_but_asks_for_another_list(cache):
    observed, _ = cache
    observed.arm()
    listed(observed, seen("c1"))
    observed.listing()
    observed.unlisted()  # the engine did not answer the list
    assert observed.current() is None
    observed.event(event("die", "c1", exitCode="1"))  # no list to apply it to: nothing kept
    assert listed(observed, seen("c2")) == [seen("c2")]
    assert observed.current() == [seen("c2")]  # still armed: the cache serves again


def test_events_keep_the_list(cache):
    observed, _ = cache
    observed.arm()
    listed(observed, seen("c1"))
    labels = {LABEL_AGENT_ID: "a2", LABEL_SPEC_HASH: "h2", "name": "fleet-x-b"}
    observed.event(event("create", "c2", **labels))
    observed.event(event("start", "c2", **labels))
    observed.event(event("die", "c1", exitCode="137"))
    observed.event(event("exec_start: sh", "c2"))  # not ours to read: nothing changes
    by_id = {o.container_id: o for o in observed.current()}
    assert (by_id["c1"].state, by_id["c1"].exit_code) == ("exited", 137)
    observed.started("c1")  # the runtime started it again, before its event came
    observed.started("c9")  # not known: its events will tell
    by_id = {o.container_id: o for o in observed.current()}
    assert (by_id["c1"].state, by_id["c1"].exit_code) == ("running", None) and "c9" not in by_id
    observed.event(event("die", "c1", exitCode="137"))
    by_id = {o.container_id: o for o in observed.current()}
    assert (by_id["c2"].state, by_id["c2"].agent_id, by_id["c2"].spec_hash) == (
        "running",
        "a2",
        "h2",
    )
    assert by_id["c2"].name == "fleet-x-b" and by_id["c2"].started_at is not None
    observed.event(event("pause", "c2"))
    assert {o.container_id: o.state for o in observed.current()}["c2"] == "paused"
    observed.event(event("destroy", "c1"))
    observed.drop("c2")
    assert observed.current() == []
    observed.put(seen("c3"))
    assert observed.current() == [seen("c3")]


def test_a_container_that_ended_before_its_create_returned_stays_ended(cache):
    observed, _ = cache
    observed.arm()
    listed(observed)
    observed.event(event("die", "c1", exitCode="2"))  # the engine was quicker
    observed.event(event("destroy", "c2"))
    observed.put(seen("c1"))
    observed.put(seen("c2", agent_id="a2"))
    assert [(o.container_id, o.state, o.exit_code) for o in observed.current()] == [
        ("c1", "exited", 2)
    ]


def test_events_during_a_list_are_applied_on_top_of_it(cache):
    observed, _ = cache
    observed.arm()
    epoch = observed.listing()
    observed.event(event("die", "c1", exitCode="1"))  # after the engine answered the list
    observed.event(event("destroy", "c2"))
    result = observed.listed([seen("c1"), seen("c2", agent_id="a2")], epoch)
    assert [(o.container_id, o.state, o.exit_code) for o in result] == [("c1", "exited", 1)]
    assert observed.current() == result


def test_a_list_that_began_before_the_stream_broke_is_not_kept(cache):
    observed, _ = cache
    observed.arm()
    epoch = observed.listing()
    observed.lost()
    observed.arm()
    assert listed(observed, seen("c9")) and observed.current() is not None
    observed.lost()
    observed.arm()
    stale = observed.listed([seen("c1")], epoch)
    assert stale == [seen("c1")] and observed.current() is None


@pytest.mark.xdist_group("docker")
def test_the_cached_list_is_the_engines_list(docker_client, instance, tmp_path):
    from orchestrator.runtime.docker import DockerRuntime
    from orchestrator.settings import Settings

    (tmp_path / "gw").mkdir()
    settings = Settings(
        instance=instance,
        state_dir=tmp_path / "state",
        gateway_dir=tmp_path / "gw",
        observe_resync_seconds=3600,
    )
    runtime = DockerRuntime(settings)
    stop = threading.Event()
    woken = []
    watcher = threading.Thread(target=runtime.watch, args=(woken.append, stop), daemon=True)
    watcher.start()

    def engine() -> dict[str, str]:
        return {
            c["Id"]: c["State"]
            for c in docker_client.api.containers(
                all=True, filters={"label": f"fleet.instance={instance}"}
            )
        }

    def agrees() -> bool:
        return {o.container_id: o.state for o in runtime.list()} == engine()

    try:
        wait_until(lambda: runtime._observed._armed, "the event stream")
        assert runtime.view() is None
        runtime.list()  # the full list that seeds the cache
        assert runtime._observed.current() is not None  # the next lists come from it
        seeded = runtime.view()
        assert seeded is not None
        made = [
            runtime.create(
                AgentLaunch(
                    agent_id=f"{n:08d}-0000-0000-0000-000000000000",
                    name=f"cache{n}",
                    gateway_url=settings.gateway_url,
                    token="t",
                    image=runtime.image(),
                    spec_hash="h",
                )
            )
            for n in range(3)
        ]
        assert {o.container_id for o in runtime.list()} == {o.container_id for o in made}
        docker_client.containers.get(made[0].container_id).kill()
        docker_client.api.remove_container(made[1].container_id, force=True)
        docker_client.containers.get(made[2].container_id).pause()
        wait_until(agrees, "the cache to follow the engine")
        runtime.restart(made[0].container_id)  # started again in place, at once in the list
        assert {o.container_id: o.state for o in runtime.list()}[made[0].container_id] == (
            "running"
        )
        assert engine()[made[0].container_id] == "running"
        with pytest.raises(RuntimeFailure, match="is gone"):
            runtime.restart(made[1].container_id)
        docker_client.containers.get(made[2].container_id).unpause()
        wait_until(agrees, "the unpause")
        assert runtime._observed.current() is not None  # still from the cache
        assert runtime.view() == seeded  # every change since was an event
        # The stream lost: the next list is a full one, and right again.
        runtime._events.close()
        wait_until(lambda: not runtime._observed._armed or woken, "the loss noticed", 10)
        time.sleep(0.5)
        assert agrees()
    finally:
        stop.set()
        runtime.close()


def test_an_engine_that_does_not_answer_in_time_is_a_runtime_failure(tmp_path):
    """docker-py lets a timed-out request's `requests` error through: the runtime says the
    engine is unreachable instead, as for any other engine error. The engine here is a
    socket that takes connections and never answers."""
    import socket

    import docker

    from orchestrator.runtime import RuntimeUnavailable
    from orchestrator.runtime.docker import DockerRuntime
    from orchestrator.settings import Settings

    (tmp_path / "gw").mkdir()
    settings = Settings(state_dir=tmp_path / "state", gateway_dir=tmp_path / "gw")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as silent:
        silent.bind(str(tmp_path / "engine.sock"))
        silent.listen(8)
        mute = docker.DockerClient(
            base_url=f"unix://{tmp_path / 'engine.sock'}", version="1.41", timeout=0.2
        )
        with pytest.raises(RuntimeUnavailable, match="Docker engine not reachable"):
            DockerRuntime(settings, mute)  # it asks the engine at once
        mute.close()
