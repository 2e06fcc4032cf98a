#!/usr/bin/env python3
"""Fails on an include that runs against the layering of src/ (README.md, Layout).

Levels, low to high (a folder may include its own level's folder and any lower level):
    common, protocol -> tokenizer, tasks -> runtime, model, dist -> io -> cloud -> collab -> rl, route -> eval -> cli
Folders on the same level may not include each other's headers, except the pairs in SAME_LEVEL_ALLOWED.
A `pure/` sub-folder (rl/pure, eval/pure) belongs to its parent's level but stays torch-free: it may
include only common, protocol, tokenizer, tasks and other pure folders (those the level order allows), and
no torch header.

Usage: check_layering.py SRC_DIR. Prints one line per violation,
    file:line includes X (LEVEL_A may not include LEVEL_B)
and exits 1 when there is any, 0 otherwise.
"""
import os
import re
import sys

LEVELS = [
    ["common", "protocol"],
    ["tokenizer", "tasks"],
    ["runtime", "model", "dist"],
    ["io"],
    ["cloud"],
    ["collab"],
    ["rl", "route"],
    ["eval"],
    ["cli"],
]
LEVEL_OF = {folder: i for i, level in enumerate(LEVELS) for folder in level}
# (includer, included) pairs on one level that may include each other anyway.
SAME_LEVEL_ALLOWED = {("protocol", "common")}
# What a pure/ folder may include besides other pure folders.
PURE_MAY_INCLUDE = {"common", "protocol", "tokenizer", "tasks"}
TORCH_HEADER = re.compile(r'#\s*include\s*<(torch|ATen|c10)/')
TORCH_FREE_COMMON_EXCEPTIONS = {"common/torch_pch.h"}
INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"')
SOURCE_SUFFIXES = (".h", ".hpp", ".cpp", ".cc", ".inc")


def unit_of(rel_path):
    """The layering unit of a path relative to src/: 'eval', 'eval/pure', …; None when not in a folder."""
    parts = rel_path.split("/")
    if len(parts) < 2:
        return None
    if len(parts) >= 3 and parts[1] == "pure":
        return parts[0] + "/pure"
    return parts[0]


def folder_of(unit):
    return unit.split("/")[0]


def is_pure(unit):
    return unit.endswith("/pure")


def violation(src_unit, dst_unit, included):
    """Why `src_unit` may not include `included` (in `dst_unit`), or None when it may."""
    src_folder, dst_folder = folder_of(src_unit), folder_of(dst_unit)
    if src_folder not in LEVEL_OF or dst_folder not in LEVEL_OF:
        unknown = src_folder if src_folder not in LEVEL_OF else dst_folder
        return f"{unknown} has no level: add it to README.md's Layout and tests/check_layering.py"
    if is_pure(src_unit):
        if included in TORCH_FREE_COMMON_EXCEPTIONS:
            return f"{src_unit} is torch-free and may not include {included}"
        if not is_pure(dst_unit) and dst_folder not in PURE_MAY_INCLUDE:
            return f"{src_unit} may not include {dst_unit}: pure folders include only " + \
                ", ".join(sorted(PURE_MAY_INCLUDE)) + " and other pure folders"
    if src_folder == dst_folder:
        return None
    src_level, dst_level = LEVEL_OF[src_folder], LEVEL_OF[dst_folder]
    if dst_level < src_level or (src_folder, dst_folder) in SAME_LEVEL_ALLOWED:
        return None
    relation = "a higher level" if dst_level > src_level else "the same level"
    return f"{src_unit} may not include {dst_unit}: {relation}"


def check(src_dir):
    problems = []
    for root, _, files in os.walk(src_dir):
        for name in sorted(files):
            if not name.endswith(SOURCE_SUFFIXES):
                continue
            path = os.path.join(root, name)
            rel = os.path.relpath(path, src_dir).replace(os.sep, "/")
            src_unit = unit_of(rel)
            if src_unit is None:
                continue
            with open(path, encoding="utf-8", errors="replace") as f:
                for lineno, line in enumerate(f, 1):
                    if is_pure(src_unit) and TORCH_HEADER.match(line.strip()):
                        problems.append(f"{rel}:{lineno} includes {line.strip()[len('#include '):]} "
                                        f"({src_unit} is torch-free and may not include torch headers)")
                        continue
                    m = INCLUDE.match(line)
                    if not m:
                        continue
                    included = m.group(1)
                    dst_unit = unit_of(included)
                    if dst_unit is None:  # a same-folder include without a folder name
                        continue
                    why = violation(src_unit, dst_unit, included)
                    if why:
                        problems.append(f"{rel}:{lineno} includes {included} ({why})")
    return sorted(problems)


def main(argv):
    if len(argv) != 2 or not os.path.isdir(argv[1]):
        print("usage: check_layering.py SRC_DIR", file=sys.stderr)
        return 2
    problems = check(argv[1])
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} include(s) against the layering (README.md, Layout)")
        return 1
    print("layering ok: " + " -> ".join(", ".join(level) for level in LEVELS))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
