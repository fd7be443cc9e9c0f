"""`python -m orchestrator.cli`: what the `resolve-farm` script runs."""

import sys

from orchestrator.cli import main

sys.exit(main())
