"""Image sequences as the farm plans and checks them: Resolve's file names, and what a folder holds.

Resolve writes an image sequence as one file per timeline frame, named after the render's
custom name and the frame number zero-padded to eight digits: `Demo_Main_00086400.tif`
(the simulator does the same, `bridge.sim.imageseq`). The farm renders a sequence into a
folder of its own (`<output_dir>/<output_name>/`); each piece renders into a hidden folder
of its attempt inside it (`.<job>.g<generation>.<attempt>/`, on the same file system, so
moving a frame into place is an atomic rename) and moves its frames out only while it holds
the piece's lock (`tasks.imageseq`).
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict

DIGITS = 8  # Resolve pads a sequence's frame numbers to eight digits
ATTEMPT_PREFIX = "."  # attempt folders are hidden: nothing that lists the sequence sees them


class Sequence(BaseModel):
    """One image sequence of a render job: its folder, its name, its extension and its frames.

    Note: `name` is what Resolve is given as the render's custom name; each frame's file is
    `<name>_<frame:08d>.<extension>` in `folder`.
    """

    model_config = ConfigDict(frozen=True)

    folder: str
    name: str
    extension: str
    start: int
    end: int

    @property
    def count(self) -> int:
        return self.end - self.start + 1

    def file_name(self, frame: int) -> str:
        return f"{self.name}_{frame:0{DIGITS}d}.{self.extension}"

    def path(self, frame: int) -> Path:
        return Path(self.folder) / self.file_name(frame)

    @property
    def pattern(self) -> str:
        """The frames as one printf-style path (`.../Demo_Main_%08d.tif`), as FFmpeg and Nuke read sequences."""
        return str(Path(self.folder) / f"{self.name}_%0{DIGITS}d.{self.extension}")

    def frame_of(self, file_name: str) -> int | None:
        """The frame number a file of this sequence carries, however it is padded; None for any other file."""
        found = re.fullmatch(rf"{re.escape(self.name)}_(\d+)\.{re.escape(self.extension)}", file_name)
        return int(found.group(1)) if found else None

    def attempt_dir(self, job_id: str, generation: int, attempt: str) -> Path:
        """Where one attempt at one piece renders, before its frames are moved into place."""
        return Path(self.folder) / f"{ATTEMPT_PREFIX}{job_id}.g{generation}.{attempt}"

    def attempts_glob(self, job_id: str, generation: int | None = None) -> str:
        """A glob for the attempt folders of a job (of one generation, or of all)."""
        which = f"g{generation}" if generation is not None else "g*"
        return str(Path(glob.escape(self.folder)) / f"{ATTEMPT_PREFIX}{job_id}.{which}.*")


def files_digest(seq: Sequence, start: int, end: int) -> str:
    """Which files frames start..end of `seq` are now (device, inode, size of each): another render's differ.

    Note: a rename keeps a file's inode, so a piece's frames moved into place keep the
    digest it recorded until something replaces or rewrites them.
    """
    digest = hashlib.sha256()
    for frame in range(start, end + 1):
        found = os.stat(seq.path(frame))
        digest.update(f"{frame}:{found.st_dev}:{found.st_ino}:{found.st_size};".encode())
    return digest.hexdigest()


@dataclass
class Survey:
    """What a folder holds of a sequence: frames of its range missing, frames under more than one name,
    and frames of the same name outside its range (an earlier render's, left alone)."""

    sequence: Sequence
    found: int = 0
    missing: list[int] = field(default_factory=list)
    doubled: dict[int, list[str]] = field(default_factory=dict)
    outside: list[int] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.missing and not self.doubled

    def reason(self) -> str:
        """Why the folder does not hold the sequence exactly once (empty when it does)."""
        said = []
        if self.missing:
            said.append(f"{len(self.missing)} of {self.sequence.count} frame(s) missing: {frames_text(self.missing)}")
        for frame, names in sorted(self.doubled.items())[:3]:
            said.append(f"frame {frame} is there {len(names)} times ({', '.join(sorted(names))})")
        if len(self.doubled) > 3:
            said.append(f"and {len(self.doubled) - 3} more frame(s) under two names")
        return "; ".join(said)


def survey(sequence: Sequence, names: Iterable[str]) -> Survey:
    """Compare the file names of a folder with the sequence: every frame of its range exactly once."""
    seen: dict[int, list[str]] = {}
    for name in names:
        frame = sequence.frame_of(name)
        if frame is not None:
            seen.setdefault(frame, []).append(name)
    inside = range(sequence.start, sequence.end + 1)
    return Survey(
        sequence,
        found=sum(1 for frame in seen if frame in inside),
        missing=[frame for frame in inside if frame not in seen],
        doubled={frame: names for frame, names in seen.items() if len(names) > 1 and frame in inside},
        outside=sorted(frame for frame in seen if frame not in inside),
    )


def frames_text(frames: list[int], shown: int = 4) -> str:
    """Frame numbers as runs, a few of them: "86400..86402, 86410 and 2 more run(s)"."""
    runs: list[tuple[int, int]] = []
    for frame in sorted(frames):
        if runs and frame == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], frame)
        else:
            runs.append((frame, frame))
    text = ", ".join(f"{a}..{b}" if a != b else str(a) for a, b in runs[:shown])
    return text + (f" and {len(runs) - shown} more run(s)" if len(runs) > shown else "")
