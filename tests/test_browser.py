"""The labs as a learner meets them: JupyterLab from the kit's environment, driven in headless
Chromium (Debian's ``chromium`` and ``chromium-driver``, through Selenium; nothing downloaded).
A learner notebook and a solution notebook run all their cells in SMOKE mode from the Run menu;
the test reads what JupyterLab shows (widgets rendered as widgets, plots) and what it saved (no
error outputs), and keeps screenshots in ``outputs/browser/``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from notebook_checks import (
    BROWSER,
    CHROMEDRIVER,
    CHROMIUM,
    check_lab01_learner,
    check_lab03b_solution,
)

from tools.notebooks import cell_outputs_text
from utils.runtime.storage import REPO_ROOT

PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"  # the notebook in front
SCREENSHOTS = REPO_ROOT / "outputs" / "browser"
RUN_TIMEOUT = 900  # seconds for one notebook's Run All
pytestmark = pytest.mark.skipif(
    not BROWSER,
    reason="no Chromium: install Debian's chromium and chromium-driver (.ci/run does) to run the "
    "browser tests",
)
NOTEBOOK_SETTINGS = {  # every cell stays in the page (JupyterLab 4 otherwise virtualizes them)
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "checkForUpdates": False,
        "fetchNews": "false",
    },
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def api(server: dict, path: str):
    url = f"{server['url']}/api/{path}?token={server['token']}"
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def write_settings(folder: Path) -> None:
    for name, values in NOTEBOOK_SETTINGS.items():
        plugin, file = name.split("/", 1)[0], name.split("/", 1)[1]
        path = folder / plugin / file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory):
    """A JupyterLab server on a loopback port with a token, its root a folder holding copies of
    the notebooks (so autosave never touches the repository), kernels in SMOKE mode."""
    root = tmp_path_factory.mktemp("lab_root")
    for folder in ("labs", "solutions"):
        shutil.copytree(REPO_ROOT / folder, root / folder)
    settings = tmp_path_factory.mktemp("lab_settings")
    write_settings(settings)
    port, token = free_port(), secrets.token_hex(16)
    outputs_folder = tmp_path_factory.mktemp("outputs")
    env = {
        **os.environ,
        "FTKIT_SMOKE": "1",
        "FTKIT_OUTPUTS": str(outputs_folder),
        "JUPYTER_CONFIG_DIR": str(tmp_path_factory.mktemp("jupyter_config")),
    }
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={tmp_path_factory.mktemp('workspaces')}",
        "--ServerApp.allow_root=True",  # CI containers run as root
    ]
    log = open(root / "jupyterlab.log", "w")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = {
        "url": f"http://127.0.0.1:{port}",
        "token": token,
        "root": root,
        "outputs": outputs_folder,
    }
    try:
        wait_for(
            lambda: process.poll() is None and api(server, "status"),
            60,
            "JupyterLab did not start",
            root,
        )
        yield server
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def wait_for(condition, timeout: float, message: str, root: Path | None = None):
    """Poll ``condition`` until it returns something truthy (errors count as not yet)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception:  # noqa: BLE001 (the server or page is not ready yet)
            pass
        time.sleep(1)
    log = (root / "jupyterlab.log").read_text()[-3000:] if root else ""
    raise AssertionError(f"{message} (after {timeout} s)\n{log}")


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument("--window-size=1400,1000")
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(120)
    yield driver
    driver.quit()


def kernels_idle(server: dict) -> bool:
    sessions = api(server, "sessions")
    return bool(sessions) and all(s["kernel"]["execution_state"] == "idle" for s in sessions)


def click_menu(driver, menu: str, item: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(
        By.XPATH, f"//li[contains(@class,'lm-MenuBar-item')][.//div[text()='{menu}']]"
    ).click()
    driver.find_element(  # the first item whose label starts with ``item``
        By.XPATH, f"//li[contains(@class,'lm-Menu-item')][.//div[starts-with(text(),'{item}')]]"
    ).click()


def run_all_and_save(driver, server: dict, notebook: str) -> dict:
    """Open ``notebook`` (a path under the server's root), Run All Cells, wait until every cell
    has run, save it; return the saved notebook."""
    from selenium.webdriver.common.by import By

    path = server["root"] / notebook
    driver.get(f"{server['url']}/lab/tree/{notebook}?reset&token={server['token']}")
    wait_for(
        lambda: driver.find_elements(By.CSS_SELECTOR, f"{PANEL} .jp-Cell"),
        120,
        f"{notebook} did not open",
        server["root"],
    )
    wait_for(lambda: kernels_idle(server), 120, "the kernel did not start", server["root"])
    click_menu(driver, "Run", "Run All Cells")
    code_cells = len(driver.find_elements(By.CSS_SELECTOR, f"{PANEL} .jp-CodeCell"))

    def all_ran() -> bool:
        prompts = [
            p.get_attribute("textContent")
            for p in driver.find_elements(By.CSS_SELECTOR, f"{PANEL} .jp-CodeCell .jp-InputPrompt")
        ]
        done = [p for p in prompts if p.strip("[]: ").isdigit()]
        return len(done) == code_cells and kernels_idle(server)

    wait_for(all_ran, RUN_TIMEOUT, f"{notebook}: not every cell ran", server["root"])
    before = path.stat().st_mtime
    click_menu(driver, "File", "Save")
    wait_for(lambda: path.stat().st_mtime > before, 60, f"{notebook} was not saved")
    return json.loads(path.read_text())


def shut_down_kernels(server: dict) -> None:
    """End every session, so an idle kernel's threads do not slow the next notebook."""
    for session in api(server, "sessions"):
        url = f"{server['url']}/api/sessions/{session['id']}?token={server['token']}"
        urllib.request.urlopen(urllib.request.Request(url, method="DELETE"), timeout=30).close()


def outputs(notebook: dict, kind: str) -> list[dict]:
    return [
        o
        for c in notebook["cells"]
        if c["cell_type"] == "code"
        for o in c["outputs"]
        if o["output_type"] == kind
    ]


def printed(notebook: dict) -> str:
    """The text the saved notebook's cells printed or returned (as nbclient's runs read it)."""
    import nbformat

    return cell_outputs_text(nbformat.reads(json.dumps(notebook), as_version=4))  # lines joined


def screenshot(driver, element, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver.execute_script("arguments[0].scrollIntoView({block: 'start'});", element)
    time.sleep(0.5)
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    print(f"screenshot: {path}")
    return path


def assert_rendered(driver, stem: str, explorer: str) -> None:
    """Widgets show as widgets (progress bars, the explorer's controls), plots as images; keep
    screenshots of the top, the explorer and the first plot."""
    from selenium.webdriver.common.by import By

    page = driver.find_element(By.CSS_SELECTOR, PANEL)
    assert "Error displaying widget" not in page.text and "Loading widget" not in page.text
    bars = driver.find_elements(By.CSS_SELECTOR, f"{PANEL} .jp-OutputArea-output .widget-hprogress")
    assert bars, f"{stem}: no progress bar rendered as a widget"
    controls = driver.find_elements(
        By.CSS_SELECTOR,
        f"{PANEL} .jp-OutputArea-output .widget-vbox .widget-hbox .widget-inline-hbox",
    )
    assert controls, f"{stem}: the {explorer} did not render its controls"
    plots = driver.find_elements(By.CSS_SELECTOR, f"{PANEL} .jp-RenderedImage img")
    assert plots, f"{stem}: no plot rendered"
    screenshot(driver, driver.find_element(By.CSS_SELECTOR, f"{PANEL} .jp-Cell"), f"{stem}-top")
    screenshot(driver, controls[0], f"{stem}-{explorer.replace(' ', '_')}")
    screenshot(driver, plots[0], f"{stem}-plot")


def test_a_learner_notebook_runs_in_jupyterlab_with_its_tasks_open(jupyterlab, browser):
    notebook = run_all_and_save(browser, jupyterlab, "labs/01_in_context_learning.ipynb")
    assert outputs(notebook, "error") == []
    check_lab01_learner(printed(notebook), jupyterlab["outputs"])  # the nbclient test's checks
    assert_rendered(browser, "lab01-learner", "prompt builder")
    shut_down_kernels(jupyterlab)


def test_a_solution_notebook_runs_in_jupyterlab_without_errors(jupyterlab, browser):
    notebook = run_all_and_save(browser, jupyterlab, "solutions/03b_lora_peft.ipynb")
    assert outputs(notebook, "error") == []
    check_lab03b_solution(printed(notebook), jupyterlab["outputs"])  # the nbclient test's checks
    views = [
        o
        for o in outputs(notebook, "display_data")
        if "application/vnd.jupyter.widget-view+json" in o["data"]
    ]
    assert views, "no widget was saved with the notebook"
    assert_rendered(browser, "lab03b-solution", "LoRA calculator")
    shut_down_kernels(jupyterlab)
