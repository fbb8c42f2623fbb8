"""The web UI in headless Chromium against a real laserd with the simulated controller.

Each test drives the UI the way a person would (labels, buttons, roles) and checks what is on
the screen; the API is used only to arrange things a test is not about (a guest account, a
long G-code file) and to trip the simulated lid switch.
"""

from __future__ import annotations

import base64
import re
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ADMIN
from tests.browser.harness import SAMPLE_DATA, ApiFailure, Daemon

pytestmark = pytest.mark.browser

LONG_S = 120_000  # ms: generous for a busy 2-core machine


def sign_in(page: Any, daemon: Daemon, username: str, password: str) -> None:
    page.goto(daemon.base + "/#/login")
    page.get_by_label("Username or email").fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#machine-state")).to_be_visible()


def long_gcode(lines: int = 300) -> bytes:
    """Back-and-forth laser moves that keep the simulator busy for a while."""
    out = ["G21", "G90", "M4 S0", "G0 X10 Y10"]
    for i in range(lines):
        x = 110 if i % 2 == 0 else 10
        out.append(f"G1 X{x} Y{10 + i * 0.2:.1f} F600 S200")
    out += ["M5", "G0 X0 Y0"]
    return ("\n".join(out) + "\n").encode()


def no_token_storage(page: Any) -> None:
    """Tokens live only in a JS variable (and the refresh token in an HttpOnly cookie)."""
    stored = page.evaluate("() => localStorage.length + sessionStorage.length")
    assert stored == 0
    assert "token" not in page.url.lower()
    cookies = page.context.cookies()
    assert all(c["httpOnly"] for c in cookies), cookies


def test_first_run_upload_preview_run_history(fresh_daemon: Daemon, new_page: Any) -> None:
    page, watch = new_page()
    code = fresh_daemon.wait_setup_code()
    page.goto(fresh_daemon.base + "/")
    expect(page).to_have_url(re.compile(r"#/setup$"))
    page.get_by_label("Setup code").fill(code)
    page.get_by_label("Username").fill("maker")
    page.get_by_label("Email").fill("maker@example.org")
    page.get_by_label("Password", exact=True).fill("laser safety 1")
    page.get_by_label("Repeat password").fill("laser safety 1")
    page.get_by_role("button", name="Create administrator").click()
    expect(page.locator("#machine-state")).to_be_visible()
    expect(page.locator("#who")).to_contain_text("maker · admin")
    no_token_storage(page)
    # The simulated machine starts with its circuits closed; make sure of it anyway.
    admin_token = fresh_daemon.login("maker", "laser safety 1")
    fresh_daemon.api("POST", "/debug/gpio/lid", {"safe": True}, token=admin_token)
    expect(page.locator(".interlock-msg")).to_be_hidden()

    # A project, made small so the simulated job is short.
    page.get_by_role("link", name="Projects", exact=True).click()
    expect(page.get_by_text("No projects yet.")).to_be_visible()  # then the form is open
    page.get_by_label("Name", exact=True).fill("Camera test")
    page.get_by_role("button", name="Create project").click()
    expect(page.get_by_role("heading", name="Camera test")).to_be_visible()
    page.get_by_text("Project and laser settings").click()
    page.get_by_label("Width on the bed (mm)").fill("12")
    page.get_by_label("Line interval (mm)").fill("0.3")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator(".toast")).to_contain_text("Settings saved")

    # Upload: the progress row appears, then the file is listed and processed live.
    page.set_input_files("#file-input", str(SAMPLE_DATA / "camera.png"))
    row = page.locator("li.file", has_text="camera.png")
    expect(row).to_be_visible()
    expect(row).to_have_attribute("data-status", "ready", timeout=LONG_S)
    thumb = row.locator(".thumb img")
    expect(thumb).to_have_attribute("src", re.compile(r"^blob:"))
    assert page.evaluate("(img) => img.complete && img.naturalWidth > 0", thumb.element_handle())
    big = page.locator("img.preview")
    expect(big).to_have_attribute("src", re.compile(r"^blob:"))
    expect(page.locator(".detail")).to_contain_text(re.compile(r"\d+\.\d × \d+\.\d mm"))
    # The time estimate says what it is based on: the planner model and the machine's limits.
    estimate = page.locator("dd.estimate")
    expect(estimate).to_contain_text(re.compile(r"\d+ s · GRBL planner model, \d+ mm/min"))
    expect(estimate).to_have_attribute("title", re.compile(r"\$120=\d+"))

    # Trace the outline with the laser off; the head moves and comes back to rest.
    page.get_by_role("button", name="Frame", exact=True).click()
    expect(page.locator(".toast", has_text="Tracing the outline")).to_be_visible()
    expect(page.locator("#link-status")).to_have_text("Ready", timeout=LONG_S)

    # Run it on the simulator and watch the progress bar reach 100 %.
    run = page.get_by_role("button", name="Run", exact=True)
    expect(run).to_be_enabled(timeout=30_000)
    run.click()
    expect(page).to_have_url(re.compile(r"#/dashboard$"))
    bar = page.get_by_role("progressbar", name="Job progress")
    expect(bar).to_be_visible()
    expect(bar).to_have_attribute("aria-valuenow", "100", timeout=LONG_S)
    expect(page.locator(".job-state")).to_contain_text("Completed")

    page.get_by_role("link", name="Jobs", exact=True).click()
    done = page.locator("tr[data-state=completed]", has_text="camera.png")
    expect(done).to_be_visible()
    expect(done).to_contain_text("100 %")
    watch.check()


DROP_FILE_JS = """
async ([b64, name]) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const data = new DataTransfer();
  data.items.add(new File([bytes], name, { type: "image/png" }));
  const zone = document.getElementById("dropzone");
  for (const type of ["dragenter", "dragover", "drop"]) {
    const init = { dataTransfer: data, bubbles: true, cancelable: true };
    zone.dispatchEvent(new DragEvent(type, init));
  }
}
"""


def test_drag_and_drop_upload_shows_progress(daemon: Daemon, new_page: Any) -> None:
    token = daemon.admin_token  # type: ignore[attr-defined]
    project = daemon.api("POST", "/projects", {"name": "Drop zone"}, token=token)
    page, watch = new_page()
    sign_in(page, daemon, *ADMIN)
    page.goto(f"{daemon.base}/#/projects/{project['id']}")
    expect(page.get_by_text("No files yet.")).to_be_visible()
    # A slow uplink (about 400 KB/s), so the upload takes long enough to watch its progress.
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 400_000},
    )
    content = (SAMPLE_DATA / "astronaut.png").read_bytes()
    page.evaluate(DROP_FILE_JS, [base64.b64encode(content).decode(), "astronaut.png"])
    bar = page.get_by_role("progressbar", name="Uploading astronaut.png")
    expect(bar).to_be_visible()
    expect(bar).to_have_attribute("aria-valuenow", re.compile(r"^[1-9][0-9]?$"))  # 1..99 %
    row = page.locator("li.file", has_text="astronaut.png")
    expect(row).to_be_visible(timeout=LONG_S)
    expect(row).to_have_attribute("data-status", re.compile("pending|processing|ready"))
    expect(row).to_have_attribute("data-status", "ready", timeout=LONG_S)
    expect(row.locator(".thumb img")).to_have_attribute("src", re.compile("^blob:"))
    watch.check()


def test_processing_failure_is_explained(daemon: Daemon, new_page: Any) -> None:
    token = daemon.admin_token  # type: ignore[attr-defined]
    project = daemon.api("POST", "/projects", {"name": "Broken file"}, token=token)
    page, watch = new_page()
    sign_in(page, daemon, *ADMIN)
    page.goto(f"{daemon.base}/#/projects/{project['id']}")
    bad = b"G21\nG90\nG1 X10 Y10 F600 S100\nG1 X20 Q7\nM5\n"
    page.set_input_files(
        "#file-input", files=[{"name": "bad.gcode", "mimeType": "text/plain", "buffer": bad}]
    )
    row = page.locator("li.file", has_text="bad.gcode")
    expect(row).to_have_attribute("data-status", "failed", timeout=LONG_S)
    expect(row.locator(".badge")).to_have_text("Processing failed")
    error = row.locator(".file-error")
    expect(error).to_contain_text("4")  # the line number of the bad word
    row.get_by_role("button", name="Open bad.gcode").click()
    expect(page.locator(".detail .notice.error")).to_contain_text("Processing failed")
    run = page.get_by_role("button", name="Run", exact=True)
    expect(run).to_be_disabled()
    expect(page.locator(".detail .reason")).to_contain_text("Processing failed")
    watch.check()


def test_wrong_password_shows_error(daemon: Daemon, new_page: Any) -> None:
    page, watch = new_page()
    page.goto(daemon.base + "/#/login")
    page.get_by_label("Username or email").fill(ADMIN[0])
    page.get_by_label("Password", exact=True).fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    error = page.get_by_role("form", name="Sign in").locator(".form-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("Wrong username or password")
    expect(page).to_have_url(re.compile(r"#/login$"))
    expect(page.locator("#nav")).to_be_hidden()
    watch.check()


def test_sign_out_ends_the_session(daemon: Daemon, new_page: Any) -> None:
    page, watch = new_page()
    sign_in(page, daemon, *ADMIN)
    page.reload()  # the refresh cookie brings the session back after a reload
    expect(page.locator("#who")).to_contain_text(ADMIN[0])
    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    expect(page.locator(".toast.error")).to_have_count(0)
    assert not [c for c in page.context.cookies() if c["value"]]
    page.reload()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    expect(page.locator("#nav")).to_be_hidden()
    watch.check()


@pytest.mark.slow
def test_expired_access_token_is_renewed_quietly(tmp_path: Path, new_page: Any) -> None:
    # Access tokens that live about 3 s; the refresh cookie renews them behind the scenes.
    d = Daemon(tmp_path / "state", extra_env={"LASERD_AUTH__ACCESS_TOKEN_DAYS": "0.000035"})
    d.start()
    try:
        d.create_admin("sleepy", "wake me up 1")
        page, watch = new_page()
        sign_in(page, d, "sleepy", "wake me up 1")
        renewals: list[int] = []
        page.on(
            "response",
            lambda r: renewals.append(r.status) if r.url.endswith("/auth/refresh") else None,
        )
        time.sleep(4)
        page.get_by_role("link", name="Account", exact=True).click()
        expect(page.locator("main h1")).to_have_text("Account")
        expect(page.get_by_text("sleepy", exact=True)).to_be_visible()
        assert renewals and renewals[-1] == 200
        expect(page.get_by_role("button", name="Sign in")).to_have_count(0)
        watch.check()
        page.context.close()
    finally:
        d.stop()


def test_guest_sees_no_controls(daemon: Daemon, new_page: Any) -> None:
    token = daemon.admin_token  # type: ignore[attr-defined]
    daemon.api(
        "POST",
        "/users",
        {
            "username": "visitor",
            "email": "visitor@example.org",
            "password": "just looking 1",
            "role": "guest",
            "status": "active",
        },
        token=token,
    )
    page, watch = new_page()
    sign_in(page, daemon, "visitor", "just looking 1")
    expect(page.get_by_role("heading", name="Watching only")).to_be_visible()
    for name in ("Jog", "Overrides"):
        expect(page.get_by_role("heading", name=name, exact=True)).to_have_count(0)
    for name in ("Home", "Unlock", "Pause", "Resume", "Cancel job", "Connect"):
        expect(page.get_by_role("button", name=name, exact=True)).to_have_count(0)
    expect(page.get_by_role("link", name="Admin")).to_be_hidden()

    page.get_by_role("link", name="Projects", exact=True).click()
    expect(page.get_by_text("Guests cannot create projects.")).to_be_visible()
    expect(page.get_by_role("button", name="Create project")).to_have_count(0)

    page.goto(daemon.base + "/#/admin")
    expect(page.locator("#machine-state")).to_be_visible()  # sent back to the dashboard
    expect(page.get_by_role("heading", name="Administration")).to_have_count(0)
    watch.check()


def test_interlock_trip_locks_resume(daemon: Daemon, new_page: Any, artifacts: Path) -> None:
    token = daemon.admin_token  # type: ignore[attr-defined]
    project = daemon.api("POST", "/projects", {"name": "Lid test"}, token=token)
    f = daemon.upload(token, project["id"], "long.gcode", long_gcode(), "text/plain")
    daemon.wait_file_ready(token, f["id"])
    daemon.wait_machine_idle(token)

    page, watch = new_page()
    sign_in(page, daemon, *ADMIN)
    lid = page.locator(".lights li", has_text="lid")
    expect(lid).to_have_class(re.compile(r"\bok\b"))
    job = daemon.api("POST", "/jobs", {"file_id": f["id"]}, token=token)
    try:
        expect(page.locator(".job-state")).to_have_text("Running", timeout=30_000)
        expect(page).to_have_title(re.compile(r"^\d+ % · Dashboard · laserd$"))
        pause = page.get_by_role("button", name="Pause", exact=True)
        expect(pause).to_be_enabled()
        page.screenshot(path=str(artifacts / "dashboard-job-running-laptop.png"))

        daemon.api("POST", "/debug/gpio/lid", {"safe": False}, token=token)
        expect(lid).to_have_class(re.compile(r"\bopen\b"))
        expect(page.locator(".interlock-msg")).to_have_text("Close the lid to continue.")
        expect(page.locator(".job-state")).to_contain_text("Paused")
        expect(page).to_have_title("Paused · Dashboard · laserd")
        resume = page.get_by_role("button", name="Resume", exact=True)
        expect(resume).to_be_disabled()
        expect(resume).to_have_attribute("title", re.compile("Close the lid"))
        expect(page.locator(".job-panel .reason")).to_contain_text("Close the lid")
        page.screenshot(path=str(artifacts / "dashboard-interlock-open-laptop.png"))

        daemon.api("POST", "/debug/gpio/lid", {"safe": True}, token=token)
        expect(lid).to_have_class(re.compile(r"\bok\b"))
        expect(page.locator(".interlock-msg")).to_be_hidden()
        # Safe again, but the resume delay (2 s here) must pass first.
        expect(resume).to_be_disabled()
        expect(page.locator(".job-panel .reason")).to_contain_text("Resume possible in")
        expect(resume).to_be_enabled(timeout=30_000)
        resume.click()
        expect(page.locator(".job-state")).to_have_text("Running", timeout=30_000)
    finally:
        try:
            daemon.api("POST", f"/jobs/{job['id']}/cancel", {}, token=token)
        except Exception:
            pass
    expect(page.locator(".job-state")).to_contain_text("Cancelled", timeout=LONG_S)
    watch.check()


def test_register_then_admin_approves(daemon: Daemon, new_page: Any) -> None:
    page, watch = new_page((390, 844))
    page.goto(daemon.base + "/#/register")
    page.get_by_label("Username").fill("newbie")
    page.get_by_label("Email").fill("newbie@example.org")
    page.get_by_label("Password", exact=True).fill("first burn 1")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_text("An admin must activate your account")).to_be_visible()

    page.get_by_role("link", name="Back to sign in").click()
    page.get_by_label("Username or email").fill("newbie")
    page.get_by_label("Password", exact=True).fill("first burn 1")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("form", name="Sign in").locator(".form-error")).to_be_visible()
    expect(page.locator("#nav")).to_be_hidden()

    admin, admin_watch = new_page()
    sign_in(admin, daemon, *ADMIN)
    admin.get_by_role("link", name="Admin", exact=True).click()
    row = admin.locator("tr[data-user=newbie]")
    expect(row).to_contain_text("pending")
    row.get_by_role("button", name="Approve").click()
    expect(admin.locator("tr[data-user=newbie]")).to_have_attribute("data-status", "active")

    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#machine-state")).to_be_visible()
    expect(page.get_by_role("heading", name="Jog", exact=True)).to_be_visible()
    watch.check()
    admin_watch.check()


@pytest.mark.slow
def test_live_connection_comes_back_after_restart(fresh_daemon: Daemon, new_page: Any) -> None:
    fresh_daemon.create_admin("owner", "restart me 1")
    page, watch = new_page()
    sign_in(page, fresh_daemon, "owner", "restart me 1")
    pill = page.locator("#link-status")
    expect(pill).to_have_text("Ready")
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))

    fresh_daemon.stop()
    expect(pill).to_have_text("Reconnecting…")
    expect(page.locator("#machine-state")).to_contain_text("(not live)")
    fresh_daemon.start()
    expect(pill).to_have_text("Ready", timeout=60_000)
    expect(page.locator("#machine-state")).to_have_text("Ready")
    # Same page, same session: no reload and no new sign-in.
    expect(page.locator("#who")).to_contain_text("owner")
    assert not [u for u in requests if u.endswith("/auth/login")]
    watch.check()


def test_api_key_shown_once_and_listed(daemon: Daemon, new_page: Any) -> None:
    page, watch = new_page()
    sign_in(page, daemon, *ADMIN)
    page.get_by_role("link", name="Account", exact=True).click()
    page.get_by_label("Name", exact=True).fill("shop pc")
    page.get_by_role("button", name="Create key").click()
    key = page.get_by_label("New API key")
    expect(key).to_be_visible()
    secret = key.input_value()
    assert len(secret) >= 20
    assert daemon.api("GET", "/auth/me", headers={"X-Api-Key": secret})["username"] == ADMIN[0]
    page.get_by_role("button", name="I have stored it").click()
    expect(key).to_have_count(0)
    expect(page.locator("table").get_by_text("shop pc")).to_be_visible()
    assert secret not in page.content()  # shown once, never again
    watch.check()


def test_profile_and_password_change(daemon: Daemon, new_page: Any) -> None:
    token = daemon.admin_token  # type: ignore[attr-defined]
    user = {"username": "changer", "email": "changer@example.org", "password": "old secret 1"}
    daemon.api("POST", "/users", {**user, "role": "user", "status": "active"}, token=token)
    page, watch = new_page((390, 844))
    sign_in(page, daemon, "changer", "old secret 1")
    page.get_by_role("link", name="Account", exact=True).click()
    page.get_by_label("Full name").fill("Chris Changer")
    page.get_by_role("button", name="Save profile").click()
    expect(page.locator(".toast", has_text="Profile saved")).to_be_visible()

    page.get_by_label("Current password").fill("wrong one 1")
    page.get_by_label("New password", exact=True).fill("new secret 2")
    page.get_by_label("Repeat new password").fill("new secret 2")
    page.get_by_role("button", name="Change password").click()
    form_error = page.locator("form", has=page.get_by_label("Current password")).locator(
        ".form-error"
    )
    expect(form_error).to_be_visible()
    expect(page.locator("#who")).to_contain_text("changer")  # still signed in

    page.get_by_label("Current password").fill("old secret 1")
    page.get_by_role("button", name="Change password").click()
    expect(page.locator(".toast", has_text="Password changed")).to_be_visible()
    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    sign_in(page, daemon, "changer", "new secret 2")
    expect(page.locator("#who")).to_contain_text("changer")
    assert (
        daemon.api("GET", "/auth/me", token=daemon.login("changer", "new secret 2"))["full_name"]
        == "Chris Changer"
    )
    watch.check()


def test_changing_the_email_asks_for_the_password(daemon: Daemon, new_page: Any) -> None:
    token = daemon.admin_token  # type: ignore[attr-defined]
    user = {"username": "mover", "email": "mover@example.org", "password": "move secret 1"}
    daemon.api("POST", "/users", {**user, "role": "user", "status": "active"}, token=token)
    page, watch = new_page()
    sign_in(page, daemon, "mover", "move secret 1")
    page.get_by_role("link", name="Account", exact=True).click()
    confirm = page.get_by_label("Your password (to change the email)")
    expect(confirm).to_be_hidden()  # the name alone needs no password
    page.get_by_label("Email", exact=True).fill("moved@example.org")
    expect(confirm).to_be_visible()
    page.get_by_role("button", name="Save profile").click()
    expect(page.get_by_text("is required to change the email address")).to_be_visible()
    confirm.fill("not my password")
    page.get_by_role("button", name="Save profile").click()
    expect(page.get_by_text("is not correct")).to_be_visible()
    assert (
        daemon.api("GET", "/auth/me", token=daemon.login("mover", "move secret 1"))["email"]
        == "mover@example.org"
    )
    confirm.fill("move secret 1")
    page.get_by_role("button", name="Save profile").click()
    expect(page.locator(".toast", has_text="Profile saved")).to_be_visible()
    expect(confirm).to_be_hidden()
    assert (
        daemon.api("GET", "/auth/me", token=daemon.login("mover", "move secret 1"))["email"]
        == "moved@example.org"
    )
    watch.check()


def test_account_page_says_which_api_keys_remain(daemon: Daemon, new_page: Any) -> None:
    token = daemon.admin_token  # type: ignore[attr-defined]
    user = {"username": "keyholder", "email": "keyholder@example.org", "password": "old secret 1"}
    daemon.api("POST", "/users", {**user, "role": "user", "status": "active"}, token=token)
    own = daemon.login("keyholder", "old secret 1")
    keys = {
        name: daemon.api("POST", "/auth/api-keys", {"name": name}, token=own)["key"]
        for name in ("laptop", "bridge")
    }

    def works(key: str) -> bool:
        try:
            daemon.api("GET", "/auth/me", headers={"X-Api-Key": key})
        except ApiFailure as exc:
            assert exc.status == 401
            return False
        return True

    page, watch = new_page()
    sign_in(page, daemon, "keyholder", "old secret 1")
    page.get_by_role("link", name="Account", exact=True).click()
    expect(page.locator("table").get_by_text("bridge")).to_be_visible()

    # Keep the keys: the page says which still work.
    page.get_by_label("Current password").fill("old secret 1")
    page.get_by_label("New password", exact=True).fill("new secret 2")
    page.get_by_label("Repeat new password").fill("new secret 2")
    page.get_by_label("Also revoke my API keys").uncheck()
    page.get_by_role("button", name="Change password").click()
    outcome = page.locator("#pw-outcome")
    expect(outcome).to_contain_text("API keys still valid: “bridge”, “laptop”.")
    assert works(keys["laptop"]) and works(keys["bridge"])

    # The default revokes them: the page says none is left and the table empties.
    page.get_by_label("Current password").fill("new secret 2")
    page.get_by_label("New password", exact=True).fill("new secret 3")
    page.get_by_label("Repeat new password").fill("new secret 3")
    expect(page.get_by_label("Also revoke my API keys")).to_be_checked()
    page.get_by_role("button", name="Change password").click()
    expect(outcome).to_contain_text("No API key of this account works any more.")
    expect(page.get_by_text("No API keys.")).to_be_visible()
    assert not works(keys["laptop"]) and not works(keys["bridge"])

    # Sign out everywhere, keeping a key: the confirmation names it before this sign-in ends.
    own = daemon.login("keyholder", "new secret 3")
    kept = daemon.api("POST", "/auth/api-keys", {"name": "printer pi"}, token=own)["key"]
    page.reload()
    expect(page.locator("table").get_by_text("printer pi")).to_be_visible()
    messages: list[str] = []

    def answer(dialog: Any) -> None:
        messages.append(dialog.message)
        dialog.accept()

    page.on("dialog", answer)
    page.get_by_label("Revoke my API keys too").uncheck()
    page.get_by_role("button", name="Sign out everywhere").click()
    expect(page.get_by_label("Username or email")).to_be_visible()
    assert messages and "API keys still valid: “printer pi”." in messages[0], messages
    assert works(kept)
    watch.check()


def test_admin_console_and_controller_settings(daemon: Daemon, new_page: Any) -> None:
    page, watch = new_page()
    page.on("dialog", lambda d: d.accept())
    sign_in(page, daemon, *ADMIN)
    expect(page.locator("#link-status")).to_have_text("Ready")
    page.goto(daemon.base + "/#/admin/console")
    page.get_by_label("Command", exact=True).fill("$I")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_label("Reply to your last command")).to_contain_text("[VER:")
    expect(page.get_by_role("log", name="Controller console")).to_contain_text("$I")

    page.get_by_role("link", name="Controller settings").click()
    rate = page.get_by_label("$110", exact=True)
    expect(rate).to_be_visible()
    old = rate.input_value()
    new = "5000" if old != "5000" else "5500"
    rate.fill(new)
    page.get_by_role("button", name="Write changed settings").click()
    expect(page.locator(".toast")).to_contain_text("Settings written")
    page.get_by_role("button", name="Read again").click()
    expect(page.get_by_label("$110", exact=True)).to_have_value(new)
    assert float(daemon.api("GET", "/machine/settings", token=daemon.admin_token)["$110"]) == float(
        new
    )  # type: ignore[attr-defined]
    watch.check()


@pytest.mark.slow
def test_job_waits_for_the_start_button(tmp_path: Path, new_page: Any) -> None:
    d = Daemon(
        tmp_path / "state",
        extra_env={"LASERD_SAFETY__START_BUTTON": "{pin=22, timeout_s=120}"},
    ).start()
    try:
        token = d.create_admin("starter", "press start 1")
        project = d.api("POST", "/projects", {"name": "Start button"}, token=token)
        f = d.upload(token, project["id"], "short.gcode", long_gcode(20), "text/plain")
        d.wait_file_ready(token, f["id"])
        d.wait_machine_idle(token)
        page, watch = new_page()
        sign_in(page, d, "starter", "press start 1")
        expect(page.locator(".lights li")).to_have_count(1)  # the button is not an interlock
        d.api("POST", "/jobs", {"file_id": f["id"]}, token=token)
        expect(page.locator(".job-state")).to_have_text("Press the start button on the machine.")
        expect(page.get_by_role("button", name="Pause", exact=True)).to_be_disabled()
        d.api("POST", "/debug/gpio/start", {"safe": False}, token=token)
        time.sleep(0.3)  # a real press lasts longer than the button's debounce
        d.api("POST", "/debug/gpio/start", {"safe": True}, token=token)
        bar = page.get_by_role("progressbar", name="Job progress")
        expect(bar).to_have_attribute("aria-valuenow", "100", timeout=LONG_S)
        expect(page.locator(".job-title")).to_have_text("Last job: short.gcode")
        watch.check()
        page.context.close()  # an open WebSocket makes laserd's shutdown wait
    finally:
        d.stop()


def test_validation_errors_beside_their_fields(daemon: Daemon, new_page: Any) -> None:
    # The server's 422 details land next to the field they name.
    page, watch = new_page()
    page.goto(daemon.base + "/#/register")
    page.get_by_label("Username").fill("no spaces allowed!")
    page.get_by_label("Email").fill("not-an-email")
    page.get_by_label("Password", exact=True).fill("x")
    page.get_by_role("button", name="Create account").click()
    username = page.get_by_label("Username")
    expect(username).to_have_attribute("aria-invalid", "true")
    err_id = username.get_attribute("id")
    expect(page.locator(f"#{err_id}-err")).to_be_visible()
    expect(page.locator(f"#{err_id}-err")).not_to_be_empty()

    # The laser form checks ranges while typing, and the material picker fills it.
    token = daemon.admin_token  # type: ignore[attr-defined]
    project = daemon.api("POST", "/projects", {"name": "Settings form"}, token=token)
    sign_in(page, daemon, *ADMIN)
    page.goto(f"{daemon.base}/#/projects/{project['id']}")
    page.get_by_text("Project and laser settings").click()
    power = page.get_by_label("Maximum power (%)")
    power.fill("150")
    expect(power).to_have_attribute("aria-invalid", "true")
    expect(page.locator(f"#{power.get_attribute('id')}-err")).to_have_text("Between 0 and 100.")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator(".toast", has_text="Settings saved")).to_have_count(0)
    page.get_by_label("Material", exact=True).select_option(label="Slate · diode")
    expect(page.get_by_label("Image mode")).to_have_value("jarvis")
    expect(power).to_have_value("90")
    expect(power).not_to_have_attribute("aria-invalid", "true")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator(".toast", has_text="Settings saved")).to_be_visible()
    saved = daemon.api("GET", f"/projects/{project['id']}", token=token)
    assert (saved["laser"]["dither"], saved["laser"]["power_max_pct"]) == ("jarvis", 90)
    assert saved["material"]["name"] == "Slate" and saved["material"]["matches"] is True
    watch.check()


def test_alarm_and_disconnected_states_offer_the_way_out(daemon: Daemon, new_page: Any) -> None:
    token = daemon.admin_token  # type: ignore[attr-defined]
    daemon.wait_machine_idle(token)
    page, watch = new_page()
    sign_in(page, daemon, *ADMIN)
    state = page.locator("#machine-state")
    expect(state).to_have_text("Ready")
    machine = page.locator(".machine-panel")

    # A soft reset during a slow jog loses the position: GRBL raises ALARM:3.
    daemon.api("POST", "/machine/jog", {"x": 100, "feed": 10, "relative": True}, token=token)
    expect(state).to_have_text("Jogging")
    daemon.api("POST", "/machine/reset", {}, token=token)
    expect(state).to_have_text("Alarm")
    expect(machine.locator(".state-sentence")).to_contain_text("Unlock to continue")
    expect(page.locator(".jog-panel .reason")).to_have_text("Alarm: unlock or home first.")
    expect(page.get_by_role("button", name="X plus")).to_be_disabled()
    machine.get_by_role("button", name="Unlock").click()
    expect(state).to_have_text("Ready")
    expect(page.get_by_role("button", name="X plus")).to_be_enabled()

    daemon.api("POST", "/machine/disconnect", {}, token=token)
    expect(state).to_have_text("Disconnected")
    expect(machine.locator(".state-sentence")).to_contain_text("Check the USB cable")
    expect(page.locator(".jog-panel .reason")).to_have_text("The controller is disconnected.")
    machine.get_by_role("button", name="Connect").click()
    expect(state).to_have_text("Ready", timeout=30_000)
    watch.check()


def test_someone_elses_job_cannot_be_controlled(daemon: Daemon, new_page: Any) -> None:
    token = daemon.admin_token  # type: ignore[attr-defined]
    user = {"username": "bystander", "email": "by@example.org", "password": "hands off 1"}
    daemon.api("POST", "/users", {**user, "role": "user", "status": "active"}, token=token)
    project = daemon.api("POST", "/projects", {"name": "Admin's job"}, token=token)
    f = daemon.upload(token, project["id"], "admin.gcode", long_gcode(), "text/plain")
    daemon.wait_file_ready(token, f["id"])
    daemon.wait_machine_idle(token)
    page, watch = new_page()
    sign_in(page, daemon, "bystander", "hands off 1")
    job = daemon.api("POST", "/jobs", {"file_id": f["id"]}, token=token)
    try:
        expect(page.locator(".job-state")).to_have_text("Running", timeout=30_000)
        expect(page.locator(".job-title")).to_have_text("admin.gcode")
        for name in ("Pause", "Cancel job"):
            button = page.get_by_role("button", name=name, exact=True)
            expect(button).to_be_disabled()
            expect(button).to_have_attribute("title", "This job belongs to another person.")
        expect(page.locator(".jog-panel .reason")).to_have_text("Another person's job is running.")
        expect(page.get_by_label("Feed", exact=True)).to_be_disabled()  # the override slider
    finally:
        daemon.api("POST", f"/jobs/{job['id']}/cancel", {}, token=token)
    expect(page.locator(".job-state")).to_contain_text("Cancelled", timeout=LONG_S)
    watch.check()


def test_overrides_belong_to_the_running_job(daemon: Daemon, new_page: Any) -> None:
    """Idle: the override controls are disabled and say why; during the job they show the
    controller's values; when it ends they are back at 100 % and disabled again."""
    token = daemon.admin_token  # type: ignore[attr-defined]
    project = daemon.api("POST", "/projects", {"name": "Override test"}, token=token)
    f = daemon.upload(token, project["id"], "ovr.gcode", long_gcode(), "text/plain")
    daemon.wait_file_ready(token, f["id"])
    daemon.wait_machine_idle(token)
    page, watch = new_page()
    sign_in(page, daemon, *ADMIN)
    power = page.get_by_label("Laser power", exact=True)
    reason = page.locator(".overrides-panel .reason")
    expect(power).to_be_disabled()
    expect(reason).to_have_text("No job is running: overrides apply to a running job.")
    expect(page.locator(".override-note")).to_contain_text("every job starts at 100 %")
    job = daemon.api("POST", "/jobs", {"file_id": f["id"]}, token=token)
    try:
        expect(page.locator(".job-state")).to_have_text("Running", timeout=30_000)
        expect(power).to_be_enabled()
        daemon.api("POST", "/machine/overrides", {"power": 150}, token=token)
        expect(page.locator("output[for=ovr-power]")).to_have_text("150 %")
    finally:
        daemon.api("POST", f"/jobs/{job['id']}/cancel", {}, token=token)
    expect(page.locator(".job-state")).to_contain_text("Cancelled", timeout=LONG_S)
    expect(page.locator("output[for=ovr-power]")).to_have_text("100 %")
    expect(power).to_be_disabled()
    watch.check()


def test_jog_with_keyboard_and_buttons(daemon: Daemon, new_page: Any) -> None:
    page, watch = new_page()
    sign_in(page, daemon, *ADMIN)
    expect(page.locator("#machine-state")).to_have_text("Ready")
    work_x = page.locator("table.pos tbody tr").first.locator("td").nth(0)
    work_y = page.locator("table.pos tbody tr").first.locator("td").nth(1)
    start_x = float(work_x.inner_text())
    start_y = float(work_y.inner_text())
    page.get_by_text("10 mm", exact=True).click()
    page.get_by_role("group", name=re.compile("^Jog pad")).focus()
    page.keyboard.press("ArrowRight")
    expect(work_x).to_have_text(f"{start_x + 10:.2f}", timeout=30_000)
    expect(page.locator("#machine-state")).to_have_text("Ready", timeout=30_000)
    page.get_by_role("button", name="Y plus").click()
    expect(work_y).to_have_text(f"{start_y + 10:.2f}", timeout=30_000)
    watch.check()


UNLABELLED_JS = """
() => [...document.querySelectorAll("main input, main select, main textarea, main button")]
  .filter((el) => el.type !== "hidden")
  .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute("aria-label")
    && !el.getAttribute("aria-labelledby") && !(el.tagName === "BUTTON" && el.textContent.trim()))
  .map((el) => el.outerHTML.slice(0, 120))
"""


@pytest.mark.slow
def test_screenshots_phone_and_laptop(daemon: Daemon, new_page: Any, artifacts: Path) -> None:
    token = daemon.admin_token  # type: ignore[attr-defined]
    project = daemon.api(
        "POST", "/projects", {"name": "Coasters", "description": "Birch, 90 mm"}, token=token
    )
    f = daemon.upload(
        token, project["id"], "horse.png", (SAMPLE_DATA / "horse.png").read_bytes(), "image/png"
    )
    daemon.wait_file_ready(token, f["id"])
    pages = {  # name: (route, its h1, what shows once its data arrived)
        "dashboard": ("#/dashboard", "Dashboard", ".lights li"),
        "projects": ("#/projects", "Projects", ".cards li"),
        "project": (f"#/projects/{project['id']}", "Coasters", "img.preview[src^='blob:']"),
        "jobs": ("#/jobs", "Jobs", ".panel p.muted, .jobs-table tbody tr"),
        "account": ("#/account", "Account", "#keys-h ~ p.muted, #keys-h ~ table tbody tr"),
        "admin-users": ("#/admin/users", "Administration", "tr[data-user]"),
        "admin-settings": ("#/admin/settings", "Administration", "#set-110"),
        "admin-console": ("#/admin/console", "Administration", "#console-line"),
    }
    for label, size in (("phone", (390, 844)), ("laptop", (1366, 800))):
        page, watch = new_page(size)
        sign_in(page, daemon, *ADMIN)
        for name, (route, heading, loaded) in pages.items():
            page.goto(daemon.base + "/" + route)
            expect(page.locator("main h1")).to_have_text(heading)
            expect(page.locator(loaded).filter(visible=True).first).to_be_visible()
            assert page.evaluate(UNLABELLED_JS) == [], f"unlabelled controls on {name}"
            page.screenshot(path=str(artifacts / f"{name}-{label}.png"), full_page=True)
        watch.check()
        page.context.clear_cookies()
        page.goto(daemon.base + "/#/login")
        page.reload()
        expect(page.get_by_role("button", name="Sign in")).to_be_visible()
        page.screenshot(path=str(artifacts / f"login-{label}.png"), full_page=True)
    assert len(list(artifacts.glob("*-phone.png"))) >= len(pages) + 1
