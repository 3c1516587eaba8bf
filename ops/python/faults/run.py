"""Runs ops/faults scenarios: each module in scenarios/ with a `run(context) -> str` function (its figure line) and
a module docstring (what it shows). Prints one line per scenario: `PASS name: figure` or `FAIL name: why`.
Exit status 1 when any failed, 2 on bad usage."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
import scenarios  # noqa: E402

# The order a full run takes: the quick ones first, then those that hold a fault for tens of seconds.
ORDER = [
    "bad_ids",
    "big_body",
    "kill9_children",
    "outage_outcome",
    "denied_flood",
    "approval_flood",
    "slow_json_upstream",
    "session_flood",
    "slowloris",
    "progress_flood",
    "database_sigstop",
    "idle_transaction",
]


def available() -> dict[str, object]:
    found = {}
    for module in pkgutil.iter_modules(scenarios.__path__):
        if not module.name.startswith("_"):
            found[module.name] = importlib.import_module(f"scenarios.{module.name}")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(prog="ops/faults", description=__doc__.splitlines()[0])
    parser.add_argument("--tollgate", required=True, type=Path, help="the tollgate binary")
    parser.add_argument("--peers", required=True, type=Path, help="Tests/Peers")
    parser.add_argument("--keep", action="store_true", help="keep each scenario's directory")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("names", nargs="*", help="scenarios to run (default: all)")
    arguments = parser.parse_args()

    modules = available()
    ordered = [name for name in ORDER if name in modules] + sorted(set(modules) - set(ORDER))
    if arguments.list:
        for name in ordered:
            paragraph = (modules[name].__doc__ or "").strip().split("\n\n")[0]
            print(f"{name}: {' '.join(paragraph.split())}")
        return 0
    unknown = [name for name in arguments.names if name not in modules]
    if unknown:
        print(f"ops/faults: no scenario named {', '.join(unknown)}; --list lists them", file=sys.stderr)
        return 2
    names = arguments.names or ordered

    failed = 0
    for name in names:
        context = harness.make_context(arguments.tollgate.resolve(), arguments.peers.resolve(), name, arguments.keep)
        started = time.monotonic()
        try:
            figure = modules[name].run(context)
            verdict = "PASS"
        except harness.ScenarioFailed as failure:
            figure, verdict = str(failure), "FAIL"
        except Exception:
            figure, verdict = "crashed:\n" + traceback.format_exc(), "FAIL"
        finally:
            harness.close_context(context)
        failed += verdict == "FAIL"
        kept = f" [kept: {context.root}]" if arguments.keep else ""
        print(f"{verdict} {name} ({time.monotonic() - started:.0f} s): {figure}{kept}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
