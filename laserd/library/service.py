"""The file library: the one owner of a file's life cycle (issue 13 item 1, issue 12 item 12).

A file is accepted (an upload from any async byte source), processed, re-processed, run by a
job and deleted — alone, with its project, or with its owner. Each of those changes depends on
the others: a file must not be deleted while a job streams it or a worker converts it, must
not be re-processed under a running job, and must not be run while its G-code is being
rewritten. The checks used to live in three handler modules, each an ``await`` apart from the
change it guarded and with no lock shared with job submission, so a delete and a job start
arriving together could both pass.

Every decision here is taken under :attr:`FileLibrary.lock`, which the job runner also holds
while it accepts a job: "may it run / be deleted / be re-processed?" and the change itself
happen as one step against the job runner's. Of a delete and a job start arriving together,
exactly one wins; the other gets 409 (``file_in_use``) or 404 (the file is gone). A file being
processed may be deleted: a queued one is taken off the queue; a worker converting one stops
within a quarter of a second (it sees the upload gone), and what it wrote is removed when it
reports back; nothing of the file is recorded or kept. ``Processing.is_busy`` keeps a job from
starting on a file whose G-code is about to be rewritten.

The service takes plain values (rows, ids, a byte source), never a web request; access
control (whose file is it?) stays with the caller.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterable, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiosqlite

from laserd import errors
from laserd.imaging.laser_settings import LaserSettings
from laserd.library.budget import check_output_budget
from laserd.library.processing import Processing
from laserd.library.uploads import artefacts, check_free_space, receive, remove_paths
from laserd.schemas.designs import LayerPatch, LayerSettings, Placement, apply_layer_patches
from laserd.settings import Settings
from laserd.store import files as files_store
from laserd.store import projects as projects_store

log = logging.getLogger(__name__)

Row = dict[str, Any]


def _in_use(what: str) -> errors.Conflict:
    return errors.Conflict(f"A job is using {what}.", code="file_in_use")


def _not_ready(row: Row) -> errors.Conflict:
    return errors.Conflict(
        f"The file is not ready to run (status {row['status']}).", code="file_not_ready"
    )


class FileLibrary:
    """Accept, re-process, delete; and decide, atomically with job submission, what may be
    done to a file now. Owned by the processing context, beside :class:`Processing`."""

    def __init__(
        self, settings: Settings, conn: aiosqlite.Connection, processing: Processing
    ) -> None:
        self._settings = settings
        self._conn = conn
        self._processing = processing
        #: Held for every decision and the change that follows it; the job runner holds it
        #: while it checks a file and records the job (:meth:`file_to_run`).
        self.lock = asyncio.Lock()

    # ------------------------------------------------------------------ the decisions
    # Each ``check_*`` must be called with :attr:`lock` held, and the change it allows made
    # before the lock is released.

    async def _active_job_uses(self, file_ids: list[int]) -> bool:
        return await files_store.used_by_active_job(self._conn, file_ids)

    def _check_run(self, row: Row) -> None:
        if row["status"] != "ready" or self._processing.is_busy(row["id"]):
            raise _not_ready(row)
        if not self._settings.gcode_path(row["id"]).is_file():
            raise errors.Conflict(
                "The file's G-code is missing; process it again.", code="file_not_ready"
            )

    async def _check_reprocess(self, row: Row) -> None:
        if await self._active_job_uses([row["id"]]):
            raise _in_use("this file")

    async def _check_delete(self, rows: list[Row], what: str) -> None:
        if rows and await self._active_job_uses([r["id"] for r in rows]):
            raise _in_use(what)

    async def may_run(self, file_id: int) -> bool:
        async with self.lock:
            row = await files_store.get(self._conn, file_id)
            return row is not None and self._answer(lambda: self._check_run(row))

    async def may_reprocess(self, file_id: int) -> bool:
        async with self.lock:
            row = await files_store.get(self._conn, file_id)
            return row is not None and await self._answer_async(self._check_reprocess(row))

    async def may_delete(self, file_id: int) -> bool:
        async with self.lock:
            row = await files_store.get(self._conn, file_id)
            return row is not None and await self._answer_async(
                self._check_delete([row], "this file")
            )

    @staticmethod
    def _answer(check: Callable[[], None]) -> bool:
        try:
            check()
        except errors.Conflict:
            return False
        return True

    @staticmethod
    async def _answer_async(check: Awaitable[None]) -> bool:
        try:
            await check
        except errors.Conflict:
            return False
        return True

    async def file_to_run(self, file_id: int) -> Row:
        """The file's current row if a job may run it now, else 404/409. The job runner calls
        it with :attr:`lock` held and records the job before releasing it."""
        assert self.lock.locked(), "file_to_run needs FileLibrary.lock"
        row = await files_store.get(self._conn, file_id)
        if row is None:
            raise errors.NotFound("No such file.")
        self._check_run(row)
        return row

    # ------------------------------------------------------------------ accept

    def check_room(self, incoming_bytes: int) -> None:
        """507 before reading a body of ``incoming_bytes`` that could not be stored."""
        check_free_space(self._settings, incoming_bytes)

    async def accept(
        self,
        project: Row,
        source: AsyncIterable[bytes],
        filename: str | None,
        *,
        layers: list[dict[str, Any]] | None = None,
        placement: dict[str, Any] | None = None,
    ) -> Row:
        """Store an upload from ``source`` into ``project`` and queue it for processing.

        413/415/422/507 as :func:`laserd.library.uploads.receive` decides; an image whose
        G-code at the project's settings could be too big is 422 ``output_too_large``. On any
        refusal nothing stays on disk or in the database. ``layers`` and ``placement`` (a
        design laserd made itself, such as a material test grid) are stored before the first
        processing, so it runs with them.
        """
        settings = self._settings
        upload = await receive(settings, source, filename)
        laser = LaserSettings.model_validate(project["laser"] or {})
        stored = settings.uploads_dir / upload.stored_name
        try:
            await check_output_budget(
                settings,
                [{"kind": upload.kind, "name": upload.name, "stored_name": upload.stored_name}],
                laser,
            )
            async with self.lock:
                row = await files_store.insert(
                    self._conn,
                    project_id=project["id"],
                    owner_id=project["owner_id"],
                    name=upload.name,
                    kind=upload.kind,
                    size=upload.size,
                    sha256=upload.sha256,
                    stored_name=upload.stored_name,
                    laser=laser.model_dump(mode="json"),
                    layers=layers,
                    placement=placement,
                )
                self._processing.enqueue(row["id"])
        except BaseException:
            remove_paths([stored])
            raise
        return row

    # ------------------------------------------------------------------ re-process

    async def reprocess(self, file_id: int) -> Row:
        """Process again with the project's current laser settings (409 while a job uses it;
        422 ``output_too_large`` when the result could be too big)."""
        row = await self._get(file_id)
        project = await projects_store.get(self._conn, row["project_id"])
        laser = LaserSettings.model_validate((project or {}).get("laser") or {})
        await check_output_budget(self._settings, [row], laser)
        async with self.lock:
            row = await self._get(file_id)
            await self._check_reprocess(row)
            await files_store.mark_pending(self._conn, file_id, laser.model_dump(mode="json"))
            self._processing.enqueue(file_id)
        return await self._get(file_id)

    async def update_design(
        self, file_id: int, layers: list[LayerPatch] | None, placement: Placement | None
    ) -> Row:
        """``PATCH /files/{id}``: change some layers of a design and/or the placement of a
        design or image, then process it again with them (409 while a job uses the file).

        422 for layers of a file that is no design, a layer id the design does not have, a
        merged layer that is invalid, or a placement for G-code (run as written); 409
        ``file_not_ready`` for layers of a design that has not been read yet.
        """
        async with self.lock:
            row = await self._get(file_id)
            await self._check_reprocess(row)
            new_layers = None
            if layers:
                new_layers = self._merged_layers(row, layers)
            if placement is not None and row["kind"] == "gcode":
                raise errors.ValidationFailed.field(
                    "placement", "G-code files run as written; only images and designs are placed"
                )
            await files_store.mark_pending(
                self._conn,
                file_id,
                layers=new_layers,
                placement=placement.model_dump(mode="json") if placement else None,
            )
            self._processing.enqueue(file_id)
        return await self._get(file_id)

    @staticmethod
    def _merged_layers(row: Row, patches: list[LayerPatch]) -> list[dict[str, Any]]:
        if row["kind"] not in ("svg", "dxf"):
            raise errors.ValidationFailed.field("layers", "only designs (svg, dxf) have layers")
        if row.get("layers") is None:
            raise errors.Conflict(
                "The design has not been read yet; change its layers once it is processed.",
                code="file_not_ready",
            )
        current = [LayerSettings.model_validate(x) for x in row["layers"]]
        known = {layer.id for layer in current}
        for i, patch in enumerate(patches):
            if patch.id not in known:
                raise errors.ValidationFailed.field(
                    f"layers[{i}].id", f"the file has no layer {patch.id}"
                )
        try:
            merged = apply_layer_patches(current, patches)
        except ValueError as exc:  # a merged layer out of range (pydantic's ValidationError)
            raise errors.ValidationFailed.field("layers", str(exc).splitlines()[0]) from exc
        return [layer.model_dump(mode="json") for layer in merged]

    async def check_settings(self, project_id: int, laser: LaserSettings) -> None:
        """422 ``output_too_large`` when an image of the project could make too much G-code
        with ``laser`` (a change of the project's settings is refused up front)."""
        files = await files_store.in_project(self._conn, project_id)
        await check_output_budget(self._settings, files, laser)

    # ------------------------------------------------------------------ delete

    async def delete(self, file_id: int) -> None:
        """Delete a file and what was made from it (409 while a job uses it; processing of it
        is abandoned)."""
        async with self.lock:
            row = await self._get(file_id)
            await self._check_delete([row], "this file")
            self._processing.discard(file_id)
            await files_store.delete(self._conn, file_id)
        await self._remove_artefacts([row])

    async def delete_project(self, project_id: int) -> None:
        """Delete a project with its files (409 while a job uses one of them)."""

        async def delete_rows() -> None:
            await projects_store.delete(self._conn, project_id)

        await self.delete_many(
            lambda: files_store.in_project(self._conn, project_id),
            delete_rows,
            "a file of this project",
        )

    async def delete_owner(
        self, user_id: int, delete_account: Callable[[], Awaitable[None]]
    ) -> None:
        """Delete a user's files along with the account: ``delete_account`` (which removes
        the rows, by cascade) runs under the lock once no job uses any of them."""
        await self.delete_many(
            lambda: files_store.owned_by(self._conn, user_id),
            delete_account,
            "one of this user's files",
        )

    async def delete_many(
        self,
        select: Callable[[], Awaitable[list[Row]]],
        delete_rows: Callable[[], Awaitable[None]],
        what: str,
    ) -> None:
        """The files ``select`` names go with whatever ``delete_rows`` deletes: checked and
        deleted in one step under the lock; their artefacts removed afterwards."""
        async with self.lock:
            rows = await select()
            await self._check_delete(rows, what)
            for r in rows:
                self._processing.discard(r["id"])
            await delete_rows()
        await self._remove_artefacts(rows)

    # ------------------------------------------------------------------ helpers

    async def _get(self, file_id: int) -> Row:
        row = await files_store.get(self._conn, file_id)
        if row is None:
            raise errors.NotFound("No such file.")
        return row

    async def _remove_artefacts(self, rows: list[Row]) -> None:
        paths: list[Path] = [p for r in rows for p in artefacts(self._settings, r)]
        if paths:
            await asyncio.get_running_loop().run_in_executor(None, remove_paths, paths)
