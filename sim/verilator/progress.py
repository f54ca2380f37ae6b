"""Progress of a run inside the simulator, relayed to the parent's terminal.

The Verilator simulator runs in a child process whose output goes to a log
file, so a progress bar drawn there would never be seen. Instead the child
appends counts to a small file (:class:`ProgressWriter`), and the parent,
while it waits for the child, reads them and draws the bar on its own stderr
(:class:`ProgressReader`). The file holds one header line ``total<TAB>unit``
followed by one line per update with the cumulative count.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

__all__ = ["ProgressWriter", "ProgressReader", "terminal_bar", "ENV"]

#: environment variable naming the progress file in the simulator process
ENV = "OCFSIM_PROGRESS"

#: the writer writes at most this often (seconds); the reader polls about as
#: often. A choice: smooth enough for a bar, negligible beside a host event.
INTERVAL_S = 0.1


class ProgressWriter:
    """tqdm-like counter (``update``, ``close``) that appends to the progress file."""

    def __init__(self, path: str | os.PathLike, total: int, unit: str = "it"):
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.n = 0
        self._last = 0.0
        os.write(self._fd, f"{int(total)}\t{unit}\n".encode())

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self._last >= INTERVAL_S:
            self._last = now
            os.write(self._fd, f"{self.n}\n".encode())

    def close(self) -> None:
        if self._fd >= 0:
            os.write(self._fd, f"{self.n}\n".encode())
            os.close(self._fd)
            self._fd = -1


def terminal_bar(total: int, unit: str):
    """A tqdm bar on stderr, cleared when closed."""
    from tqdm import tqdm
    return tqdm(total=total, unit=unit, file=sys.stderr, leave=False)


class ProgressReader:
    """Follows a progress file and mirrors it in a bar: ``make_bar(total, unit)``
    (default: tqdm on stderr) returns an object with ``n``, ``update``, ``close``."""

    def __init__(self, path: Path, make_bar=terminal_bar):
        self.path = path
        self._make_bar = make_bar
        self._pos = 0
        self._partial = b""
        self._bar = None

    def poll(self) -> None:
        """Read what the child wrote since the last poll; move the bar."""
        try:
            with open(self.path, "rb") as f:
                f.seek(self._pos)
                chunk = f.read()
        except FileNotFoundError:
            return
        self._pos += len(chunk)
        *lines, self._partial = (self._partial + chunk).split(b"\n")
        for line in lines:
            self._line(line.decode())

    def _line(self, line: str) -> None:
        if "\t" in line:                      # a header: a new bar
            total, unit = line.split("\t", 1)
            self.close()
            self._bar = self._make_bar(int(total), unit)
        elif line and self._bar is not None:
            self._bar.update(int(line) - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
