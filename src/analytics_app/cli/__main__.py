"""`python -m analytics_app.cli` runs the `analytics` command."""

from __future__ import annotations

import sys

from analytics_app.cli import main

sys.exit(main())
