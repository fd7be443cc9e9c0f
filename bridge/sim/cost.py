"""What one frame costs the simulator to render, beyond its node's speed: the content, the grade, what the
timeline does there that no one can see, and the node's own unevenness.

Real renders are uneven in ways a farm must learn rather than be told. A frame costs:

- its **content**: the clip on the top video track there, wherever it sits, in any timeline
  (`RESOLVE_SIM_CLIP_COSTS`, `name:cost` pairs, e.g. `A003_C003.mov:4`; a clip not named costs 1,
  a gap 1), times what the scripting API shows of its grade (each LUT set on the item +50 %, a
  CDL +25 %: `TimelineItem.GetLUT`, `GetCDL`);
- an **unseen** part by position (`RESOLVE_SIM_POSITION_NOISE`, a fraction: each stretch of
  `STRETCH` timeline frames costs 1 +- that much more, the same on every node and every render of
  that timeline), as transitions and effects a content key cannot tell;
- the node's **jitter** (`RESOLVE_SIM_JITTER`, a fraction: each stretch of `STRETCH` frames a
  render goes through costs 1 +- that much more, drawn anew for every render, seeded by
  `RESOLVE_SIM_SEED` and the host name, so a run can be repeated);
- the node's **throttling** (`RESOLVE_SIM_THROTTLE`, a file: while it exists and holds a number
  F, every frame costs F times more, as a host that heats up or starts another application).

Note: all of it is the simulator's own; nothing of it reaches the farm except through the time
frames take, as on a real host.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STRETCH = 48  # frames of one stretch for position noise and jitter (2 s at 24 frames per second)
LUT_COST = 0.5  # each LUT on an item adds this much of a plain frame
CDL_COST = 0.25  # a CDL on an item adds this much
THROTTLE_LOOK = 0.25  # seconds between looks at the throttle file


def parse_clip_costs(text: str) -> dict[str, float]:
    """ "A003_C003.mov:4,A005_C005.mov:2" as {name: cost}; refused when a cost is not a positive number."""
    costs: dict[str, float] = {}
    for raw in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = raw.rpartition(":")
        try:
            cost = float(value)
        except ValueError:
            cost = 0.0
        if not sep or not name or cost <= 0:
            raise ValueError(f"RESOLVE_SIM_CLIP_COSTS: expected clip-name:cost with cost > 0; got {raw!r}")
        costs[name] = cost
    return costs


def _fraction(name: str, text: str) -> float:
    try:
        value = float(text or 0)
    except ValueError:
        value = -1.0
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name}: expected a fraction 0 <= f < 1; got {text!r}")
    return value


def unit(*key: Any) -> float:
    """A number in [-1, 1) drawn from `key` alone: the same key gives the same number in every process."""
    digest = hashlib.blake2b(repr(key).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**63 - 1.0


@dataclass(frozen=True)
class CostModel:
    """The settings of what frames cost beyond the node's speed (see the module's text)."""

    clip_costs: tuple[tuple[str, float], ...] = ()  # (clip name, cost): a tuple, so the config stays hashable
    position_noise: float = 0.0
    jitter: float = 0.0
    seed: int = 0
    throttle: Path | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> CostModel:
        throttle = env.get("RESOLVE_SIM_THROTTLE")
        try:
            seed = int(env.get("RESOLVE_SIM_SEED") or 0)
        except ValueError:
            raise ValueError(f"RESOLVE_SIM_SEED: expected an integer; got {env.get('RESOLVE_SIM_SEED')!r}") from None
        return cls(
            clip_costs=tuple(parse_clip_costs(env.get("RESOLVE_SIM_CLIP_COSTS", "")).items()),
            position_noise=_fraction("RESOLVE_SIM_POSITION_NOISE", env.get("RESOLVE_SIM_POSITION_NOISE", "")),
            jitter=_fraction("RESOLVE_SIM_JITTER", env.get("RESOLVE_SIM_JITTER", "")),
            seed=seed,
            throttle=Path(throttle) if throttle else None,
        )

    def to_env(self) -> dict[str, str]:
        return {
            "RESOLVE_SIM_CLIP_COSTS": ",".join(f"{name}:{cost!r}" for name, cost in self.clip_costs),
            "RESOLVE_SIM_POSITION_NOISE": repr(self.position_noise),
            "RESOLVE_SIM_JITTER": repr(self.jitter),
            "RESOLVE_SIM_SEED": str(self.seed),
            "RESOLVE_SIM_THROTTLE": str(self.throttle or ""),
        }

    def item_cost(self, item: Mapping[str, Any], clip: Mapping[str, Any] | None) -> float:
        """What a frame of a timeline item costs for its content: its clip's cost, times its grade's."""
        base = dict(self.clip_costs).get(str(clip["name"]), 1.0) if clip else 1.0
        grade = 1.0 + LUT_COST * len(item.get("luts") or {}) + (CDL_COST if item.get("cdl") else 0.0)
        return base * grade


class RenderCost:
    """What each frame of one render job costs, as a multiple of a plain frame at the node's speed.

    Note: built when the job is queued (`AddRenderJob`), from the timeline as it was then, as
    Resolve renders the timeline it captured; `render` tells renders apart for the jitter.
    """

    def __init__(self, model: CostModel, timeline: Mapping[str, Any], costs: Mapping[str, float],
                 host: str, render: str) -> None:  # fmt: skip
        self.model = model
        self.timeline = str(timeline["name"])
        self.start = int(timeline["start_frame"])
        self.spans = [(int(i["start"]), int(i["end"]), costs.get(str(i["id"]), 1.0)) for i in top_items(timeline)]
        self.host = host
        self.render = render
        self._throttle = (0.0, 1.0)  # (when the file was last looked at, the factor it held)

    @classmethod
    def of(cls, model: CostModel, timeline: Mapping[str, Any], clips: Mapping[str, Any], host: str,
           render: str) -> RenderCost:  # fmt: skip
        costs = {str(item["id"]): model.item_cost(item, clips.get(str(item.get("clip"))))
                 for item in top_items(timeline)}  # fmt: skip
        return cls(model, timeline, costs, host, render)

    def content(self, frame: int) -> float:
        """The content's cost of timeline frame `frame`: the topmost enabled video item there (a gap: 1)."""
        for start, end, cost in self.spans:
            if start <= frame < end:
                return cost
        return 1.0

    def frame(self, frame: int, index: int) -> float:
        """The cost of timeline frame `frame`, the `index`-th frame of this render."""
        cost = self.content(frame)
        if self.model.position_noise:
            cost *= 1.0 + self.model.position_noise * unit("position", self.timeline, (frame - self.start) // STRETCH)
        if self.model.jitter:
            cost *= 1.0 + self.model.jitter * unit("jitter", self.model.seed, self.host, self.render, index // STRETCH)
        return cost * self.throttled()

    def throttled(self) -> float:
        """The factor the throttle file holds now (1 without one), looked at every `THROTTLE_LOOK` seconds."""
        path = self.model.throttle
        if path is None:
            return 1.0
        now = time.monotonic()
        seen, factor = self._throttle
        if now - seen >= THROTTLE_LOOK:
            try:
                factor = max(float(path.read_text().strip() or 1.0), 1e-3)
            except (OSError, ValueError):  # no file (or one being written): not throttled
                factor = 1.0
            self._throttle = (now, factor)
        return factor


def top_items(timeline: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Items of the video tracks, topmost track first, enabled ones only."""
    items: list[dict[str, Any]] = []
    for track in reversed(timeline["tracks"]["video"]):
        items.extend(i for i in track["items"] if i.get("enabled", True))
    return items
