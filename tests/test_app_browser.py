"""``ssmblocks app`` in a real browser: the command is started on 127.0.0.1 with the network closed to it, and
Debian's Chromium, headless, driven by selenium through Debian's chromedriver, uploads the bundled sample and a file
that is not an image, runs, and downloads the result. The result must have the right size and EQUAL
``ssmblocks.restore`` on the same input; the bad file must get its message in the page; neither the page nor the
server may reach beyond 127.0.0.1. Skipped, with the reason, where Chromium, chromedriver, selenium or Gradio are
absent; .ci/run installs them and runs it with SSMBLOCKS_REQUIRE_BROWSER=1, which turns the skip into an error.

Set SSMBLOCKS_APP_SCREENSHOT=path.png to keep a screenshot of the page with its result (docs/images/app.png).
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import ssmblocks
from ssmblocks.data import bundled_file

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
_MISSING = [what for what, present in (
    (f"Chromium ({CHROMIUM}; apt-get install chromium)", CHROMIUM.is_file()),
    (f"chromedriver ({CHROMEDRIVER}; apt-get install chromium-driver)", CHROMEDRIVER.is_file()),
    ("selenium (pip install selenium)", importlib.util.find_spec("selenium") is not None),
    ("Gradio (pip install 'ssmblocks[app]')", importlib.util.find_spec("gradio") is not None)) if not present]
if _MISSING and os.environ.get("SSMBLOCKS_REQUIRE_BROWSER"):        # .ci/run: this test must run, not skip
    raise RuntimeError(f"SSMBLOCKS_REQUIRE_BROWSER is set, but the browser test needs {', '.join(_MISSING)}")
pytestmark = pytest.mark.skipif(bool(_MISSING), reason=f"the browser test needs {', '.join(_MISSING)}")

ROOT = Path(__file__).resolve().parents[1]
# Installed into the server's interpreter (sitecustomize): any connection or name look-up beyond this computer is
# recorded in SSM_NETWORK_LOG and refused, as on a machine with no network.
_CLOSED_NETWORK = textwrap.dedent("""
    import ipaddress, os, socket

    _log = os.environ["SSM_NETWORK_LOG"]
    _connect, _connect_ex, _getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo

    def _local(host):
        if host in ("localhost", "", None):
            return True
        try:
            return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
        except ValueError:
            return False

    def _refuse(what):
        with open(_log, "a") as f:
            f.write(what + "\\n")
        raise OSError(101, "network closed by the test: " + what)

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _local(address[0]):
            _refuse(f"connect {address}")
        return _connect(self, address)

    def connect_ex(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _local(address[0]):
            _refuse(f"connect {address}")
        return _connect_ex(self, address)

    def getaddrinfo(host, *args, **kwargs):
        if not _local(host if not isinstance(host, bytes) else host.decode()):
            _refuse(f"look up {host}")
        return _getaddrinfo(host, *args, **kwargs)

    socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = connect, connect_ex, getaddrinfo
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    """``python -m ssmblocks app --port P`` from this checkout, network closed; yields (url, network log)."""
    guard = tmp_path / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(_CLOSED_NETWORK)
    log = tmp_path / "network.log"
    log.touch()
    port = _free_port()
    scratch = tmp_path / "tmp"                          # the server's temporary folder: its results go there
    scratch.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(guard), str(ROOT)]), "SSM_NETWORK_LOG": str(log),
           "GRADIO_TEMP_DIR": str(tmp_path / "gradio"), "TMPDIR": str(scratch)}
    env.pop("GRADIO_ANALYTICS_ENABLED", None)          # the app must turn analytics off itself
    output = (tmp_path / "server.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "ssmblocks", "app", "--port", str(port)], cwd=ROOT, env=env,
                               stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, (tmp_path / "server.log").read_text()
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError):
                pass
            assert time.monotonic() < deadline, f"no page in 120 s: {(tmp_path / 'server.log').read_text()}"
            time.sleep(0.5)
        print(f"the app served its page after {time.monotonic() - deadline + 120:.1f} s")
        yield url, log
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        output.close()
    # stopped by SIGTERM, the command closes the server and removes its results
    assert process.returncode == 0, (tmp_path / "server.log").read_text()
    assert not list(scratch.glob("ssmblocks-app-*"))


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,1300",
                 f"--user-data-dir={tempfile.mkdtemp(dir=tmp_path)}",
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"):     # no name resolves but ours
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"download.default_directory": str(tmp_path / "downloads"),
                                              "download.prompt_for_download": False})
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(what, condition, seconds: float):
    """The first true value of ``condition()`` (elements missing or replaced meanwhile count as not yet)."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            found = condition()
        except (NoSuchElementException, StaleElementReferenceException):
            found = None
        if found:
            return found
        time.sleep(0.25)
    raise AssertionError(f"waited {seconds} s for {what}")


def _requested_urls(driver) -> set[str]:
    urls = set()
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] in ("Network.requestWillBeSent", "Network.webSocketCreated"):
            urls.add(message["params"].get("request", {}).get("url") or message["params"].get("url", ""))
    return urls


def test_the_page_restores_the_sample_like_restore_and_explains_a_bad_file(server, browser, tmp_path):
    from selenium.webdriver.common.by import By

    url, network_log = server
    browser.get(url)
    about = _wait("the default model to load", lambda: "licence" in browser.find_element(By.ID, "ssm-about").text
                  and browser.find_element(By.ID, "ssm-about").text, 90)
    assert about.startswith("dvmsr: ") and "x4, colour images" in about
    (tmp_path / "notes.png").write_text("these are notes, not a picture")
    sample = bundled_file("sample.png")
    upload = browser.find_element(By.CSS_SELECTOR, "#ssm-inputs input[type=file]")
    upload.send_keys(f"{sample}\n{tmp_path / 'notes.png'}")
    _wait("the uploads", lambda: all(name in browser.find_element(By.ID, "ssm-inputs").text   # "notes\n.png"
                                     for name in ("sample", "notes")), 30)
    browser.find_element(By.ID, "ssm-run").click()
    items = _wait("the messages", lambda: browser.find_elements(By.CSS_SELECTOR, "#ssm-status li"), 120)
    messages = {item.text.split(":")[0].split(" ")[0]: (item.text, item.get_attribute("class")) for item in items}
    assert messages["sample.png"] == ("sample.png: 256x256 (0.1 MP) -> 1024x1024", "ok")
    text, kind = messages["notes.png"]
    assert kind == "failed" and text.startswith("notes.png is not an image this page can read")

    # the before/after view shows the result at its size
    sizes = _wait("the before/after images", lambda: [
        browser.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight]", img)
        for img in browser.find_elements(By.CSS_SELECTOR, "#ssm-slider img")
        if browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img)], 30)
    assert sizes and all(size == [1024, 1024] for size in sizes), sizes

    # the PNG downloaded through the page equals ssmblocks.restore on the same file
    link = _wait("the download link", lambda: [a for a in browser.find_elements(By.CSS_SELECTOR, "#ssm-downloads a")
                                              if "sample_x4.png" in (a.get_attribute("href") or "")], 30)[0]
    link.click()
    downloaded = tmp_path / "downloads" / "sample_x4.png"
    _wait("the download", lambda: downloaded.is_file() and downloaded.stat().st_size > 0, 30)
    time.sleep(0.5)
    result = Image.open(downloaded)
    assert result.size == (1024, 1024)
    expected = ssmblocks.restore(ssmblocks.create_model("dvmsr", pretrained=True), sample)
    assert np.array_equal(np.asarray(result), np.asarray(expected))

    screenshot = os.environ.get("SSMBLOCKS_APP_SCREENSHOT")
    if screenshot:
        browser.execute_script("window.scrollTo(0, 0)")
        browser.save_screenshot(screenshot)
    # nothing left this computer: every request of the page went to 127.0.0.1, the server reached nothing else
    beyond = [u for u in _requested_urls(browser) if u.split(":")[0] in ("http", "https", "ws", "wss")
              and not u.split("/")[2].startswith("127.0.0.1")]
    assert not beyond, beyond
    assert network_log.read_text() == ""
