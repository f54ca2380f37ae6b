"""``ocfsim bench table1``: the OCF paper's Table 1 (see :mod:`bench.tables`)."""

import sys

from bench.tables import main as _main


def main(argv=None) -> int:
    return _main(argv, table="table1")


if __name__ == "__main__":
    sys.exit(main())
