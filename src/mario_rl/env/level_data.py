"""Where each level ends, read from the game's own level data in the packaged ROM.

A death map marks the level's end, and the campaign's table gives how far along it an
agent got; for a level no agent has cleared yet, only the level data can say where that
end is. SMB stores each area as a list of 2-byte objects after a 2-byte header, ended by
0xFD: the first byte holds the object's column within its page (high nibble) and its row
(low nibble); bit 7 of the second byte moves on to the next page. Row 13 holds special
objects: with bit 6 of the second byte clear it sets the page (its 5 low bits), with it
set its 6 low bits say which one, among them the flagpole (1) and the castle's axe (2).
An area pointer's bits 6-5 are its type (water, ground, underground, castle) and its 5
low bits the index within that type. The tables that lead from a world and area number to
an area's objects sit together in the ROM, starting with the worlds' offsets into the
area pointers; they are found by the area pointers' own bytes. (The format as the SMBDIS
disassembly documents it, `docs/level-mechanics.md`; the decoding here is our own.)

Four levels have no flag in their first area: 1-2, 2-2, 4-2 and 7-2 leave it by a pipe
into an exit area with the flag. Where a pipe leads is in the area's enemy data (objects of
2 bytes, ended by 0xFF, except row 14's, 3 bytes: the destination's area pointer, then the
world it applies in (3 high bits) and the page it is entered at); the flag is the one in a
destination of the level's own world. All four lead to 1-1's ground area, entered at page
11 (x 2816 on), whose flag is at x 3161: the exit area's x goes on from its own start, not
from the first area's, so an x there is comparable with the flag but not with the first
area's x.

Mario's x at the flagpole is the pole's column x 16 - 7 (1-1: column 198, x 3161, as a
human finish measured it; an emulator check found the same on 17 levels). At a castle's
axe he is stopped about 11 px short of the axe tile's column x 16 (1-4 and 3-4 ended at
2245 against 2256).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from mario_rl.env.levels import parse_level

AREA_POINTERS = bytes.fromhex(
    "2529c02660" "282901276224" "352063" "2229412c61" "2a312662" "2e232d60" "3329012764" "30322165"
)  # fmt: skip
"""The area pointers of worlds 1-8 in the game's order, intro areas included: the bytes
the level tables are found by."""
WORLDS_WITH_INTRO = (1, 2, 4, 7)
"""Worlds whose stage 2 starts with a walk into a pipe, an area of its own, so that their
stages 2-4 are areas 3-5 (as gym-super-mario-bros' `decode_target` has it)."""
END_OF_AREA = 0xFD
END_OF_ENEMIES = 0xFF
PAGE_ROW = 0x0D
AREA_CHANGE_ROW = 0x0E
FLAGPOLE, AXE = 0x01, 0x02
FLAG_GRAB_OFFSET = -7
"""Mario's x when he grabs the pole, against the pole's column x 16 (1-1: 198 * 16 - 7)."""
PRG_START, PRG_BYTES, INES_HEADER = 0x8000, 0x8000, 16


@dataclass(frozen=True)
class LevelEnd:
    """Where a level ends: its flagpole (in its first area, or else in the exit area its
    pipe leads to), or in a castle the axe."""

    kind: str
    """"flag" or "axe"."""
    column: int
    """The object's tile column from its area's start."""
    exit_area: int | None = None
    """The area pointer of the exit area the flag is in, when it is not the first area."""

    @property
    def x(self) -> int:
        """Mario's x there: at the pole when he grabs it; a castle's axe tile's column x 16
        (he is stopped about 11 px before it)."""
        return self.column * 16 + (FLAG_GRAB_OFFSET if self.kind == "flag" else 0)


def rom_bytes() -> bytes:
    """The Super Mario Bros. ROM that gym-super-mario-bros ships."""
    from gym_super_mario_bros._roms.rom_path import smb1_rom_path

    return Path(smb1_rom_path()).read_bytes()


class LevelData:
    """The level tables of one ROM image."""

    def __init__(self, rom: bytes) -> None:
        self.prg = rom[INES_HEADER : INES_HEADER + PRG_BYTES]
        start = self.prg.find(AREA_POINTERS)
        if start < 8:
            raise ValueError("the ROM's area pointers were not found: not Super Mario Bros.")
        self.world_offsets = self.prg[start - 8 : start]
        self.area_pointers = self.prg[start : start + len(AREA_POINTERS)]
        # After them: the enemy data's 4 type offsets and 34 low and 34 high address
        # bytes, then the area data's 4 type offsets and its 34 low and 34 high bytes.
        enemies = start + len(AREA_POINTERS)
        self.enemy_type_offsets = self.prg[enemies : enemies + 4]
        self.enemy_low = self.prg[enemies + 4 : enemies + 4 + 34]
        self.enemy_high = self.prg[enemies + 4 + 34 : enemies + 4 + 68]
        tables = enemies + 4 + 2 * 34
        self.type_offsets = self.prg[tables : tables + 4]
        self.address_low = self.prg[tables + 4 : tables + 4 + 34]
        self.address_high = self.prg[tables + 4 + 34 : tables + 4 + 68]

    def area_pointer(self, world: int, stage: int) -> int:
        """The area pointer of a level's first area (world and stage from 1)."""
        area = stage - 1 + (world in WORLDS_WITH_INTRO and stage >= 2)
        return self.area_pointers[self.world_offsets[world - 1] + area]

    @staticmethod
    def _data_start(pointer: int, type_offsets: bytes, low: bytes, high: bytes) -> int:
        """Where in the PRG an area's data begins (its objects, or its enemies), from the
        area pointer's type (bits 6-5) and index (5 low bits) and that data's tables."""
        index = type_offsets[(pointer >> 5) & 3] + (pointer & 0x1F)
        return (low[index] | high[index] << 8) - PRG_START

    def objects(self, pointer: int) -> list[tuple[int, int, int]]:
        """An area's objects as (column from the area's start, row, second byte); the
        page-setting objects are applied, not listed."""
        tables = (self.type_offsets, self.address_low, self.address_high)
        address = self._data_start(pointer, *tables) + 2  # past the 2-byte header
        page, found = 0, []
        while self.prg[address] != END_OF_AREA:
            first, second = self.prg[address], self.prg[address + 1]
            address += 2
            column, row = first >> 4, first & 0x0F
            if second & 0x80:
                page += 1
            elif row == PAGE_ROW and not second & 0x40:
                page = second & 0x1F
                continue
            found.append((page * 16 + column, row, second))
        return found

    def exits(self, pointer: int) -> list[tuple[int, int]]:
        """Where an area's pipes lead, from its enemy data: (area pointer, world index)."""
        tables = (self.enemy_type_offsets, self.enemy_low, self.enemy_high)
        address = self._data_start(pointer, *tables)
        found = []
        while self.prg[address] != END_OF_ENEMIES:
            if self.prg[address] & 0x0F == AREA_CHANGE_ROW:
                found.append((self.prg[address + 1], self.prg[address + 2] >> 5))
                address += 3
            else:
                address += 2
        return found

    def area_end(self, pointer: int) -> LevelEnd | None:
        """The flagpole or axe in an area, or None when it has neither."""
        for column, row, second in self.objects(pointer):
            if row == PAGE_ROW and second & 0x40 and second & 0x3F in (FLAGPOLE, AXE):
                return LevelEnd("flag" if second & 0x3F == FLAGPOLE else "axe", column)
        return None

    def level_end(self, world: int, stage: int) -> LevelEnd | None:
        """The flagpole or axe in the level's first area, else the flag of an area its
        pipes lead to in its world; None when neither has one."""
        first = self.area_pointer(world, stage)
        end = self.area_end(first)
        if end is not None:
            return end
        for pointer, world_index in reversed(self.exits(first)):
            exit_end = self.area_end(pointer) if world_index == world - 1 else None
            if exit_end is not None and exit_end.kind == "flag":
                return LevelEnd("flag", exit_end.column, exit_area=pointer)
        return None


@functools.cache
def _packaged() -> LevelData:
    return LevelData(rom_bytes())


def level_end(level: str) -> LevelEnd | None:
    """Where `level` ends: its flag (in its exit area for 1-2, 2-2, 4-2 and 7-2) or its
    castle's axe; None for the full game."""
    parsed = parse_level(level)
    if parsed.is_full_game:
        return None
    return _packaged().level_end(parsed.world, parsed.stage)
