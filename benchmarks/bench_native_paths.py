"""Does nes-py's native path pay? Grayscale copies and batched RAM reads, timed in one run.

    python benchmarks/bench_native_paths.py

MarioEnv uses whichever of each pair this prints as faster.
"""

import timeit

import cv2

from mario_rl.env.core import MarioEnv
from mario_rl.env.ram import (
    COIN_DIGITS,
    LIVES,
    PLAYER_PAGE,
    PLAYER_X,
    PLAYER_Y_PIXEL,
    PLAYER_Y_VIEWPORT,
    POWER,
    SCORE_DIGITS,
    STAGE,
    TIME_DIGITS,
    WORLD,
)

REPEATS = 20_000


def per_call_us(function) -> float:
    return timeit.timeit(function, number=REPEATS) / REPEATS * 1e6


def main() -> None:
    env = MarioEnv("1-1", "right_only")
    env.reset(seed=0)
    emulator, ram = env.emulator, env.ram
    single_bytes = [PLAYER_PAGE, PLAYER_X, PLAYER_Y_PIXEL, PLAYER_Y_VIEWPORT, POWER, LIVES]
    single_bytes += [STAGE, WORLD]
    specs = [*single_bytes, (TIME_DIGITS, 3, "digits"), (SCORE_DIGITS, 6, "digits")]
    specs.append((COIN_DIGITS, 2, "digits"))

    def numpy_reads() -> list[int]:
        values = ram[single_bytes].tolist()
        for start, length in ((TIME_DIGITS, 3), (SCORE_DIGITS, 6), (COIN_DIGITS, 2)):
            number = 0
            for digit in ram[start : start + length].tolist():
                number = number * 10 + digit
            values.append(number)
        return values

    assert numpy_reads() == emulator.ram_values(specs).tolist()
    timings = {
        "grayscale: native copy, observation('grayscale')": per_call_us(
            lambda: emulator.observation("grayscale")
        ),
        "grayscale: RGB copy + cv2.cvtColor": per_call_us(
            lambda: cv2.cvtColor(emulator.observation("rgb_array_contiguous"), cv2.COLOR_RGB2GRAY)
        ),
        "RAM: batched native ram_values (11 values)": per_call_us(
            lambda: emulator.ram_values(specs)
        ),
        "RAM: NumPy indexing of the RAM view (11 values)": per_call_us(numpy_reads),
    }
    for name, microseconds in timings.items():
        print(f"{name:<52} {microseconds:8.2f} us")
    env.close()


if __name__ == "__main__":
    main()
