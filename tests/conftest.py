"""Shared fixtures: the embedded tokenizer (from the model cache), a tiny random Llama, and the
grader's tiny base with a held-out file and a valid submission zip."""

import json
import os

import pytest
from grading_helpers import BASE_ID, LAB, adapter_folder, tiny_grading_state

from utils.lab.submission import make_submission
from utils.runtime.models import build_tiny_model, load_embedded_tokenizer


def pytest_configure(config):
    """Under pytest-xdist, each worker gets its share of the cores (threads of torch, BLAS and
    OpenMP, inherited by notebook kernels and subprocesses) so workers do not fight over them."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        threads = str(max(1, (os.cpu_count() or 1) // workers))
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ[name] = threads
        import torch

        torch.set_num_threads(int(threads))


def pytest_collection_modifyitems(config, items):
    """The notebook runs (the longest tests) first, so parallel workers end together."""
    items.sort(key=lambda item: item.get_closest_marker("notebook") is None)


@pytest.fixture(scope="session")
def tokenizer():
    return load_embedded_tokenizer()


@pytest.fixture(scope="session")
def tiny_model(tokenizer):
    return build_tiny_model(tokenizer, num_layers=2, hidden_size=64, seed=0)


@pytest.fixture(scope="module")
def base(tokenizer):
    return tiny_grading_state(tokenizer)


@pytest.fixture(scope="module")
def heldout(tmp_path_factory):
    from utils.data.datasets import load_split

    path = tmp_path_factory.mktemp("heldout") / "heldout.jsonl"
    rows = load_split("news_events", "heldout", allow_heldout=True)[:6]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def good_zip(tokenizer, base, tmp_path_factory):
    folder = tmp_path_factory.mktemp("sub")
    adapter = adapter_folder(tokenizer, folder / "adapter")
    info = {
        "model_fingerprint": base["fingerprint"],
        "seed": 0,
        "device": "cpu",
        "dtype": "float32",
        "config": {"r": 4},
        "packages": {},
        "git_commit": None,
    }
    return make_submission(
        LAB, "alice", {"adapter": adapter}, info, BASE_ID, folder, loss=[2.0, 1.0]
    )
