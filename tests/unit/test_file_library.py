"""The file library service alone: a real SQLite file, a processing queue with no workers.

With no workers running, a queued file stays queued, so each decision can be looked at in a
known state: accept from a plain async byte source, re-process, delete one or many, and the
may-run / may-delete / may-reprocess answers that the job runner shares through the lock.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from laserd import errors
from laserd.db import open_database
from laserd.events import EventHub
from laserd.imaging.laser_settings import LaserSettings
from laserd.library.processing import Processing
from laserd.library.service import FileLibrary
from laserd.settings import Settings, ensure_state_dirs
from laserd.store import files as files_store
from laserd.store import jobs as jobs_store
from laserd.store import projects as projects_store
from laserd.store import users as users_store
from tests.conftest import make_settings
from tests.gcode_samples import LASER_BODY

Row = dict[str, Any]


async def chunks(data: bytes, size: int = 7) -> AsyncIterator[bytes]:
    """A plain async byte source (no web request anywhere)."""
    for i in range(0, len(data), size):
        yield data[i : i + size]
        await asyncio.sleep(0)


class Library:
    def __init__(self, settings: Settings, conn: Any, processing: Processing) -> None:
        self.settings, self.conn, self.processing = settings, conn, processing
        self.files = FileLibrary(settings, conn, processing)

    async def user(self, name: str = "owner") -> int:
        row = await users_store.insert(
            self.conn, username=name, email=f"{name}@example.test", full_name="",
            password_hash="x", role="user", status="active",
        )  # fmt: skip
        return row.id

    async def project(self, owner_id: int, **laser: Any) -> Row:
        return await projects_store.insert(
            self.conn, owner_id=owner_id, name="p", description="",
            laser=LaserSettings(**laser).model_dump(mode="json"),
        )  # fmt: skip

    async def ready(self, row: Row) -> Row:
        """As a worker leaves a file: ready, its G-code and previews on disk, off the queue."""
        self.processing.discard(row["id"])
        await files_store.mark_done(self.conn, row["id"], stats={"lines": 6}, warnings=[])
        for path in (
            self.settings.gcode_path(row["id"]),
            self.settings.preview_path(row["id"]),
            self.settings.preview_path(row["id"], thumb=True),
        ):
            path.write_bytes(b"made")
        got = await files_store.get(self.conn, row["id"])
        assert got is not None
        return got

    async def job(self, file_id: int, state: str = "running") -> None:
        row = await jobs_store.insert(
            self.conn, file_id=file_id, user_id=None, file_name="x", lines_total=6  # type: ignore[arg-type]
        )
        await jobs_store.update(self.conn, row["id"], state=state)

    def on_disk(self) -> list[str]:
        s = self.settings
        return sorted(
            p.name for d in (s.uploads_dir, s.generated_dir, s.tmp_dir) for p in d.iterdir()
        )


@pytest.fixture
async def lib(tmp_path: Path) -> AsyncIterator[Library]:
    settings = make_settings(tmp_path / "state")
    ensure_state_dirs(settings)
    conn = await open_database(settings.db_path)
    processing = Processing(settings, conn, EventHub())  # never started: no workers
    try:
        yield Library(settings, conn, processing)
    finally:
        await conn.close()


async def test_accept_from_a_plain_byte_source_stores_and_queues(lib: Library) -> None:
    project = await lib.project(await lib.user(), passes=2)
    row = await lib.files.accept(project, chunks(LASER_BODY), "job.gco")
    assert row["status"] == "pending" and row["kind"] == "gcode" and row["name"] == "job.gco"
    assert row["laser"]["passes"] == 2  # a snapshot of the project's settings
    assert (lib.settings.uploads_dir / row["stored_name"]).read_bytes() == LASER_BODY
    assert lib.processing.is_busy(row["id"])
    assert not await lib.files.may_run(row["id"])  # queued: not runnable


@pytest.mark.parametrize(
    ("content", "status"),
    [(b"", 422), (b"hello\nworld\n", 415), (b"\x89PNG\r\n\x1a\n" + b"\0" * 64, 201)],
)
async def test_a_refused_upload_leaves_nothing(lib: Library, content: bytes, status: int) -> None:
    project = await lib.project(await lib.user())
    if status == 201:  # a PNG signature is accepted here; the worker reports it unreadable
        row = await lib.files.accept(project, chunks(content), "x.png")
        assert row["kind"] == "image"
        return
    with pytest.raises(errors.LaserdError) as info:
        await lib.files.accept(project, chunks(content), "x.gcode")
    assert info.value.status == status
    assert lib.on_disk() == []
    assert await files_store.in_project(lib.conn, project["id"]) == []


async def test_a_source_that_fails_midway_leaves_nothing(lib: Library) -> None:
    project = await lib.project(await lib.user())

    async def broken() -> AsyncIterator[bytes]:
        yield LASER_BODY
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await lib.files.accept(project, broken(), "a.gcode")
    assert lib.on_disk() == []


async def test_the_answers_follow_the_state(lib: Library) -> None:
    project = await lib.project(await lib.user())
    row = await lib.ready(await lib.files.accept(project, chunks(LASER_BODY), "a.gcode"))
    fid = row["id"]
    assert await lib.files.may_run(fid)
    assert await lib.files.may_delete(fid) and await lib.files.may_reprocess(fid)
    await lib.job(fid, "running")
    assert not await lib.files.may_delete(fid) and not await lib.files.may_reprocess(fid)
    with pytest.raises(errors.Conflict) as info:
        await lib.files.delete(fid)
    assert info.value.code == "file_in_use"
    with pytest.raises(errors.Conflict):
        await lib.files.reprocess(fid)
    assert await files_store.get(lib.conn, fid) is not None  # nothing changed
    assert lib.settings.gcode_path(fid).is_file()


async def test_a_finished_job_no_longer_holds_the_file(lib: Library) -> None:
    project = await lib.project(await lib.user())
    row = await lib.ready(await lib.files.accept(project, chunks(LASER_BODY), "a.gcode"))
    await lib.job(row["id"], "completed")
    await lib.files.delete(row["id"])
    assert lib.on_disk() == []


async def test_reprocess_queues_with_the_projects_current_settings(lib: Library) -> None:
    project = await lib.project(await lib.user())
    row = await lib.ready(await lib.files.accept(project, chunks(LASER_BODY), "a.gcode"))
    await projects_store.update(
        lib.conn, project["id"], {"laser": LaserSettings(passes=3).model_dump(mode="json")}
    )
    again = await lib.files.reprocess(row["id"])
    assert again["status"] == "pending" and again["laser"]["passes"] == 3
    assert lib.processing.is_busy(row["id"])
    assert not await lib.files.may_run(row["id"])


async def test_delete_of_a_queued_file_takes_it_off_the_queue(lib: Library) -> None:
    project = await lib.project(await lib.user())
    row = await lib.files.accept(project, chunks(LASER_BODY), "a.gcode")
    assert lib.processing.is_busy(row["id"])
    await lib.files.delete(row["id"])
    assert not lib.processing.is_busy(row["id"])
    assert lib.on_disk() == []
    with pytest.raises(errors.NotFound):
        await lib.files.delete(row["id"])


async def test_delete_project_and_owner_take_every_file_or_none(lib: Library) -> None:
    owner = await lib.user()
    p1, p2 = await lib.project(owner), await lib.project(owner)
    a = await lib.ready(await lib.files.accept(p1, chunks(LASER_BODY), "a.gcode"))
    b = await lib.ready(await lib.files.accept(p2, chunks(LASER_BODY), "b.gcode"))
    await lib.job(b["id"], "paused")
    with pytest.raises(errors.Conflict):  # b is in use: the owner cannot go, nothing goes
        await lib.files.delete_owner(owner, lambda: users_store.delete(lib.conn, owner))
    assert await files_store.get(lib.conn, a["id"]) is not None
    await lib.files.delete_project(p1["id"])  # a is free: its project goes with it
    assert await files_store.get(lib.conn, a["id"]) is None
    assert await projects_store.get(lib.conn, p1["id"]) is None
    assert not lib.settings.gcode_path(a["id"]).exists()
    assert lib.settings.gcode_path(b["id"]).exists()


async def test_file_to_run_is_only_answered_under_the_lock(lib: Library) -> None:
    project = await lib.project(await lib.user())
    row = await lib.ready(await lib.files.accept(project, chunks(LASER_BODY), "a.gcode"))
    with pytest.raises(AssertionError):
        await lib.files.file_to_run(row["id"])
    async with lib.files.lock:
        assert (await lib.files.file_to_run(row["id"]))["id"] == row["id"]
    lib.settings.gcode_path(row["id"]).unlink()
    async with lib.files.lock:
        with pytest.raises(errors.Conflict, match="missing"):
            await lib.files.file_to_run(row["id"])


async def test_a_delete_waits_for_a_job_being_recorded_under_the_lock(lib: Library) -> None:
    """What the job runner does: check and record under the lock; a delete arriving meanwhile
    is decided after, and sees the job."""
    project = await lib.project(await lib.user())
    row = await lib.ready(await lib.files.accept(project, chunks(LASER_BODY), "a.gcode"))
    recorded = asyncio.Event()

    async def submit() -> None:
        async with lib.files.lock:
            await lib.files.file_to_run(row["id"])
            await asyncio.sleep(0.05)  # the job row is written while the lock is held
            await lib.job(row["id"], "queued")
            recorded.set()

    task = asyncio.create_task(submit())
    await asyncio.sleep(0)
    with pytest.raises(errors.Conflict):
        await lib.files.delete(row["id"])
    assert recorded.is_set()
    await task


async def test_a_job_never_starts_on_a_file_queued_again(lib: Library) -> None:
    """``Processing.is_busy`` counts: a ready row queued again (a re-process about to write
    its status) is not runnable."""
    project = await lib.project(await lib.user())
    row = await lib.ready(await lib.files.accept(project, chunks(LASER_BODY), "a.gcode"))
    assert await lib.files.may_run(row["id"])
    lib.processing.enqueue(row["id"])
    assert not await lib.files.may_run(row["id"])
    async with lib.files.lock:
        with pytest.raises(errors.Conflict) as info:
            await lib.files.file_to_run(row["id"])
    assert info.value.code == "file_not_ready"
