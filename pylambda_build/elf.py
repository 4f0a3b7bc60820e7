"""Reading what an ELF file needs from the system: shared libraries and glibc symbol versions.

Only the standard library, so the build runs where binutils are absent. The
files the layer ships are 64-bit little-endian (x86_64 and aarch64 both), and
only their dynamic section is read: DT_NEEDED for libraries, and the version
needs (DT_VERNEED) for the ``GLIBC_x.y`` symbol versions the dynamic linker
will insist on.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

from . import BuildError

_PT_LOAD, _PT_DYNAMIC = 1, 2
_DT_NEEDED, _DT_STRTAB, _DT_VERNEED, _DT_VERNEEDNUM = 1, 5, 0x6FFFFFFE, 0x6FFFFFFF
_GLIBC = re.compile(r"GLIBC_(\d+(?:\.\d+)+)")


def is_elf(path: Path) -> bool:
    with path.open("rb") as stream:
        return stream.read(4) == b"\x7fELF"


def machine(path: Path) -> int:
    """The ELF e_machine field: 62 for x86_64, 183 for aarch64."""
    header = path.read_bytes()[:20]
    return int(struct.unpack_from("<H", header, 0x12)[0])


def dependencies(path: Path) -> tuple[set[str], set[str]]:
    """(the DT_NEEDED library names, the symbol version names needed) of an ELF file."""
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise BuildError(f"{path} is not a 64-bit little-endian ELF file")
    (phoff,) = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    loads, dynamic = [], None
    for index in range(phnum):
        p_type, _, p_offset, p_vaddr, _, p_filesz = struct.unpack_from("<IIQQQQ", data, phoff + index * phentsize)
        if p_type == _PT_LOAD:
            loads.append((p_vaddr, p_offset, p_filesz))
        elif p_type == _PT_DYNAMIC:
            dynamic = (p_offset, p_filesz)
    if dynamic is None:
        return set(), set()  # statically linked: needs nothing at run time

    def offset_of(vaddr: int) -> int:
        for start, offset, size in loads:
            if start <= vaddr < start + size:
                return int(vaddr - start + offset)
        raise BuildError(f"{path}: address {vaddr:#x} is outside every loaded segment")

    def string(index: int) -> str:
        start = strtab + index
        return data[start : data.index(b"\0", start)].decode()

    tags: dict[int, list[int]] = {}
    for position in range(dynamic[0], dynamic[0] + dynamic[1], 16):
        tag, value = struct.unpack_from("<qQ", data, position)
        if tag == 0:  # DT_NULL ends the table
            break
        tags.setdefault(tag, []).append(value)
    strtab = offset_of(tags[_DT_STRTAB][0])
    needed = {string(value) for value in tags.get(_DT_NEEDED, [])}
    versions: set[str] = set()
    if _DT_VERNEED in tags:
        entry = offset_of(tags[_DT_VERNEED][0])
        for _ in range(tags[_DT_VERNEEDNUM][0]):
            _, count, _, aux_offset, next_offset = struct.unpack_from("<HHIII", data, entry)
            aux = entry + aux_offset
            for _ in range(count):
                _, _, _, name, next_aux = struct.unpack_from("<IHHII", data, aux)
                versions.add(string(name))
                aux += next_aux
            entry += next_offset
    return needed, versions


def glibc_needed(path: Path) -> tuple[int, ...] | None:
    """The newest GLIBC_x.y symbol version an ELF file needs, or None if it needs none."""
    found = [
        tuple(int(part) for part in m.group(1).split(".")) for v in dependencies(path)[1] if (m := _GLIBC.fullmatch(v))
    ]
    return max(found) if found else None
