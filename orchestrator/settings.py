"""The farm's settings: one object, from RESOLVE_FARM_* variables and an optional TOML file.

    RESOLVE_FARM_CONFIG=/etc/resolve-farm.toml   # optional; variables override the file

A bad value fails at start-up with the setting's name and the reason (pydantic's
ValidationError, which `resolve-farm` prints as such).
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

VERSION_KEY = "1"  # bump when tasks and orchestrator stop understanding each other's messages
OsName = Literal["linux", "darwin", "windows"]


def default_home() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "resolve-farm"


def this_os() -> OsName:
    return "windows" if sys.platform == "win32" else ("darwin" if sys.platform == "darwin" else "linux")


def _split(value: Any) -> Any:
    """Lists from the environment as "a,b,c" (or JSON), from TOML as lists."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            import json

            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


class FarmSettings(BaseSettings):
    """Everything a farm process needs to know, validated once at start-up.

    Note: `visibility_timeout` must exceed the longest render (`render_time_limit`): Redis
    redelivers an unacknowledged message after it even while the task still runs.
    """

    model_config = SettingsConfigDict(env_prefix="RESOLVE_FARM_", extra="forbid", validate_default=True)

    home: Path = Field(default_factory=default_home, description="state of the local farm")
    broker_url: str | None = Field(None, description="redis:// or rediss://; none: start an embedded Redis")
    result_url: str | None = Field(None, description="Celery results; default: the broker")
    redis_password: SecretStr | None = Field(None, description="password of the embedded Redis")
    node_name: str = Field(default_factory=lambda: socket.gethostname().split(".")[0], pattern=r"^[A-Za-z0-9_-]{1,64}$")
    node_tags: Annotated[list[str], NoDecode] = Field(default_factory=list)
    node_os: OsName = Field(default_factory=this_os)
    bridge: Literal["auto", "native", "subprocess", "sim"] = "auto"
    worker_pool: Literal["auto", "prefork", "threads"] = Field(
        "auto", description="a worker's Celery pool: prefork on Linux, threads on Windows and macOS (auto)"
    )
    call_deadline: float = Field(
        60.0, ge=2.0, description="seconds a Resolve call through the helper may take before the helper is killed"
    )
    roles: Annotated[list[Literal["resolve", "post", "transcode"]], NoDecode] = Field(
        default_factory=lambda: ["resolve"],  # type: ignore[arg-type,unused-ignore]
        description="what this worker does: Resolve tasks, stitching, transcoding (proxies), or several",
    )
    storage_roots: Annotated[list[Path], NoDecode] = Field(default_factory=list)
    media_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list, description="where edits may read media and LUTs from; default: the storage roots"
    )
    database_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["127.0.0.1", "localhost", "::1"],
        description="PostgreSQL hosts a job may point Resolve's project database at",
    )
    path_mapping: dict[str, dict[OsName, str]] = Field(default_factory=dict)
    visibility_timeout: int = Field(6 * 3600, ge=5, description="seconds")
    render_time_limit: int = Field(4 * 3600, ge=2, description="hard limit of one render task, seconds")
    edit_time_limit: int = Field(900, ge=10, description="hard limit of one edit task, seconds")
    min_segment_frames: int = Field(240, ge=1)
    # A batch edit whose dry run shows more changes than this asks to confirm first; 0 (the default): none asks.
    # Off unless set: asking costs every edit a dry run first, and a pipeline that never answers would stall.
    edit_confirm_over: int = Field(0, ge=0)
    segments_per_node: int = Field(1, ge=1, le=64)
    piece_seconds: float = Field(
        300.0, gt=0, description="how long a piece of a pulled render should take, far from its end"
    )
    render_start_seconds: float = Field(
        5.0, ge=0, description="what starting one render costs on Resolve, until the farm has measured it"
    )
    heartbeat_interval: float = Field(5.0, gt=0)
    heartbeat_timeout: float = Field(20.0, gt=0)
    job_retention: int = Field(7 * 24 * 3600, ge=60, description="seconds a finished job is kept")
    max_attempts: int = Field(3, ge=1, le=20)
    progress_interval: float = Field(0.5, gt=0, description="seconds between progress reports of a task")
    lock_ttl: int = Field(30, ge=2, description="seconds a dead worker's task lock outlives it")
    cancel_cleanup_delay: float = Field(
        600.0, ge=0, description="seconds a cancelled job's finished pieces are kept, for a retry to reuse"
    )
    transcode_fps: float = Field(
        0.0, ge=0, description="most frames per second one transcode may make on this node (0: as fast as it can)"
    )
    drp_import_max_age: float = Field(
        7 * 24 * 3600.0, ge=0, description="seconds a host keeps a project imported from a .drp that no piece used"
    )
    plugins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="modules that register more job kinds and their tasks"
    )
    flower_user: str | None = Field(None, min_length=1, description="Flower's basic-auth user")
    flower_password: SecretStr | None = Field(None, description="Flower's basic-auth password")
    mcp_tokens: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list, description="bearer tokens of the MCP server over HTTP"
    )

    @field_validator(
        "node_tags", "storage_roots", "media_roots", "database_hosts", "roles", "mcp_tokens", "plugins", mode="before"
    )
    @classmethod
    def _lists(cls, value: Any) -> Any:
        return _split(value)

    @field_validator("node_tags")
    @classmethod
    def _tags(cls, tags: list[str]) -> list[str]:
        for tag in tags:
            if not tag.replace("-", "").replace("_", "").isalnum():
                raise ValueError(f"tag {tag!r} may hold letters, digits, '-' and '_' only")
        return sorted(set(tags))

    @field_validator("storage_roots", "media_roots")
    @classmethod
    def _absolute(cls, roots: list[Path]) -> list[Path]:
        for root in roots:
            if not root.is_absolute():
                raise ValueError(f"storage root {str(root)!r} must be an absolute path")
        return [Path(os.path.normpath(r)) for r in roots]

    @field_validator("broker_url", "result_url")
    @classmethod
    def _redis_url(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return url

    @model_validator(mode="after")
    def _consistent(self) -> FarmSettings:
        if self.visibility_timeout <= self.render_time_limit:
            raise ValueError(
                f"visibility_timeout ({self.visibility_timeout}s) must exceed render_time_limit "
                f"({self.render_time_limit}s), or Redis redelivers renders that are still running"
            )
        if self.heartbeat_timeout <= self.heartbeat_interval:
            raise ValueError("heartbeat_timeout must exceed heartbeat_interval")
        if not self.storage_roots:
            self.storage_roots = [self.home / "storage"]
        if not self.media_roots:
            self.media_roots = list(self.storage_roots)
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config = os.environ.get("RESOLVE_FARM_CONFIG")
        if config:
            if not Path(config).is_file():
                raise FileNotFoundError(f"RESOLVE_FARM_CONFIG: {config} does not exist")
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config))
        return tuple(sources)

    # --- derived ---------------------------------------------------------------------

    @property
    def soft_time_limit(self) -> int:
        return max(1, self.render_time_limit - min(60, max(1, self.render_time_limit // 10)))
