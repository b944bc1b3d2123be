"""Headless Chromium for tests, driven over the DevTools protocol on a pipe
(`--remote-debugging-pipe`: no port, no extra package). Debian's `chromium` is installed
with apt-get when no Chromium is found and the tests run as root (CI); elsewhere set
`W2S_CHROMIUM` to a Chromium binary."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shlex
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
APT = "apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium"


def find_chromium() -> str | None:
    given = os.environ.get("W2S_CHROMIUM")
    if given:
        return given
    return next((p for p in map(shutil.which, NAMES) if p), None)


def ensure_chromium() -> str:
    """A Chromium binary; installs Debian's `chromium` if none is found and we are root."""
    found = find_chromium()
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        proc = subprocess.run(
            ["bash", "-c", APT], capture_output=True, text=True, timeout=1500, env=env
        )
        found = find_chromium()
        if found:
            return found
        pytest.fail(f"apt-get could not install chromium: {proc.stderr[-1000:]}")
    pytest.fail(
        "no Chromium found: install Debian's chromium (apt-get install chromium) "
        "or set W2S_CHROMIUM to a Chromium binary"
    )


class Browser:
    """One headless Chromium; `page()` opens a tab and returns a `Page`."""

    def __init__(self, binary: str, profile: Path) -> None:
        flags = [
            "--headless",
            "--no-sandbox",  # root in a container
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-extensions",
            "--no-first-run",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            "--remote-debugging-pipe",
            "about:blank",
        ]
        # the protocol runs on fds 3 (commands in) and 4 (replies out): the shell moves
        # our pipes there, then gives the browser's own stdin/stdout to /dev/null
        cmd = f"exec {shlex.quote(binary)} {' '.join(flags)} 3<&0 4>&1 0</dev/null 1>/dev/null"
        self.proc = subprocess.Popen(
            ["bash", "-c", cmd],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.replies: dict[int, dict] = {}
        self.events: queue.Queue[dict] = queue.Queue()
        self.cond = threading.Condition()
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        buf = b""
        while True:
            chunk = self.proc.stdout.read1(65536)
            if not chunk:
                with self.cond:
                    self.cond.notify_all()
                return
            buf += chunk
            *messages, buf = buf.split(b"\0")
            for raw in messages:
                msg = json.loads(raw)
                if "id" in msg:
                    with self.cond:
                        self.replies[msg["id"]] = msg
                        self.cond.notify_all()
                else:
                    self.events.put(msg)

    def call(
        self, method: str, params: dict | None = None, session: str | None = None, timeout=60.0
    ) -> dict[str, Any]:
        """Send one command and wait for its reply; a protocol error raises."""
        with self.cond:
            self.next_id += 1
            ident = self.next_id
        msg: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self.proc.stdin.write(json.dumps(msg).encode() + b"\0")
        self.proc.stdin.flush()
        deadline = time.monotonic() + timeout
        with self.cond:
            while ident not in self.replies:
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise RuntimeError(f"no reply to {method} (browser exit {self.proc.poll()})")
                self.cond.wait(left)
            reply = self.replies.pop(ident)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def page(self) -> Page:
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        attached = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})
        return Page(self, attached["sessionId"])

    def close(self) -> None:
        with contextlib.suppress(RuntimeError):
            self.call("Browser.close", timeout=10)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Page:
    """A tab: `open` loads a URL and records what it requested and logged."""

    def __init__(self, browser: Browser, session: str) -> None:
        self.b, self.session = browser, session
        self.requests: list[str] = []
        self.log: list[dict] = []
        for domain in ("Page", "Network", "Runtime", "Log"):
            self.call(f"{domain}.enable")

    def call(self, method: str, params: dict | None = None, timeout: float = 60.0) -> dict:
        return self.b.call(method, params, self.session, timeout)

    def _drain(self, until: str | None, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                wait = max(0.0, deadline - time.monotonic()) if until else 0.0
                ev = self.b.events.get(timeout=wait) if until else self.b.events.get_nowait()
            except queue.Empty:
                if until:
                    raise RuntimeError(f"timed out waiting for {until}") from None
                return
            if ev.get("sessionId") != self.session:
                continue
            if ev["method"] == "Network.requestWillBeSent":
                self.requests.append(ev["params"]["request"]["url"])
            elif ev["method"] == "Log.entryAdded":
                self.log.append(ev["params"]["entry"])
            elif ev["method"] == "Runtime.exceptionThrown":
                self.log.append({"level": "error", "text": str(ev["params"])})
            if until and ev["method"] == until:
                return

    def open(self, url: str, width: int = 1280, height: int = 900) -> None:
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        self.call("Page.navigate", {"url": url})
        self._drain("Page.loadEventFired", timeout=60)
        time.sleep(0.5)  # late events (console messages, image decodes)
        self._drain(None, 0)

    def evaluate(self, expression: str) -> Any:
        res = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in res:
            raise RuntimeError(str(res["exceptionDetails"]))
        return res["result"].get("value")

    def screenshot(self, path: Path, max_height: int = 12000) -> Path:
        """A PNG of the whole page (up to `max_height` CSS pixels tall)."""
        import base64

        size = self.call("Page.getLayoutMetrics")["cssContentSize"]
        clip = {
            "x": 0,
            "y": 0,
            "width": size["width"],
            "height": min(size["height"], max_height),
            "scale": 1,
        }
        shot = self.call(
            "Page.captureScreenshot",
            {"format": "png", "clip": clip, "captureBeyondViewport": True},
            timeout=120,
        )
        path.write_bytes(base64.b64decode(shot["data"]))
        return path
