"""The documentation a user finds their way in: every relative link resolves, and the README stays a front door.

Links are checked as GitHub renders them: a path relative to the page, and an
``#anchor`` that must be the slug of a heading in the page it points to.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").glob("*.md"))
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6} (.+?)\s*$", re.MULTILINE)
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {slug(heading) for heading in HEADING.findall(FENCE.sub("", page.read_text()))}


def relative_links(page: Path) -> list[str]:
    return [link for link in LINK.findall(FENCE.sub("", page.read_text())) if not re.match(r"[a-z]+:", link)]


@pytest.mark.parametrize("page", [README, *PAGES], ids=lambda page: page.name)
def test_every_relative_link_resolves_to_a_file_and_heading(page: Path) -> None:
    broken = []
    for link in relative_links(page):
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.exists():
            broken.append(f"{link}: no such file")
        elif anchor and target.suffix == ".md" and anchor not in anchors(target):
            broken.append(f"{link}: no heading #{anchor} in {target.name}")
    assert not broken, broken


@pytest.mark.parametrize("page", [README, *PAGES], ids=lambda page: page.name)
def test_no_page_refers_to_an_issue_number(page: Path) -> None:
    """Pages say what changed and why, not which ticket asked for it."""
    assert not re.findall(r"\bissues?\s*#?\d+", page.read_text(), re.IGNORECASE)


def test_the_readme_is_a_front_door_that_links_every_page() -> None:
    text = README.read_text()
    assert len(text.encode()) <= 20_000
    assert len(PAGES) >= 4
    linked = {(README.parent / link.partition("#")[0]).resolve() for link in relative_links(README)}
    assert set(PAGES) <= linked, sorted(page.name for page in set(PAGES) - linked)
    assert "./dev invoke echo" in text and "./dev test" in text and "Layers:" in text
