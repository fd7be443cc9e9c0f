"""How one simulated Resolve behaves: where its library lives, how fast it renders, its quirks.

The simulator is reached three ways (in-process, through the compiled stand-in for
`fusionscript`, and through `DaVinciResolveScript` inside the fallback helper); the last two
cannot be handed an object, so the configuration comes from environment variables:

- `RESOLVE_SIM_LIBRARY`: the shared library file (default: a file in the user's data folder).
- `RESOLVE_SIM_FPS`: render speed in frames per second (default 240).
- `RESOLVE_SIM_AUDIO_FPS`: speed of audio-only renders (default 50 times the video speed:
  like Resolve, the simulator renders sound alone far faster than pictures).
- `RESOLVE_SIM_RENDER_START`: seconds each render job spends starting before its first frame
  (default 0): Resolve takes seconds to load the timeline and fill its caches.
- `RESOLVE_SIM_SPEED_PROFILE`: how render speed varies along the timeline, as
  `position:factor` pairs, e.g. `0.5:4` (from half-way through the timeline on, each frame
  takes 4 times as long, as a graded or effects-heavy section does). Default: even speed.
- `RESOLVE_SIM_CLIP_COSTS`, `RESOLVE_SIM_POSITION_NOISE`, `RESOLVE_SIM_JITTER`, `RESOLVE_SIM_SEED`,
  `RESOLVE_SIM_THROTTLE`: what frames cost beyond the node's speed: by the clip shown and its
  grade, by position unseen, by the node's own unevenness and slow-downs (`bridge.sim.cost`).
- `RESOLVE_SIM_SCALE`: picture scale against the timeline resolution (default 2/15: 1080p
  renders at 256x144).
- `RESOLVE_SIM_PRODUCT`: "DaVinci Resolve Studio" (default) or "DaVinci Resolve".
- `RESOLVE_SIM_VERSION`: the version `GetVersion` reports, "major.minor.patch.build"
  (default 19.1.4.11). From 21.1 on, Python scripting is a Studio feature: a free edition
  ("DaVinci Resolve") of 21.1 or later answers `GetProductName`/`GetVersion*` and refuses
  everything else (`GetProjectManager()` is None), as the API documents Studio functions
  called from the free version.
- `RESOLVE_SIM_HOST`: the name of the simulated machine (default: this machine's name). Every
  connection to one host reaches one application: a host that stops answering stops answering
  them all.
- `RESOLVE_SIM_DATABASE`: the project database Resolve starts in (default "Local Database"):
  Resolve reopens the database it used last, which on a farm host may be a shared one.
- `RESOLVE_SIM_QUIRKS`: comma-separated quirks:
  `imageseq-stall` (image-sequence jobs stop at 100% without Complete),
  `hang:Method` or `hang:Class.Method` (that call never returns),
  `hang-hard:Method` (it never returns and no signal reaches Python meanwhile, as a call stuck
  inside Resolve's C library: a soft time limit cannot end it, only killing the process can),
  `crash-at:F` (the process exits when a render passes fraction F, e.g. 0.5),
  `fail-render:MESSAGE` (renders fail with JobStatus Failed and this Error),
  `none:Method` or `none:Class.Method` (that call returns None, as Resolve's API does when
  it fails in-process without saying why),
  `freeze-on:Method` (that call freezes the whole application, as a Resolve stuck behind a
  modal dialog or in a driver: it and every later call from any process connected to this
  host block, deaf to signals, until the host is thawed; see `bridge.sim.host`).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

from bridge.sim.cost import CostModel

DEFAULT_FPS = 240.0
DEFAULT_VERSION = (19, 1, 4, 11, "")
SCRIPTING_STUDIO_ONLY_SINCE = (21, 1)  # Resolve 21.1 made Python scripting a Studio feature
DEFAULT_SCALE = 2 / 15
AUDIO_SPEEDUP = 50
STUDIO = "DaVinci Resolve Studio"
FREE = "DaVinci Resolve"


def parse_speed_profile(text: str) -> tuple[tuple[float, float], ...]:
    """ "0.5:4,0.8:1" as ((0.5, 4.0), (0.8, 1.0)): from each position (0..1 of the timeline) on, frames cost x."""
    profile: list[tuple[float, float]] = []
    for raw in filter(None, (part.strip() for part in text.split(","))):
        position, sep, factor = raw.partition(":")
        try:
            pair = (float(position), float(factor))
        except ValueError:
            pair = (-1.0, 0.0)
        if not sep or not 0.0 <= pair[0] < 1.0 or pair[1] <= 0:
            raise ValueError(
                f"RESOLVE_SIM_SPEED_PROFILE: expected position:factor, 0 <= position < 1, factor > 0; got {raw!r}"
            )
        profile.append(pair)
    return tuple(sorted(profile))


def default_library() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "resolve-farm" / "sim" / "library.json"


def parse_version(text: str) -> tuple[int, int, int, int, str]:
    """ "21.1.0.5" (missing parts are 0) as `GetVersion` returns it."""
    try:
        parts = [int(p) for p in text.strip().split(".")]
    except ValueError:
        parts = []
    if not 1 <= len(parts) <= 4 or any(p < 0 for p in parts):
        raise ValueError(f"RESOLVE_SIM_VERSION must look like 21.1.0.5, got {text!r}")
    major, minor, patch, build = [*parts, 0, 0, 0][:4]
    return (major, minor, patch, build, "")


@dataclass(frozen=True)
class Quirks:
    """Switchable misbehaviours of real Resolve hosts, for fault tests."""

    imageseq_stall: bool = False
    hang: frozenset[str] = frozenset()
    crash_at: float | None = None
    fail_render: str | None = None
    none: frozenset[str] = frozenset()
    hang_hard: frozenset[str] = frozenset()
    freeze_on: frozenset[str] = frozenset()
    proxy_by_name: bool = False

    @classmethod
    def parse(cls, text: str) -> Quirks:
        stall, hang, crash, fail, none, hard, freeze = False, set(), None, None, set(), set(), set()
        by_name = False
        for raw in filter(None, (part.strip() for part in text.split(","))):
            name, _, arg = raw.partition(":")
            if name == "imageseq-stall":
                stall = True
            elif name == "hang" and arg:
                hang.add(arg)
            elif name == "crash-at" and arg:
                crash = float(arg)
                if not 0.0 <= crash <= 1.0:
                    raise ValueError(f"RESOLVE_SIM_QUIRKS: crash-at must be 0..1, got {arg}")
            elif name == "fail-render":
                fail = arg or "Render failed"
            elif name == "none" and arg:
                none.add(arg)
            elif name == "hang-hard" and arg:
                hard.add(arg)
            elif name == "freeze-on" and arg:
                freeze.add(arg)
            elif name == "proxy-by-name":
                by_name = True
            else:
                raise ValueError(f"RESOLVE_SIM_QUIRKS: unknown quirk {raw!r}")
        return cls(stall, frozenset(hang), crash, fail, frozenset(none), frozenset(hard), frozenset(freeze), by_name)


@dataclass(frozen=True)
class SimConfig:
    """Everything that makes one simulated Resolve differ from another."""

    library: Path = field(default_factory=default_library)
    fps: float = DEFAULT_FPS
    audio_fps: float = DEFAULT_FPS * AUDIO_SPEEDUP
    scale: float = DEFAULT_SCALE
    product: str = STUDIO
    version: tuple[int, int, int, int, str] = DEFAULT_VERSION
    quirks: Quirks = Quirks()
    host: str = field(default_factory=socket.gethostname)
    render_start: float = 0.0
    speed_profile: tuple[tuple[float, float], ...] = ()
    database: str | None = None  # the database it starts in; None: the local disk database
    cost: CostModel = field(default_factory=CostModel)  # what frames cost beyond its speed (`bridge.sim.cost`)

    @classmethod
    def from_env(cls, environ: os._Environ[str] | dict[str, str] | None = None) -> SimConfig:
        env = os.environ if environ is None else environ
        fps = float(env.get("RESOLVE_SIM_FPS", DEFAULT_FPS))
        scale = float(env.get("RESOLVE_SIM_SCALE", DEFAULT_SCALE))
        audio_fps = float(env.get("RESOLVE_SIM_AUDIO_FPS", fps * AUDIO_SPEEDUP))
        if fps <= 0 or audio_fps <= 0:
            raise ValueError(f"RESOLVE_SIM_FPS and RESOLVE_SIM_AUDIO_FPS must be > 0, got {fps}, {audio_fps}")
        if not 0 < scale <= 1:
            raise ValueError(f"RESOLVE_SIM_SCALE must be in (0, 1], got {scale}")
        render_start = float(env.get("RESOLVE_SIM_RENDER_START", 0))
        if render_start < 0:
            raise ValueError(f"RESOLVE_SIM_RENDER_START must be >= 0, got {render_start}")
        product = env.get("RESOLVE_SIM_PRODUCT", STUDIO)
        if product not in (STUDIO, FREE):
            raise ValueError(f"RESOLVE_SIM_PRODUCT must be {STUDIO!r} or {FREE!r}, got {product!r}")
        library = env.get("RESOLVE_SIM_LIBRARY")
        version = parse_version(env["RESOLVE_SIM_VERSION"]) if env.get("RESOLVE_SIM_VERSION") else DEFAULT_VERSION
        return cls(
            library=Path(library) if library else default_library(),
            fps=fps,
            audio_fps=audio_fps,
            scale=scale,
            product=product,
            version=version,
            quirks=Quirks.parse(env.get("RESOLVE_SIM_QUIRKS", "")),
            host=env.get("RESOLVE_SIM_HOST") or socket.gethostname(),
            render_start=render_start,
            speed_profile=parse_speed_profile(env.get("RESOLVE_SIM_SPEED_PROFILE", "")),
            database=env.get("RESOLVE_SIM_DATABASE") or None,
            cost=CostModel.from_env(env),
        )

    @property
    def scripting_refused(self) -> bool:
        """A free edition from 21.1 on: scripting is a Studio feature there."""
        return self.product != STUDIO and self.version[:2] >= SCRIPTING_STUDIO_ONLY_SINCE

    def to_env(self) -> dict[str, str]:
        """The environment variables that recreate this configuration in another process."""
        quirks = [f"hang:{h}" for h in sorted(self.quirks.hang)]
        if self.quirks.imageseq_stall:
            quirks.append("imageseq-stall")
        if self.quirks.crash_at is not None:
            quirks.append(f"crash-at:{self.quirks.crash_at}")
        if self.quirks.fail_render:
            quirks.append(f"fail-render:{self.quirks.fail_render}")
        quirks += [f"none:{n}" for n in sorted(self.quirks.none)]
        quirks += [f"hang-hard:{n}" for n in sorted(self.quirks.hang_hard)]
        quirks += [f"freeze-on:{n}" for n in sorted(self.quirks.freeze_on)]
        if self.quirks.proxy_by_name:
            quirks.append("proxy-by-name")
        return {
            "RESOLVE_SIM_LIBRARY": str(self.library),
            "RESOLVE_SIM_FPS": repr(self.fps),
            "RESOLVE_SIM_AUDIO_FPS": repr(self.audio_fps),
            "RESOLVE_SIM_SCALE": repr(self.scale),
            "RESOLVE_SIM_PRODUCT": self.product,
            "RESOLVE_SIM_VERSION": ".".join(str(part) for part in self.version[:4]),
            "RESOLVE_SIM_QUIRKS": ",".join(quirks),
            "RESOLVE_SIM_HOST": self.host,
            "RESOLVE_SIM_RENDER_START": repr(self.render_start),
            "RESOLVE_SIM_SPEED_PROFILE": ",".join(f"{p!r}:{f!r}" for p, f in self.speed_profile),
            **self.cost.to_env(),
        }

    def frame_cost(self, position: float) -> float:
        """How many times a plain frame's time a frame at `position` (0..1 of the timeline) takes."""
        factor = 1.0
        for start, value in self.speed_profile:
            if position >= start:
                factor = value
        return factor

    def picture_size(self, width: int, height: int) -> tuple[int, int]:
        """The size the simulator renders a width x height timeline at.

        Note: DNxHR refuses pictures narrower than 256 or lower than 120 lines, and 4:2:0
        codecs need even sizes, so the scaled size is rounded to 16 and kept above that floor.
        """
        w = max(256, round(width * self.scale / 16) * 16)
        h = max(144, round(height * self.scale / 2) * 2)
        return w, h
