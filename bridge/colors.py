"""The colour names Resolve accepts, as its API documents them (standard library only)."""

from __future__ import annotations

from typing import Literal, get_args

ClipColor = Literal[
    "Orange", "Apricot", "Yellow", "Lime", "Olive", "Green", "Teal", "Navy",
    "Blue", "Purple", "Violet", "Pink", "Tan", "Beige", "Brown", "Chocolate",
]  # fmt: skip
MarkerColor = Literal[
    "Blue", "Cyan", "Green", "Yellow", "Red", "Pink", "Purple", "Fuchsia",
    "Rose", "Lavender", "Sky", "Mint", "Lemon", "Sand", "Cocoa", "Cream",
]  # fmt: skip

CLIP_COLORS: frozenset[str] = frozenset(get_args(ClipColor))
MARKER_COLORS: frozenset[str] = frozenset(get_args(MarkerColor))  # flags use the same names
