"""docs/parameters.md is what `python -m mmchat_ros.tools.paramdoc --markdown` writes from the parameters the nodes
declare and config/graph.yaml now: a parameter added, removed or re-described without regenerating it fails here."""
import difflib
from pathlib import Path

from mmchat_ros.core.launch_graph import load_graph
from mmchat_ros.tools.paramdoc import render_markdown

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "parameters.md"
REGENERATE = "python -m mmchat_ros.tools.paramdoc --markdown > docs/parameters.md"


def test_parameter_reference_is_current():
    expected = render_markdown(load_graph())
    actual = REFERENCE.read_text() if REFERENCE.exists() else ""
    diff = "".join(difflib.unified_diff(actual.splitlines(True), expected.splitlines(True), "docs/parameters.md",
                                        "declared now", n=0))
    assert actual == expected, f"docs/parameters.md is out of date; run `{REGENERATE}`:\n{diff[:4000]}"

