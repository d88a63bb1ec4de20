"""Grade a class: ``python grading/run.py SUBMISSIONS... [--out DIR] [options]``.

SUBMISSIONS are zips made by the labs' last cell (``submission_<lab>_<student>.zip``) or folders of
them. Each is validated (no submitted code runs, nothing is unpickled), its adapter attached to
the one loaded base model, scored on the held-out split with the lab's own evaluation function,
and detached again. Each result is written as soon as it is known; re-running skips zips already
graded (same content) unless ``--force``. Outputs in ``--out``: ``results/*.json``,
``gradebook.csv``, ``feedback/*.md`` (+ charts). ``--gradescope`` reads
``/autograder/submission`` and writes ``/autograder/results/results.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import stat
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from grading.artifacts import base_score, load_heldout  # noqa: E402
from grading.lms import (  # noqa: E402
    FROM_FILE_NAME,
    LmsExport,
    export_for_lms,
    parse_assignment,
)
from grading.outputs import gradebook_rows, gradescope_results, write_feedback, write_gradebook  # noqa: E402
from grading.rubric import load_rubric, rubric_labs  # noqa: E402
from grading.worker import (  # noqa: E402
    Worker,
    WorkerFailed,
    base_model_id,
    base_requirement,
    base_state,
    grade_bytes,
    grading_state,
)
from utils.lab.results import format_table, git_commit, package_versions
from utils.runtime.profiles import PROFILES, Profile
from utils.runtime.storage import write_json_atomic  # noqa: E402

AUTOGRADER_ROOT = Path(os.environ.get("FTKIT_AUTOGRADER_ROOT", "/autograder"))  # Gradescope's
GRADESCOPE_IN, GRADESCOPE_OUT = (
    AUTOGRADER_ROOT / "submission",
    AUTOGRADER_ROOT / "results" / "results.json",
)


MAX_SUBMISSION_BYTES = 512 * 1024 * 1024
FINAL = ("graded", "invalid")  # verdicts that are kept; errors and timeouts are retried


def find_zips(inputs: list[Path]) -> list[Path]:
    """Every entry named ``*.zip`` given or inside a given folder, sorted, each once. Entries
    that are not regular files (folders, pipes, links so named) are kept: each is reported as
    invalid, never read."""
    found = []
    for item in inputs:
        if item.is_dir() and not item.name.endswith(".zip"):
            found += sorted(item.rglob("*.zip"))
        elif item.exists() or item.is_symlink():
            found.append(item)
        else:
            raise FileNotFoundError(f"{item}: no such file or folder")
    return sorted(set(found))


def shard_of(path: Path, shards: int) -> int:
    """Which of ``shards`` slices a file belongs to (1-based), by a hash of its name: the same on
    every machine, and adding files to the inbox moves no other file to another slice."""
    digest = hashlib.sha256(path.name.encode("utf-8", "replace")).digest()
    return int.from_bytes(digest[:8], "big") % shards + 1


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/3"`` -> (2, 3); raises ``argparse.ArgumentTypeError`` with the expected form."""
    try:
        index, count = (int(x) for x in text.split("/"))
    except ValueError:
        index, count = 0, 0
    if not 1 <= index <= count:
        raise argparse.ArgumentTypeError(f"--shard {text!r}: expected i/n with 1 <= i <= n")
    return index, count


def merge_results(folders: list[Path], out: Path, lms: dict | None = None) -> list[dict]:
    """One gradebook and feedback set from the ``results/`` of several shards' output folders."""
    results = []
    for folder in folders:
        stored = sorted((folder / "results").glob("*.json"))
        if not stored:
            raise FileNotFoundError(f"{folder}: no results/*.json (is it a grading --out folder?)")
        results += [json.loads(p.read_text()) for p in stored]
    for result in results:
        write_json_atomic(result_path(out, result["sha256"], result["submission"]), result)
    report_lms(finish_batch(results, out, lms))
    return results


class UnreadableEntry(ValueError):
    """An inbox entry that is not a submission file (the reason is the student's)."""


def read_entry(path: Path) -> bytes:
    """The bytes of a regular file of a sane size; anything else raises ``UnreadableEntry``
    without opening it (a pipe would block, a folder would crash the batch)."""
    try:
        info = path.lstat()
    except OSError as exc:
        raise UnreadableEntry(f"the file cannot be read ({exc.strerror})") from None
    if stat.S_ISLNK(info.st_mode):
        raise UnreadableEntry("a link, not a file: upload the zip itself")
    if not stat.S_ISREG(info.st_mode):
        raise UnreadableEntry("not a file (a folder or a device named like a zip)")
    if info.st_size > MAX_SUBMISSION_BYTES:
        raise UnreadableEntry(
            f"the file is {info.st_size / 1e6:.0f} MB (at most {MAX_SUBMISSION_BYTES / 1e6:.0f} MB)"
        )
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UnreadableEntry(f"the file cannot be read ({exc.strerror})") from None


def result_path(out: Path, sha: str, name: str) -> Path:
    """One result per (file name, content): a copy of another student's zip under another name
    is a row of its own."""
    name_hash = hashlib.sha256(name.encode("utf-8", "replace")).hexdigest()[:8]
    return out / "results" / f"{sha[:16]}-{name_hash}.json"


def grade_one(
    worker: Worker,
    path: Path,
    out: Path,
    timeout: float,
    force: bool,
    setting: str = "",
    cannot_grade: str | None = None,
) -> tuple[dict, bool]:
    """(result, graded_now): the stored verdict when this file and content were graded before
    with the same ``setting`` (base, lab, held-out file, rubric), else a new one.
    ``cannot_grade``: why this machine cannot grade at all (status ``error``, so it is retried
    on a machine that can)."""
    name = path.name.encode("utf-8", "replace").decode()
    try:
        data = read_entry(path)
    except UnreadableEntry as exc:
        data, reason = b"", str(exc)
    else:
        reason = None
    sha = hashlib.sha256(data).hexdigest()
    key = hashlib.sha256(f"{sha}\0{name}\0{setting}".encode()).hexdigest()[:16]
    stored = result_path(out, sha, name)
    if stored.is_file() and not force:
        previous = json.loads(stored.read_text())
        if previous.get("status") in FINAL and previous.get("cache_key") == key:
            return previous, False
    if cannot_grade is not None:
        result = {"status": "error", "score": 0.0, "reason": cannot_grade}
    elif reason is not None:
        result = {"status": "invalid", "score": 0.0, "reason": reason}
    else:
        try:
            result = worker.grade(data, timeout)
        except WorkerFailed as exc:
            result = {"status": exc.status, "score": 0.0, "reason": str(exc)}
    if not result.get("student"):  # the zip was unreadable: name the student from the file name
        result["lab"], named = names_from_filename(name, result.get("lab"))
        result["student"] = f"{named or Path(name).stem}{FROM_FILE_NAME}"
    result.update(submission=name, sha256=sha, cache_key=key, run_info=grading_info(worker))
    write_json_atomic(stored, result)
    return result, True


def grading_setting(base: str, lab: str | None, heldout: Path | None, rubric: Path | None) -> str:
    """Everything besides the file that a verdict depends on, as one string for the cache key."""

    def digest(path: Path | None) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path else "-"

    return json.dumps([base, lab, digest(heldout), digest(rubric)])


def identity_flags(results: list[dict]) -> None:
    """Flags for the instructor, not penalties: a file name that names another student than the
    manifest, and the same zip or the same artifact handed in under several names."""
    by_zip: dict[str, list[str]] = {}
    by_artifact: dict[str, list[str]] = {}
    for r in results:
        by_zip.setdefault(r["sha256"], []).append(r["submission"])
        if r.get("artifact_sha256"):
            by_artifact.setdefault(r["artifact_sha256"], []).append(r["submission"])
    nearly = near_copies(results)
    for index, r in enumerate(results):
        flags = []
        _, named = names_from_filename(r["submission"], r.get("lab"))
        if r.get("artifact_sha256") and r.get("student") and named is not None:
            if not names_student(named, r["student"]):
                flags.append(f"file name names {named[:40]!r}, the manifest {r['student']!r}")
        same_zip = [s for s in by_zip[r["sha256"]] if s != r["submission"]]
        same_artifact = [
            s for s in by_artifact.get(r.get("artifact_sha256"), []) if s != r["submission"]
        ]
        if same_zip and r["sha256"] != EMPTY_SHA:
            flags.append(f"the same zip as {', '.join(sorted(same_zip)[:3])}")
        elif same_artifact:
            flags.append(f"the same artifact as {', '.join(sorted(same_artifact)[:3])}")
        elif index in nearly:
            flags.append(f"weights nearly identical to {', '.join(sorted(nearly[index])[:3])}")
        r["flags"] = flags


NEAR_COPY_COSINE = 0.99


def near_copies(results: list[dict]) -> dict[int, list[str]]:
    """For each result (by index), the other submissions of its lab whose weight sketch has a
    cosine similarity above ``NEAR_COPY_COSINE`` with its own (a copy with noise added), when
    the artifacts are not identical. One similarity matrix per lab."""
    import torch

    close: dict[int, list[str]] = {}
    by_lab: dict[tuple, list[int]] = {}
    for i, r in enumerate(results):
        if r.get("weight_sketch"):
            by_lab.setdefault((r.get("lab"), len(r["weight_sketch"])), []).append(i)
    for members in by_lab.values():
        sketches = torch.tensor([results[i]["weight_sketch"] for i in members])
        unit = torch.nn.functional.normalize(sketches, dim=1)
        cosine = unit @ unit.T
        for a, i in enumerate(members):
            for b, j in enumerate(members):
                same = results[i].get("artifact_sha256") == results[j].get("artifact_sha256")
                if i != j and not same and cosine[a, b] > NEAR_COPY_COSINE:
                    name = results[j]["submission"]
                    close.setdefault(i, []).append(f"{name} (cosine {float(cosine[a, b]):.3f})")
    return close


EMPTY_SHA = hashlib.sha256(b"").hexdigest()


LMS_COPY_SUFFIX = re.compile(r"(?:-\d{1,3}| \(\d{1,3}\))\Z")  # Canvas's "-1", a browser's " (1)"


def names_from_filename(name: str, lab: str | None) -> tuple[str | None, str | None]:
    """(lab, student) that a file name gives, read past what LMS bulk downloads add around the
    kit's ``submission_<lab>_<student>.zip``: Canvas's ``<name>_[LATE_]<user id>_<submission id>_``
    prefix and ``-1`` resubmission suffix, Moodle's ``<Full Name>_<id>_assignsubmission_file_``,
    Blackboard's ``<assignment>_<user>_attempt_<date>_``, a browser's `` (1)``. The student is None
    where the name holds no ``submission_<lab>_`` of a lab with a rubric (it names nobody)."""
    stem = name[:-4] if name.lower().endswith(".zip") else name
    for known in sorted(rubric_labs(), key=len, reverse=True):
        marker = f"submission_{known}_"
        at = stem.rfind(marker)
        if at >= 0 and stem[at + len(marker) :]:
            return known, stem[at + len(marker) :]
    return lab, None


def names_student(named: str, student: str) -> bool:
    """Whether the student a file name gives is ``student``, allowing the copy suffix an LMS or
    a browser adds (a student id may itself end in ``-1``: both readings are tried)."""
    return student in (named, LMS_COPY_SUFFIX.sub("", named))


def grading_info(worker: Worker) -> dict:
    """What the result depends on: base model, kit commit, package versions, time."""

    return {
        "base_model": worker.info.get("base_id"),
        "base_fingerprint": worker.info.get("fingerprint"),
        "kit_commit": git_commit(),
        "packages": package_versions(),
        "graded": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def grade_batch(
    zips: list[Path],
    out: Path,
    *,
    base: str = "embedded",
    base_id: str | None = None,
    lab: str | None = None,
    heldout: Path | None = None,
    rubric: Path | None = None,
    workers: int = 1,
    timeout: float = 900,
    force: bool = False,
    progress: bool = True,
    lms: dict | None = None,
    max_memory_gb: float | None = None,
    progress_file=None,
) -> list[dict]:
    """Grade every zip (resumable), then write the gradebook and feedback; return the results.
    ``progress_file``: where the progress bar goes (default: stderr)."""
    from tqdm.auto import tqdm

    out.mkdir(parents=True, exist_ok=True)
    setting = grading_setting(f"{base}|{base_id or ''}", lab, heldout, rubric)
    requirement = base_requirement(base)  # a base too large here: every submission says so
    pool = [
        Worker(base, lab, heldout, rubric, base_id=base_id, max_memory_gb=max_memory_gb)
        for _ in range(max(1, workers))
    ]
    results: list[dict | None] = [None] * len(zips)
    bar = tqdm(
        total=len(zips), desc="grading", unit="zip", disable=not progress, file=progress_file
    )

    def run_lane(lane: int) -> None:
        for index in range(lane, len(zips), len(pool)):
            results[index], _ = grade_one(
                pool[lane], zips[index], out, timeout, force, setting, requirement
            )
            bar.update(1)

    try:
        with ThreadPoolExecutor(len(pool)) as executor:
            list(executor.map(run_lane, range(len(pool))))
    finally:
        for worker in pool:
            worker.stop()
        bar.close()
    report_lms(finish_batch(results, out, lms))
    return results


def report_lms(export: LmsExport) -> None:
    """Say what the LMS files leave out, so nothing is uploaded short without a word."""
    if export.not_on_roster:
        print(
            f"[grading] {len(export.not_on_roster)} graded student id(s) are not on the roster, "
            f"so not in {export.canvas.name}: {', '.join(export.not_on_roster[:10])}"
        )
    if export.not_final:
        print(
            f"[grading] {len(export.not_final)} student(s) have no verdict yet (an error or a "
            f"timeout; run again to retry): {', '.join(export.not_final[:10])}"
        )


def finish_batch(results: list[dict], out: Path, lms: dict | None = None) -> LmsExport:
    """Flags across the class, then the gradebook, each student's feedback and the LMS files
    (``lms``: ``export_for_lms``'s roster and assignment names)."""
    identity_flags(results)
    write_gradebook(results, out / "gradebook.csv")
    for result in results:
        write_feedback(result, out / "feedback")
    return export_for_lms(results, out, **(lms or {}))


def print_table(results: list[dict]) -> None:
    """The class table on stdout."""

    rows = [{**row, "reason": row["reason"][:70]} for row in gradebook_rows(results)]
    print(
        format_table(rows, ["student", "status", "score", "max_score", "before", "after", "reason"])
    )


def check_submission(
    path: Path,
    base: str | Profile = "embedded",
    base_id: str | None = None,
    state: dict | None = None,
) -> dict:
    """A student's pre-check of their zip: every check the grader makes, then the artifact put on
    the base and run on a few public examples (never the held-out split, and no score shown), so
    a zip the grader would refuse is fixed before the deadline. Prints the verdict and returns
    ``{"accepted": bool, "reason": str, "lab", "student"}``. ``base``: as ``--base``, or the
    lab's profile (name or object); ``state``: a loaded base to reuse
    (``grading.worker.grading_state``)."""
    if isinstance(base, Profile):  # a kit profile by name, a learner's own model by its id
        base = base.name if base.name in PROFILES else base.model_id
    name, base = Path(path).name, "embedded" if base == "cpu" else base
    try:
        data = read_entry(Path(path))
    except UnreadableEntry as exc:
        result = {"status": "invalid", "reason": str(exc)}
    else:
        state = state or grading_state(base, base_id)
        result = grade_bytes(data, state, None, None, None, trial=True)
    accepted = result["status"] == "graded"
    verdict = {
        "accepted": accepted,
        "reason": result.get("reason", ""),
        "lab": result.get("lab"),
        "student": result.get("student"),
    }
    if accepted:
        items = result["heldout"]["items"]
        ran = f"ran on {items} public examples" if items else "loaded and merged into the base"
        print(
            f"[check] {name}: the grader would accept it (lab {verdict['lab']}, student "
            f"{verdict['student']}): every check passed and the artifact {ran}. Its score is "
            "measured by the grader, on data you do not have."
        )
    else:
        print(f"[check] {name}: the grader would REFUSE it (score 0): {verdict['reason']}")
    return verdict


def prepare(base: str, lab: str, heldout: Path | None, rubric: Path | None) -> None:
    """What an autograder image does once, at build time: load the base (converting the
    embedded model into the cache) and cache its score on the held-out data, so no submission
    pays for either. A capstone's base score depends on each submission's test split: only the
    model is prepared."""
    state = grading_state(base)
    graded = load_rubric(lab, rubric)
    if graded.artifact != "capstone":
        rows, digest = load_heldout(graded, heldout)
        score = base_score(
            state["model"], state["tokenizer"], graded, rows, digest, base_state(state)
        )
        print(f"[prepare] {lab}: the base model scores {score[graded.metric]:.4f} {graded.metric}")
    print(f"[prepare] {base_model_id(base)} is ready for grading {lab}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("inputs", nargs="*", type=Path, help="submission zips or folders of them")
    parser.add_argument("--out", type=Path, default=Path("outputs/grading"), help="output folder")
    parser.add_argument(
        "--lab", help="grade only this lab (default: the lab named in each manifest)"
    )
    parser.add_argument(
        "--heldout",
        type=Path,
        help="instructor's held-out JSONL (default: the kit's heldout split)",
    )
    parser.add_argument(
        "--rubric", type=Path, help="rubric JSON (default: grading/rubrics/<lab>.json)"
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="parallel workers, one base model each (default 1)"
    )
    parser.add_argument(
        "--timeout", type=float, default=900, help="seconds per submission (default 900)"
    )
    parser.add_argument(
        "--max-memory-gb",
        type=float,
        help="memory cap per worker: a submission that passes it gets status error, 'exceeded N "
        "GB while grading', and the batch goes on (default: 3x the loaded worker + 2 GB)",
    )
    parser.add_argument("--force", action="store_true", help="re-grade submissions graded before")
    parser.add_argument(
        "--shard",
        type=parse_shard,
        help="grade only slice i of n (e.g. 2/3), to share a large class between machines",
    )
    parser.add_argument(
        "--merge",
        nargs="+",
        type=Path,
        metavar="FOLDER",
        help="build one gradebook in --out from the output folders of several --shard runs",
    )
    parser.add_argument(
        "--base",
        default="embedded",
        help="the base model: embedded (default), a profile (cpu, t4, a100) for submissions made "
        "on a GPU profile, a local model folder or a hub id",
    )
    parser.add_argument(
        "--base-id", help="the model id the manifests name, when --base is a local folder"
    )
    parser.add_argument(
        "--gradescope", action="store_true", help="read /autograder/submission, write results.json"
    )
    parser.add_argument(
        "--prepare",
        action="store_true",
        help="load the base and cache its score on the held-out data for --lab, then exit (an "
        "autograder image's build step)",
    )
    parser.add_argument(
        "--check",
        type=Path,
        metavar="ZIP",
        help="a student's pre-check: every check the grader makes on ZIP, and the artifact run on "
        "a few public examples; prints what would be refused (no held-out score)",
    )
    parser.add_argument(
        "--roster",
        type=Path,
        help="CSV mapping student ids to the LMS's: a 'student' column plus Canvas's identity "
        "columns (e.g. Canvas's gradebook export with a 'student' column added)",
    )
    parser.add_argument(
        "--assignment",
        action="append",
        type=parse_assignment,
        default=[],
        metavar="LAB=NAME",
        help="the LMS column a lab's grades go to, e.g. '03b_lora_peft=Lab 3B (12345)' as in "
        "Canvas's export (repeat per lab; default: the lab id, a new assignment)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.prepare:
        if not args.lab:
            print("--prepare needs --lab", file=sys.stderr)
            return 2
        prepare(args.base, args.lab, args.heldout, args.rubric)
        return 0
    if args.check:
        return 0 if check_submission(args.check, args.base, args.base_id)["accepted"] else 1
    lms = {"roster": args.roster, "assignments": dict(args.assignment)}
    if args.merge:
        results = merge_results(args.merge, args.out, lms)
        print_table(results)
        print(f"\n{len(results)} submission(s) merged; gradebook: {args.out / 'gradebook.csv'}")
        return 0
    inputs = [GRADESCOPE_IN] if args.gradescope else args.inputs
    if not inputs:
        print("nothing to grade: pass submission zips or a folder (see --help)", file=sys.stderr)
        return 2
    zips = find_zips(inputs)
    if args.shard:
        zips = [z for z in zips if shard_of(z, args.shard[1]) == args.shard[0]]
    if not zips:
        print(f"no .zip files found in {', '.join(map(str, inputs))}", file=sys.stderr)
        return 2
    results = grade_batch(
        zips,
        args.out,
        base=args.base,
        base_id=args.base_id,
        lab=args.lab,
        heldout=args.heldout,
        rubric=args.rubric,
        workers=args.workers,
        timeout=args.timeout,
        force=args.force,
        lms=lms,
        max_memory_gb=args.max_memory_gb,
    )
    if args.gradescope:
        write_json_atomic(GRADESCOPE_OUT, gradescope_results(results))
    print_table(results)
    print(
        f"\n{len(results)} submission(s); gradebook: {args.out / 'gradebook.csv'}; "
        f"feedback: {args.out / 'feedback'}; results: {args.out / 'results'}; for the LMS: "
        f"{args.out / 'gradebook_canvas.csv'} (Canvas), {args.out / 'scores.csv'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
