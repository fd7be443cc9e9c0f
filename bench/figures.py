"""Writing a benchmark's latest figures into docs/benchmarks.md, between its own markers."""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def write_section(bench: str, title: str, report: str) -> None:
    """Replace the section of `bench` (e.g. "bench/farm.py") with `report`, or append it under `title`."""
    text = DOCS.read_text(encoding="utf-8")
    begin, end = f"<!-- {bench} begin -->", f"<!-- {bench} end -->"
    block = f"{begin}\n{report}\n{end}"
    if begin in text:
        text = re.sub(re.escape(begin) + r".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text += f"\n## {title}\n\n{block}\n"
    DOCS.write_text(text, encoding="utf-8")
