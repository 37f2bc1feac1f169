"""The README is a front page and the reference lives in docs/: every relative link resolves
inside the repository, and nothing points at material outside it."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")


def test_the_readme_is_a_front_page():
    text = (ROOT / "README.md").read_text()
    assert len(text) <= 10_000, len(text)
    for command in ("diversity run --seeds 50", "python -m pytest"):  # the two quickstart commands
        assert command in text
    for page in ("runs-and-store", "motions", "environment-and-learning", "analysis", "performance"):
        assert f"docs/{page}.md" in text


def test_every_relative_link_resolves_inside_the_repository():
    dead = []
    for page in PAGES:
        for target in LINK.findall(page.read_text()):
            if re.match(r"[a-z]+:", target):  # http(s), mailto
                continue
            path = (page.parent / target).resolve()
            if not path.exists() or ROOT not in path.parents:
                dead.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not dead, dead


def test_no_page_refers_to_material_outside_the_repository():
    for page in PAGES:
        text = page.read_text()
        assert "../shared" not in text and "DESIGN.md" not in text, page.name
