"""Environment throughput in one run: raw emulator, pipeline in process, 1..N workers.

    python benchmarks/bench_env.py --frames 6000

is the same as `mario-rl bench env --frames 6000`; docs/throughput.md quotes its output.
"""

import sys

from mario_rl.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["bench", "env", *sys.argv[1:]]))
