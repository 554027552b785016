"""The README's lifecycle diagram is the transition table's."""

from pathlib import Path

from workflows.lifecycle import mermaid_diagram


def test_readme_diagram_matches_transition_table() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    assert f"```mermaid\n{mermaid_diagram()}\n```" in readme
