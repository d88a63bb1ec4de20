"""What a check cell compares a learner's answer with: the kit's own implementation of the task,
run on the learner's inputs. A learner notebook calls ``expected("Task 2.3", ...)`` and never
imports the implementation of its own task under a readable name.
"""

from __future__ import annotations

from collections.abc import Callable

from utils.lab.checks import passed


def _role_order() -> Callable:
    from utils.data.chat_format import role_order_problems

    return role_order_problems


def _template_overhead() -> Callable:
    from utils.data.chat_format import chat_token_ids

    def overhead(tokenizer, messages: list[dict]) -> int:
        ids = tokenizer([m["content"] for m in messages], add_special_tokens=False)["input_ids"]
        return len(chat_token_ids(tokenizer, messages)) - sum(len(i) for i in ids)

    return overhead


def _hosted_cost() -> Callable:
    from utils.data.token_stats import billed_tokens, default_epochs

    def cost(example_tokens: list[int], usd_per_1k: float) -> tuple:
        epochs = default_epochs(len(example_tokens))
        billed = billed_tokens(example_tokens, epochs)
        return epochs, billed, billed / 1000 * usd_per_1k

    return cost


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


def _lora_count() -> Callable:
    from utils.train.memory_estimate import shape_from_config

    def count(config, r: int, targets) -> int:
        return shape_from_config(config.to_dict()).lora_params(r, tuple(targets))

    return count


def _peft_alpha() -> Callable:
    from utils.train.lora_scaling import peft_alpha_from_scratch

    return peft_alpha_from_scratch


def _merge_at_scale() -> Callable:
    from utils.train.lora_scaling import merged_at_scale

    return merged_at_scale


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


def _forgetting_onset() -> Callable:
    def onset(history: list[dict], key: str, threshold: float) -> int | None:
        limit = history[0][key] * (1 + threshold / 100)
        return next((p["step"] for p in history[1:] if p[key] > limit), None)

    return onset


def _outlier_columns() -> Callable:
    from utils.train.quantization import outlier_columns

    return outlier_columns


def _bottleneck_adapter() -> Callable:
    from utils.train.peft_family import BottleneckAdapter

    return BottleneckAdapter


def _nf4_bytes() -> Callable:
    from utils.train.quantization import nf4_bytes_per_parameter

    return nf4_bytes_per_parameter


def _state_bytes() -> Callable:
    from utils.train.memory_levers import expected_state_bytes

    return lambda optimizer, params: expected_state_bytes(optimizer, list(params))


def _dpo_loss() -> Callable:
    from utils.train.preference import dpo_loss

    return dpo_loss


def _extraction_reward() -> Callable:
    from utils.train.preference import extraction_reward

    return extraction_reward


def _pruning_scores() -> Callable:
    from utils.train.pruning import pruning_scores

    return pruning_scores


def _distillation_loss() -> Callable:
    from utils.train.distill import distillation_loss

    return distillation_loss


REFERENCES: dict[str, Callable[[], Callable]] = {
    "Task 0.1": _role_order,  # the role-order problems of a list of roles
    "Task 0.2": _template_overhead,  # chat-template tokens minus the contents' tokens
    "Task 0.3": _hosted_cost,  # (epochs, billed tokens, USD) of a hosted run, from token counts
    "Task 1.3": _calibrate,  # calibrated scores
    "Task 2.3": _freeze,  # the names left trainable (the model is left frozen that way)
    "Task 3.1": _lora_layer,  # a reference LoRA layer (seed the RNG first to compare A)
    "Task 3.4": _response_mask,  # response-only labels
    "Task 3.5": _lora_count,  # LoRA parameters of a config, rank and target modules
    "Task 3.6": _routed_answer,  # one request's reply from its task's adapter
    "Task 3.7": _peft_alpha,  # PEFT's lora_alpha for a from-scratch alpha (r, rslora)
    "Task 3.8": _merge_at_scale,  # a plain model with W + s * delta W (the PEFT model untouched)
    "Task 4.2": _nf4_bytes,  # bytes per parameter (double_quant=True for double quantization)
    "Task 4.3": _outlier_columns,  # the outlier-column mask
    "Task 5.3": _forgetting_onset,  # first tracked step over the threshold, or None
    "Task 7.2": _bottleneck_adapter,  # a reference bottleneck adapter (hidden, bottleneck)
    "Task 8.1": _state_bytes,  # (optimizer, fp32 parameter tensors) -> bytes of state
    "Task 10.1": _pruning_scores,  # (weight, input norms, "magnitude" | "wanda") -> scores
    "Task 10.3": _distillation_loss,  # (student, teacher logits, labels, T, alpha) -> parts
    "Task 11.1": _dpo_loss,  # (4 log-probability tensors, beta) -> losses and rewards
    "Task 11.3": _extraction_reward,  # (fields, parse weight) -> the reward function
}


# What stands in for an unfinished task where its check reference has another form (the check
# compares names or counts; the lab needs the working function or layer).
def _new_head() -> Callable:
    import torch

    return lambda hidden, classes: torch.nn.Linear(hidden, classes)


def _freeze_count() -> Callable:
    from utils.train.params import freeze_all_but

    return lambda model, last_blocks, train_norm=True, train_embeddings=False: freeze_all_but(
        model, last_blocks, train_norm=train_norm, train_embeddings=train_embeddings
    )


def _linear_with_lora() -> Callable:
    from utils.train.lora import LinearWithLoRA

    return LinearWithLoRA


def _add_lora() -> Callable:
    from utils.train.lora import apply_lora

    return apply_lora


def _add_bottleneck_adapters() -> Callable:
    from utils.train.peft_family import add_bottleneck_adapters

    return add_bottleneck_adapters


def _events_reward() -> Callable:
    from utils.data.datasets import get_spec
    from utils.train.preference import extraction_reward

    return extraction_reward(get_spec("news_events").fields)


STAND_INS: dict[str, Callable[[], Callable]] = {
    "Task 2.1": _new_head,  # (hidden, classes) -> a fresh head
    "Task 2.3": _freeze_count,  # freezes like the task and returns the trainable count
    "Task 3.2": _linear_with_lora,
    "Task 3.3": _add_lora,  # (model, targets, rank, alpha) -> the wrapped names
    "Task 7.2": _add_bottleneck_adapters,  # (model, bottleneck): an adapter after every MLP
    "Task 11.3": _events_reward,  # the reward function of the extraction task
}


def expected(task: str, *args, **kwargs):
    """The kit's answer to ``task`` for these inputs."""
    if task not in REFERENCES:
        raise KeyError(f"no reference for {task!r}; known: {sorted(REFERENCES)}")
    return REFERENCES[task]()(*args, **kwargs)


def stand_in(task: str, what: str) -> Callable:
    """The kit's own version of ``task``, with a line saying the lab uses it: a learner stuck on
    one task can still run the rest of the lab."""
    print(
        f"[NOTE] {task} is not finished: the rest of the lab uses the kit's {what} so you can go "
        "on (finish the task and run its cells again to use yours)."
    )
    return (STAND_INS[task] if task in STAND_INS else REFERENCES[task])()


def yours_or_kit(task: str, yours, what: str):
    """``yours`` when every check of ``task`` passed, else the kit's ``stand_in``."""
    return yours if passed(task) else stand_in(task, what)
