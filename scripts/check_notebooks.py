#!/usr/bin/env python3
"""Execute notebooks headless with the Rust kernel (evcxr) and check what they printed.

For each notebook given:
  1. A cell running `:preserve_vars_on_panic 0` is put before the first cell *in memory only*, so
     a panic becomes an `error` output instead of a silent stderr line; it is removed, with its
     output, before anything is saved or checked (users keep their variables after a panic).
  2. The notebook runs with nbclient (kernel `rust`, working directory = the notebook's folder,
     EVCXR_TMPDIR = a persistent per-notebook cache outside the repository so warm runs reuse
     compiled dependencies).
  3. The executed copy is written to target/nb/<name>.ipynb (without the injected line), and every
     image/png output to target/nb/figures/<name>-cell<NN>.png.
  4. The run fails, printing the offending cell, on any `error` output, any `panicked at`, any
     compiler `error[E…]` / `error:` on stderr, and any cell tagged `figure` without an image/png.
  5. It prints the execution time of every `##` section and the total.

Exit status: 0 when every notebook passed, 1 otherwise.
"""
from __future__ import annotations

import argparse
import base64
import datetime as dt
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parent.parent
INJECTED = ":preserve_vars_on_panic 0\n"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
BAD_STDERR = re.compile(r"panicked at|error\[E\d+\]|^error(\[|:)", re.MULTILINE)


def cell_text(cell) -> str:
    return "".join(cell.source) if isinstance(cell.source, list) else cell.source


def output_text(out) -> str:
    if out.get("output_type") == "stream":
        text = out.get("text", "")
    elif out.get("output_type") == "error":
        text = f"{out.get('ename')}: {out.get('evalue')}\n" + "\n".join(out.get("traceback", []))
    else:
        data = out.get("data", {})
        text = data.get("text/plain", "") if isinstance(data, dict) else ""
    return ANSI.sub("", text)


def seconds(cell) -> float:
    ex = cell.get("metadata", {}).get("execution", {})
    start, end = ex.get("iopub.execute_input"), ex.get("shell.execute_reply")
    if not start or not end:
        return 0.0
    parse = lambda s: dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
    return (parse(end) - parse(start)).total_seconds()


def rust_std_dir() -> str:
    """The toolchain directory holding libstd-*.so.

    evcxr compiles each cell to a cdylib linked against the shared libstd, found through a
    RUNPATH relative to target/.../deps/; evcxr loads the copy one directory up, so when the cache
    directory shares a prefix with the toolchain (both under $HOME) the relative path misses by one
    level and dlopen fails. Putting the directory on LD_LIBRARY_PATH makes any cache location work.
    """
    sysroot = subprocess.run(["rustc", "--print", "sysroot"], capture_output=True, text=True, check=True).stdout.strip()
    host = re.search(r"^host: (\S+)$", subprocess.run(["rustc", "-vV"], capture_output=True, text=True, check=True).stdout, re.MULTILINE).group(1)
    return str(Path(sysroot) / "lib" / "rustlib" / host / "lib")


def check(nb) -> list[str]:
    problems = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        where = f"cell {i} (execution {cell.get('execution_count')})"
        for out in cell.get("outputs", []):
            text = output_text(out)
            if out.get("output_type") == "error":
                problems.append(f"{where}: error output\n{text}")
            elif "panicked at" in text:
                problems.append(f"{where}: panic\n{text}")
            elif out.get("output_type") == "stream" and out.get("name") == "stderr" and BAD_STDERR.search(text):
                problems.append(f"{where}: compiler or runtime error on stderr\n{text}")
        tags = cell.get("metadata", {}).get("tags", [])
        if "figure" in tags and not any("image/png" in o.get("data", {}) for o in cell.get("outputs", [])):
            problems.append(f"{where}: tagged `figure` but shows no image/png")
        if problems and problems[-1].startswith(where):
            problems[-1] += "\n--- cell source ---\n" + cell_text(cell)
    return problems


def sections(nb) -> list[tuple[str, float]]:
    out, name, total = [], "(preamble)", 0.0
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            m = re.search(r"^##\s+(.+)$", cell_text(cell), re.MULTILINE)
            if m:
                out.append((name, total))
                name, total = m.group(1).strip(), 0.0
        elif cell.cell_type == "code":
            total += seconds(cell)
    out.append((name, total))
    return [(n, t) for n, t in out if t > 0 or n != "(preamble)"]


def save_figures(nb, stem: str, figdir: Path) -> int:
    count = 0
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            png = out.get("data", {}).get("image/png")
            if png:
                figdir.mkdir(parents=True, exist_ok=True)
                (figdir / f"{stem}-cell{i:02d}.png").write_bytes(base64.b64decode(png))
                count += 1
    return count


def run(path: Path, outdir: Path, timeout: int) -> bool:
    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(INJECTED))
    cache = Path(os.environ.get("RRNN_CACHE", Path.home() / ".cache" / "rrnn")) / "evcxr" / path.stem
    cache.mkdir(parents=True, exist_ok=True)
    os.environ["EVCXR_TMPDIR"] = str(cache)
    os.environ["LD_LIBRARY_PATH"] = rust_std_dir() + os.pathsep + os.environ.get("LD_LIBRARY_PATH", "")
    client = NotebookClient(
        nb,
        kernel_name="rust",
        timeout=timeout,
        startup_timeout=180,
        allow_errors=True,
        resources={"metadata": {"path": str(path.parent.resolve())}},
    )
    t0 = time.monotonic()
    crashed = None
    try:
        client.execute()
    except (CellExecutionError, RuntimeError, TimeoutError) as e:  # kernel death, timeout
        crashed = f"{type(e).__name__}: {e}"
    elapsed = time.monotonic() - t0
    if nb.cells and cell_text(nb.cells[0]) == INJECTED:
        nb.cells.pop(0)
    outdir.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, outdir / path.name)
    figures = save_figures(nb, path.stem, outdir / "figures")

    problems = check(nb) + ([f"execution stopped: {crashed}"] if crashed else [])
    print(f"\n{path}: {elapsed:.0f} s, {figures} figures -> {outdir / path.name}")
    for name, secs in sections(nb):
        print(f"  {secs:7.1f} s  {name}")
    for p in problems:
        print(f"\nFAIL {path}: {p}", file=sys.stderr)
    return not problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("notebooks", nargs="+", type=Path)
    ap.add_argument("--outdir", type=Path, default=ROOT / "target" / "nb")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    args = ap.parse_args()
    results = [run(p, args.outdir, args.timeout) for p in args.notebooks]
    failed = results.count(False)
    print(f"\nnotebooks: {len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
