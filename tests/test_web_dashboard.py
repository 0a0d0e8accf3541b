"""The web dashboard end to end in headless Chromium (Debian's package, driven by
Playwright): log in, see the agents, open one and its timeline, act behind a confirmation;
a wrong token and a forged agent id are refused. Screenshots go to test-artifacts/."""

import math
import random
from pathlib import Path

import pytest

from orchestrator.tools.harness import wait_until

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"dashboard-{name}.png"), full_page=True)


def test_log_in_see_the_fleet_open_an_agent_and_retire_it(make_daemon, page):
    daemon = make_daemon(FLEET_DASHBOARD_ACTIONS="true")
    daemon.fleet("spawn", "3", "--seed", "7", "--wait")
    agents = daemon.agents()

    page.goto(f"{daemon.url}/")
    assert page.url.startswith(f"{daemon.url}/login")  # not signed in: the login form
    page.fill("#token", "not-the-token")
    page.click("button[type=submit]")
    assert page.locator("#login-error").inner_text() == "wrong operator token"

    page.fill("#token", daemon.token)
    page.click("button[type=submit]")
    page.wait_for_selector("#agents")
    table = page.locator("#agents").inner_text()
    assert all(a["name"] in table for a in agents)
    assert page.locator("#running").inner_text() == "3"
    assert page.locator("#market").inner_text() == "market always open"
    shot(page, "overview")

    victim = agents[0]
    page.click(f"text={victim['name']}")
    page.wait_for_selector("#timeline")
    assert page.locator("#agent-name").inner_text().startswith(victim["name"])
    timeline = page.locator("#timeline").inner_text()
    assert "spawned with strategy" in timeline and "container_started" in timeline
    shot(page, "agent")

    page.click("text=Retire…")
    assert "Retire" in page.locator("#confirm").inner_text()  # asks first
    assert daemon.agents()[0]["phase"] != "retiring"
    page.click("#confirm button[type=submit]")
    page.wait_for_selector("#timeline")
    assert "retire_requested" in page.locator("#timeline").inner_text()

    page.goto(f"{daemon.url}/agents/00000000-forged")
    assert "no agent '00000000-forged'" in page.locator("#error-message").inner_text()
    shot(page, "forged")

    page.goto(f"{daemon.url}/alerts")
    page.wait_for_selector("#alerts")


def test_the_dashboard_is_read_only_by_default(make_daemon, page):
    daemon = make_daemon()
    page.goto(f"{daemon.url}/login")
    page.fill("#token", daemon.token)
    page.click("button[type=submit]")
    page.wait_for_selector("#agents")
    assert page.locator("text=Pause").count() == 0
    page.goto(f"{daemon.url}/confirm/pause")
    assert "read-only" in page.locator("#error-message").inner_text()
    # a forged POST without the page's CSRF token changes nothing either
    response = page.request.post(f"{daemon.url}/actions/pause", form={"csrf": "x"})
    assert response.status == 403
    assert daemon.api("GET", "/v1/fleet").json()["paused"] is False


def test_sessions_expire_end_at_logout_and_failed_logins_are_throttled(make_daemon):
    import time

    import httpx

    daemon = make_daemon(FLEET_DASHBOARD_SESSION_SECONDS="3")

    def login(client: httpx.Client, token: str) -> httpx.Response:
        return client.post("/login", data={"token": token, "next": "/"})

    with httpx.Client(base_url=daemon.url, timeout=10) as client:
        assert login(client, daemon.token).status_code == 303
        kept = client.cookies["fleet_session"]
        page = client.get("/")
        assert page.status_code == 200
        for name, value in {
            "x-frame-options": "DENY",
            "content-security-policy": "frame-ancestors 'none'",
            "x-content-type-options": "nosniff",
            "referrer-policy": "no-referrer",
        }.items():
            assert page.headers[name] == value
        client.post("/logout")
        with httpx.Client(base_url=daemon.url, cookies={"fleet_session": kept}) as thief:
            assert thief.get("/").status_code == 303  # the kept cookie signs nobody in

        assert login(client, daemon.token).status_code == 303
        assert client.get("/").status_code == 200
        time.sleep(4)
        assert client.get("/").status_code == 303  # expired

    with httpx.Client(base_url=daemon.url, timeout=10) as guesser:
        answers = [login(guesser, f"guess-{i}").status_code for i in range(7)]
        assert answers[:5] == [401] * 5 and answers[5:] == [429, 429]
        assert login(guesser, daemon.token).status_code == 429  # even the right one, for now


def test_the_overview_draws_the_agents_most_in_need_and_counts_the_rest(make_daemon, tmp_path):
    from datetime import UTC, datetime

    import httpx
    import sqlalchemy as sa

    from orchestrator.api.web import OVERVIEW_ROWS
    from orchestrator.state.db import open_store
    from orchestrator.state.tables import Agent

    url = f"sqlite:///{tmp_path / 'fleet.db'}"
    store = open_store(url)  # a page of failed agents, which come before any running one
    people = [{"name": f"failed-{i:03d}", "strategy": "momentum"} for i in range(OVERVIEW_ROWS)]
    store.spawn("failed", people, lambda agent_id: f"h-{agent_id}", datetime.now(UTC))
    with store.engine.begin() as connection:
        connection.execute(sa.update(Agent.__table__).values(phase="failed", last_error="gone"))
    store.engine.dispose()
    daemon = make_daemon(FLEET_DATABASE_URL=url)
    daemon.fleet("spawn", "2", "--wait")
    gone, kept = [a for a in daemon.agents() if a["phase"] == "running"]
    assert daemon.fleet("retire", gone["name"]).returncode == 0
    with httpx.Client(base_url=daemon.url, timeout=10) as client:
        client.post("/login", data={"token": daemon.token, "next": "/"})
        table = client.get("/").text.split('id="events"')[0]
        assert table.count('href="/agents/') == OVERVIEW_ROWS
        assert "failed-099" in table and kept["name"] not in table and gone["name"] not in table
        assert "Not shown: 1 more agent (problems are listed first); 1 retired agent." in table
        everyone = client.get("/fragments/overview", params={"all": "1"}).text
        table = everyone.split('id="events"')[0]
        assert table.count('href="/agents/') == OVERVIEW_ROWS + 2
        assert kept["name"] in table and gone["name"] in table and "Not shown" not in table


def drawn_whole(page, chart: str) -> bool:
    """Whether every label of the `chart` (an svg) lies inside it, not cut at its edge."""
    return page.locator(chart).evaluate(
        """svg => [...svg.querySelectorAll('text')].every(t => {
            const box = t.getBBox();
            return box.x >= 0 && box.x + box.width <= svg.width.baseVal.value;
        })"""
    )


def test_the_agent_page_and_the_overview_charts_agree_with_the_ledger(
    make_daemon, page, sandbox_process
):
    import sqlite3
    import time

    from platform_client import PlatformClient
    from tests.conftest import CONTROLLER_KEY
    from tests.trader import Trader

    daemon = make_daemon(
        "process",
        FLEET_PLATFORM_URL=sandbox_process.url,
        FLEET_CONTROLLER_API_KEY=CONTROLLER_KEY,
        FLEET_AGENT_CYCLE_SECONDS="300",  # the agents' own beats stay out of the way
        FLEET_EQUITY_SAMPLE_SECONDS="0.2",
        FLEET_DASHBOARD_ACTIONS="true",
    )
    daemon.fleet("spawn", "2", "--seed", "3", "--wait")
    agent = daemon.agents()[0]
    trader = Trader(daemon, agent)
    trader.submit("page-1", 5, "earnings beat")
    trader.call(
        "POST",
        "api/trading/submit",
        json={
            "client_order_id": "page-2",
            "symbol": "XOM",
            "side": "buy",
            "qty": 2,
            "rationale": "oil",
        },
    )
    trader.call("GET", "api/trading/portfolio")
    for equity in (100_000.0, 101_500.0, 99_000.0, 100_700.0):
        trader.beat(equity)
        time.sleep(0.3)
    learned = {"earnings": {"score": 0.03, "trades": 2, "weight": 1.15}}
    opened = {"XOM": {"catalyst": "m&a", "entry": 110.0}}  # the agent's word: what opened it
    trader.beat(100_700.0, catalysts=learned, open_trades=opened)
    wait_until(  # the beats are written in batches
        lambda: daemon.api("GET", f"/v1/agents/{agent['id']}").json()["catalysts"], "the beat"
    )

    page.goto(f"{daemon.url}/login")
    page.fill("#token", daemon.token)
    page.click("button[type=submit]")
    page.wait_for_selector("#fleet-equity")
    assert page.locator("#fleet-equity polyline.series").count() == 1
    ticks = page.locator("#fleet-equity .y-tick").all_text_contents()
    assert len(ticks) == 5 and all(t.startswith(("$", "-$")) for t in ticks)
    assert len(page.locator("#fleet-equity .x-tick").all_text_contents()) == 5
    assert drawn_whole(page, "#fleet-equity") and drawn_whole(page, "#pnl-by-strategy")
    assert page.locator("#pnl-by-strategy polyline.series").count() >= 1
    assert page.locator("#drawdown").inner_text().endswith("%")
    summary = daemon.api("GET", "/v1/fleet").json()
    assert page.locator("#orders-today").inner_text() == str(summary["orders_today"])
    shot(page, "overview-charts")

    page.goto(f"{daemon.url}/agents/{agent['id']}")
    page.wait_for_selector("#equity-chart")
    assert page.locator("#equity-chart .y-tick").count() == 5
    assert drawn_whole(page, "#equity-chart")
    assert page.locator("#catalysts").inner_text() == "catalysts: earnings ×1.15 (2 trades)"
    (account,) = [
        a
        for a in PlatformClient(
            sandbox_process.url, controller_key=CONTROLLER_KEY
        ).controller_agents()
        if a["idempotency_key"] == agent["id"]
    ]
    with sqlite3.connect(sandbox_process.state_dir / "sandbox.db") as ledger:
        held = ledger.execute(
            "SELECT symbol, qty FROM sandbox_positions WHERE user_id = ? AND qty > 0",
            (account["user_id"],),
        ).fetchall()
        placed = ledger.execute(
            "SELECT side, symbol, filled_qty FROM sandbox_orders WHERE user_id = ?",
            (account["user_id"],),
        ).fetchall()
    rows = [r.split("\t") for r in page.locator("#positions tr:has(td)").all_inner_texts()]
    shown = sorted({(r[0], float(r[1])) for r in rows})
    assert shown == sorted((symbol, float(qty)) for symbol, qty in held)
    assert {r[0]: r[-1] for r in rows} == {s: "m&a" if s == "XOM" else "-" for s, _ in held}
    shown = daemon.fleet("show", agent["name"]).stdout  # and in the CLI
    assert "OPENED ON" in shown and any(
        line.split()[::5] == ["XOM", "m&a"] for line in shown.splitlines()
    )
    orders = [r.split("\t") for r in page.locator("#orders tr:has(td)").all_inner_texts()]
    assert sorted((r[1], r[2], float(r[4])) for r in orders) == sorted(
        (side, symbol, float(qty)) for side, symbol, qty in placed
    )
    assert "earnings beat" in page.locator("#orders").inner_text()
    shot(page, "agent-trading")

    # The platform going away shows at the relay's first call that finds none.
    def platform_shown() -> str:
        page.goto(daemon.url)
        return page.locator("#platform").inner_text()

    def reachable() -> float:
        from tests.test_metrics import scrape

        (sample,) = scrape(daemon)[1]["fleet_platform_reachable"].samples
        return sample.value

    assert (platform_shown(), reachable()) == ("ok", 1)
    sandbox_process.stop()
    assert trader.call("GET", "api/trading/portfolio").status_code == 502
    assert (platform_shown(), reachable()) == ("unreachable", 0)
    assert "calls failed" in page.locator("#platform").locator("..").inner_text()
    down = daemon.api("GET", "/v1/fleet").json()["platform"]
    assert down["reachable"] is False and down["failed_calls"] >= 1 and down["down_since"]
    sandbox_process.start()
    assert trader.call("GET", "api/trading/portfolio").status_code == 200
    assert (platform_shown(), reachable()) == ("ok", 1)

    retired = daemon.fleet("retire", agent["name"], "--flatten")
    assert retired.returncode == 0, retired.stderr
    page.goto(f"{daemon.url}/agents/{agent['id']}")
    page.wait_for_selector("#orders")
    history = page.locator("#orders").inner_text()
    assert "earnings beat" in history and "closing sale" in history  # kept past the account


NAMES = """() => [...document.querySelectorAll('#follow-graph text')].map(t => {
  const b = t.getBBox();
  return [b.x, b.y, b.x + b.width, b.y + b.height];
})"""


@pytest.mark.parametrize(
    ("agents", "name"),
    [
        (6, "gentle-falcon-{:04x}"),
        (9, "x" * 30 + "{}"),
        (40, "x" * 30 + "{}"),
        (1000, "swift-otter-{:04x}"),
    ],
)
def test_the_follow_graph_names_its_most_followed_and_no_name_hides_another(page, agents, name):
    from orchestrator.api.charts import LABELLED, follow_graph
    from orchestrator.api.web import templates

    names = [name.format(i) for i in range(agents)]
    nodes = [{"name": n, "followers": agents - i} for i, n in enumerate(names)]
    graph = follow_graph({"nodes": nodes, "edges": []})
    html = templates.get_template("social.html").render(
        summary={"instance": "test"}, actions=False, csrf="", graph=graph, leaders=[], follows=0
    )
    page.set_content(html)
    shown = page.locator("#follow-graph text").all_text_contents()
    assert shown[0] == names[0] and set(shown) <= set(names[:LABELLED])
    if agents <= LABELLED:  # a small fleet's every agent
        assert shown == names
    boxes = page.evaluate(NAMES)
    assert all(  # no two overlap
        a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]
        for i, a in enumerate(boxes)
        for b in boxes[i + 1 :]
    )
    assert drawn_whole(page, "#follow-graph")


def _fleet_of(kind: str, agents: int) -> list[int]:
    """Followers, most first, of a fleet of `agents` shaped as `kind`."""
    rng = random.Random(agents)
    return sorted(
        {
            "even": [agents - i for i in range(agents)],
            "nobody": [0] * agents,
            "one star": [agents - 1] + [0] * (agents - 1),
            "heavy tail": [int(rng.paretovariate(1.1)) - 1 for _ in range(agents)],
        }[kind],
        reverse=True,
    )


@pytest.mark.parametrize("kind", ["even", "nobody", "one star", "heavy tail"])
@pytest.mark.parametrize("agents", [1, 2, 6, 40, 1000])
def test_no_dot_of_the_follow_graph_covers_another_and_the_most_followed_is_central(kind, agents):
    from orchestrator.api.charts import follow_graph

    nodes = [{"name": f"a{i}", "followers": f} for i, f in enumerate(_fleet_of(kind, agents))]
    graph = follow_graph({"nodes": nodes, "edges": []})
    dots = [(n.x, n.y, n.r) for n in graph.nodes]
    assert dots[0][:2] == (graph.size / 2, graph.size / 2)
    assert all(r <= x <= graph.size - r and r <= y <= graph.size - r for x, y, r in dots)
    if agents > 1:  # spread out or shrunk until the outermost rim is 20 px from the edge
        reach = max(math.hypot(x - graph.size / 2, y - graph.size / 2) + r for x, y, r in dots)
        assert reach == pytest.approx(graph.size / 2 - 20, abs=0.2)
    slack = 0.2  # each place and size is rounded to 0.1
    assert all(
        math.hypot(a[0] - b[0], a[1] - b[1]) >= a[2] + b[2] - slack
        for i, a in enumerate(dots)
        for b in dots[i + 1 :]
    )
    followed = [n.followers for n in graph.nodes]
    assert [n.r for n in graph.nodes] == sorted((n.r for n in graph.nodes), reverse=True)
    assert followed == sorted(followed, reverse=True)


def test_the_more_follows_the_fainter_each_is_drawn():
    from orchestrator.api.charts import follow_graph

    nodes = [{"name": f"a{i}", "followers": 1} for i in range(100)]

    def drawn(follows: int) -> tuple[float, float]:
        edges = [{"from": f"a{i % 100}", "to": f"a{(i + 1) % 100}"} for i in range(follows)]
        graph = follow_graph({"nodes": nodes, "edges": edges})
        return graph.edge_opacity, graph.arrow_opacity

    assert drawn(10) == drawn(300) == (0.35, 1.0)
    assert drawn(300) > drawn(1200) > drawn(100_000) == drawn(1_000_000) == (0.052, 0.15)
