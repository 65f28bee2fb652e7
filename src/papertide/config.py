"""Typed settings: each has a default and a description, and can be set as PAPERTIDE_<NAME> in the environment."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_home() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "papertide"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PAPERTIDE_", extra="ignore")

    home: Path = Field(default_factory=_default_home, description="Folder for the database and the indexes.")
    database_url: str | None = Field(
        default=None, description="Where papers are stored: sqlite:///path (default: sqlite:///<home>/papertide.db)."
    )
    embed_precision: str = Field(
        default="auto", description="Embedding precision: auto (bf16 where the CPU supports it), fp32 or bf16."
    )
    embed_batch_size: int = Field(default=64, description="Texts per embedding batch.")
    fusion: str = Field(default="convex", description="Hybrid fusion: convex (tuned weights) or rrf (k=60).")
    fusion_alpha: float = Field(default=0.4, description="Dense weight in the convex fusion (0..1).")
    fusion_depth: int = Field(default=100, description="Candidates taken from each ranker before fusion.")
    harvest_interval: float = Field(default=3.0, description="Seconds between requests to arXiv (their policy).")
    contact_email: str = Field(default="", description="Contact address sent in the User-Agent to arXiv.")
    arxiv_api_url: str = Field(
        default="https://export.arxiv.org/api/query", description="arXiv API used to fetch submitted papers."
    )

    # -- the site ------------------------------------------------------------------------------------
    base_url: str = Field(
        default="http://127.0.0.1:8000", description="Public address of the site, used in e-mail links and feeds."
    )
    site_name: str = Field(default="papertide", description="Name shown in the header, feeds and e-mails.")
    secret_key: str | None = Field(
        default=None,
        description="Signs sessions and e-mail links. Default: a random key created once in <home>/secret_key.",
    )
    page_size: int = Field(default=30, description="Papers per feed or search page.")
    index_refresh_seconds: float = Field(
        default=60, description="How often the site checks for newly indexed papers (0: never, restart instead)."
    )
    login_rate: str = Field(default="10/300", description="Sign-in attempts allowed per client IP: hits/seconds.")
    login_account_rate: str = Field(
        default="50/3600",
        description="Sign-in attempts allowed per account from all IPs together: hits/seconds. Looser than the "
        "per-IP limit, so that a stranger cannot lock a member out for long, while guessing one account from "
        "many addresses is still bounded.",
    )
    signup_rate: str = Field(default="5/3600", description="Sign-ups allowed per IP: hits/seconds.")
    vote_rate: str = Field(default="60/60", description="Votes allowed per user: hits/seconds.")
    submit_rate: str = Field(default="20/3600", description="Paper submissions allowed per user: hits/seconds.")
    reset_rate: str = Field(default="5/3600", description="Password-reset e-mails allowed per address: hits/seconds.")

    # -- e-mail --------------------------------------------------------------------------------------
    smtp_host: str = Field(default="localhost", description="SMTP server for password resets and digests.")
    smtp_port: int = Field(default=25, description="SMTP port (587 for STARTTLS, 465 for implicit TLS).")
    smtp_security: str = Field(default="none", description="none, starttls or tls.")
    smtp_user: str | None = Field(default=None, description="SMTP user name, if the server wants one.")
    smtp_password: str | None = Field(default=None, description="SMTP password.")
    smtp_ca_file: Path | None = Field(
        default=None,
        description="PEM file of the CA certificate(s) to trust for the SMTP server's certificate, instead of the "
        "system's (a server with a certificate from your own CA). Certificates are always verified.",
    )
    mail_from: str = Field(default="papertide <papertide@localhost>", description="From: address of e-mails.")

    # -- e-mail digests (digest/) -----------------------------------------------------------------------
    web_threads: int = Field(
        default=4, ge=1,
        description="Pages a web worker process builds at once; the rest wait their turn, first come first "
                    "served. Python runs one of them at a time anyway: 40 (Starlette's default) made the slowest "
                    "5% of searches 1.6x slower under 20 clients, 16 home pages' 1.3x (benchmarks/README.md).")
    search_threads: int = Field(
        default=16, ge=1,
        description="Search queries a web worker ranks at once (beside web_threads' pages). Concurrent queries "
                    "share one embedding pass and one scan of the vectors, so more at once make each cheaper.")
    foryou_warm: bool = Field(
        default=True, description="Build the \"for you\" corpus side when the site starts, not at the first visit.")
    digest_rate: float = Field(default=10.0, description="Digest messages sent per second at most (0: no limit).")
    digest_max_attempts: int = Field(
        default=5, description="Tries per digest message on temporary failures (4xx, lost connection) in one run."
    )
    digest_retry_seconds: float = Field(
        default=30.0, description="First backoff after a temporary failure; it doubles with each attempt."
    )
    digest_lease_seconds: float = Field(
        default=300.0, description="How long a digest run holds the messages it claimed; a killed run's come back after."
    )
    digest_papers: int = Field(default=10, description="Papers per digest for a new subscriber (they can change it).")
    digest_confirm_hours: float = Field(
        default=48.0, description="Life of the confirmation link; an unconfirmed address gets no other e-mail meanwhile."
    )
    digest_subscribe_rate: str = Field(default="5/3600", description="Digest sign-ups allowed per IP: hits/seconds.")
    digest_schedule_hour: int | None = Field(
        default=None, description="UTC hour at which `papertide serve` sends the daily digest itself (none: use cron)."
    )
    digest_weekly_day: int = Field(
        default=0, description="Weekday (0 = Monday) on which the scheduled run also sends the weekly digest."
    )
    digest_unsubscribe_mailto: str = Field(
        default="", description="Optional address for a mailto: in List-Unsubscribe, beside the one-click https link."
    )

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'papertide.db'}"

    @property
    def index_dir(self) -> Path:
        return self.home / "index"

    def signing_key(self) -> str:
        """The configured secret key, or one made at random on first use and kept in <home>/secret_key."""
        if self.secret_key:
            return self.secret_key
        path = self.home / "secret_key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(48))
        return path.read_text().strip()


def parse_rate(rate: str) -> tuple[int, int]:
    """'10/300' -> (10 hits, per 300 seconds)."""
    hits, _, seconds = rate.partition("/")
    return int(hits), int(seconds or 60)
