"""Exposure score of systemd/laserd.service from ``systemd-analyze security --offline=true``.

Run: ``.venv/bin/python tests/bench/bench_unit_security.py`` — prints JSON: the overall
exposure (0 = locked down, 10 = unprotected) and the checks that still count against it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "laserd.service"


def main() -> int:
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        print(json.dumps({"error": "systemd-analyze missing (apt-get install -y systemd)"}))
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        exe = Path(tmp) / "laserd"
        exe.write_text("#!/bin/sh\n")
        exe.chmod(0o755)
        text = re.sub(r"^ExecStart=\S+", f"ExecStart={exe}", UNIT.read_text(), flags=re.M)
        copy = Path(tmp) / "laserd.service"
        copy.write_text(text)
        human = subprocess.run(
            [analyze, "security", "--offline=true", "--no-pager", str(copy)],
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
        detail = subprocess.run(
            [analyze, "security", "--offline=true", "--json=short", str(copy)],
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
        version = subprocess.run(
            [analyze, "--version"], capture_output=True, text=True, timeout=60
        ).stdout.splitlines()[0]
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+) (\S+)", human)
    open_checks = [
        {"name": c["name"], "exposure": float(c["exposure"])}
        for c in json.loads(detail or "[]")
        if not c.get("set") and c.get("exposure")
    ]
    print(
        json.dumps(
            {
                "unit": str(UNIT.relative_to(UNIT.parents[1])),
                "systemd": version,
                "exposure": float(match.group(1)) if match else None,
                "rating": match.group(2) if match else None,
                "open_checks": sorted(open_checks, key=lambda c: -c["exposure"]),
            },
            indent=2,
        )
    )
    return 0 if match else 1


if __name__ == "__main__":
    sys.exit(main())
