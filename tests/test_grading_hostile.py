"""The grader against hostile and careless submissions and inboxes: each case ends as a score of 0
with a reason a student can act on, the batch goes on, and the base model stays exactly as it was
(a control graded right after a hostile case scores as it does alone)."""

import csv
import io
import json
import os
import struct
import zipfile

import pytest
import torch
from grading_helpers import BASE_ID, LAB, pack, unpack
from test_grading import with_config

from grading.artifacts import base_restored, base_state_fingerprint
from grading.outputs import feedback_markdown, write_gradebook
from grading.rubric import load_rubric, score
from grading.run import grade_batch
from grading.worker import MAX_REASON_CHARS, Worker, grade_bytes
from utils.lab.submission import make_submission, sha256_bytes


def graded_alone(good_zip, base, heldout):
    return grade_bytes(good_zip.read_bytes(), base, LAB, heldout, None)


HOSTILE_CONFIGS = {
    "layer replication": ({"layer_replication": [[0, 1]]}, "layer_replication"),
    "layers to transform": ({"layers_to_transform": [0]}, "layers_to_transform"),
    "an unknown field": ({"my_own_field": 1}, "unknown field(s) ['my_own_field']"),
    "rank above the bound through rank_pattern": ({"rank_pattern": {"q_proj": 512}}, "r=512"),
    "negative alpha through alpha_pattern": ({"alpha_pattern": {"q_proj": -1}}, "lora_alpha=-1"),
    "an init that rewrites the base": ({"init_lora_weights": "pissa"}, "init_lora_weights"),
    "fan_in_fan_out": ({"fan_in_fan_out": True}, "fan_in_fan_out"),
    "a bias mode": ({"bias": "all"}, "bias"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_CONFIGS))
def test_an_adapter_config_outside_the_allow_list_is_refused_and_the_base_is_untouched(
    case,
    good_zip,
    base,
    heldout,
):
    alone = graded_alone(good_zip, base, heldout)
    state_before = base_state_fingerprint(base["model"])
    changes, reason = HOSTILE_CONFIGS[case]
    manifest, files = unpack(good_zip)
    result = grade_bytes(with_config(**changes)(manifest, files), base, LAB, heldout, None)
    assert result["status"] == "invalid" and result["score"] == 0.0
    assert reason in result["reason"], result["reason"]
    assert base_state_fingerprint(base["model"]) == state_before
    control = graded_alone(good_zip, base, heldout)
    assert (control["score"], control["after"]) == (alone["score"], alone["after"])


def test_the_base_config_and_attributes_are_restored_after_a_submission(base):
    model = base["model"]
    before = base_state_fingerprint(model)
    layers = model.config.num_hidden_layers
    with base_restored(model):
        model.config.num_hidden_layers = 1  # what PEFT's layer_replication does to the config
        model.config.injected = "x"
        model.generation_config.max_new_tokens = 1
        model.peft_config = {"default": "left behind"}
    assert model.config.num_hidden_layers == layers and not hasattr(model.config, "injected")
    assert not hasattr(model, "peft_config")
    assert base_state_fingerprint(model) == before


def test_the_base_fingerprint_covers_the_config(base):
    model = base["model"]
    before = base_state_fingerprint(model)
    with base_restored(model):
        model.config.num_hidden_layers = 1
        assert base_state_fingerprint(model) != before


@pytest.mark.parametrize("lab", ["../../../tmp/rubric", "/etc/passwd", "03b_lora_peft/../x"])
def test_a_manifest_lab_is_never_a_path_and_the_reason_leaks_no_path(
    lab,
    good_zip,
    base,
    heldout,
):
    manifest, files = unpack(good_zip)
    result = grade_bytes(pack({**manifest, "lab": lab}, files), base, None, heldout, None)
    assert result["status"] == "invalid" and "unknown lab" in result["reason"]
    assert "/" not in result["reason"] and lab not in result["reason"]


def zip_entry_flags(data: bytes, flag_bits: int = 0, method: int | None = None) -> bytes:
    """The zip with the first entry's flag bits or compression method rewritten in place (local
    and central headers), the way another zip tool would have written them."""
    data = bytearray(data)
    for signature, flag_at, method_at in ((b"PK\x03\x04", 6, 8), (b"PK\x01\x02", 8, 10)):
        at = data.find(signature)
        if flag_bits:
            flags = struct.unpack_from("<H", data, at + flag_at)[0] | flag_bits
            struct.pack_into("<H", data, at + flag_at, flags)
        if method is not None:
            struct.pack_into("<H", data, at + method_at, method)
    return bytes(data)


STUDENT_MISTAKES = {
    "an encrypted zip": (lambda d: zip_entry_flags(d, flag_bits=0x1), "password"),
    "an unsupported compression method": (lambda d: zip_entry_flags(d, method=99), "compression"),
    "a deeply nested adapter config": (None, "nested too deeply"),
    "a student id with a trailing newline": (None, "invalid student id"),
    "a backslash file name": (None, "backslashes"),
}


def mistake_bytes(case, good_zip):
    manifest, files = unpack(good_zip)
    if case == "a deeply nested adapter config":
        depth = 5000  # random strings at each level, so it does not compress like a zip bomb
        levels = "".join(f'["{os.urandom(6).hex()}",' for _ in range(depth))
        files["adapter/adapter_config.json"] = (levels + "0" + "]" * depth).encode()
        return pack(manifest, files)
    if case == "a student id with a trailing newline":
        return pack({**manifest, "student": "alice\n"}, files)
    if case == "a backslash file name":
        return pack(manifest, {**files, "notes\\readme.txt": b"hi"})
    return STUDENT_MISTAKES[case][0](good_zip.read_bytes())


@pytest.mark.parametrize("case", sorted(STUDENT_MISTAKES))
def test_student_mistakes_are_invalid_with_a_sentence_not_grader_errors(
    case,
    good_zip,
    base,
    heldout,
):
    result = grade_bytes(mistake_bytes(case, good_zip), base, LAB, heldout, None)
    assert result["status"] == "invalid", result
    assert STUDENT_MISTAKES[case][1] in result["reason"], result["reason"]


def recompressed(data: bytes, method: int) -> bytes:
    """The same zip, every member re-compressed with ``method`` (as 7-Zip or another tool
    would write it)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", method) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
    return out.getvalue()


@pytest.mark.parametrize("method", [zipfile.ZIP_LZMA, zipfile.ZIP_BZIP2, zipfile.ZIP_STORED])
def test_a_zip_compressed_as_other_tools_do_is_graded_the_same(method, good_zip, base, heldout):
    alone = graded_alone(good_zip, base, heldout)
    result = grade_bytes(recompressed(good_zip.read_bytes(), method), base, LAB, heldout, None)
    assert result["status"] == "graded", result.get("reason")
    assert (result["score"], result["after"]) == (alone["score"], alone["after"])


def test_a_member_whose_header_understates_its_size_is_never_inflated_past_it(
    good_zip, base, heldout
):
    data = bytearray(recompressed(good_zip.read_bytes(), zipfile.ZIP_LZMA))
    for signature, size_at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # uncompressed size
        at = data.find(signature)
        struct.pack_into("<I", data, at + size_at, 10)  # "10 bytes": the size checks pass
    result = grade_bytes(bytes(data), base, LAB, heldout, None)
    assert result["status"] == "invalid" and "cannot be read" in result["reason"], result


def test_a_huge_reason_is_capped(good_zip, base, heldout):
    manifest, files = unpack(good_zip)
    data = with_config(target_modules=["x" * 2_000_000])(manifest, files)
    result = grade_bytes(data, base, LAB, heldout, None)
    assert result["status"] == "invalid" and len(result["reason"]) <= MAX_REASON_CHARS


def test_peft_outputs_that_are_legitimate_are_graded(tokenizer, base, heldout, tmp_path):
    """A DoRA adapter and ``target_modules="all-linear"`` as PEFT writes them."""
    from peft import LoraConfig, get_peft_model

    from utils.runtime.models import build_tiny_model

    for name, config in {
        "dora": LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], use_dora=True),
        "all-linear": LoraConfig(r=4, lora_alpha=8, target_modules="all-linear"),
    }.items():
        peft_model = get_peft_model(
            build_tiny_model(tokenizer, num_layers=2, hidden_size=64), config
        )
        peft_model.save_pretrained(str(tmp_path / name))
        info = {"model_fingerprint": base["fingerprint"], "seed": 0, "config": {}, "packages": {}}
        zip_path = make_submission(
            LAB, "alice", {"adapter": tmp_path / name}, info, BASE_ID, tmp_path / f"out-{name}"
        )
        result = grade_bytes(zip_path.read_bytes(), base, LAB, heldout, None)
        assert result["status"] == "graded", (name, result.get("reason"))


def test_a_constant_answer_earns_no_gain_when_the_base_is_below_chance():
    rubric = load_rubric("02_selective_finetuning")
    below_chance_base, constant_head, chance = 0.30, 0.50, 0.50
    assert score(rubric, below_chance_base, constant_head, chance)["gain"] == 0.0
    assert score(rubric, below_chance_base, constant_head)["gain"] == pytest.approx(0.2)
    assert score(rubric, 0.6, 0.9, chance)["gain"] == pytest.approx(0.3)  # base above chance


@pytest.fixture
def inbox(good_zip, tmp_path):
    folder = tmp_path / "inbox"
    folder.mkdir()
    (folder / good_zip.name).write_bytes(good_zip.read_bytes())
    return folder


def test_bad_inbox_entries_score_zero_and_the_batch_finishes(inbox, heldout, tmp_path):
    long_name = "submission_03b_lora_peft_" + "b" * 220 + ".zip"
    (inbox / long_name).write_bytes(b"not a zip")
    (inbox / "submission_03b_lora_peft_carol.zip").mkdir()  # a folder named like a zip
    os.mkfifo(inbox / "submission_03b_lora_peft_dave.zip")  # reading it would block
    (inbox / "submission_03b_lora_peft_erin.zip").symlink_to("/etc/hostname")
    out = tmp_path / "out"
    results = grade_batch(
        sorted(inbox.iterdir()), out, base="tiny", heldout=heldout, timeout=300, progress=False
    )
    by_file = {r["submission"]: r for r in results}
    assert by_file["submission_03b_lora_peft_alice.zip"]["status"] == "graded"
    assert "not a readable zip" in by_file[long_name]["reason"]
    assert "not a file" in by_file["submission_03b_lora_peft_carol.zip"]["reason"]
    assert "not a file" in by_file["submission_03b_lora_peft_dave.zip"]["reason"]
    assert "a link" in by_file["submission_03b_lora_peft_erin.zip"]["reason"]
    assert all(r["score"] == 0.0 for name, r in by_file.items() if "alice" not in name)
    rows = list(csv.DictReader(open(out / "gradebook.csv", encoding="utf-8")))
    assert len(rows) == 5
    assert all(len(p.name) < 100 for p in (out / "feedback").iterdir())


def test_identical_zips_under_two_names_are_two_rows_and_flagged(inbox, heldout, tmp_path):
    original = next(inbox.iterdir())
    (inbox / "submission_03b_lora_peft_bob.zip").write_bytes(original.read_bytes())
    results = grade_batch(
        sorted(inbox.iterdir()), tmp_path / "out", base="tiny", heldout=heldout, progress=False
    )
    assert sorted(r["submission"] for r in results) == [
        "submission_03b_lora_peft_alice.zip",
        "submission_03b_lora_peft_bob.zip",
    ]
    bob = next(r for r in results if "bob" in r["submission"])
    assert bob["student"] == "alice"  # graded as the manifest says, and flagged for the instructor
    assert any("file name names 'bob'" in f for f in bob["flags"])
    assert all(any("the same zip as" in f for f in r["flags"]) for r in results)


LMS_NAMES = {  # how each LMS's bulk download renames submission_03b_lora_peft_alice.zip
    "Canvas": "smithalice_12345_67890_submission_03b_lora_peft_alice.zip",
    "Canvas, late": "smithalice_LATE_12345_67890_submission_03b_lora_peft_alice.zip",
    "Canvas, resubmitted": "smithalice_12345_67891_submission_03b_lora_peft_alice-1.zip",
    "Moodle": "Alice Smith_123456_assignsubmission_file_submission_03b_lora_peft_alice.zip",
    "Blackboard": "Lab 3B_asmith_attempt_2026-12-01-10-22-33_submission_03b_lora_peft_alice.zip",
    "a browser's second download": "submission_03b_lora_peft_alice (1).zip",
}


def test_lms_download_names_are_read_and_flag_only_another_students_name():
    from grading.run import names_from_filename, names_student

    for lms, name in LMS_NAMES.items():
        lab, named = names_from_filename(name, None)
        assert lab == LAB and names_student(named, "alice"), (lms, named)
        assert not names_student(named, "bob"), lms
    named = names_from_filename("smithbob_1_2_submission_03b_lora_peft_alice.zip", None)[1]
    assert named == "alice"  # the original name, not the LMS's account name
    assert names_from_filename("homework.zip", LAB) == (LAB, None)  # names nobody: no flag
    assert names_student("ann-1", "ann-1")  # an id that itself ends in -1


def test_a_canvas_download_is_not_flagged_and_another_students_name_is(inbox, heldout, tmp_path):
    original = next(inbox.iterdir())
    (inbox / LMS_NAMES["Canvas, late"]).write_bytes(original.read_bytes())
    (inbox / "jonesbob_222_333_submission_03b_lora_peft_bob.zip").write_bytes(original.read_bytes())
    original.unlink()
    results = grade_batch(
        sorted(inbox.iterdir()), tmp_path / "out", base="tiny", heldout=heldout, progress=False
    )
    flags = {r["submission"]: r["flags"] for r in results}
    assert not any("file name names" in f for f in flags[LMS_NAMES["Canvas, late"]])
    bob = flags["jonesbob_222_333_submission_03b_lora_peft_bob.zip"]
    assert any("file name names 'bob', the manifest 'alice'" in f for f in bob), bob


def test_formulas_and_markdown_from_students_are_inert(tmp_path):
    result = {
        "student": '=HYPERLINK("http://x")',
        "lab": LAB,
        "status": "invalid",
        "score": 0.0,
        "reason": "**Score: 100 / 100** ![tracker](http://x/p.png)",
        "submission": "@SUM(A1).zip",
        "sha256": "0" * 64,
    }
    write_gradebook([result], tmp_path / "gradebook.csv")
    row = next(csv.DictReader(open(tmp_path / "gradebook.csv", encoding="utf-8")))
    assert row["student"].startswith("'=") and row["submission"].startswith("'@")
    text = feedback_markdown(result, None)
    assert "![" not in text and "**Score: 100" not in text and "\\*\\*Score" in text


def test_only_final_verdicts_are_cached_and_the_lab_option_is_part_of_the_key(
    inbox,
    heldout,
    tmp_path,
):
    out = tmp_path / "out"
    first = grade_batch(sorted(inbox.iterdir()), out, base="tiny", heldout=heldout, progress=False)
    assert first[0]["status"] == "graded"
    stored = next((out / "results").iterdir())
    error = {**json.loads(stored.read_text()), "status": "error", "score": 0.0, "reason": "crash"}
    stored.write_text(json.dumps(error))
    again = grade_batch(sorted(inbox.iterdir()), out, base="tiny", heldout=heldout, progress=False)
    assert again[0]["status"] == "graded", "an error must be retried, not kept"
    other_lab = grade_batch(
        sorted(inbox.iterdir()),
        out,
        base="tiny",
        lab="02_selective_finetuning",
        heldout=heldout,
        progress=False,
    )
    assert other_lab[0]["status"] == "invalid" and "submitted for lab" in other_lab[0]["reason"]


def test_a_killed_worker_leaves_no_student_files_behind():
    worker = Worker(base="tiny")
    worker.start()
    temp_root = worker.temp_root
    assert temp_root and os.path.isdir(temp_root)
    worker.process.kill()
    worker.stop()
    assert not os.path.exists(temp_root)


def test_a_submission_past_the_memory_cap_gets_a_verdict_and_the_batch_goes_on(
    good_zip, heldout, tmp_path
):
    probe = Worker(base="tiny")
    probe.start()
    ready = probe.info["ready_gb"]
    probe.stop()
    assert probe.info["max_memory_gb"] == pytest.approx(3 * ready + 2.0, abs=0.05)
    manifest, files = unpack(good_zip)  # valid, with 250 MB of notes stored uncompressed: the
    files["notes.txt"] = os.urandom(1 << 20) * 250  # worker holds the zip and its files
    manifest["files"] = {n: {"sha256": sha256_bytes(d), "bytes": len(d)} for n, d in files.items()}
    big = tmp_path / "inbox" / "submission_03b_lora_peft_bob.zip"
    big.parent.mkdir()
    with zipfile.ZipFile(big, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("manifest.json", json.dumps(manifest))
        for name, data in files.items():
            archive.writestr(name, data)
    (big.parent / good_zip.name).write_bytes(good_zip.read_bytes())
    results = grade_batch(
        sorted(big.parent.iterdir()),
        tmp_path / "out",
        base="tiny",
        heldout=heldout,
        progress=False,
        max_memory_gb=round(ready + 0.3, 2),
    )
    by_file = {r["submission"]: r for r in results}
    over = by_file[big.name]
    assert over["status"] == "error" and over["score"] == 0.0, over
    assert f"exceeded {round(ready + 0.3, 2):g} GB while grading" in over["reason"]
    assert by_file[good_zip.name]["status"] == "graded"  # the next one, on a restarted worker
    assert by_file[good_zip.name]["peak_gb"] < round(ready + 0.3, 2)


def test_the_zip_rewriter_sets_what_it_claims(good_zip):
    data = zip_entry_flags(good_zip.read_bytes(), flag_bits=0x1, method=99)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = archive.infolist()[0]
    assert info.flag_bits & 0x1 and info.compress_type == 99


def test_a_copied_adapter_with_noise_added_is_flagged_as_near_identical(
    tokenizer, base, heldout, tmp_path
):
    from grading_helpers import adapter_folder
    from safetensors.torch import load_file, save_file

    info = {"model_fingerprint": base["fingerprint"], "seed": 0, "config": {}, "packages": {}}
    folders = {
        "alice": adapter_folder(tokenizer, tmp_path / "alice", trained=True, seed=0),
        "carol": adapter_folder(tokenizer, tmp_path / "carol", trained=True, seed=1),
    }
    bob = adapter_folder(tokenizer, tmp_path / "bob", trained=True, seed=0)
    weights = bob / "adapter_model.safetensors"
    tensors = load_file(weights)
    save_file({k: v + 1e-3 * torch.randn_like(v) for k, v in tensors.items()}, weights)
    folders["bob"] = bob
    zips = [
        make_submission(LAB, student, {"adapter": folder}, info, BASE_ID, tmp_path / f"z-{student}")
        for student, folder in folders.items()
    ]
    results = grade_batch(zips, tmp_path / "out", base="tiny", heldout=heldout, progress=False)
    flags = {r["student"]: " ".join(r["flags"]) for r in results}
    assert "nearly identical to submission_03b_lora_peft_bob.zip" in flags["alice"]
    assert "nearly identical to submission_03b_lora_peft_alice.zip" in flags["bob"]
    assert flags["carol"] == ""
