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


def check_dpo_loss(my_dpo_loss: Callable, policy, tokenizer, pairs: list[dict]) -> None:
    """Task 11.1: the learner's DPO loss and implicit rewards equal the reference's (TRL's sigmoid
    loss) on random log-probabilities at two betas, and on the real log-probabilities of
    ``pairs[:8]`` under ``policy`` (a PEFT model) against its base (the adapter off)."""
    from utils.train.preference import pair_logps, pair_tokens

    task = "Task 11.1"
    keys = ("losses", "chosen_rewards", "rejected_rewards")

    def compare(logps: list[torch.Tensor], beta: float, what: str) -> None:
        got = my_dpo_loss(*logps, beta)
        want = expected(task, *logps, beta)
        for key in keys:
            worst = float((torch.as_tensor(got[key]) - want[key]).abs().max())
            check_close(task, worst, 0.0, tol=1e-5, what=f"max |yours - TRL's| {key}, {what}")

    with checking(task):
        generator = torch.Generator().manual_seed(0)
        random = [-40 + 10 * torch.randn(16, generator=generator) for _ in range(4)]
        for beta in (0.1, 0.5):
            compare(random, beta, f"random log-probabilities, beta {beta}")
        tokens = [pair_tokens(tokenizer, pair) for pair in pairs[:8]]
        with torch.no_grad():
            policy_logps = pair_logps(policy, tokens)
            with policy.disable_adapter():
                base_logps = pair_logps(policy, tokens)
        real = [policy_logps["chosen"], policy_logps["rejected"]]
        real += [base_logps["chosen"], base_logps["rejected"]]
        compare(real, 0.1, f"{len(tokens)} real pairs, SFT policy vs its base")


def check_reward(
    my_reward: Callable,
    fields: tuple[str, ...],
    parse_weight: float,
    pairs: list[dict],
    rows: list[dict],
) -> None:
    """Task 11.3: the learner's reward equals the kit's ``extraction_reward`` on made-up answers
    to three of ``rows`` (right, one field wrong, a field missing, different case and spacing, cut
    off, prose, a JSON list, empty) and on the chosen and rejected answers of ``pairs`` whose ids
    are in ``rows``."""
    from utils.eval.metrics import target_json

    task = "Task 11.3"
    targets = {row["id"]: row["target"] for row in rows}
    texts, truths = [], []
    for row in rows[:3]:
        truth = row["target"]
        right = target_json(truth, fields)
        wrong = target_json({**truth, fields[0]: "somebody else"}, fields)
        missing = target_json({f: truth.get(f) for f in fields[1:]}, fields[1:])
        loud = target_json(
            {f: f"  {v.upper()}." if isinstance(v, str) else v for f, v in truth.items()}, fields
        )
        for text in (
            right,
            wrong,
            missing,
            loud,
            right[: len(right) // 2],
            "It was them.",
            "[1]",
            "",
        ):
            texts.append(text)
            truths.append(truth)
    for pair in pairs:
        if pair["id"] in targets:
            for which in ("chosen", "rejected"):
                texts.append(pair[which][0]["content"])
                truths.append(targets[pair["id"]])
    completions = [[{"role": "assistant", "content": text}] for text in texts]
    with checking(task):
        got = my_reward(completions, target=truths)
        want = expected(task, fields, parse_weight)(completions, target=truths)
        if check_equal(task, len(got), len(want), what="one reward per completion"):
            worst = max(abs(float(g) - w) for g, w in zip(got, want, strict=True))
            check_close(
                task, worst, 0.0, tol=1e-9, what=f"max |yours - kit's| on {len(want)} answers"
            )


def check_pruning_scores(my_scores: Callable, linears: dict, norms: dict) -> None:
    """Task 10.1: the learner's magnitude and Wanda scores equal the kit's on two real layers
    (an attention and an MLP projection) with their calibration norms, and the 50 % per-row
    masks they give keep exactly the kit's weights."""
    from utils.train.pruning import unstructured_mask

    task = "Task 10.1"
    with checking(task):
        names = [n for n in linears if n.endswith(("q_proj", "down_proj"))] or list(linears)
        for name in names[:2]:
            weight = linears[name].weight
            for method in ("magnitude", "wanda"):
                want = expected(task, weight, norms[name], method)
                yours = torch.as_tensor(my_scores(weight, norms[name], method)).float()
                check_equal(task, tuple(yours.shape), tuple(want.shape), f"{method} scores' shape")
                worst = float((yours - want).abs().max()) / float(want.abs().max())
                check_close(task, worst, 0.0, 1e-6, f"max |yours - kit's| / max, {method}, {name}")
                same = torch.equal(unstructured_mask(yours, 0.5), unstructured_mask(want, 0.5))
                check_equal(task, same, True, f"your 50 % {method} mask is the kit's, {name}")


def check_distillation_loss(my_loss: Callable) -> None:
    """Task 10.3: the learner's loss, KL and cross-entropy equal the kit's (whose KL part is
    TRL's GKD loss at beta 0, times T²) on random logits with masked positions, at three
    temperatures and three mixes."""
    task = "Task 10.3"
    with checking(task):
        generator = torch.Generator().manual_seed(0)
        student = torch.randn(3, 7, 40, generator=generator)
        teacher = 2 * torch.randn(3, 7, 40, generator=generator)
        labels = torch.randint(0, 40, (3, 7), generator=generator)
        labels[:, :3] = -100  # a prompt
        labels[1, 5:] = -100  # padding
        for temperature, alpha in ((1.0, 0.5), (2.0, 0.0), (4.0, 1.0)):
            yours = my_loss(student, teacher, labels, temperature, alpha)
            want = expected(task, student, teacher, labels, temperature, alpha)
            for key in ("loss", "kd", "ce"):
                got = float(torch.as_tensor(yours[key]))
                check_close(
                    task,
                    got,
                    float(want[key]),
                    1e-4,
                    f"{key} at T {temperature:g}, alpha {alpha:g}",
                )
