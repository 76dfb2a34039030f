"""Every relative link in README.md and the examples' READMEs leads somewhere.

The site's own pages are checked by ``make docs`` (mkdocs --strict); the READMEs are not part
of the site, so their links are checked here: a link to a file or folder of the repository
must exist, a link to a page of the site must be a page in mkdocs.yml's navigation, and an
anchor into a page must match one of its headings.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\]\(([^)\s]+)\)")
READMES = [ROOT / "README.md", *sorted((ROOT / "examples").glob("**/README.md"))]


def nav_pages() -> set[str]:
    return set(re.findall(r":\s*(\S+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(), re.M))


def anchors(page: Path) -> set[str]:
    """The heading ids MkDocs and GitHub give a page (lower case, punctuation dropped)."""
    out = set()
    for heading in re.findall(r"^#+ (.+)$", page.read_text(), re.M):
        text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
        out.add(re.sub(r"\s+", "-", text))
    return out


@pytest.mark.parametrize("readme", READMES, ids=lambda p: str(p.relative_to(ROOT)))
def test_links(readme: Path) -> None:
    broken = []
    for target in LINK.findall(readme.read_text()):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        path, _, anchor = target.partition("#")
        file = (readme.parent / path).resolve()
        rel = file.relative_to(ROOT).as_posix() if file.is_relative_to(ROOT) else path
        if rel.startswith("docs/") and rel.removeprefix("docs/") in nav_pages():
            if file.exists() and anchor and anchor not in anchors(file):
                broken.append(target)
            continue  # a site page: the site build checks it (it may come from another branch)
        if not file.exists() or (anchor and file.suffix == ".md" and anchor not in anchors(file)):
            broken.append(target)
    assert not broken, f"{readme.relative_to(ROOT)}: {broken}"
