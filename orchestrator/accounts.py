"""Agents' platform accounts: created and disabled through the controller API, sealed at rest.

The idempotency key of an account is the agent's id, so provisioning that is retried or
interrupted by a crash finds the same account instead of making a second one. Credentials
leave this module only sealed (for the store) or opened for the agent's own bootstrap;
they never reach a log line or an error message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from cryptography.fernet import Fernet, InvalidToken

from platform_client import NotFound, PlatformClient


@dataclass(frozen=True)
class Account:
    """A provisioned account as the store keeps it."""

    user_id: str
    username: str
    sealed: str = field(repr=False)


class Accounts:
    """Controller-side account operations for one platform."""

    def __init__(self, client: PlatformClient, cipher: Fernet) -> None:
        self.client = client
        self.cipher = cipher

    @property
    def base_url(self) -> str:
        """Where the agents reach the platform."""
        return self.client.base_url

    def create(self, agent_id: str, name: str, strategy: str) -> Account:
        """Create (or find again) the account of one agent."""
        credentials = self.client.create_agent(
            idempotency_key=agent_id, display_name=name, profile={"strategy": strategy}
        )
        secret = json.dumps({"username": credentials.username, "password": credentials.password})
        sealed = self.cipher.encrypt(secret.encode()).decode()
        return Account(credentials.user_id, credentials.username, sealed)

    def disable(self, user_id: str) -> None:
        """Disable an account; one that no longer exists counts as disabled."""
        try:
            self.client.retire_agent(user_id)
        except NotFound:
            return

    def open(self, sealed: str) -> dict[str, str]:
        """The username and password inside sealed credentials."""
        try:
            return json.loads(self.cipher.decrypt(sealed.encode()))
        except InvalidToken:
            raise ValueError("stored credentials cannot be decrypted with this key") from None

    def close(self) -> None:
        """Close the platform client."""
        self.client.close()
