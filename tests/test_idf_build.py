"""The real ESP-IDF build of an exported project (marker ``idf``): ``idf.py set-target esp32s3``
configures it without a CMake warning, ``idf.py build`` compiles and links it under ESP-IDF's own
flags and C library, and the app image fits the factory partition fter-tvm sized for it.

It needs an ESP-IDF installation as a user has it after ``. $IDF_PATH/export.sh``: ``IDF_PATH``
set, ``idf.py`` and ``xtensa-esp32s3-elf-gcc`` on PATH. Elsewhere (CI, this project's machines:
ESP-IDF is not installable from the package registries) it is skipped, naming what is missing.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from test_project import tiny_model_and_input

from fter_tvm.compile import compile as fter_compile


def missing_idf() -> list[str]:
    gone = [] if os.environ.get("IDF_PATH") else ["IDF_PATH"]
    return gone + [tool for tool in ("idf.py", "xtensa-esp32s3-elf-gcc") if shutil.which(tool) is None]


def partition_bytes(table: Path, name: str) -> int:
    """Size of partition ``name`` in an ESP-IDF partition CSV (hex, decimal, K or M sizes)."""
    rows = [r for r in csv.reader(line for line in table.read_text().splitlines()
                                  if line.strip() and not line.lstrip().startswith("#"))]
    for row in rows:
        if row[0].strip() == name:
            size = row[4].strip()
            unit = {"K": 1024, "M": 1024 * 1024}.get(size[-1:].upper(), 1)
            return int(size[:-1] if unit > 1 else size, 0) * unit
    raise AssertionError(f"no partition {name!r} in {table}")


def idf(project: Path, *args: str) -> str:
    proc = subprocess.run(["idf.py", *args], cwd=project, capture_output=True, text=True,
                          timeout=1800)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"idf.py {' '.join(args)} failed:\n{out[-4000:]}"
    return out


@pytest.mark.idf
@pytest.mark.skipif(bool(missing_idf()), reason="ESP-IDF not installed: missing "
                    + ", ".join(missing_idf()) + " (run . $IDF_PATH/export.sh first)")
def test_idf_builds_the_exported_project_and_it_fits(tmp_path):
    model, x = tiny_model_and_input()
    art = fter_compile(model, target="esp32s3", example_inputs=(x,))
    project = art.export_project(tmp_path / "proj", name="fter_app")
    configure = idf(project, "set-target", "esp32s3")
    assert "CMake Warning" not in configure, configure[-4000:]
    idf(project, "build")
    app = project / "build" / "fter_app.bin"
    assert app.exists(), f"no app image at {app}"
    room = partition_bytes(project / "partitions.csv", "factory")
    assert app.stat().st_size <= room, f"app image {app.stat().st_size} B > factory partition {room} B"


@pytest.mark.parametrize("size, expected", [("0x180000", 0x180000), ("1536K", 1536 * 1024),
                                            ("2M", 2 * 1024 * 1024), ("65536", 65536)])
def test_partition_sizes_are_read_as_esp_idf_writes_them(tmp_path, size, expected):
    table = tmp_path / "partitions.csv"
    table.write_text("# Name, Type, SubType, Offset, Size, Flags\n"
                     "nvs, data, nvs, 0x9000, 0x6000,\n"
                     f"factory, app, factory, 0x10000, {size},\n")
    assert partition_bytes(table, "factory") == expected
    with pytest.raises(AssertionError, match="no partition 'ota_0'"):
        partition_bytes(table, "ota_0")
