"""Host profiles: the CPU-time constants of a simulated host, each with its source.

A profile is a TOML file in ``sim/profiles/`` (``<name>.toml``). Every
constant is a table ``{ value, unit, source }``; the loader refuses a constant
without a source. Units convert to picoseconds (time) or picoseconds per byte
(per-byte costs and bandwidths)::

    [kernel]
    syscall_entry = { value = 350, unit = "ns", source = "estimate: ..." }
    [copy]
    bandwidth = { value = 2.4, unit = "Gbps", source = "OCF paper §5.4" }

Constants are addressed as ``"section.name"`` (nested tables: ``"a.b.c"``).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Profile", "load_profile", "profile_names", "PROFILE_DIR", "DEFAULT_PROFILE"]

PROFILE_DIR = Path(__file__).resolve().parent.parent / "profiles"
DEFAULT_PROFILE = "p3-1400-openbsd"

_TIME = {"ps": 1, "ns": 1e3, "us": 1e6, "ms": 1e9, "s": 1e12}
_PER_BYTE = {"ps/byte": 1, "ns/byte": 1e3}
_RATE = {"Mbps": 1e6, "Gbps": 1e9, "MB/s": 8e6}


@dataclass
class Constant:
    value: float
    unit: str
    source: str


@dataclass
class Profile:
    """A named host profile; ``cost`` gives ps, ``per_byte`` ps per byte."""

    name: str
    description: str
    hz: float
    constants: dict[str, Constant] = field(default_factory=dict)

    def _get(self, key: str) -> Constant:
        try:
            return self.constants[key]
        except KeyError:
            raise KeyError(f"profile {self.name!r} has no constant {key!r}") from None

    def has(self, key: str) -> bool:
        return key in self.constants

    def source(self, key: str) -> str:
        return self._get(key).source

    def cost(self, key: str) -> int:
        """A fixed time cost in integer picoseconds."""
        c = self._get(key)
        if c.unit == "cycles":
            return int(round(c.value * 1e12 / self.hz))
        if c.unit in _TIME:
            return int(round(c.value * _TIME[c.unit]))
        raise ValueError(f"{key}: unit {c.unit!r} is not a time")

    def per_byte(self, key: str) -> float:
        """A per-byte cost in picoseconds per byte (bandwidths are inverted)."""
        c = self._get(key)
        if c.unit == "cycles/byte":
            return c.value * 1e12 / self.hz
        if c.unit in _PER_BYTE:
            return c.value * _PER_BYTE[c.unit]
        if c.unit in _RATE:
            return 8e12 / (c.value * _RATE[c.unit])
        raise ValueError(f"{key}: unit {c.unit!r} is not a per-byte cost or rate")

    def bytes_cost(self, key: str, nbytes: int) -> int:
        """``per_byte(key) * nbytes`` rounded to picoseconds."""
        return int(round(self.per_byte(key) * max(0, nbytes)))

    def value(self, key: str) -> float:
        return self._get(key).value

    def table(self) -> list[tuple[str, float, str, str]]:
        """(key, value, unit, source) rows, for reports."""
        return [(k, c.value, c.unit, c.source) for k, c in sorted(self.constants.items())]


def _flatten(prefix: str, tbl: dict, out: dict[str, Constant], name: str) -> None:
    for key, val in tbl.items():
        full = f"{prefix}.{key}" if prefix else key
        if not isinstance(val, dict):
            continue
        if "value" in val:
            missing = {"unit", "source"} - set(val)
            if missing or not str(val.get("source", "")).strip():
                raise ValueError(f"profile {name}: constant {full} lacks {sorted(missing) or ['source']}")
            out[full] = Constant(float(val["value"]), str(val["unit"]), str(val["source"]))
        else:
            _flatten(full, val, out, name)


def profile_names() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.toml"))


def load_profile(profile: "str | Path | Profile" = DEFAULT_PROFILE) -> Profile:
    """Load a profile by name (``p3-1400-openbsd``) or path; a Profile passes through."""
    if isinstance(profile, Profile):
        return profile
    path = Path(profile)
    if path.suffix != ".toml":
        path = PROFILE_DIR / f"{profile}.toml"
    if not path.exists():
        raise ValueError(f"unknown host profile {profile!r}; known: {', '.join(profile_names())}")
    with open(path, "rb") as f:
        data = tomllib.load(f)
    constants: dict[str, Constant] = {}
    body = {k: v for k, v in data.items() if isinstance(v, dict)}
    _flatten("", body, constants, path.stem)
    hz = constants.get("cpu.hz")
    if hz is None:
        raise ValueError(f"profile {path.stem}: cpu.hz missing")
    return Profile(name=str(data.get("name", path.stem)),
                   description=str(data.get("description", "")),
                   hz=hz.value, constants=constants)
