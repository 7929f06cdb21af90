"""Compare benchmark runs: ``run.py --json`` outputs of two trees, side by side.

    uv run python scripts/bench/compare.py --before a1.json a2.json --after b1.json b2.json

Prints a markdown table: for every figure that has a floor, the median over
the runs of each side of its ratio to the floor measured in the same run
(so load that moves both cancels out), the change, and the spread of the
ratios; figures without a floor are compared by value. Several runs per
side, taken alternately, are what make a small difference mean something.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Iterable
from typing import Any


def _by_figure(paths: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for path in paths:
        with open(path) as f:
            for row in json.load(f)['rows']:
                out.setdefault(row['figure'], []).append(row)
    return out


def _measure(row: dict[str, Any]) -> float | None:
    return row['ratio'] if row.get('ratio') is not None else row.get('value')


def table(before: list[str], after: list[str]) -> str:
    old, new = _by_figure(before), _by_figure(after)
    lines = [
        '| figure | before | after | change | spread before / after |',
        '|---|---:|---:|---:|---|',
    ]
    for figure, rows in old.items():
        if figure not in new:
            continue
        a = [m for m in map(_measure, rows) if m is not None]
        b = [m for m in map(_measure, new[figure]) if m is not None]
        if not a or not b:
            continue
        unit = '×' if rows[0].get('ratio') is not None else ''
        ma, mb = statistics.median(a), statistics.median(b)
        change = f'{(mb / ma - 1) * 100:+.0f}%' if ma else 'n/a'
        spread = f'{min(a):.3g}–{max(a):.3g} / {min(b):.3g}–{max(b):.3g}'
        lines.append(f'| {figure} | {ma:.3g}{unit} | {mb:.3g}{unit} | {change} | {spread} |')
    return '\n'.join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--before', nargs='+', required=True, metavar='JSON')
    parser.add_argument('--after', nargs='+', required=True, metavar='JSON')
    args = parser.parse_args()
    print(table(args.before, args.after))


if __name__ == '__main__':
    main()
