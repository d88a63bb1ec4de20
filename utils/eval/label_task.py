"""The label task of Labs 07–09 and the grader: an SMS message as a prompt ending at ``Label:``,
the label word's first token as the answer. Encoding rows, the logits after each row's last
token, the label loss a training step takes, and the label scorer — all through the model's own
forward pass, so soft prompts and prefixes take part like every other method.

The kit's other label scores measure other things: ``metrics.score_candidates`` (Lab 01) scores
multi-token label words through one shared-prefix cache, which a soft prompt cannot join;
``metrics.evaluate_label_generation`` and ``task_eval.match_label`` read the label from a
generated answer; ``metrics.classifier_accuracy`` scores a classification head (Labs 02–03)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch

from utils.data.batching import pad_batch
from utils.data.prompting import DATASET_FORMATS, build_prompt


def task_format():
    """Lab 01's SMS format without its instruction (``Message: ...`` / ``Label:``): the
    instruction is what a soft prompt learns; text-initialised prompt tuning starts from it."""
    return replace(DATASET_FORMATS["sms_spam"], instruction=None)


def instruction_text() -> str:
    """Lab 01's instruction, the starting text of text-initialised prompt tuning."""
    return DATASET_FORMATS["sms_spam"].instruction


def prompt_text(row: dict, labels: Sequence[str]) -> str:
    """The prompt for one message, ending at ``Label:`` (the label word follows after a space)."""
    prompt = build_prompt(task_format(), [], row["text"], tuple(labels))
    return prompt.prefix + prompt.suffix


def label_token_ids(tokenizer, labels: Sequence[str]) -> list[int]:
    """The first token of `` <label>`` for each label; they must differ to tell labels apart."""
    ids = [tokenizer(" " + label, add_special_tokens=False)["input_ids"][0] for label in labels]
    if len(set(ids)) != len(ids):
        raise ValueError(f"labels {list(labels)} start with the same token: cannot score them")
    return ids


def encode_rows(tokenizer, rows: Sequence[dict], labels: Sequence[str]) -> list[tuple]:
    """Each row as ``(prompt ids, label token id)``."""
    label_ids = dict(zip(labels, label_token_ids(tokenizer, labels), strict=True))
    encode = lambda r: tokenizer(prompt_text(r, labels), add_special_tokens=False)["input_ids"]  # noqa: E731
    return [(encode(r), label_ids[r["label"]]) for r in rows]


def label_logits(model, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The logits after each row's last token (right padding), one row each. Only the last few
    positions go through the LM head (``logits_to_keep``): the rest would be thrown away."""
    lengths, width = mask.sum(1), ids.shape[1]
    keep = int(width - lengths.min()) + 1
    logits = model(input_ids=ids, attention_mask=mask, logits_to_keep=keep).logits
    return logits[torch.arange(len(ids)), keep - 1 - (width - lengths).to(logits.device)]


def label_loss(model, examples: Sequence[tuple], pad_id: int) -> torch.Tensor:
    """Cross-entropy of each example's label token after its prompt, averaged over the batch."""
    device = next(model.parameters()).device
    ids, mask = pad_batch([p for p, _ in examples], pad_id)
    logits = label_logits(model, ids.to(device), mask.to(device))
    gold = torch.tensor([label for _, label in examples], device=device)
    return torch.nn.functional.cross_entropy(logits.float(), gold)


@torch.inference_mode()
def evaluate_labels(model, tokenizer, rows: Sequence[dict], labels: Sequence[str], batch_size=16):
    """Accuracy (the label whose word is likelier after ``Label:``) and the mean loss of the gold
    label token, by the model's own forward pass — so soft prompts and prefixes take part."""
    examples = encode_rows(tokenizer, rows, labels)
    label_ids = torch.tensor(label_token_ids(tokenizer, labels))
    order = sorted(range(len(examples)), key=lambda i: len(examples[i][0]))  # less padding
    device = next(model.parameters()).device
    correct, loss = 0, 0.0
    for start in range(0, len(order), batch_size):
        chunk = [examples[i] for i in order[start : start + batch_size]]
        ids, mask = pad_batch([p for p, _ in chunk], tokenizer.pad_token_id)
        last = label_logits(model, ids.to(device), mask.to(device)).float().cpu().log_softmax(-1)
        gold = torch.tensor([label for _, label in chunk])
        correct += int((label_ids[last[:, label_ids].argmax(1)] == gold).sum())
        loss -= float(last[torch.arange(len(chunk)), gold].sum())
    return {"accuracy": correct / len(examples), "loss": loss / len(examples), "n": len(examples)}
