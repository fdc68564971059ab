"""Where things are, for tests at any depth of tests/: the repository, the test fixtures, shared/."""

from __future__ import annotations

from pathlib import Path

#: The repository root (pyproject.toml, README.md, migrations/, the Dockerfile).
ROOT = Path(__file__).resolve().parents[2]

#: tests/fixtures: the notebook's data (seed_parity) and small price files (prices).
FIXTURES = ROOT / "tests" / "fixtures"

#: The data shared beside the checkout (large price files; tests needing them skip without it):
#: shared/ next to the repository, or the workplace's /work/shared for a clone made elsewhere.
SHARED = next((p for p in (ROOT.parent / "shared", Path("/work/shared")) if p.is_dir()), ROOT.parent / "shared")


def shared_file(relative: str) -> Path:
    """SHARED / `relative`; the calling test is skipped, saying why, when it is absent."""
    import pytest

    path = SHARED / relative
    if not path.is_file():
        pytest.skip(f"{path} is absent: the shared/ folder is not checked out beside the repository")
    return path
