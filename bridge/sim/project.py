"""Simulated `Project`: timelines, settings and the whole render page."""

from __future__ import annotations

import copy
import uuid
from typing import Any

from bridge.sim import formats
from bridge.sim import state as S
from bridge.sim.cost import RenderCost
from bridge.sim.handles import Handle, put
from bridge.sim.library import Address
from bridge.sim.mediapool import MediaPool
from bridge.sim.renderer import RenderJob, frame_rate
from bridge.sim.timeline import Timeline

PROJECT_SETTINGS = (
    "timelineFrameRate",
    "timelineResolutionWidth",
    "timelineResolutionHeight",
    "timelinePlaybackFrameRate",
)
QUALITY_WORDS = ("Least", "Low", "Medium", "High", "Best")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# Every key of the stub's RenderSettings, with the values Resolve accepts for it.
RENDER_SETTING_CHECKS: dict[str, Any] = {
    "SelectAllFrames": lambda v: isinstance(v, bool),
    "MarkIn": lambda v: _is_int(v) and v >= 0,
    "MarkOut": lambda v: _is_int(v) and v >= 0,
    "TargetDir": lambda v: isinstance(v, str),
    "CustomName": lambda v: isinstance(v, str) and "/" not in v and "\\" not in v,
    "UniqueFilenameStyle": lambda v: v in (0, 1) and not isinstance(v, bool),
    "ExportVideo": lambda v: isinstance(v, bool),
    "ExportAudio": lambda v: isinstance(v, bool),
    "FormatWidth": lambda v: _is_int(v) and 0 < v <= 16384,
    "FormatHeight": lambda v: _is_int(v) and 0 < v <= 16384,
    "FrameRate": lambda v: _is_number(v) and 0 < v <= 240,
    "PixelAspectRatio": lambda v: v in ("16_9", "4_3", "square", "cinemascope"),
    "VideoQuality": lambda v: (_is_int(v) and v >= 0) or v in QUALITY_WORDS,
    "AudioCodec": lambda v: isinstance(v, str) and v.lower() in ("aac", "lpcm", "pcm", "linear pcm"),
    "AudioBitDepth": lambda v: v in (16, 24, 32) and not isinstance(v, bool),
    "AudioSampleRate": lambda v: v in (44100, 48000, 96000) and not isinstance(v, bool),
    "ColorSpaceTag": lambda v: isinstance(v, str),
    "GammaTag": lambda v: isinstance(v, str),
    "ExportAlpha": lambda v: isinstance(v, bool),
    "EncodingProfile": lambda v: isinstance(v, str),
    "MultiPassEncode": lambda v: isinstance(v, bool),
    "AlphaMode": lambda v: v in (0, 1) and not isinstance(v, bool),
    "NetworkOptimization": lambda v: isinstance(v, bool),
    "ClipStartFrame": lambda v: _is_int(v) and v >= 0,
    "TimelineStartTimecode": lambda v: isinstance(v, str) and len(v.replace(";", ":").split(":")) == 4,
    "ReplaceExistingFilesInPlace": lambda v: isinstance(v, bool),
    "ExportSubtitle": lambda v: isinstance(v, bool),
    "SubtitleFormat": lambda v: v in ("BurnIn", "EmbeddedCaptions", "SeparateFile"),
}

BUILTIN_PRESETS: dict[str, dict[str, Any]] = {
    "H.264 Master": {"format": "mp4", "codec": "H264", "settings": {"AudioCodec": "aac"}},
    "YouTube - 1080p": {
        "format": "mp4",
        "codec": "H264",
        "settings": {"AudioCodec": "aac", "FormatWidth": 1920, "FormatHeight": 1080},
    },
    "ProRes 422 HQ": {"format": "mov", "codec": "ProRes422HQ", "settings": {}},
    "DNxHR HQ MXF": {"format": "mxf_op1a", "codec": "DNxHRHQ", "settings": {}},
    # The Deliver page's "Audio Only" tile: it turns video off, and it stays off for whatever
    # is rendered next until someone turns it on again.
    "Audio Only": {"format": "mov", "codec": "ProRes422HQ", "settings": {"ExportVideo": False, "AudioCodec": "lpcm"}},
}
# Settings that only some codecs or formats accept: changing format/codec drops them, as
# Resolve greys them out; every other setting stays on the page.
CODEC_ONLY = {"EncodingProfile": ("H264", "H265"), "MultiPassEncode": ("H264", "H265")}
FORMAT_ONLY = {"NetworkOptimization": ("mov", "mp4")}


class Project(Handle):
    """A simulated project, open on one simulated host."""

    def _address(self, data: dict[str, Any]) -> Address:
        return self._project_address(data)

    def GetUniqueId(self) -> str:
        return self._pid

    def GetName(self) -> str:
        return str(self._get()["name"])

    def SetName(self, projectName: str) -> bool:
        def rename(data: dict[str, Any]) -> bool:
            projects = S.database(data, self._state.database)["projects"].values()
            if not projectName or any(p["name"] == projectName and p["id"] != self._pid for p in projects):
                return False
            self._project_of(data)["name"] = projectName
            return True

        return self._state.library_for(self._pid).update(rename)

    def GetMediaPool(self) -> MediaPool:
        return MediaPool(self._state, self._pid)

    # --- timelines ---------------------------------------------------------------------

    def GetTimelineCount(self) -> int:
        return len(self._get()["timelines"])

    def GetTimelineByIndex(self, idx: int) -> Timeline | None:
        timelines = self._get()["timelines"]
        if not _is_int(idx) or not 1 <= idx <= len(timelines):
            return None  # 1-based, as in Resolve
        return Timeline(self._state, self._pid, timelines[idx - 1]["id"])

    def GetCurrentTimeline(self) -> Timeline | None:
        timelines = self._get()["timelines"]
        current = self._state.timeline_ids.get(self._pid)
        if current is None or all(t["id"] != current for t in timelines):
            if not timelines:
                return None
            current = self._state.timeline_ids[self._pid] = timelines[0]["id"]
        return Timeline(self._state, self._pid, current)

    def SetCurrentTimeline(self, timeline: Timeline) -> bool:
        if not isinstance(timeline, Timeline) or all(
            t["id"] != timeline.GetUniqueId() for t in self._get()["timelines"]
        ):
            return False
        self._state.timeline_ids[self._pid] = timeline.GetUniqueId()
        return True

    # --- settings ------------------------------------------------------------------------

    def GetSetting(self, settingName: str = "") -> Any:
        settings = dict(self._get()["settings"])
        return settings if not settingName else settings.get(settingName, "")

    def SetSetting(self, settingName: str, settingValue: str) -> bool:
        if settingName not in PROJECT_SETTINGS or not str(settingValue).replace(".", "", 1).isdigit():
            return False
        return self._change(put("settings", settingName, value=str(settingValue)))

    # --- render page ---------------------------------------------------------------------

    def _render(self) -> S.ProjectRenderState:
        return self._state.render_state(self._pid)

    def GetRenderFormats(self) -> dict[str, str]:
        return {f.display: f.key for f in formats.FORMATS}

    def GetRenderCodecs(self, renderFormat: str) -> dict[str, str]:
        fmt = formats.find(renderFormat)
        return {c.display: c.key for c in fmt.codecs} if fmt else {}

    def GetCurrentRenderFormatAndCodec(self) -> dict[str, str]:
        return {"format": self._render().format, "codec": self._render().codec}

    def SetCurrentRenderFormatAndCodec(self, format: str, codec: str) -> bool:
        """Change format and codec only: every other setting on the page stays as it was.

        Note: this is half of what makes the Deliver page sticky (see `SetRenderSettings`).
        """
        fmt = formats.find(format)
        if fmt is None or fmt.codec(codec) is None:
            return False
        render = self._render()
        render.format, render.codec = fmt.key, codec
        for key, codecs in CODEC_ONLY.items():
            if codec not in codecs:
                render.settings.pop(key, None)
        for key, keys in FORMAT_ONLY.items():
            if fmt.key not in keys:
                render.settings.pop(key, None)
        return True

    def GetCurrentRenderMode(self) -> int:
        return self._render().mode

    def SetCurrentRenderMode(self, renderMode: int) -> bool:
        if renderMode not in (0, 1) or isinstance(renderMode, bool):
            return False
        self._render().mode = renderMode
        return True

    def GetRenderResolutions(self, format: str | None = None, codec: str | None = None) -> list[dict[str, int]]:
        return [{"Width": w, "Height": h} for w, h in ((1280, 720), (1920, 1080), (3840, 2160))]

    def SetRenderSettings(self, settings: dict[str, Any]) -> bool:
        """Apply render settings; an unknown key or a bad value refuses the whole call.

        Note: only the keys given change. The rest of the page (an earlier job's settings, a
        loaded preset's) stays, per project, for every later job on this host, as in Resolve.
        """
        if not isinstance(settings, dict):
            return False
        render = self._render()
        fmt = formats.find(render.format)
        for key, value in settings.items():
            check = RENDER_SETTING_CHECKS.get(key)
            if check is None or not check(value):
                return False
            if key in CODEC_ONLY and render.codec not in CODEC_ONLY[key]:
                return False
            if key in FORMAT_ONLY and fmt is not None and fmt.key not in FORMAT_ONLY[key]:
                return False
        render.settings.update(settings)
        return True

    def _preset_table(self) -> dict[str, dict[str, Any]]:
        return {**BUILTIN_PRESETS, **self._state.library.read().get("render_presets", {})}

    def GetRenderPresetList(self) -> list[str]:
        return list(self._preset_table())

    def LoadRenderPreset(self, presetName: str) -> bool:
        """Replace the whole page (format, codec, every setting) with the preset's.

        Note: a preset is a complete Deliver page; settings it does not name return to
        Resolve's defaults (modelled as absent). What it sets persists for later jobs.
        """
        preset = self._preset_table().get(presetName)
        if preset is None:
            return False
        render = self._render()
        render.format, render.codec = preset["format"], preset["codec"]
        render.settings = {**copy.deepcopy(preset["settings"]), "PresetName": presetName}
        return True

    def SaveAsNewRenderPreset(self, presetName: str) -> bool:
        render = self._render()
        preset = {
            "format": render.format,
            "codec": render.codec,
            "settings": {k: v for k, v in render.settings.items() if k != "PresetName"},
        }

        def save(data: dict[str, Any]) -> bool:
            presets = data.setdefault("render_presets", {})
            if not presetName or presetName in presets or presetName in BUILTIN_PRESETS:
                return False
            presets[presetName] = preset
            return True

        return self._state.library.update(save)

    def DeleteRenderPreset(self, presetName: str) -> bool:
        return self._state.library.update(
            lambda data: data.setdefault("render_presets", {}).pop(presetName, None) is not None
        )

    def AddRenderJob(self) -> str:
        """Queue a job from the current settings; "" when they cannot make a job, as in Resolve."""
        render = self._render()
        timeline = self.GetCurrentTimeline()
        settings = dict(render.settings)
        if timeline is None or not settings.get("TargetDir"):
            return ""
        tl = copy.deepcopy(timeline._get())
        first, end = tl["start_frame"], tl["start_frame"] + tl["frames"]
        job_settings = {k: v for k, v in settings.items() if k != "PresetName"}
        if not settings.get("SelectAllFrames"):
            mark_in = settings.get("MarkIn", first)
            mark_out = settings.get("MarkOut", end - 1)
            if not first <= mark_in <= mark_out < end:
                return ""
        fmt = formats.find(render.format)
        codec = fmt.codec(render.codec) if fmt else None
        if fmt is None or codec is None:
            return ""
        merged = timeline.GetSetting()
        width = int(settings.get("FormatWidth", merged["timelineResolutionWidth"]))
        height = int(settings.get("FormatHeight", merged["timelineResolutionHeight"]))
        w, h = self._state.config.picture_size(width, height)
        rate = frame_rate(settings.get("FrameRate", merged["timelineFrameRate"]))
        job = RenderJob(
            str(uuid.uuid4()),
            tl,
            fmt,
            codec,
            {**job_settings, "PresetName": settings.get("PresetName", "Custom")},
            w,
            h,
            rate,
        )
        config = self._state.config
        job.cost = RenderCost.of(config.cost, tl, self._get()["clips"], config.host, job.job_id)
        render.jobs.append(job)
        return job.job_id

    def _job(self, key: str | int) -> RenderJob | None:
        jobs = self._render().jobs
        if isinstance(key, int):
            return jobs[key - 1] if 1 <= key <= len(jobs) else None
        return next((j for j in jobs if j.job_id == key), None)

    def DeleteRenderJob(self, jobId: str) -> bool:
        job = self._job(jobId)
        if job is None or job.status.state == "Rendering":
            return False
        self._render().jobs.remove(job)
        return True

    def DeleteRenderJobByIndex(self, idx: int) -> bool:
        job = self._job(idx)
        return job is not None and self.DeleteRenderJob(job.job_id)

    def DeleteAllRenderJobs(self) -> bool:
        if self._state.renderer.busy:
            return False
        self._render().jobs.clear()
        return True

    def GetRenderJobList(self) -> list[dict[str, Any]]:
        return [j.describe() for j in self._render().jobs]

    def GetRenderJobs(self) -> dict[int, dict[str, Any]]:
        return dict(enumerate(self.GetRenderJobList(), 1))

    def StartRendering(self, *args: Any, isInteractiveMode: bool = False) -> bool:
        """Start jobs: all of them, by ids, or by 1-based indices, in every form the API documents."""
        selection: list[Any] = list(args)
        if selection and isinstance(selection[-1], bool):
            selection.pop()  # isInteractiveMode: the simulator has no dialogs to show
        if len(selection) == 1 and isinstance(selection[0], list):
            selection = list(selection[0])
        if not selection:
            jobs = [j for j in self._render().jobs if j.status.state != "Rendering"]
        else:
            found = [self._job(key) for key in selection]
            if any(j is None for j in found):
                return False
            jobs = [j for j in found if j is not None]
        return self._state.renderer.start(jobs)

    def StopRendering(self) -> None:
        self._state.renderer.stop()

    def IsRenderingInProgress(self) -> bool:
        return self._state.renderer.busy

    def GetRenderJobStatus(self, jobId: str | int) -> dict[str, Any]:
        job = self._job(jobId)
        return job.status.as_resolve() if job else {}
