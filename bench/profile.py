"""Sum py-spy's raw collapsed stacks (``bench.run --profile DIR``) into the functions that cost the most.

python -m bench.profile var/profile/create-api-*.txt --top 25
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>[^ ]+) \((?P<file>[^:]+)(?::\d+)?\)$")


def frame_name(frame: str) -> str:
    """``func (path/to/module.py:12)`` -> ``module.py:func``; anything else as it is."""
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    file = match.group("file")
    short = "/".join(Path(file).parts[-2:]) if "site-packages" not in file else Path(file).parts[-2]
    return f"{short}:{match.group('func')}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", type=Path, nargs="+")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for path in args.files:
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            n = int(count)
            frames = [frame_name(f) for f in stack.split(";") if f.strip()]
            # py-spy marks an idle thread's sample with no frames of ours; skip process/thread labels
            frames = [f for f in frames if not f.startswith(("process ", "thread "))]
            if not frames:
                continue
            total += n
            own[frames[-1]] += n
            for name in set(frames):
                inclusive[name] += n
    print(f"{total} samples")
    print("\nself time")
    for name, n in own.most_common(args.top):
        print(f"  {100 * n / total:5.1f}%  {name}")
    print("\ninclusive time")
    for name, n in inclusive.most_common(args.top):
        print(f"  {100 * n / total:5.1f}%  {name}")


if __name__ == "__main__":
    main()
