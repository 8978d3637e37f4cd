"""The README and docs/: the README a front door of at most ~150 lines, every link to a file or
heading that exists, every `nnisuite SUBCOMMAND` and `python -m MODULE` they name real."""

from __future__ import annotations

import importlib.util
import re

import pytest

from nnisuite.cli import BENCHMARKS, COMMANDS
from tests.helpers.paths import REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]*)(#[^)\s]*)?\)")


def anchor(heading: str) -> str:
    """GitHub's anchor of a markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return "#" + text.replace(" ", "-")


def test_the_readme_is_a_front_door():
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= 150, len(lines)
    for must in ("make demo", "make test", "nnisuite --help", "docs/guide.md"):
        assert any(must in line for line in lines), must


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_links_lead_somewhere(doc):
    text = doc.read_text()
    for target, fragment in LINK.findall(text):
        if target.startswith(("http://", "https://")):
            continue
        path = (doc.parent / target).resolve() if target else doc
        assert path.exists(), f"{doc.name}: {target} does not exist"
        if fragment and path.suffix == ".md":
            headings = [line.lstrip("#") for line in path.read_text().splitlines()]
            anchors = {
                anchor(h)
                for h, line in zip(headings, path.read_text().splitlines())
                if line.startswith("#")
            }
            assert fragment in anchors, f"{doc.name}: {target}{fragment} has no such heading"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_commands_named_exist(doc):
    text = doc.read_text()
    for sub, rest in re.findall(r"`nnisuite (\w+)( \w+)?", text):
        if sub.isupper():
            continue  # a placeholder: nnisuite SUBCOMMAND
        assert sub in COMMANDS, f"{doc.name}: nnisuite {sub}"
        if sub == "bench" and rest.strip() and not rest.strip().startswith("BENCHMARK"):
            assert rest.strip() in BENCHMARKS, f"{doc.name}: nnisuite bench{rest}"
    for module in set(re.findall(r"python3? -m ([\w.]+)", text)):
        if module in ("pip", "venv", "pytest") or module.isupper():
            continue  # not ours, or a placeholder: python -m MODULE
        assert importlib.util.find_spec(module) is not None, f"{doc.name}: python -m {module}"
