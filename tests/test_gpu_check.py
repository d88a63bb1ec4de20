"""The GPU check's CPU-side logic: which branches run on which GPU, its table, and what it says on
a machine without a GPU (its GPU branches run only on a CUDA machine)."""

import sys

from utils.runtime.storage import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "tools"))
import gpu_check  # noqa: E402


def test_the_checks_that_run_depend_on_the_gpu():
    t4 = dict((c.name, why) for c, why in gpu_check.plan((7, 5)))
    a100 = dict((c.name, why) for c, why in gpu_check.plan((8, 0)))
    none = dict((c.name, why) for c, why in gpu_check.plan(None))
    assert t4["bf16 step"] == "needs compute capability >= 8.0" and t4["fp16 step"] is None
    assert all(why is None for why in a100.values())
    assert set(none.values()) == {"needs a CUDA GPU"} and set(none) == set(gpu_check.RUNNERS)


def test_the_table_and_the_message_without_a_gpu(capsys, monkeypatch):
    text = gpu_check.table(
        [
            {"check": "dtype", "result": "PASS", "seconds": 0.25, "detail": "cc 7.5 -> float16"},
            {"check": "bf16 step", "result": "skip", "seconds": None, "detail": "needs 8.0"},
        ]
    )
    lines = text.splitlines()
    assert lines[2].split() == ["dtype", "PASS", "0.2", "cc", "7.5", "->", "float16"]
    assert lines[3].split()[:3] == ["bf16", "step", "skip"]
    monkeypatch.setattr(gpu_check.torch.cuda, "is_available", lambda: False)
    assert gpu_check.main() == 0
    out = capsys.readouterr().out
    assert "needs a CUDA GPU" in out and all(f"- {c.name}:" in out for c in gpu_check.CHECKS)


def test_the_grader_check_runs_its_whole_path_on_the_cpu(tmp_path, monkeypatch):
    """The grader branch builds a capstone hand-in as Lab 06 does; with ``.cuda()`` left as a no-op
    it runs here, so a new field in the claim cannot leave the GPU check behind."""
    monkeypatch.setattr(gpu_check.torch.nn.Module, "cuda", lambda self, *a, **k: self)
    folder = gpu_check.tiny_folder(tmp_path / "tiny-llama")
    assert "claim reproduced" in gpu_check.check_grader(folder)
