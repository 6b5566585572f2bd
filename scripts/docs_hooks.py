"""MkDocs hooks (mkdocs.yml ``hooks:``): pages whose text lives elsewhere in the repository, kept in one place.

- ``benchmarks.md`` is its own short introduction followed by ``bench/README.md`` (what the benchmark runs
  write and the bench developers keep), with the README's pictures served from ``bench/`` beside it.
- ``changelog.md`` is ``CHANGELOG.md``.

So the site never holds a second, drifting copy of either.
"""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)/]+\.png)\)")


def on_files(files: Files, config) -> Files:
    """Adds the changelog page and the benchmark pictures to the site."""
    files.append(File.generated(config, "changelog.md", content=(ROOT / "CHANGELOG.md").read_text(encoding="utf-8")))
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
