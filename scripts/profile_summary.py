"""Summarise a py-spy profile (folded stacks) by module: where a worker's CPU goes.

    python scripts/profile_summary.py worker0.folded [--top 40]

Input is py-spy's `--format raw` output: one line per distinct stack, frames separated by `;`,
each `function (path:line)`, then the sample count. Prints, over all samples:

- inclusive share by package (faust, aiokafka, agents, streams, ...): samples whose stack passes
  through the package at least once, so nested calls are not counted twice;
- inclusive share by module (file), the top `--top`;
- self share by function: the frame on top of the stack, the top `--top`.

Samples whose top frame is an event loop's own driver (the worker's main loop, the consumer
thread's loop, an idle thread-pool worker) are counted apart and left out of the shares: py-spy
without `--native` cannot tell a loop waiting in `epoll` from the loop's own C code (uvloop), and
a native profile of a worker at 400/s showed them to be mostly waiting (15-20 % of all samples).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

FRAME = re.compile(r"^(?P<function>.*?) \((?P<path>[^()]*?)(?::\d+)?\)$")
LOOP_DRIVERS = {
    ("Worker.execute_from_commandline", "mode/worker.py"),
    ("ServiceThread._start_thread", "mode/threads.py"),
    ("_worker", "concurrent/futures/thread.py"),
}


def parse(lines: Iterable[str]) -> list[tuple[list[tuple[str, str]], int]]:
    """(frames as (function, module path), samples) per stack line."""
    stacks = []
    for line in lines:
        line = line.rstrip()
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = []
        for text in stack.split(";"):
            match = FRAME.match(text)
            if match:
                frames.append((match["function"], _module_path(match["path"])))
        stacks.append((frames, int(count)))
    return stacks


def _module_path(path: str) -> str:
    """`/x/site-packages/faust/streams.py` -> `faust/streams.py`; our own files stay relative."""
    for marker in ("site-packages/", "/lib/python3.11/"):
        if marker in path:
            return path.rpartition(marker)[2]
    return path.removeprefix(str(Path.cwd()) + "/")


def _package(module: str) -> str:
    return module.split("/")[0].removesuffix(".py")


def in_loop_driver(frames: list[tuple[str, str]]) -> bool:
    """The sample was in an event loop's own driver (waiting, or its C code), nowhere else."""
    return bool(frames) and frames[-1] in LOOP_DRIVERS


def shares(stacks: list[tuple[list[tuple[str, str]], int]]) -> tuple[Counter[str], ...]:
    packages: Counter[str] = Counter()
    modules: Counter[str] = Counter()
    selves: Counter[str] = Counter()
    for frames, count in stacks:
        for package in {_package(module) for _, module in frames}:
            packages[package] += count
        for module in {module for _, module in frames}:
            modules[module] += count
        if frames:
            function, module = frames[-1]
            selves[f"{function} ({module})"] += count
    return packages, modules, selves


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folded", type=Path)
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    every = parse(args.folded.read_text().splitlines())
    stacks = [(frames, count) for frames, count in every if not in_loop_driver(frames)]
    total = sum(count for _, count in stacks)
    if not total:
        print("no samples")
        return 1
    packages, modules, selves = shares(stacks)
    drivers = sum(count for _, count in every) - total
    print(
        f"samples: {total} (and {drivers} in the event loops' drivers, waiting or in C, left out)"
    )
    for title, counter, top in (
        ("inclusive share by package", packages, len(packages)),
        ("inclusive share by module", modules, args.top),
        ("self share by function", selves, args.top),
    ):
        print(f"\n== {title} ==")
        for name, count in counter.most_common(top):
            print(f"{100 * count / total:6.1f}%  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
