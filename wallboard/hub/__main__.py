"""``python -m wallboard.hub hub|demo|record|replay ...``."""
import sys

from .commands import main

sys.exit(main())
