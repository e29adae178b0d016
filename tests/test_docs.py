"""The README's runnable examples run as written and print what their comments say."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

README = Path(__file__).parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
RUNNABLE = [b for b in BLOCKS if "anyio.run(main)" in b]


def test_the_readme_has_runnable_examples() -> None:
    assert RUNNABLE


@pytest.mark.parametrize("code", RUNNABLE)
def test_readme_example_runs_and_prints_what_it_says(code: str) -> None:
    # What a block prints is written as a comment on the print line, or as comment
    # lines right after the block that prints.
    expected: list[str] = []
    after_print = False
    for line in code.splitlines():
        stripped = line.strip()
        if "print(" in line:
            after_print = True
            if m := re.search(r"#\s*(.+)$", line):
                expected.append(m.group(1).strip())
        elif after_print and stripped.startswith("# "):
            expected.append(stripped[2:])
        elif stripped:
            after_print = False
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(README), "exec"), {"__name__": "readme"})  # noqa: S102
    assert out.getvalue().splitlines() == expected
