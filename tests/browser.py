"""Open local HTML files in headless Chromium over the DevTools protocol on a pipe (no port is opened).

`inspect_page` reports how many plots rendered, console errors and any network request the page made;
`screenshot` saves a PNG of a page.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
INSTALL_HINT = "Install the Debian package `chromium` (apt-get install -y chromium)."
# Switches that keep a headless run local and quiet: no sandbox (tests run as root), no GPU, and no
# background requests for updates, sync or metrics.
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
    "--no-default-browser-check", "--disable-extensions", "--disable-background-networking", "--disable-sync",
    "--disable-component-update", "--disable-default-apps", "--metrics-recording-only", "--mute-audio",
    "--remote-debugging-pipe",
]

# Runs in the page: every element with class "plot" counts as rendered when it has a non-zero box and,
# for an inline SVG, its drawn marks (the "data" group) have a non-zero bounding box too.
PLOT_PROBE = """(() => {
  const plots = [...document.querySelectorAll('.plot')];
  const rendered = plots.filter(plot => {
    const box = plot.getBoundingClientRect();
    if (box.width <= 0 || box.height <= 0) return false;
    if (plot instanceof HTMLImageElement) return plot.complete && plot.naturalWidth > 0;
    const marks = plot.querySelector('.data');
    if (!marks) return false;
    const drawn = marks.getBBox();
    return drawn.width > 0 && drawn.height > 0;
  });
  return {plots: plots.length, rendered: rendered.length,
          missing: plots.filter(plot => !rendered.includes(plot)).map(plot => plot.getAttribute('aria-label')),
          images: document.images.length, title: document.title, text: document.body.innerText};
})()"""


class BrowserError(RuntimeError):
    """Chromium is missing, failed to start, or did not reply in time."""


def find_chromium() -> str | None:
    """Return the path of a Chromium executable on PATH, or None."""
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageReport:
    """What a page did in the browser."""

    title: str
    text: str
    plots: int
    rendered_plots: int
    missing_plots: list[str]
    images: int
    console_errors: list[str] = field(default_factory=list)
    # URLs the page requested other than itself; a self-contained page requests none.
    requests: list[str] = field(default_factory=list)


class DevToolsPipe:
    """A headless Chromium process driven over --remote-debugging-pipe (JSON messages ending in NUL)."""

    def __init__(self, executable: str | None = None, timeout: float = 30.0):
        executable = executable or find_chromium()
        if executable is None:
            raise BrowserError(f"Chromium was not found on PATH (tried {', '.join(CHROMIUM_NAMES)}). {INSTALL_HINT}")
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="adgrade-chromium-")
        # Chromium reads commands from its fd 3 and writes replies to its fd 4.
        command_read, self._command_write = os.pipe()
        self._reply_read, reply_write = os.pipe()

        def connect_pipes() -> None:
            # Runs in the child before exec. Both ends first move above fd 10, so that placing one at 3
            # or 4 cannot overwrite the other. Python opens fds non-inheritable, so with close_fds off
            # the copies at 3 and 4 are the only extra fds that Chromium inherits.
            high_read = fcntl.fcntl(command_read, fcntl.F_DUPFD_CLOEXEC, 10)
            high_write = fcntl.fcntl(reply_write, fcntl.F_DUPFD_CLOEXEC, 10)
            os.dup2(high_read, 3)
            os.dup2(high_write, 4)

        self.process = subprocess.Popen(
            [executable, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            preexec_fn=connect_pipes, close_fds=False,
        )
        os.close(command_read)
        os.close(reply_write)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []

    def __enter__(self) -> DevToolsPipe:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the browser, then its pipes and its temporary profile."""
        if self.process.poll() is None:
            try:
                self.send("Browser.close")
            except (BrowserError, OSError):
                pass
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for fd in (self._command_write, self._reply_read):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.process.stderr:
            self.process.stderr.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        """Send one command and return its result; events that arrive meanwhile are kept in `events`."""
        self._next_id += 1
        request_id = self._next_id
        message: dict = {"id": request_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._command_write, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == request_id:
                if "error" in reply:
                    raise BrowserError(f"{method} failed: {reply['error']}")
                return reply.get("result", {})
            self._record(reply)

    def wait_for_event(self, method: str, session: str | None = None) -> dict:
        """Return the first event named `method` (of `session`), waiting for it up to the timeout."""
        for event in self.events:
            if event.get("method") == method and (session is None or event.get("sessionId") == session):
                return event
        while True:
            event = self._read()
            self._record(event)
            if event.get("method") == method and (session is None or event.get("sessionId") == session):
                return event

    def _record(self, event: dict) -> None:
        self.events.append(event)
        # An alert() or confirm() blocks the page until it is closed, so it is dismissed here.
        # console_errors reports it.
        if event.get("method") == "Page.javascriptDialogOpening":
            self.send("Page.handleJavaScriptDialog", {"accept": False}, session=event.get("sessionId"))

    def _read(self) -> dict:
        deadline = time.monotonic() + self.timeout
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BrowserError(f"Chromium sent no reply within {self.timeout:.0f} s")
            ready, _, _ = select.select([self._reply_read], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(self._reply_read, 1 << 20)
            if not chunk:
                error = self.process.stderr.read().decode(errors="replace")[-2000:] if self.process.stderr else ""
                raise BrowserError(f"Chromium closed its DevTools pipe (exit status {self.process.poll()}): {error}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def open(self, page: Path, width: int, height: int, media: str = "screen") -> str:
        """Open a file in a new tab of the given viewport size and CSS media; return the tab's session id."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable", session=session)
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session=session)
        self.send("Emulation.setEmulatedMedia", {"media": media}, session=session)
        self.send("Page.navigate", {"url": page.resolve().as_uri()}, session=session)
        self.wait_for_event("Page.loadEventFired", session=session)
        return session

    def console_errors(self, session: str) -> list[str]:
        """Return the errors the tab logged: uncaught exceptions, console.error calls, browser log errors, dialogs."""
        errors = []
        for event in self.events:
            if event.get("sessionId") != session:
                continue
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                errors.append(params["exceptionDetails"].get("text", "exception"))
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                errors.append(" ".join(str(arg.get("value", arg.get("description", ""))) for arg in params["args"]))
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                errors.append(params["entry"].get("text", ""))
            elif method == "Page.javascriptDialogOpening":
                errors.append(f"{params.get('type', 'dialog')} dialog: {params.get('message', '')}")
        return errors

    def requests(self, session: str, page: Path) -> list[str]:
        """Return every URL the tab requested other than the page itself."""
        own = page.resolve().as_uri()
        return [event["params"]["request"]["url"] for event in self.events
                if event.get("sessionId") == session and event.get("method") == "Network.requestWillBeSent"
                and event["params"]["request"]["url"] != own]


def inspect_page(page: Path, width: int = 1200, height: int = 1800, media: str = "screen",
                 timeout: float = 30.0) -> PageReport:
    """Load a local page in headless Chromium and report its plots, console errors and requests."""
    with DevToolsPipe(timeout=timeout) as browser:
        session = browser.open(page, width, height, media)
        probe = browser.send("Runtime.evaluate", {"expression": PLOT_PROBE, "returnByValue": True},
                             session=session)
        if "exceptionDetails" in probe:
            raise BrowserError(f"the plot probe failed in {page}: {probe['exceptionDetails'].get('text')}")
        value = probe["result"]["value"]
        return PageReport(title=value["title"], text=value["text"], plots=value["plots"],
                          rendered_plots=value["rendered"], missing_plots=value["missing"], images=value["images"],
                          console_errors=browser.console_errors(session), requests=browser.requests(session, page))


def screenshot(page: Path, png: Path, width: int = 1200, height: int = 1800) -> Path:
    """Save a PNG of the top width x height pixels of a local page, as headless Chromium renders it."""
    with DevToolsPipe() as browser:
        session = browser.open(page, width, height)
        data = browser.send("Page.captureScreenshot", {"format": "png"}, session=session)["data"]
    png.parent.mkdir(parents=True, exist_ok=True)
    png.write_bytes(base64.b64decode(data))
    return png


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Save a PNG screenshot of a local HTML page.")
    parser.add_argument("page", type=Path, help="the HTML file to open")
    parser.add_argument("png", type=Path, help="where to write the PNG")
    parser.add_argument("--width", type=int, default=1200, help="viewport width in CSS pixels")
    parser.add_argument("--height", type=int, default=1800, help="viewport height in CSS pixels")
    arguments = parser.parse_args()
    print(screenshot(arguments.page, arguments.png, arguments.width, arguments.height))
