"""Queue names: where each kind of task goes.

| queue | consumed by |
|---|---|
| `render`, `edit` | every Resolve host |
| `post` | workers that stitch (any host that sees the storage) |
| `node.<name>` | one host |
| `tag.<tag>` | hosts with a capability (`studio`, `gpu`, `os-windows`) |

Every name carries the release's version key (`v1.render`): a worker of an incompatible
release listens on other queues, so it never takes a job it would misread.
"""

from __future__ import annotations

from orchestrator.settings import VERSION_KEY


def queue(name: str, version_key: str = VERSION_KEY) -> str:
    return f"v{version_key}.{name}"


def node_queue(node: str) -> str:
    return queue(f"node.{node}")


def tag_queue(tag: str) -> str:
    return queue(f"tag.{tag}")


RENDER = queue("render")
EDIT = queue("edit")
POST = queue("post")


def resolve_queue(kind: str, node: str | None = None, tags: list[str] | tuple[str, ...] = ()) -> str:
    """The queue for a Resolve task (`render` or `edit`) under the job's constraints.

    Note: with several tags the task goes to the first tag's queue; the task checks the
    host has every tag and moves itself to one that has when it does not.
    """
    if node:
        return node_queue(node)
    if tags:
        return tag_queue(sorted(tags)[0])
    return RENDER if kind == "render" else EDIT


def worker_queues(node: str, tags: list[str], resolve: bool = True, post: bool = False) -> list[str]:
    """Every queue a worker of this node listens on."""
    queues: list[str] = []
    if resolve:
        queues += [RENDER, EDIT, node_queue(node), *(tag_queue(t) for t in tags)]
    if post:
        queues.append(POST)
    return queues
