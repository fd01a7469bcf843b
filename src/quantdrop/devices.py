"""Accelerators as data (`devices.toml`) and `--devices` specs: `8xH100-80G,8x910B-64G`, `4xA100-80G+4x48G`.

A spec is comma-separated device sets, each the alternative the planner checks a model against; a set
is `+`-joined groups `[COUNT x] NAME` whose devices the model's layers are split across. NAME is a
known device (or one of its aliases) or a custom size: `48G`/`48GiB` (GiB) or `48GB` (10^9 bytes).

CPU inference (llama.cpp's CPU backend, everything in host memory) is a set of its own, one host:
  `cpu`            this machine: its memory (MemTotal) and the SIMD features of the installed llama.cpp
                   build (llama_print_system_info; a native build = this CPU);
  `cpu-32G`        a host with 32 GiB, assumed x86-64 with AVX2 and no AVX-512 (most laptops and
                   desktops since 2013): the assumption decides the CPU_REPACK term (memory.REPACK_RULES);
  `cpu-ISA-32G`    the same with the ISA named: avx2, avx512 (x86 servers), dotprod (ARMv8.2 NEON, e.g.
                   Graviton2, Apple M1), i8mm (NEON + int8 matmul, e.g. Graviton3/4, Apple M2+), none.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from quantdrop.errors import QuantdropError

GiB = 1 << 30
MAX_DEVICES = 4096  # per device set: beyond any real deployment, and bounded work for the planner
CUSTOM_OVERHEAD_GIB = 0.75  # a custom size gets the NVIDIA default runtime overhead


@dataclass(frozen=True)
class Device:
    name: str
    memory_bytes: int  # what a process can allocate
    overhead_bytes: int  # runtime context and workspaces, before llama.cpp allocates anything
    vendor: str = ""
    cpu_features: frozenset[str] | None = None  # a CPU host (llama.cpp's CPU backend): its SIMD features

    @property
    def is_cpu(self) -> bool:
        return self.cpu_features is not None


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
    return {
        name: Device(name, round(d["memory_gib"] * GiB), round(d["overhead_gib"] * GiB), d.get("vendor", ""))
        for name, d in table.items()
    }


@cache
def _aliases() -> dict[str, str]:
    table = tomllib.loads(resources.files("quantdrop").joinpath("devices.toml").read_text())
    out = {}
    for name, d in table.items():
        for alias in [name, *d.get("aliases", [])]:
            out[alias.lower()] = name
    return out


CPU_OVERHEAD_GIB = 0.25  # a CPU host: the process, its libraries and the backend's work buffer (estimate)
CPU_ISAS = {
    "avx2": frozenset({"avx2"}),
    "avx512": frozenset({"avx2", "avx512"}),
    "dotprod": frozenset({"dotprod"}),
    "i8mm": frozenset({"dotprod", "i8mm"}),
    "none": frozenset(),
}
_CPU = re.compile(r"^cpu(?:-([a-z0-9]+?))?-(\d+(?:\.\d+)?\s*(?:g|gib|gb))$", re.IGNORECASE)
_CUSTOM = re.compile(r"^(\d+(?:\.\d+)?)\s*(g|gib|gb)$", re.IGNORECASE)
_GROUP = re.compile(r"^(?:(\d+)\s*[x×*]\s*)?([A-Za-z0-9][\w.\- ]*)$", re.IGNORECASE)


def _size_bytes(text: str, name: str) -> int:
    m = _CUSTOM.match(text)
    assert m
    size = float(m.group(1))
    nbytes = round(size * 1e9) if m.group(2).lower() == "gb" else round(size * GiB)
    if nbytes <= 0:
        raise QuantdropError(f"device size must be positive: {name!r}")
    return nbytes


def local_cpu() -> Device:
    """This machine as a CPU host: MemTotal and the installed llama.cpp's SIMD features."""
    from quantdrop.memory import local_cpu_features

    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        raise QuantdropError(
            "cannot read this machine's memory size for --devices cpu; name a size, e.g. cpu-32G"
        ) from None
    return Device("cpu", mem, round(CPU_OVERHEAD_GIB * GiB), "local", local_cpu_features())


def cpu_device(name: str) -> Device | None:
    """`cpu`, `cpu-32G` or `cpu-ISA-32G` -> a CPU host; None if `name` is no CPU spec."""
    if name.strip().lower() == "cpu":
        return local_cpu()
    m = _CPU.match(name.strip())
    if not m:
        return None
    isa = (m.group(1) or "avx2").lower()
    if isa not in CPU_ISAS:
        raise QuantdropError(
            f"unknown CPU ISA {isa!r} in {name.strip()!r} (one of: {', '.join(CPU_ISAS)}; e.g. cpu-avx512-64G)"
        )
    return Device(
        f"cpu-{isa}-{m.group(2).upper()}" if m.group(1) else f"cpu-{m.group(2).upper()}",
        _size_bytes(m.group(2), name),
        round(CPU_OVERHEAD_GIB * GiB),
        "",
        CPU_ISAS[isa],
    )


def device(name: str) -> Device:
    """A known device by name or alias, a custom size (`48G`, `48GiB`, `48GB`) or a CPU host."""
    key = name.strip()
    cpu = cpu_device(key)
    if cpu is not None:
        return cpu
    canonical = _aliases().get(key.lower())
    if canonical:
        return known_devices()[canonical]
    if _CUSTOM.match(key):
        return Device(key.upper(), _size_bytes(key, name), round(CUSTOM_OVERHEAD_GIB * GiB))
    known = ", ".join(known_devices())
    raise QuantdropError(
        f"unknown device {name.strip()!r} (known: {known}; a size such as 48G; or a CPU host: cpu, cpu-32G)"
    )


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
        if count > MAX_DEVICES:
            raise QuantdropError(
                f"malformed --devices spec {spec!r}: {count} devices in one set (at most {MAX_DEVICES})"
            )
        groups.append(DeviceGroup(device(name), count))
    if any(g.device.is_cpu for g in groups) and (len(groups) > 1 or groups[0].count > 1):
        raise QuantdropError(
            f"--devices {spec!r}: a CPU host is a device set of its own "
            "(e.g. --devices cpu-32G,8xH100-80G), not one part of a split"
        )
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
