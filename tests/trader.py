"""An agent's own calls made by hand, with its gateway token, through the daemon's relay:
for tests that need orders and heartbeats they choose, from a real agent's account."""

import httpx


class Trader:
    """One agent's own calls through the relay, with its gateway token."""

    def __init__(self, daemon, agent: dict) -> None:
        self.daemon = daemon
        self.token = daemon.agent_token(agent["id"])
        self.cycle = agent["last_cycle"]
        login = daemon.api("GET", "/v1/agent/bootstrap", token=self.token).json()["platform"]
        answer = self.call("POST", "api/auth/login", json=login)
        self.platform = {"X-Platform-Authorization": f"Bearer {answer.json()['access_token']}"}

    def call(self, method: str, path: str, **kwargs) -> httpx.Response:
        headers = {**getattr(self, "platform", {}), **kwargs.pop("headers", {})}
        return self.daemon.api(
            method, f"/v1/platform/{path}", token=self.token, headers=headers, **kwargs
        )

    def submit(self, client_order_id: str, qty: float, why: str) -> dict:
        body = {
            "client_order_id": client_order_id,
            "symbol": "AAPL",
            "side": "buy",
            "qty": qty,
            "rationale": why,
        }
        answer = self.call("POST", "api/trading/submit", json=body)
        assert answer.status_code in (200, 201), answer.text
        return answer.json()

    def beat(self, equity: float, **reported: object) -> None:
        body = {"cycle": self.cycle, "equity": equity, **reported}
        answer = self.daemon.api("POST", "/v1/agent/heartbeat", token=self.token, json=body)
        assert answer.status_code == 200, answer.text
