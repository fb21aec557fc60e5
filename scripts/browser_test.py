#!/usr/bin/env python3
"""The main notebook as its users run it: JupyterLab in a real (headless) browser.

Why: scripts/check_notebooks.py proves the notebook executes, not that JupyterLab opens it with
the Rust kernel and shows its figures. This test:
  1. starts `jupyter lab` on 127.0.0.1 (free port, random token, temporary config, data, settings,
     workspaces and runtime dirs; autosave and the news/update check off);
  2. serves a copy of 18_relational_rnn.ipynb without its outputs from a temporary directory that
     holds a symlink to crates/, so the `:dep` path resolves and nothing can write to the
     committed notebook;
  3. opens it in Debian's Chromium (/usr/bin/chromium, driven by Playwright for Python; browsers
     are never downloaded), checks that the toolbar names the kernel "Rust", waits for it to be
     idle, and presses Shift+Enter from the first cell down to the first figure cell;
  4. waits until those cells have run (failing on a dialog such as "kernel died"), saves with
     Ctrl+S (to the copy) and checks the saved cells as check_notebooks.py does (error outputs,
     panics, compiler errors, a `figure` cell without a PNG), then waits for the figure's <img> to
     load in the page (naturalWidth > 0);
  5. keeps a screenshot at target/browser-test/notebook.png (failure.png when it fails) and the
     server's log at target/browser-test/jupyter.log, and stops the server in every case.
The kernel's environment is check_notebooks.py's (EVCXR_TMPDIR cache per notebook, libstd on
LD_LIBRARY_PATH), so a run after the notebook step reuses its compiled dependencies.

Without /usr/bin/chromium (or $RRNN_CHROMIUM) or Playwright it prints "skipped: ..." and exits 0;
`bash scripts/setup.sh --browser` (as root) installs both.
Exit status: 0 passed or skipped, 1 failed.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import nbformat
from jupyter_core.paths import jupyter_data_dir

sys.dont_write_bytecode = True  # importing the sibling script must leave no __pycache__ in scripts/
from check_notebooks import check, rust_std_dir  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUTDIR = ROOT / "target" / "browser-test"
KERNEL_LABEL = "Rust"

CELLS = ".jp-NotebookPanel .jp-Notebook .jp-Cell"

# What the page shows: the execution prompts of cells 0..last, the kernel's execution indicator
# and any dialog (kernel died, restarting, ...).
PROBE_JS = """(last) => {
  const cells = [...document.querySelectorAll('%s')].slice(0, last + 1);
  const dialog = document.querySelector('.jp-Dialog');
  const status = document.querySelector('.jp-NotebookPanel-toolbar .jp-Notebook-ExecutionIndicator');
  return {
    dialog: dialog ? dialog.textContent : null,
    kernel: status ? status.getAttribute('data-status') : null,
    cells: cells.map((cell) => ({
      code: cell.classList.contains('jp-CodeCell'),
      prompt: ((cell.querySelector('.jp-InputArea-prompt') || {}).textContent || '').trim(),
    })),
  };
}""" % CELLS

# True once the toolbar names a kernel that is idle, or once a dialog shows (no kernel found, ...).
KERNEL_READY_JS = """() => {
    if (document.querySelector('.jp-Dialog')) return true;
    const name = document.querySelector('.jp-NotebookPanel-toolbar .jp-Toolbar-kernelName');
    const status = document.querySelector('.jp-NotebookPanel-toolbar .jp-Notebook-ExecutionIndicator');
    return name && !['', 'No Kernel'].includes(name.textContent.trim())
        && status && status.getAttribute('data-status') === 'idle';
}"""


class Failure(Exception):
    """The test failed; the message says why."""


def log(msg: str) -> None:
    print(f"[browser-test] {msg}", flush=True)


def find_chromium() -> str | None:
    path = os.environ.get("RRNN_CHROMIUM", "/usr/bin/chromium")
    return path if os.access(path, os.X_OK) else None


def first_figure_cell(nb: dict) -> int:
    """Index of the first code cell tagged `figure` or showing an image/png in the committed file."""
    for i, cell in enumerate(nb["cells"]):
        tagged = "figure" in cell.get("metadata", {}).get("tags", [])
        has_png = any("image/png" in o.get("data", {}) for o in cell.get("outputs", []))
        if cell["cell_type"] == "code" and (tagged or has_png):
            return i
    raise Failure("the notebook has no figure cell")


def prepare_workdir(notebook: Path, work: Path) -> Path:
    """A copy of the notebook without outputs, beside a symlink to crates/ (the `:dep` path)."""
    nb = json.loads(notebook.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    served = work / "notebooks"
    served.mkdir()
    (served / notebook.name).write_text(json.dumps(nb, indent=1))
    (served / "crates").symlink_to(ROOT / "crates")
    return served


def write_lab_settings(settings: Path) -> None:
    """User settings for a clean lab: no autosave, no news or update check (no popup)."""
    for plugin, values in {
        "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
        "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    }.items():
        path = settings / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


def kernel_env(notebook: Path, work: Path) -> dict[str, str]:
    """check_notebooks.py's kernel environment. Jupyter's config, data and runtime dirs are
    temporary (the server writes its notebook-signing key and trust database to the data dir); the
    user's data dir stays on JUPYTER_PATH, where the `rust` kernelspec is found."""
    cache = Path(os.environ.get("RRNN_CACHE", Path.home() / ".cache" / "rrnn")) / "evcxr" / notebook.stem
    cache.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(
        EVCXR_TMPDIR=str(cache),
        LD_LIBRARY_PATH=rust_std_dir() + os.pathsep + os.environ.get("LD_LIBRARY_PATH", ""),
        JUPYTER_CONFIG_DIR=str(work / "config"),
        JUPYTER_DATA_DIR=str(work / "data"),
        JUPYTER_RUNTIME_DIR=str(work / "runtime"),
        JUPYTER_PATH=os.pathsep.join(filter(None, [os.environ.get("JUPYTER_PATH"), jupyter_data_dir()])),
    )
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_lab(served: Path, work: Path, env: dict, port: int, token: str) -> subprocess.Popen:
    cmd = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
        "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={served}",
        f"--LabApp.user_settings_dir={work / 'settings'}", f"--LabApp.workspaces_dir={work / 'workspaces'}",
    ] + (["--allow-root"] if os.geteuid() == 0 else [])
    OUTDIR.mkdir(parents=True, exist_ok=True)
    with open(OUTDIR / "jupyter.log", "wb") as server_log:
        return subprocess.Popen(cmd, env=env, stdout=server_log, stderr=subprocess.STDOUT, start_new_session=True)


def wait_for_lab(proc: subprocess.Popen, base: str, token: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise Failure(f"jupyter lab exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise Failure(f"jupyter lab did not answer within {timeout:.0f} s")


def stop_lab(proc: subprocess.Popen, base: str, token: str, work: Path) -> None:
    """Ask the server to shut down (it stops its kernels), then end its process group, then any
    process still naming our temporary directory (a kernel, which runs in its own session)."""
    try:
        req = urllib.request.Request(f"{base}/api/shutdown?token={token}", method="POST")
        urllib.request.urlopen(req, timeout=10).close()
        proc.wait(timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        pass
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, sig)
                proc.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
    for pid in pids_naming(str(work)):
        try:
            os.kill(pid, signal.SIGKILL)
            log(f"killed leftover process {pid}")
        except ProcessLookupError:
            pass


def pids_naming(text: str) -> list[int]:
    pids = []
    for proc_dir in Path("/proc").iterdir():
        if proc_dir.name.isdigit() and int(proc_dir.name) != os.getpid():
            try:
                if text.encode() in (proc_dir / "cmdline").read_bytes():
                    pids.append(int(proc_dir.name))
            except OSError:
                pass
    return pids


def open_notebook(page, url: str, timeout_ms: int) -> None:
    page.goto(url, timeout=timeout_ms)
    page.locator(CELLS).first.wait_for(timeout=timeout_ms)
    dialog = page.locator(".jp-Dialog")
    if dialog.count():
        log(f"dismissing a dialog: {dialog.first.inner_text()!r}")
        page.keyboard.press("Escape")


def wait_for_kernel(page, timeout_ms: int) -> None:
    """Wait until a kernel is connected and idle (or a dialog shows). If it is not after two minutes,
    reload the page once, as a user would: on a starved machine the first connection can miss the
    kernel's first reply and stay "Unknown" for good."""
    first = min(timeout_ms, 120_000)
    try:
        page.wait_for_function(KERNEL_READY_JS, timeout=first, polling=500)
        return
    except Exception:  # playwright's TimeoutError
        if first == timeout_ms:
            raise Failure(f"no kernel connected and idle within {timeout_ms / 1000:.0f} s ({status_bar(page)})") from None
    log(f"no kernel connected and idle after {first / 1000:.0f} s ({status_bar(page)}); reloading the page")
    page.reload()
    try:
        page.wait_for_function(KERNEL_READY_JS, timeout=timeout_ms - first, polling=500)
    except Exception:
        raise Failure(f"no kernel connected and idle within {timeout_ms / 1000:.0f} s ({status_bar(page)})") from None


def status_bar(page) -> str:
    bar = page.locator("#jp-main-statusbar")
    return "status bar: " + (" ".join(bar.first.inner_text().split()) if bar.count() else "(none)")


def check_kernel(page, timeout_ms: int) -> None:
    """Once a kernel is connected and idle, the toolbar names it "Rust"."""
    wait_for_kernel(page, timeout_ms)
    dialog = page.locator(".jp-Dialog")
    if dialog.count():
        raise Failure(f"a dialog appeared instead of a kernel: {dialog.first.inner_text().strip()!r}")
    shown = page.locator(".jp-NotebookPanel-toolbar .jp-Toolbar-kernelName").first.inner_text().strip()
    if shown != KERNEL_LABEL:
        raise Failure(f"the toolbar names the kernel {shown!r}, want {KERNEL_LABEL!r}")
    log(f"kernel {shown!r}, idle")


def run_cells_through(page, last: int) -> None:
    """Select the first cell and press Shift+Enter until the cell `last` has been run."""
    page.locator(CELLS).first.locator(".jp-InputPrompt").click()
    for _ in range(last + 1):
        page.keyboard.press("Shift+Enter")
        page.wait_for_timeout(300)
    active = page.evaluate(
        "(sel) => [...document.querySelectorAll(sel)].findIndex((c) => c.classList.contains('jp-mod-active'))",
        CELLS)
    if active != last + 1:
        raise Failure(f"after {last + 1} Shift+Enter the active cell is {active}, want {last + 1}")


def wait_until_run(page, last: int, timeout: float) -> None:
    """Poll the page until no cell up to `last` is queued or running ([*]) and the kernel is idle."""
    t0, reported = time.monotonic(), None
    while time.monotonic() - t0 < timeout:
        state = page.evaluate(PROBE_JS, last)
        if state["dialog"]:
            raise Failure(f"a dialog appeared: {state['dialog'].strip()}")
        prompts = [c["prompt"] for c in state["cells"] if c["code"]]
        done = sum(re.fullmatch(r"\[\d+\]:", p) is not None for p in prompts)
        if done != reported:
            log(f"{done} of {len(prompts)} code cells run ({time.monotonic() - t0:.0f} s)")
            reported = done
        if "[*]:" not in prompts and state["kernel"] == "idle":
            log(f"cells 0..{last} finished {time.monotonic() - t0:.0f} s after the first Shift+Enter")
            return
        page.wait_for_timeout(2000)
    raise Failure(f"cells 0..{last} still running after {timeout:.0f} s")


def save_and_check(page, saved: Path, last: int) -> None:
    """Save with Ctrl+S (to the temporary copy) and check its outputs as check_notebooks.py does:
    error outputs, panics, compiler errors on stderr, a `figure` cell without a PNG."""
    before = saved.stat().st_mtime_ns
    page.keyboard.press("Control+s")
    for _ in range(60):
        if saved.stat().st_mtime_ns != before:
            break
        page.wait_for_timeout(500)
    else:
        raise Failure("Ctrl+S did not save the notebook within 30 s")
    nb = nbformat.read(saved, as_version=4)
    nb.cells = nb.cells[: last + 1]
    problems = check(nb)
    problems += [f"cell {i} was not run" for i, c in enumerate(nb.cells)
                 if c.cell_type == "code" and c.get("execution_count") is None]
    if problems:
        raise Failure("\n\n".join(problems))


def wait_for_img(page, last: int, timeout_ms: int) -> int:
    """The figure cell's <img> has loaded: naturalWidth > 0. Returns that width."""
    try:
        handle = page.wait_for_function(
            "([sel, last]) => { const c = document.querySelectorAll(sel)[last];"
            " const i = c && c.querySelector('.jp-OutputArea-output img');"
            " return i && i.complete && i.naturalWidth > 0 ? i.naturalWidth : 0; }",
            arg=[CELLS, last], timeout=timeout_ms, polling=500,
        )
    except Exception:  # playwright's TimeoutError
        raise Failure(f"cell {last} shows no loaded <img> (naturalWidth > 0)") from None
    return handle.json_value()


def screenshot(page, name: str, last: int | None = None) -> Path:
    OUTDIR.mkdir(parents=True, exist_ok=True)
    if last is not None:
        page.locator(CELLS).nth(last).scroll_into_view_if_needed()
        page.wait_for_timeout(500)
    path = OUTDIR / name
    page.screenshot(path=str(path))
    return path


def browse(chromium: str, url: str, saved: Path, last: int, deadline: float) -> None:
    from playwright.sync_api import sync_playwright

    def left(cap: float = float("inf")) -> float:
        """Seconds left before the deadline, at most `cap`."""
        return max(1.0, min(cap, deadline - time.monotonic()))

    with sync_playwright() as pw:
        # Playwright adds --no-sandbox by default (chromium_sandbox=False), which root needs.
        browser = pw.chromium.launch(executable_path=chromium, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            open_notebook(page, url, int(left(180) * 1000))
            check_kernel(page, int(left(300) * 1000))
            run_cells_through(page, last)
            wait_until_run(page, last, left())
            save_and_check(page, saved, last)
            width = wait_for_img(page, last, int(left(30) * 1000))
            log(f"the figure of cell {last} loaded, {width} px wide")
            log(f"screenshot: {screenshot(page, 'notebook.png', last)}")
        except Exception:
            log(f"screenshot of the failure: {screenshot(page, 'failure.png')}")
            raise
        finally:
            browser.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--notebook", type=Path, default=ROOT / "18_relational_rnn.ipynb",
                    help="a notebook whose :dep paths are relative to the repository root "
                         "(e.g. a broken copy of the main one, to see the test fail)")
    ap.add_argument("--timeout", type=float, default=900, help="seconds for the whole test")
    args = ap.parse_args()

    chromium = find_chromium()
    if chromium is None:
        print("skipped: no Chromium at /usr/bin/chromium (or $RRNN_CHROMIUM); as root, "
              "`bash scripts/setup.sh --browser` (or `apt-get install chromium`) enables the browser test")
        return 0
    try:
        import playwright  # noqa: F401
    except ImportError:
        print("skipped: Playwright for Python is missing; `bash scripts/setup.sh --browser` "
              "(or `python3 -m pip install playwright`) enables the browser test")
        return 0

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # still stop the server (finally)
    (OUTDIR / "failure.png").unlink(missing_ok=True)  # a stale one would confuse
    t0 = time.monotonic()
    deadline = t0 + args.timeout
    notebook = args.notebook.resolve()
    token, port = secrets.token_hex(16), free_port()
    base = f"http://127.0.0.1:{port}"
    work = Path(tempfile.mkdtemp(prefix="rrnn-browser-test-"))
    proc = None
    try:
        last = first_figure_cell(json.loads(notebook.read_text()))
        served = prepare_workdir(notebook, work)
        write_lab_settings(work / "settings")
        proc = start_lab(served, work, kernel_env(notebook, work), port, token)
        wait_for_lab(proc, base, token, 120)
        log(f"jupyter lab on {base}; running cells 0..{last} of {notebook.name} in {chromium}")
        url = f"{base}/lab/tree/{notebook.name}?token={token}"
        browse(chromium, url, served / notebook.name, last, deadline)
    except Exception as e:  # any failure, Playwright's included, is reported the same way
        print(f"FAIL browser test ({time.monotonic() - t0:.0f} s): {type(e).__name__}: {e}", file=sys.stderr)
        server_log = OUTDIR / "jupyter.log"
        if server_log.exists():
            tail = server_log.read_text(errors="replace").splitlines()[-30:]
            print(f"--- last lines of {server_log} ---\n" + "\n".join(tail), file=sys.stderr)
        return 1
    finally:
        if proc is not None:
            stop_lab(proc, base, token, work)
        shutil.rmtree(work, ignore_errors=True)
    print(f"browser test passed in {time.monotonic() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
