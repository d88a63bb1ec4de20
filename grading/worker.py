"""A grading worker: a child process that loads the base model once and grades submissions one by
one. The parent waits for each with a time limit; a hang or crash kills only that worker, which is
restarted, and the batch goes on."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import shutil
import tempfile
import time
import traceback
from pathlib import Path

from grading.artifacts import (
    base_score,
    base_state_fingerprint,
    chance_level,
    load_heldout,
    rows_digest,
    submission_score,
    trial_rows,
)
from grading.capstone import grade_capstone
from grading.rubric import load_rubric, score
from grading.validate import SubmissionError, load_submission
from utils.lab.submission import STUDENT_ID
from utils.runtime.models import (
    build_tiny_model,
    load_embedded_tokenizer,
    load_model,
    load_with_transformers,
    model_fingerprint,
)
from utils.runtime.profiles import PROFILES
from utils.train.memory_estimate import SHAPES, estimate_memory, shape_from_config

BASES = {"embedded": "HuggingFaceTB/SmolLM2-135M-Instruct"}


class WorkerFailed(RuntimeError):
    """The worker died while grading one submission (the result's status: ``error``)."""

    status = "error"


class WorkerTimedOut(WorkerFailed):
    """The worker took longer than the time limit on one submission (status ``timeout``)."""

    status = "timeout"


class WorkerOverMemory(WorkerFailed):
    """The worker's memory passed its cap while grading one submission (status ``error``)."""


MEMORY_POLL_SECONDS = 0.05  # how often the parent reads the worker's resident memory


def default_memory_cap_gb(ready_gb: float) -> float:
    """The cap for a worker holding ``ready_gb`` once its base is loaded: room for the heaviest
    legitimate grading (a merged adapter, the restore snapshot of every weight, the generation
    or perplexity batches) — measured peaks on the kit's base are in grading/README.md — and a
    fixed 2 GB on top."""
    return round(3 * ready_gb + 2.0, 1)


def resident_gb(pid: int) -> float:
    """A process's resident memory (RSS) with its children's, in GB (0 once it is gone)."""
    import psutil

    try:
        process = psutil.Process(pid)
        procs = [process, *process.children(recursive=True)]
        return sum(p.memory_info().rss for p in procs) / 1e9
    except psutil.Error:
        return 0.0


SPECIAL_BASES = ("embedded", "tiny")  # the kit's model, and the tests' tiny random one


def base_model_id(base: str) -> str:
    """The model id that submissions for ``base`` name in their manifest: the embedded model's,
    a profile's (``cpu``, ``t4``, ``a100``), or the hub id / folder as given."""

    if base == "tiny":
        return "tiny-random-llama"
    if base == "embedded":
        return BASES["embedded"]
    return PROFILES[base].model_id if base in PROFILES else base


def base_shape(base: str):
    """(shape, 4-bit) of a base that is not the embedded one: from the kit's table for a profile,
    from ``config.json`` for a local folder; None when neither is known (a hub id not cached, or a
    config whose numbers the kit cannot read)."""

    if base in PROFILES:
        model_id = PROFILES[base].model_id.lower()
        shape = next((s for k, s in SHAPES.items() if k in model_id), None)
        return shape, PROFILES[base].load_in_4bit
    config = Path(base) / "config.json"
    if config.is_file():
        try:
            return shape_from_config(json.loads(config.read_text()), Path(base).name), False
        except (ValueError, AttributeError) as unknown:  # not JSON, or not a config it can read
            print(f"[grader] {unknown}; estimating the base's size from its weight files")
    return None, False


def weight_file_gb(base: str) -> float | None:
    """The size of a local base's weight files in GB (safetensors or .bin), or None."""
    folder = Path(base)
    files = [*folder.glob("*.safetensors"), *folder.glob("*.bin")] if folder.is_dir() else []
    return sum(f.stat().st_size for f in files) / 1e9 if files else None


def base_requirement(base: str) -> str | None:
    """Why this machine cannot grade on ``base``, as a sentence ("needs a GPU with about N GB
    (estimated)"), or None when it can. The embedded model and small local models run on a CPU."""
    import psutil
    import torch

    if base in SPECIAL_BASES or base == "cpu":
        return None
    shape, four_bit = base_shape(base)
    if shape is None:
        stored = weight_file_gb(base)
        if stored is None:
            return None  # unknown size (a hub id): loading it will say whether it fits
        fp32_gb = 2 * stored  # assume 16-bit files: fp32 on this machine doubles them
        if torch.cuda.is_available() or fp32_gb < 0.5 * psutil.virtual_memory().available / 1e9:
            return None
        return (
            f"this lab's base model ({base_model_id(base)}) needs about {fp32_gb:.0f} GB in fp32 "
            "(estimated from its weight files); grade these submissions on a larger machine"
        )
    weights = "nf4-dq" if four_bit else "bf16"
    need = estimate_memory(shape, method="inference", weights=weights, batch_size=16, seq_len=512)
    if torch.cuda.is_available():
        have = torch.cuda.get_device_properties(0).total_memory / 1e9
        if have >= need.total:
            return None
    elif not four_bit and 4 * shape.params() / 1e9 < 0.5 * psutil.virtual_memory().available / 1e9:
        return None  # small enough for fp32 on this CPU
    return (
        f"this lab's base model ({base_model_id(base)}) needs a GPU with about "
        f"{need.total:.0f} GB (estimated); grade these submissions on such a machine"
    )


def load_base(base: str):
    """(model, tokenizer, base model id) for ``"embedded"`` (the kit's model), ``"tiny"`` (tests),
    a profile name, a local model folder or a hub id."""

    if base == "tiny":
        tokenizer = load_embedded_tokenizer()
        model = build_tiny_model(tokenizer, num_layers=2, hidden_size=64, seed=0)
        return model, tokenizer, base_model_id(base)
    if base == "embedded":
        model, tokenizer = load_model("cpu", backend="transformers")
    elif base in PROFILES:
        model, tokenizer = load_model(base)
    else:
        import torch

        model, tokenizer = load_with_transformers(base, torch.float32)
    return model.eval(), tokenizer, base_model_id(base)


def grade_artifact(
    state: dict, files: dict, rubric, heldout: Path | None, trial: bool = False
) -> dict:
    """The result fields of one lab submission: its artifact and the base model scored on the
    held-out split, and the rubric's points (``trial``: on a few public examples instead, for a
    student's pre-check)."""

    if trial:
        rows, rubric = trial_rows(rubric)
        heldout_hash = f"trial-{rows_digest(rows)}"
    else:
        rows, heldout_hash = load_heldout(rubric, heldout)
    after, details = submission_score(state["model"], state["tokenizer"], files, rubric, rows)
    before = (  # a pre-check shows no score, so it does not run the base
        after
        if trial
        else base_score(
            state["model"], state["tokenizer"], rubric, rows, heldout_hash, base_state(state)
        )
    )
    chance = chance_level(rubric, rows)
    return {
        "metric": rubric.metric,
        "higher_is_better": rubric.higher_is_better,
        "before": before,
        "after": after,
        "submission_details": details,
        "heldout": {"items": len(rows), "sha256": heldout_hash},
        "chance": chance,
        **score(
            rubric, before[rubric.metric], after[rubric.metric], chance, after.get("removed_share")
        ),
    }


def grade_bytes(
    data: bytes,
    state: dict,
    lab: str | None,
    heldout: Path | None,
    rubric_path: Path | None,
    trial: bool = False,
) -> dict:
    """Validate and score one submission's bytes with the loaded base in ``state`` (``trial``: a
    student's pre-check, every check and the artifact run on a few public examples; its scores
    mean nothing)."""
    started = time.perf_counter()
    result: dict = {"lab": lab, "student": None, "status": "invalid", "score": 0.0}
    try:
        submission = load_submission(data, lab, state["base_id"], state["fingerprint"])
        manifest = submission.manifest
        result.update(
            lab=manifest["lab"],
            student=manifest["student"],
            artifact_sha256=artifact_digest(manifest["files"]),
            weight_sketch=weight_sketch(submission.files),
        )
        try:
            rubric = load_rubric(manifest["lab"], rubric_path)
        except KeyError as exc:  # a lab without a rubric: the submission's problem
            raise SubmissionError(exc.args[0]) from None
        result["max_score"] = rubric.max_score
        if rubric.artifact == "capstone":  # its task and test split come with the submission
            graded = grade_capstone(
                state, submission.files, rubric, heldout, base_state(state), trial
            )
        else:
            graded = grade_artifact(state, submission.files, rubric, heldout, trial)
        result.update(status="graded", reason=graded.pop("reason", ""), **graded)
    except SubmissionError as exc:
        result["reason"] = capped(str(exc))
        result["student"] = result["student"] or peek_student(data)
    result["seconds"] = round(time.perf_counter() - started, 2)
    return result


MAX_REASON_CHARS = 400


def capped(reason: str) -> str:
    """A reason short enough for a gradebook cell (a student's file can make it any length)."""
    return reason if len(reason) <= MAX_REASON_CHARS else reason[: MAX_REASON_CHARS - 1] + "…"


def artifact_digest(listed: dict[str, dict]) -> str:
    """A hash of the artifact files (the manifest left out), from the sha256 of each file that
    validation has checked against the manifest: equal for two students who hand in the same
    tensors or prompt, whatever else their manifests say."""
    digest = hashlib.sha256()
    for name in sorted(listed):
        digest.update(f"{name}\0{listed[name]['sha256']}\0".encode())
    return digest.hexdigest()[:16]


SKETCH_SIZE = 2048


def weight_sketch(files: dict[str, bytes]) -> list[float] | None:
    """A fixed sample of a submission's weights (every tensor of its safetensors files, in name
    order, read at evenly spaced positions), to compare students' artifacts by cosine similarity:
    a copy with a little noise added stays near 1. None for an artifact without weights."""
    import torch
    from safetensors.torch import load

    tensors = []
    for name in sorted(n for n in files if n.endswith(".safetensors")):
        try:
            loaded = load(files[name])
        except Exception:  # validation reports a bad file; the sketch just skips it
            return None
        tensors += [loaded[k].float().flatten() for k in sorted(loaded)]
    if not tensors:
        return None
    flat = torch.cat(tensors)
    count = min(SKETCH_SIZE, flat.numel())
    positions = torch.arange(count) * (flat.numel() - 1) // max(count - 1, 1)  # exact integers
    return [round(v, 6) for v in flat[positions].tolist()]


def base_state(state: dict) -> str:
    """The base's weights-and-config fingerprint, computed once per grading state."""

    if "state_fingerprint" not in state:
        state["state_fingerprint"] = base_state_fingerprint(state["model"])
    return state["state_fingerprint"]


def peek_student(data: bytes) -> str | None:
    """The student id from a manifest that failed validation (for the gradebook only), or None."""
    import io
    import json
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            student = json.loads(archive.read("manifest.json")).get("student")
    except Exception:  # anything unreadable: the file name will be used instead
        return None
    return student if isinstance(student, str) and STUDENT_ID.match(student) else None


def grading_state(base: str, base_id: str | None = None) -> dict:
    """The loaded base and what manifests are checked against: its id (``base_id``, default the
    base's own) and, for the kit's own bases, its weights' fingerprint."""
    model, tokenizer, loaded_id = load_base(base)
    return {
        "model": model,
        "tokenizer": tokenizer,
        "base_id": base_id or loaded_id,
        "fingerprint": model_fingerprint(model) if base in SPECIAL_BASES else None,
    }


def worker_main(
    conn, base: str, lab, heldout, rubric_path, base_id=None, temp_root: str | None = None
) -> None:
    """Child process: load the base, then answer (sha256, bytes) requests until told to stop.
    ``base_id`` (default: the base's own id) is the id the manifests must name; the weights'
    fingerprint is checked for the kit's own bases only (a GPU's loading differs by machine).
    Temporary files go under ``temp_root``, which the parent removes even if this process is
    killed."""
    import tempfile

    import torch

    tempfile.tempdir = temp_root

    torch.manual_seed(0)
    state = grading_state(base, base_id)
    conn.send({"ready": True, "fingerprint": state["fingerprint"], "base_id": state["base_id"]})
    while True:
        job = conn.recv()
        if job is None:
            return
        try:
            result = grade_bytes(job, state, lab, heldout, rubric_path)
        except Exception as exc:  # a crash on one submission is reported, the worker goes on
            result = {
                "status": "error",
                "score": 0.0,
                "reason": capped(
                    f"the grader failed on this submission ({type(exc).__name__}: {exc})"
                ),
                "traceback": traceback.format_exc(limit=5),
            }
        if base_state_fingerprint(state["model"]) != base_state(state):
            # never let one submission leak into the next: weights or config changed, reload
            model, tokenizer, _ = load_base(base)
            state.update(model=model, tokenizer=tokenizer)
            state.pop("state_fingerprint")
            result["base_reloaded"] = True
        conn.send(result)


class Worker:
    """The parent's handle on one worker process (started lazily, restarted after a failure)."""

    def __init__(
        self,
        base: str = "embedded",
        lab: str | None = None,
        heldout: Path | None = None,
        rubric: Path | None = None,
        startup_timeout: float = 600,
        base_id: str | None = None,
        max_memory_gb: float | None = None,
    ):
        self.args = (base, lab, heldout, rubric, base_id)
        self.startup_timeout = startup_timeout
        self.max_memory_gb = max_memory_gb  # None: default_memory_cap_gb of the loaded worker
        self.process = None
        self.conn = None
        self.temp_root: str | None = None
        self.info: dict = {}

    def start(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.temp_root = tempfile.mkdtemp(prefix="ftkit-grader-")
        self.process = context.Process(
            target=worker_main, args=(child, *self.args, self.temp_root), daemon=True
        )
        self.process.start()
        if not self.conn.poll(self.startup_timeout):
            self.stop()
            raise RuntimeError("the grading worker did not load the base model in time")
        self.info = self.conn.recv()
        ready = resident_gb(self.process.pid)
        self.info.update(
            ready_gb=round(ready, 2),
            max_memory_gb=self.max_memory_gb or default_memory_cap_gb(ready),
        )

    def grade(self, data: bytes, timeout: float) -> dict:
        """Grade one submission; raise WorkerFailed on a timeout, on passing the memory cap (read
        every ``MEMORY_POLL_SECONDS``) or on a crash (the worker is then stopped). The result
        carries the worker's peak resident memory while grading it (``peak_gb``)."""
        if self.process is None or not self.process.is_alive():
            self.start()
        cap, peak = self.info["max_memory_gb"], 0.0
        deadline = time.monotonic() + timeout
        try:
            self.conn.send(data)
            while True:
                if self.conn.poll(MEMORY_POLL_SECONDS):
                    result = self.conn.recv()
                    result["peak_gb"] = round(max(peak, resident_gb(self.process.pid)), 2)
                    return result
                peak = max(peak, resident_gb(self.process.pid))
                if peak > cap:
                    failure = WorkerOverMemory(
                        f"exceeded {cap:g} GB while grading (the grader's memory limit per "
                        f"worker; it reached {peak:.1f} GB)"
                    )
                    break
                if time.monotonic() > deadline:
                    failure = WorkerTimedOut(f"grading took longer than the {timeout:.0f} s limit")
                    break
        except (EOFError, BrokenPipeError, ConnectionResetError, OSError):
            failure = WorkerFailed("the grading worker crashed on this submission")
        self.stop()
        raise failure

    def stop(self) -> None:
        if self.process is not None and self.process.is_alive():
            try:
                self.conn.send(None)
                self.process.join(5)
            except (BrokenPipeError, OSError):
                pass
            if self.process.is_alive():
                self.process.kill()
                self.process.join(5)
        self.process = None
        if self.temp_root is not None:  # what a killed worker left behind: student files
            shutil.rmtree(self.temp_root, ignore_errors=True)
            self.temp_root = None
