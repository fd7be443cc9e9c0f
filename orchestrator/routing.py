"""Queue names: where each piece goes.

| queue | consumed by |
|---|---|
| `render`, `edit` | every Resolve host |
| `post` | workers that stitch (any host that sees the storage) |
| `transcode` | workers that transcode (proxies; PyAV, no Resolve needed) |
| `node.<name>` | one host |
| `tag.<tag>` | hosts with a capability (`studio`, `gpu`, `os-windows`) |

Every name carries the release's version key (`v1.render`): a worker of an incompatible
release listens on other queues, so it never takes a job it would misread.
"""

from __future__ import annotations

from orchestrator.models import RESOLVE_POOLS, Placement
from orchestrator.settings import VERSION_KEY

POOLS = (*RESOLVE_POOLS, "post", "transcode")


def queue(name: str, version_key: str = VERSION_KEY) -> str:
    return f"v{version_key}.{name}"


def node_queue(node: str) -> str:
    return queue(f"node.{node}")


def tag_queue(tag: str) -> str:
    return queue(f"tag.{tag}")


RENDER = queue("render")
EDIT = queue("edit")
POST = queue("post")
TRANSCODE = queue("transcode")


def queue_for(placement: Placement, node: str | None = None) -> str:
    """The queue of a piece placed so; on `node`'s own queue when the engine picked a node.

    Note: with several tags the piece goes to the first tag's queue; the worker that takes it
    checks it has every tag and hands it to one that has when it does not. Tag queues are
    Resolve hosts' only: a transcode piece goes to the transcode queue, or to a node's own.
    """
    if placement.pool not in POOLS:
        raise ValueError(f"unknown pool {placement.pool!r} (known: {', '.join(POOLS)})")
    if placement.pool == "post":
        return POST
    if placement.pool == "transcode":
        return node_queue(node or placement.node) if (node or placement.node) else TRANSCODE  # type: ignore[arg-type]
    if node or placement.node:
        return node_queue(node or placement.node)  # type: ignore[arg-type]
    if placement.tags:
        return tag_queue(sorted(placement.tags)[0])
    return queue(placement.pool)


def worker_queues(
    node: str, tags: list[str], resolve: bool = True, post: bool = False, transcode: bool = False
) -> list[str]:
    """Every queue a worker of this node listens on, in the order it looks at them.

    Note: the broker reads the queues in this order (`queue_order_strategy: priority`): what
    was sent to this node alone (the audio pass meant for it, a piece moved or copied to it)
    comes before the pools, or a busy pool would starve it until the job's end.
    """
    queues: list[str] = []
    if resolve:
        queues += [node_queue(node), *(tag_queue(t) for t in tags), *(queue(p) for p in RESOLVE_POOLS)]
    if transcode:
        queues += ([] if resolve else [node_queue(node)]) + [TRANSCODE]
    if post:
        queues.append(POST)
    return queues
