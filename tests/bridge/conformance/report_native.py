"""Run the differential suite (native.py) and write docs/destinations/differential.json:

    uv run python tests/bridge/conformance/report_native.py [--data-dir DIR] [--only NATIVE ...]

Prints every difference; with --only, writes nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
if __name__ == "__main__":  # run as a script: make `conformance` importable as in the tests
    sys.path[:0] = [str(HERE.parent), str(HERE.parents[1])]

from conformance import harness, native  # noqa: E402
from conformance.report import installed_bridge  # noqa: E402

from sluice.bridge.catalog import Catalog  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, help="a data dir with the bridge installed")
    parser.add_argument("--only", nargs="*", help="these native types only (no file written)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/conformance-work/native"))
    args = parser.parse_args(argv)
    data_dir = args.data_dir or installed_bridge()
    catalog = Catalog.for_data_dir(data_dir)
    started = time.monotonic()
    results = native.run_native_suite(data_dir, catalog, args.work, harness.install_node_deps())
    if args.only:
        results = [r for r in results if native.NATIVE[r.slug] in args.only]
    elapsed = time.monotonic() - started
    kinds: Counter[str] = Counter()
    for result in results:
        if result.failed:
            kinds[f"{native.NATIVE[result.slug]} {result.differences[0].kind}"] += 1
            print(f"DIFFERS {native.case_key(result)}: {result.differences[0]}")
    summary = native.known_differences(results)
    print(f"{summary['cases']} cases, {summary['identical']} identical, in {elapsed:.1f} s")
    for kind, count in sorted(kinds.items()):
        print(f"  {kind}: {count}")
    if args.only:
        return 0
    native.DIFFERENTIAL_JSON.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    print(f"wrote {native.DIFFERENTIAL_JSON}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
