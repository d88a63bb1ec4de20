"""General benchmarks through the LM Evaluation Harness, offline: the shipped task files load from
local data, the kit's scorer reproduces the harness item by item, the harness's tokenization is
mirrored exactly, and the contamination check finds planted overlap."""

import json

import pytest

from utils.eval import harness
from utils.runtime.storage import data_dir


@pytest.fixture(scope="module")
def harness_run(tiny_model, tokenizer):
    """The harness on the tiny model: 3 items of every shipped benchmark."""
    configs = [harness.task_config(name) for name in harness.BENCHMARKS]
    return harness.run_harness(tiny_model, tokenizer, configs, limit=3, batch_size=4)


@pytest.mark.parametrize("name", sorted(harness.BENCHMARKS))
def test_each_shipped_benchmark_loads_offline_with_its_source(name):
    folder = data_dir() / "benchmarks" / name
    config = harness.task_config(name)
    assert config["dataset_kwargs"]["data_files"]["test"] == str(folder / "items.jsonl")
    source = (folder / "SOURCE.md").read_text()
    assert all(word in source for word in ("From", "Licence", "Cite", "commit"))
    items = harness.benchmark_requests(config)
    lines = (folder / "items.jsonl").read_text().splitlines()
    assert len(items) == len(lines) >= 50
    ids = [json.loads(line)["id"] for line in lines]
    assert len(set(map(str, ids))) == len(ids)  # each upstream item once
    for item in items:
        assert len(item["continuations"]) == len(item["choices"]) >= 2
        assert 0 <= item["gold"] < len(item["choices"])
        assert all(c.startswith(" ") for c in item["continuations"])  # the target delimiter


def test_the_kit_scorer_reproduces_the_harness_item_by_item(harness_run, tiny_model, tokenizer):
    for name in harness.BENCHMARKS:
        config = harness.task_config(name)
        items = harness.benchmark_requests(config, limit=3)
        ours = harness.score_requests(tiny_model, tokenizer, items, progress=False)
        theirs = harness_run[config["task"]]
        assert [i["id"] for i in items] == [i["id"] for i in theirs["items"]]
        for mine, reference in zip(ours, theirs["items"], strict=True):
            assert mine == pytest.approx(reference["loglikelihoods"], abs=1e-4)
        verdicts = harness.verdicts(items, ours)
        for metric in ("acc", "acc_norm"):
            if metric in theirs:
                assert verdicts["items"][metric] == [i[metric] for i in theirs["items"]], name
                assert verdicts[metric] == pytest.approx(theirs[metric])


def test_encode_pair_is_the_harness_tokenization(tiny_model, tokenizer):
    lm = harness.harness_model(tiny_model, tokenizer, batch_size=1)
    pairs = [
        ("Question: how?\nAnswer:", " Use a spoon."),
        ("The cat sat on the ", "mat."),  # trailing space: moves to the continuation
        ("unbreak", "able"),  # a word across the join
        ("L'oggetto era incartato perché", " era delicato."),
    ]
    for context, continuation in pairs:
        assert harness.encode_pair(tokenizer, context, continuation) == lm._encode_pair(
            context, continuation
        )
    ids = harness.encode_pair(tokenizer, "", " Susan revealed herself.")
    assert ids[0] == [harness.prefix_token_id(tokenizer)]
    assert ids[1] == tokenizer(" Susan revealed herself.", add_special_tokens=False)["input_ids"]


def test_a_template_change_reaches_the_prompts_and_bad_names_are_clear():
    config = harness.task_config("piqa", doc_to_text="Goal: {{goal}}", task="kit_piqa_goal")
    items = harness.benchmark_requests(config, limit=2)
    assert all(i["context"].startswith("Goal: ") for i in items)
    with pytest.raises(ValueError, match="the kit ships"):
        harness.task_config("mmlu")
    with pytest.raises(KeyError, match="no field"):
        harness.task_config("piqa", doc_to_txt="typo")


def test_verdicts_normalise_by_the_choice_text_not_the_delimiter():
    items = [{"continuations": [" ab", " abcdef"], "choices": ["ab", "abcdef"], "gold": 1}]
    result = harness.verdicts(items, [[-2.0, -3.0]])
    assert result["acc"] == 0.0  # -2 > -3: the short one is likelier
    assert result["acc_norm"] == 1.0  # -1.0 per char vs -0.5 per char


def test_contamination_finds_a_planted_item_and_nothing_in_unrelated_text():
    items = harness.benchmark_requests("piqa", limit=5)
    planted = items[3]
    training = [
        "An unrelated text about the weather in spring and the price of bread in town today.",
        f"notes: {planted['context']} {planted['choices'][1]} and more",
    ]
    hits = harness.contamination(harness.ngram_index(training, 8), items, n=8)
    assert [i for i, _ in hits] == [3]
    assert len(hits[0][1]) == 8
    assert harness.contamination(harness.ngram_index(training[:1], 8), items, n=8) == []


def test_judge_pairs_change_one_stated_fact_and_are_shown_in_both_orders(tokenizer):
    from utils.eval import judge

    rows = [
        {"mr": "name[Aromi], area[riverside], food[Chinese]", "ref": "Aromi serves Chinese food."},
        {"mr": "name[Cotto], area[city centre], food[English]", "ref": "Cotto is by the river."},
        {"mr": "name[Clowns], eatType[pub]", "ref": "A pub."},  # no stated value: skipped
    ]
    pairs = judge.factual_swap_pairs(rows, 5, seed=0)
    assert len(pairs) == 2
    for pair in pairs:
        key, change = pair["changed"].split(": ")
        old, new = change.split(" -> ")
        assert old != new and old in pair["good"] and pair["bad"] == pair["good"].replace(old, new)
    items = judge.judge_items(tokenizer, pairs)
    assert [i["gold"] for i in items] == [0, 1, 0, 1]
    assert pairs[0]["good"] in items[0]["context"].split("Description B")[0]
    assert pairs[0]["good"] in items[1]["context"].split("Description B")[1]


def test_judge_reliability_tells_position_bias_from_judgement():
    from utils.eval import judge

    always_a = judge.judge_reliability([[-0.1, -2.0]] * 6)
    assert always_a["accuracy"] == 0.5 and always_a["consistency"] == 0.0
    assert always_a["answers A"] == 1.0 and always_a["right in both orders"] == 0.0
    right = judge.judge_reliability([[-0.1, -2.0], [-2.0, -0.1]] * 3)
    assert right["accuracy"] == right["consistency"] == right["right in both orders"] == 1.0
    assert right["per_pair_right"] == [1, 1, 1]


def test_judge_verdicts_per_pair_and_three_judges_compared():
    from utils.eval import judge

    always_a = judge.judge_reliability([[-0.1, -2.0]] * 6)
    assert always_a["per_pair_verdict"] == ["split"] * 3
    right = judge.judge_reliability([[-0.1, -2.0], [-2.0, -0.1]] * 3)
    assert right["per_pair_verdict"] == ["right"] * 3
    wrong = judge.judge_reliability([[-2.0, -0.1], [-0.1, -2.0]])
    assert wrong["per_pair_verdict"] == ["wrong"]
    compared = judge.compare_judges(
        ["after", "after", "before", "after"],  # the hand labels
        [10.0, 50.0, 40.0, 20.0],  # chrF before
        [30.0, 40.0, 20.0, 60.0],  # chrF after: agrees on pairs 0, 2, 3
        ["right", "split", "wrong", "right"],  # the model judge
    )
    assert compared["after wins, by hand"] == 0.75
    assert compared["after wins, by chrF"] == 0.5
    assert compared["chrF agrees with the hand label"] == 0.75
    assert compared["model judge agrees with the hand label in both orders"] == 0.5
    assert compared["after wins, by the model judge in both orders"] == 0.75  # 0, 2 (wrong), 3
    assert compared["model judge consistent under swap"] == 0.75
    assert compared["model judge agrees with chrF, where consistent"] == pytest.approx(2 / 3)


def test_the_judged_outputs_are_lab06_test_rows_with_a_hand_label():
    import csv

    folder = data_dir() / "worked_examples" / "e2e_nlg"
    with open(folder / "restaurants.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    labelled = [json.loads(line) for line in (folder / "judged_outputs.jsonl").open()]
    assert len(labelled) == 40 and "judged_outputs.jsonl" in (folder / "SOURCE.md").read_text()
    for row in labelled:
        source = rows[int(row["id"].split(":")[1]) - 2]  # the id is the file's line (1: header)
        assert (row["data"], row["reference"]) == (source["mr"], source["ref"])
        assert row["better"] in ("before", "after", "tie") and row["why"]
        assert row["before"] != row["after"]


def test_a_general_set_is_fixed_items_scored_on_each_headline_metric(tiny_model, tokenizer):
    items = harness.general_set(2)
    assert list(items) == list(harness.BENCHMARKS) and all(len(v) == 2 for v in items.values())
    assert items == harness.general_set(2)  # the same items every time
    verdicts = harness.general_verdicts(tiny_model, tokenizer, items)
    for name, requests in items.items():
        lls = harness.score_requests(tiny_model, tokenizer, requests, progress=False)
        metric = harness.BENCHMARKS[name].metric
        assert verdicts[name] == harness.verdicts(requests, lls)["items"][metric]
    assert len(harness.pooled(verdicts)) == 10
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="per_benchmark"):
            harness.general_set(bad)


def test_the_between_splits_record_names_its_source_and_counts():
    record = json.loads((data_dir() / "benchmarks" / "train_test_overlap.json").read_text())
    assert record["n_words"] == 8
    for check in record["checks"]:
        assert check["benchmark"] in harness.BENCHMARKS and "commit" in check["against"]
        assert 0 <= check["flagged"] <= check["checkable"] <= check["items"]
        assert len(check["examples"]) == min(5, check["flagged"])


def test_the_full_forward_scorer_matches_the_fast_one_and_sees_a_soft_prompt(tiny_model, tokenizer):
    from peft import PromptTuningConfig, get_peft_model

    items = harness.benchmark_requests("piqa", 2) + harness.benchmark_requests("blimp", 2)
    fast = harness.score_requests(tiny_model, tokenizer, items, progress=False)
    full = harness.score_requests_full(tiny_model, tokenizer, items, progress=False)
    for a, b in zip(fast, full, strict=True):
        assert a == pytest.approx(b, abs=1e-4)
    import copy

    prompted = get_peft_model(
        copy.deepcopy(tiny_model), PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=4)
    )
    with_prompt = harness.score_requests_full(prompted, tokenizer, items, progress=False)
    assert with_prompt[0] != pytest.approx(full[0], abs=1e-4)  # the prompt changed the scores
    one_by_one = harness.score_requests_full(
        prompted, tokenizer, items, progress=False, rows_per_pass=1
    )
    for a, b in zip(with_prompt, one_by_one, strict=True):  # padded rows read the same positions
        assert a == pytest.approx(b, abs=1e-4)
    bare = harness.score_requests(prompted, tokenizer, items, progress=False)
    assert bare[0] == pytest.approx(fast[0], abs=1e-4)  # the fast path never sees it


def test_each_saving_of_the_fast_scorer_gives_the_full_forward_numbers(tiny_model, tokenizer):
    """Every path of ``score_requests`` against one whole sequence per choice: a preamble all
    items share (run once), items with a long context of their own (run once per item), short
    items batched across items, a choice that changes the context's tokens, one choice alone."""
    preamble = "Answer each question with the fact a careful reader would give. " * 3
    long_own = "A long story about a river, a mill and the miller's three sons. " * 5
    items = [
        {"context": preamble + "Q: What is ice?\nA:", "continuations": [" frozen water", " fire"]},
        {"context": preamble + long_own + "\nQ: Who?\nA:", "continuations": [" the sons", " no"]},
        {"context": preamble + "Q: Sky?\nA:", "continuations": [" blue"]},
        {"context": preamble + "Q: A word\nA: un", "continuations": ["believable", " sure", "x"]},
    ]
    shared = harness.common_prefix(
        [harness.encode_pair(tokenizer, it["context"], " x")[0] for it in items]
    )
    assert len(shared) >= harness.SHARED_PREFIX_MIN  # the preamble path is taken
    own = harness.encode_pair(tokenizer, items[1]["context"], " x")[0]
    assert len(own) - 1 - len(shared) >= harness.OWN_CONTEXT_MIN  # and the long-context one
    expected = harness.score_requests_full(  # one sequence per pass: the plain computation
        tiny_model, tokenizer, items, progress=False, rows_per_pass=1
    )
    for rows_per_pass in (1, 3, 16):
        for scorer in (harness.score_requests, harness.score_requests_full):
            scores = scorer(
                tiny_model, tokenizer, items, progress=False, rows_per_pass=rows_per_pass
            )
            for a, b in zip(scores, expected, strict=True):
                assert a == pytest.approx(b, abs=1e-4)
    no_preamble = [{**it, "context": it["context"][len(preamble) :]} for it in items]
    for a, b in zip(
        harness.score_requests(tiny_model, tokenizer, no_preamble, progress=False),
        harness.score_requests_full(tiny_model, tokenizer, no_preamble, progress=False),
        strict=True,
    ):
        assert a == pytest.approx(b, abs=1e-4)
