"""Frame numbers drawn into pictures so that any rendered file can be read back exactly.

Each simulated frame carries its timeline frame number as a grid of large black and white
blocks in the top band of the picture: 24 bits of frame number and an 8-bit check. The
blocks are big enough to survive 4:2:0 chroma subsampling and lossy codecs at the
simulator's smallest picture size, so a test (or the stitcher's verification) can decode
a file and know exactly which frames it holds, in which order.
"""

from __future__ import annotations

import numpy as np

COLUMNS = 16
ROWS = 2
BITS = COLUMNS * ROWS
BAND = 0.4  # share of the picture height taken by the code
BLACK = 16
WHITE = 235
MAX_FRAME = (1 << 24) - 1


def _check(frame: int) -> int:
    return ((frame & 0xFF) + ((frame >> 8) & 0xFF) + ((frame >> 16) & 0xFF)) & 0xFF ^ 0xA5


def _bits(frame: int) -> list[int]:
    word = frame | (_check(frame) << 24)
    return [(word >> i) & 1 for i in range(BITS)]


def _cells(width: int, height: int) -> list[tuple[int, int, int, int]]:
    band = int(height * BAND)
    cells = []
    for row in range(ROWS):
        for col in range(COLUMNS):
            x0 = col * width // COLUMNS
            x1 = (col + 1) * width // COLUMNS
            y0 = row * band // ROWS
            y1 = (row + 1) * band // ROWS
            cells.append((x0, y0, x1, y1))
    return cells


def draw(frame: int, width: int, height: int, background: tuple[int, int, int]) -> np.ndarray:
    """An RGB picture of the given size holding `frame` in its code band."""
    if not 0 <= frame <= MAX_FRAME:
        raise ValueError(f"frame {frame} is outside 0..{MAX_FRAME}")
    picture = np.empty((height, width, 3), dtype=np.uint8)
    picture[:] = background
    for bit, (x0, y0, x1, y1) in zip(_bits(frame), _cells(width, height), strict=False):
        picture[y0:y1, x0:x1] = WHITE if bit else BLACK
    return picture


def read(picture: np.ndarray) -> int | None:
    """The frame number held by an RGB picture, or None when its code is unreadable."""
    height, width = picture.shape[:2]
    word = 0
    for i, (x0, y0, x1, y1) in enumerate(_cells(width, height)):
        # Sample the middle of each block: its edges bleed under chroma subsampling.
        mx, my = max(1, (x1 - x0) // 4), max(1, (y1 - y0) // 4)
        block = picture[y0 + my : y1 - my, x0 + mx : x1 - mx]
        if float(block.mean()) > (BLACK + WHITE) / 2:
            word |= 1 << i
    frame = word & MAX_FRAME
    return frame if (word >> 24) == _check(frame) else None


def read_file(path: str) -> list[int | None]:
    """Every frame number of a media file's first video stream, in decode order."""
    import av

    with av.open(path) as container:
        return [read(f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]
