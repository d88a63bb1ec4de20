import json

import torch

from utils.lab.results import format_table, run_info, save_results
from utils.runtime.storage import write_json_atomic


def test_run_info_records_what_makes_runs_comparable():
    info = run_info(
        {"k": 4},
        seed=3,
        device="cpu",
        dtype=torch.float32,
        model_fingerprint="abc",
        dataset_fingerprints={"sms_spam": "def"},
    )
    assert info["config"] == {"k": 4} and info["seed"] == 3 and info["dtype"] == "float32"
    assert (
        info["packages"]["torch"].startswith("2.13.0")
        and info["packages"]["transformers"] == "5.17.0"
    )
    assert info["model_fingerprint"] == "abc" and info["dataset_fingerprints"] == {
        "sms_spam": "def"
    }
    assert "git_commit" in info and info["cpu_threads"] >= 1


def test_json_is_written_atomically(tmp_path):
    path = save_results(tmp_path / "sub" / "r.json", {"accuracy": 0.5}, {"seed": 1})
    assert json.loads(path.read_text()) == {"run_info": {"seed": 1}, "accuracy": 0.5}
    write_json_atomic(path, {"x": 1})
    assert json.loads(path.read_text()) == {"x": 1}
    assert [p.name for p in path.parent.iterdir()] == ["r.json"], "no temporary files left behind"


def test_format_table():
    table = format_table([{"a": "x", "b": 0.5}, {"a": "long", "b": 1.0}], ["a", "b"])
    assert table.splitlines() == [
        "| a    | b     |",
        "|------|-------|",
        "| x    | 0.500 |",
        "| long | 1.000 |",
    ]
