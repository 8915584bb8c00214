"""The benchmarks start as `make bench` starts them (`python bench/NAME.py`): as scripts,
whose folder comes first on the import path. A file there named like a standard module
(`email.py` once) hid it from every benchmark, and `make bench` failed on its first."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAKEFILE = (ROOT / "Makefile").read_text()
SCRIPTS = sorted(p for p in (ROOT / "bench").glob("*.py") if f"bench/{p.name}" in MAKEFILE)


def test_no_benchmark_file_hides_a_standard_module() -> None:
    assert len(SCRIPTS) >= 4
    hidden = {p.stem for p in (ROOT / "bench").glob("*.py")} & set(sys.stdlib_module_names)
    assert not hidden


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_each_benchmark_the_makefile_runs_starts_as_a_script(script: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(script), "--help"], capture_output=True, timeout=60, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
