"""The README and the documentation pages point only at what the repository holds: every relative link
resolves to a file, every page is in the site's navigation, and no text leans on documents kept elsewhere.
(``mkdocs build --strict`` in CI checks the same and the anchors; this runs with the suite, without MkDocs.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
#: pages scripts/docs_hooks.py makes from repository files (README.md, CHANGELOG.md)
GENERATED = {"index.md", "changelog.md"}
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def _documents() -> list[Path]:
    return [ROOT / "README.md", ROOT / "CHANGELOG.md", ROOT / "bench" / "README.md", *sorted(DOCS.rglob("*.md"))]


def _links(path: Path) -> list[str]:
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    return [a or b for a, b in LINK.findall(text)]


@pytest.mark.parametrize("path", _documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path: Path) -> None:
    broken = []
    for link in _links(path):
        target = link.split("#", 1)[0]
        if not target or "://" in target or target.startswith("mailto:"):
            continue
        resolved = (path.parent / target).resolve()
        generated = resolved.parent == DOCS and resolved.name in GENERATED
        if not (resolved.exists() or generated):
            broken.append(link)
    assert broken == []


@pytest.mark.parametrize("path", _documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_reference_to_documents_outside_the_repository(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    for outside in ("../shared", "ARCHITECTURE.md", "PROTOCOL.md", "PROTOCOL B", "PROTOCOL Part", "reference/"):
        assert outside not in text, f"{path.name} mentions {outside!r}"


def _nav_pages(node: object) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [page for item in node for page in _nav_pages(item)]
    if isinstance(node, dict):
        return [page for value in node.values() for page in _nav_pages(value)]
    return []


def test_every_page_is_in_the_navigation_and_every_nav_entry_exists() -> None:
    class Loader(yaml.SafeLoader):  # mkdocs.yml may use !ENV / !!python tags: only the nav matters here
        pass

    Loader.add_multi_constructor("", lambda loader, suffix, node: None)
    nav = set(_nav_pages(yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=Loader)["nav"]))
    pages = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")}
    assert pages - nav == set()
    assert nav - pages - GENERATED == set()


def test_the_readme_is_a_front_page_with_the_two_set_up_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 150
    assert "    bash scripts/demo.sh\n" in readme and "    bash scripts/test.sh\n" in readme
