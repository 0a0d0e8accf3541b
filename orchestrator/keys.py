"""Key material kept in the state dir: the instance key, the operator token, agent tokens.

Agent tokens are derived, not stored: `HMAC(instance key, agent id : generation)`. The
store keeps only their SHA-256, so a copy of the database reveals no usable token, while
the daemon can hand the same token to a container it recreates. Revoking a token bumps
its generation. Nothing here may ever log a key or a token. `masked_url` is the one way
a database URL is shown: without its password.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the cipher's library takes half a second to load: only when used
    from cryptography.fernet import Fernet

KEY_FILE = "fleet.key"
KEY_BYTES = 32
OPERATOR_TOKEN_FILE = "operator-token"


class SecretFileError(Exception):
    """A secret file of the state dir is empty, or not what it must hold: the message names
    it and what to do. Never worked around: an empty key would make every agent's token
    one anybody can derive, and an empty operator token would open the operator API."""


_LOST_KEY = (
    "restore it from a backup (`fleet restore`), or remove it for a new key (the agents' "
    "platform credentials sealed with the old one are then lost)"
)


def _read(path: Path, fix: str) -> bytes | None:
    """A secret file's content, None if there is no such file; SecretFileError, saying
    `fix`, if it is empty (a first start cut short, say)."""
    try:
        found = path.read_bytes().strip()
    except FileNotFoundError:
        return None
    if not found:
        raise SecretFileError(f"{path} is empty: {fix}")
    return found


def _read_or_create(path: Path, make: bytes, fix: str) -> bytes:
    """Read a secret file (see `_read`), creating it with mode 0600 first if it does not
    exist."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        found = _read(path, fix)
        return _read_or_create(path, make, fix) if found is None else found  # removed meanwhile
    with os.fdopen(fd, "wb") as f:
        f.write(make)
        f.flush()
        os.fsync(f.fileno())
    return make


def decoded_key(raw: str | bytes) -> bytes | None:
    """The instance key `raw` spells in base64, or None if it spells no such key (wrong
    length, not base64, not text at all)."""
    try:
        key = base64.b64decode(raw, validate=True)
    except (TypeError, ValueError):
        return None
    return key if len(key) == KEY_BYTES else None


def _key(path: Path, raw: bytes) -> bytes:
    """The instance key a key file holds, or SecretFileError."""
    key = decoded_key(raw)
    if key is None:
        raise SecretFileError(f"{path} is not a {KEY_BYTES}-byte key in base64: {_LOST_KEY}")
    return key


def instance_key(state_dir: Path) -> bytes:
    """The instance's 32-byte secret key, generated on first use."""
    path = state_dir / KEY_FILE
    return _key(
        path, _read_or_create(path, base64.b64encode(secrets.token_bytes(KEY_BYTES)), _LOST_KEY)
    )


def check_key(state_dir: Path, key: bytes) -> None:
    """ValueError if the state dir already has an instance key other than `key`
    (SecretFileError if that file is damaged); reads only, so a restore can be refused
    before it changes anything."""
    path = state_dir / KEY_FILE
    found = _read(path, _LOST_KEY)
    if found is not None and _key(path, found) != key:
        raise ValueError(f"{path} holds another instance's key")


def install_key(state_dir: Path, key: bytes) -> None:
    """Put a restored instance key in the state dir (0600); ValueError if the state dir
    already has another one."""
    _read_or_create(state_dir / KEY_FILE, base64.b64encode(key), _LOST_KEY)
    check_key(state_dir, key)


_NEW_TOKEN = "remove it, and the next `fleet up` makes a new one"


def _token(path: Path, raw: bytes) -> str:
    """The operator token a token file holds (ASCII, as generated), or SecretFileError."""
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError:
        raise SecretFileError(f"{path} is not a token (not ASCII text): {_NEW_TOKEN}") from None


def operator_token(state_dir: Path) -> str:
    """The operator API token, generated on first start of the daemon."""
    path = state_dir / OPERATOR_TOKEN_FILE
    return _token(path, _read_or_create(path, secrets.token_urlsafe(32).encode(), _NEW_TOKEN))


def read_operator_token(state_dir: Path) -> str | None:
    """The operator token if the daemon has created one, without creating it
    (SecretFileError if its file is not a token)."""
    path = state_dir / OPERATOR_TOKEN_FILE
    found = _read(path, _NEW_TOKEN)
    return None if found is None else _token(path, found)


def token_bits(token: str) -> float:
    """An upper bound on a token's entropy: its length times the bits of the smallest
    alphabet (hex, base64url or printable ASCII) that spells it."""
    alphabets = (
        (set("0123456789abcdefABCDEF"), 4.0),
        (set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_="), 6.0),
    )
    for letters, bits in alphabets:
        if set(token) <= letters:
            return len(token) * bits
    return len(token) * 6.55  # log2(94) for printable ASCII


def agent_token(key: bytes, agent_id: str, generation: int) -> str:
    """The gateway token of one agent at one generation."""
    digest = hmac.new(key, f"agent-token:{agent_id}:{generation}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()).decode().rstrip("=")


def token_hash(token: str) -> str:
    """What the store keeps of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def tokens_equal(a: str, b: str) -> bool:
    """Compare two secrets in constant time; an empty one equals nothing."""
    return bool(a) and bool(b) and hmac.compare_digest(a.encode(), b.encode())


def derived_key(key: bytes, purpose: str) -> bytes:
    """A 32-byte key for one purpose, derived from the instance key."""
    return hmac.new(key, f"purpose:{purpose}".encode(), hashlib.sha256).digest()


def credentials_cipher(key: bytes, configured: str | None = None) -> Fernet:
    """The cipher that keeps platform credentials encrypted at rest.

    `configured` (FLEET_CREDENTIALS_KEY, a Fernet key) wins; otherwise the key is derived
    from the instance key in the state dir.
    """
    from cryptography.fernet import Fernet

    if configured:
        try:
            return Fernet(configured.encode())
        except ValueError:
            raise ValueError(
                "FLEET_CREDENTIALS_KEY must be 32 url-safe base64-encoded bytes (a Fernet key)"
            ) from None
    return Fernet(base64.urlsafe_b64encode(derived_key(key, "credentials")))


def masked_url(url: str) -> str:
    """A database URL without its password, to show where the store is."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy can parse: show none of it
        return "********"
