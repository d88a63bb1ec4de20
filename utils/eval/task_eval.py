"""One evaluation for the capstone's three task types, used before and after training alike.

Every answer is generated greedily (same prompt, same token budget) and scored per example, so
``utils.eval.compare`` can pair before with after:

- classification: the answer names a label (``match_label``); accuracy, macro-F1, confusion;
  per example: right (1) or wrong (0).
- extraction: JSON validity, exact match of all fields, per-field accuracy; per example: exact.
- generation: chrF (sacrebleu) per example and for the split, ROUGE-L, exact match; per example:
  its chrF.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from utils.data.chat_format import chat_text
from utils.data.own_data import TaskConfig, task_messages
from utils.eval.harness import score_requests
from utils.eval.metrics import (
    classification_metrics,
    field_scores,
    generate_batch,
    normalise_answer,
)
from utils.eval.text_metrics import chrf_scores, corpus_chrf, exact_matches, rouge_l_scores

NO_LABEL = "(no label)"
PRIMARY_METRIC = {"classification": "accuracy", "extraction": "exact_match", "generation": "chrf"}


def task_prompts(tokenizer, task: TaskConfig, examples: Sequence[dict]) -> list[str]:
    """Generation prompts: the chat template with the assistant header open."""
    return [chat_text(tokenizer, task_messages(task, e, with_answer=False)) for e in examples]


def match_label(output: str, labels: Sequence[str]) -> str:
    """The label an answer names: equal after normalising, else the longest label it starts with;
    ``NO_LABEL`` when it names none."""
    said = normalise_answer(output)
    by_length = sorted(labels, key=len, reverse=True)
    for label in by_length:
        if said == normalise_answer(label):
            return label
    for label in by_length:
        if said.startswith(normalise_answer(label)):
            return label
    return NO_LABEL


def answer_budget(tokenizer, examples: Sequence[dict], margin: int = 8, cap: int = 256) -> int:
    """New tokens to allow: the longest answer in ``examples`` plus a margin, at most ``cap``."""
    longest = max(
        len(tokenizer(e["answer"], add_special_tokens=False)["input_ids"]) for e in examples
    )
    return min(cap, longest + margin)


def score_outputs(task: TaskConfig, outputs: Sequence[str], examples: Sequence[dict]) -> dict:
    """Metrics of ``outputs`` against the examples' answers, with ``per_example`` scores and the
    task's ``primary`` metric name and ``score``."""
    answers = [e["answer"] for e in examples]
    if task.kind == "classification":
        predictions = [match_label(o, task.labels) for o in outputs]
        result = classification_metrics(predictions, answers, task.labels)
        result |= {
            "predictions": predictions,
            "no_label": predictions.count(NO_LABEL) / len(answers),
        }
        per_example = [float(p == a) for p, a in zip(predictions, answers, strict=True)]
    elif task.kind == "extraction":
        result = field_scores(outputs, [json.loads(a) for a in answers], task.fields)
        per_example = [float(c) for c in result.pop("correct")]
    else:
        per_example = chrf_scores(outputs, answers)
        rouge = rouge_l_scores(outputs, answers)
        result = {
            "chrf": sum(per_example) / len(per_example),
            "corpus_chrf": corpus_chrf(outputs, answers),
            "rouge_l": sum(rouge) / len(rouge),
            "exact_match": sum(exact_matches(outputs, answers)) / len(answers),
            "n": len(answers),
        }
    primary = PRIMARY_METRIC[task.kind]
    return {**result, "primary": primary, "score": result[primary], "per_example": per_example}


def evaluate_task(
    model,
    tokenizer,
    task: TaskConfig,
    examples: Sequence[dict],
    max_new_tokens: int,
    batch_size: int = 16,
    progress: bool = True,
) -> dict:
    """Generate an answer for every example and score it (``score_outputs``); ``outputs`` are kept.
    (The reference answers serve as ``generate_batch``'s drafts: faster on a CPU, same outputs.)"""
    outputs = generate_batch(
        model,
        tokenizer,
        task_prompts(tokenizer, task, examples),
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        progress=progress,
        drafts=[e["answer"] for e in examples],
    )
    return {**score_outputs(task, outputs, examples), "outputs": outputs}


def label_baselines(
    model, tokenizer, task: TaskConfig, train: Sequence[dict], test: Sequence[dict]
) -> dict:
    """What a classification task's free-generation "before" leaves out: the training split's
    majority label (no model at all), and the base model constrained to the labels — the label
    whose tokens are likeliest as the assistant's answer (summed log-probabilities, as the LM
    Evaluation Harness scores multiple choice), so the model is scored on what it knows, not on
    whether it answers in the expected format."""
    labels = list(task.labels)
    majority = max(labels, key=[e["answer"] for e in train].count)
    items = [
        {"context": prompt, "continuations": labels, "choices": labels, "gold": -1}
        for prompt in task_prompts(tokenizer, task, test)
    ]
    likeliest = [
        labels[max(range(len(labels)), key=lls.__getitem__)]
        for lls in score_requests(model, tokenizer, items, progress=False)
    ]
    right = [float(p == e["answer"]) for p, e in zip(likeliest, test, strict=True)]
    return {
        "majority_label": majority,
        "majority": sum(e["answer"] == majority for e in test) / len(test),
        "constrained_zero_shot": sum(right) / len(right),
    }
