import pytest

from utils.data.prompting import PromptFormat, build_prompt, choose_demos, render_raw

ROWS = [
    {"id": f"r{i}", "text": f"message {i}", "label": "spam" if i % 3 == 0 else "ham"}
    for i in range(30)
]
FMT = PromptFormat(instruction="Classify.", input_prefix="Message: ", output_prefix="Label:")


def test_raw_prompt_layout():
    demos = [ROWS[0], ROWS[1]]
    prefix, suffix = render_raw(FMT, demos, "hello")
    assert (
        prefix
        == "Classify.\n\nMessage: message 0\nLabel: spam\n\nMessage: message 1\nLabel: ham\n\n"
    )
    assert suffix == "Message: hello\nLabel:"
    assert render_raw(PromptFormat(input_prefix="M: ", output_prefix="L:"), [], "x") == (
        "",
        "M: x\nL:",
    )


def test_candidates_follow_label_words_and_order():
    fmt = PromptFormat(output_prefix="Spam:", label_words={"spam": "yes", "ham": "no"})
    prompt = build_prompt(fmt, [ROWS[0]], "q", ("ham", "spam"))
    assert prompt.candidates == (" no", " yes") and prompt.prefix.endswith("Spam: yes\n\n")
    with pytest.raises(ValueError, match="distinct"):
        PromptFormat(label_words={"a": "x", "b": "x"})


def test_chat_prompt_prefix_is_shared_and_exact(tokenizer):
    fmt = PromptFormat(instruction="Classify.", input_prefix="Message: ", chat=True)
    a = build_prompt(fmt, ROWS[:4], "first", ("ham", "spam"), tokenizer)
    b = build_prompt(fmt, ROWS[:4], "second", ("ham", "spam"), tokenizer)
    assert a.prefix == b.prefix and a.prefix.count("<|im_start|>assistant") == 4
    full = tokenizer.apply_chat_template(
        [
            {"role": "system", "content": "Classify."},
            *[
                m
                for r in ROWS[:4]
                for m in (
                    {"role": "user", "content": f"Message: {r['text']}"},
                    {"role": "assistant", "content": r["label"]},
                )
            ],
            {"role": "user", "content": "Message: first"},
        ],
        tokenize=False,
        add_generation_prompt=True,
    )
    assert a.text == full and a.suffix.endswith("<|im_start|>assistant\n")
    assert a.candidates == ("ham", "spam")
    with pytest.raises(ValueError, match="needs the tokenizer"):
        build_prompt(fmt, [], "q", ("ham", "spam"))


def test_demos_are_seeded_balanced_and_from_the_rows():
    demos = choose_demos(ROWS, 4, seed=0, labels=("ham", "spam"))
    assert demos == choose_demos(ROWS, 4, seed=0, labels=("ham", "spam"))
    assert sorted(d["label"] for d in demos) == ["ham", "ham", "spam", "spam"]
    assert choose_demos(ROWS, 4, seed=1, labels=("ham", "spam")) != demos
    assert choose_demos(ROWS, 0, seed=0) == []
    assert len({d["id"] for d in choose_demos(ROWS, 8, seed=2, labels=("ham", "spam"))}) == 8
