"""`fleet spawn|scale|retire|pause|resume|ls|show|logs`: the agents and the kill switch."""

from __future__ import annotations

import codecs
import secrets
import time

import click

from orchestrator.cli._common import (
    EXIT_USAGE,
    console,
    emit,
    fail,
    json_option,
    operator,
    population_body,
    retire_order_option,
    sampling_options,
)
from orchestrator.cli.client import OperatorClient
from orchestrator.cli.format import (
    format_agent,
    format_agents,
    format_decisions,
    format_retired,
    format_scaled,
    format_spawned,
    format_why,
    plain,
)
from orchestrator.lifecycle import NOT_RETIRED, UNFINISHED, Phase
from orchestrator.untrusted import visible
from personalities import STRATEGIES

PAUSED_BANNER = "[bold white on red] PAUSED [/] agents submit no orders until `fleet resume`"


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("count", type=click.IntRange(min=1, max=1000))
@sampling_options
@click.option("--wait", is_flag=True, help="Show progress until every new agent heartbeats.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=300,
    show_default=True,
    help="Seconds --wait waits.",
)
def spawn(
    count: int, seed: int | None, population: str, strategy: str | None, wait: bool, timeout: float
) -> None:
    """Create COUNT new agents with sampled personalities."""
    chosen = population_body(population)
    key = secrets.token_hex(16)  # one key per invocation: the client's retries reuse it
    with operator() as api:
        result = api.spawn(count, key, seed=seed, population=chosen, strategy=strategy)
        console.print(format_spawned(result))
        if wait:
            _wait_running(api, [a["id"] for a in result["agents"]], timeout)


def _wait_running(api: OperatorClient, ids: list[str], timeout: float) -> None:
    """A progress bar until the agents heartbeat; fails on a failed agent or the timeout."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    wanted = set(ids)
    deadline = time.monotonic() + timeout
    columns = ("{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        bar = progress.add_task("agents heartbeating", total=len(wanted))
        while True:
            agents = [a for a in api.agents(NOT_RETIRED) if a["id"] in wanted]
            running = [a for a in agents if a["phase"] == Phase.RUNNING]
            failed = [a for a in agents if a["phase"] in (Phase.FAILED, Phase.CRASHLOOP)]
            progress.update(bar, completed=len(running))
            if failed:
                reasons = "; ".join(f"{a['name']}: {a.get('reason') or a['phase']}" for a in failed)
                fail(f"{len(failed)} agent(s) did not come up: {reasons}")
            if len(running) == len(wanted):
                return
            if time.monotonic() >= deadline:
                fail(
                    f"{len(wanted) - len(running)} agent(s) not heartbeating after "
                    f"{timeout:.0f}s; see `fleet ls`"
                )
            time.sleep(0.5)


@click.command()
@click.argument("size", type=click.IntRange(min=0, max=1000))
@retire_order_option
@sampling_options
def scale(
    size: int, retire_order: str, seed: int | None, population: str, strategy: str | None
) -> None:
    """Make the fleet SIZE agents: spawn the missing ones or retire the surplus."""
    with operator() as api:
        result = api.scale(
            size,
            retire=retire_order,
            seed=seed,
            population=population_body(population),
            strategy=strategy,
        )
    console.print(format_scaled(result))


@click.command()
def pause() -> None:
    """Kill switch: no agent submits an order until `fleet resume`."""
    with operator() as api:
        result = api.pause(True)
    state = "paused" if result["changed"] else "already paused"
    console.print(f"fleet {state}: agents submit nothing from their next heartbeat on")


@click.command()
def resume() -> None:
    """Lift the kill switch: agents trade again."""
    with operator() as api:
        result = api.pause(False)
    console.print("fleet resumed" if result["changed"] else "fleet was not paused")


@click.command("ls")
@json_option
@click.option(
    "--phase",
    "phases",
    multiple=True,
    type=click.Choice([p.value for p in Phase]),
    help="Only agents in this phase (repeatable).",
)
@click.option(
    "--strategy",
    "strategies",
    multiple=True,
    type=click.Choice(STRATEGIES),
    help="Only agents with this strategy (repeatable).",
)
@click.option("--all", "show_all", is_flag=True, help="Retired agents too.")
def ls(as_json: bool, phases: tuple[str, ...], strategies: tuple[str, ...], show_all: bool) -> None:
    """List the agents: health, uptime, equity, P&L and orders today (retired ones only
    with --all or --phase retired)."""
    with operator() as api:
        agents = api.agents(phases or (() if show_all else NOT_RETIRED), strategies)
        paused = not as_json and api.fleet()["paused"]
    if paused:
        console.print(PAUSED_BANNER)
    if not agents and not as_json and (phases or strategies):
        wanted = " or ".join([*phases, *strategies])
        console.print(f"no agents match: {wanted} (see `fleet ls` for all)")
        return
    emit(agents, as_json, format_agents)


@click.command()
@click.argument("agent")
@click.option(
    "--why",
    is_flag=True,
    help="The latest decisions instead: what the agent saw, proposed, had clamped and sent.",
)
@click.option(
    "--last",
    type=click.IntRange(1, 100),
    default=5,
    show_default=True,
    help="How many decisions --why shows.",
)
@json_option
def show(agent: str, why: bool, last: int, as_json: bool) -> None:
    """One AGENT (name, id or unique id prefix): health, personality, follows, positions,
    orders and timeline."""
    with operator() as api:
        if why:
            emit(api.decisions(agent, last), as_json, format_decisions)
            return
        detail = api.agent(agent)
    emit(detail, as_json, format_agent)


@click.command()
@click.argument("order")
@json_option
def why(order: str, as_json: bool) -> None:
    """Why an ORDER (its platform or client order id) was sent: the decision behind it."""
    with operator() as api:
        answer = api.why(order)
    emit(answer, as_json, format_why)


@click.command()
@click.argument("agent")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new output.")
@click.option(
    "--tail",
    "-n",
    type=click.IntRange(min=0),
    default=None,
    help="Only the last N lines [default: all].",
)
def logs(agent: str, follow: bool, tail: int | None) -> None:
    """The output of AGENT's workload (name, id or unique id prefix); its control
    characters but line breaks and tabs are shown as escapes (\\x1b), so none of its
    terminal sequences reaches yours."""
    out = click.get_binary_stream("stdout")
    text = codecs.getincrementaldecoder("utf-8")(errors="replace")  # a chunk may end mid-character
    with operator() as api:
        try:
            for chunk in api.logs(agent, tail, follow):
                out.write(visible(text.decode(chunk), keep="\n\t").encode())
                out.flush()
            out.write(text.decode(b"", final=True).encode())  # a cut character, as U+FFFD
        except KeyboardInterrupt:
            return


@click.command()
@click.argument("agents", nargs=-1)
@click.option("--all", "retire_all", is_flag=True, help="Retire every agent that is not over.")
@click.option(
    "--flatten",
    is_flag=True,
    help="Sell the agents' positions before they stop (FLEET_FLATTEN_DEADLINE_SECONDS).",
)
@click.option(
    "--wait/--no-wait", default=True, show_default=True, help="Wait until the agents are retired."
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=120,
    show_default=True,
    help="Seconds to wait.",
)
def retire(
    agents: tuple[str, ...], retire_all: bool, flatten: bool, wait: bool, timeout: float
) -> None:
    """Retire AGENTS (names, ids or unique id prefixes), or --all. Positions stay open
    unless --flatten."""
    if bool(agents) == retire_all:
        fail("name the agents to retire, or pass --all (not both)", EXIT_USAGE)
    with operator() as api:
        found = (
            api.agents(UNFINISHED)
            if retire_all
            else [api.agent(ref) for ref in agents]  # all resolve before any retires
        )
        retired = [api.retire(agent["id"], flatten) for agent in found]
        for was, agent in zip(found, retired, strict=True):
            console.print(plain(_retiring(agent, was["phase"], flatten)))
        if wait:
            _wait_retired(api, [a["id"] for a in retired], timeout)


def _retiring(agent: dict, was: str, flatten: bool) -> str:
    """What a retire request did to one agent: a retirement already asked for stays as
    it was asked (--flatten cannot join it)."""
    named = f"{agent['name']} ({agent['id'][:8]})"
    if was not in (Phase.RETIRING, Phase.RETIRED):
        return f"retiring {named}"
    late = ", as first asked: --flatten applies only to a new retirement" if flatten else ""
    return f"{named} is already {was}{late}"


def _wait_retired(api: OperatorClient, ids: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = set(ids)
    while pending and time.monotonic() < deadline:
        for agent_id in list(pending):
            agent = api.agent(agent_id)
            if agent["phase"] == Phase.RETIRED:
                pending.discard(agent_id)
                console.print(format_retired(agent))
        if pending:
            time.sleep(0.5)
    if pending:
        fail(f"{len(pending)} agent(s) not retired after {timeout:.0f}s; see `fleet ls`")
