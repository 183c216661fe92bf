"""API tokens: who may ask what. The secret is shown once at creation and stored only as a SHA-256 hash
(tokens carry 256 bits of randomness, so a fast hash is enough, and a lookup is one indexed equality)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum

TOKEN_PREFIX = "ct_"


class Role(StrEnum):
    ADMIN = "admin"
    INTEGRATION = "integration"  # the CRM
    SUPERVISOR = "supervisor"
    MANAGER = "manager"  # sees only their own calls, recordings and callbacks


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of an API request, once its token checked out."""

    token_id: int
    role: Role
    manager: str | None

    @property
    def is_manager(self) -> bool:
        return self.role is Role.MANAGER


@dataclass(frozen=True, slots=True)
class NewToken:
    secret: str
    prefix: str
    secret_hash: str


def new_token() -> NewToken:
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return NewToken(secret=secret, prefix=secret[:10], secret_hash=hash_secret(secret))


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "replace")).hexdigest()


def same_hash(a: str, b: str) -> bool:
    return hmac.compare_digest(a, b)
