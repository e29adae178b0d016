"""``python -m benchmarks``: run the benchmark harness (``--help`` for its options)."""

import sys

from benchmarks.harness import main

sys.exit(main())
