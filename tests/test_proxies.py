"""A proxies job in memory: what the scan plans for each clip, the pieces it adds, and the media work.

No Redis, no Celery: `plan_clips` on clip facts, the lifecycle on records, PyAV on tiny files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bridge.sim import media
from orchestrator import lifecycle
from orchestrator.kinds.proxies import (
    PRESETS,
    ClipFacts,
    ProxiesPlan,
    ProxiesSpec,
    link_piece,
    plan_clips,
    proxy_path,
    source_verdict,
)
from orchestrator.models import JobRecord, Placement, TaskRecord
from tasks.proxy_files import read_record, sampled_digest, write_record
from tasks.transcode import ProxyMismatch, SourceUnreadable, probe, transcode, verify

OUT = "/storage/proxies"
HALF = "prores-proxy-half"


def facts(name: str, frames: int = 100, **kw: Any) -> ClipFacts:
    """A clip whose source has no proxy yet, unless `current` asks for a record that matches it."""
    source = kw.pop("source", f"/media/day1/{name}")
    clip = ClipFacts(id=kw.pop("id", name), name=name, source=source, frames=frames, width=kw.pop("width", 1920),
                     height=kw.pop("height", 1080), size=kw.pop("size", 1000), mtime_ns=kw.pop("mtime_ns", 7), **kw)  # fmt: skip
    return clip


def current(clip: ClipFacts, preset: str = HALF, **changes: Any) -> ClipFacts:
    """`clip` with a record beside its proxy that matches its source (then `changes` to the record or facts)."""
    record = {"source": clip.source, "preset": preset, "size": clip.size, "mtime_ns": clip.mtime_ns,
              "digest": "d1", "proxy_size": 50}  # fmt: skip
    record.update({k: v for k, v in changes.items() if k in record})
    update = {"record": record, "proxy_size": 50, "digest": "d1"}
    update.update({k: v for k, v in changes.items() if k in ClipFacts.model_fields})
    return clip.model_copy(update=update)


def test_proxy_paths_mirror_the_source_folders() -> None:
    half, h264 = PRESETS[HALF], PRESETS["h264-half"]
    assert proxy_path(OUT, "/media/day1/A001.mxf", half) == "/storage/proxies/media/day1/A001.mov"
    assert proxy_path(OUT, "/media/day1/A001.mov", h264) == "/storage/proxies/media/day1/A001.mp4"
    assert proxy_path(OUT, "D:\\Media\\Day 1\\A001.mxf", half) == "/storage/proxies/D/Media/Day 1/A001.mov"
    with pytest.raises(ValueError):
        proxy_path(OUT, "/media/../etc/A001.mov", half)


def test_sources_without_a_proxy_are_transcoded_largest_first() -> None:
    clips = [facts("a_short.mov", 100), facts("b_long.mov", 900), facts("big.mov", 300, width=3840, height=2160),
             facts("mid.mov", 400)]  # fmt: skip
    plans, pieces, links = plan_clips(clips, HALF, OUT, scanned_on="sim-1")
    # Work is frames times pixels: the 4K clip of 300 frames outweighs 900 frames of HD.
    assert [p.name for p in pieces] == ["transcode big.mov", "transcode b_long.mov", "transcode mid.mov",
                                        "transcode a_short.mov"]  # fmt: skip
    assert all(p.placement == Placement(pool="transcode") and p.final for p in pieces)
    big = pieces[0]
    assert big.output == "/storage/proxies/media/day1/big.mov" and big.frames_total == 300
    assert big.params["clips"] == [{"id": "big.mov", "name": "big.mov"}] and big.params["scanned_on"] == "sim-1"
    assert {p.action for p in plans} == {"make"} and links == []


def test_current_proxies_are_left_alone_and_unlinked_ones_only_linked() -> None:
    proxy = "/storage/proxies/media/day1/{}.mov"
    clips = [
        current(facts("done.mov"), linked=proxy.format("done")),
        current(facts("unlinked.mov")),
        facts("new.mov"),
    ]
    plans, pieces, links = plan_clips(clips, HALF, OUT)
    by_clip = {p.clip: p.action for p in plans}
    assert by_clip == {"done.mov": "current", "unlinked.mov": "link", "new.mov": "make"}
    assert [p.name for p in pieces] == ["transcode new.mov"]
    assert links == [{"clip_id": "unlinked.mov", "clip": "unlinked.mov", "proxy": proxy.format("unlinked")}]
    spec = ProxiesSpec(project="Demo", database={"name": "Farm"})
    link = link_piece(spec, pieces, links)
    assert link.after == ["transcode new.mov"] and link.after_settled and link.lease == "Farm/Demo"
    assert link.placement.pool == "edit" and link.params["links"] == links


@pytest.mark.parametrize(
    "change, why",
    [
        ({"size": 999}, "the source changed (size)"),
        ({"mtime_ns": 8}, "the source changed (modified since)"),
        ({"digest": "d2"}, "the source changed (content)"),
        ({"preset": "h264-half"}, "its proxy was made with preset 'h264-half'"),
        ({"proxy_size": 49}, "its proxy file changed"),
        ({"source": "/media/day2/a.mov"}, "its proxy path holds the proxy of '/media/day2/a.mov'"),
    ],
)
def test_a_stale_proxy_is_made_again_saying_why(change: dict[str, Any], why: str) -> None:
    clip = current(facts("a.mov"))
    if "digest" in change:  # the source's digest now, against the record's
        clip = clip.model_copy(update={"digest": change["digest"]})
    else:
        clip = clip.model_copy(update={"record": {**(clip.record or {}), **change}})
    assert source_verdict(clip, HALF) == why
    plans, pieces, _ = plan_clips([clip], HALF, OUT)
    assert plans[0].action == "make" and pieces[0].params["reason"] == why


def test_no_record_or_no_proxy_file_is_no_proxy() -> None:
    assert source_verdict(facts("a.mov"), HALF) == "no proxy made yet"
    assert source_verdict(current(facts("a.mov"), proxy_size=None), HALF) == "its proxy file is gone"
    assert source_verdict(current(facts("a.mov")), HALF) is None


def test_proxies_from_elsewhere_are_kept_unless_replaced() -> None:
    camera = facts("cam.mov", linked="/media/day1/proxy/cam.mov", linked_exists=True)
    gone = facts("gone.mov", linked="/media/day1/proxy/gone.mov", linked_exists=False)
    plans, pieces, _ = plan_clips([camera, gone], HALF, OUT)
    assert {p.clip: p.action for p in plans} == {"cam.mov": "keep", "gone.mov": "make"}
    assert [p.name for p in pieces] == ["transcode gone.mov"]
    plans, pieces, _ = plan_clips([camera, gone], HALF, OUT, replace=True)
    assert {p.clip: p.action for p in plans} == {"cam.mov": "make", "gone.mov": "make"}
    # Ours from an earlier preset (under the output folder) is no one else's: it is replaced.
    ours = facts("old.mov", linked="/storage/proxies/media/day1/old.mp4", linked_exists=True)
    assert plan_clips([ours], HALF, OUT)[0][0].action == "make"


def test_a_shared_source_is_made_once_and_clashing_proxies_refused() -> None:
    a = facts("A001.mov", id="c1")
    again = facts("A001 copy", id="c2", source=a.source)
    clash = facts("A001.mxf", id="c3", source="/media/day1/A001.mxf")
    _, pieces, _ = plan_clips([a, again, clash], HALF, OUT)
    assert len(pieces) == 2
    shared = next(p for p in pieces if p.params["source"] == a.source)
    assert [c["id"] for c in shared.params["clips"]] == ["c1", "c2"]
    refused = next(p for p in pieces if p.params["source"] == clash.source)
    assert "would overwrite the proxy of /media/day1/A001.mov" in refused.params["refuse"]


def test_a_cancelled_jobs_cleanup_finds_the_partial_proxies_of_its_attempts_only(tmp_path: Path) -> None:
    import glob

    from orchestrator.kinds import get
    from orchestrator.kinds.proxies import partial_name

    proxy = str(tmp_path / "A001.mov")
    mine, theirs = partial_name(proxy, "job1", "5f3a9c01"), partial_name(proxy, "job2", "77aa0b12")
    for path in (mine, theirs, proxy):
        Path(path).write_bytes(b"x")
    spec = ProxiesSpec(project="Demo")
    plan = ProxiesPlan(preset=HALF, output=str(tmp_path), resolve_nodes=[], transcoders=[])
    piece = TaskRecord(name="transcode A001.mov", kind="transcode", output=proxy)
    record = JobRecord[ProxiesSpec, ProxiesPlan](id="job1", kind="proxies", spec=spec, plan=plan, tasks=[piece])
    patterns = get("proxies").leftovers(record, 1).remove
    assert [p for pattern in patterns for p in glob.glob(pattern)] == [mine]  # not the proxy, not another job's


def test_a_missing_source_gets_a_piece_that_will_say_so() -> None:
    plans, pieces, _ = plan_clips([facts("gone.mov", source_exists=False)], HALF, OUT, scanned_on="sim-2")
    assert plans[0].reason == "the source is missing" and pieces[0].params["seen"] is False


# --- the pieces in the lifecycle --------------------------------------------------------


def scanned_job() -> tuple[JobRecord[Any, Any], list[TaskRecord]]:
    """A submitted proxies job whose scan ran on sim-1, and what the scan found: two transcodes and a link."""
    spec = ProxiesSpec(project="Demo")
    plan = ProxiesPlan(preset=HALF, output=OUT, resolve_nodes=["sim-1"], transcoders=["sim-1", "tc-1"])
    scan = TaskRecord(name="scan", kind="scan", task="tasks.scan_proxies", placement=Placement(pool="edit"))
    record: JobRecord[Any, Any] = JobRecord[ProxiesSpec, ProxiesPlan](
        kind="proxies", spec=spec, plan=plan, tasks=[scan], fail_fast=False, max_attempts=2
    )
    lifecycle.submit(record)
    lifecycle.claim(record, "scan", "sim-1", record.task("scan").celery_id or "", 1, (), ["sim-1"])
    _, transcodes, links = plan_clips([facts("a.mov", 200), facts("b.mov", 100)], HALF, OUT)
    return record, [*transcodes, link_piece(spec, transcodes, links)]


def test_the_scan_adds_its_pieces_and_the_transcodes_are_sent_at_once() -> None:
    record, found = scanned_job()
    outcome = lifecycle.piece_done(record, "scan", "sim-1", 1, pieces=found)
    assert [t.name for t in record.tasks] == ["scan", "transcode a.mov", "transcode b.mov", "link"]
    assert [s.piece for s in outcome.send] == ["transcode a.mov", "transcode b.mov"]  # largest first
    assert [t.state for t in record.tasks] == ["done", "pending", "pending", "waiting"]
    assert record.state == "running" and record.frames() == (0, 300)
    again = lifecycle.piece_done(record, "scan", "sim-1", 1, pieces=found)  # a late copy: changes nothing
    assert again.verdict == "stale" and len(record.tasks) == 4
    record.task("scan").state = "running"  # were it to run again, it could not add the same pieces twice
    with pytest.raises(ValueError, match="names are taken"):
        lifecycle.piece_done(record, "scan", "sim-1", 1, pieces=found)


def test_the_link_runs_after_a_failed_transcode_and_the_job_says_which_clip_failed() -> None:
    record, found = scanned_job()
    lifecycle.piece_done(record, "scan", "sim-1", 1, pieces=found)
    for name, node in (("transcode a.mov", "tc-1"), ("transcode b.mov", "sim-1")):
        lifecycle.claim(record, name, node, record.task(name).celery_id or "", 1, (), ["sim-1", "tc-1"])
    lifecycle.piece_done(record, "transcode a.mov", "tc-1", 1, output="/storage/proxies/media/day1/a.mov")
    assert record.task("link").state == "waiting"  # b still runs
    gave_up = lifecycle.piece_failed(record, "transcode b.mov", "sim-1", 1, "its source is missing", permanent=True)
    assert gave_up.verdict == "failed" and [s.piece for s in gave_up.send] == ["link"]
    assert record.task("link").state == "pending" and record.state == "running"
    assert record.blocked_nodes == {}  # the request's fault, not the node's
    lifecycle.claim(record, "link", "sim-1", record.task("link").celery_id or "", 1, (), ["sim-1"])
    lifecycle.piece_done(record, "link", "sim-1", 1)
    assert record.state == "failed"
    assert record.errors == ["transcode b.mov: its source is missing"]


def test_what_a_scan_finds_after_its_job_ended_is_dropped_so_a_retry_looks_again() -> None:
    record, found = scanned_job()
    lifecycle.cancel_job(record, cleanup_after=0)
    outcome = lifecycle.piece_done(record, "scan", "sim-1", 1, pieces=found)
    assert outcome.verdict == "stale" and [t.name for t in record.tasks] == ["scan"]
    assert record.task("scan").state == "cancelled"
    lifecycle.retry_job(record)
    assert record.task("scan").state == "pending"


def test_a_link_that_waits_for_failures_is_never_skipped_but_a_plain_dependent_is() -> None:
    record, found = scanned_job()
    plain = TaskRecord(name="report", kind="report", task="t.report", after=["transcode b.mov"])
    lifecycle.piece_done(record, "scan", "sim-1", 1, pieces=[*found, plain])
    lifecycle.claim(record, "transcode b.mov", "tc-1", record.task("transcode b.mov").celery_id or "", 1, (), [])
    lifecycle.piece_failed(record, "transcode b.mov", "tc-1", 1, "bad", permanent=True)
    assert record.task("report").state == "skipped" and record.task("link").state == "waiting"


# --- the media work ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return media.write_clip(tmp_path_factory.mktemp("src") / "S001.mov", media.SourceClip("S001.mov", 30, 24.0))


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_a_transcode_verifies_against_its_source(source: Path, tmp_path: Path, preset: str) -> None:
    chosen = PRESETS[preset]
    target = tmp_path / f"proxy{chosen.extension}"
    seen: list[int] = []
    decoded = transcode(str(source), str(target), chosen, progress=seen.append)
    assert decoded == 30 and seen == list(range(1, 31))
    made = verify(probe(str(source)), decoded, str(target), chosen)
    assert made["frames"] == 30 and made["audio"] is True
    assert made["size"] == {"prores-proxy-quarter": "64x36"}.get(preset, "128x72")
    other = PRESETS["prores-proxy-quarter" if preset != "prores-proxy-quarter" else HALF]
    with pytest.raises(ProxyMismatch, match="the preset makes"):
        verify(probe(str(source)), decoded, str(target), other)  # a proxy of another size than asked
    with pytest.raises(ProxyMismatch, match="holds 30 frames, its source 31"):
        verify(probe(str(source)).__class__(**{**vars(probe(str(source))), "frames": 0}), 31, str(target), chosen)


def test_a_damaged_source_or_a_proxy_of_another_length_is_caught(source: Path, tmp_path: Path) -> None:
    chosen = PRESETS[HALF]
    info = probe(str(source))
    with pytest.raises(SourceUnreadable, match="header says 30 frames but 29 decode"):
        verify(info, 29, str(tmp_path / "none.mov"), chosen)
    # As long, fewer frames: 20 at 16 fps against the source's 30 at 24 (1.25 s both).
    fewer = media.write_clip(tmp_path / "fewer.mov", media.SourceClip("fewer.mov", 20, 16.0))
    target = tmp_path / "p.mov"
    transcode(str(fewer), str(target), chosen)
    with pytest.raises(ProxyMismatch, match="holds 20 frames, its source 30"):
        verify(info, 30, str(target), chosen)
    # As many frames, shorter: 30 at 30 fps (1 s) against 1.25 s.
    shorter = media.write_clip(tmp_path / "shorter.mov", media.SourceClip("shorter.mov", 30, 30.0))
    transcode(str(shorter), str(target), chosen)
    with pytest.raises(ProxyMismatch, match=r"lasts 1\.000 s, its source 1\.250 s"):
        verify(info, 30, str(target), chosen)
    with pytest.raises(SourceUnreadable):
        probe(str(tmp_path / "missing.mov"))


def test_a_proxy_without_the_sound_of_its_source_is_caught(source: Path, tmp_path: Path) -> None:
    chosen = PRESETS[HALF]
    silent = media.write_clip(tmp_path / "silent.mov", media.SourceClip("silent.mov", 30, 24.0, audio=False))
    target = tmp_path / "p.mov"
    assert transcode(str(silent), str(target), chosen) == 30
    assert verify(probe(str(silent)), 30, str(target), chosen)["audio"] is False  # none asked, none made
    with pytest.raises(ProxyMismatch, match="the source has sound and the proxy none"):
        verify(probe(str(source)), 30, str(target), chosen)


def test_a_record_and_the_sampled_digest_follow_the_source(source: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.mov"
    copy.write_bytes(source.read_bytes())
    digest = sampled_digest(str(copy))
    assert digest == sampled_digest(str(source))
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte in the middle, size unchanged
    copy.write_bytes(bytes(data))
    assert sampled_digest(str(copy)) != digest
    proxy = tmp_path / "p.mov"
    assert read_record(str(proxy)) is None
    write_record(str(proxy), {"digest": digest})
    assert read_record(str(proxy)) == {"digest": digest}
    Path(str(proxy) + ".source.json").write_text("{torn")
    assert read_record(str(proxy)) is None


def test_transcode_pieces_have_a_queue_of_their_own_and_nodes_without_resolve_listen_on_it() -> None:
    from orchestrator import routing

    assert routing.queue_for(Placement(pool="transcode")) == "v1.transcode"
    assert routing.queue_for(Placement(pool="transcode"), node="tc-1") == "v1.node.tc-1"  # a retry sent to a node
    assert routing.worker_queues("tc-1", ["gpu"], resolve=False, transcode=True) == ["v1.node.tc-1", "v1.transcode"]
    assert routing.worker_queues("bay-1", ["gpu"], transcode=True) == [
        "v1.node.bay-1", "v1.tag.gpu", "v1.render", "v1.edit", "v1.transcode",
    ]  # what was sent to this node alone comes first  # fmt: skip
