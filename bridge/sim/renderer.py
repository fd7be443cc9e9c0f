"""Real media files for simulated renders, written with PyAV in a background thread.

A render job covers timeline frames MarkIn..MarkOut (inclusive). Each video frame shows the
colour of the clip on the top video track at that frame and carries its timeline frame
number (see `framecode`); audio is a tone whose phase follows the timeline clock, so audio
rendered in pieces joins without a jump.
"""

from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from bridge.sim import framecode, imageseq
from bridge.sim.config import SimConfig
from bridge.sim.cost import RenderCost, top_items
from bridge.sim.formats import Codec, Format

SAMPLE_RATE = 48000
CHANNELS = 2
TONE_HZ = 440.0
CRASH_EXIT_CODE = 86

RGB = {
    "Orange": (235, 110, 30),
    "Apricot": (240, 160, 100),
    "Yellow": (230, 210, 40),
    "Lime": (150, 220, 40),
    "Olive": (120, 130, 40),
    "Green": (40, 170, 60),
    "Teal": (30, 150, 150),
    "Navy": (30, 40, 120),
    "Blue": (40, 90, 220),
    "Purple": (120, 50, 170),
    "Violet": (160, 90, 220),
    "Pink": (230, 120, 180),
    "Tan": (200, 170, 120),
    "Beige": (220, 210, 170),
    "Brown": (120, 70, 40),
    "Chocolate": (90, 50, 30),
    "": (70, 70, 70),
}
GAP = (24, 24, 24)


def frame_rate(value: Any) -> Fraction:
    """Resolve's frame rate strings ("24", "23.976", "29.97") as exact rates."""
    text = str(value)
    known = {
        "23.976": Fraction(24000, 1001),
        "29.97": Fraction(30000, 1001),
        "59.94": Fraction(60000, 1001),
        "47.952": Fraction(48000, 1001),
    }
    return known.get(text, Fraction(text).limit_denominator(1001))


def samples_before(frame: int, rate: Fraction) -> int:
    """Audio samples from timeline frame 0 to the start of `frame`: pieces add up exactly."""
    return round(frame * SAMPLE_RATE / rate)


@dataclass
class RenderStatus:
    """What `GetRenderJobStatus` reports for one job, updated by the render thread."""

    state: str = "Ready"
    frames_done: int = 0
    frames_total: int = 0
    started: float | None = None
    finished: float | None = None
    error: str = ""
    work_due: float = 0.0  # seconds of rendering the frames done so far cost (start cost included)

    def as_resolve(self) -> dict[str, Any]:
        pct = int(100 * self.frames_done / self.frames_total) if self.frames_total else 0
        out: dict[str, Any] = {"JobStatus": self.state, "CompletionPercentage": pct}
        if self.state == "Rendering" and self.started is not None:
            elapsed = time.monotonic() - self.started
            left = self.frames_total - self.frames_done
            rate = self.frames_done / elapsed if elapsed > 0 and self.frames_done else 0
            out["EstimatedTimeRemainingInMs"] = int(1000 * left / rate) if rate else 0
        if self.state in ("Complete", "Failed", "Cancelled") and self.started is not None:
            out["TimeTakenToRenderInMs"] = int(1000 * ((self.finished or time.monotonic()) - self.started))
        if self.error:
            out["Error"] = self.error
        return out


@dataclass
class RenderJob:
    """A render job as `AddRenderJob` captured it: a timeline snapshot and its settings."""

    job_id: str
    timeline: dict[str, Any]
    fmt: Format
    codec: Codec
    settings: dict[str, Any]
    width: int
    height: int
    rate: Fraction
    status: RenderStatus = field(default_factory=RenderStatus)
    cost: RenderCost | None = None  # what each frame costs beyond the node's speed (`bridge.sim.cost`)

    @property
    def mark_in(self) -> int:
        if self.settings.get("SelectAllFrames") or "MarkIn" not in self.settings:
            return int(self.timeline["start_frame"])
        return int(self.settings["MarkIn"])

    @property
    def mark_out(self) -> int:
        if self.settings.get("SelectAllFrames") or "MarkOut" not in self.settings:
            return int(self.timeline["start_frame"] + self.timeline["frames"] - 1)
        return int(self.settings["MarkOut"])

    @property
    def name(self) -> str:
        return str(self.settings.get("CustomName") or self.timeline["name"])

    @property
    def target_dir(self) -> str:
        return str(self.settings.get("TargetDir", ""))

    @property
    def output_name(self) -> str:
        return f"{self.name}.{self.fmt.extension}"

    def describe(self) -> dict[str, Any]:
        """The job as `GetRenderJobList` lists it."""
        return {
            "JobId": self.job_id,
            "RenderJobName": self.name,
            "TimelineName": self.timeline["name"],
            "TargetDir": self.target_dir,
            "OutputFilename": self.output_name,
            "IsExportVideo": bool(self.settings.get("ExportVideo", True)),
            "IsExportAudio": bool(self.settings.get("ExportAudio", True)),
            "FormatWidth": self.width,
            "FormatHeight": self.height,
            "FrameRate": str(float(self.rate)),
            "MarkIn": self.mark_in,
            "MarkOut": self.mark_out,
            "RenderMode": "Single clip",
            "PresetName": self.settings.get("PresetName", "Custom"),
        }


class Renderer:
    """Renders a queue of jobs one after another in a background thread, as Resolve does.

    Note: rendering is in progress while a job of the batch is still to finish, not while the
    thread lives: once the last job reports Complete, Resolve takes the next render, and a
    thread that has not yet exited (a loaded machine) must not refuse it.
    """

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self._thread: threading.Thread | None = None
        self._jobs: list[RenderJob] = []
        self._stop = threading.Event()

    @property
    def busy(self) -> bool:
        alive = self._thread is not None and self._thread.is_alive()
        return alive and any(job.status.state in ("Ready", "Rendering") for job in self._jobs)

    def start(self, jobs: list[RenderJob]) -> bool:
        if self.busy or not jobs:
            return False
        self._stop.clear()
        for job in jobs:
            job.status = RenderStatus(frames_total=job.mark_out - job.mark_in + 1)
        self._jobs = list(jobs)
        self._thread = threading.Thread(target=self._run, args=(jobs,), name="sim-render", daemon=True)
        self._thread.start()
        return True

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self, jobs: list[RenderJob]) -> None:
        for job in jobs:
            if self._stop.is_set():
                break
            self._render(job)

    def _render(self, job: RenderJob) -> None:
        status = job.status
        status.state, status.started = "Rendering", time.monotonic()
        try:
            status.work_due = self.config.render_start  # loading the timeline, filling caches
            if self._stop.wait(status.work_due):
                raise _Cancelled
            if self.config.quirks.fail_render:
                raise RuntimeError(self.config.quirks.fail_render)
            target = Path(job.target_dir)
            try:
                target.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise RuntimeError(f"Cannot create render target folder {target}: {exc.strerror}") from exc
            if job.fmt.image_sequence:
                self._write_sequence(job, target)
            else:
                self._write_movie(job, target / job.output_name)
        except _Cancelled:
            status.state = "Cancelled"
        except Exception as exc:  # any failure is what Resolve reports as a failed job
            status.state, status.error = "Failed", str(exc) or type(exc).__name__
        else:
            if not (job.fmt.image_sequence and self.config.quirks.imageseq_stall):
                status.state = "Complete"
        status.finished = time.monotonic()

    def _pace(self, job: RenderJob, index: int) -> None:
        """Advance one frame: honour the configured speed, cancellation and the crash quirk."""
        status = job.status
        status.frames_done = index + 1
        crash_at = self.config.quirks.crash_at
        if crash_at is not None and status.frames_done >= crash_at * status.frames_total:
            os._exit(CRASH_EXIT_CODE)
        assert status.started is not None
        if job.settings.get("ExportVideo", True):
            timeline = job.timeline
            position = (job.mark_in + index - timeline["start_frame"]) / max(1, timeline["frames"])
            content = job.cost.frame(job.mark_in + index, index) if job.cost is not None else 1.0
            status.work_due += self.config.frame_cost(position) * content / self.config.fps
        else:  # sound alone: no grade or effect to slow it
            status.work_due += 1 / self.config.audio_fps
        due = status.started + status.work_due
        delay = due - time.monotonic()
        if self._stop.wait(delay) if delay > 0 else self._stop.is_set():
            raise _Cancelled

    def _picture(self, job: RenderJob, frame: int, top: list[dict[str, Any]]) -> np.ndarray:
        color = GAP
        for item in top:
            if item["start"] <= frame < item["end"]:
                color = RGB.get(item.get("color", ""), RGB[""])
                break
        return framecode.draw(frame, job.width, job.height, color)

    def _write_movie(self, job: RenderJob, path: Path) -> None:
        settings = job.settings
        video = bool(settings.get("ExportVideo", True))
        audio = bool(settings.get("ExportAudio", True)) and job.fmt.pcm_audio is not None
        if not (video or audio):
            raise RuntimeError("Nothing to render: both ExportVideo and ExportAudio are off")
        audio_codec = "aac" if str(settings.get("AudioCodec", "")).lower() == "aac" else job.fmt.pcm_audio
        top = top_items(job.timeline)
        frame_time = Fraction(1) / job.rate  # the muxer changes the stream's own time base
        with av.open(str(path), "w", format=job.fmt.muxer) as out:
            vstream = astream = None
            if video:
                vstream = out.add_stream(job.codec.encoder, rate=job.rate, options=dict(job.codec.options))
                vstream.width, vstream.height, vstream.pix_fmt = job.width, job.height, job.codec.pix_fmt
                vstream.time_base = frame_time
                if job.codec.intra:
                    vstream.codec_context.gop_size = 1
                if job.codec.tag:
                    vstream.codec_context.codec_tag = job.codec.tag
            if audio:
                astream = out.add_stream(audio_codec, rate=SAMPLE_RATE, layout="stereo")
            sample_pos = samples_before(job.mark_in, job.rate)
            for index, frame in enumerate(range(job.mark_in, job.mark_out + 1)):
                if vstream is not None:
                    vf = av.VideoFrame.from_ndarray(self._picture(job, frame, top), format="rgb24")
                    vf.pts = index
                    vf.time_base = frame_time
                    out.mux(vstream.encode(vf))
                if astream is not None:
                    end = samples_before(frame + 1, job.rate)
                    out.mux(astream.encode(_tone(sample_pos, end, samples_before(job.mark_in, job.rate))))
                    sample_pos = end
                self._pace(job, index)
            if vstream is not None:
                out.mux(vstream.encode(None))
            if astream is not None:
                out.mux(astream.encode(None))

    def _write_sequence(self, job: RenderJob, target: Path) -> None:
        top = top_items(job.timeline)
        writer = imageseq.FrameWriter(job.codec, job.width, job.height, job.rate)
        for index, frame in enumerate(range(job.mark_in, job.mark_out + 1)):
            path = target / imageseq.frame_name(job.name, frame, job.fmt.extension)
            writer.write(self._picture(job, frame, top), index, path)
            self._pace(job, index)


class _Cancelled(Exception):
    pass


def _tone(first: int, end: int, origin: int) -> av.AudioFrame:
    """Stereo s16 samples `first..end-1` of a tone on the timeline clock."""
    t = np.arange(first, end, dtype=np.float64) / SAMPLE_RATE
    mono = (0.25 * 32767 * np.sin(2 * math.pi * TONE_HZ * t)).astype(np.int16)
    packed = np.repeat(mono, CHANNELS).reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(packed, format="s16", layout="stereo")
    frame.sample_rate = SAMPLE_RATE
    frame.pts = first - origin
    frame.time_base = Fraction(1, SAMPLE_RATE)
    return frame


av.logging.set_level(av.logging.ERROR)  # FFmpeg's chatter would drown the farm's own logs
