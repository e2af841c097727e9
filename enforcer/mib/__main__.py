"""``python -m enforcer.mib build [--check]``: compile mibs/ into enforcer/mib/index.json
(``--check``: exit 1 if the committed index differs from a fresh build)."""

from __future__ import annotations

import sys

from enforcer.errors import MibError
from enforcer.mib.build import INDEX_PATH, build, render


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "build" or any(a != "--check" for a in argv[1:]):
        print("usage: python -m enforcer.mib build [--check]", file=sys.stderr)
        return 2
    try:
        text = render(build())
    except MibError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if "--check" in argv:
        if INDEX_PATH.read_text() != text:
            print(f"{INDEX_PATH} is stale: run python -m enforcer.mib build", file=sys.stderr)
            return 1
        return 0
    INDEX_PATH.write_text(text)
    print(f"wrote {INDEX_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
