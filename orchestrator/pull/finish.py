"""When a farm is done with an amount of work: each node takes one more piece when it is free, paying a start.

Both the sizing of pulled pieces (`orchestrator.pull.sizing`) and a job's ETA (`JobRecord.eta_seconds`)
ask it: the first to cut the last round so that all finish together, the second to count the
starts that the frames no piece has taken yet will cost.
"""

from __future__ import annotations

import math
from collections.abc import Mapping


def finish_time(
    work: float, speeds: Mapping[str, float], free_at: Mapping[str, float], start: float, least: float = 0.0
) -> float:
    """Seconds from now until `work` is rendered, each node starting one piece when it is free.

    Solves sum over nodes of speed x (T - free_at - start), for those that start before T, = work.
    A node busy now that would render for less than `least` seconds by then is left out.

    Note: leaving out a node that joins late for a sliver (the node rendering the audio pass,
    say) costs the others almost nothing, while counting it in would hand it whatever frames
    the others' speed estimates left over, with a start cost of its own: it would finish last.
    """
    ready = sorted((free_at[n] + start, speeds[n], least if free_at[n] > 0 else 0.0) for n in speeds)
    rate = backlog = 0.0  # summed speed of the nodes started so far; work they owe for their late start
    done_at = math.inf  # no nodes
    for begins, speed, shortest in ready:
        joined = (work + backlog + speed * begins) / (rate + speed)
        if rate and joined <= begins + shortest:  # it would start too late to render (long enough) before the end
            break
        rate, backlog, done_at = rate + speed, backlog + speed * begins, joined
    return done_at
