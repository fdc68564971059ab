"""`python -m forecaster`: the same command line as the `forecaster` script."""

from forecaster.cli import main

raise SystemExit(main())
