"""Accelerators as data (`devices.toml`) and `--devices` specs: `8xH100-80G,8x910B-64G`, `4xA100-80G+4x48G`.

A spec is comma-separated device sets, each the alternative the planner checks a model against; a set
is `+`-joined groups `[COUNT x] NAME` whose devices the model's layers are split across. NAME is a
known device (or one of its aliases) or a custom size: `48G`/`48GiB` (GiB) or `48GB` (10^9 bytes).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from quantdrop.errors import QuantdropError

GiB = 1 << 30
CUSTOM_OVERHEAD_GIB = 0.75  # a custom size gets the NVIDIA default runtime overhead


@dataclass(frozen=True)
class Device:
    name: str
    memory_bytes: int  # what a process can allocate
    overhead_bytes: int  # runtime context and workspaces, before llama.cpp allocates anything
    vendor: str = ""


@dataclass(frozen=True)
class DeviceGroup:
    device: Device
    count: int

    @property
    def spec(self) -> str:
        return f"{self.count}x{self.device.name}"


@dataclass(frozen=True)
class DeviceSet:
    """One deployment target: every device the model's layers are split across."""

    spec: str
    groups: tuple[DeviceGroup, ...]

    @property
    def devices(self) -> list[Device]:
        return [g.device for g in self.groups for _ in range(g.count)]

    @property
    def count(self) -> int:
        return sum(g.count for g in self.groups)


@cache
def known_devices() -> dict[str, Device]:
    """Every device in devices.toml, by canonical name."""
    table = tomllib.loads(resources.files("quantdrop").joinpath("devices.toml").read_text())
    return {name: Device(name, round(d["memory_gib"] * GiB), round(d["overhead_gib"] * GiB),
                         d.get("vendor", "")) for name, d in table.items()}


@cache
def _aliases() -> dict[str, str]:
    table = tomllib.loads(resources.files("quantdrop").joinpath("devices.toml").read_text())
    out = {}
    for name, d in table.items():
        for alias in [name, *d.get("aliases", [])]:
            out[alias.lower()] = name
    return out


_CUSTOM = re.compile(r"^(\d+(?:\.\d+)?)\s*(g|gib|gb)$", re.IGNORECASE)
_GROUP = re.compile(r"^(?:(\d+)\s*[x×*]\s*)?([A-Za-z0-9][\w.\- ]*)$", re.IGNORECASE)


def device(name: str) -> Device:
    """A known device by name or alias, or a custom size (`48G`, `48GiB`, `48GB`)."""
    key = name.strip()
    canonical = _aliases().get(key.lower())
    if canonical:
        return known_devices()[canonical]
    m = _CUSTOM.match(key)
    if m:
        size = float(m.group(1))
        nbytes = round(size * 1e9) if m.group(2).lower() == "gb" else round(size * GiB)
        if nbytes <= 0:
            raise QuantdropError(f"device size must be positive: {name!r}")
        return Device(key.upper(), nbytes, round(CUSTOM_OVERHEAD_GIB * GiB))
    known = ", ".join(known_devices())
    raise QuantdropError(f"unknown device {name.strip()!r} (known: {known}; or a size such as 48G)")


def parse_device_set(spec: str) -> DeviceSet:
    """`8xH100-80G` or `4xH100-80G+4xA100-80G` -> one DeviceSet; one-line errors for malformed specs."""
    groups = []
    for part in spec.split("+"):
        part = part.strip()
        m = _GROUP.match(part)
        if not part:
            raise QuantdropError(f"malformed --devices spec {spec!r}: empty group (expected e.g. 8xH100-80G)")
        if m is None:
            raise QuantdropError(f"malformed --devices spec {spec!r}: {part!r} is not COUNTxDEVICE")
        count_text, name = m.groups()
        if count_text is None and re.match(r"^\d+\s*[x×*]\s*$", part):
            raise QuantdropError(f"malformed --devices spec {spec!r}: no device after {part!r}")
        count = int(count_text) if count_text is not None else 1
        if count < 1:
            raise QuantdropError(f"malformed --devices spec {spec!r}: a count must be at least 1 ({part!r})")
        groups.append(DeviceGroup(device(name), count))
    return DeviceSet(spec="+".join(g.spec for g in groups), groups=tuple(groups))


def parse_devices(spec: str | list[str] | None) -> list[DeviceSet]:
    """`8xH100-80G,8x910B-64G` -> two device sets (a list of specs works too); None -> none."""
    if spec is None:
        return []
    items = spec if isinstance(spec, list) else [spec]
    if not any(s.strip() for s in items):
        raise QuantdropError("empty --devices spec (expected e.g. 8xH100-80G,8x910B-64G)")
    sets = []
    for item in items:
        for part in item.split(","):
            if not part.strip():
                raise QuantdropError(f"malformed --devices spec {item!r}: empty device set between commas")
            sets.append(parse_device_set(part))
    return sets
