"""The README stays a page a user reads in minutes, and every relative link in the docs leads somewhere."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.paths import ROOT

README_MAX_LINES = 250
CODE_BLOCK = re.compile(r"```.*?```", re.S)


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", ROOT / "deploy" / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]


def heading_anchors(path: Path) -> set[str]:
    """GitHub's anchors of a file's headings: lower case, punctuation dropped, spaces to hyphens."""
    text = CODE_BLOCK.sub("", path.read_text(encoding="utf-8"))
    return {
        re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        for heading in re.findall(r"^#{1,6} (.+)$", text, flags=re.M)
    }


def broken_links(files: list[Path], root: Path = ROOT) -> list[str]:
    """Every relative link (outside code blocks) whose file or heading does not exist, by file under ``root``."""
    broken = []
    for path in files:
        text = CODE_BLOCK.sub("", path.read_text(encoding="utf-8"))
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue  # http:, https:, mailto:
            file_part, _, anchor = target.partition("#")
            destination = (path.parent / file_part).resolve() if file_part else path.resolve()
            if not destination.exists():
                broken.append(f"{path.relative_to(root)}: no file {target}")
            elif anchor and destination.suffix == ".md" and anchor not in heading_anchors(destination):
                broken.append(f"{path.relative_to(root)}: no heading {target}")
    return broken


def test_the_readme_is_short():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines: guides and notes belong in docs/"


def test_every_relative_link_resolves():
    assert broken_links(markdown_files()) == []


def test_the_link_check_sees_a_missing_file_and_a_missing_heading(tmp_path):
    page = tmp_path / "a.md"
    page.write_text("# Title\n\n[ok](#title) [gone](b.md) [no](#nothing) [web](https://x.org)\n\n```\n[code](c.md)\n```\n")
    assert broken_links([page], tmp_path) == ["a.md: no file b.md", "a.md: no heading #nothing"]
