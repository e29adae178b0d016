"""``python benchmarks/run.py``: the same as ``python -m benchmarks``."""

import sys
from pathlib import Path

if __name__ == "__main__" and not __package__:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import main

if __name__ == "__main__":
    sys.exit(main())
