"""Command line: `python -m workbench sweep ...` and `python -m workbench runs ...` (`workbench.runs.__main__`)."""

import sys

from workbench.runs.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
