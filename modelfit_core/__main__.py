"""``python -m modelfit_core``: the ``modelfit`` command line."""

import sys

from modelfit_core.tools.cli import main

sys.exit(main())
