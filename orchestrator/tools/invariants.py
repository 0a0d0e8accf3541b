"""What must hold of a fleet after any fault, checked against the real parts: the daemon's
own view, the engine's containers and the platform's accounts and fills. The fault suite
asserts them after each fault; the soak checks them after an hour of faults.

- exactly one container per live agent, and no container of the instance besides;
- no agent lost: as many live agents as were asked for;
- exactly one platform account per agent;
- no `client_order_id` filled twice in any account;
- every account of a retired agent disabled.
"""

from __future__ import annotations

from collections import Counter

import docker

from orchestrator.lifecycle import LIVE, Phase
from orchestrator.tools.harness import Daemon
from platform_client import PlatformClient


def containers(client: docker.DockerClient, instance: str) -> list[dict]:
    """The engine's summaries of the instance's containers, in any state (one list call)."""
    return client.api.containers(all=True, filters={"label": f"fleet.instance={instance}"})


def trading_accounts(
    platform_url: str, controller_key: str, agents: list[dict]
) -> dict[str, PlatformClient]:
    """A logged-in client per active account, by agent id (the idempotency key)."""
    strategy = {a["id"]: a["strategy"] for a in agents}
    controller = PlatformClient(platform_url, controller_key=controller_key)
    clients = {}
    for account in controller.controller_agents():
        key = account["idempotency_key"]
        if account["status"] != "active" or key not in strategy:
            continue
        creds = controller.create_agent(  # a replay hands back the password
            key, account["display_name"], {"strategy": strategy[key]}
        )
        client = PlatformClient(platform_url)
        client.login(creds.username, creds.password)
        clients[key] = client
    controller.close()
    return clients


def filled(platform_url: str, controller_key: str, agents: list[dict]) -> dict[str, list]:
    """Every active account's filled orders, by agent id."""
    return {
        agent_id: [o for o in client.orders(limit=500) if o.status == "filled"]
        for agent_id, client in trading_accounts(platform_url, controller_key, agents).items()
    }


def violations(
    daemon: Daemon,
    client: docker.DockerClient,
    instance: str,
    expected: int,
    platform: tuple[str, str] | None = None,
) -> list[str]:
    """Every invariant that does not hold, in words; [] when the fleet is whole.
    `platform` is (URL, controller key) when the fleet has accounts."""
    agents = daemon.agents()
    live = [a for a in agents if a["phase"] in LIVE]
    found = []
    if len(live) != expected:
        found.append(f"{expected} live agents asked for, {len(live)} live")
    ours = containers(client, instance)
    per_agent = Counter(c["Labels"].get("fleet.agent_id") for c in ours)
    found += [f"agent {agent_id} has {n} containers" for agent_id, n in per_agent.items() if n > 1]
    theirs = {a["container_id"] for a in live}
    found += [f"orphan container {c['Id'][:12]}" for c in ours if c["Id"] not in theirs]
    found += [f"live agent {a['name']} has no container" for a in live if not a["container_id"]]
    if platform is not None:
        url, key = platform
        controller = PlatformClient(url, controller_key=key)
        accounts = controller.controller_agents()
        controller.close()
        keys = Counter(a["idempotency_key"] for a in accounts)
        found += [f"agent {k} has {n} accounts" for k, n in keys.items() if n > 1]
        found += [f"agent {a['name']} has no account" for a in live if not keys[a["id"]]]
        retired = {a["id"] for a in agents if a["phase"] == Phase.RETIRED}
        found += [
            f"the account of retired agent {a['idempotency_key']} is {a['status']}"
            for a in accounts
            if a["idempotency_key"] in retired and a["status"] != "disabled"
        ]
        for agent_id, orders in filled(url, key, agents).items():
            twice = [i for i, n in Counter(o.client_order_id for o in orders).items() if n > 1]
            found += [f"agent {agent_id} filled {i} twice" for i in twice]
    return found
