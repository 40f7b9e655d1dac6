"""``python -m protocol export-schemas DIR``: write the JSON Schemas of every wire message."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from protocol.schemas import export


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m protocol", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    exporter = commands.add_parser("export-schemas", help="write <type>.schema.json files")
    exporter.add_argument("directory", type=Path, nargs="?", default=Path("protocol/schemas"))
    args = parser.parse_args(argv)
    for path in export(args.directory):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
