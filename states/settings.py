"""One settings object for the whole service (environment prefix CAMPAIGN_), created by a function."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from states.errors import BadInput


class Settings(BaseSettings):
    """Where the data lives and how notices leave; tests build their own instance."""

    model_config = SettingsConfigDict(env_prefix="CAMPAIGN_", extra="ignore")

    database_url: str = "sqlite:///var/campaign.db"
    outbox_dir: Path = Path("var/outbox")
    report_dir: Path = Path("var/reports")
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_from: str = "campaign@localhost"
    smtp_tls: Literal["starttls", "ssl", "none"] = "starttls"
    """`starttls` (required: a server that does not offer it gets nothing), `ssl` (implicit TLS, port 465), or
    `none` (plain text: only where asked for, e.g. a local relay)."""
    smtp_ca_file: Path | None = None
    """A CA bundle to verify the SMTP server's certificate against (an office's own CA); default the system's."""
    key_dir: Path = Path("var/keys")
    """Where the service's secret keys live when the environment gives none (`keys.secret_key`): never in the
    database, never in Prefect."""
    audit_anchors: Path = Path("var/audit-anchors")
    """Where the audit chain's head is appended after every write (`states.anchors`): outside the database, 0600."""
    simulation: bool = False
    """`CAMPAIGN_SIMULATION=1`: times later than now are accepted (the demo, the tests); otherwise refused."""
    chunk_branches: int = 200
    """Branches per sweep chunk: one transaction (and one Prefect task) per chunk."""
    chunk_pool: str | None = None
    """`CAMPAIGN_CHUNK_POOL=<work pool>` (PostgreSQL only): a deadline's chunks run as `sweep-chunks` flow runs on
    that process work pool, shared by its workers on every host; unset, they run in the sweep's own process."""
    chunk_group: int = 10
    """Chunks per `sweep-chunks` flow run on the pool (each run is a process of its own on a worker)."""


def load_settings(**overrides: object) -> Settings:
    """Read the environment (CAMPAIGN_*) and apply explicit overrides; a bad value is one line, exit 2."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        error = exc.errors()[0]
        name = "CAMPAIGN_" + "_".join(str(p) for p in error["loc"]).upper()
        why = " ".join(str(error["msg"]).split())
        raise BadInput(zh=f"环境变量 {name} 的值有误：{why}", en=f"{name}: {why}") from None
