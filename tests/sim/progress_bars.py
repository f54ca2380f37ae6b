"""A stand-in for the terminal progress bar: records what the parent drew."""


class RecordedBar:
    """Made by ``ProgressReader(path, make_bar=...)``; every bar lands in ``made``."""

    made: list["RecordedBar"] = []

    def __init__(self, total, unit):
        self.total, self.unit, self.n, self.closed = total, unit, 0, False
        RecordedBar.made.append(self)

    def update(self, n):
        self.n += n

    def close(self):
        self.closed = True


def record_bars(monkeypatch, module) -> list[RecordedBar]:
    """Make ``module.ProgressReader`` draw RecordedBars; returns the list they land in."""
    RecordedBar.made = []
    real = module.ProgressReader
    monkeypatch.setattr(module, "ProgressReader", lambda path: real(path, make_bar=RecordedBar))
    return RecordedBar.made
