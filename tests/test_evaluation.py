import copy
import itertools
import math

import pytest
import torch

from utils.data.prompting import Prompt
from utils.eval.decoding import shared_prefix
from utils.eval.metrics import (
    classification_metrics,
    evaluate_classification,
    evaluate_extraction,
    field_scores,
    generate_batch,
    hf_generate_batch,
    majority_share,
    parse_json_object,
    perplexity,
    score_candidates,
    teacher_forced_match,
)
from utils.eval.text_metrics import exact_matches


def naive_logprob(model, tokenizer, prompt: Prompt, candidate: str) -> float:
    context = (
        tokenizer(prompt.prefix, add_special_tokens=False)["input_ids"] if prompt.prefix else []
    ) + tokenizer(prompt.suffix, add_special_tokens=False)["input_ids"]
    target = tokenizer(candidate, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logprobs = torch.log_softmax(model(torch.tensor([context + target])).logits[0], dim=-1)
    return sum(logprobs[len(context) - 1 + i, t].item() for i, t in enumerate(target))


PROMPTS = [
    Prompt("Shared demos here.\n\n", "Message: short\nLabel:", (" spam", " ham")),
    Prompt(
        "Shared demos here.\n\n",
        "Message: a much longer message with many more words\nLabel:",
        (" spam", " ham"),
    ),
    Prompt("", "Message: no prefix\nLabel:", (" spam", " ham")),
    Prompt("Other prefix\n", "Q: x\nA:", (" legitimate message", " junk advertising", " spam")),
]


def test_scores_equal_a_naive_full_forward(tiny_model, tokenizer):
    got = score_candidates(tiny_model, tokenizer, PROMPTS, batch_size=3, progress=False)
    for prompt, row in zip(PROMPTS, got):
        for cand, value in zip(prompt.candidates, row):
            assert value == pytest.approx(
                naive_logprob(tiny_model, tokenizer, prompt, cand), abs=1e-4
            )


def test_scores_do_not_depend_on_batch_size_and_are_deterministic(tiny_model, tokenizer):
    a = score_candidates(tiny_model, tokenizer, PROMPTS, batch_size=1, progress=False)
    b = score_candidates(tiny_model, tokenizer, PROMPTS, batch_size=16, progress=False)
    c = score_candidates(tiny_model, tokenizer, PROMPTS, batch_size=16, progress=False)
    assert b == c
    for ra, rb in zip(a, b):
        assert ra == pytest.approx(rb, abs=1e-4)


def test_empty_suffix_is_rejected(tiny_model, tokenizer):
    with pytest.raises(ValueError, match="empty suffix"):
        score_candidates(tiny_model, tokenizer, [Prompt("x", "", (" a", " b"))], progress=False)


def test_classification_metrics():
    m = classification_metrics(["a", "a", "b", "a"], ["a", "b", "b", "a"], ["a", "b"])
    assert m["accuracy"] == 0.75 and m["recall"] == {"a": 1.0, "b": 0.5}
    assert m["confusion"] == {"a->a": 2, "b->a": 1, "b->b": 1}
    assert m["macro_f1"] == pytest.approx((0.8 + 2 / 3) / 2)
    with pytest.raises(ValueError):
        classification_metrics([], [], ["a"])


def test_evaluate_classification_picks_the_likelier_label(tiny_model, tokenizer):
    rows = [{"id": str(i), "text": p.suffix, "label": "spam"} for i, p in enumerate(PROMPTS[:3])]
    result = evaluate_classification(
        tiny_model, tokenizer, rows, PROMPTS[:3], ("spam", "ham"), progress=False
    )
    scores = score_candidates(tiny_model, tokenizer, PROMPTS[:3], progress=False)
    expected = ["spam" if s[0] > s[1] else "ham" for s in scores]
    assert list(result["predictions"].values()) == expected
    assert result["accuracy"] == expected.count("spam") / 3


def model_that_stops(tiny_model, tokenizer, prompts):
    """A copy of the tiny model whose LM-head rows for eos and a token it generates only after its
    first step are swapped: it now stops there, so some answers end at eos part-way through."""
    model = copy.deepcopy(tiny_model)
    runs = [greedy_ids(model, tokenizer, p, 12) for p in prompts]
    later = [t for run in runs for t in run[1:] if t not in {r[0] for r in runs}]
    assert later, "the tiny model should generate some token only after its first step"
    weight = model.get_output_embeddings().weight
    with torch.no_grad():
        weight[[later[0], tokenizer.eos_token_id]] = weight[
            [tokenizer.eos_token_id, later[0]]
        ].clone()
    return model


def drafts_to_try(outputs: list[str]) -> dict[str, list[str]]:
    """Right drafts (with and without the leading space the tokens had), drafts that part from the
    output half-way or at once, longer ones and unrelated ones."""
    return {
        "right": outputs,
        "spaced": [" " + o for o in outputs],
        "empty": [""] * len(outputs),
        "half": [" " + o[: len(o) // 2] + " zebra" for o in outputs],
        "half unspaced": [o[: len(o) // 2] + " zebra" for o in outputs],
        "early miss": ["zebra " + o for o in outputs],
        "longer": [o + " and more words" for o in outputs],
        "shuffled": outputs[1:] + outputs[:1],
    }


def one_by_one(model, tokenizer, prompts: list[str], max_new_tokens: int) -> list[str]:
    """Greedy answers from ``model.generate``, one prompt at a time (no padding, no batching)."""
    return [
        tokenizer.decode(
            greedy_ids(model, tokenizer, p, max_new_tokens), skip_special_tokens=True
        ).strip()
        for p in prompts
    ]


SHARED = "<|im_start|>system\nAnswer briefly.<|im_end|>\n<|im_start|>user\n"
CHAT_PROMPTS = [
    SHARED + "Who?<|im_end|>\n",
    SHARED + "Where is the cat today?<|im_end|>\n",
    SHARED + "Hi<|im_end|>\n",
    SHARED + "One two three four five<|im_end|>\n",
]  # one shared prefix: its cache is reused
DECODE_PROMPTS = [
    "Hello",
    "The capital of France is a city called",
    "1 2 3",
    "A B",
    "One two three four five",
    *CHAT_PROMPTS,
]


@pytest.mark.parametrize("max_new_tokens", [1, 3, 12])
def test_decoding_with_and_without_drafts_equals_generate(tiny_model, tokenizer, max_new_tokens):
    stopping = model_that_stops(tiny_model, tokenizer, DECODE_PROMPTS)
    for model, prompts in itertools.product((tiny_model, stopping), (DECODE_PROMPTS, CHAT_PROMPTS)):
        expected = one_by_one(model, tokenizer, prompts, max_new_tokens)
        plain = generate_batch(
            model, tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=3, progress=False
        )
        assert plain == expected
        assert (
            hf_generate_batch(
                model, tokenizer, prompts, max_new_tokens, batch_size=3, progress=False
            )
            == expected
        )
        for name, drafts in drafts_to_try(expected).items():
            drafted = generate_batch(
                model,
                tokenizer,
                prompts,
                max_new_tokens=max_new_tokens,
                batch_size=3,
                progress=False,
                drafts=drafts,
            )
            assert drafted == expected, name
    stops = [
        tokenizer.eos_token_id in greedy_ids(stopping, tokenizer, p, 12)[1:] for p in DECODE_PROMPTS
    ]
    assert any(stops), "the stopping model should end some answer at eos after its first token"


def test_shared_prefix_leaves_each_row_a_token():
    assert shared_prefix([[1, 2, 3, 4], [1, 2, 3, 5, 6]]) == [1, 2, 3]
    assert shared_prefix([[1, 2], [1, 2, 3]]) == [1]
    assert shared_prefix([[7], [7]]) == [] and shared_prefix([]) == []


def count_forward_passes(model, run) -> int:
    calls = []
    handle = model.get_decoder().register_forward_hook(lambda *args: calls.append(1))
    try:
        run()
    finally:
        handle.remove()
    return len(calls)


def test_a_followed_draft_saves_forward_passes(tiny_model, tokenizer):
    prompt = "The capital of France is a city called"
    answer = greedy_answer(tiny_model, tokenizer, prompt)
    n = len(tokenizer(answer, add_special_tokens=False)["input_ids"])
    assert n > 2, "need a multi-token greedy answer"

    def run(drafts):
        return lambda: generate_batch(
            tiny_model, tokenizer, [prompt], max_new_tokens=n, progress=False, drafts=drafts
        )

    assert (
        count_forward_passes(tiny_model, run(None)) == 1 + n
    )  # the shared prefix, then a pass per token
    assert (
        count_forward_passes(tiny_model, run([answer])) == 1 + 1
    )  # the whole answer checked in one pass
    assert count_forward_passes(tiny_model, run(["zebra"])) == 1 + n  # a wrong draft saves nothing
    with pytest.raises(ValueError, match="1 prompts but 2 drafts"):
        generate_batch(tiny_model, tokenizer, [prompt], drafts=["x", "y"], progress=False)


def test_generation_restores_padding_side_and_needs_distinct_pad(tiny_model, tokenizer):
    side = tokenizer.padding_side
    hf_generate_batch(tiny_model, tokenizer, ["a"], max_new_tokens=1, progress=False)
    assert tokenizer.padding_side == side
    pad = tokenizer.pad_token
    tokenizer.pad_token = tokenizer.eos_token
    try:
        with pytest.raises(ValueError, match="pad token distinct from eos"):
            generate_batch(tiny_model, tokenizer, ["a"], progress=False)
    finally:
        tokenizer.pad_token = pad


def test_perplexity_matches_the_model_loss(tiny_model, tokenizer):
    texts = [
        "The cat sat on the mat.",
        "A much longer sentence, with commas, to make the padding matter here.",
    ]
    result = perplexity(tiny_model, tokenizer, texts, batch_size=2, progress=False)
    nll, count = 0.0, 0
    for text in texts:
        ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            loss = tiny_model(ids, labels=ids).loss.item()
        nll += loss * (ids.shape[1] - 1)
        count += ids.shape[1] - 1
    assert result["tokens"] == count
    assert result["perplexity"] == pytest.approx(math.exp(nll / count), rel=1e-4)


def test_text_and_structured_scores():
    assert exact_matches([" a ", "b"], ["a", "c"]) == [True, False]
    assert majority_share(["spam", "ham", "ham"]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="no labels"):
        majority_share([])
    assert parse_json_object('Sure: {"who": "Ann", "when": null} done') == {
        "who": "Ann",
        "when": None,
    }
    assert parse_json_object("no json") is None and parse_json_object("[1, 2]") is None
    refs = [{"who": "Ann", "where": "Oslo"}, {"who": "Bo", "where": None}]
    scores = field_scores(
        ['{"who": "Ann", "where": "Oslo"}', '{"who": "Bo", "where": "Rome"}'],
        refs,
        ["who", "where"],
    )
    assert scores["json_valid"] == 1.0 and scores["exact_match"] == 0.5
    assert scores["field_accuracy"] == {"who": 1.0, "where": 0.5}


def test_field_scores_normalise_case_whitespace_and_outer_punctuation():
    refs = [{"who": "the coast guard", "when": None}, {"who": "Ann", "when": "Monday"}]
    preds = ['{"who": "The  coast guard.", "when": null}', "not json"]
    scores = field_scores(preds, refs, ["who", "when"])
    assert scores["exact_match"] == 0.5 and scores["correct"] == [True, False]
    assert scores["json_valid"] == 0.5
    assert (
        field_scores(['{"who": "Ann", "when": "null"}'], refs[1:], ["who", "when"])["exact_match"]
        == 0.0
    )
    with pytest.raises(ValueError):
        field_scores([], [], ["who"])


def greedy_ids(model, tokenizer, prompt: str, n: int) -> list[int]:
    """The first ``n`` greedy tokens after ``prompt`` (one prompt, no padding)."""
    ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
    return model.generate(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=n,
        do_sample=False,
        pad_token_id=tokenizer.pad_token_id,
    )[0, ids.shape[1] :].tolist()


def greedy_answer(model, tokenizer, prompt: str, n: int = 6) -> str | None:
    """The longest prefix of the greedy continuation that survives decode -> encode unchanged."""
    out = greedy_ids(model, tokenizer, prompt, n)
    for k in range(len(out), 0, -1):
        text = tokenizer.decode(out[:k])
        if (
            tokenizer(text, add_special_tokens=False)["input_ids"] == out[:k]
            and tokenizer.eos_token_id not in out[:k]
        ):
            return text
    return None


def test_teacher_forced_match_agrees_with_greedy_generation(tiny_model, tokenizer):
    candidates = [
        "<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n",
        "The cat sat on",
        "One two three",
        "Hello world",
        "A B C D",
    ]
    pairs = [(p, a) for p in candidates if (a := greedy_answer(tiny_model, tokenizer, p))]
    assert pairs, "need at least one prompt whose greedy continuation re-tokenises to itself"
    prompts, answers = [p for p, _ in pairs], [a for _, a in pairs]
    hit = teacher_forced_match(
        tiny_model, tokenizer, prompts, answers, append_eos=False, progress=False
    )
    assert hit["correct"] == [True] * len(pairs) and hit["token_accuracy"] == 1.0
    wrong = [
        a + tokenizer.decode([tokenizer(" zebra", add_special_tokens=False)["input_ids"][0]])
        for a in answers
    ]
    miss = teacher_forced_match(
        tiny_model, tokenizer, prompts, wrong, append_eos=False, progress=False
    )
    assert miss["answer_loss"] > hit["answer_loss"]
    batched = teacher_forced_match(
        tiny_model, tokenizer, candidates, ["x y"] * 5, batch_size=2, progress=False
    )
    single = teacher_forced_match(
        tiny_model, tokenizer, candidates, ["x y"] * 5, batch_size=1, progress=False
    )
    assert batched["correct"] == single["correct"]
    assert batched["answer_loss"] == pytest.approx(single["answer_loss"], rel=1e-5)


def test_extraction_drafts_tolerate_a_reference_without_a_field(tiny_model, tokenizer):
    prompts = ["Who did it?", "Where?"]
    result = evaluate_extraction(
        tiny_model,
        tokenizer,
        prompts,
        [{"who": "x"}, {"who": None, "where": "y"}],
        ("who", "where"),
        max_new_tokens=4,
        progress=False,
    )
    assert result["outputs"] == generate_batch(
        tiny_model, tokenizer, prompts, max_new_tokens=4, progress=False
    )
