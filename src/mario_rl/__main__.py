"""`python -m mario_rl` is the `mario-rl` command."""

import sys

from mario_rl.cli import main

sys.exit(main())
