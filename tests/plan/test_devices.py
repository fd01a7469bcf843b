"""Devices as data, --devices specs, and llama.cpp's layer split."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from quantdrop.devices import GiB, known_devices, parse_devices
from quantdrop.errors import QuantdropError
from quantdrop.plan import layer_devices

ISSUE_DEVICES = [
    "H100-80G",
    "H800-80G",
    "H200-141G",
    "A100-80G",
    "A100-40G",
    "A800-80G",
    "H20-96G",
    "910B-64G",
    "L40S-48G",
    "RTX4090-24G",
    "RTX3090-24G",
    "MI300X-192G",
]


def test_every_device_of_the_issue_is_known() -> None:
    devices = known_devices()
    for name in ISSUE_DEVICES:
        nominal = int(name.rsplit("-", 1)[1].removesuffix("G"))
        # usable memory sits between the GB printed on the box (10^9) and as many GiB
        assert nominal * 1e9 * 0.98 <= devices[name].memory_bytes <= nominal * GiB, name


def test_specs() -> None:
    sets = parse_devices("8xH100-80G,8x910B-64G")
    assert [(s.spec, s.count) for s in sets] == [("8xH100-80G", 8), ("8x910B-64G", 8)]
    mixed = parse_devices("4xH100+2x48G")[0]
    assert mixed.count == 6 and mixed.devices[-1].memory_bytes == 48 * GiB
    assert parse_devices("2x48GB")[0].devices[0].memory_bytes == 48 * 10**9
    assert parse_devices("ascend910b")[0].devices[0].name == "910B-64G"


def test_unknown_device_lists_the_known_ones() -> None:
    with pytest.raises(QuantdropError, match=r"unknown device 'TPUv5'.*H100-80G"):
        parse_devices("4xTPUv5")


@pytest.mark.parametrize("spec", ["", "8x", ",8xH100-80G", "-1xH100-80G", "8xH100-80G+", "8x(H100)"])
def test_malformed_specs(spec: str) -> None:
    with pytest.raises(QuantdropError, match="--devices spec"):
        parse_devices(spec)


def test_layer_split_follows_llama_cpp() -> None:
    """llama.cpp: block il -> upper_bound(cumulative shares, il / (n_layer + 1)); the output layer is the
    (n_layer + 1)-th. DeepSeek's 61 blocks on 8 equal GPUs: 8,8,8,7,8,8,8 and 6 + output."""
    where = layer_devices(61, [80.0] * 8)
    assert Counter(where[:-1]) == {0: 8, 1: 8, 2: 8, 3: 7, 4: 8, 5: 8, 6: 8, 7: 6}
    assert where[-1] == 7
    assert where == sorted(where)
    # a device with twice the memory takes twice the blocks
    assert Counter(layer_devices(30, [2.0, 1.0])[:-1]) == {0: 21, 1: 9}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("100000000xH100-80G", "100000000 devices in one set (at most 4096)"),
        ("2xcpu-32G", "a CPU host is a device set of its own"),
        ("cpu-32G+H100", "a CPU host is a device set of its own"),
        ("cpu-sparc-32G", "unknown CPU ISA 'sparc'"),
        ("cpu-0G", "device size must be positive"),
    ],
)
def test_device_spec_limits_and_cpu_hosts(spec: str, message: str) -> None:
    """Issue 10, item 9: a huge count was expanded into a list of devices; now refused at once."""
    with pytest.raises(QuantdropError, match=re.escape(message)):
        parse_devices(spec)


def test_cpu_hosts() -> None:
    host = parse_devices("cpu-64G")[0].devices[0]
    assert host.is_cpu and host.memory_bytes == 64 * GiB and host.cpu_features == {"avx2"}
    assert parse_devices("cpu-avx512-64GB")[0].devices[0].memory_bytes == 64 * 10**9
    assert not parse_devices("H100")[0].devices[0].is_cpu
