"""API bearer tokens: stored only as SHA-256 hashes; roles division | agency | auditor."""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select, update

from adapters.store import Store, access_tokens, format_instant, utc_now

ROLES = ("division", "agency", "auditor")


@dataclass(frozen=True)
class Principal:
    role: str
    unit: str | None

    @property
    def actor(self) -> str:
        return f"{self.role}:{self.unit}" if self.unit else self.role


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(store: Store, role: str, unit: str | None) -> str:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    if role == "agency" and not unit:
        raise ValueError("an agency token needs --unit")
    token = "mx_" + secrets.token_urlsafe(32)
    with store.engine.begin() as conn:
        conn.execute(access_tokens.insert().values(token_hash=_hash(token), role=role, unit=unit,
                                                   created_at=format_instant(utc_now())))
    return token


def revoke_token(store: Store, token: str) -> bool:
    with store.engine.begin() as conn:
        res = conn.execute(update(access_tokens).where(access_tokens.c.token_hash == _hash(token))
                           .where(access_tokens.c.revoked_at.is_(None))
                           .values(revoked_at=format_instant(utc_now())))
        return res.rowcount > 0


def authenticate(store: Store, token: str | None) -> Principal | None:
    if not token:
        return None
    with store.engine.connect() as conn:
        row = conn.execute(select(access_tokens.c.role, access_tokens.c.unit, access_tokens.c.revoked_at)
                           .where(access_tokens.c.token_hash == _hash(token))).first()
    if row is None or row.revoked_at is not None:
        return None
    return Principal(row.role, row.unit)
