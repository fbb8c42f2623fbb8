"""Uploads and processing through the real app: hostile input, statuses, downloads, deletion."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import struct
import zlib
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image

from laserd.app import create_app
from laserd.keys import DB
from tests.api.conftest import Account, create_account, error_of
from tests.conftest import SAMPLE_DATA, bare_hardware, make_settings
from tests.gcode_samples import (
    LASER_BODY_NORMALISED,
    cura_file,
    one_line_picture_file,
    prusaslicer_file,
)

API = "/api/v1"
GCODE = b"; test job\nG21 G90\nG0 X10 Y10\nM4 S500\nG1 X30 F1200\nG1 Y30\nM5\n"
PROCESS_TIMEOUT_S = 120


@pytest.fixture
def settings(tmp_path: Path):
    return make_settings(
        tmp_path / "state",
        storage={"max_upload_mb": 2},
        machine={"bed_mm": {"x": 300, "y": 200}},
    )


async def new_project(client: Any, account: Account, **laser: Any) -> dict[str, Any]:
    r = await client.post(
        f"{API}/projects", json={"name": "test", "laser": laser}, headers=account.headers
    )
    assert r.status == 201, await r.text()
    return await r.json()


def form(name: str, content: bytes, field: str = "file") -> aiohttp.FormData:
    """As a browser sends it: the file name raw in the part header, not percent-encoded."""
    data = aiohttp.FormData(quote_fields=False)
    data.add_field(field, content, filename=name, content_type="application/octet-stream")
    return data


async def upload(
    client: Any, account: Account, project_id: int, name: str, content: bytes
) -> aiohttp.ClientResponse:
    return await client.post(
        f"{API}/projects/{project_id}/files", data=form(name, content), headers=account.headers
    )


async def processed(client: Any, account: Account, file_id: int) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + PROCESS_TIMEOUT_S
    while True:
        r = await client.get(f"{API}/files/{file_id}", headers=account.headers)
        assert r.status == 200
        file = await r.json()
        if file["status"] in ("ready", "failed"):
            return file
        assert asyncio.get_running_loop().time() < deadline, file
        await asyncio.sleep(0.1)


async def upload_processed(
    client: Any, account: Account, name: str, content: bytes, **laser: Any
) -> dict[str, Any]:
    project = await new_project(client, account, **laser)
    r = await upload(client, account, project["id"], name, content)
    assert r.status == 201, await r.text()
    return await processed(client, account, (await r.json())["id"])


def state_files(settings: Any) -> list[str]:
    root = settings.storage.state_dir
    files = (p for p in root.rglob("*") if p.is_file() and "laserd.db" not in p.name)
    return sorted(str(p.relative_to(root)) for p in files)


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))


async def test_gcode_upload_is_processed_and_downloadable(client: Any, user: Account) -> None:
    project = await new_project(client, user)
    r = await upload(client, user, project["id"], "job.gcode", GCODE)
    assert r.status == 201
    file = await r.json()
    assert file["status"] in ("pending", "processing")
    assert file["sha256"] == hashlib.sha256(GCODE).hexdigest()
    assert file["size"] == len(GCODE) and file["kind"] == "gcode" and file["name"] == "job.gcode"
    file = await processed(client, user, file["id"])
    assert file["status"] == "ready", file
    assert file["progress"] == 1 and file["error"] is None and file["processed_at"]
    assert file["stats"]["lines"] == 6
    assert file["stats"]["bounds"] == {"xmin": 10, "xmax": 30, "ymin": 10, "ymax": 30}
    assert file["stats"]["laser_bounds"] == {"xmin": 10, "xmax": 30, "ymin": 10, "ymax": 30}
    assert file["stats"]["laser_on_mm"] == pytest.approx(40)
    r = await client.get(f"{API}/files/{file['id']}/gcode", headers=user.headers)
    assert r.status == 200
    assert await r.read() == b"G21G90\nG0X10Y10\nM4S500\nG1X30F1200\nG1Y30\nM5\n"
    assert "job.gcode" in r.headers["Content-Disposition"]
    r = await client.get(f"{API}/files/{file['id']}/original", headers=user.headers)
    assert await r.read() == GCODE
    r = await client.get(f"{API}/files/{file['id']}/preview.png", headers=user.headers)
    assert r.status == 200 and r.content_type == "image/png"
    big = Image.open(io.BytesIO(await r.read()))
    r = await client.get(f"{API}/files/{file['id']}/preview.png?size=thumb", headers=user.headers)
    thumb = Image.open(io.BytesIO(await r.read()))
    assert max(thumb.size) < max(big.size)
    r = await client.get(f"{API}/projects/{project['id']}/files", headers=user.headers)
    page = await r.json()
    assert page["total"] == 1 and page["items"][0]["id"] == file["id"]


async def test_image_upload_becomes_raster_gcode(client: Any, user: Account) -> None:
    content = (SAMPLE_DATA / "horse.png").read_bytes()
    file = await upload_processed(
        client, user, "horse.png", content, width_mm=40, line_interval_mm=0.2,
        origin_mm={"x": 10, "y": 20}, dither="floyd_steinberg",
    )  # fmt: skip
    assert file["status"] == "ready", file
    assert file["kind"] == "image"
    bounds = file["stats"]["bounds"]
    assert bounds["xmin"] >= 10 - 2.01 and bounds["xmax"] <= 50 + 2.01  # overscan 2 mm
    assert bounds["ymin"] >= 20 and file["stats"]["laser_on_mm"] > 0
    assert file["warnings"] == []


async def test_png_named_gcode_is_an_image(client: Any, user: Account) -> None:
    project = await new_project(client, user)
    content = (SAMPLE_DATA / "horse.png").read_bytes()
    r = await upload(client, user, project["id"], "sneaky.gcode", content)
    assert r.status == 201
    assert (await r.json())["kind"] == "image"


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("data.gcode", bytes(range(256)) * 8),  # binary with a G-code extension
        ("notes.txt", b"Shopping list\nmilk\neggs\n"),  # text that is not G-code
        ("shopping.gcode", b"; my list\nmilk\neggs\nG1 butter\n"),  # a G-code name, not G-code
        # an SVG name on a web page (real SVGs are designs: tests/api/test_designs.py)
        ("drawing.svg", b"<html><body><svg></svg></body></html>"),
    ],
)
async def test_unknown_types_are_refused(
    client: Any, user: Account, settings: Any, name: str, content: bytes
) -> None:
    project = await new_project(client, user)
    r = await upload(client, user, project["id"], name, content)
    assert r.status == 415
    assert (await error_of(r))["code"] == "unsupported_media_type"
    assert state_files(settings) == [] or all(p.startswith("jwt") for p in state_files(settings))


@pytest.mark.parametrize(
    "name", ["job.gco", "job.g", "job.cnc", "job.nc", "job.ngc", "job.gcode", "job.exe", "job"]
)
async def test_gcode_is_accepted_under_any_file_name(
    client: Any, user: Account, name: str
) -> None:
    """Issue 12, item 16: .gco (Mr Beam, slicers), .g and .cnc answered 415."""
    file = await upload_processed(client, user, name, GCODE)
    assert file["kind"] == "gcode" and file["name"] == name
    assert file["status"] == "ready", file
    assert file["stats"]["lines"] == 6


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("prusa.gcode", prusaslicer_file),
        ("cura.gcode", cura_file),
        ("mrbeam.gco", lambda: one_line_picture_file(300_000)),
        ("paren.nc", lambda: one_line_picture_file(300_000, paren=True)),
    ],
)
async def test_real_tool_files_with_long_thumbnail_comments_are_processed(
    client: Any, user: Account, name: str, make: Any
) -> None:
    """The upload sniff looks past comment blocks bigger than its head, and the analysis
    drops comment lines of 300 KB (they failed the file: "line is longer than 64 KiB")."""
    content = make()
    assert len(content) > 120_000
    file = await upload_processed(client, user, name, content)
    assert file["kind"] == "gcode" and file["status"] == "ready", file
    assert file["stats"]["lines"] == 7
    assert file["stats"]["laser_on_mm"] == pytest.approx(40)
    r = await client.get(f"{API}/files/{file['id']}/gcode", headers=user.headers)
    assert await r.read() == LASER_BODY_NORMALISED
    r = await client.get(f"{API}/files/{file['id']}/original", headers=user.headers)
    assert await r.read() == content


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (prusaslicer_file(body=b"Dear diary,\ntoday I burnt toast.\n"), "no G or M command"),
        (prusaslicer_file(body=b""), "no G-code commands"),
        (b"G1 X1\n" + bytes(range(1, 32)) * 100 + b"\x00", "binary"),
    ],
    ids=["text-after-thumbnail", "only-comments", "binary"],
)
async def test_text_that_is_not_gcode_gets_a_clear_415(
    client: Any, user: Account, settings: Any, content: bytes, reason: str
) -> None:
    project = await new_project(client, user)
    r = await upload(client, user, project["id"], "notes.gco", content)
    assert r.status == 415
    err = await error_of(r)
    assert err["code"] == "unsupported_media_type"
    assert reason in err["message"] and "any file name" in err["message"]
    assert not list(settings.uploads_dir.glob("*"))
    assert not list(settings.tmp_dir.glob("*"))


async def test_empty_file_is_refused(client: Any, user: Account, settings: Any) -> None:
    project = await new_project(client, user)
    r = await upload(client, user, project["id"], "empty.gcode", b"")
    assert r.status == 422
    err = await error_of(r)
    assert err["details"][0]["field"] == "file"
    assert not list(settings.uploads_dir.glob("*"))
    assert not list(settings.tmp_dir.glob("*"))


async def test_size_just_over_the_limit_is_refused_while_streaming(
    client: Any, user: Account, settings: Any
) -> None:
    project = await new_project(client, user)
    limit = 2 * 1024 * 1024
    content = b"G0X1\n" * (limit // 5) + b"G0X2\n"  # 2 MiB + 3 bytes
    assert len(content) == limit + 3
    r = await upload(client, user, project["id"], "big.gcode", content)
    assert r.status == 413
    assert (await error_of(r))["code"] == "payload_too_large"
    assert not list(settings.uploads_dir.glob("*"))
    assert not list(settings.tmp_dir.glob("*"))
    ok = await upload(client, user, project["id"], "fits.gcode", content[: limit - 5])
    assert ok.status == 201


@pytest.mark.parametrize(
    ("raw_name", "shown"),
    [
        ("../../../etc/passwd.gcode", "passwd.gcode"),
        ("..\\..\\windows\\evil.nc", "evil.nc"),
        ("/abs/path/job.gcode", "job.gcode"),
        ("   .hidden.gcode  ", "hidden.gcode"),
        ("x" * 500 + ".gcode", "x" * 114 + ".gcode"),
    ],
)
async def test_names_are_sanitised_and_never_reach_the_file_system(
    client: Any, user: Account, settings: Any, raw_name: str, shown: str
) -> None:
    project = await new_project(client, user)
    r = await upload(client, user, project["id"], raw_name, GCODE)
    assert r.status == 201, await r.text()
    file = await r.json()
    assert file["name"] == shown
    stored = [p.name for p in settings.uploads_dir.iterdir()]
    assert len(stored) == 1 and stored[0].endswith(".gcode") and "passwd" not in stored[0]
    assert all(p.startswith(("uploads/", "generated/", "jwt")) for p in state_files(settings))
    r = await client.get(f"{API}/files/{file['id']}/original", headers=user.headers)
    assert "filename*=UTF-8''" in r.headers["Content-Disposition"]


@pytest.mark.parametrize(
    ("raw_name", "shown"),
    [
        (b"right\xe2\x80\xaeto\xe2\x80\x8bleft.gcode", "righttoleft.gcode"),  # bidi, zero width
        (b"tab\there.gcode", "tab here.gcode"),
        # Refused by the multipart parser (400) or cleaned, never kept as is:
        (b"nul\x00byte.gcode", None),
        (b"esc\x1b[31mred.gcode", None),
        (b"del\x7f.gcode", None),
    ],
)
async def test_control_characters_in_names(
    client: Any, user: Account, settings: Any, raw_name: bytes, shown: str | None
) -> None:
    project = await new_project(client, user)
    boundary = "laserd-test-boundary"
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"".encode()
        + raw_name
        + b'"\r\nContent-Type: application/octet-stream\r\n\r\n'
        + GCODE
        + f"\r\n--{boundary}--\r\n".encode()
    )
    headers = {**user.headers, "Content-Type": f"multipart/form-data; boundary={boundary}"}
    r = await client.post(f"{API}/projects/{project['id']}/files", data=body, headers=headers)
    if shown is None:
        assert r.status in (201, 400)
        if r.status == 201:
            name = (await r.json())["name"]
            assert all(ord(c) >= 32 for c in name)
        return
    assert r.status == 201, await r.text()
    assert (await r.json())["name"] == shown


async def test_form_fields_cannot_name_a_path(client: Any, user: Account, settings: Any) -> None:
    project = await new_project(client, user)
    data = aiohttp.FormData(quote_fields=False)
    data.add_field("path", "../../outside.gcode")
    data.add_field("stored_name", "../../outside.gcode")
    data.add_field("file", GCODE, filename="job.gcode")
    r = await client.post(
        f"{API}/projects/{project['id']}/files?path=../../x&name=../y",
        data=data,
        headers=user.headers,
    )
    assert r.status == 201
    assert all(p.startswith(("uploads/", "generated/", "jwt")) for p in state_files(settings))
    assert not (settings.storage.state_dir.parent / "outside.gcode").exists()


async def test_missing_file_field_and_wrong_content_type(client: Any, user: Account) -> None:
    project = await new_project(client, user)
    r = await client.post(
        f"{API}/projects/{project['id']}/files", data=form("a.gcode", GCODE, field="upload"),
        headers=user.headers,
    )  # fmt: skip
    assert r.status == 422
    r = await client.post(
        f"{API}/projects/{project['id']}/files", json={"file": "G0X1"}, headers=user.headers
    )
    assert r.status == 400


async def test_truncated_png_fails_with_a_readable_error(client: Any, user: Account) -> None:
    content = (SAMPLE_DATA / "camera.png").read_bytes()
    file = await upload_processed(client, user, "cut.png", content[: len(content) // 2])
    assert file["status"] == "failed"
    assert "truncated" in file["error"]
    assert file["stats"] is None
    r = await client.get(f"{API}/files/{file['id']}/gcode", headers=user.headers)
    assert r.status == 409 and (await error_of(r))["code"] == "file_not_ready"


async def test_decompression_bomb_fails_before_decoding(client: Any, user: Account) -> None:
    file = await upload_processed(client, user, "bomb.png", _png_header_only(100_000, 100_000))
    assert file["status"] == "failed"
    assert "too large" in file["error"]


async def test_non_utf8_gcode(client: Any, user: Account) -> None:
    ok = await upload_processed(
        client, user, "latin1.nc", b"(r\xe9glage \xff)\nG0 X1 Y1 ; caf\xe9\nM5\n"
    )
    assert ok["status"] == "ready", ok
    bad = await upload_processed(client, user, "bad.nc", b"G0 X1\nG0 X2 \xe9\nM5\n")
    assert bad["status"] == "failed"
    assert "line 2" in bad["error"] and "0xE9" in bad["error"]


async def test_one_megabyte_single_line(client: Any, user: Account) -> None:
    file = await upload_processed(client, user, "long.gcode", b"G1X1" * (1 << 18))
    assert file["status"] == "failed"
    assert "line 1" in file["error"] and "longer than" in file["error"]


async def test_refusals_list_every_line(client: Any, user: Account) -> None:
    file = await upload_processed(client, user, "bad.gcode", b"G0X1\n$X\nG0X2\nG92X0\nM5\n")
    assert file["status"] == "failed"
    assert "line 2:" in file["error"] and "line 4:" in file["error"]


async def test_warnings_are_reported(client: Any, user: Account) -> None:
    file = await upload_processed(client, user, "wide.gcode", b"M4S100\nG1X350Y10F600\nM5\n")
    assert file["status"] == "ready"
    assert any("leaves the bed in X" in w for w in file["warnings"])


async def test_reprocess_uses_the_current_project_settings(client: Any, user: Account) -> None:
    content = (SAMPLE_DATA / "horse.png").read_bytes()
    file = await upload_processed(client, user, "h.png", content, width_mm=20, overscan_mm=0)
    assert file["stats"]["bounds"]["xmax"] <= 20.001
    r = await client.patch(
        f"{API}/projects/{file['project_id']}", json={"laser": {"width_mm": 50}},
        headers=user.headers,
    )  # fmt: skip
    assert r.status == 200
    r = await client.post(f"{API}/files/{file['id']}/process", headers=user.headers)
    assert r.status == 202
    assert (await r.json())["status"] in ("pending", "processing", "ready")
    again = await processed(client, user, file["id"])
    assert again["status"] == "ready"
    assert 45 < again["stats"]["bounds"]["xmax"] <= 50.001


async def test_other_users_and_guests(
    client: Any, user: Account, guest: Account, make_account: Any
) -> None:
    file = await upload_processed(client, user, "mine.gcode", GCODE)
    other = await make_account("user")
    for path in ("", "/original", "/gcode", "/preview.png"):
        r = await client.get(f"{API}/files/{file['id']}{path}", headers=other.headers)
        assert r.status == 404, path
    r = await client.delete(f"{API}/files/{file['id']}", headers=other.headers)
    assert r.status == 404
    r = await upload(client, other, file["project_id"], "x.gcode", GCODE)
    assert r.status == 404
    r = await client.get(f"{API}/files/{file['id']}", headers=guest.headers)
    assert r.status == 403
    admin = await make_account("admin")
    r = await client.get(f"{API}/files/{file['id']}", headers=admin.headers)
    assert r.status == 200


async def test_delete_removes_everything_and_is_refused_while_a_job_runs(
    client: Any, user: Account, settings: Any
) -> None:
    file = await upload_processed(client, user, "job.gcode", GCODE)
    conn = client.app[DB]
    await conn.execute(
        "INSERT INTO jobs (file_id, user_id, file_name, state, created_at, updated_at)"
        " VALUES (?, ?, 'job.gcode', 'running', '2026-01-01T00:00:00.000Z',"
        " '2026-01-01T00:00:00.000Z')",
        (file["id"], user.id),
    )
    r = await client.delete(f"{API}/files/{file['id']}", headers=user.headers)
    assert r.status == 409
    r = await client.post(f"{API}/files/{file['id']}/process", headers=user.headers)
    assert r.status == 409
    await conn.execute("UPDATE jobs SET state = 'completed'")
    assert settings.gcode_path(file["id"]).exists()
    r = await client.delete(f"{API}/files/{file['id']}", headers=user.headers)
    assert r.status == 204
    assert not settings.gcode_path(file["id"]).exists()
    assert not settings.preview_path(file["id"]).exists()
    assert not list(settings.uploads_dir.glob("*"))
    r = await client.get(f"{API}/files/{file['id']}", headers=user.headers)
    assert r.status == 404


async def test_files_left_unfinished_are_processed_at_start(
    aiohttp_client: Any, client: Any, user: Account, settings: Any
) -> None:
    file = await upload_processed(client, user, "job.gcode", GCODE)
    conn = client.app[DB]
    await conn.execute(
        "UPDATE files SET status = 'processing', progress = 0.4, stats_json = NULL WHERE id = ?",
        (file["id"],),
    )
    settings.gcode_path(file["id"]).unlink()
    restarted = await aiohttp_client(create_app(settings, hardware=bare_hardware()))
    again = await processed(restarted, user, file["id"])
    assert again["status"] == "ready"
    assert settings.gcode_path(file["id"]).exists()


async def test_no_free_space_answers_507_and_leaves_nothing(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    full = make_settings(tmp_path / "full", storage={"min_free_mb": 10**9})
    client = await aiohttp_client(create_app(full, hardware=bare_hardware()))
    account = await create_account(client, "user")
    project = await new_project(client, account)
    r = await upload(client, account, project["id"], "job.gcode", GCODE)
    assert r.status == 507
    assert (await error_of(r))["code"] == "insufficient_storage"
    assert not list(full.uploads_dir.glob("*")) and not list(full.tmp_dir.glob("*"))


async def test_progress_and_status_events_on_the_websocket(client: Any, user: Account) -> None:
    ws = await client.ws_connect(f"{API}/ws")
    await ws.send_str(json.dumps({"type": "auth", "token": user.token}))
    project = await new_project(client, user)
    content = (SAMPLE_DATA / "camera.png").read_bytes()
    r = await upload(client, user, project["id"], "camera.png", content)
    file_id = (await r.json())["id"]
    statuses = []
    deadline = asyncio.get_running_loop().time() + PROCESS_TIMEOUT_S
    while "ready" not in statuses and "failed" not in statuses:
        left = deadline - asyncio.get_running_loop().time()
        msg = await ws.receive_json(timeout=max(left, 0.1))
        if msg.get("type") == "file" and msg.get("id") == file_id:
            statuses.append(msg["status"])
            assert msg["owner_id"] == user.id
    await ws.close()
    assert statuses[-1] == "ready"
    assert "processing" in statuses


async def test_stale_temporaries_are_removed_at_start(aiohttp_client: Any, tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "state")
    for folder in (settings.generated_dir, settings.tmp_dir):
        folder.mkdir(parents=True, exist_ok=True)
    (settings.generated_dir / ".7.gcode.abc.tmp").write_bytes(b"half")
    (settings.tmp_dir / "upload-xyz.part").write_bytes(b"half")
    await aiohttp_client(create_app(settings, hardware=bare_hardware()))
    assert list(settings.generated_dir.iterdir()) == []
    assert list(settings.tmp_dir.iterdir()) == []
    # (outputs that a row points at stay: test_orphaned_files_are_removed_at_start)


async def test_orphaned_files_are_removed_at_start(aiohttp_client, tmp_path) -> None:
    """An upload renamed into place just before a kill -9 has no row: the next start removes
    it, and leaves every file a row points at alone."""
    from laserd.app import create_app
    from tests.api.machine_helpers import raster_lines, ready_file

    settings = make_settings(tmp_path / "state")
    client = await aiohttp_client(create_app(settings, hardware=bare_hardware()))
    from tests.api.conftest import create_account

    owner = await create_account(client, "user")
    f = await ready_file(client, owner.id, raster_lines(2, 2))
    kept = settings.gcode_path(f["id"])
    await client.close()
    orphan_upload = settings.uploads_dir / "deadbeef-orphan"
    orphan_upload.write_bytes(b"G0X1\n")
    orphan_gcode = settings.gcode_path(9999)
    orphan_gcode.write_bytes(b"G0X1\n")
    client = await aiohttp_client(create_app(settings, hardware=bare_hardware()))
    assert not orphan_upload.exists() and not orphan_gcode.exists()
    assert kept.exists()
    await client.close()
