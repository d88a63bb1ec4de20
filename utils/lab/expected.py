"""What a check cell compares a learner's answer with: the kit's own implementation of the task,
run on the learner's inputs. A learner notebook calls ``expected("Task 2.3", ...)`` and never
imports the implementation of its own task under a readable name.
"""

from __future__ import annotations

from collections.abc import Callable


def _calibrate() -> Callable:
    from utils.eval.icl import calibrate_scores

    return calibrate_scores


def _freeze() -> Callable:
    from utils.train.params import freeze_all_but

    def trainable_names(model, *args, **kwargs) -> set[str]:
        freeze_all_but(model, *args, **kwargs)
        return {name for name, p in model.named_parameters() if p.requires_grad}

    return trainable_names


def _lora_layer() -> Callable:
    from utils.train.lora import LoRALayer

    return LoRALayer


def _response_mask() -> Callable:
    from utils.train.sft import response_only_labels

    return response_only_labels


def _routed_answer() -> Callable:
    from utils.eval.metrics import generate_batch
    from utils.train import sft

    def answer(server, tokenizer, request: dict, fields, max_new_tokens: int = 56) -> str:
        server.set_adapter(request["task"])
        row = {"text": request["text"]}
        messages = (
            sft.extraction_messages(row, fields, with_answer=False)
            if request["task"] == "extract"
            else sft.spam_messages(row, with_answer=False)
        )
        prompt = sft.chat_text(tokenizer, messages)
        return generate_batch(server, tokenizer, [prompt], max_new_tokens, progress=False)[0]

    return answer


def _outlier_columns() -> Callable:
    from utils.train.quantization import outlier_columns

    return outlier_columns


REFERENCES: dict[str, Callable[[], Callable]] = {
    "Task 1.3": _calibrate,  # calibrated scores
    "Task 2.3": _freeze,  # the names left trainable (the model is left frozen that way)
    "Task 3.1": _lora_layer,  # a reference LoRA layer (seed the RNG first to compare A)
    "Task 3.4": _response_mask,  # response-only labels
    "Task 3.5": _routed_answer,  # one request's reply from its task's adapter
    "Task 4.3": _outlier_columns,  # the outlier-column mask
}


def expected(task: str, *args, **kwargs):
    """The kit's answer to ``task`` for these inputs."""
    if task not in REFERENCES:
        raise KeyError(f"no reference for {task!r}; known: {sorted(REFERENCES)}")
    return REFERENCES[task]()(*args, **kwargs)
