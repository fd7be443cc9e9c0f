"""The `proxies` kind: proxy media for a project's source clips, transcoded across the farm, then linked.

A job compiles into one piece, the **scan**: on a Resolve host it reads the project's media
pool (the whole pool, or a bin and the bins in it; clip names matching patterns), looks at
each source file and the proxy the farm made of it before, and adds the pieces that are
needed (`plan_clips`, below):

- one **transcode** per source file with no proxy or a stale one, largest first, on any node
  that transcodes (Resolve hosts, and workers started with `--transcode`, Resolve or not);
  each writes its proxy under the job's output folder, mirroring the source's folders
  (`/media/day1/A001.mov` -> `<output>/media/day1/A001.mov`), verifies it against the source
  (frame count and duration), and records what it was made from beside it (`<proxy>.source.json`);
- one **link**, after every transcode has settled (done or failed: `after_settled`), under the
  project's write lease: it links the proxies that were made, and current proxies that are not
  linked, into the project (`MediaPoolItem.LinkProxyMedia`), saves and closes it.

A proxy is current when its record names the same preset, source size, modification time and
sampled digest as the source has now, and the proxy file is the size recorded: such a clip is
left alone, so a re-run with nothing to do ends with the scan. A clip linked to a proxy from
outside the output folder (made by Resolve or a camera) is kept unless `replace` is set.
A clip whose source is missing fails on its own, naming the file; the others go on
(`fail_fast = False`) and the job ends failed, saying which.
"""

from __future__ import annotations

import ntpath
import posixpath
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from orchestrator import kinds
from orchestrator.kinds import checks
from orchestrator.kinds.base import Compiled, JobKind, Leftovers, SubmitRefused
from orchestrator.kinds.face import DatabaseName, Face, Priority, Project
from orchestrator.models import JobRecord, Placement, ProjectRef, TaskRecord, project_lease

if TYPE_CHECKING:
    from orchestrator.farmview import FarmView

SCAN = "tasks.scan_proxies"
TRANSCODE = "tasks.transcode_proxy"
LINK = "tasks.link_proxies"
RECORD_SUFFIX = ".source.json"  # beside each proxy: what it was made from


class Preset(BaseModel):
    """How a proxy is encoded: the codec and its options, the container, the picture's scale, the sound."""

    model_config = ConfigDict(frozen=True)

    label: str
    codec: str  # PyAV/FFmpeg encoder
    options: dict[str, str] = Field(default_factory=dict)
    pix_fmt: str
    container: Literal["mov", "mp4"]
    extension: str
    scale: float  # of the source's width and height
    audio_codec: str

    def picture(self, width: int, height: int) -> tuple[int, int]:
        """The proxy's size for a `width` x `height` source: scaled, even (4:2:x codecs need it), at least 16 wide."""
        return max(16, round(width * self.scale / 2) * 2), max(16, round(height * self.scale / 2) * 2)


PRORES_PROXY = {"profile": "0", "vendor": "apl0"}  # prores_ks profile 0: Apple ProRes 422 Proxy
PRESETS: dict[str, Preset] = {
    "prores-proxy-half": Preset(
        label="Apple ProRes 422 Proxy, half resolution", codec="prores_ks", options=PRORES_PROXY,
        pix_fmt="yuv422p10le", container="mov", extension=".mov", scale=0.5, audio_codec="pcm_s16le",
    ),
    "prores-proxy-quarter": Preset(
        label="Apple ProRes 422 Proxy, quarter resolution", codec="prores_ks", options=PRORES_PROXY,
        pix_fmt="yuv422p10le", container="mov", extension=".mov", scale=0.25, audio_codec="pcm_s16le",
    ),
    "h264-half": Preset(
        label="H.264, half resolution", codec="libx264", options={"preset": "veryfast", "crf": "23"},
        pix_fmt="yuv420p", container="mp4", extension=".mp4", scale=0.5, audio_codec="aac",
    ),
}  # fmt: skip
DEFAULT_PRESET = "prores-proxy-half"
ClipPattern = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f]+$")]


class ProxiesSpec(ProjectRef):
    """Proxies for a project's clips: all of them, a bin's (and its bins'), or those whose names match.

    Note: `output` is a folder inside the storage roots (relative ones under the first); proxies
    mirror their sources' folders under it, so every source has one place for its proxy.
    """

    bin: str | None = Field(None, min_length=1, max_length=1024, description="a bin path, e.g. 'Footage/Day 1'")
    clips: list[ClipPattern] = Field(default_factory=list, max_length=1000)  # shell patterns on clip names
    preset: str = Field(DEFAULT_PRESET, max_length=64)
    output: str = Field("proxies", min_length=1, max_length=4096)
    replace: bool = False  # also replace proxies linked from outside the output folder
    priority: int = Field(5, ge=0, le=9)
    max_attempts: int | None = Field(None, ge=1, le=20)


class ProxiesPlan(BaseModel):
    """What the scan will look at, with what preset, into which folder, on which nodes."""

    preset: str
    output: str
    bin: str | None = None
    clips: list[str] = Field(default_factory=list)
    replace: bool = False
    resolve_nodes: list[str]
    transcoders: list[str]


ProxiesJob = JobRecord[ProxiesSpec, ProxiesPlan]


class ClipFacts(BaseModel):
    """One clip of the media pool as the scan found it: what Resolve says, and what the storage holds.

    Note: paths are the farm's (canonical) forms; `record` is the `.source.json` beside the
    proxy this job would write, `proxy_size` that proxy's size now (None: no file), `digest`
    the source's sampled digest, read only when its size and time match the record.
    """

    id: str
    name: str
    bin: str = ""
    source: str
    frames: int = 0
    width: int = 0
    height: int = 0
    linked: str = ""  # the proxy Resolve links now ("" none)
    linked_exists: bool = False
    source_exists: bool = True
    size: int = 0
    mtime_ns: int = 0
    record: dict[str, Any] | None = None
    proxy_size: int | None = None
    digest: str | None = None


class ClipPlan(BaseModel):
    """What becomes of one clip: `make` (transcode, then link), `link` (its proxy is current), `current`, `keep`."""

    clip: str
    action: Literal["make", "link", "current", "keep"]
    reason: str
    proxy: str


def proxy_path(output: str, source: str, preset: Preset) -> str:
    """Where the proxy of `source` goes: its folders mirrored under `output`, its name with the preset's extension.

    Note: a Windows source (`D:\\Media\\A001.mxf`) mirrors as `D/Media/A001.mov`; the result is
    the farm's (POSIX) form, like every canonical path.
    """
    windows = bool(ntpath.splitdrive(source)[0]) or "\\" in source
    if windows:
        drive, rest = ntpath.splitdrive(source)
        parts = [drive.rstrip(":").strip("\\/")] + [p for p in rest.replace("\\", "/").split("/") if p]
    else:
        parts = [p for p in source.split("/") if p]
    parts = [p for p in parts if p not in ("", ".")]
    if not parts or ".." in parts:
        raise ValueError(f"source path {source!r} cannot be mirrored")
    stem = posixpath.splitext(parts[-1])[0] or parts[-1]
    return posixpath.join(output, *parts[:-1], stem + preset.extension)


def source_verdict(facts: ClipFacts, preset_name: str) -> str | None:
    """Why the farm's proxy of this source is not current; None when it is."""
    record = facts.record
    if record is None or facts.proxy_size is None:
        return "no proxy made yet" if record is None else "its proxy file is gone"
    if record.get("source") != facts.source:
        return f"its proxy path holds the proxy of {record.get('source')!r}"
    if record.get("preset") != preset_name:
        return f"its proxy was made with preset {record.get('preset')!r}"
    if record.get("size") != facts.size:
        return "the source changed (size)"
    if record.get("mtime_ns") != facts.mtime_ns:
        return "the source changed (modified since)"
    if facts.digest is None or record.get("digest") != facts.digest:
        return "the source changed (content)"
    if record.get("proxy_size") != facts.proxy_size:
        return "its proxy file changed"
    return None


def plan_clips(
    facts: list[ClipFacts], preset_name: str, output: str, replace: bool = False, scanned_on: str = ""
) -> tuple[list[ClipPlan], list[TaskRecord], list[dict[str, str]]]:
    """Decide each clip's fate; the transcode pieces (largest first) and the link-only entries.

    Returns (per-clip plans, transcode pieces, links of current proxies not linked yet). A
    source shared by several clips is transcoded once; two sources whose proxies would share a
    path make the second one's piece fail at once, naming both (nothing is overwritten).
    """
    preset = PRESETS[preset_name]
    plans: list[ClipPlan] = []
    by_source: dict[str, list[ClipFacts]] = {}
    for clip in facts:
        by_source.setdefault(clip.source, []).append(clip)
    made: list[tuple[tuple[int, int, str], TaskRecord]] = []
    links: list[dict[str, str]] = []
    owner_of: dict[str, str] = {}  # proxy path -> the source that has it
    names: set[str] = set()
    prefix = output.rstrip("/") + "/"
    for source, clips in sorted(by_source.items()):
        first = clips[0]
        try:
            proxy = proxy_path(output, source, preset)
        except ValueError as exc:
            proxy, refuse = "", str(exc)
        else:
            refuse = ""
            if owner_of.setdefault(proxy, source) != source:
                refuse = f"its proxy {proxy} would overwrite the proxy of {owner_of[proxy]} (same folder and name)"
        keep = [
            c for c in clips if c.linked and c.linked_exists and c.linked != proxy and not c.linked.startswith(prefix)
        ]
        if not replace:
            for clip in keep:
                plans.append(
                    ClipPlan(clip=clip.name, action="keep", reason=f"linked to {clip.linked}", proxy=clip.linked)
                )
            clips = [c for c in clips if c not in keep]
        if not clips:
            continue
        why = refuse or ("the source is missing" if not first.source_exists else source_verdict(first, preset_name))
        if why is None:
            for clip in clips:
                linked = clip.linked == proxy
                reason = "its proxy is current" + ("" if linked else ", not linked")
                plans.append(
                    ClipPlan(clip=clip.name, action="current" if linked else "link", reason=reason, proxy=proxy)
                )
                if not linked:
                    links.append({"clip_id": clip.id, "clip": clip.name, "proxy": proxy})
            continue
        plans.extend(ClipPlan(clip=c.name, action="make", reason=why, proxy=proxy) for c in clips)
        name = f"transcode {first.name}"
        n = 1
        while name in names:
            n += 1
            name = f"transcode {first.name} ({n})"
        names.add(name)
        params: dict[str, Any] = {
            "source": source, "proxy": proxy, "preset": preset_name, "reason": why, "frames": first.frames,
            "clips": [{"id": c.id, "name": c.name} for c in clips],
            "seen": first.source_exists, "scanned_on": scanned_on,
        }  # fmt: skip
        if refuse:
            params["refuse"] = refuse
        piece = TaskRecord(
            name=name, kind="transcode", task=TRANSCODE, placement=Placement(pool="transcode"), final=True,
            frames_total=max(0, first.frames), output=proxy or None, params=params,
        )  # fmt: skip
        work = max(1, first.frames) * max(1, first.width * first.height)
        made.append(((work, first.size, name), piece))
    made.sort(key=lambda pair: (-pair[0][0], -pair[0][1], pair[0][2]))  # largest first: they finish together
    return plans, [piece for _, piece in made], links


def link_piece(spec: ProxiesSpec, transcodes: list[TaskRecord], links: list[dict[str, str]]) -> TaskRecord:
    """The piece that links what the transcodes made (and current proxies not linked yet), under the project's lease."""
    database = spec.database.name if spec.database else None
    target = ProjectRef(project=spec.project, database=spec.database).model_dump(mode="json")
    return TaskRecord(
        name="link", kind="link", task=LINK, placement=Placement(pool="edit"), after=[t.name for t in transcodes],
        after_settled=True, lease=project_lease(database, spec.project), target=target, params={"links": links},
    )  # fmt: skip


class ProxiesArguments(BaseModel):
    """What `make_proxies` and `resolve-farm proxies` take: a proxies spec, flat, described for agents."""

    project: Project
    bin: str | None = Field(
        None, description="only this bin and the bins in it, e.g. 'Footage/Day 1'; default: every bin"
    )
    clips: list[str] | None = Field(
        None, description="only clips whose names match one of these patterns, e.g. ['A00*']"
    )
    preset: str = Field(
        DEFAULT_PRESET,
        description="'prores-proxy-half' (ProRes 422 Proxy, half size), 'prores-proxy-quarter', 'h264-half'",
    )
    output: str | None = Field(
        None,
        description="folder inside the farm's storage roots for the proxies (mirroring the sources' folders); "
        "default 'proxies'",
    )
    database: DatabaseName = None
    replace: bool = Field(False, description="also replace proxies linked from elsewhere (made by Resolve or a camera)")
    priority: Priority = 5
    max_attempts: int | None = Field(None, ge=1, le=20, description="attempts per clip before that clip fails")

    def to_spec(self) -> dict[str, Any]:
        """The proxies spec, the database by name; unset ones left out."""
        spec = self.model_dump(exclude_none=True, exclude={"database"})
        if self.database:
            spec["database"] = {"name": self.database}
        return spec


class ProxiesKind(JobKind[ProxiesSpec, ProxiesPlan]):
    """Proxy media for a project: a scan that fans out transcodes across the farm, then one link."""

    name = "proxies"
    spec_model = ProxiesSpec
    plan_model = ProxiesPlan
    task_modules = ("tasks.proxies",)
    fail_fast = False  # a clip that cannot be made does not stop the others
    face = Face(
        command="proxies", tool="make_proxies", title="Make proxy media for a project's clips", destructive=True,
        description=(
            "Transcode proxies of a project's source clips across the farm's machines (largest first), verify them\n"
            "against their sources and link them in the project. Clips whose proxy is current are left alone, so a\n"
            "re-run with nothing to do ends in seconds; a clip that cannot be made fails on its own, the others go on."
            "\n\n"
            'Example: make_proxies(project="Demo", bin="Footage", preset="prores-proxy-half")\n'
            "Answers at once with the job id; follow it with wait_for_job(job_id)."
        ),
        arguments=ProxiesArguments, positional=("project",), options={"clips": "--clip"},
    )  # fmt: skip

    def compile(self, farm: FarmView, spec: ProxiesSpec, job_id: str) -> Compiled[ProxiesPlan]:
        if spec.preset not in PRESETS:
            raise SubmitRefused("preset", f"unknown preset {spec.preset!r} (known: {', '.join(PRESETS)})")
        if spec.drp:
            raise SubmitRefused(
                "drp", "proxies are linked into a project of a database: a .drp imported by the farm is its own copy"
            )
        checks.database(farm, spec, "")
        resolve_nodes = checks.known_nodes(farm, None, ())
        transcoders = [n.name for n in farm.nodes.all() if "transcode" in n.roles and not n.version_mismatch]
        if not transcoders:
            raise SubmitRefused(
                "nodes",
                "no node of the farm transcodes: start a worker with --transcode (Resolve workers do by default)",
            )
        database = spec.database.name if spec.database else None
        projects = farm.catalog.projects(resolve_nodes, database)
        if spec.project not in projects:
            known = ", ".join(projects) or "none"
            raise SubmitRefused("project", f"unknown project {spec.project!r} (known: {known})")
        if spec.bin:
            bins = farm.catalog.bins(resolve_nodes, spec.project, database)
            wanted = spec.bin.strip("/")
            if bins is not None and wanted not in bins:
                raise SubmitRefused(
                    "bin", f"no bin {spec.bin!r} in project {spec.project!r} (bins: {', '.join(bins) or 'none'})"
                )
        for i, pattern in enumerate(spec.clips):
            if not pattern.strip():
                raise SubmitRefused(f"clips.{i}", "an empty pattern matches no clip")
        output = str(checks.confined(farm, spec.output, "output"))
        scan = TaskRecord(
            name="scan", kind="scan", task=SCAN, placement=Placement(pool="edit"),
            target=ProjectRef(project=spec.project, database=spec.database).model_dump(mode="json"),
        )  # fmt: skip
        plan = ProxiesPlan(
            preset=spec.preset, output=output, bin=spec.bin, clips=list(spec.clips), replace=spec.replace,
            resolve_nodes=resolve_nodes, transcoders=sorted(transcoders),
        )  # fmt: skip
        return Compiled(plan, [scan], priority=spec.priority, max_attempts=spec.max_attempts)

    def leftovers(self, record: JobRecord[Any, Any], generation: int) -> Leftovers:
        """Partial proxies of this job's transcodes cut off by the cancel (finished proxies are the product: kept)."""
        return Leftovers(
            remove=[partial_pattern(t.output, record.id) for t in record.tasks if t.kind == "transcode" and t.output]
        )

    def summary(self, record: JobRecord[Any, Any]) -> str:
        plan: ProxiesPlan = record.plan
        scan = next((t for t in record.tasks if t.kind == "scan"), None)
        where = f"bin {plan.bin!r}" if plan.bin else "the media pool"
        chosen = f", clips {', '.join(plan.clips)}" if plan.clips else ""
        found = scan.details if scan is not None and scan.state == "done" else None
        if found:
            return (
                f"{found['clips']} clip(s) of {where}{chosen}: {found['make']} to transcode, {found['link']} to link, "
                f"{found['current']} current, {found['keep']} kept ({PRESETS[plan.preset].label})"
            )
        return (
            f"{where}{chosen} of {record.spec.project}: scanned first ({PRESETS[plan.preset].label} into {plan.output})"
        )

    def shown(self, record: JobRecord[Any, Any], piece: TaskRecord) -> str:
        return f"job {record.id} | proxies {record.spec.project} | {piece.name}"


def partial_name(proxy: str, job_id: str, attempt: str) -> str:
    """Where an attempt of `job_id` writes `proxy` before it is verified: `.<name>.<job>-<attempt>.part` beside it."""
    return posixpath.join(posixpath.dirname(proxy), f".{posixpath.basename(proxy)}.{job_id}-{attempt}.part")


def partial_pattern(proxy: str, job_id: str) -> str:
    """Every attempt's partial file of `proxy` in `job_id` (a glob pattern)."""
    return partial_name(proxy, job_id, "*")


kinds.register(ProxiesKind())
