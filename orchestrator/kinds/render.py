"""The `render` kind: one timeline (or a range of it) rendered, split across hosts or not.

Compiles a `RenderSpec` into segments of the range, an audio pass rendered once for the whole
range when split, and a stitch on the post queue that waits for all of them. Split `auto`
on two or more nodes is pulled: the frames are a pool (`FramePool`, the record's `schedule`) and each
free node takes the next range, sized from its speed (`orchestrator.pull`), until none are left;
the compiled plan holds one open piece per node that could take one. A number of segments
(`split: N`) cuts the range into N equal pieces up front.
Segments of all-intra codecs (ProRes, DNxHR), and of long-GOP codecs in containers where the
join is known to be lossless (H.264 and H.265 in QuickTime and MP4), join by stream copy when
the stitch finds them compatible (`tasks.joinable`), and are split `auto` like intra ones;
other long-GOP renders run unsplit unless the user asks, and then the stitch re-encodes.
Image sequences (TIFF, DPX, OpenEXR) split like all-intra codecs, with nothing to join: see
`orchestrator.kinds.imageseq`.
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from orchestrator import kinds
from orchestrator.kinds import checks, imageseq
from orchestrator.kinds.base import Compiled, JobKind, Leftovers, OutputExists, SubmitRefused
from orchestrator.kinds.face import DatabaseName, Face, OnNode, Priority, Project, WithTags
from orchestrator.models import FrameRange, JobRecord, Name, Placement, ProjectRef, TaskRecord
from orchestrator.outputs import next_version
from orchestrator.pull import dispatch
from orchestrator.pull.costs import cost_key
from orchestrator.pull.pool import FramePool
from orchestrator.pull.rules import PulledRender
from orchestrator.pull.speeds import speed_key
from orchestrator.sequences import Sequence

if TYPE_CHECKING:
    from orchestrator.farmview import FarmView

RENDER_SEGMENT = "tasks.render_segment"
RENDER_AUDIO = "tasks.render_audio"
STITCH = "tasks.stitch"
IMAGE_SEQUENCES = frozenset({"tif", "dpx", "exr", "cin", "png", "jpg", "j2c"})
EXTENSIONS = {"mov": "mov", "mp4": "mp4", "mxf_op1a": "mxf", "mxf": "mxf", "tif": "tif"}

# Keys the farm sets itself on every render; a spec may not override them.
FARM_RENDER_KEYS = frozenset(
    {"SelectAllFrames", "MarkIn", "MarkOut", "TargetDir", "CustomName", "ExportVideo", "ExportAudio"}
)
# Every other key of Resolve's SetRenderSettings (fusionscript-stubs RenderSettings).
RENDER_SETTING_KEYS = frozenset({
    "UniqueFilenameStyle", "FormatWidth", "FormatHeight", "FrameRate", "PixelAspectRatio", "VideoQuality",
    "AudioCodec", "AudioBitDepth", "AudioSampleRate", "ColorSpaceTag", "GammaTag", "ExportAlpha",
    "EncodingProfile", "MultiPassEncode", "AlphaMode", "NetworkOptimization", "ClipStartFrame",
    "TimelineStartTimecode", "ReplaceExistingFilesInPlace", "ExportSubtitle", "SubtitleFormat",
})  # fmt: skip
# Codecs whose every frame is a keyframe: segments join frame-exactly by stream copy.
INTRA_CODECS = frozenset(
    {
        "ProRes422HQ",
        "ProRes422",
        "ProRes4444",
        "ProRes4444XQ",
        "ProResLT",
        "ProResProxy",
        "DNxHRHQ",
        "DNxHRHQX",
        "DNxHRSQ",
        "DNxHRLB",
        "DNxHR444",
        "DNxHD",
    }
)


# Long-GOP codecs and the formats in which segments that each open on an IDR frame, encoded with the same
# settings, join by stream copy frame-exactly (a stitch that finds them incompatible still encodes again).
COPY_JOINS = frozenset({("mov", "H264"), ("mp4", "H264"), ("mov", "H265"), ("mp4", "H265")})


class RenderSpec(ProjectRef):
    """A render of one timeline (or a range of it), split across hosts or not.

    Defaults when only project and timeline are given: QuickTime ProRes 422 HQ, the whole
    timeline, split `auto`, audio on, output in the first storage root named
    `<project>_<timeline>`.
    """

    timeline: Name
    format: str | None = Field(None, min_length=1, max_length=64, description="format key, e.g. mov, mxf_op1a, mp4")
    codec: str | None = Field(None, min_length=1, max_length=64, description="codec key, e.g. ProRes422HQ")
    preset: Name | None = None
    settings: dict[str, str | int | float | bool] = Field(default_factory=dict)
    frames: FrameRange | None = None
    output_dir: str | None = Field(None, min_length=1, max_length=4096, description="inside a storage root")
    output_name: str | None = Field(None, min_length=1, max_length=200, description="file name, no extension")
    split: Literal["auto", "none"] | Annotated[int, Field(ge=1, le=999)] = "auto"
    audio: bool = True
    priority: int = Field(5, ge=0, le=9, description="0 is the most urgent")
    node: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    tags: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]] = Field(default_factory=list, max_length=16)
    max_attempts: int | None = Field(None, ge=1, le=20)
    overwrite: bool = Field(False, description="replace a file the output name names already (else refused)")

    @field_validator("settings")
    @classmethod
    def _settings(cls, settings: dict[str, Any]) -> dict[str, Any]:
        for key in settings:
            if key in FARM_RENDER_KEYS:
                raise ValueError(f"{key} is set by the farm; use frames, output_dir, output_name or audio")
            if key not in RENDER_SETTING_KEYS:
                raise ValueError(f"{key!r} is not a Resolve render setting")
        return settings

    @field_validator("output_name")
    @classmethod
    def _name(cls, name: str | None) -> str | None:
        if name is not None and (
            name in (".", "..") or name.startswith("..") or any(c in name for c in "/\\:") or not name.isprintable()
        ):
            raise ValueError("must be a plain file name, not a path (no '/', '\\', ':', '..' or control characters)")
        return name

    # Field validators, not a model validator: an error then names the field it is about (`preset`,
    # `split`), which a model-level error cannot. Each sees the fields declared before it.
    @field_validator("preset")
    @classmethod
    def _preset_alone(cls, preset: str | None, info: ValidationInfo) -> str | None:
        if preset and (info.data.get("format") or info.data.get("codec")):
            raise ValueError("give either a preset or format/codec, not both")
        return preset

    @field_validator("split")
    @classmethod
    def _split_needs_codec(cls, split: str | int, info: ValidationInfo) -> str | int:
        if info.data.get("preset") and isinstance(split, int) and split > 1:
            raise ValueError("a preset render cannot be split: name its format and codec to split it")
        return split

    @property
    def format_key(self) -> str | None:
        return None if self.preset else (self.format or "mov")

    @property
    def codec_key(self) -> str | None:
        return None if self.preset else (self.codec or imageseq.DEFAULT_CODECS.get(str(self.format_key), "ProRes422HQ"))

    @property
    def intra(self) -> bool:
        """Every frame stands alone: all-intra codecs, and image sequences (a file per frame)."""
        return self.codec_key in INTRA_CODECS or imageseq.is_sequence(self.format_key)

    @property
    def joins_by_copy(self) -> bool:
        """Segments of this render join by stream copy: an all-intra codec, or a long-GOP one in `COPY_JOINS`."""
        return self.intra or (self.format_key, self.codec_key) in COPY_JOINS


class FrameSpan(BaseModel):
    """The frames a job renders: start..end, both included."""

    start: int
    end: int
    count: int


class RenderPlan(BaseModel):
    """How one render job is carried out (kept on its record, typed)."""

    frames: FrameSpan
    segments: int
    single_pass: bool  # one piece renders video (and audio) in one go: nothing to join
    # as planned: a "copy" re-encodes if the pieces do not fit; "check": an image sequence, nothing to join
    stitch: Literal["copy", "reencode", "move", "check"]
    work_dir: str  # segments and audio, under the first storage root; one folder per generation
    output: str  # the final file, without its extension (an image sequence: its frame pattern, `..._%08d.tif`)
    eligible_nodes: list[str]
    known_nodes: list[str]
    fps: float | str | None = None
    audio: bool = True
    pulled: bool = False  # free nodes take ranges as they come (`segments` is then how many could at once)
    speed_key: str = ""  # what this render's speed is remembered by (codec and picture size)
    cost_key: str = ""  # what its costs along the timeline are remembered by (`orchestrator.pull.costs`)
    sequence: Sequence | None = None  # an image sequence: its folder and Resolve's names of its frames
    content: str = ""  # the fingerprint of what was last seen on its timeline ("" never seen: `Catalog.content`)
    overwrite: bool = False  # the spec's: replace a file of the output's name (else a file there is never replaced)


def segment_count(frames: int, nodes: int, spec: RenderSpec, min_frames: int, per_node: int) -> int:
    if spec.split == "none":
        return 1
    if spec.split == "auto":
        if not spec.joins_by_copy:
            return 1  # presets, and long-GOP codecs whose join would re-encode, render unsplit unless asked
        wanted = max(1, nodes) * per_node
    else:
        wanted = int(spec.split)
    return max(1, min(wanted, frames // min_frames))


def cut(start: int, end: int, count: int) -> list[tuple[int, int]]:
    """`count` contiguous ranges covering start..end, lengths differing by at most one."""
    frames = end - start + 1
    base, extra = divmod(frames, count)
    ranges, first = [], start
    for i in range(count):
        length = base + (1 if i < extra else 0)
        ranges.append((first, first + length - 1))
        first += length
    return ranges


def pulled(spec: RenderSpec, frames: int, nodes: int, min_frames: int) -> bool:
    """Split `auto` of a render that joins by stream copy on two or more nodes, with frames for two pieces."""
    return spec.split == "auto" and spec.joins_by_copy and nodes >= 2 and frames >= 2 * min_frames


def open_pieces(spec: RenderSpec, start: int, end: int, count: int, work_dir: Path, output: Path) -> list[TaskRecord]:
    """A pulled render's first pieces: the audio pass, `count` open segments, and the stitch waiting for all."""
    ext = extension(spec)
    where = Placement(pool="render", node=spec.node, tags=tuple(sorted(spec.tags)))
    made: list[TaskRecord] = []
    if spec.audio:
        audio = str(work_dir / ("audio.mp4" if ext == "mp4" else "audio.mov"))
        made.append(TaskRecord(name="audio", kind="audio", task=RENDER_AUDIO, placement=where, start=start, end=end,
                               output=audio))  # fmt: skip
    for i in range(1, count + 1):
        made.append(TaskRecord(name=f"segment {i}", kind="segment", task=RENDER_SEGMENT, placement=where,
                               params={"open": True}))  # fmt: skip
    made.append(TaskRecord(
        name="stitch", kind="stitch", task=STITCH, placement=Placement(pool="post"), output=str(output),
        after=[p.name for p in made], job_state="stitching", final=True,
    ))  # fmt: skip
    return made


def taken(spec: RenderSpec, output_dir: Path, output_name: str, seq: Sequence | None) -> None:
    """Refuse a render whose output name names a file already (`OutputExists`): the file of its format's
    extension (any extension for a preset, whose format Resolve decides), or any frame of a sequence's name in
    its folder."""
    if seq is not None:
        found = sorted(Path(seq.folder).glob(f"{glob.escape(seq.name)}_*.{seq.extension}"))
        what = f"{len(found)} frame(s) of sequence {seq.name} in {seq.folder}" if found else ""
    else:
        found = [p for p in sorted(output_dir.glob(glob.escape(output_name) + ".*"))
                 if p.stem == output_name and (spec.preset or p.suffix == "." + extension(spec))]  # fmt: skip
        what = str(found[0]) if found else ""
    if found:
        free = next_version(found[0]).stem if seq is None else next_version(Path(seq.folder)).name
        raise OutputExists(what, free)


def extension(spec: RenderSpec) -> str:
    return EXTENSIONS.get(spec.format_key or "mov", "mov")


def pieces(spec: RenderSpec, start: int, end: int, count: int, work_dir: Path, output: Path) -> list[TaskRecord]:
    """The audio pass (when split with audio), the segments, and the stitch that waits for them all."""
    ext = extension(spec)
    single = count == 1
    width = max(4, len(str(count)))  # file names sort correctly at any count
    where = Placement(pool="render", node=spec.node, tags=tuple(sorted(spec.tags)))
    made: list[TaskRecord] = []
    if spec.audio and not single:
        audio = str(work_dir / ("audio.mp4" if ext == "mp4" else "audio.mov"))
        made.append(TaskRecord(name="audio", kind="audio", task=RENDER_AUDIO, placement=where, start=start, end=end,
                               output=audio))  # fmt: skip
    shown = len(str(count))
    for i, (a, b) in enumerate(cut(start, end, count), 1):
        made.append(TaskRecord(
            name="render" if single else f"segment {i:0{shown}d}/{count}", kind="render" if single else "segment",
            task=RENDER_SEGMENT, placement=where, frames_total=b - a + 1, start=a, end=b,
            output=str(work_dir / f"seg_{i:0{width}d}.{ext}"),
        ))  # fmt: skip
    made.append(TaskRecord(
        name="stitch", kind="stitch", task=STITCH, placement=Placement(pool="post"), output=str(output),
        after=[p.name for p in made], job_state="stitching", final=True,
    ))  # fmt: skip
    return made


Splits = Literal["auto", "none"] | Annotated[int, Field(ge=1, le=999)]


class RenderArguments(BaseModel):
    """What `render_timeline` and `resolve-farm render` take: a render spec, flat, described for agents."""

    project: Project
    timeline: str = Field(description="timeline name in the project, e.g. 'Master_v3'")
    format: Literal["mov", "mxf_op1a", "mp4", "tif", "dpx", "exr"] | None = Field(
        None, description="container, or an image sequence (tif, dpx, exr: a file per frame, no audio); default mov"
    )
    codec: str | None = Field(
        None,
        description="codec key, e.g. 'ProRes422HQ' (default), 'DNxHRHQ', 'H264'; "
        "for sequences 'RGB8' (tif), 'RGB10' (dpx), 'RGBHalf' (exr)",
    )
    preset: str | None = Field(None, description="a Resolve render preset instead of format/codec, e.g. 'H.264 Master'")
    start_frame: int | None = Field(
        None, ge=0, description="first timeline frame (e.g. 86400 = 01:00:00:00 at 24 fps); default: timeline start"
    )
    end_frame: int | None = Field(None, ge=0, description="last timeline frame, included; default: timeline end")
    output_dir: str | None = Field(
        None, description="folder inside the farm's storage roots, relative to the first, e.g. 'deliveries/2026'"
    )
    output_name: str | None = Field(None, description="file name without extension; default '<project>_<timeline>'")
    split: Splits = Field("auto", description="'auto' (across live nodes), 'none' (one node), or a number of segments")
    audio: bool = Field(True, description="render audio too (an image sequence has none)")
    priority: Priority = 5
    node: OnNode = None
    tags: WithTags = None
    render_settings: dict[str, str | int | float | bool] | None = Field(
        None, description="extra Resolve render settings, e.g. {'VideoQuality': 'Best'}"
    )
    max_attempts: int | None = Field(None, ge=1, le=20, description="attempts per segment before the job fails")
    overwrite: bool = Field(
        False,
        description="replace the file the output name names if one exists; without it a taken name is asked "
        "about (clients that can elicit: overwrite, the next free name, or cancel) or refused",
    )
    database: DatabaseName = None
    drp: str | None = Field(None, description="a .drp on shared storage to import the project from")

    def to_spec(self) -> dict[str, Any]:
        """The render spec: frames from start and end, the settings, the database by name; unset ones left out."""
        if (self.start_frame is None) != (self.end_frame is None):
            raise SubmitRefused(
                "end_frame" if self.end_frame is None else "start_frame",
                "start_frame and end_frame go together (or leave both out for the whole timeline)",
            )
        spec = self.model_dump(exclude_none=True, exclude={"start_frame", "end_frame", "render_settings", "database"})
        if self.start_frame is not None:
            spec["frames"] = {"start": self.start_frame, "end": self.end_frame}
        if self.render_settings:
            spec["settings"] = self.render_settings
        if self.database:
            spec["database"] = {"name": self.database}
        return spec


class RenderKind(JobKind[RenderSpec, RenderPlan]):
    """Renders, split by frame range across hosts and stitched back into one file."""

    name = "render"
    spec_model = RenderSpec
    plan_model = RenderPlan
    state_model = FramePool
    state_aliases = ("frame_pool",)  # the field's name in records written before `schedule`
    rules = PulledRender()
    task_modules = ("tasks.render", "tasks.stitch", "tasks.imageseq")
    face = Face(
        command="render", tool="render_timeline", title="Render a timeline on the farm",
        description=(
            "Render a timeline on the farm, split across machines; answers at once with the job id and plan.\n\n"
            'Example: render_timeline(project="Ad_2026", timeline="Master_v3", codec="ProRes422HQ")\n'
            "Then follow it with wait_for_job(job_id). Frame numbers are timeline frames (Resolve's\n"
            "MarkIn/MarkOut), both included."
        ),
        arguments=RenderArguments, positional=("project", "timeline"),
        options={"output_name": "--name", "start_frame": "--start", "end_frame": "--end", "tags": "--tag",
                 "render_settings": "--setting"},
    )  # fmt: skip

    def compile(self, farm: FarmView, spec: RenderSpec, job_id: str) -> Compiled[RenderPlan]:
        names = checks.known_nodes(farm, spec.node, spec.tags)
        checks.database(farm, spec, "")
        if spec.drp:
            checks.confined(farm, spec.drp, "drp")
        info = checks.timeline(farm, spec, spec.timeline, names)
        if info is None and spec.frames is None:
            raise SubmitRefused("frames", "a project imported from a .drp needs an explicit frame range")
        start, end = (spec.frames.start, spec.frames.end) if spec.frames else (info["start_frame"], info["end_frame"])  # type: ignore[index]
        if info is not None and not (info["start_frame"] <= start and end <= info["end_frame"]):
            raise SubmitRefused(
                "frames",
                f"{start}..{end} is outside timeline {spec.timeline!r} ({info['start_frame']}..{info['end_frame']})",
            )
        self._check_format(farm, spec, names)
        output_dir = checks.confined(farm, spec.output_dir, "output_dir")
        output_name = checks.file_name(
            spec.output_name or f"{spec.project.split('/')[-1]}_{spec.timeline}", "output_name"
        )
        seq = imageseq.sequence(spec, output_dir / output_name, start, end)
        if not spec.overwrite:  # (after the confinement check: the answer tells nothing outside the roots)
            taken(spec, output_dir, output_name, seq)
        if seq is not None:
            spec = spec.model_copy(update={"audio": False})  # a sequence has no audio: `audio` is ignored
        live = [n.name for n in farm.nodes.eligible(spec.node, spec.tags)]
        settings = farm.settings
        frames = end - start + 1
        work_dir = settings.storage_roots[0] / ".farm" / job_id
        key = speed_key(
            imageseq.speed_codec(spec), *((info["width"], info["height"]) if info and "width" in info else (None, None))
        )
        pool = None
        seen = farm.catalog.content(spec.database.name if spec.database else None, spec.project, spec.timeline)
        if pulled(spec, frames, len(live), settings.min_segment_frames):
            count = min(len(live), frames // settings.min_segment_frames)
            made = open_pieces(spec, start, end, count, work_dir, output_dir / output_name)
            known = farm.speeds.speeds(live, key)  # (the audio pass's own speeds are under key + AUDIO_KEY)
            if spec.audio and known:  # the audio pass costs the slowest node least: it renders fewer frames meanwhile
                made[0].params["prefer"] = dispatch.audio_node(farm, known)
            known_start = farm.speeds.start_seconds(key)
            pool = FramePool(
                start=start, end=end, next=start, made=count, open_pieces=count, target_seconds=settings.piece_seconds,
                longest_seconds=settings.render_time_limit / 2,
                start_seconds=known_start or settings.render_start_seconds, start_measured=bool(known_start),
                min_frames=settings.min_segment_frames, speed_key=key, work_dir=str(work_dir),
                costs=farm.costs.steps(cost_key(spec.project, spec.timeline, key), start, end, seen),
                extension=extension(spec),
            )  # fmt: skip
        else:
            count = segment_count(frames, len(live or names[:1]), spec, settings.min_segment_frames,
                                  settings.segments_per_node)  # fmt: skip
            made = pieces(spec, start, end, count, work_dir, output_dir / output_name)
        if seq is not None:
            made = imageseq.adapt(made, seq)
        single = count == 1 and pool is None
        plan = RenderPlan(
            frames=FrameSpan(start=start, end=end, count=frames), segments=count, single_pass=single,
            stitch="check" if seq else "move" if single else ("copy" if spec.joins_by_copy else "reencode"),
            work_dir=str(work_dir), output=seq.pattern if seq else str(output_dir / output_name), eligible_nodes=live,
            known_nodes=names, fps=info["fps"] if info else None, audio=spec.audio, pulled=pool is not None,
            speed_key=key, cost_key=cost_key(spec.project, spec.timeline, key), sequence=seq,
            content=(seen or {}).get("fingerprint", ""), overwrite=spec.overwrite,
        )  # fmt: skip
        return Compiled(plan, made, priority=spec.priority, max_attempts=spec.max_attempts, schedule=pool)

    @staticmethod
    def _check_format(farm: FarmView, spec: RenderSpec, names: list[str]) -> None:
        if spec.format_key in IMAGE_SEQUENCES:
            imageseq.check(farm, spec, names)  # what the farm renders, and every node it may use can write
            return
        if not spec.format_key:
            return
        offered = farm.catalog.codecs(names)
        if offered and spec.format_key not in offered:
            raise SubmitRefused("format", f"unknown format {spec.format_key!r} (known: {', '.join(sorted(offered))})")
        if offered and spec.codec_key not in offered[spec.format_key]:
            codecs = ", ".join(sorted(offered[spec.format_key]))
            raise SubmitRefused("codec", f"unknown codec {spec.codec_key!r} for {spec.format_key} (known: {codecs})")

    def leftovers(self, record: JobRecord[Any, Any], generation: int) -> Leftovers:
        """Each generation's folder of segments and audio, and the partial outputs of its stitches."""
        plan: RenderPlan = record.plan
        if plan.sequence is not None:
            return imageseq.leftovers(record, plan.sequence, generation)
        output = Path(plan.output)
        return Leftovers(
            remove=[
                *(str(Path(plan.work_dir) / f"g{g}") for g in range(1, generation + 1)),
                *(str(output.parent / f".{output.name}.{record.id}.g{g}.partial*") for g in range(1, generation + 1)),
            ],
            if_empty=[plan.work_dir],
        )

    def claim_context(self, farm: FarmView, record: JobRecord[Any, Any], name: str, node: str,
                      candidates: list[str]) -> Any:  # fmt: skip
        return dispatch.context(farm, record, name, node, farm.settings.node_tags, candidates)

    def estimate(self, farm: FarmView, record: JobRecord[Any, Any]) -> float | None:
        """How long the render should take on the nodes it may use, from their remembered speeds; None without any.

        A pulled render is spread over all of them (its frames' work over their summed speed); a render
        cut up front takes as long as its longest piece on a typical node. The start cost of one
        render is added either way.
        """
        plan: RenderPlan = record.plan
        if not plan.speed_key:
            return None
        nodes = plan.eligible_nodes or plan.known_nodes
        speeds = farm.speeds.speeds(nodes, plan.speed_key)
        if not speeds:
            return None
        start = farm.speeds.start_seconds(plan.speed_key) or 0.0
        typical = sorted(speeds.values())[len(speeds) // 2]
        pool: FramePool | None = record.schedule
        if pool is not None:
            summed = sum(speeds.get(n, typical) for n in nodes) or typical
            return round(start + pool.work(pool.start, pool.end) / summed, 2)
        longest = max((t.frames_total for t in record.tasks if t.kind in ("segment", "render")), default=0)
        return round(start + longest / typical, 2)

    def summary(self, record: JobRecord[Any, Any]) -> str:
        plan: RenderPlan = record.plan
        nodes = ", ".join(plan.eligible_nodes) or "none up yet"
        if plan.pulled:
            return f"frames {plan.frames.start}..{plan.frames.end}, taken by free nodes as they come ({nodes})"
        return f"frames {plan.frames.start}..{plan.frames.end} in {plan.segments} segment(s) on {nodes}"

    def shown(self, record: JobRecord[Any, Any], piece: TaskRecord) -> str:
        spec: RenderSpec = record.spec
        if piece.kind == "stitch":
            return f"job {record.id} | {spec.project}/{spec.timeline} stitch -> {record.plan.output}"
        if piece.kind == "check":
            return f"job {record.id} | {spec.project}/{spec.timeline} check frames -> {record.plan.output}"
        if piece.params.get("open"):
            return f"job {record.id} | {spec.project}/{spec.timeline} {piece.name} | the next frames left"
        return f"job {record.id} | {spec.project}/{spec.timeline} {piece.name} | frames {piece.start}..{piece.end}"


def stitched(record: JobRecord[Any, Any]) -> dict[str, str] | None:
    """How a render's stitch joined its pieces, once it has: `method` (move, copy or reencode), for a
    re-encode the `reason`, and `renamed` when the output's name was taken meanwhile (what the CLI and the
    MCP answers show)."""
    stitch = next((t for t in record.tasks if t.kind == "stitch"), None)
    if stitch is None or "stitch" not in stitch.details:
        return None
    shown = {"method": str(stitch.details["stitch"])}
    if stitch.details.get("reason"):
        shown["reason"] = str(stitch.details["reason"])
    if stitch.details.get("renamed"):
        shown["renamed"] = str(stitch.details["renamed"])
    return shown


RenderJob = kinds.register(RenderKind()).record
