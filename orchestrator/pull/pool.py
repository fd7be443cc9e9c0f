"""The frames of a pulled render that no piece has taken yet: the render kind's run-time state on its record."""

from __future__ import annotations

from pydantic import BaseModel

from orchestrator.pull.costs import Steps, frames_for, work


class FramePool(BaseModel):
    """A render's frames that no piece has taken yet: each free node takes the next range.

    Note: pieces of a pulled render are cut when a node claims them (`PulledRender.on_claim`),
    sized from that node's speed (`orchestrator.pull.sizing`); until then a piece is `open`
    (no range).
    """

    start: int
    end: int
    next: int  # the first frame no piece has taken
    made: int = 0  # pieces cut so far, named "segment <n>"
    open_pieces: int = 1  # how many open pieces wait in the queue at once (one per node that could take one)
    target_seconds: float  # how long a piece should take, far from the end
    longest_seconds: float = float("inf")  # no piece expected to take longer (half the render time limit)
    start_seconds: float  # what starting one render costs on Resolve, as far as the farm knows
    start_measured: bool = True  # False: `start_seconds` is the setting's guess until a piece reports one
    min_frames: int  # no piece shorter, unless that is all that is left
    speed_key: str  # codec and picture size: speeds are remembered per key
    costs: Steps = ()  # what each frame costs to render, as far as the farm knows (`orchestrator.pull.costs`)
    reserve: float = 0.0  # work the first round leaves to a last one, on an unsteady farm (`pull.sizing`)
    work_dir: str
    extension: str

    @property
    def remaining(self) -> int:
        return max(0, self.end - self.next + 1)

    @property
    def count(self) -> int:
        return self.end - self.start + 1

    def work(self, start: int, end: int) -> float:
        """What frames start..end cost to render (`orchestrator.pull.costs`): their count when all are alike."""
        return work(self.costs, start, end)

    def frames_for(self, amount: float) -> int:
        """How many of the frames left, from the next, make `amount` of work."""
        return frames_for(self.costs, self.next, self.end, amount)
