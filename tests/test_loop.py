"""The one short training loop (Labs 07–09) on the tiny random model: micro-batches make the same
step as the whole batch, a linear schedule ends at 0, a shard is this rank's equal share, and
autocast follows the model's device."""

import copy

import pytest
import torch

from utils.eval.label_task import label_loss
from utils.train import loop


def examples(n, seed=0):
    """``n`` (prompt ids, label id) pairs of equal length (so micro-batch means average exactly)."""
    generator = torch.Generator().manual_seed(seed)
    return [
        (torch.randint(5, 500, (6,), generator=generator).tolist(), 7 + i % 2) for i in range(n)
    ]


def sgd_run(model, batches, pad_id, **settings):
    model = copy.deepcopy(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    return model, loop.train_label_steps(model, batches, pad_id, optimizer, **settings)


def test_micro_batches_take_the_same_step_as_the_whole_batch(tiny_model, tokenizer):
    batches = [examples(8, seed) for seed in range(2)]
    whole, run = sgd_run(tiny_model, batches, tokenizer.pad_token_id)
    parts, micro_run = sgd_run(tiny_model, batches, tokenizer.pad_token_id, micro=2)
    assert micro_run["loss"] == pytest.approx(run["loss"], rel=1e-5)
    for a, b in zip(whole.parameters(), parts.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    assert len(run["seconds"]) == 2 and not whole.training  # left in eval mode
    first = label_loss(tiny_model.eval(), batches[0], tokenizer.pad_token_id).item()
    assert run["loss"][0] == pytest.approx(first, rel=1e-5)  # the loss before the step


def test_the_accumulate_hook_decides_the_step(tiny_model, tokenizer):
    seen = []

    def first_part_only(loss_of, parts):
        seen.append(len(parts))
        loss = loss_of(parts[0])
        loss.backward()
        return loss.item()

    _, run = sgd_run(
        tiny_model, [examples(8)], tokenizer.pad_token_id, micro=4, accumulate=first_part_only
    )
    assert seen == [2]
    assert run["loss"][0] == pytest.approx(
        label_loss(tiny_model.eval(), examples(8)[:4], tokenizer.pad_token_id).item(), rel=1e-5
    )


def test_a_linear_schedule_reaches_zero_at_the_last_step(tiny_model, tokenizer):
    model = copy.deepcopy(tiny_model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    schedule = loop.linear_decay(optimizer, 4)
    loop.train_label_steps(
        model, [examples(4)] * 4, tokenizer.pad_token_id, optimizer, schedule=schedule
    )
    assert optimizer.param_groups[0]["lr"] == 0.0


def test_a_shard_is_this_ranks_equal_share():
    batch = list(range(8))
    assert loop.shard(batch, 1, 4) == [1, 5]
    assert sorted(sum((loop.shard(batch, r, 4) for r in range(4)), [])) == batch
    with pytest.raises(ValueError, match="does not split into 3 equal shards"):
        loop.shard(batch, 0, 3)


def test_autocast_follows_the_models_device(tiny_model):
    off = loop.device_autocast(tiny_model)
    assert off.device == "cpu" and not off._enabled  # fp32 on a CPU: nothing
    on = loop.device_autocast(tiny_model, torch.bfloat16)
    assert on.device == "cpu" and on._enabled and on.fast_dtype == torch.bfloat16
