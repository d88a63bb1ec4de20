"""Executing a lab notebook headless (used by the instructor demo and the smoke tests)."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from utils.runtime.storage import REPO_ROOT


def echo_cell_output(cell, cell_index: int, execute_reply) -> None:
    """nbclient hook: print a finished cell's stdout, so a long headless run shows its progress."""
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream" and output.get("name") == "stdout":
            print(output.get("text", ""), end="", flush=True)


def execute_notebook(
    path: Path,
    out_path: Path | None = None,
    smoke: bool = False,
    timeout: int = 1800,
    extra_env: dict[str, str] | None = None,
    echo: bool = False,
):
    """Run every cell of ``path`` in a fresh kernel (cwd = repo root); save the executed copy.

    ``smoke`` sets ``FTKIT_SMOKE=1`` for the kernel, which the parameters cell reads; ``echo``
    prints each cell's printed output as it finishes. Raises
    ``nbclient.exceptions.CellExecutionError`` naming the failing cell.
    """
    notebook = nbformat.read(path, as_version=4)
    saved = {key: os.environ.get(key) for key in ("FTKIT_SMOKE", *(extra_env or {}))}
    os.environ.update({"FTKIT_SMOKE": "1" if smoke else "0", **(extra_env or {})})
    try:
        client = NotebookClient(
            notebook,
            timeout=timeout,
            kernel_name="python3",
            resources={"metadata": {"path": str(REPO_ROOT)}},
            on_cell_executed=echo_cell_output if echo else None,
        )
        client.execute()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if out_path is not None:
            Path(out_path).parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(notebook, out_path)
    return notebook


def cell_outputs_text(notebook) -> str:
    """All stream and text outputs of an executed notebook, joined."""
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                parts.append(output.get("text", ""))
            elif "data" in output and "text/plain" in output["data"]:
                parts.append(output["data"]["text/plain"])
    return "".join(parts)
