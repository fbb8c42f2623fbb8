"""The repository carries everything its tests and benchmarks read (issue 12, item 14).

A user's fresh clone failed 19 tests because tests and benchmarks read ``../shared/data``, a
folder that only existed beside the checkout on the machine where they were written. These
tests keep every test, benchmark and test helper reading inside the repository, and keep the
sample images in ``tests/data`` listed with their provenance.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from tests.samples import SAMPLE_DATA

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"
#: Sources under tests/ that may reach for data: test modules, helpers, benchmarks, scripts.
SOURCES = sorted(p for p in TESTS.rglob("*") if p.suffix in (".py", ".sh") and p.is_file())

#: Ways a path can leave the repository: the old ``shared`` folder beside the checkout,
#: absolute paths of this host, and stepping above the repository root.
OUTSIDE = [
    # (a path join or a path string: the API's "shared" field of materials is no path)
    (
        re.compile(r"""/\s*["']shared["']|["']shared["']\s*/|/shared/"""),
        "names the 'shared' folder beside the checkout",
    ),
    # (".." inside upload names is fine: the path-traversal tests send it on purpose)
    (re.compile(r"""Path\(\s*["']\.\.(?:/|["'])|/\s*["']\.\.["']"""), "steps up with '..'"),
    (re.compile(r"""["'](?:/work|/home|/root|/mnt|/media)/"""), "names an absolute host path"),
    (re.compile(r"""\b(?:REPO|ROOT)\.parent\b"""), "goes above the repository root"),
]
_PARENTS = re.compile(r"""Path\(__file__\)\.resolve\(\)\.parents\[(\d+)\]""")


def _offences(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    rel = path.relative_to(REPO)
    found = []
    for lineno, line in enumerate(text.splitlines(), 1):
        for pattern, why in OUTSIDE:
            if pattern.search(line):
                found.append(f"{rel}:{lineno}: {why}: {line.strip()}")
        for match in _PARENTS.finditer(line):
            # parents[k] of tests/a/b.py: k = 0 is tests/a, k = 2 the repository root.
            if int(match.group(1)) > len(rel.parts) - 1:
                found.append(f"{rel}:{lineno}: goes above the repository root: {line.strip()}")
    return found


def test_the_scan_sees_the_test_tree() -> None:
    names = {p.relative_to(REPO).as_posix() for p in SOURCES}
    assert {"tests/conftest.py", "tests/bench/bench_raster.py", "tests/samples.py"} <= names
    assert len(SOURCES) > 50


@pytest.mark.parametrize(
    "line",
    [
        'SAMPLE_DATA = REPO.parent / "shared" / "data"',
        'SAMPLES = Path("../shared/data")',
        'open("/work/shared/data/camera.png")',
        "x = Path('..') / 'data'",
        'ROOT.parent / "elsewhere"',
    ],
)
def test_the_scan_catches_a_read_outside_the_repo(line: str) -> None:
    assert any(pattern.search(line) for pattern, _ in OUTSIDE), f"not caught: {line}"


@pytest.mark.parametrize("line", ['assert body["shared"] is False', 'json={"shared": True}'])
def test_the_scan_leaves_the_materials_shared_field_alone(line: str) -> None:
    assert not any(pattern.search(line) for pattern, _ in OUTSIDE), f"caught: {line}"


def test_parents_above_the_root_are_caught() -> None:
    rel_depth_ok = "Path(__file__).resolve().parents[2]"
    too_far = "Path(__file__).resolve().parents[3]"
    probe = TESTS / "unit" / "test_repo_self_contained.py"
    depth = len(probe.relative_to(REPO).parts) - 1
    assert int(_PARENTS.search(rel_depth_ok).group(1)) <= depth  # type: ignore[union-attr]
    assert int(_PARENTS.search(too_far).group(1)) > depth  # type: ignore[union-attr]


def test_no_test_or_benchmark_reads_outside_the_repository() -> None:
    offences = [o for path in SOURCES if path != Path(__file__).resolve() for o in _offences(path)]
    assert offences == [], "\n".join(offences)


def test_sample_data_is_inside_the_repository() -> None:
    assert SAMPLE_DATA.resolve().is_relative_to(REPO)
    for name in ("camera.png", "coffee.png", "astronaut.png", "horse.png"):
        assert (SAMPLE_DATA / name).is_file(), name


def test_every_sample_is_listed_with_its_checksum_and_licence() -> None:
    readme = (SAMPLE_DATA / "README.md").read_text(encoding="utf-8")
    rows = {
        m.group(1): m.group(0)
        for m in re.finditer(r"^\| (\S+) \|.*\| ([0-9a-f]{64}) \|$", readme, re.MULTILINE)
    }
    files = sorted(p for p in SAMPLE_DATA.iterdir() if p.is_file() and p.name != "README.md")
    for folder in (p for p in SAMPLE_DATA.iterdir() if p.is_dir() and p.name != "__pycache__"):
        # A subfolder (vector designs, timing records, ...) documents its own files.
        assert (folder / "README.md").is_file(), f"tests/data/{folder.name} has no README.md"
    assert files, "tests/data is empty"
    for path in files:
        assert path.name in rows, f"{path.name} has no provenance row in tests/data/README.md"
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert digest in rows[path.name], f"{path.name}: SHA-256 differs from the README"
        assert re.search(r"CC0|public domain", rows[path.name]), f"{path.name}: no licence"
    total = sum(p.stat().st_size for p in SAMPLE_DATA.rglob("*") if p.is_file())
    assert total < 8 * 1024 * 1024, f"tests/data holds {total} bytes: keep it small"
