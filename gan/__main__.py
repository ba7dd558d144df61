"""`python -m gan ...` and the `gan` script: the command line of gan.cli."""

import sys

from gan.cli import main

if __name__ == "__main__":
    sys.exit(main())
