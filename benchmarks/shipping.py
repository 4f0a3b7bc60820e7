"""How the benchmarks lay out a function as the managed runtime receives it, and how they write their results."""

from __future__ import annotations

import json
import os
import time
import zipfile
from pathlib import Path

from pylambda_build import layers


def as_sam_zip_unpacked(folder: Path, into: Path) -> Path:
    """``folder`` zipped as `sam build` zips a function (every entry dated 1980-01-01), then unpacked with those
    dates, as Lambda unpacks it into its read-only task root: the pycs in it no longer match their sources' times.
    Run it with PYTHONDONTWRITEBYTECODE=1, which stands for the read-only file system (the benchmarks run as root)."""
    archive = into / "function.zip"
    layers.write_zip(folder, archive)
    task = into / "sam-task"  # beside, never inside, a folder the caller laid out
    with zipfile.ZipFile(archive) as opened:
        for entry in opened.infolist():
            opened.extract(entry, task)
            stamp = time.mktime((*entry.date_time, 0, 0, -1))
            os.utime(task / entry.filename, (stamp, stamp))
    return task


def write_results(out: Path, name: str, text: str, document: object) -> None:
    """The Markdown table, printed and written, and the figures as JSON, into ``out``."""
    print(text)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.md").write_text(text + "\n")
    (out / f"{name}.json").write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
