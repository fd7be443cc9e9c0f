"""The pieces of a proxies job: the scan (a Resolve host), the transcodes (any node that transcodes), the link.

| piece | task | where | does |
|---|---|---|---|
| scan | `tasks.scan_proxies` | a Resolve host | reads the pool and the proxies on storage; adds the pieces needed |
| transcode <clip> | `tasks.transcode_proxy` | a node that transcodes (no Resolve) | writes, verifies, records a proxy |
| link | `tasks.link_proxies` | a Resolve host, with the project's lease | links what was made; saves; closes |
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from typing import Any

from celery import Task, shared_task

from orchestrator.kinds.proxies import (
    PRESETS,
    ClipFacts,
    ProxiesPlan,
    ProxiesSpec,
    link_piece,
    partial_name,
    plan_clips,
    proxy_path,
)
from orchestrator.models import ProjectRef
from tasks.base import PermanentFailure, PieceResult, PieceRun, PieceTask, Superseded
from tasks.progress import Reporter
from tasks.proxy_files import file_size, read_record, remove_record, sampled_digest, write_record
from tasks.resolve import ResolvePiece, open_project, reading
from tasks.runtime import runtime
from tasks.transcode import SourceUnreadable, TranscodeStopped, probe, transcode, verify

log = logging.getLogger(__name__)
ACTIONS = ("make", "link", "current", "keep")  # a clip's fate, in the order reports count them


class LinkRefused(Exception):
    """Resolve refused to link some proxies (another host may see the files: the link runs again there)."""


def _picture(resolution: str) -> tuple[int, int]:
    width, _, height = resolution.partition("x")
    try:
        return int(width), int(height)
    except ValueError:
        return 0, 0


def _facts(clip: dict[str, Any], plan: ProxiesPlan) -> ClipFacts:
    """One clip as the scan sees it: Resolve's word, the source's size and time, the farm's proxy of it."""
    source = runtime.from_node(clip["path"])
    width, height = _picture(clip["resolution"])
    linked = runtime.from_node(clip["proxy_path"]) if clip["proxy_path"] else ""
    facts = ClipFacts(
        id=clip["id"], name=clip["name"], bin=clip["bin"], source=source, frames=clip["frames"], width=width,
        height=height, linked=linked, linked_exists=bool(linked) and os.path.isfile(clip["proxy_path"]),
    )  # fmt: skip
    try:
        st = os.stat(clip["path"])
    except OSError:
        facts.source_exists = False
        return facts
    facts.size, facts.mtime_ns = st.st_size, st.st_mtime_ns
    try:
        proxy = runtime.to_node(proxy_path(plan.output, source, PRESETS[plan.preset]))
    except ValueError:
        return facts  # the plan refuses this clip, naming why
    facts.record, facts.proxy_size = read_record(proxy), file_size(proxy)
    record = facts.record or {}
    if record.get("size") == facts.size and record.get("mtime_ns") == facts.mtime_ns:
        facts.digest = sampled_digest(clip["path"])  # only read when nothing cheaper already tells
    return facts


class ScanPiece(ResolvePiece):
    """Reads the project's clips on a Resolve host and adds the transcodes and the link the job needs.

    Note: it only reads, so it takes no lease; it lets go of the project after (`reading`), so
    that in a shared library it does not stay the project's holder (the link's host must open
    it for writing).
    """

    abstract = True

    def perform(self, run: PieceRun) -> PieceResult:
        spec: ProxiesSpec = run.record.spec
        plan: ProxiesPlan = run.record.plan
        session = runtime.session()
        with reading(ProjectRef(project=spec.project, database=spec.database)):
            found = session.list_clips(plan.bin, plan.clips)
            bins = session.list_bins()
        database = spec.database.name if spec.database else session.list_projects()["database"].get("DbName", "")
        runtime.farm().catalog.update_bins(runtime.node, database, spec.project, bins)
        where = f"bin {plan.bin!r}" if plan.bin else "the media pool"
        if plan.clips and not found["clips"]:
            raise PermanentFailure(f"clips: no video clip of {where} matches {', '.join(plan.clips)}")
        started = time.monotonic()
        facts = [_facts(clip, plan) for clip in found["clips"]]
        clips, transcodes, links = plan_clips(facts, plan.preset, plan.output, plan.replace, runtime.node)
        pieces = [*transcodes, link_piece(spec, transcodes, links)] if transcodes or links else []
        counts = {action: sum(c.action == action for c in clips) for action in ACTIONS}
        results = [
            {"op": ACTIONS.index(c.action), "kind": c.action, "target": c.clip, "ok": True, "change": c.reason,
             "error": "", "proxy": c.proxy}
            for c in clips
        ]  # fmt: skip
        log.info("%d clip(s) of %s: %s; looked at in %.2fs", len(clips), where, counts, time.monotonic() - started)
        details = {"clips": len(clips), **counts, "not_video": found["skipped"], "transcodes": len(transcodes)}
        return PieceResult(details=details, results=results, pieces=pieces)


class TranscodeReporter(Reporter):
    speaker = "transcode"


class TranscodePiece(PieceTask):
    """Transcodes one source into its proxy, verifies it, puts it in place and records what it was made from.

    Note: the proxy is written under a name of this attempt's (`.<name>.<job>-<message>.part`)
    and renamed into place only when verified and still this copy's; the record beside it goes
    first and comes back last, so a proxy is never taken as current while it is being replaced.
    """

    abstract = True
    permanent_errors = (*PieceTask.permanent_errors, SourceUnreadable)

    def perform(self, run: PieceRun) -> PieceResult:
        piece, params = run.piece, run.piece.params
        if params.get("refuse"):
            raise PermanentFailure(params["refuse"])
        preset = PRESETS[params["preset"]]
        source, proxy = runtime.to_node(params["source"]), runtime.to_node(str(piece.output))
        if not os.path.isfile(source):
            missing = f"its source {params['source']} is missing"
            if not params.get("seen", True):  # the scan's host did not see it either: the file is gone
                raise PermanentFailure(f"{missing} (on {runtime.node} and on {params.get('scanned_on') or 'the scan'})")
            raise FileNotFoundError(f"{missing} on {runtime.node}, though {params.get('scanned_on')} saw it")
        before = os.stat(source)
        info = probe(source)
        folder = os.path.dirname(proxy)
        partial = partial_name(proxy, run.job_id, str(run.task.request.id)[:8])
        total = piece.frames_total or info.frames
        reporter = TranscodeReporter(run.task, run.job_id, piece.name, run.record.generation, piece.attempts)
        started = time.monotonic()
        try:
            os.makedirs(folder, exist_ok=True)
            decoded = transcode(
                source, partial, preset, progress=lambda n: reporter(n, total, {"status": "encoding"}),
                stop=reporter.cancel.is_set, fps=runtime.settings.transcode_fps,
            )  # fmt: skip
            made = verify(info, decoded, partial, preset)
            after = os.stat(source)
            if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
                raise RuntimeError(f"the source {params['source']} changed while it was transcoded")
            digest = sampled_digest(source)
            if runtime.farm().locks.holder(run.job_id, piece.name) != run.owner:
                raise Superseded(f"{piece.name} of job {run.job_id} was taken over while {runtime.node} transcoded it")
            remove_record(proxy)
            os.replace(partial, proxy)
        except TranscodeStopped:
            _remove(partial)
            raise reporter.stopped("stopped") from None
        except BaseException:
            _remove(partial)
            raise
        seconds = time.monotonic() - started
        record = {
            "source": params["source"], "size": before.st_size, "mtime_ns": before.st_mtime_ns, "digest": digest,
            "preset": params["preset"], "proxy_size": os.path.getsize(proxy), "verified": made,
            "made_by": runtime.node, "made_at": time.time(), "job": run.job_id,
        }  # fmt: skip
        write_record(proxy, record)
        details = {**made, "reason": params.get("reason", ""), "seconds": round(seconds, 3),
                   "fps": round(decoded / max(seconds, 1e-6), 1)}  # fmt: skip
        return PieceResult(output=str(piece.output), frames=decoded, details=details)


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


class LinkPiece(ResolvePiece):
    """Links the proxies the job's transcodes made (and current ones not linked yet) into the project.

    Note: it runs once every transcode settled, so a clip that could not be made does not keep
    the others unlinked; it holds the project's write lease, and closes the project when done
    (`end_write`) so the next writer's host may hold it.
    """

    abstract = True

    def perform(self, run: PieceRun) -> PieceResult:
        spec: ProxiesSpec = run.record.spec
        links = list(run.piece.params.get("links", []))
        waited = set(run.piece.after)
        for piece in run.record.tasks:
            if piece.name in waited and piece.state == "done" and piece.output:
                links += [{"clip_id": c["id"], "clip": c["name"], "proxy": piece.output} for c in piece.params["clips"]]
        if not links:
            return PieceResult(details={"linked": 0}, results=[])
        session = runtime.session()
        open_project(ProjectRef(project=spec.project, database=spec.database))  # `end_write` closes it
        asked = [{"clip_id": x["clip_id"], "clip": x["clip"], "path": runtime.to_node(x["proxy"])} for x in links]
        results = session.link_proxies(asked)
        if any(r["ok"] for r in results):
            session.save_project()
        refused = [r for r in results if not r["ok"]]
        if refused:
            named = "; ".join(f"{r['clip']}: {r['error']}" for r in refused[:10])
            raise LinkRefused(f"Resolve refused {len(refused)} of {len(results)} proxies on {runtime.node}: {named}")
        report = [
            {"op": 0, "kind": "link", "target": r["clip"], "ok": True, "change": f"proxy {r['path']}", "error": ""}
            for r in results
        ]  # fmt: skip
        return PieceResult(details={"linked": len(results)}, results=report)


@shared_task(bind=True, base=ScanPiece, name="tasks.scan_proxies", default_retry_delay=1)
def scan_proxies(self: Task, job_id: str, name: str, generation: int) -> dict[str, Any]:
    """Read the project's clips and add the pieces that make and link their proxies."""
    return self.run_piece(job_id, name, generation)


@shared_task(bind=True, base=TranscodePiece, name="tasks.transcode_proxy", default_retry_delay=1)
def transcode_proxy(self: Task, job_id: str, name: str, generation: int) -> dict[str, Any]:
    """Make, verify and record one proxy (PyAV: no Resolve needed)."""
    return self.run_piece(job_id, name, generation)


@shared_task(bind=True, base=LinkPiece, name="tasks.link_proxies", default_retry_delay=1)
def link_proxies(self: Task, job_id: str, name: str, generation: int) -> dict[str, Any]:
    """Link the job's proxies into its project, under the project's write lease."""
    return self.run_piece(job_id, name, generation)
