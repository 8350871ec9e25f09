#!/usr/bin/env python3
"""Counts the effects the demo service applied, from DIR/effects.log, as JSON.

    python3 effect_count.py DIR [--effect KIND]

Prints {"total", "by_effect", "without_key", "duplicate_keys", "duplicates"}: `duplicate_keys`
maps every idempotency key that was applied more than once to its count, so an empty map
(and "duplicates": 0) shows that no keyed effect ran twice. With --effect, only effects of
that kind (e.g. admin.restart) are counted. A missing log counts as no effects.
"""

import argparse
import json
import os
import sys
from collections import Counter


def main():
    parser = argparse.ArgumentParser(description="Count the demo service's effects.")
    parser.add_argument("dir", help="the service's --data directory")
    parser.add_argument("--effect", help="count only this kind, e.g. admin.restart")
    args = parser.parse_args()

    by_effect, keys, without_key = Counter(), Counter(), 0
    path = os.path.join(args.dir, "effects.log")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as log:
            for line in log:
                if not line.strip():
                    continue
                entry = json.loads(line)
                if args.effect and entry["effect"] != args.effect:
                    continue
                by_effect[entry["effect"]] += 1
                if entry.get("idempotency_key"):
                    keys[entry["idempotency_key"]] += 1
                else:
                    without_key += 1
    duplicate_keys = {key: n for key, n in keys.items() if n > 1}
    json.dump({
        "total": sum(by_effect.values()),
        "by_effect": dict(sorted(by_effect.items())),
        "without_key": without_key,
        "duplicate_keys": duplicate_keys,
        "duplicates": sum(n - 1 for n in duplicate_keys.values()),
    }, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
