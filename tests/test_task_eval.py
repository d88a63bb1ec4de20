"""The capstone's evaluation: label matching, metrics against hand-computed values, the bootstrap
interval, the response-only mask of an own-task example, and the report."""

import json

import pytest

from utils.data.own_data import TaskConfig, task_messages, to_examples
from utils.eval.compare import paired_bootstrap
from utils.eval.task_eval import NO_LABEL, evaluate_task, match_label, score_outputs
from utils.eval.text_metrics import UnicodeTokenizer, chrf_scores, corpus_chrf, rouge_l_scores
from utils.lab.capstone_report import Report, write_markdown, write_pdf
from utils.train import sft


def examples(rows, task):
    found, problems = to_examples([(f"t:{i}", r) for i, r in enumerate(rows)], task)
    assert not problems
    return found


def test_match_label_prefers_the_exact_then_the_longest_prefix():
    labels = ("science", "science/technology", "sports")
    assert match_label(" Science/Technology. ", labels) == "science/technology"
    assert match_label("sports, clearly", labels) == "sports"
    assert match_label("science", labels) == "science"
    assert match_label("I think it is travel", labels) == NO_LABEL


def test_classification_scores_by_hand():
    task = TaskConfig(kind="classification", labels=("a", "b"))
    rows = examples([{"text": str(i), "label": lab} for i, lab in enumerate("aabb")], task)
    result = score_outputs(task, ["a", "b", "b", "zzz"], rows)
    assert result["accuracy"] == 0.5 and result["per_example"] == [1.0, 0.0, 1.0, 0.0]
    # F1(a) = 2*1/(2+1) = 2/3; F1(b) = 2*1/(2+2) = 1/2
    assert result["macro_f1"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert result["no_label"] == 0.25 and result["primary"] == "accuracy"


def test_extraction_scores_per_example():
    task = TaskConfig(kind="extraction", fields=("who", "when"))
    rows = examples(
        [
            {"text": "x", "target": {"who": "Ann", "when": None}},
            {"text": "y", "target": {"who": "Bo", "when": "today"}},
        ],
        task,
    )
    outputs = ['{"who": "ann", "when": null}', '{"who": "Bo", "when": "now"}']
    result = score_outputs(task, outputs, rows)
    assert result["per_example"] == [1.0, 0.0] and result["field_accuracy"]["who"] == 1.0


def test_free_text_metrics_by_hand_and_in_any_script():
    # LCS of "the cat sat" in "the cat sat on the mat" is 3 words: P = 1, R = 1/2, F = 2/3
    assert rouge_l_scores(["the cat sat"], ["the cat sat on the mat"]) == [pytest.approx(2 / 3)]
    assert rouge_l_scores(["Кошка сидит"], ["кошка сидит на ковре"]) == [pytest.approx(2 / 3)]
    assert UnicodeTokenizer().tokenize("猫坐着 on") == ["猫", "坐", "着", "on"]
    assert chrf_scores(["same text"], ["same text"]) == [pytest.approx(100.0)]
    assert chrf_scores(["xyz"], ["abc"]) == [0.0]
    assert 0 < corpus_chrf(["the cat", "a dog"], ["the cat sat", "one dog"]) < 100
    task = TaskConfig(kind="generation")
    rows = examples([{"text": "q", "reference": "the cat sat on the mat"}], task)
    result = score_outputs(task, ["the cat sat on the mat"], rows)
    assert result["chrf"] == pytest.approx(100.0) and result["exact_match"] == 1.0


def test_paired_bootstrap():
    before, after = [0, 0, 1, 1, 0, 1, 0, 0], [1, 1, 1, 1, 0, 1, 1, 0]
    result = paired_bootstrap(before, after, seed=1)
    assert result["gain"] == pytest.approx(3 / 8)
    assert result["low"] <= result["gain"] <= result["high"] and result["low"] >= 0
    assert paired_bootstrap(before, after, seed=1) == result
    same = paired_bootstrap([1, 0, 1], [1, 0, 1])
    assert (same["low"], same["high"], same["p_not_better"]) == (0.0, 0.0, 1.0)
    with pytest.raises(ValueError):
        paired_bootstrap([1, 0], [1])


def test_the_loss_sees_only_the_answer_of_an_own_task_example(tokenizer):
    task = TaskConfig(kind="generation", instruction="Describe it.")
    example = examples(
        [{"text": "name[Aromi], food[Chinese]", "reference": "Aromi serves food."}], task
    )[0]
    text = sft.chat_text(tokenizer, task_messages(task, example))
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    labels = sft.response_only_labels(ids, sft.response_template_ids(tokenizer))
    kept = tokenizer.decode([t for t in labels if t != -100])
    assert kept == "Aromi serves food." + tokenizer.eos_token


def test_evaluate_task_on_the_tiny_model(tokenizer, tiny_model):
    task = TaskConfig(kind="classification", labels=("ham", "spam"))
    rows = examples(
        [{"text": "win money now", "label": "spam"}, {"text": "hi", "label": "ham"}], task
    )
    result = evaluate_task(tiny_model, tokenizer, task, rows, max_new_tokens=4, progress=False)
    assert len(result["outputs"]) == 2 and len(result["per_example"]) == 2
    assert result["score"] == result["accuracy"]


def test_report_as_markdown_and_pdf(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.plot([1, 2])
    plt.savefig(tmp_path / "loss.png")
    report = Report("Отчёт — student")
    report.heading("Data")
    report.text("Русский и English.")
    report.table(["metric", "value"], [["a|b", 0.5], ["n", 1204]])
    report.image(tmp_path / "loss.png")
    markdown = write_markdown(report, tmp_path / "r.md").read_text()
    assert "| a\\|b | 0.500 |" in markdown and "| n | 1,204 |" in markdown
    assert "![loss](loss.png)" in markdown
    pdf = write_pdf(report, tmp_path / "r.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-") and len(pdf) > 5000
    assert json.dumps(report.blocks[0]) == '["heading", "Data"]'


def test_label_baselines_count_the_majority_and_score_labels_as_continuations(
    tokenizer, tiny_model
):
    from utils.eval.harness import score_requests
    from utils.eval.task_eval import label_baselines, task_prompts

    task = TaskConfig(kind="classification", labels=("ham", "spam"))
    train = examples(
        [{"text": f"m{i}", "label": "ham" if i < 3 else "spam"} for i in range(4)], task
    )
    test = examples([{"text": "a", "label": "ham"}, {"text": "b", "label": "spam"}], task)
    result = label_baselines(tiny_model, tokenizer, task, train, test)
    assert result["majority_label"] == "ham" and result["majority"] == 0.5
    prompts = task_prompts(tokenizer, task, test)
    lls = score_requests(
        tiny_model,
        tokenizer,
        [{"context": p, "continuations": ["ham", "spam"]} for p in prompts],
        progress=False,
    )
    picks = ["ham" if a >= b else "spam" for a, b in lls]
    assert result["constrained_zero_shot"] == sum(
        p == e["answer"] for p, e in zip(picks, test, strict=True)
    ) / len(test)
