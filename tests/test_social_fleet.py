"""The social layer end to end: a real daemon (process runtime) and a real `fleet sandbox`
on a fast, newsy market. Agents follow each other through the platform with their own
logins, the follows reach the sandbox's subscriptions table and the fleet's follow book,
followed accounts' trades reach followers' decisions, and `fleet why` explains an order
whose decision saw them. The records the agents sent replay to the same decisions."""

import json

import httpx
import sqlalchemy as sa

from agent_runtime.decisions import replay
from orchestrator.tools.harness import wait_until
from tests.test_web_dashboard import drawn_whole, shot

ARROWS = """() => {
  const at = (e, ...names) => names.map((n) => Number(e.getAttribute(n)));
  const all = (kind) => [...document.querySelectorAll(`#follow-graph ${kind}`)];
  const dots = all("circle").map((c) => at(c, "cx", "cy", "r"));
  return all("line").map((l) => {
    const [x1, y1, x2, y2] = at(l, "x1", "y1", "x2", "y2");
    return [
      dots.some(([x, y]) => x === x1 && y === y1),
      dots.some(([x, y, r]) => Math.abs(Math.hypot(x2 - x, y2 - y) - r) < 0.2),
    ];
  });
}"""


def _decisions(daemon, agents):
    return [
        (agent, d)
        for agent in agents
        for d in daemon.api("GET", f"/v1/agents/{agent['name']}/decisions?limit=100").json()
    ]


def test_agents_follow_each_other_and_an_order_can_say_it_saw_them(
    make_daemon, market, tmp_path, page
):
    # A trading day lasts 20 s here: an agent's records, at most 20 of 3–5 KB, fit the
    # budget; four hostile batches of 40 KB do not.
    budget = {"FLEET_DECISION_BUDGET_BYTES": "150000"}
    daemon = make_daemon("process", FLEET_AGENT_CYCLE_SECONDS="1", **budget, **market)
    spawned = daemon.fleet("spawn", "4", "--population", "news-hounds", "--seed", "5", "--wait")
    assert spawned.returncode == 0, spawned.stderr
    agents = daemon.agents()
    names = {a["name"] for a in agents}

    # Follows go through the platform, with each agent's own login…
    sandbox = sa.create_engine(f"sqlite:///{tmp_path / 'sandbox-state' / 'sandbox.db'}")

    def subscriptions() -> set[tuple[str, str]]:
        query = sa.text(
            "SELECT a.display_name, b.display_name FROM sandbox_subscriptions s"
            " JOIN sandbox_accounts a ON a.user_id = s.follower_id"
            " JOIN sandbox_accounts b ON b.user_id = s.followee_id"
        )
        with sandbox.connect() as c:
            return set(map(tuple, c.execute(query).all()))

    edges = wait_until(lambda: len(subscriptions()) >= 4 and subscriptions(), "follows", 60)
    assert all(a in names and b in names and a != b for a, b in edges)

    # …and the fleet knows them from the platform's answers, through the relay.
    def known() -> set[tuple[str, str]]:
        detail = {a: json.loads(daemon.fleet("show", a, "--json").stdout) for a in names}
        return {(a, b) for a in names for b in detail[a]["following"]}

    wait_until(lambda: known() and known() <= subscriptions(), "the fleet's follow book", 30)
    detail = json.loads(daemon.fleet("show", next(iter(names)), "--json").stdout)
    assert set(detail["following"]) | set(detail["followers"]) <= names

    # A followed agent's trade reaches a follower's decision, and its order says so.
    def social_order():
        for agent, d in _decisions(daemon, agents):
            record = d["record"]
            if record["orders"] and record["inputs"]["social"]:
                return agent, record
        return None

    agent, record = wait_until(social_order, "an order decided with a social input", 180, 2)
    order = record["orders"][0]
    explained = daemon.fleet("why", order["client_order_id"])
    assert explained.returncode == 0, explained.stderr
    text = " ".join(explained.stdout.split())
    followee = record["inputs"]["social"][0]["followee"]
    assert agent["name"] in text and f"social: {followee}" in text
    assert f"order {order['side']} {order['qty']} {order['symbol']}" in text
    shown = " ".join(daemon.fleet("show", agent["name"], "--why", "--last", "100").stdout.split())
    assert f"social: {followee}" in shown
    unknown = daemon.fleet("why", "no-such-order")
    assert unknown.returncode == 1 and unknown.stderr.count("\n") == 1
    assert "no order 'no-such-order'" in unknown.stderr

    # The dashboard draws the graph and gives each order its reason, as text.
    page.goto(f"{daemon.url}/login")
    page.fill("#token", daemon.token)
    page.click("button[type=submit]")
    page.goto(f"{daemon.url}/social")
    assert page.locator("#follow-graph circle").count() == len(names)
    assert 1 <= page.locator("#follow-graph line").count() <= len(names) * (len(names) - 1)
    arrows = page.evaluate(ARROWS)  # each from a follower's centre to the rim it points at
    # every agent anyone follows is named beside its dot (up to 8), and no name is cut
    followed_names = {
        row.split()[0] for row in page.locator("#most-followed tr").all_inner_texts()[1:]
    }
    assert set(page.locator("#follow-graph text").all_text_contents()) == followed_names
    assert drawn_whole(page, "#follow-graph")
    assert arrows and all(starts and ends for starts, ends in arrows)
    rows = page.locator("#most-followed tr").all_inner_texts()[1:]
    assert rows and all(row.split()[0] in names and int(row.split()[1]) > 0 for row in rows)
    # the most followed are named beside their dots, and no name is cut
    labels = page.locator("#follow-graph text").all_text_contents()
    assert labels[0] == rows[0].split()[0] and set(labels) <= {row.split()[0] for row in rows}
    assert drawn_whole(page, "#follow-graph")
    shot(page, "social-graph")
    page.goto(f"{daemon.url}/agents/{agent['id']}")
    assert "follows " in page.locator("#follows").inner_text()
    orders = page.locator("#orders").inner_text()
    why = [o["why"] for o in daemon.api("GET", f"/v1/agents/{agent['id']}").json()["orders"]]
    assert any(w and w in orders for w in why)

    # The same inputs through the same strategy version give the same decision.
    for _, d in _decisions(daemon, agents):
        recorded = {k: d["record"][k] for k in ("proposals", "dropped", "clamped", "orders")}
        assert {k: v for k, v in replay(d["record"]).items() if k != "error"} == recorded

    # Records are untrusted: a malformed batch is refused with the field named.
    token = daemon.agent_token(agent["id"])
    bad = httpx.post(
        f"{daemon.url}/v1/agent/decisions",
        json={"records": [{**record, "cycle": -1}]},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert bad.status_code == 422 and "cycle" in bad.json()["error"]["message"]

    # …and bounded: past its budget for the trading day an agent's batch is refused whole.
    def hostile_batch(n: int) -> httpx.Response:
        padded = {**record, "cycle": 10**8 + n, "inputs": {**record["inputs"], "pad": "x" * 40_000}}
        return httpx.post(
            f"{daemon.url}/v1/agent/decisions",
            json={"records": [padded]},
            headers={"Authorization": f"Bearer {token}"},
        )

    # Eight, since a trading day may end between two of them: four still fall in one day.
    answers = [hostile_batch(n) for n in range(8)]
    assert {a.status_code for a in answers} <= {200, 403}, [a.text[:200] for a in answers]
    refused = next(a for a in answers if a.status_code == 403)
    assert refused.json()["error"]["code"] == "over_budget"
    assert "would pass this agent's budget of 150,000 bytes" in refused.json()["error"]["message"]
    kept = {d["cycle"] for _, d in _decisions(daemon, [agent])}
    assert len(kept & {10**8 + n for n in range(8)}) == sum(a.status_code == 200 for a in answers)

    # A retired agent leaves the graph: the platform ends its follows both ways, and the
    # fleet's view shows it neither followed nor following at once.
    followed = next(b for a, b in sorted(subscriptions()))
    retired = daemon.fleet("retire", followed)
    assert retired.returncode == 0, retired.stderr
    assert all(followed not in edge for edge in subscriptions())
    assert all(followed not in edge for edge in known())
    page.goto(f"{daemon.url}/social")
    assert page.locator("#follow-graph circle").count() == len(names) - 1
    assert followed not in page.locator("#most-followed").inner_text()
