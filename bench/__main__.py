"""``python -m bench``: the same as ``custos-bench``."""

import sys

from bench.cli import main

sys.exit(main())
