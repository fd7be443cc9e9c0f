"""What frames cost by what is on them: costs learnt per look (a clip and its visible grade), carried to every
timeline that shows the same looks.

A stretch of a timeline costs what its frames show: the clip on the topmost video track
there and its grade. Position costs (`orchestrator.pull.costs`) know one timeline only; here,
after each fit of a timeline's stretches, the costs are shared out among the **looks** seen
in those stretches (least squares: a stretch costs the frame-weighted mean of its looks), and
each look's cost is kept per speed key, per timeline it was learnt on. A new timeline, or a
new version of one (reordered, trimmed, regraded in part), is then costed from its content
(`Catalog.content`) before a frame of it is rendered.

A look is the clip's media id with what the scripting API shows of its grade (node count,
each node's LUT); what the API does not show (a CDL, effects) is part of that look's learnt
cost, the residual its content key cannot explain. A look never seen is costed as the other
looks of the same media were (`clip:` entries: the clip's prior); a clip never seen as the
median of the looks known on that timeline.

Note: gaps are a look of their own (black renders fast). A look's figures from one timeline
replace that timeline's earlier ones (the fit behind them already blends every render of
it); the figures of different timelines are averaged by the frames each was learnt over.
"""

from __future__ import annotations

import bisect
import itertools
import json
import statistics
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import redis

LOOKS = "rf:looks"  # one hash per speed key: "look:<look>" / "clip:<media>" -> {cost key: [cost, frames, at]}
GAP = "gap"  # the look of frames no item covers
KEPT = 8  # timelines each look keeps figures of (the latest)
KEEP_SECONDS = 90 * 24 * 3600  # looks not learnt for this long are forgotten
RIDGE = 0.1  # pull of each look toward the timeline's median cost: a look glimpsed in a few frames says little
SPREAD = 20.0  # no look is learnt more than this factor off the timeline's median
MOSTLY = 0.75  # a stretch showing one look in this share of its frames shows that look


@dataclass(frozen=True)
class Span:
    """Frames start..end (end exclusive) of a timeline showing one look of one clip's media."""

    start: int
    end: int
    look: str
    media: str


def look_of(item: Mapping[str, Any]) -> str:
    """The look of a timeline item (`bridge.ops.timeline_content`): its media and what the API shows of its grade."""
    luts = ",".join(str(lut) for lut in item.get("luts") or [])
    return f"{item.get('media', '')}|{int(item.get('nodes') or 0)}|{luts}"


def visible(tracks: Sequence[Sequence[Mapping[str, Any]]]) -> list[Span]:
    """What shows at each frame from the first item to the last: the topmost track's item there, else a gap."""
    ordered = [sorted(track, key=lambda i: int(i["start"])) for track in tracks]
    starts = [[int(i["start"]) for i in track] for track in ordered]
    cuts = sorted({int(i[edge]) for track in ordered for i in track for edge in ("start", "end")})
    spans: list[Span] = []
    for start, end in itertools.pairwise(cuts):
        span = Span(start, end, GAP, GAP)
        for track, firsts in zip(reversed(ordered), reversed(starts), strict=True):
            at = bisect.bisect_right(firsts, start) - 1
            if at >= 0 and int(track[at]["end"]) > start:
                item = track[at]
                span = Span(start, end, look_of(item), str(item.get("media", "")))
                break
        if spans and spans[-1].look == span.look and spans[-1].end == start:
            spans[-1] = Span(spans[-1].start, end, span.look, span.media)
        else:
            spans.append(span)
    return spans


def _overlaps(spans: Sequence[Span], start: int, end: int) -> Iterable[tuple[Span, int]]:
    """(span, frames of it within start..end, end exclusive)."""
    at = bisect.bisect_right(spans, start, key=lambda s: s.start) - 1
    for span in spans[max(at, 0) :]:
        if span.start >= end:
            break
        frames = min(end, span.end) - max(start, span.start)
        if frames > 0:
            yield span, frames


def stretch_looks(spans: Sequence[Span], stretch: int) -> dict[int, str]:
    """The look each stretch of `stretch` frames (stretch n: frames n*stretch...) shows in `MOSTLY` of its frames
    at least (stretches showing a cut or a short item are left out)."""
    shown: dict[int, str] = {}
    for span in spans:
        for number in range(span.start // stretch, (span.end - 1) // stretch + 1):
            frames = min(span.end, (number + 1) * stretch) - max(span.start, number * stretch)
            if frames >= MOSTLY * stretch:
                shown[number] = span.look
    return shown


def share_out(spans: Sequence[Span], costs: Mapping[int, float], stretch: int) -> dict[str, tuple[float, int]]:
    """Each look's cost (and the frames it was learnt over) that best explains `costs`, the cost of each stretch
    of `stretch` frames (stretch n: frames n*stretch...): a stretch costs the frame-weighted mean of its looks."""
    looks = sorted({s.look for s in spans})
    column = {look: i for i, look in enumerate(looks)}
    rows, targets, seen = [], [], dict.fromkeys(looks, 0)
    for number, cost in sorted(costs.items()):
        row = np.zeros(len(looks))
        for span, frames in _overlaps(spans, number * stretch, (number + 1) * stretch):
            row[column[span.look]] += frames
            seen[span.look] += frames
        covered = row.sum()
        if covered:
            weight = np.sqrt(covered / stretch)  # a stretch cut by the timeline's end counts less
            rows.append(weight * row / covered)
            targets.append(weight * cost)
    learnt = [look for look in looks if seen[look]]
    if not rows or not learnt:
        return {}
    typical = statistics.median(costs.values())
    matrix = np.vstack([np.array(rows), RIDGE * np.eye(len(looks))])
    target = np.concatenate([np.array(targets), np.full(len(looks), RIDGE * typical)])
    solved = np.linalg.lstsq(matrix, target, rcond=None)[0]
    return {look: (float(np.clip(solved[column[look]], typical / SPREAD, typical * SPREAD)), seen[look])
            for look in learnt}  # fmt: skip


class LookBook:
    """The cost of each look per speed key, in Redis (one hash per speed key), learnt from timelines' fits."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def learn(self, speed_key: str, timeline: str, spans: Sequence[Span], costs: Mapping[int, float],
              stretch: int) -> None:  # fmt: skip
        """Keep what the costs of `timeline`'s stretches (a fit's, by stretch number) tell of its looks and clips."""
        looks = share_out(spans, costs, stretch)
        if not looks:
            return
        media = {span.look: span.media for span in spans}
        clips: dict[str, list[float]] = {}  # media -> [cost x frames, frames]
        for look, (cost, frames) in looks.items():
            entry = clips.setdefault(f"clip:{media[look]}", [0.0, 0.0])
            entry[0] += cost * frames
            entry[1] += frames
        figures = {f"look:{look}": (cost, frames) for look, (cost, frames) in looks.items()}
        figures |= {clip: (total / frames, int(frames)) for clip, (total, frames) in clips.items()}
        name, now = f"{LOOKS}:{speed_key}", round(time.time(), 1)

        def change(pipe: redis.client.Pipeline) -> None:
            fields = list(figures)
            old = dict(zip(fields, pipe.hmget(name, fields), strict=True))
            new = {}
            for field, (cost, frames) in figures.items():
                entry = json.loads(old[field]) if old[field] else {}
                entry[timeline] = [round(cost, 4), frames, now]
                latest = sorted(entry.items(), key=lambda kv: kv[1][2], reverse=True)[:KEPT]
                new[field] = json.dumps(dict(latest), sort_keys=True)
            pipe.multi()
            pipe.hset(name, mapping=new)
            pipe.expire(name, KEEP_SECONDS)

        self.redis.transaction(change, name)

    def costs(self, speed_key: str, spans: Sequence[Span]) -> dict[str, float]:
        """Each look of `spans` costed (its own figures, else its clip's); {} when no look or clip is known."""
        looks = sorted({s.look for s in spans})
        media = {span.look: span.media for span in spans}
        fields = [f"look:{look}" for look in looks] + [f"clip:{media[look]}" for look in looks]
        known = {f: _mean(json.loads(raw)) for f, raw in zip(fields, self.redis.hmget(f"{LOOKS}:{speed_key}", fields),
                                                            strict=True) if raw}  # fmt: skip
        found = {}
        for look in looks:
            cost = known.get(f"look:{look}", known.get(f"clip:{media[look]}"))
            if cost is not None:
                found[look] = cost
        return found

    def stretch_costs(self, speed_key: str, spans: Sequence[Span], first: int, last: int,
                      stretch: int) -> list[float] | None:  # fmt: skip
        """The cost of each stretch `first..last` (of `stretch` frames), from its looks; None when none is known.
        A look nobody has learnt costs the frame-weighted median of the known ones here."""
        costed = self.costs(speed_key, spans)
        if not costed:
            return None
        weights = {look: 0 for look in costed}
        for span in spans:
            if span.look in weights:
                weights[span.look] += span.end - span.start
        prior = _weighted_median([(costed[look], weights[look]) for look in costed])
        found = []
        for number in range(first, last + 1):
            total = frames = 0.0
            for span, count in _overlaps(spans, number * stretch, (number + 1) * stretch):
                total += count * costed.get(span.look, prior)
                frames += count
            found.append(total / frames if frames else prior)
        return found


def _mean(entry: Mapping[str, Sequence[float]]) -> float:
    """A look's cost over the timelines it was learnt on, weighted by the frames of each."""
    frames = sum(f for _, f, _ in entry.values())
    return sum(c * f for c, f, _ in entry.values()) / frames if frames else 1.0


def _weighted_median(pairs: list[tuple[float, float]]) -> float:
    pairs.sort()
    half, run = sum(w for _, w in pairs) / 2, 0.0
    for value, weight in pairs:
        run += weight
        if run >= half:
            return value
    return pairs[-1][0]
