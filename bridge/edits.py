"""The edit vocabulary: small declarative operations, validated before anything is touched.

Each operation is a JSON object with an `op` field. `validate_operations` turns a list of
them into plain dicts for `ops.apply_edits`, or raises `pydantic.ValidationError` naming the
operation, the field and the reason.
"""

from __future__ import annotations

import os
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from bridge.colors import ClipColor, MarkerColor

Name = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f/\\]+$")]
Triple = Annotated[list[float], Field(min_length=3, max_length=3)]


class _Op(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ItemSelector(_Op):
    """Which timeline items: a track type, optionally one track, a name glob and a clip colour."""

    track_type: Literal["video", "audio", "subtitle"] = "video"
    track: int | None = Field(None, ge=1, le=999)
    name: str | None = Field(None, max_length=255, description="glob, e.g. 'A0*'")
    color: ClipColor | None = None


class ClipSelector(_Op):
    """Which media pool clips: optionally one bin by name and a name glob."""

    bin: str | None = Field(None, max_length=255)
    name: str | None = Field(None, max_length=255, description="glob, e.g. '*.mov'")


class AddMarker(_Op):
    op: Literal["add_marker"]
    frame: int = Field(ge=0, le=10_000_000, description="frames from the timeline's start")
    color: MarkerColor = "Blue"
    name: str = Field("", max_length=255)
    note: str = Field("", max_length=4096)
    duration: int = Field(1, ge=1, le=10_000_000)
    custom_data: str = Field("", max_length=4096)


class DeleteMarkers(_Op):
    op: Literal["delete_markers"]
    color: MarkerColor | Literal["All"] = "All"
    frame: int | None = Field(None, ge=0, le=10_000_000)


class SetClipColor(_Op):
    op: Literal["set_clip_color"]
    items: ItemSelector = ItemSelector()
    color: ClipColor


class SetClipProperty(_Op):
    op: Literal["set_clip_property"]
    clips: ClipSelector = ClipSelector()
    property: str = Field(min_length=1, max_length=255)
    value: str | int | float


class SetMetadata(_Op):
    op: Literal["set_metadata"]
    clips: ClipSelector = ClipSelector()
    metadata: dict[Annotated[str, Field(min_length=1, max_length=255)], Annotated[str, Field(max_length=4096)]] = Field(
        min_length=1
    )


class RenameTimeline(_Op):
    op: Literal["rename_timeline"]
    name: Name


class DuplicateTimeline(_Op):
    op: Literal["duplicate_timeline"]
    name: Name


def _clean_path(value: str, field: str) -> str:
    if "\x00" in value:
        raise ValueError(f"{field} contains a NUL byte")
    return value


class ApplyLut(_Op):
    op: Literal["apply_lut"]
    items: ItemSelector = ItemSelector()
    path: str = Field(
        min_length=1, max_length=4096, description="a .cube/.3dl file, absolute or in Resolve's LUT folder"
    )
    node: int = Field(1, ge=1, le=99)

    @field_validator("path")
    @classmethod
    def _lut(cls, v: str) -> str:
        v = _clean_path(v, "path")
        if not v.lower().endswith((".cube", ".3dl", ".dat", ".ilut", ".olut", ".davlut")):
            raise ValueError("path must name a LUT file (.cube, .3dl, .dat, .ilut, .olut, .davlut)")
        return v


class SetCdl(_Op):
    op: Literal["set_cdl"]
    items: ItemSelector = ItemSelector()
    node: int = Field(1, ge=1, le=99)
    slope: Triple = [1.0, 1.0, 1.0]
    offset: Triple = [0.0, 0.0, 0.0]
    power: Triple = [1.0, 1.0, 1.0]
    saturation: float = Field(1.0, ge=0, le=4)


class ImportMedia(_Op):
    op: Literal["import_media"]
    paths: list[Annotated[str, Field(min_length=1, max_length=4096)]] = Field(min_length=1, max_length=10_000)
    bin: str | None = Field(None, min_length=1, max_length=255)

    @field_validator("paths")
    @classmethod
    def _absolute(cls, paths: list[str]) -> list[str]:
        for p in paths:
            _clean_path(p, "paths")
            if not os.path.isabs(p):
                raise ValueError(f"paths must be absolute, got {p!r}")
        return paths


class AppendClips(_Op):
    op: Literal["append_clips"]
    clips: ClipSelector
    track: int = Field(1, ge=1, le=999)


EditOperation = Annotated[
    AddMarker
    | DeleteMarkers
    | SetClipColor
    | SetClipProperty
    | SetMetadata
    | RenameTimeline
    | DuplicateTimeline
    | ApplyLut
    | SetCdl
    | ImportMedia
    | AppendClips,
    Field(discriminator="op"),
]
_OPERATIONS: TypeAdapter[list[EditOperation]] = TypeAdapter(
    Annotated[list[EditOperation], Field(min_length=1, max_length=10_000)]
)


def validate_operations(operations: Any) -> list[dict[str, Any]]:
    """Validated operations as plain dicts for `ops.apply_edits`; raises ValidationError."""
    return [op.model_dump(mode="json", exclude_none=True) for op in _OPERATIONS.validate_python(operations)]
