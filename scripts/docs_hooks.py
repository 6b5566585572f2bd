"""MkDocs hooks (mkdocs.yml ``hooks:``): pages whose text lives elsewhere in the repository, kept in one place.

- ``benchmarks.md`` is its own short introduction followed by ``bench/README.md`` (what the benchmark runs
  write and the bench developers keep), with the README's pictures served from ``bench/`` beside it.
- ``changelog.md`` is ``CHANGELOG.md``.
- ``index.md``, the home page, is ``README.md`` with its links pointed into the site.

So the site never holds a second, drifting copy of either.
"""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)/]+\.png)\)")
_LINK = re.compile(r"\[([^\]]*)\]\(([^)#\s]+)(#[^)\s]*)?\)")
#: README links to repository files that are pages of the site under another name
_README_PAGES = {"bench/README.md": "benchmarks.md", "CHANGELOG.md": "changelog.md"}


def _readme_link(match: re.Match[str]) -> str:
    text, target, anchor = match.group(1), match.group(2), match.group(3) or ""
    if "://" in target:
        return match.group(0)
    if target.startswith("docs/"):
        return f"[{text}]({target.removeprefix('docs/')}{anchor})"
    if target in _README_PAGES:
        return f"[{text}]({_README_PAGES[target]}{anchor})"
    return text  # a repository file that is not a page (LICENSE): its name, no link


def on_files(files: Files, config) -> Files:
    """Adds the home page, the changelog page and the benchmark pictures to the site."""
    files.append(File.generated(config, "changelog.md", content=(ROOT / "CHANGELOG.md").read_text(encoding="utf-8")))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    files.append(File.generated(config, "index.md", content=_LINK.sub(_readme_link, readme)))
    for picture in sorted(BENCH.glob("*.png")):
        files.append(File.generated(config, f"bench/{picture.name}", abs_src_path=str(picture)))
    return files


def on_page_markdown(markdown: str, page, config, files: Files) -> str:
    """Appends ``bench/README.md`` (less its title) to the benchmarks page, pictures pointed at ``bench/``."""
    if page.file.src_uri != "benchmarks.md":
        return markdown
    text = (BENCH / "README.md").read_text(encoding="utf-8")
    body = text.split("\n", 1)[1] if text.startswith("# ") else text
    return markdown.rstrip("\n") + "\n\n" + _IMAGE.sub(r"![\1](bench/\2)", body)
