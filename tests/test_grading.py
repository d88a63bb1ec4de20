"""The grader on the tiny random base: a corpus of malformed submissions (each scores 0 with its
reason), scoring of valid adapters, outputs, resume after a kill, determinism, timeouts."""

import io
import json
import zipfile
from pathlib import Path

import pytest
import torch
from grading_helpers import BASE_ID, KEY, LAB, adapter_folder, pack, unpack
from safetensors.torch import save

from grading.artifacts import linear_shapes
from grading.outputs import gradescope_results
from grading.rubric import Band, Rubric, RubricError, load_rubric, rubric_labs, score
from grading.run import grade_batch, main
from grading.worker import grade_bytes
from utils.lab.submission import make_submission
from utils.runtime.models import build_tiny_model, model_fingerprint


def with_manifest(**changes):
    def mutate(manifest, files):
        return pack({**manifest, **changes}, files)

    return mutate


def with_file(name, data):
    def mutate(manifest, files):
        return pack(manifest, {**files, name: data})

    return mutate


def with_config(**changes):
    def mutate(manifest, files):
        config = json.loads(files["adapter/adapter_config.json"])
        return pack(
            manifest,
            {**files, "adapter/adapter_config.json": json.dumps({**config, **changes}).encode()},
        )

    return mutate


def with_tensors(edit):
    def mutate(manifest, files):
        from safetensors.torch import load

        tensors = load(files["adapter/adapter_model.safetensors"])
        edit(tensors)
        return pack(manifest, {**files, "adapter/adapter_model.safetensors": save(tensors)})

    return mutate


def raw_zip(entries):
    """A zip built entry by entry: (ZipInfo or name, bytes)."""

    def mutate(manifest, files):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for info, data in entries(manifest, files):
                archive.writestr(info, data)
        return buffer.getvalue()

    return mutate


def symlink_entry(manifest, files):
    link = zipfile.ZipInfo("adapter/link.json")
    link.external_attr = 0o120777 << 16
    return [("manifest.json", json.dumps(manifest)), *files.items(), (link, "/etc/passwd")]


def non_utf8_name(manifest, files):
    data = pack(manifest, {**files, "notes/cafX.txt": b"hi"}, rehash=False)
    return data.replace(b"cafX.txt", b"caf\xe9.txt")


def bad_tensor(key_part, value):
    def edit(tensors):
        tensors[KEY.format("A")] = value

    return edit


def drop(name):
    def mutate(manifest, files):
        return pack(manifest, {n: d for n, d in files.items() if n != name})

    return mutate


MALFORMED = {
    "not a zip": (lambda m, f: b"this is not a zip file at all", "not a readable zip file"),
    "truncated zip": (lambda m, f: pack(m, f)[: len(pack(m, f)) // 2], "not a readable zip file"),
    "empty zip": (raw_zip(lambda m, f: []), "the zip is empty"),
    "path traversal": (with_file("../evil.json", b"{}"), "path traversal"),
    "absolute path": (with_file("/etc/evil.json", b"{}"), "absolute paths"),
    "windows path": (with_file("C:/evil.json", b"{}"), "absolute paths"),
    "symlink": (raw_zip(symlink_entry), "symbolic links"),
    "zip bomb": (with_file("notes/zeros.txt", b"0" * 30_000_000), "zip bomb"),
    "too many files": (
        lambda m, f: pack(m, {**f, **{f"notes/{i}.txt": b"x" for i in range(70)}}),
        "files (at most",
    ),
    "duplicate names": (
        raw_zip(
            lambda m, f: [
                ("manifest.json", json.dumps(m)),
                *f.items(),
                ("adapter/adapter_config.json", b"{}"),
            ]
        ),
        "duplicate file names",
    ),
    "non-UTF-8 name": (non_utf8_name, "must be UTF-8"),
    "pickle .bin": (
        with_file("adapter/adapter_model.bin", b"\x80\x04K\x01."),
        "pickle-based files",
    ),
    "pickle .pt": (with_file("adapter/weights.pt", b"\x80\x04K\x01."), "pickle-based files"),
    "pickle .pkl": (with_file("model.pkl", b"\x80\x04K\x01."), "pickle-based files"),
    "python file": (with_file("train.py", b"import os"), "only .json, .jsonl, .safetensors"),
    "missing manifest": (raw_zip(lambda m, f: list(f.items())), "manifest.json is missing"),
    "manifest not JSON": (
        lambda m, f: pack(m, f, manifest_bytes="{not json"),
        "manifest.json is not valid JSON",
    ),
    "manifest is a list": (
        lambda m, f: pack(m, f, manifest_bytes="[1, 2]"),
        "must hold a JSON object",
    ),
    "manifest misses files": (
        lambda m, f: pack({k: v for k, v in m.items() if k != "files"}, f, rehash=False),
        "missing field 'files'",
    ),
    "manifest wrong type": (with_manifest(seed="zero"), "field 'seed' has the wrong type"),
    "schema version": (with_manifest(schema_version=2), "schema_version 2"),
    "bad student id": (with_manifest(student="../bob"), "invalid student id"),
    "wrong lab": (
        with_manifest(lab="02_selective_finetuning"),
        "submitted for lab '02_selective_finetuning'",
    ),
    "wrong base model": (
        with_manifest(base_model={"id": "gpt2", "fingerprint": "x"}),
        "trained on base model 'gpt2'",
    ),
    "wrong fingerprint": (
        lambda m, f: pack({**m, "base_model": {**m["base_model"], "fingerprint": "0" * 16}}, f),
        "fingerprint",
    ),
    "sha256 mismatch": (
        lambda m, f: pack(m, {**f, "adapter/adapter_config.json": b'{"r": 4}'}, rehash=False),
        "sha256 does not match",
    ),
    "listed file missing": (
        lambda m, f: pack(m, {n: d for n, d in f.items() if "config" not in n}, rehash=False),
        "listed in the manifest but missing",
    ),
    "unlisted file": (
        lambda m, f: pack(m, {**f, "notes/extra.txt": b"x"}, rehash=False),
        "not listed in the manifest",
    ),
    "adapter config missing": (
        drop("adapter/adapter_config.json"),
        "adapter_config.json is missing",
    ),
    "adapter config not JSON": (
        with_file("adapter/adapter_config.json", b"{r: 4"),
        "is not valid JSON",
    ),
    "not LoRA": (with_config(peft_type="IA3"), "peft_type 'IA3'"),
    "rank too high": (with_config(r=512), "rank r=512 is outside"),
    "rank not int": (with_config(r="4"), "rank r='4' is outside"),
    "negative alpha": (with_config(lora_alpha=-8), "lora_alpha=-8"),
    "unknown target": (with_config(target_modules=["c_attn"]), "do not exist in the base model"),
    "modules_to_save": (with_config(modules_to_save=["lm_head"]), "modules_to_save"),
    "weights missing": (
        drop("adapter/adapter_model.safetensors"),
        "adapter_model.safetensors is missing",
    ),
    "weights truncated": (
        lambda m, f: pack(
            m,
            {
                **f,
                "adapter/adapter_model.safetensors": f["adapter/adapter_model.safetensors"][:200],
            },
        ),
        "not a valid safetensors file",
    ),
    "tensor for a missing layer": (
        with_tensors(
            lambda t: t.update(
                {KEY.replace("layers.0", "layers.9").format("A"): torch.zeros(4, 64)}
            )
        ),
        "has no linear layer",
    ),
    "wrong shape": (
        with_tensors(bad_tensor("A", torch.zeros(8, 64))),
        "has shape (8, 64), expected (4, 64)",
    ),
    "NaN weights": (with_tensors(bad_tensor("A", torch.full((4, 64), float("nan")))), "NaN or Inf"),
    "Inf weights": (with_tensors(bad_tensor("A", torch.full((4, 64), float("inf")))), "NaN or Inf"),
    "integer weights": (
        with_tensors(bad_tensor("A", torch.zeros(4, 64, dtype=torch.int32))),
        "expected a float",
    ),
    "A without B": (
        with_tensors(lambda t: t.pop(KEY.format("B"))),
        "without both lora_A and lora_B",
    ),
    "not a LoRA tensor": (
        with_tensors(lambda t: t.update({"base_model.model.lm_head.weight": torch.zeros(2, 2)})),
        "is not a LoRA A/B weight",
    ),
    "traversal + pickle": (lambda m, f: pack(m, {**f, "../x.bin": b"\x80"}), "path traversal"),
    "wrong lab + bad rank": (
        lambda m, f: with_config(r=0)({**m, "lab": "01_in_context_learning"}, f),
        "submitted for lab '01_in_context_learning'",
    ),
}


def test_the_malformed_corpus_is_big_enough():
    assert len(MALFORMED) >= 30


@pytest.mark.filterwarnings("ignore:Duplicate name")
@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_submission_scores_zero_with_its_reason(case, good_zip, base, heldout):
    mutate, reason = MALFORMED[case]
    manifest, files = unpack(good_zip)
    result = grade_bytes(mutate(manifest, files), base, LAB, heldout, None)
    assert result["status"] == "invalid" and result["score"] == 0.0
    assert reason in result["reason"], result["reason"]


def test_untrained_adapter_lands_in_the_no_gain_band(good_zip, base, heldout):
    result = grade_bytes(good_zip.read_bytes(), base, LAB, heldout, None)
    assert result["status"] == "graded", result.get("reason")
    assert result["after"] == result["before"]
    assert result["parts"]["gain over base"] == 0.0 and result["parts"]["valid submission"] == 10.0
    assert result["heldout"]["items"] == 6 and result["submission_details"]["r"] == 4
    assert model_fingerprint(base["model"]) == base["fingerprint"], (
        "the adapter was removed after grading"
    )


def test_rubric_scoring_is_linear_between_thresholds():
    rubric = load_rubric(LAB)
    assert Band(points=10, zero_at=0.2, full_at=0.8).credit(0.5) == pytest.approx(0.5)
    assert score(rubric, 0.0, 0.65)["score"] == 100.0  # the reference solution's held-out score
    assert score(rubric, 0.0, 0.0)["score"] == 10.0
    middle = score(rubric, 0.1, 0.35)
    assert middle["parts"] == {"valid submission": 10.0, "after": 30.0, "gain over base": 15.0}
    with pytest.raises(KeyError, match="no rubric for this lab"):
        load_rubric("99_nothing")


@pytest.mark.parametrize(
    "lab",
    [
        "../rubrics/03b_lora_peft",
        "/etc/passwd",
        "03b_lora_peft/../03b_lora_peft",
        "03b_lora_peft.json",
        "",
        "03B_LORA_PEFT",
    ],
)
def test_a_lab_name_is_matched_against_the_known_labs_never_used_as_a_path(lab):
    with pytest.raises(KeyError) as error:
        load_rubric(lab)
    assert "/" not in str(error.value).split(";")[0] and str(Path.cwd()) not in str(error.value)


def test_the_rubric_schema_fills_defaults_and_names_bad_fields():
    data = json.loads(
        (Path(__file__).parents[1] / "grading" / "rubrics" / f"{LAB}.json").read_text()
    )
    rubric = Rubric.from_dict(data)
    assert (
        rubric.checks.rank == (1, 128) and rubric.checks.max_shots == 16
    )  # a default where the file is silent
    assert rubric.higher_is_better and rubric.merge_into == "original"
    assert Rubric.from_dict(rubric.to_dict()) == rubric  # the JSON form round-trips
    assert set(rubric_labs()) >= {LAB, "01_in_context_learning", "05_continual_pretraining"}
    broken = {
        "an unknown key": ({**data, "bonus_points": 900}, "unknown \\['bonus_points'\\]"),
        "a missing key": ({k: v for k, v in data.items() if k != "gain"}, "missing \\['gain'\\]"),
        "an unknown check": ({**data, "checks": {"max_rank": 4}}, "unknown checks"),
        "an empty band": (
            {**data, "after": {"points": 60, "zero_at": 0.5, "full_at": 0.5}},
            "must differ",
        ),
        "an unknown artifact": ({**data, "artifact": "pickle"}, "artifact must be one of"),
        "reversed rank bounds": ({**data, "checks": {"rank": [64, 1]}}, "checks.rank"),
        "a string for a boolean": ({**data, "higher_is_better": "yes"}, "true or false"),
    }
    for name, (bad, message) in broken.items():
        with pytest.raises(RubricError, match=message):
            Rubric.from_dict(bad)
        assert name


def test_batch_outputs_resume_and_determinism(tokenizer, good_zip, base, heldout, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / good_zip.name).write_bytes(good_zip.read_bytes())
    info = {"model_fingerprint": base["fingerprint"], "seed": 1, "packages": {}, "config": {}}
    trained = adapter_folder(tokenizer, tmp_path / "bob_adapter", trained=True, seed=1)
    make_submission(LAB, "bob", {"adapter": trained}, info, BASE_ID, inbox)
    manifest, files = unpack(good_zip)
    (inbox / "submission_03b_lora_peft_mallory.zip").write_bytes(
        with_file("adapter/adapter_model.bin", b"\x80")({**manifest, "student": "mallory"}, files)
    )
    out = tmp_path / "out"
    first = grade_batch(
        sorted(inbox.glob("*.zip")), out, base="tiny", heldout=heldout, progress=False
    )
    by_student = {r["student"]: r for r in first}
    assert by_student["mallory"]["score"] == 0 and "pickle" in by_student["mallory"]["reason"]
    assert by_student["alice"]["status"] == by_student["bob"]["status"] == "graded"
    gradebook = (out / "gradebook.csv").read_text().splitlines()
    assert gradebook[0].startswith("student,lab,status,score") and len(gradebook) == 4
    feedback = {p.name for p in (out / "feedback").iterdir()}
    assert (
        sum(name.endswith(".md") for name in feedback) == 3
        and sum(name.endswith(".png") for name in feedback) == 2
    )
    held_texts = [json.loads(line)["text"] for line in heldout.read_text().splitlines()]
    for path in (out / "feedback").glob("*.md"):
        text = path.read_text()
        assert not any(t in text for t in held_texts), "feedback must not leak held-out examples"

    # killed half-way: one result is lost; re-running grades only that one, the rest are reused
    lost = sorted((out / "results").glob("*.json"))[0]
    kept = {p.name: p.read_text() for p in (out / "results").glob("*.json") if p != lost}
    lost.unlink()
    second = grade_batch(
        sorted(inbox.glob("*.zip")), out, base="tiny", heldout=heldout, progress=False
    )
    assert {
        p.name: p.read_text() for p in (out / "results").glob("*.json") if p.name in kept
    } == kept
    assert lost.is_file()
    # deterministic: forcing a full re-grade gives identical scores and metrics
    third = grade_batch(
        sorted(inbox.glob("*.zip")), out, base="tiny", heldout=heldout, force=True, progress=False
    )

    def strip(rs):
        return sorted(
            (r["student"], r["score"], json.dumps(r.get("after"), sort_keys=True)) for r in rs
        )

    assert strip(first) == strip(second) == strip(third)
    payload = gradescope_results(third)
    assert payload["score"] == sum(r["score"] for r in third)
    assert all(
        {"name", "score", "max_score", "visibility", "output"} <= set(t) for t in payload["tests"]
    )


def test_a_hanging_submission_times_out_and_the_batch_goes_on(good_zip, heldout, tmp_path, capsys):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a.zip").write_bytes(good_zip.read_bytes())
    code = main(
        [
            str(inbox),
            "--out",
            str(tmp_path / "out"),
            "--base",
            "tiny",
            "--heldout",
            str(heldout),
            "--timeout",
            "0.01",
        ]
    )
    assert code == 0
    result = json.loads(next((tmp_path / "out" / "results").glob("*.json")).read_text())
    assert result["status"] == "timeout" and result["score"] == 0 and "limit" in result["reason"]
    assert "timeout" in capsys.readouterr().out
    assert linear_shapes(build_tiny_model_for_shapes())["model.layers.0.self_attn.q_proj"] == (
        64,
        64,
    )


def build_tiny_model_for_shapes():
    from utils.runtime.models import load_embedded_tokenizer

    return build_tiny_model(load_embedded_tokenizer(), num_layers=2, hidden_size=64, seed=0)


def test_gradescope_mode_reads_the_submission_folder_and_writes_results_json(
    good_zip, heldout, tmp_path, monkeypatch
):
    import grading.run as run

    submission, results = (
        tmp_path / "autograder" / "submission",
        tmp_path / "autograder" / "results" / "results.json",
    )
    submission.mkdir(parents=True)
    (submission / good_zip.name).write_bytes(good_zip.read_bytes())
    monkeypatch.setattr(run, "GRADESCOPE_IN", submission)
    monkeypatch.setattr(run, "GRADESCOPE_OUT", results)
    assert (
        run.main(
            [
                "--gradescope",
                "--out",
                str(tmp_path / "out"),
                "--base",
                "tiny",
                "--heldout",
                str(heldout),
            ]
        )
        == 0
    )
    payload = json.loads(results.read_text())
    assert payload["score"] == 10.0  # valid, untrained adapter: no after/gain points
    assert [t["name"] for t in payload["tests"]] == [
        f"{LAB}: valid submission",
        f"{LAB}: after",
        f"{LAB}: gain over base",
    ]
    assert [t["max_score"] for t in payload["tests"]] == [10.0, 60.0, 30.0]
    assert all(t["visibility"] == "visible" for t in payload["tests"])


def test_a_trained_adapter_is_merged_for_scoring_and_the_base_restored_bit_for_bit(
    tokenizer, base, heldout, tmp_path
):
    snapshot = {n: p.detach().clone() for n, p in base["model"].state_dict().items()}
    info = {"model_fingerprint": base["fingerprint"], "seed": 2, "packages": {}, "config": {}}
    adapter = adapter_folder(tokenizer, tmp_path / "adapter", trained=True, seed=2)
    zip_path = make_submission(LAB, "carol", {"adapter": adapter}, info, BASE_ID, tmp_path)
    first = grade_bytes(zip_path.read_bytes(), base, LAB, heldout, None)
    assert first["status"] == "graded", first.get("reason")
    assert all(torch.equal(snapshot[n], p) for n, p in base["model"].state_dict().items())
    again = grade_bytes(zip_path.read_bytes(), base, LAB, heldout, None)
    assert again["after"] == first["after"] and again["score"] == first["score"]


def test_a_qlora_adapter_is_merged_into_the_nf4_rounded_base_and_the_base_restored(
    tokenizer, base, tmp_path
):
    from grading.artifacts import merged_adapter
    from utils.train.quantization import nf4_dequantize, nf4_quantize

    model = base["model"]
    snapshot = {n: p.detach().clone() for n, p in model.state_dict().items()}
    adapter = adapter_folder(tokenizer, tmp_path / "adapter", trained=True, seed=3)
    name = "model.layers.0.mlp.down_proj"
    original = dict(model.named_modules())[name].weight.detach().clone()
    with merged_adapter(
        model, str(adapter), "nf4"
    ) as merged:  # down_proj has no LoRA: only rounded
        assert torch.equal(
            dict(merged.named_modules())[name].weight,
            nf4_dequantize(*nf4_quantize(original), original.shape),
        )
    assert all(torch.equal(snapshot[n], p) for n, p in model.state_dict().items())
    with pytest.raises(ValueError, match="merge_into"):
        with merged_adapter(model, str(adapter), "int3"):
            pass


def test_shards_cover_the_class_once_and_merge_into_one_gradebook(good_zip, heldout, tmp_path):
    import csv

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for student in ("alice", "bob", "carol", "dave", "erin"):
        (inbox / f"submission_{LAB}_{student}.zip").write_bytes(good_zip.read_bytes())
    common = ["--base", "tiny", "--heldout", str(heldout), "--timeout", "300"]
    for index in (1, 2):
        assert (
            main(
                [
                    str(inbox),
                    "--out",
                    str(tmp_path / f"shard{index}"),
                    "--shard",
                    f"{index}/2",
                    *common,
                ]
            )
            == 0
        )
    shard_rows = [
        list(csv.DictReader(open(tmp_path / f"shard{i}" / "gradebook.csv"))) for i in (1, 2)
    ]
    assert sorted(len(rows) for rows in shard_rows) != [0, 5]  # both shards got work
    assert sum(len(rows) for rows in shard_rows) == 5
    merged = tmp_path / "merged"
    assert (
        main(["--merge", str(tmp_path / "shard1"), str(tmp_path / "shard2"), "--out", str(merged)])
        == 0
    )
    rows = list(csv.DictReader(open(merged / "gradebook.csv")))
    assert sorted(r["submission"] for r in rows) == sorted(p.name for p in inbox.iterdir())
    assert all(r["status"] == "graded" and "the same zip as" in r["flags"] for r in rows)
    with pytest.raises(SystemExit):
        main([str(inbox), "--shard", "3/2"])


def test_a_base_too_large_for_this_machine_gives_every_submission_a_clear_reason(
    good_zip, heldout, tmp_path
):
    results = grade_batch(
        [good_zip], tmp_path / "out", base="a100", heldout=heldout, progress=False
    )
    assert [r["status"] for r in results] == ["error"]  # not cached: a GPU machine regrades it
    assert "needs a GPU with about" in results[0]["reason"]
    assert "(estimated)" in results[0]["reason"]
    assert (tmp_path / "out" / "gradebook.csv").is_file()


def test_a_local_model_folder_is_a_base_and_manifests_are_checked_against_its_id(
    tokenizer, good_zip, heldout, tmp_path
):
    folder = tmp_path / "my-base"
    build_tiny_model(tokenizer, num_layers=2, hidden_size=64, seed=0).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    out = tmp_path / "out"
    graded = grade_batch(
        [good_zip], out, base=str(folder), base_id=BASE_ID, heldout=heldout, progress=False
    )
    assert graded[0]["status"] == "graded", graded[0].get("reason")
    other = grade_batch(
        [good_zip],
        out,
        base=str(folder),
        base_id="org/other-model",
        heldout=heldout,
        progress=False,
    )
    assert other[0]["status"] == "invalid" and "org/other-model" in other[0]["reason"]


def test_a_students_pre_check_accepts_a_good_zip_and_names_what_would_be_refused(
    good_zip, base, tmp_path, capsys
):
    from grading.artifacts import TRIAL_ROWS
    from grading.run import check_submission
    from grading.worker import grade_bytes

    verdict = check_submission(good_zip, state=base)
    assert verdict["accepted"] and verdict["student"] == "alice", verdict
    printed = capsys.readouterr().out
    assert "would accept it" in printed and f"ran on {TRIAL_ROWS} public examples" in printed
    trial = grade_bytes(good_zip.read_bytes(), base, None, None, None, trial=True)
    assert trial["heldout"]["items"] == TRIAL_ROWS  # never the held-out split
    manifest, files = unpack(good_zip)
    broken = tmp_path / "submission_03b_lora_peft_alice.zip"
    broken.write_bytes(pack({**manifest, "student": "alice\n"}, files))
    verdict = check_submission(broken, state=base)
    assert not verdict["accepted"] and "invalid student id" in verdict["reason"]
    assert "would REFUSE it (score 0): " in capsys.readouterr().out
    assert not check_submission(tmp_path, state=base)["accepted"]  # a folder, not a zip


def test_the_gradescope_package_grades_a_good_and_a_malformed_hand_in(good_zip, heldout, tmp_path):
    import os
    import stat
    import subprocess
    import sys

    from grading.autograder import build_autograder
    from utils.runtime.storage import cache_dir

    package = build_autograder("03b", tmp_path / "autograder.zip", heldout=heldout, base="tiny")
    root = tmp_path / "autograder"  # Gradescope's /autograder, moved for the test
    with zipfile.ZipFile(package) as archive:
        archive.extractall(root / "source")
        modes = {i.filename: i.external_attr >> 16 for i in archive.infolist()}
    assert modes["setup.sh"] & stat.S_IXUSR and modes["run_autograder"] & stat.S_IXUSR
    setup = (root / "source" / "setup.sh").read_text()
    assert "tools/kit.py setup" in setup and "--prepare --lab 03b_lora_peft" in setup
    assert (root / "source" / "kit" / "grading" / "run.py").is_file()
    env = {
        **os.environ,
        "FTKIT_AUTOGRADER_ROOT": str(root),
        "FTKIT_PYTHON": sys.executable,
        "FTKIT_CACHE": str(cache_dir()),
    }
    for hand_in, expected in ((good_zip.read_bytes(), 10.0), (b"not a zip", 0.0)):
        submission = root / "submission"
        submission.mkdir(exist_ok=True)
        for old in submission.iterdir():
            old.unlink()
        (submission / good_zip.name).write_bytes(hand_in)
        subprocess.run(
            ["bash", str(root / "source" / "run_autograder")], env=env, check=True, timeout=600
        )
        payload = json.loads((root / "results" / "results.json").read_text())
        assert payload["score"] == expected, payload
        assert {"tests", "score", "visibility", "output"} <= set(payload)
        assert all(
            {"name", "score", "max_score", "visibility", "output"} <= set(t)
            for t in payload["tests"]
        )
    assert "not a readable zip" in payload["tests"][0]["output"]


def test_prepare_caches_the_base_score_an_autograder_image_needs(heldout, capsys):
    import grading.run as run

    assert run.main(["--prepare", "--lab", LAB, "--base", "tiny", "--heldout", str(heldout)]) == 0
    printed = capsys.readouterr().out
    assert f"[prepare] {LAB}: the base model scores" in printed and "ready for grading" in printed
    assert run.main(["--prepare"]) == 2  # a lab is needed
