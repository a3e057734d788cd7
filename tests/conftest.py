"""Test tiers: plain Python, `cc` (host C compiler), `xtensa` (cross compiler + ISS), `esp32s3`
(the ESP32-S3's LX7 core in an Xtensa QEMU that has it: found, never installed; skipped with the
missing tools named wherever they are absent, CI included), `slow`."""

from __future__ import annotations

import os
import shutil

import pytest

XTENSA_TOOLS = ("xtensa-lx106-elf-gcc", "qemu-system-xtensa")


def pytest_collection_modifyitems(config, items):
    missing = [t for t in XTENSA_TOOLS if shutil.which(t) is None]
    cc_missing = shutil.which("cc") is None
    in_ci = os.environ.get("CI") == "true"
    for item in items:
        if "xtensa" in item.keywords and missing:
            if in_ci:
                raise pytest.UsageError(f"CI=true but {', '.join(missing)} missing for {item.nodeid}")
            item.add_marker(pytest.mark.skip(reason=f"missing {', '.join(missing)}"))
        if "esp32s3_core" in item.keywords:
            from runtime import esp32s3_sim

            gone = esp32s3_sim.missing()
            if gone:
                item.add_marker(pytest.mark.skip(reason="the esp32s3 core needs " + "; ".join(gone)))
        if "cc" in item.keywords and cc_missing:
            item.add_marker(pytest.mark.skip(reason="no host C compiler (cc)"))
