"""The README tells the truth: its lifecycle diagram and its table of effects
are the transition table's, and its console session, run as written, shows
what it shows."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from workflows.lifecycle import effects_table, mermaid_diagram

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
_PROMPT = re.compile(r"^([a-z0-9_-]+)> (.*)$")


def test_readme_diagram_matches_transition_table() -> None:
    assert f"```mermaid\n{mermaid_diagram()}\n```" in README


def test_readme_effects_match_transition_table() -> None:
    assert f"\n{effects_table()}\n" in README


def _session() -> tuple[str, list[str]]:
    """The console session block: its command line and the lines it shows."""
    block = re.search(r"```text\n\$ (\.venv/bin/youhu console [^\n]*)\n(.*?)\n```", README,
                      re.S)
    assert block is not None, "the README's console session is missing"
    return block[1], block[2].splitlines()


def matches(expected: list[str], actual: list[str]) -> bool:
    """`expected` against `actual`, line by line: a line of only "…" stands
    for any number of lines, a line ending in "…" for any line it begins."""
    def at(e: int, a: int) -> bool:
        if e == len(expected):
            return a == len(actual)
        line = expected[e]
        if line.strip() == "…":
            return any(at(e + 1, k) for k in range(a, len(actual) + 1))
        if a == len(actual):
            return False
        fits = actual[a].startswith(line[:-1]) if line.endswith("…") else actual[a] == line
        return fits and at(e + 1, a + 1)
    return at(0, 0)


def test_the_matching_rules() -> None:
    assert matches(["a", "  …", "d"], ["a", "b", "c", "d"])
    assert matches(["a", "…", "b"], ["a", "b"])
    assert matches(["[photo] …"], ["[photo] /m/ab/abcd"])
    assert not matches(["a", "c"], ["a", "b", "c"])
    assert not matches(["a"], ["a", "b"])


def test_readme_console_session_runs_as_written(tmp_path: Path) -> None:
    command, shown = _session()
    argv = command.split()
    assert argv[:2] == [".venv/bin/youhu", "console"] and argv[-2] == "<"
    inputs = [m[2] for line in shown if (m := _PROMPT.match(line))]
    script = (ROOT / argv[-1]).read_text(encoding="utf-8")
    assert script.splitlines() == inputs  # the file the README pipes in is the session shown
    env = {**os.environ, "YOUHU_DATABASE__URL": f"sqlite:///{tmp_path / 'youhu.db'}",
           "YOUHU_MEDIA__DIR": str(tmp_path / "media")}
    env.pop("YOUHU_CONFIG", None)
    subprocess.run([sys.executable, "-m", "bot.cli", "init", "--org", "examples/org.yaml",
                    "--catalog", "examples/catalog.yaml"], cwd=ROOT, env=env, check=True,
                   capture_output=True, timeout=120)
    done = subprocess.run([sys.executable, "-m", "bot.cli", *argv[1:-2]], input=script,
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    actual = done.stdout.splitlines()
    assert matches(shown, actual), "\n".join(actual)
