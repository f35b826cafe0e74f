"""What a person looks at after a sweep, in the real programs: TensorBoard's HPARAMS tab (its HTTP API, and the page
in headless Chromium) and optuna-dashboard's page for the study (headless Chromium). Each view skips, saying why, when
its program is not installed (CI installs them: the generator's dev extras and .ci/services.sh)."""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import QUIET, ROOT, train

pytestmark = pytest.mark.slow

CHROMIUM = next((found for name in ("chromium", "chromium-browser", "google-chrome") if (found := shutil.which(name))),
                None)
# optuna-dashboard's command: beside this Python (its environment's scripts) or on PATH
DASHBOARD = shutil.which("optuna-dashboard", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
NEEDS_CHROMIUM = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (Debian: apt-get install chromium)")
TRIAL = [*QUIET, "--max_epochs", "2", "--limit_train_batches", "2", "--limit_val_batches", "1",
         "--limit_test_batches", "1", "--early_stopping_patience", "none"]
SEARCHED = ["#hidden", "#lr"]  # the sweep below searches --hidden and --lr
LEADING = ["#trial", "#state", *SEARCHED]  # what leads every trial's HPARAMS row
DATA_FACTS = ("input_shape", "num_outputs", "task")  # the dataset's, not anyone's choice
STUDY = "views-of-a-study"


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """logs/ as `tensorboard --logdir logs` sees it after a sweep: an ordinary run and a study of 4 trials, one of
    which failed (a learning rate Adam refuses), so that the state column has more than one value."""
    save_dir = tmp_path_factory.mktemp("views") / "logs"
    train(save_dir, *TRIAL)
    proc = subprocess.run([sys.executable, str(ROOT / "sweep.py"), "--save_dir", str(save_dir), *TRIAL, "--study",
                           STUDY, "--sampler", "grid", "--hidden", "4,8", "--lr", "-1,0.01"],
                          capture_output=True, text=True, timeout=240, check=False)
    assert "trial" in proc.stdout and "failed: " in proc.stdout, proc.stdout + proc.stderr
    return save_dir


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve(command: list[str], url: str, timeout: float = 60) -> subprocess.Popen[bytes]:
    """A server started on loopback, once `url` answers."""
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5):
                return server
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"{command[0]} did not serve {url} (exit {server.poll()})")
            time.sleep(0.2)


def stop(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


@pytest.fixture(scope="module")
def tensorboard(logs: Path) -> Iterator[str]:
    """`tensorboard --logdir logs` on a free loopback port, once its hparams plugin has read every run."""
    url = f"http://127.0.0.1:{free_port()}"
    server = serve([sys.executable, "-m", "tensorboard.main", "--logdir", str(logs), "--host", "127.0.0.1",
                    "--port", url.rsplit(":", 1)[1], "--reload_interval", "1"], f"{url}/data/plugins_listing")
    try:
        deadline = time.monotonic() + 30
        while len(hparams_api(url, "session_groups", ALL_SESSIONS).get("sessionGroups", [])) < 5:  # runs read
            assert time.monotonic() < deadline, hparams_api(url, "session_groups", ALL_SESSIONS)
            time.sleep(0.5)
        yield url
    finally:
        stop(server)


ALL_SESSIONS = {"experimentName": "", "startIndex": 0, "sliceSize": 100,
                "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]}


def hparams_api(url: str, route: str, request: dict[str, Any]) -> Any:
    """What the HPARAMS tab asks TensorBoard's server (its hparams plugin's HTTP API)."""
    query = urllib.parse.urlencode({"request": json.dumps(request)})
    with urllib.request.urlopen(f"{url}/data/plugin/hparams/{route}?{query}", timeout=30) as response:
        return json.loads(response.read())


def test_tensorboard_serves_trials_with_their_number_state_and_searched_values_first(tensorboard: str) -> None:
    experiment = hparams_api(tensorboard, "experiment", {"experimentName": "", "hparamsLimit": 1000})
    groups = hparams_api(tensorboard, "session_groups", ALL_SESSIONS)
    names = [info["name"] for info in experiment["hparamInfos"]]
    assert not set(DATA_FACTS) & set(names), names
    # The HPARAMS tab ticks the first five columns of the server's order after a stable sort that puts the
    # varying ones first: the trial's own fields lead that order, whatever other runs the logdir holds.
    ticked = [info["name"] for info in sorted(experiment["hparamInfos"], key=lambda info: not info.get("differs"))]
    assert ticked[:4] == sorted(LEADING), names
    sessions = {group["name"]: group["hparams"] for group in groups["sessionGroups"]}
    trials = {values["#trial"]: values for values in sessions.values() if "#trial" in values}
    assert sorted(trials) == [0, 1, 2, 3] and len(sessions) == 5  # four trials and the run by hand
    statuses = {group["hparams"].get("#trial"): group["sessions"][0]["status"] for group in groups["sessionGroups"]}
    for number, values in trials.items():
        assert values["#state"] == ("failed" if values["#lr"] == -1 else "complete"), values
        assert values["#hidden"] in (4, 8) and not {"hidden", "lr"} & set(values)  # once, as #hidden, #lr
        assert statuses[number] == ("STATUS_FAILURE" if values["#state"] == "failed" else "STATUS_SUCCESS")


# ---- headless Chromium over its DevTools pipe --------------------------------------------------------------------


class Chromium:
    """Headless Chromium driven over --remote-debugging-pipe (DevTools messages, NUL-terminated JSON, on fds 3/4)."""

    def __init__(self, profile: Path) -> None:
        assert CHROMIUM is not None
        to_browser, self._to = os.pipe()
        self._from, from_browser = os.pipe()

        def pipes_on_3_and_4() -> None:
            read, write = os.dup(to_browser), os.dup(from_browser)
            os.dup2(read, 3)
            os.dup2(write, 4)

        self.proc = subprocess.Popen([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                                      "--remote-debugging-pipe", f"--user-data-dir={profile}", "--window-size=1600,900",
                                      "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     preexec_fn=pipes_on_3_and_4, pass_fds=(3, 4))  # noqa: PLW1509 - dup2s only
        os.close(to_browser)
        os.close(from_browser)
        self._buffer, self._id = b"", 0

    def send(self, method: str, session: str | None = None, timeout: float = 30, **params: Any) -> Any:
        self._id += 1
        message = {"id": self._id, "method": method, "params": params, **({"sessionId": session} if session else {})}
        os.write(self._to, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" not in self._buffer:
                ready, _, _ = select.select([self._from], [], [], max(0.0, deadline - time.monotonic()))
                chunk = os.read(self._from, 1 << 20) if ready else b""
                assert chunk, f"chromium: no answer to {method} (exit {self.proc.poll()})"
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._id:
                assert "error" not in reply, f"{method}: {reply['error']}"
                return reply["result"]

    def open(self, url: str) -> str:
        """A new tab at url; its session."""
        target = self.send("Target.createTarget", url=url)["targetId"]
        return str(self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"])

    def evaluate(self, session: str, expression: str) -> Any:
        return self.send("Runtime.evaluate", session, expression=expression, returnByValue=True)["result"].get("value")

    def wait_for(self, session: str, expression: str, timeout: float = 20) -> Any:
        deadline = time.monotonic() + timeout
        while not (value := self.evaluate(session, expression)) and time.monotonic() < deadline:
            time.sleep(0.3)
        return value

    def screenshot(self, session: str, path: Path) -> bytes:
        png = base64.b64decode(self.send("Page.captureScreenshot", session, format="png")["data"])
        path.write_bytes(png)
        return png

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=10)
        except AssertionError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to)
        os.close(self._from)


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[Chromium]:
    browser = Chromium(tmp_path / "profile")
    try:
        yield browser
    finally:
        browser.close()


# Text of the page as shown, shadow roots included (TensorBoard's dashboards are web components); with arguments,
# the text of the elements that CSS selector `sel` finds in the shadow roots of the elements `host` finds.
SHOWN_TEXT = """((sel, host) => {
  const roots = [document];
  for (let i = 0; i < roots.length; i++)
    for (const el of roots[i].querySelectorAll('*')) if (el.shadowRoot) roots.push(el.shadowRoot);
  if (!sel) return roots.map(root => root === document ? document.body.innerText : root.textContent).join('\\n');
  return roots.filter(root => root !== document && root.host.matches(host))
    .flatMap(root => [...root.querySelectorAll(sel)]).map(el => el.innerText || el.textContent).join('\\n');
})"""


def shown_with(browser: Chromium, tab: str, needle: str, sel: str = "", host: str = "") -> str:
    """The page's text (or that of `sel` in the shadow roots of `host`) once it holds `needle`; "" if it never does."""
    text, wanted = f"{SHOWN_TEXT}({json.dumps(sel)}, {json.dumps(host)})", json.dumps(needle)
    return str(browser.wait_for(tab, f"(() => {{ const t = {text}; return t.includes({wanted}) ? t : ''; }})()") or "")


def png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR", "not a PNG"
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


@NEEDS_CHROMIUM
def test_the_hparams_tab_shows_trial_state_and_searched_values_without_a_click(
        tensorboard: str, chromium: Chromium, tmp_path: Path) -> None:
    tab = chromium.open(f"{tensorboard}/#hparams")
    shown = shown_with(chromium, tab, "#trial", "th, vaadin-grid-cell-content", "tf-hparams-table-view")
    cells = shown_with(chromium, tab, "failed", ".table-cell", "tf-hparams-table-view")  # rows come after columns
    png = chromium.screenshot(tab, tmp_path / "hparams.png")
    assert shown, f"no #trial column in the HPARAMS tab (screenshot: {tmp_path / 'hparams.png'})"
    columns = [line.strip() for line in shown.splitlines() if line.strip()]
    assert set(LEADING) <= set(columns) and not set(DATA_FACTS) & set(columns), columns  # ticked: in the table
    assert sorted(cell.strip() for cell in cells.splitlines() if cell.strip() in ("complete", "failed")) == [
        "complete", "complete", "failed", "failed"], cells
    width, height = png_size(png)
    assert width == 1600 and height > 500 and len(png) > 20_000, (width, height, len(png))  # a page, not a blank


@NEEDS_CHROMIUM
@pytest.mark.skipif(DASHBOARD is None,
                    reason='optuna-dashboard is not installed (pip install -e ".[dev]" or ".[dashboard]")')
def test_optuna_dashboard_shows_the_study(logs: Path, chromium: Chromium) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert DASHBOARD is not None
    server = serve([DASHBOARD, f"sqlite:///{logs / STUDY / 'study.db'}", "--host", "127.0.0.1", "--port",
                    url.rsplit(":", 1)[1]], f"{url}/api/studies")
    try:
        tab = chromium.open(f"{url}/dashboard")
        assert shown_with(chromium, tab, STUDY), chromium.evaluate(tab, SHOWN_TEXT + "()")  # the list of studies
        tab = chromium.open(f"{url}/dashboard/studies/1")  # the study's own page: its searched parameters
        assert "lr" in shown_with(chromium, tab, "hidden"), chromium.evaluate(tab, SHOWN_TEXT + "()")
    finally:
        stop(server)
