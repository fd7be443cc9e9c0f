"""How much work each stretch of a timeline is to render, remembered per timeline across jobs.

Render speed varies along a timeline: a graded or effects-heavy section renders several
times slower than a plain one, so frames are not all alike. Here each frame has a cost, and
a node renders cost at its speed: the speed book's figures are work per second, that is
frames per second on frames of cost 1. A finished piece tells, from its progress over time,
how long each stretch of `BIN` frames it rendered took on its node (`StretchClock`); the
book keeps each node's figure of each stretch (blended with its last), and fits costs and
speeds to all of them at once (`orchestrator.pull.fit`) after every piece.

A job carries the costs of its range as steps (`Steps`: from each frame on, this cost), at
most `MAX_STEPS` of them, so that its record stays small however long the timeline.

Note: a cost within `NOISE` of the timeline's median is kept as the median: measurements on
a busy host vary that much, and an even timeline sized by its noise is sized worse than one
taken as even. (Not as 1: the fit's unit drifts a little from fit to fit, and light
stretches read as 1 beside heavy ones read as measured would bend their ratio.)
A stretch never rendered costs what its looks do (a heavy clip near the end of a timeline
whose start was rendered light is still heavy), else what the nearest one rendered did
(sections of a timeline run long). A timeline never rendered, or edited since (its content's
fingerprint is not the one its costs were learnt on), is costed from its content
(`orchestrator.pull.looks`): the looks it shows, as other timelines taught them; with no
content known, 1 a frame throughout.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping
from typing import Any

import redis

from orchestrator.pull.fit import Fit, Observation, fit
from orchestrator.pull.looks import LookBook, stretch_looks, visible

COSTS = "rf:costs"  # one hash per timeline and speed key: stretch number -> cost
OBSERVED = "rf:observed"  # one hash per timeline and speed key: "<node>|<stretch>" -> "seconds per frame,seconds"
CONTENT = "content"  # the field of both hashes naming the content's fingerprint their figures are of
BIN = 48  # frames per stretch (2 s at 24 frames per second)
BLEND = 0.5  # weight of the newest figure
MAX_STEPS = 64  # steps a job's record carries at most
SAME = 0.05  # neighbouring steps closer than this (relative) are one
KEEP_SECONDS = 90 * 24 * 3600  # a timeline not rendered for this long is forgotten
NOISE = 1.4  # a cost within this factor of 1 is read as 1: measurements on a busy host vary that much

Steps = tuple[tuple[int, float], ...]  # ((first frame, cost of each frame from there on), ...), sorted


def cost_key(project: str, timeline: str, speed_key: str) -> str:
    """What costs are remembered by: the timeline, and what it is rendered as (codec and picture size)."""
    return f"{project}/{timeline}|{speed_key}"


def _spans(steps: Steps, start: int, end: int) -> Iterable[tuple[int, int, float]]:
    """(first, last, cost) of the runs of equal cost that make up start..end (inclusive)."""
    cost, at = 1.0, start
    for frame, value in steps:
        if frame > end:
            break
        if frame > at:
            yield at, frame - 1, cost
            at = frame
        cost = value
    if at <= end:
        yield at, end, cost


def work(steps: Steps, start: int, end: int) -> float:
    """The cost of rendering frames start..end (inclusive): their count when nothing is known."""
    return sum((last - first + 1) * cost for first, last, cost in _spans(steps, start, end))


def frames_for(steps: Steps, start: int, end: int, amount: float) -> int:
    """How many frames from `start` (at most up to `end`) make `amount` of work: at least one."""
    taken = 0
    for first, last, cost in _spans(steps, start, end):
        span = last - first + 1
        if amount <= span * cost:
            return max(1, taken + math.ceil(amount / cost - 1e-9))
        taken, amount = taken + span, amount - span * cost
    return max(1, taken)


class StretchClock:
    """Where the time of one render went, stretch by stretch, from its progress: seconds and frames per stretch.

    Note: only time after the first frame counts (the start cost is not the frames'), and an
    interval between two counts is spread evenly over the frames it saw finish.
    """

    def __init__(self, first_frame: int) -> None:
        self.first_frame = first_frame
        self.times: dict[int, list[float]] = {}  # stretch -> [frames, seconds]
        self._last: tuple[float, int] | None = None

    def count(self, at: float, done: int) -> None:
        """`done` frames were finished at time `at` (seconds, any clock)."""
        if self._last is not None and done > self._last[1] and at > self._last[0]:
            seconds = (at - self._last[0]) / (done - self._last[1])
            for frame in range(self.first_frame + self._last[1], self.first_frame + done):
                entry = self.times.setdefault(frame // BIN, [0.0, 0.0])
                entry[0] += 1
                entry[1] += seconds
        if self._last is None or done > self._last[1]:
            self._last = (at, done)


class CostBook:
    """Each timeline's cost per stretch, in Redis (one hash per timeline and speed key), and the looks they were
    shared out to (`LookBook`).

    Note: figures learnt before content was published carry no fingerprint and are used as they
    are; once a fingerprint is known, figures of another fingerprint are an edited timeline's
    and are dropped (what was observed) or passed over (the costs).
    """

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self.looks = LookBook(client)

    def observe(self, key: str, node: str, times: dict[int, list[float]], fingerprint: str = "") -> None:
        """Blend in what one render on `node` measured of each stretch it went through (`StretchClock.times`) of
        the timeline whose content has `fingerprint` ("": not known)."""
        name = f"{OBSERVED}:{key}"
        fields = [f"{node}|{stretch}" for stretch, (frames, _) in times.items() if frames]
        if not fields:
            return
        seen = self.redis.hget(name, CONTENT)
        if fingerprint and seen and str(seen) != fingerprint:  # the timeline was edited: what was seen is of another
            self.redis.delete(name, f"{COSTS}:{key}")
        old = dict(zip(fields, self.redis.hmget(name, fields), strict=True))
        blended = {}
        for stretch, (frames, seconds) in times.items():
            if not frames:
                continue
            field = f"{node}|{stretch}"
            weight = BLEND * min(1.0, frames / BIN)  # a stretch seen in part counts for less
            per_frame = seconds / frames
            if old[field]:
                before, over = (float(x) for x in str(old[field]).split(","))
                per_frame, seconds = weight * per_frame + (1 - weight) * before, weight * seconds + (1 - weight) * over
            blended[field] = f"{per_frame:.6g},{seconds:.6g}"
        if fingerprint:
            blended[CONTENT] = fingerprint
        pipe = self.redis.pipeline()
        pipe.hset(name, mapping=blended)
        pipe.expire(name, KEEP_SECONDS)
        pipe.execute()

    def settle(self, key: str, anchors: Mapping[str, float], content: Mapping[str, Any] | None = None) -> Fit:
        """Fit the costs and speeds of everything observed of `key` (`orchestrator.pull.fit`), in the unit of
        `anchors` (firm speeds by node), the stretches of one look tied where `content` (what is on the timeline,
        `Catalog.content`) is what was observed; keep the costs, and share them out to those looks; return the
        fit (its speeds are for the speed book)."""
        observations, fingerprint = [], ""
        for field, raw in self.redis.hgetall(f"{OBSERVED}:{key}").items():
            if str(field) == CONTENT:
                fingerprint = str(raw)
                continue
            node, _, stretch = str(field).rpartition("|")
            per_frame, seconds = (float(x) for x in str(raw).split(","))
            observations.append(Observation(node, int(stretch), per_frame, seconds))
        spans = visible(content["tracks"]) if content is not None and content.get("fingerprint") == fingerprint else []
        fitted = fit(observations, anchors, stretch_looks(spans, BIN))
        if fitted.costs:
            name = f"{COSTS}:{key}"
            pipe = self.redis.pipeline()  # one transaction: a claim never reads half a timeline
            pipe.delete(name)
            pipe.hset(name, mapping={str(s): round(cost, 4) for s, cost in _evened(fitted.costs).items()})
            if fingerprint:
                pipe.hset(name, CONTENT, fingerprint)
            pipe.expire(name, KEEP_SECONDS)
            pipe.execute()
            if spans:
                self.looks.learn(key.rpartition("|")[2], key, spans, fitted.costs, BIN)
        return fitted

    def known(self, key: str, stretches: Iterable[int]) -> dict[int, float]:
        """The costs known of `stretches` (those never rendered are left out)."""
        wanted = sorted(stretches)
        raws = self.redis.hmget(f"{COSTS}:{key}", [str(s) for s in wanted]) if wanted else []
        return {stretch: float(raw) for stretch, raw in zip(wanted, raws, strict=True) if raw}

    def steps(self, key: str, start: int, end: int, content: Mapping[str, Any] | None = None) -> Steps:
        """The costs of frames start..end as at most `MAX_STEPS` steps: as rendered before, unless `content` (what
        is on the timeline now) says it was edited since; the stretches not rendered (all of them, when edited)
        from its looks; () when nothing is known (all cost 1)."""
        first, last = start // BIN, end // BIN
        raws = self.redis.hmget(f"{COSTS}:{key}", [CONTENT, *(str(s) for s in range(first, last + 1))])
        fingerprint, raws = raws[0], raws[1:]
        edited = content is not None and fingerprint is not None and str(fingerprint) != content.get("fingerprint")
        looked = None
        if content is not None and (edited or not all(raws)):
            found = self.looks.stretch_costs(key.rpartition("|")[2], visible(content["tracks"]), first, last, BIN)
            looked = list(_evened(dict(enumerate(found))).values()) if found else None
        if any(raws) and not edited:
            # Stretches not rendered yet cost what their looks do, else what the nearest rendered one did.
            rendered = [float(raw) if raw else None for raw in raws]
            if looked is not None:
                rendered = [
                    cost if cost is not None else by_look for cost, by_look in zip(rendered, looked, strict=True)
                ]
            return _as_steps(_filled(rendered), first, start)
        return _as_steps(looked, first, start) if looked else ()


def _as_steps(costs: list[float], first: int, start: int) -> Steps:
    """The costs of stretches `first`... (the first from frame `start`) as at most `MAX_STEPS` steps."""
    group = math.ceil(len(costs) / MAX_STEPS)  # stretches per step
    steps: list[tuple[int, float]] = []
    for at in range(0, len(costs), group):
        frames = [max(start, (first + i) * BIN) for i in range(at, min(at + group, len(costs)))]
        cost = sum(costs[at : at + group]) / len(frames)
        if not steps or abs(cost - steps[-1][1]) > SAME * steps[-1][1]:
            steps.append((frames[0], round(cost, 4)))
    return tuple(steps)


def _filled(costs: list[float | None]) -> list[float]:
    """Each unknown cost (None) as the nearest known one's (the earlier one on a tie); at least one is known."""
    known = [i for i, cost in enumerate(costs) if cost is not None]
    return [cost if cost is not None else costs[min(known, key=lambda k: abs(k - i))] or 1.0
            for i, cost in enumerate(costs)]  # fmt: skip


def _evened(costs: dict[int, float]) -> dict[int, float]:
    """`costs` with those within `NOISE` of the median cost at the median: only what is clearly heavier or
    lighter than most of the timeline counts."""
    typical = statistics.median(costs.values())
    return {stretch: typical if typical / NOISE <= cost <= typical * NOISE else cost for stretch, cost in costs.items()}
