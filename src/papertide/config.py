"""Typed settings: each has a default and a description, and can be set as PAPERTIDE_<NAME> in the environment."""

from __future__ import annotations

import os
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

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'papertide.db'}"

    @property
    def index_dir(self) -> Path:
        return self.home / "index"
