"""Data parallelism for real: the launch script run by ``torchrun`` with 2 ranks (gloo, CPU) and
as a single process, on the embedded model, gives the same losses and the same adapter."""

import json
import os
import subprocess
import sys

import pytest

from utils.runtime.storage import REPO_ROOT

SCRIPT = REPO_ROOT / "tools" / "distributed" / "ddp_train.py"
ARGS = ["--steps", "3", "--batch", "4"]


def test_two_ranks_train_the_same_adapter_as_one_process(tmp_path):
    from safetensors.torch import load_file

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    for command in ([*torchrun, str(SCRIPT)], [sys.executable, str(SCRIPT)]):
        done = subprocess.run(
            [*command, "--out", str(tmp_path), *ARGS],
            env=env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-3000:]
    two, one = (json.loads((tmp_path / f"result-{n}.json").read_text()) for n in (2, 1))
    assert two["world"] == 2 and one["world"] == 1
    assert two["loss"] == pytest.approx(one["loss"], abs=1e-4)
    a, b = (load_file(str(tmp_path / f"adapter-{n}.safetensors")) for n in (2, 1))
    assert a.keys() == b.keys()
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-4
