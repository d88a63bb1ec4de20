"""Check cells: readable pass/fail messages for the learner's tasks, and what each task's checks
concluded (``passed``), so a lab can go on past a task the learner has not finished."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

OUTCOMES: dict[str, bool] = {}  # task -> every check of it passed (this kernel's last run)


def report(task: str, ok: bool, success: str, failure: str) -> bool:
    """Print one pass/fail line for ``task`` and return ``ok`` (never raises: the lab goes on)."""
    ok = bool(ok)
    OUTCOMES[task] = OUTCOMES.get(task, True) and ok
    print(f"[PASS] {task}: {success}" if ok else f"[FAIL] {task}: {failure}")
    return ok


@contextmanager
def checking(task: str, fresh: bool = True) -> Iterator[None]:
    """The body of ``task``'s check cell: an exception the learner's code raises is reported as a
    ``[FAIL]`` line instead of stopping the notebook. ``fresh``: the task's earlier outcome is
    forgotten (a re-run after a fix counts afresh); False for a later cell that adds checks."""
    if fresh:
        OUTCOMES.pop(task, None)
    try:
        yield
    except Exception as exc:  # the learner's unfinished or broken code: say so, go on
        report(task, False, "", f"your code raised {type(exc).__name__}: {str(exc)[:200]}")


def passed(task: str) -> bool:
    """Whether every check of ``task`` passed (False when none ran)."""
    return OUTCOMES.get(task, False)


def check_close(
    task: str, got: float, expected: float, tol: float = 1e-3, what: str = "value"
) -> bool:
    """Pass when ``got`` is within ``tol`` of ``expected``; say by how much it differs otherwise."""
    try:
        got = float(got)
    except (TypeError, ValueError):
        return report(task, False, "", f"{what} should be a number, got {type(got).__name__}")
    ok = math.isfinite(got) and abs(got - expected) <= tol
    return report(
        task,
        ok,
        f"{what} = {got:.4f} (expected {expected:.4f})",
        f"{what} = {got:.4f}, expected {expected:.4f} (difference {abs(got - expected):.4g} > "
        f"{tol})",
    )


def check_equal(task: str, got, expected, what: str = "value") -> bool:
    """Pass when ``got == expected``; on failure show both, and the first differing line for
    text."""
    if got == expected:
        return report(task, True, f"{what} is correct", "")
    detail = f"got {got!r}, expected {expected!r}"
    if isinstance(got, str) and isinstance(expected, str):
        for n, (a, b) in enumerate(
            zip(got.splitlines() + [""], expected.splitlines() + [""], strict=False), 1
        ):
            if a != b:
                detail = f"line {n} differs:\n    yours:    {a!r}\n    expected: {b!r}"
                break
    return report(task, False, "", f"{what} differs: {detail}")
