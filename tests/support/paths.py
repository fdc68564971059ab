"""Where things are, for tests at any depth of tests/: the repository, the test fixtures, shared/."""

from __future__ import annotations

from pathlib import Path

#: The repository root (pyproject.toml, README.md, migrations/, the Dockerfile).
ROOT = Path(__file__).resolve().parents[2]

#: tests/fixtures: the notebook's data (seed_parity) and small price files (prices).
FIXTURES = ROOT / "tests" / "fixtures"

#: The data shared beside the checkout (large price files; tests needing them skip without it).
SHARED = ROOT.parent / "shared"
