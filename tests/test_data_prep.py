"""Lab 00's helpers: chat-format conversions and the validator (every error kind, against the
shipped file of broken lines), token statistics against hand counts, the hosted-cost arithmetic,
near-duplicate and language filters, leakage, and reproducible sampling."""

import json

import pytest
import torch

from utils.data import chat_format, cleaning, jsonl, token_stats
from utils.eval.decoding import sample_completions
from utils.runtime.models import build_tiny_model
from utils.runtime.storage import REPO_ROOT
from utils.train import sft

BROKEN = REPO_ROOT / "data" / "chat_format" / "broken.jsonl"


def test_the_validator_reports_every_reason_of_every_broken_line(tokenizer):
    found: dict[str, list[str]] = {}
    for problem in chat_format.validate_chat_file(BROKEN, tokenizer, max_tokens=128):
        found.setdefault(str(problem.line), []).append(problem.reason)
    assert found == json.loads(BROKEN.with_suffix(".expected.json").read_text())
    assert "1" not in found and len(found) == 14  # line 1 is the one valid line


@pytest.mark.parametrize(
    "roles, problems",
    [
        (["system", "user", "assistant"], []),
        (["user", "assistant", "user"], []),
        (["user", "system", "assistant"], ["a system message appears after the first message"]),
        (["assistant", "user"], ["roles must alternate user, assistant, ... starting with user"]),
        (["user"], ["no assistant message: nothing to learn from"]),
        (
            [],
            [
                "roles must alternate user, assistant, ... starting with user",
                "no assistant message: nothing to learn from",
            ][1:],
        ),
    ],
)
def test_role_order_rules(roles, problems):
    assert chat_format.role_order_problems(roles) == problems


def test_lab_00s_validator_and_the_capstone_loader_apply_one_rule_set():
    from utils.data.own_data import TaskConfig, to_examples

    lines = [line for line in BROKEN.read_text(encoding="utf-8").splitlines() if line.strip()]
    ends_on_user = [("user", "a"), ("assistant", "b"), ("user", "c")]
    lines.append(json.dumps({"messages": [{"role": r, "content": c} for r, c in ends_on_user]}))
    refused = {p.line for p in chat_format.validate_chat_lines(lines)}
    records = jsonl.jsonl_records(lines, "f")
    _, problems = to_examples(records, TaskConfig(kind="generation"))
    refused_by_capstone = {int(p.split(":")[1]) for p in problems}
    assert refused_by_capstone == refused  # the token limit aside (no tokenizer here)
    assert len(lines) in refused  # a line that ends on a user turn, after an answer
    last = next(p for p in problems if p.startswith(f"f:{len(lines)}:"))
    assert "must end on an answer" in last


def test_formats_convert_both_ways_and_survive_jsonl(tmp_path):
    row = {"text": "free entry now", "label": "spam"}
    line = chat_format.row_to_messages(row, "Spam or ham?")
    same_as_training = chat_format.row_to_messages(row, sft.SPAM_INSTRUCTION)["messages"]
    assert same_as_training == sft.spam_messages(row)  # Lab 00 measures what Lab 03B trains on
    assert [m["role"] for m in line["messages"]] == ["system", "user", "assistant"]
    alpaca = chat_format.messages_to_alpaca(line)
    assert alpaca == {"instruction": "Spam or ham?", "input": "free entry now", "output": "spam"}
    assert chat_format.alpaca_to_messages(alpaca) == line  # the round trip is exact
    no_input = {"instruction": "Say hi.", "input": "", "output": "hi"}
    assert chat_format.messages_to_alpaca(chat_format.alpaca_to_messages(no_input)) == no_input
    path = jsonl.write_jsonl(tmp_path / "x.jsonl", [line, {"messages": "é"}])
    assert jsonl.read_jsonl(path)[1] == {"messages": "é"}
    path.write_text('{"a": 1}\n{oops\n')
    with pytest.raises(ValueError, match="x.jsonl:2"):
        jsonl.read_jsonl(path)


def test_token_lengths_split_prompt_and_answer_as_counted_by_hand(tokenizer):
    messages = [{"role": "user", "content": "hello there"}, {"role": "assistant", "content": "hi"}]
    (row,) = token_stats.example_lengths(tokenizer, [{"messages": messages}])
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    assert row["total"] == len(tokenizer(full, add_special_tokens=False)["input_ids"])
    answer_tokens = len(tokenizer("hi", add_special_tokens=False)["input_ids"])
    assert answer_tokens < row["answer"] <= answer_tokens + 3  # the answer plus its end marker(s)


def test_summary_percentiles_and_truncation():
    values = list(range(1, 101))
    summary = token_stats.summarize(values)
    assert summary["p5"] == pytest.approx(5.95) and summary["p95"] == pytest.approx(95.05)
    assert summary["median"] == 50.5 and summary["min"] == 1 and summary["max"] == 100
    lengths = [
        {"total": 10, "prompt": 8, "answer": 2},
        {"total": 30, "prompt": 20, "answer": 10},
        {"total": 40, "prompt": 35, "answer": 5},
    ]
    report = token_stats.truncation_report(lengths, 25)
    assert report == {
        "limit": 25,
        "over the limit": 2,
        "answer cut": 1,
        "answer lost entirely": 1,
        "tokens cut": 20,
    }


@pytest.mark.parametrize(
    "examples, epochs", [(3_000, 3), (20, 5), (10, 10), (2, 25), (20_000, 1), (10_000, 2)]
)
def test_the_epoch_heuristic(examples, epochs):
    assert token_stats.default_epochs(examples) == epochs


def test_the_worked_cost_example_and_the_per_example_limit():
    lengths = [700] * 1_000 + [735] * 2_000  # 2.17 M tokens in 3,000 examples
    epochs = token_stats.default_epochs(len(lengths))
    billed = token_stats.billed_tokens(lengths, epochs)
    assert billed == 6_510_000 and billed / 1000 * 0.008 == pytest.approx(52.08)
    small = [40_000] + [500] * 19  # one example past the limit, in a file of 20
    assert token_stats.default_epochs(len(small)) == 5
    assert token_stats.billed_tokens(small, 5) == (16_385 + 19 * 500) * 5


def test_near_duplicates_are_found_and_the_first_copy_kept():
    texts = [
        "the meeting is moved to friday at noon in room four",
        "the meeting is moved to friday at noon in room four please",  # near copy of 0
        "completely different words about a cat on a warm roof",
        "the meeting is moved to monday at noon in room nine",  # shares some 3-grams only
    ]
    assert cleaning.near_duplicate_of(texts, threshold=0.7) == {1: 0}
    assert cleaning.jaccard(texts[0], texts[1]) == pytest.approx(9 / 10)  # 9 shared of 10


def test_cleaning_counts_each_rule_and_they_add_up():
    base = [
        {"text": f"message number {i} about the {w} plan today"} for i, w in enumerate("abcdef")
    ]
    rows = [
        *base,
        dict(base[0]),  # exact copy
        {"text": base[1]["text"] + " again"},  # near copy
        {"text": "ok"},  # too short
        {"text": "Kannst du mir bitte morgen das Buch mitbringen, danke"},  # German
    ]
    kept, counts = cleaning.clean(rows, min_words=3, max_words=40)
    assert [c["removed"] for c in counts] == [1, 1, 1, 1]
    assert kept == base and counts[0]["before"] == len(rows)
    assert sum(c["removed"] for c in counts) == len(rows) - len(kept)


def test_leakage_finds_exact_and_near_copies_only():
    train = ["win a free cruise now reply yes to claim", "see you at the cinema at eight"]
    test = ["WIN a free cruise now, reply YES to claim!", "lunch tomorrow?", train[1] + " ok"]
    assert cleaning.leaked(train, test) == [0, 2]


def test_sampling_is_reproducible_with_a_seed(tokenizer):
    model = build_tiny_model(tokenizer).eval()
    first = sample_completions(model, tokenizer, "Task: say hi", 3, 8, seed=1)
    again = sample_completions(model, tokenizer, "Task: say hi", 3, 8, seed=1)
    assert first == again and len(first) == 3
    assert sample_completions(model, tokenizer, "Task: say hi", 3, 8, seed=2) != first


def test_the_learning_curve_trains_each_size_and_seed_on_the_tiny_model(tokenizer):
    from utils.train.learning_curve import epochs_for, learning_curve, lora_classifier

    torch.manual_seed(0)
    ids = [torch.randint(5, 200, (int(n),)).tolist() for n in torch.randint(3, 9, (24,))]
    labels = [i % 2 for i in range(24)]

    def make(seed):
        return lora_classifier(build_tiny_model(tokenizer), 2, seed, rank=2, alpha=4)

    rows, kept = learning_curve(make, (ids, labels), (ids[:8], labels[:8]), [4, None], [0, 1], 8, 0)
    assert [(r["examples"], r["seed"], r["epochs"]) for r in rows] == [
        (4, 0, 2),
        (4, 1, 2),
        (24, 0, 1),
        (24, 1, 1),
    ]
    assert all(0 <= r["validation accuracy"] <= 1 for r in rows)
    trainable = {n for n, p in kept.named_parameters() if p.requires_grad}
    assert trainable and all("lora" in n or "lm_head" in n for n in trainable)
    assert epochs_for(25, 200) == 8 and epochs_for(700, 200) == 1
