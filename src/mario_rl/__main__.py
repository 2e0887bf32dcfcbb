"""`python -m mario_rl` is the `mario-rl` command."""

import sys

from mario_rl.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
