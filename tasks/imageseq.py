"""`render_frames` and `check_frames`: an image sequence rendered in pieces across hosts, then checked whole.

A piece renders its frames into a hidden folder of its own attempt inside the sequence's
folder, reads every frame back (exactly its range under Resolve's names, each decoding to a
picture) and only then, holding the piece's lock, moves them into place: a frame under its
final name is always complete, and a piece that was cancelled, failed or lost its lock
leaves none. The range a tail copy shares with its original is moved by one of them only:
both take the range's frames lock (`<original> frames`), and whoever takes it second finds
the range done and drops its own frames. The lock is held until the piece's outcome is
recorded, so the record's digest is always that of the files in place.

`check_frames` (post queue, last) proves the folder holds every frame of the range exactly
once and that each is the file its piece rendered (size and CRC-32 of each, against the
digest the piece recorded), naming the frame when one is missing, doubled or spoiled.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import os
import re
import shutil
import threading
import time
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, cast

import av
from av.video.codeccontext import VideoCodecContext
from celery import Task, shared_task

from bridge import BridgeError
from bridge.errors import RenderCancelled
from orchestrator import metrics
from orchestrator.kinds.render import RenderSpec
from orchestrator.models import JobRecord, TaskRecord
from orchestrator.sequences import Sequence, files_digest, survey
from tasks.base import PermanentFailure, PieceResult, PieceRun, PieceTask, Superseded
from tasks.progress import Reporter
from tasks.render import RenderPiece
from tasks.resolve import publish_content, reading
from tasks.runtime import runtime

if TYPE_CHECKING:
    from orchestrator.farm import Farm

log = logging.getLogger(__name__)
DECODERS = {"tif": "tiff", "dpx": "dpx", "exr": "exr"}  # FFmpeg's decoder of each format the farm renders


class FramesUnreadable(BridgeError):
    """What Resolve wrote for a piece is not its range of readable frames (another attempt may do better)."""


class SequenceIncomplete(PermanentFailure):
    """The sequence's folder does not hold every frame of the range exactly once, each the file its piece made.

    Note: permanent: checking again finds the same folder; the frames must be rendered again.
    """


def decode(data: bytes, extension: str) -> tuple[int, int]:
    """The picture size one image file decodes to; raises `ValueError` naming why it does not."""
    if not data:
        raise ValueError("the file is empty")
    decoder = cast(VideoCodecContext, av.CodecContext.create(DECODERS[extension], "r"))
    try:
        pictures = decoder.decode(av.Packet(data))
    except av.FFmpegError as exc:
        raise ValueError(f"it does not decode ({exc})") from None
    if not pictures:
        raise ValueError("it decodes to no picture")
    return pictures[0].width, pictures[0].height


def content_digest(seq: Sequence, folder: Path, start: int, end: int, decoded: bool) -> dict[str, Any]:
    """Frames start..end in `folder`: count, range, sha256 over each frame's number, size and CRC-32.

    With `decoded`, each frame is also decoded (all to one picture size); a frame that is
    missing or unreadable raises `ValueError` naming it.
    """
    digest, size = hashlib.sha256(), None
    for frame in range(start, end + 1):
        path = folder / seq.file_name(frame)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ValueError(f"frame {frame} ({path.name}) is missing") from None
        if decoded:
            try:
                found = decode(data, seq.extension)
            except ValueError as exc:
                raise ValueError(f"frame {frame} ({path.name}) is unreadable: {exc}") from None
            if size is not None and found != size:
                raise ValueError(f"frame {frame} ({path.name}) is {found[0]}x{found[1]}, not {size[0]}x{size[1]}")
            size = found
        digest.update(f"{frame}:{len(data)}:{zlib.crc32(data)};".encode())
    return {"frames": end - start + 1, "first": start, "last": end, "sha256": digest.hexdigest()}


def check_attempt(folder: Path, seq: Sequence, start: int, end: int) -> dict[str, Any]:
    """What an attempt rendered: exactly the range's files under Resolve's names, each readable; its digest."""
    wanted = {seq.file_name(frame) for frame in range(start, end + 1)}
    there = set(os.listdir(folder))
    extra = sorted(there - wanted)
    if extra:
        raise FramesUnreadable(f"Resolve wrote {len(extra)} file(s) outside frames {start}..{end}, e.g. {extra[0]}")
    try:
        return content_digest(seq, folder, start, end, decoded=True)
    except ValueError as exc:
        raise FramesUnreadable(f"the render of frames {start}..{end}: {exc}") from None


def remove_attempt(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


class FrameMover:
    """Moves one attempt's frames into a sequence's folder, or drops them when the range is done already.

    Note: it moves only while it holds the piece's lock (a worker cut off from Redis loses
    it, and another copy of the piece owns the frames now) and the range's frames lock,
    shared by a piece and its tail copy. The frames lock is kept after the move, until
    `let_go`, which the piece calls once its outcome is recorded: whoever takes the lock
    next finds the range done and keeps the frames in place, the ones the record describes.
    """

    def __init__(self, farm: Farm, job_id: str, piece: TaskRecord, owner: str, ttl: int) -> None:
        self.farm, self.job_id, self.piece, self.owner, self.ttl = farm, job_id, piece, owner, ttl
        self.range_name = str(piece.params.get("copy_of") or piece.name)  # whose frames these are
        self.lock = f"{self.range_name} frames"
        self.holding = False
        self.waiting = threading.Event()  # set once it found the frames lock held and waits for it

    def move(self, seq: Sequence, attempt: Path) -> bool:
        """True when this attempt's frames are in place now; False when it dropped them (the range was done)."""
        self._still_mine()
        deadline = time.monotonic() + 2 * self.ttl  # a holder that died lets go within ttl
        while not self.farm.locks.acquire(self.job_id, self.lock, self.owner, self.ttl):
            if time.monotonic() > deadline:
                holder = self.farm.locks.holder(self.job_id, self.lock)
                raise BridgeError(f"{self.lock} of job {self.job_id} stayed locked by {holder}")
            self.waiting.set()
            time.sleep(0.05)
        self.holding = True
        ranged = self.farm.store.get(self.job_id).task(self.range_name)
        if ranged.state == "done":  # a piece and its copy: the other moved the same frames first
            log.info("%s: frames %s..%s are in place already (%s); dropping this attempt's", self.piece.name,
                     ranged.start, ranged.end, ranged.details.get("rendered_by", ranged.name))  # fmt: skip
            remove_attempt(attempt)
            return False
        self._still_mine()  # again: the first look was before waiting for the frames lock
        assert self.piece.start is not None and self.piece.end is not None
        for frame in range(self.piece.start, self.piece.end + 1):
            os.replace(attempt / seq.file_name(frame), seq.path(frame))  # atomic: one folder tree, one device
        attempt.rmdir()
        return True

    def let_go(self) -> None:
        if self.holding:
            self.farm.locks.release(self.job_id, self.lock, self.owner)
            self.holding = False

    def _still_mine(self) -> None:
        if self.farm.locks.holder(self.job_id, self.piece.name) != self.owner:
            raise Superseded(f"{self.piece.name} of job {self.job_id} was taken over by another worker meanwhile")


class FramesPiece(RenderPiece):
    """Renders a piece's frames of an image sequence, checks them, and moves them into the sequence's folder."""

    abstract = True
    movers: ClassVar[dict[str, FrameMover]] = {}  # by lock owner: the mover of the piece this process runs

    def perform(self, run: PieceRun) -> PieceResult:
        spec: RenderSpec = run.record.spec
        piece = run.piece
        seq: Sequence = run.record.plan.sequence
        assert piece.start is not None and piece.end is not None
        frames = piece.end - piece.start + 1
        tag = re.sub(r"[^A-Za-z0-9]+", "-", piece.name).strip("-")
        attempt = seq.attempt_dir(run.job_id, run.record.generation,
                                  f"{tag}.{str(run.task.request.id)[:8]}-{piece.attempts}")  # fmt: skip
        reporter = Reporter(run.task, run.job_id, piece.name, run.record.generation, piece.attempts)
        settings = {**spec.settings, "ExportVideo": True, "ExportAudio": False}  # a sequence has no audio
        mover = self.movers[run.owner] = FrameMover(runtime.farm(), run.job_id, piece, run.owner,
                                                    runtime.settings.lock_ttl)  # fmt: skip
        try:
            attempt.mkdir(parents=True, exist_ok=True)
            with reading(spec):
                publish_content(spec, spec.timeline, once_for=(run.job_id, run.record.generation))
                result = runtime.session().render(
                    spec.timeline, piece.start, piece.end, runtime.to_node(str(attempt)), seq.name,
                    format=spec.format_key, codec=spec.codec_key, settings=settings, progress=reporter,
                    cancel=reporter.cancel,
                )  # fmt: skip
            rendered = time.monotonic()
            fps, start_seconds = reporter.speed(frames, rendered)
            content = check_attempt(attempt, seq, piece.start, piece.end)  # the files, not only Resolve's word
            moved = mover.move(seq, attempt)
            files = files_digest(seq, piece.start, piece.end) if moved else None
            checked = time.monotonic() - rendered
        except RenderCancelled:
            remove_attempt(attempt)
            self._let_go(run)
            measured = reporter.speed_so_far()
            if measured and run.record.plan.speed_key:  # a slow node stopped is still slow
                runtime.farm().speeds.record(runtime.node, run.record.plan.speed_key, *measured)
            raise reporter.stopped("stopped in Resolve") from None
        except BaseException:
            remove_attempt(attempt)
            self._let_go(run)
            raise
        metrics.record_render(runtime.farm().redis, runtime.node, frames, result.seconds)
        details: dict[str, Any] = {"seconds": round(result.seconds, 3), "range": f"{piece.start}..{piece.end}",
                                   "fps": round(fps, 3), "start_seconds": round(start_seconds, 3),
                                   "check_seconds": round(checked, 3)}  # fmt: skip
        if files is not None:  # what the check proves the folder holds, and which files a cancel may remove
            details["sequence"] = {**content, "files": files}
        return PieceResult(output=seq.pattern, frames=frames, details=details)

    def _let_go(self, run: PieceRun) -> None:
        mover = self.movers.pop(run.owner, None)
        if mover is not None:
            mover.let_go()

    def after_done(self, run: PieceRun, result: PieceResult, record: JobRecord[Any, Any]) -> None:
        self._let_go(run)
        super().after_done(run, result, record)

    def after_stale(self, run: PieceRun, result: PieceResult, record: JobRecord[Any, Any]) -> None:
        # The frames it moved stay: whoever owns the piece now moves the same frames, under the same lock.
        self._let_go(run)


class CheckPiece(PieceTask):
    """Checks a whole sequence once every piece is done: each frame of the range exactly once, as rendered."""

    abstract = True

    def perform(self, run: PieceRun) -> PieceResult:
        started = time.monotonic()
        details = check_sequence(run.record)
        details["seconds"] = round(time.monotonic() - started, 3)
        return PieceResult(output=run.record.plan.sequence.pattern, details=details)

    def after_done(self, run: PieceRun, result: PieceResult, record: JobRecord[Any, Any]) -> None:
        if record.state == "succeeded":  # attempts of workers that died mid-piece: nobody else removes them
            seq: Sequence = record.plan.sequence
            for folder in glob.glob(seq.attempts_glob(record.id)):
                remove_attempt(Path(folder))


def check_sequence(record: JobRecord[Any, Any]) -> dict[str, Any]:
    """The sequence's folder holds every frame of the range exactly once, each as its piece rendered it;
    what it holds, or `SequenceIncomplete` naming what is wrong."""
    seq: Sequence = record.plan.sequence
    pieces = rendered_pieces(record)
    check_coverage(seq, pieces)
    found = survey(seq, os.listdir(seq.folder) if os.path.isdir(seq.folder) else [])
    if not found.complete:
        raise SequenceIncomplete(f"{seq.pattern}: {found.reason()}")
    for piece in pieces:
        check_piece_frames(seq, piece)
    if found.outside:
        log.warning("%s also holds %d frame(s) outside %d..%d (an earlier render's): left alone", seq.folder,
                    len(found.outside), seq.start, seq.end)  # fmt: skip
    return {"frames": found.found, "first": seq.start, "last": seq.end, "folder": seq.folder, "pattern": seq.pattern,
            "outside": len(found.outside)}  # fmt: skip


def rendered_pieces(record: JobRecord[Any, Any]) -> list[TaskRecord]:
    """The pieces whose frames are in place, in frame order (a tail copy's frames are its original's)."""
    check = record.task("check")
    waited = [record.task(name) for name in check.after]
    return sorted((t for t in waited if t.state == "done" and not t.params.get("copy_of")), key=lambda t: t.start or 0)


def check_coverage(seq: Sequence, pieces: list[TaskRecord]) -> None:
    """The done pieces' ranges tile the sequence's range: each frame moved into place by exactly one piece."""
    expected = seq.start
    for piece in pieces:
        if piece.start != expected or piece.end is None or "sequence" not in piece.details:
            raise SequenceIncomplete(
                f"the pieces do not cover {seq.start}..{seq.end} once each: {piece.name} has "
                f"{piece.start}..{piece.end}{'' if 'sequence' in piece.details else ' and moved no frames'}, "
                f"frame {expected} was next"
            )
        expected = piece.end + 1
    if expected != seq.end + 1:
        raise SequenceIncomplete(f"the pieces cover {seq.start}..{expected - 1}, not {seq.start}..{seq.end}")


def recorded_content(recorded: dict[str, Any]) -> dict[str, Any]:
    return {key: recorded[key] for key in ("frames", "first", "last", "sha256")}


def check_piece_frames(seq: Sequence, piece: TaskRecord) -> None:
    """The frames in place are the files the piece rendered; when not, name the first frame that is wrong."""
    assert piece.start is not None and piece.end is not None
    recorded = piece.details["sequence"]
    try:
        if content_digest(seq, Path(seq.folder), piece.start, piece.end, decoded=False) == recorded_content(recorded):
            return
        content_digest(seq, Path(seq.folder), piece.start, piece.end, decoded=True)  # which frame no longer decodes
    except ValueError as exc:
        raise SequenceIncomplete(f"{exc}; {piece.name} rendered it whole") from None
    raise SequenceIncomplete(
        f"frames {piece.start}..{piece.end} are not the files {piece.name} rendered (a frame's size or CRC-32 "
        "differs from its record): something changed them after it moved them into place"
    )


@shared_task(bind=True, base=FramesPiece, name="tasks.render_frames", default_retry_delay=1)
def render_frames(self: Task, job_id: str, name: str, generation: int) -> dict[str, Any]:
    """Render one piece of an image sequence and move its frames into the sequence's folder."""
    return self.run_piece(job_id, name, generation)


@shared_task(bind=True, base=CheckPiece, name="tasks.check_frames")
def check_frames(self: Task, job_id: str, name: str, generation: int) -> dict[str, Any]:
    """Check that an image sequence holds every frame of its range exactly once, each as its piece rendered it."""
    return self.run_piece(job_id, name, generation)
