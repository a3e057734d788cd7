"""Test tiers: plain Python, `cc` (host C compiler), `xtensa` (cross compiler + ISS), `slow`."""

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
        if "cc" in item.keywords and cc_missing:
            item.add_marker(pytest.mark.skip(reason="no host C compiler (cc)"))
