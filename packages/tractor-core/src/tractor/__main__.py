"""``python -m tractor``: the ``tractor`` command, shipped by tractor-discovery."""

from __future__ import annotations

import sys


def main() -> int:
    try:
        from tractor.discovery._cli import main as cli_main
    except ImportError:
        print(
            'python -m tractor: the tractor command comes with the discovery '
            'distribution: `pip install tractor-discovery` (or the `tractor` meta package)',
            file=sys.stderr,
        )
        return 2
    return cli_main()


if __name__ == '__main__':
    sys.exit(main())
