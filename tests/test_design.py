"""The import walls of docs/design.md hold: each wall's grep prints nothing.

The walls are read from the "Import walls" section of docs/design.md: each command in its
```bash block, named by the comment line above it, runs from the repository root. A command
prints the lines that break its wall, so any output fails the test. The commands pass grep's
``-s``, so files that do not exist (yet) are skipped rather than reported.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DESIGN = ROOT / "docs" / "design.md"


def import_walls() -> list[tuple[str, str]]:
    """(name, command) for each wall in docs/design.md's "Import walls" section."""
    section = DESIGN.read_text().split("## Import walls", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"^```bash\n(.*?)^```", section, flags=re.MULTILINE | re.DOTALL).group(1)
    walls, name = [], None
    for line in block.splitlines():
        if line.startswith("#"):
            name = line.lstrip("# ").strip()
        elif line.strip():
            walls.append((name or line, line))
    return walls


WALLS = import_walls()


def test_design_lists_the_walls():
    assert len(WALLS) >= 10
    names = " ".join(name for name, _ in WALLS)
    for part in ("search/", "replay.py", "targets.py", "actor.py", "learner.py", "reanalyze.py", "threading"):
        assert part in names, f"docs/design.md lost the wall about {part}"


@pytest.mark.skipif(shutil.which("grep") is None, reason="needs grep")
@pytest.mark.parametrize("command", [command for _, command in WALLS], ids=[name for name, _ in WALLS])
def test_import_wall_holds(command):
    done = subprocess.run(["bash", "-c", command], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert "invalid" not in done.stderr and "unrecognized" not in done.stderr, done.stderr
    assert done.stdout == "", f"wall broken:\n{done.stdout}"


def test_a_wall_catches_a_breach(tmp_path):
    """The search wall's pattern flags a torch import and a sibling-module import, not search/'s own."""
    command = next(command for name, command in WALLS if name.startswith("search/"))
    search = tmp_path / "muzero_agents" / "search"
    search.mkdir(parents=True)
    (search / "bad.py").write_text(
        "from muzero_agents.search._tree import x\nimport torch.nn as nn\nfrom muzero_agents.policies import P\n"
    )
    done = subprocess.run(["bash", "-c", command], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.stdout.count("bad.py") == 2 and "_tree" not in done.stdout
