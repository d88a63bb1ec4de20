"""The solutions notebooks, executed end to end in SMOKE mode (the real embedded model, few
items)."""

import json
import re
import zipfile

import pytest
from notebook_checks import check_lab01_learner, check_lab03b_solution, run_in_browser_instead

from tools.notebooks import cell_outputs_text, execute_notebook
from utils.runtime.storage import REPO_ROOT


@pytest.fixture(scope="module")
def embedded_base():
    """The grader's state for the embedded model (loaded once per test module)."""
    from grading.worker import load_base
    from utils.runtime.models import model_fingerprint

    model, tokenizer, base_id = load_base("embedded")
    return {
        "model": model,
        "tokenizer": tokenizer,
        "base_id": base_id,
        "fingerprint": model_fingerprint(model),
    }


def grade_submission(out, lab: str, state: dict) -> dict:
    """Grade a lab's SMOKE submission zip with the real grader on the embedded base; it must be
    valid and leave the base unchanged."""
    from grading.worker import grade_bytes
    from utils.runtime.models import model_fingerprint

    result = grade_bytes(
        (out / f"submission_{lab}_your-student-id.zip").read_bytes(), state, lab, None, None
    )
    assert result["status"] == "graded", result.get("reason")
    assert result["parts"]["valid submission"] == 10.0 and result["score"] >= 10.0
    assert model_fingerprint(state["model"]) == state["fingerprint"]
    return result


def run_notebook(stem: str, out, folder: str = "solutions", **env: str) -> str:
    """Execute ``<folder>/<stem>.ipynb`` in SMOKE mode with its outputs in ``out`` (and ``env``
    for the kernel); return the text the cells printed."""
    notebook = execute_notebook(
        REPO_ROOT / folder / f"{stem}.ipynb",
        None,
        smoke=True,
        timeout=600,
        extra_env={"FTKIT_OUTPUTS": str(out), **env},
    )
    text = cell_outputs_text(notebook)
    if "[check]" in text:  # the lab's last cell: the grader's pre-check of the zip it wrote
        assert "the grader would accept it" in text, text[text.index("[check]") :][:600]
    return text


@pytest.mark.notebook
def test_lab01_solution_runs_in_smoke_mode_and_its_submission_is_graded(tmp_path, embedded_base):
    text = run_notebook("01_in_context_learning", tmp_path)
    assert text.count("[PASS]") == 4 and "[FAIL]" not in text
    out = tmp_path / "01_in_context_learning"
    results = json.loads((out / "results.json").read_text())
    assert results["run_info"]["config"]["smoke"] is True
    assert results["run_info"]["model_fingerprint"] and results["run_info"]["dataset_fingerprints"]
    for name in ("sms_spam", "animal_diet"):
        base = results["baseline"][name]
        assert base["n_test"] == 10  # the test split is scored once, for the two prompts
        assert all(
            0 <= base[k] <= 1 for k in ("zero_shot", "best_prompting", "validation_accuracy")
        )
    assert {r["k"] for r in results["sweep"]} == {0, 1, 2, 4, 8}
    for png in ("accuracy_vs_k.png", "before_after.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    assert json.loads((out / "baseline.json").read_text())["baseline"] == results["baseline"]
    spec = json.loads((out / "prompt_spec.json").read_text())
    assert spec["test_accuracy"] == results["baseline"]["sms_spam"]["best_prompting"]
    graded = grade_submission(out, "01_in_context_learning", embedded_base)
    assert (
        graded["submission_details"]["shots"] == len(spec["demo_ids"])
        and graded["heldout"]["items"] > 100
    )


@pytest.mark.notebook
@run_in_browser_instead
def test_lab01_learner_notebook_runs_and_reports_unfinished_tasks(tmp_path):
    check_lab01_learner(run_notebook("01_in_context_learning", tmp_path, folder="labs"), tmp_path)


@pytest.mark.notebook
def test_lab02_solution_runs_in_smoke_mode_and_its_submission_is_graded(tmp_path, embedded_base):
    text = run_notebook("02_selective_finetuning", tmp_path)
    assert text.count("[PASS]") == 8 and "[FAIL]" not in text
    out = tmp_path / "02_selective_finetuning"
    results = json.loads((out / "results.json").read_text())
    assert results["trainable_params"] == 3_541_826
    assert (
        len(results["ablation"]) == 5
        and results["seconds_per_step"]["cached"] < results["seconds_per_step"]["full_forward"]
    )
    from safetensors.torch import load_file

    tensors = load_file(out / "classifier" / "classifier.safetensors")
    assert sum(t.numel() for t in tensors.values()) == 3_541_826 and "lm_head.weight" in tensors
    graded = grade_submission(out, "02_selective_finetuning", embedded_base)
    assert graded["submission_details"]["trained_parameters"] == 3_541_826


@pytest.mark.notebook
def test_lab03_part_a_solution_runs_in_smoke_mode_and_its_submission_is_graded(
    tmp_path, embedded_base
):
    text = run_notebook("03_lora", tmp_path)
    assert text.count("[PASS]") == 10 and "[FAIL]" not in text
    results = json.loads((tmp_path / "03_lora" / "results.json").read_text())
    assert results["lora_row"]["trainable params"] == 461_954
    assert results["lora_all_linear_row"]["trainable params"] == 2_442_240 + 1_154  # + the head
    from safetensors.torch import load_file

    tensors = load_file(tmp_path / "03_lora" / "classifier" / "classifier.safetensors")
    assert len(tensors) == 122 and all(".lora." in n or n.startswith("lm_head") for n in tensors)
    graded = grade_submission(tmp_path / "03_lora", "03_lora", embedded_base)
    assert graded["submission_details"]["lora"] == {"rank": 8, "alpha": 16}


@pytest.mark.notebook
@run_in_browser_instead
def test_lab03_part_b_solution_runs_in_smoke_mode(tmp_path):
    check_lab03b_solution(run_notebook("03b_lora_peft", tmp_path), tmp_path)


@pytest.mark.notebook
def test_lab07_solution_runs_in_smoke_mode_and_its_submission_is_graded(tmp_path, embedded_base):
    text = run_notebook("07_peft_family", tmp_path)
    assert text.count("[PASS]") == 17 and "[FAIL]" not in text
    out = tmp_path / "07_peft_family"
    results = json.loads((out / "results.json").read_text())
    methods = {row["method"]: row for row in results["methods"]}
    assert list(methods) == list(family_methods())
    assert methods["LoRA"]["trainable"] == 2_442_240  # r = 8 on all 7 linear layers of 30 blocks
    assert methods["prefix tuning"]["merged extra latency %"] is None
    assert methods["IA3"]["merged extra latency %"] is not None
    assert [(r["placement"], r["rule"]) for r in results["placement"]] == [
        ("q only", "equal rank"),
        ("q only", "equal budget"),
        ("all linear", "equal rank"),
        ("all linear", "equal budget"),
    ]
    assert (out / "peft_family.png").read_bytes()[:4] == b"\x89PNG"
    graded = grade_submission(out, "07_peft_family", embedded_base)
    assert graded["submission_details"]["peft_type"] == "IA3"


@pytest.mark.notebook
def test_lab03c_solution_runs_in_smoke_mode_sweeps_merges_and_combines(tmp_path):
    text = run_notebook("03c_lora_knobs", tmp_path)
    # Tasks 3.7 (7 checks) and 3.8 (6); update size (2), same scale, one skill each, combining
    assert text.count("[PASS]") == 18 and "[FAIL]" not in text
    out = tmp_path / "03c_lora_knobs"
    results = json.loads((out / "results.json").read_text())
    cells = {(c["r"], c["alpha"], c["rsLoRA"]) for c in results["sweep"]}
    assert cells == {(16, 8, False), (16, 32, False), (4, 32, False), (4, 8, False)} | {
        (4, 8, True),
        (16, 8, True),
    }  # r = 16, α = 32 is in both sweeps and trained once
    assert all(c["update norm"] > 0 for c in results["sweep"])  # every adapter learned
    assert [r["s"] for r in results["merge_scales"]] == [0.0, 1.0, 1.5]
    ranks = {r["adapter"]: r["rank"] for r in results["combinations"]}
    assert ranks == {"base": 0, "extract": 16, "spam": 16, "linear": 16, "cat": 32} | {
        "ties": 16,
        "dare_ties": 16,
        "joint": 16,
    }
    assert [r["adapter"] for r in results["combination_test"]][1:] == ["joint", "switching"]
    for png in ("alpha_sweep.png", "rank_heatmap.png", "update_norm.png", "merge_scale.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.notebook
def test_lab08_solution_runs_in_smoke_mode_with_two_ranks(tmp_path):
    text = run_notebook("08_memory_and_scale", tmp_path)
    assert text.count("[PASS]") == 10 and "[FAIL]" not in text
    out = tmp_path / "08_memory_and_scale"
    results = json.loads((out / "results.json").read_text())
    assert results["ddp"]["two_ranks"]["world"] == 2 and results["ddp"]["weight_difference"] < 1e-4
    assert [r["model"] for r in results["zero"]] == ["7B"] * 5 + ["70B"] * 5
    assert (out / "memory_levers.png").read_bytes()[:4] == b"\x89PNG"


def save_lora(model, folder, targets=("q_proj", "v_proj")):
    """A random (non-zero) LoRA adapter for ``model``, saved where a lab would have left it."""
    import copy

    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=2, target_modules=list(targets), init_lora_weights=False)
    get_peft_model(copy.deepcopy(model), config).save_pretrained(str(folder))


@pytest.mark.notebook
def test_lab09_solution_runs_in_smoke_mode_and_agrees_with_the_harness(
    tmp_path, embedded_base, tiny_model
):
    # earlier labs' adapters, as their runs leave them: 03B's (from a SMOKE run), 04's QLoRA, and
    # a capstone adapter made for another base model; Lab 05's is missing
    save_lora(embedded_base["model"], tmp_path / "03b_lora_peft" / "adapter_extract")
    (tmp_path / "03b_lora_peft" / "results.json").write_text(
        json.dumps({"run_info": {"config": {"smoke": True}}})
    )
    save_lora(embedded_base["model"], tmp_path / "04_qlora_unsloth" / "adapter_qlora")
    save_lora(tiny_model, tmp_path / "06_your_task-own" / "adapter")
    text = run_notebook("09_evaluation_beyond_the_task", tmp_path)
    assert text.count("[PASS]") == 11 and "[FAIL]" not in text
    assert "[NOTE] Lab 05: LoRA + embeddings, Bible text: no adapter at outputs/" in text
    assert "[NOTE] Lab 06: your capstone adapter: " in text and "does not load onto" in text
    out = tmp_path / "09_evaluation_beyond_the_task"
    results = json.loads((out / "results.json").read_text())
    assert [r["items"] for r in results["general"]] == [2] * 5  # the harness, on every benchmark
    assert results["agreement"]["largest_loglikelihood_difference"] < 1e-3
    assert [r["fine-tune"] for r in results["forgetting"]] == [
        "LoRA r=8, all linear",
        "soft prompt, left on every input",
        "full fine-tuning, rate x10",
        "Lab 03B: LoRA, JSON extraction (SMOKE run)",
        "Lab 04: QLoRA, JSON extraction",
    ]
    assert results["forgetting"][-1]["adapter"] == "04_qlora_unsloth/adapter_qlora"
    assert results["forgetting"][-1]["task after"] is None
    for row in results["forgetting"]:
        assert row["low"] <= row["change"] <= row["high"]
    assert results["contamination"][-1]["flagged"] == 1  # the planted item is found
    assert [c["benchmark"] for c in results["between_splits"]] == ["piqa", "xcopa_it"]
    real = results["judge_on_real_answers"]
    assert real["pairs"] == 8 and 0 <= real["chrF agrees with the hand label"] <= 1
    for png in ("general_scores.png", "forgetting.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.notebook
def test_lab10_solution_runs_in_smoke_mode_and_its_pruned_student_is_graded(
    tmp_path, embedded_base
):
    text = run_notebook("10_compression", tmp_path)
    # Task 10.2 compares predicted with measured forward times: next to another test worker on
    # 2 cores the SMOKE timings are noise, so only its checks may fail here (full runs keep them)
    failed = re.findall(r"\[FAIL\] (Task [\d.]+)", text)
    assert set(failed) <= {"Task 10.2"}, failed
    assert text.count("[PASS]") + len(failed) == 23
    out = tmp_path / "10_compression"
    results = json.loads((out / "results.json").read_text())
    rows = {r["model"]: r for r in results["summary"]}
    assert list(rows) == [
        "teacher",
        "teacher, 50 % Wanda",
        "teacher, blocks removed",
        "student, labels only",
        "student, distilled",
        "teacher, int8",
        "student distilled, int8",
    ]
    removed = results["removed_blocks"]
    assert len(removed) == 30 // 4 and len(results["block_importance"]) == 30
    whole, cut = rows["teacher"]["parameters"], rows["teacher, blocks removed"]["parameters"]
    assert whole == 134_515_008 and cut < whole
    assert rows["student, distilled"]["parameters"] == cut  # the adapter merged: no extra weights
    assert rows["teacher, 50 % Wanda"]["MB"] == pytest.approx(rows["teacher"]["MB"], rel=1e-3)
    assert rows["teacher, int8"]["MB"] < 0.7 * rows["teacher"]["MB"]
    assert results["int8_choice"] in {r["int8 layers"] for r in results["int8_validation"]}
    assert json.loads((out / "recipe.json").read_text()) == {"remove_blocks": removed}
    result = grade_submission(out, "10_compression", embedded_base)
    assert result["submission_details"]["removed_blocks"] == removed
    assert result["after"]["removed_share"] == pytest.approx(1 - cut / whole)
    assert len(embedded_base["model"].model.layers) == 30  # every block back on the shared base
    for png in ("sparsity_sweep.png", "pareto.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.notebook
def test_lab11_solution_runs_in_smoke_mode_with_dpo_and_grpo(tmp_path):
    text = run_notebook("11_preference_tuning", tmp_path)
    assert text.count("[PASS]") == 12 and "[FAIL]" not in text
    out = tmp_path / "11_preference_tuning"
    results = json.loads((out / "results.json").read_text())
    assert results["start"]["loss"] == pytest.approx(0.6931, abs=1e-4)  # policy = reference
    assert [r["model"] for r in results["comparison"]] == [
        "base (no adapter)",
        "SFT",
        "SFT + DPO (β 0.1)",
        "SFT + GRPO",
    ]
    sft_row, dpo_row, grpo_row = results["comparison"][1:]
    assert sft_row["KL to SFT"] == 0 and dpo_row["KL to SFT"] > 0 and grpo_row["KL to SFT"] >= 0
    assert 0 <= dpo_row["preference accuracy"] <= 1 and results["dpo_log"]
    assert results["grpo_log"] and 0 <= results["grpo_log"][0]["reward"] <= 1
    for png in ("grpo_reward.png", "comparison.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"


# Each learner notebook run unfinished: its tasks fail with a message, the lab goes on with the
# kit's own version where a later cell needs a task's result (a [NOTE] says so), and no cell
# raises (execute_notebook fails on the first error).
UNFINISHED = {
    "02_selective_finetuning": ({"2.1", "2.2", "2.3"}, {"2.1", "2.3"}),
    "03_lora": ({"3.1", "3.2", "3.3"}, {"3.1", "3.2", "3.3"}),
    "03b_lora_peft": ({"3.4", "3.5", "3.6"}, {"3.6"}),
    "03c_lora_knobs": ({"3.7", "3.8"}, {"3.8"}),
    "04_qlora_unsloth": ({"4.1", "4.2", "4.3"}, {"4.2"}),
    "05_continual_pretraining": ({"5.1", "5.2", "5.3"}, {"5.3"}),
    "07_peft_family": ({"7.1", "7.2", "7.3"}, {"7.2"}),
    "08_memory_and_scale": ({"8.1"}, {"8.1"}),
    "09_evaluation_beyond_the_task": ({"9.1", "9.2"}, {"9.2"}),
    "10_compression": ({"10.1", "10.2", "10.3"}, {"10.1", "10.3"}),
    "11_preference_tuning": ({"11.1", "11.2", "11.3"}, {"11.3"}),
}


@pytest.mark.notebook
@pytest.mark.parametrize("stem", sorted(UNFINISHED))
def test_learner_notebook_runs_to_the_end_with_its_tasks_unfinished(tmp_path, stem):
    text = run_notebook(stem, tmp_path, folder="labs")
    failing, carried = UNFINISHED[stem]
    failed = set(re.findall(r"\[FAIL\] Task (\d+\.\d+)", text))
    noted = set(re.findall(r"\[NOTE\] Task (\d+\.\d+) is not finished", text))
    assert failed == failing and noted == carried, (failed, noted)
    assert (tmp_path / stem / "results.json").is_file()  # the lab got to its last cells


def family_methods():
    from utils.train.peft_family import METHODS

    return METHODS


@pytest.mark.notebook
def test_lab04_solution_runs_in_smoke_mode_and_its_submission_validates(tmp_path):
    text = run_notebook("04_qlora_unsloth", tmp_path)
    assert text.count("[PASS]") == 10 and "[FAIL]" not in text
    assert "GGUF export skipped" in text
    out = tmp_path / "04_qlora_unsloth"
    results = json.loads((out / "results.json").read_text())
    lora, qlora = results["comparison"]
    assert lora["trainable"] == qlora["trainable"] == 4_884_480
    assert qlora["weights GB"] < lora["weights GB"] / 2.5  # NF4 blocks, fp32 embeddings
    assert results["int8"][1]["relative error"] < results["int8"][0]["relative error"]
    assert len(results["gpu_estimates"]) == 9 and (out / "merged" / "model.safetensors").is_file()
    for png in ("nf4_error_histogram.png", "lora_vs_qlora.png", "gpu_memory_estimate.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"

    from grading.artifacts import linear_shapes
    from grading.peft_types import check_adapter
    from grading.rubric import load_rubric
    from grading.validate import load_submission
    from utils.runtime.models import load_model
    from utils.runtime.profiles import EMBEDDED_MODEL_ID

    zip_path = out / "submission_04_qlora_unsloth_your-student-id.zip"
    submission = load_submission(
        zip_path.read_bytes(),
        lab="04_qlora_unsloth",
        base_id=EMBEDDED_MODEL_ID,
        base_fingerprint=results["run_info"]["model_fingerprint"],
    )
    base, _ = load_model("cpu")
    config, tensors = check_adapter(
        submission.files, linear_shapes(base), load_rubric("04_qlora_unsloth").checks
    )
    assert config["r"] == 16 and len(tensors) == 2 * 7 * 30


@pytest.mark.notebook
def test_lab05_solution_runs_in_smoke_mode_and_its_submission_is_graded(tmp_path, embedded_base):
    text = run_notebook("05_continual_pretraining", tmp_path)
    assert text.count("[PASS]") == 9 and "[FAIL]" not in text
    out = tmp_path / "05_continual_pretraining"
    results = json.loads((out / "results.json").read_text())
    assert results["corpus"][0]["tokens"] >= 200_000
    assert [r["recipe"] for r in results["same_budget"]] == [
        "LoRA + embeddings",
        "full fine-tuning",
        "LoRA + 25 % replay",
    ]
    main, full = results["runs"][0], results["runs"][1]
    assert [h["step"] for h in main["history"]] == [0, 2, 4] and main["trainable"] < full[
        "trainable"
    ]
    assert all(h["domain"] > 1 and h["general"] > 1 for r in results["runs"] for h in r["history"])
    config = json.loads((out / "adapter_cpt_lora" / "adapter_config.json").read_text())
    assert config["r"] == 64 and (out / "adapter_cpt_lora" / "adapter_model.safetensors").is_file()
    with zipfile.ZipFile(next(out.glob("submission_*.zip"))) as archive:  # the upload-size form
        assert "adapter/saved_rows.safetensors" in archive.namelist()
    for png in ("perplexity_domain.png", "perplexity_general.png", "gain_and_forgetting.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    graded = grade_submission(out, "05_continual_pretraining", embedded_base)
    assert graded["higher_is_better"] is False and graded["submission_details"]["r"] == 64
    assert sorted(graded["submission_details"]["modules_to_save"]) == ["embed_tokens", "lm_head"]
    assert graded["after"]["domain_blocks"] == 24 and graded["after"]["domain_perplexity"] > 1


@pytest.mark.notebook
@pytest.mark.parametrize("example", ["cyrillic_langid", "e2e_nlg"])
def test_lab06_capstone_runs_on_each_worked_example_and_the_grader_reproduces_it(
    tmp_path, embedded_base, example
):
    text = run_notebook("06_your_task", tmp_path, FTKIT_EXAMPLE=example)
    assert text.count("[PASS]") == 6 and "[FAIL]" not in text  # 4 checks + two set-up checks
    out = tmp_path / f"06_your_task-{example}"
    results = json.loads((out / "results.json").read_text())
    assert results["run_info"]["config"]["smoke"] is True and results["example"] == example
    assert results["primary"] == {"cyrillic_langid": "accuracy", "e2e_nlg": "chrf"}[example]
    assert results["interval"]["n"] == 8 and results["plan"]["steps"] == 2
    assert (out / "report.pdf").read_bytes()[:5] == b"%PDF-"
    report = (out / "report.md").read_text()
    assert "## Before and after, test split" in report
    claimed = json.loads((out / "claimed.json").read_text())
    assert claimed["baselines"] == results["baselines"]
    if example == "cyrillic_langid":  # a classification task: the majority and constrained rows
        assert results["baselines"]["majority_label"] in claimed["task"]["labels"]
        assert 0 <= results["baselines"]["constrained_zero_shot"] <= 1
        assert "Baselines on the same test split" in report
    else:
        assert results["baselines"] is None
    assert claimed["general"] == results["general"] and claimed["general"]["n"] == 10
    assert "General ability (10 items" in report
    graded = grade_submission(out, "06_your_task", embedded_base)
    reproduction = graded["submission_details"]["reproduction"]
    assert reproduction["reproduced"], reproduction
    assert reproduction["general"]["measured"]["before"] == claimed["general"]["before"]
    assert graded["parts"]["reproduced result"] == 40 and graded["parts"]["report"] == 20


@pytest.mark.notebook
def test_lab06_learner_notebook_runs_and_reports_unfinished_tasks(tmp_path):
    text = run_notebook("06_your_task", tmp_path, folder="labs", FTKIT_EXAMPLE="e2e_nlg")
    assert text.count("[FAIL] Task 6.1") == 3 and "[FAIL] Task 6.2" in text
    assert (tmp_path / "06_your_task-e2e_nlg" / "report.pdf").is_file()


@pytest.mark.notebook
def test_lab00_solution_validates_counts_cleans_and_draws_a_learning_curve(tmp_path):
    text = run_notebook("00_data", tmp_path)
    assert (
        "[FAIL]" not in text and text.count("[PASS] Task 0.") == 13 and text.count("[PASS]") == 17
    )
    results = json.loads((tmp_path / "00_data" / "results.json").read_text())
    assert results["validator"] == {"lines": 15, "problems": 15}
    assert {r["dataset"] for r in results["tokens"]} == {"sms_spam", "news_events"}
    assert [c["rule"].split()[0] for c in results["cleaning"]] == [
        "exact",
        "near-duplicate",
        "length",
        "language",
    ]
    assert all(c["removed"] >= 1 for c in results["cleaning"])  # each rule finds its planted rows
    assert results["self_instruct"]["samples"] == 6 and results["qa_pairs"]["samples"] == 6
    assert {r["examples"] for r in results["curve"]} == {8, 16}
    assert 0 <= results["after"]["accuracy"] <= 1
    for png in ("token_lengths.png", "learning_curve.png"):
        assert (tmp_path / "00_data" / png).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.notebook
def test_lab00_learner_notebook_runs_and_reports_unfinished_tasks(tmp_path):
    text = run_notebook("00_data", tmp_path, folder="labs")
    assert all(f"[FAIL] Task 0.{n}" in text for n in (1, 2, 3))
    assert (tmp_path / "00_data" / "results.json").exists()
