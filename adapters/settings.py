"""Where the record lives: `--store URL`, else METROLEX_STORE, else ./metrolex.db (SQLite)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")
DEFAULT_STORE = "sqlite:///metrolex.db"


def resolve_store_url(cli_value: str | None = None, environ: dict | None = None) -> str:
    env = os.environ if environ is None else environ
    url = cli_value or env.get("METROLEX_STORE") or DEFAULT_STORE
    return sqlalchemy_url(url)


def sqlalchemy_url(url: str) -> str:
    """Accept the contract's plain URLs: `postgresql://user@host/db`, `sqlite:///file.db`, or a path."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg2://" + url.split("://", 1)[1]
    if "://" not in url:
        return f"sqlite:///{url}"
    return url


@dataclass
class Settings:
    store_url: str = DEFAULT_STORE
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_starttls: bool = False
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_sender: str = "metrolex@localhost"
    webhook_secret: str = "metrolex-dev-secret"
    sweep_time: str = "08:30"
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_env(cls, store: str | None = None, environ: dict | None = None) -> "Settings":
        env = os.environ if environ is None else environ
        return cls(
            store_url=resolve_store_url(store, env),
            smtp_host=env.get("METROLEX_SMTP_HOST"),
            smtp_port=int(env.get("METROLEX_SMTP_PORT", "25")),
            smtp_starttls=env.get("METROLEX_SMTP_STARTTLS", "false").lower() == "true",
            smtp_user=env.get("METROLEX_SMTP_USER"),
            smtp_password=env.get("METROLEX_SMTP_PASSWORD"),
            smtp_sender=env.get("METROLEX_SMTP_SENDER", "metrolex@localhost"),
            webhook_secret=env.get("METROLEX_WEBHOOK_SECRET", "metrolex-dev-secret"),
            sweep_time=env.get("METROLEX_SWEEP_TIME", "08:30"),
        )
