"""``python -m cra``: see :mod:`cra.cli`."""

import sys

from cra.cli import main

if __name__ == "__main__":
    sys.exit(main())
