from utils.data.prompting import PromptFormat
from utils.eval.icl import calibrate_scores, predict, run_icl

TRAIN = [
    {"id": f"t{i}", "text": f"message number {i}", "label": ("ham", "spam")[i % 2]}
    for i in range(20)
]
TEST = [{"id": f"q{i}", "text": f"query {i}", "label": ("ham", "spam")[i % 2]} for i in range(6)]


def test_calibration_subtracts_the_null_row():
    assert calibrate_scores([[-1.0, -3.0], [-2.0, -2.5]], [-0.5, -2.0]) == [
        [-0.5, -1.0],
        [-1.5, -0.5],
    ]
    assert predict([[-0.5, -1.0], [-1.5, -0.5]], ("ham", "spam")) == ["ham", "spam"]


def test_run_icl_reports_raw_and_calibrated_accuracy(tiny_model, tokenizer):
    fmt = PromptFormat(instruction="Classify.", input_prefix="Message: ", output_prefix="Label:")
    result = run_icl(tiny_model, tokenizer, fmt, TRAIN, TEST, ("ham", "spam"), k=4, seed=0)
    assert len(result["demo_ids"]) == 4 and len(result["scores"]) == len(TEST)
    assert 0 <= result["accuracy"] <= 1 and 0 <= result["calibrated_accuracy"] <= 1
    again = run_icl(tiny_model, tokenizer, fmt, TRAIN, TEST, ("ham", "spam"), k=4, seed=0)
    assert again["scores"] == result["scores"]
    reordered = run_icl(
        tiny_model, tokenizer, fmt, TRAIN, TEST, ("ham", "spam"), k=4, seed=0, order_seed=5
    )
    assert sorted(reordered["demo_ids"]) == sorted(result["demo_ids"])
