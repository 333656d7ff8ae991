"""The project's own reference (docs/API.md) names every endpoint and option, and no file of the
project points outside the repository."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tornado.routing import PathMatches
from tornado.web import Application

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = (ROOT / "docs" / "API.md").read_text()
# The folder beside the repository that held the contract while the project was being built.
OUTSIDE = "../" + "shared"


def test_every_route_is_in_the_reference(app: Application) -> None:
    routes = [rule.matcher.regex.pattern for rule in app.wildcard_router.rules
              if isinstance(rule.matcher, PathMatches)]
    names = {match.group(1) for pattern in routes
             if (match := re.match(r"/progress/(\w+)", pattern))}
    assert {"create", "update", "show", "render", "status", "poll", "delete", "health"} <= names
    for name in names:
        assert f"`{name}" in REFERENCE, name


def test_every_option_is_in_the_reference() -> None:
    result = subprocess.run([sys.executable, "-m", "tornado_progress", "--help"],
                            capture_output=True, text=True, check=True)
    options = set(re.findall(r"(--[a-z][a-z-]+)", result.stdout)) - {"--help"}
    assert len(options) > 20
    for option in options:
        assert f"`{option}" in REFERENCE, option


def test_no_file_points_outside_the_repository() -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    for name in tracked:
        path = ROOT / name
        if path.suffix in {".py", ".md", ".html", ".js", ".css", ".cfg", ".toml", ""} and \
                path.is_file():
            assert OUTSIDE not in path.read_text(errors="replace"), name


def test_the_readmes_client_examples_are_the_tested_scripts() -> None:
    """The README shows docs/examples/*.py (which tests/test_client.py runs) word for word."""
    readme = (ROOT / "README.md").read_text()
    for script in sorted((ROOT / "docs" / "examples").glob("*.py")):
        text = script.read_text()
        code = text[text.index('"""', 3) + 3:].strip("\n")  # after the module docstring
        assert code in readme, script.name
