"""Console output is recorded line by line, can be turned off, and still reaches the terminal."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import api, run_python

SCRIPT = """
import sys, logging
import runyard
run = runyard.init(project="con", id="c1")
print("first line")
print("partial", end="")
print(" and the rest")
sys.stderr.write("an error line\\n")
logging.basicConfig(stream=sys.stderr)
logging.getLogger("x").warning("via logging")
print("no newline at the end", end="")
"""


def test_console_lines_are_recorded(tmp_path: Path, root: Path) -> None:
    proc = run_python(SCRIPT, tmp_path)
    assert "first line" in proc.stdout and "an error line" in proc.stderr  # still shown
    lines = [(s, t) for s, _, t in api(root).run("con/c1").console()]
    assert ("stdout", "first line") in lines
    assert ("stdout", "partial and the rest") in lines
    assert ("stderr", "an error line") in lines
    assert ("stderr", "WARNING:x:via logging") in lines
    assert ("stdout", "no newline at the end") in lines


def test_console_capture_can_be_turned_off(tmp_path: Path, root: Path) -> None:
    proc = run_python(SCRIPT, tmp_path, env={"RUNYARD_CONSOLE": "off"})
    assert "first line" in proc.stdout
    assert api(root).run("con/c1").console() == []
