#!/usr/bin/env python3
"""Compare two conformance result directories (`conformance server -o DIR`) check by check.

Usage: conformance_compare.py DIRECT_DIR GATEWAY_DIR
Prints `direct: P passed, F failed; gateway: P passed, F failed` (checks, by scenario/id, with
status SUCCESS / FAILURE), then `counts: PASS_DIRECT PASS_BOTH LOST GAINED FAIL_BOTH` (checks
passing directly; of those, passing through the gateway too; passing directly but not through
the gateway; failing directly but passing through it; failing both ways), then, one per line,
every lost check. Exit status 0 when none is lost, 1 otherwise, 2 when a directory holds no
results.
"""
import glob
import json
import os
import re
import sys


def load(directory):
    """(scenario, check id) -> status, from every checks.json under directory."""
    out = {}
    for path in glob.glob(os.path.join(directory, "*", "checks.json")):
        scenario = re.sub(r"-\d{4}-\d\d-\d\dT.*$", "", os.path.basename(os.path.dirname(path)))
        with open(path) as f:
            for check in json.load(f):
                out[(scenario, check["id"])] = check.get("status", "?")
    return out


def totals(results):
    passed = sum(1 for s in results.values() if s == "SUCCESS")
    failed = sum(1 for s in results.values() if s == "FAILURE")
    return f"{passed} passed, {failed} failed"


def main():
    direct, gateway = load(sys.argv[1]), load(sys.argv[2])
    if not direct or not gateway:
        print(f"no results in {sys.argv[1] if not direct else sys.argv[2]}")
        return 2
    print(f"direct: {totals(direct)}; gateway: {totals(gateway)}")
    lost = [k for k, s in sorted(direct.items()) if s == "SUCCESS" and gateway.get(k) != "SUCCESS"]
    pass_direct = sum(1 for s in direct.values() if s == "SUCCESS")
    gained = sum(1 for k, s in gateway.items() if s == "SUCCESS" and direct.get(k) == "FAILURE")
    fail_both = sum(1 for k, s in direct.items() if s == "FAILURE" and gateway.get(k) == "FAILURE")
    print(f"counts: {pass_direct} {pass_direct - len(lost)} {len(lost)} {gained} {fail_both}")
    for scenario, check in lost:
        print(f"lost: {scenario}/{check} ({gateway.get((scenario, check), 'missing')})")
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
