"""The `swener` command line: click commands that parse options and call one library function each.

Heavy modules (flair, torch) are imported inside the commands that need them, so that
`swener --help` answers at once. `base` holds the group, its one-line errors and the option
checks; each other module adds the commands of one part of the data flow to `main`.
"""
from swener.cli import (  # noqa: F401  (they add their commands to main)
    data,
    gold,  # noqa: F401  (swener corpus held-back, swener gold-curve: the gold curve)
    grid,  # noqa: F401  (swener grid, swener tune: on Ray, swener.grid)
    serve,
    students,
    teacher,
)
from swener.cli.base import main

__all__ = ["main"]
