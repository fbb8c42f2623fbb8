"""Where the sample images of the tests live: ``tests/data/`` inside this repository.

Tests and benchmarks read only files inside the repository, so a fresh clone with nothing
beside it runs the whole suite (``tests/unit/test_repo_self_contained.py`` keeps it so).
Provenance and licences: ``tests/data/README.md``.
"""

from __future__ import annotations

from pathlib import Path

SAMPLE_DATA = Path(__file__).resolve().parent / "data"
