"""Check bodies too long for a lab's page: each takes the learner's code and prints the task's
``[PASS]``/``[FAIL]`` lines through ``utils.lab.checks`` (the lab's check cell is one call)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from utils.lab.checks import check_close, check_equal, checking
from utils.lab.expected import expected
from utils.train.params import count_trainable


def check_bottleneck_adapter(
    adapter_class: type,
    with_adapters: Callable[[], torch.nn.Module],
    model: torch.nn.Module,
    bottleneck: int,
    probe_logits: Callable[[torch.nn.Module], torch.Tensor],
) -> None:
    """Task 7.2: the learner's adapter has the reference's size, is the identity at the start and
    computes the reference's function; ``with_adapters()`` (a copy of ``model`` with the learner's
    adapters in every block) trains exactly those adapters and leaves ``probe_logits`` unchanged."""
    task, hidden = "Task 7.2", model.config.hidden_size
    with checking(task):
        torch.manual_seed(0)
        yours = adapter_class(hidden, bottleneck)
        reference = expected(task, hidden, bottleneck)
        size = sum(p.numel() for p in reference.parameters())
        check_equal(task, sum(p.numel() for p in yours.parameters()), size, "adapter parameters")
        h = torch.randn(3, hidden)
        with torch.no_grad():
            check_close(
                task,
                float((yours(h) - h).abs().max()),
                0.0,
                tol=0.0,
                what="max |adapter(h) - h| at initialisation",
            )
            for param in yours.parameters():
                param.normal_()
            reference.load_state_dict(yours.state_dict())
            check_close(
                task,
                float((yours(h) - reference(h)).abs().max()),
                0.0,
                tol=1e-5,
                what="max |yours - reference| with random weights",
            )
    with checking(task, fresh=False):
        adapted = with_adapters()
        check_equal(
            task,
            count_trainable(adapted)[0],
            model.config.num_hidden_layers * size,
            what="trainable parameters of the model with adapters (one per block, nothing else)",
        )
        with torch.no_grad():
            check_close(
                task,
                float((probe_logits(adapted) - probe_logits(model)).abs().max()),
                0.0,
                tol=1e-4,
                what="max |logit change| of the model with fresh adapters",
            )


def check_hand_scorer(
    continuation_logprob: Callable,
    pick_choice: Callable,
    model: torch.nn.Module,
    tokenizer,
    items: dict[str, list[dict]],
    harness_items: dict[str, list[dict]],
) -> None:
    """Task 9.1: on each benchmark's ``items`` (the harness's requests), the learner's
    log-likelihoods equal the harness's within 1e-3 and the learner's picks are the harness's
    verdicts for ``acc`` and ``acc_norm``, item by item."""
    from utils.eval.harness import encode_pair

    task = "Task 9.1"
    with checking(task):
        for name, chosen in items.items():
            worst, same = 0.0, {"acc": 0, "acc_norm": 0}
            for item, reference in zip(chosen, harness_items[name], strict=False):
                lls = [
                    float(continuation_logprob(model, *encode_pair(tokenizer, item["context"], c)))
                    for c in item["continuations"]
                ]
                worst = max(
                    worst,
                    max(abs(a - b) for a, b in zip(lls, reference["loglikelihoods"], strict=True)),
                )
                for metric, normalise in (("acc", False), ("acc_norm", True)):
                    right = pick_choice(lls, item["choices"], normalise) == item["gold"]
                    same[metric] += float(right) == reference.get(metric, float(right))
            check_close(
                task, worst, 0.0, tol=1e-3, what=f"{name}: largest |yours - harness| log-likelihood"
            )
            for metric, count in same.items():
                check_equal(
                    task, count, len(chosen), what=f"{name}: items where your {metric} = harness's"
                )
