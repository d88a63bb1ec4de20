"""Pruning on tiny random models: masks remove exactly the share asked for and keep the
highest-scoring weights, Wanda's score reads the calibration tokens' input norms, and removing
decoder blocks leaves a model that still generates the same with and without its cache."""

import pytest
import torch

from utils.runtime.models import build_tiny_model, model_fingerprint
from utils.train.pruning import (
    block_importance,
    block_linears,
    blocks_removed,
    decoder_blocks,
    drop_blocks,
    input_norms,
    magnitude_scores,
    n_m_mask,
    prune_linears,
    pruning_scores,
    read_block_recipe,
    unstructured_mask,
    wanda_scores,
)


def tiny(tokenizer, layers=3):
    return build_tiny_model(tokenizer, num_layers=layers, hidden_size=64, seed=0).eval()


def calibration(tokenizer, batches=2):
    generator = torch.Generator().manual_seed(0)
    return [torch.randint(3, len(tokenizer), (2, 16), generator=generator) for _ in range(batches)]


def test_an_unstructured_mask_removes_the_share_asked_for_and_keeps_the_top_scores():
    scores = torch.rand(8, 40, generator=torch.Generator().manual_seed(0))
    for sparsity in (0.0, 0.1, 0.5, 0.7):
        keep = unstructured_mask(scores, sparsity)
        assert (keep.sum(1) == 40 - int(40 * sparsity)).all()  # per row, exactly
        for row, kept in zip(scores, keep, strict=True):  # every kept score beats every pruned one
            if (~kept).any():
                assert row[kept].min() > row[~kept].max()
    whole = unstructured_mask(scores, 0.5, per_row=False)
    assert whole.sum() == 160 and scores[whole].min() > scores[~whole].max()
    with pytest.raises(ValueError, match="sparsity"):
        unstructured_mask(scores, 1.0)


def test_a_2_4_mask_keeps_the_two_best_of_every_four_inputs():
    scores = torch.rand(6, 16, generator=torch.Generator().manual_seed(1))
    keep = n_m_mask(scores, 2, 4)
    groups, kept = scores.reshape(6, 4, 4), keep.reshape(6, 4, 4)
    assert (kept.sum(2) == 2).all()
    assert (groups.masked_fill(~kept, -1).amax(2) == groups.amax(2)).all()
    assert (groups.masked_fill(kept, 2).amin(2) == groups.amin(2)).all()
    with pytest.raises(ValueError, match="divisible"):
        n_m_mask(torch.rand(2, 6))


def test_wandas_score_weighs_each_weight_by_its_inputs_norm():
    weight = torch.tensor([[1.0, -1.0, 0.5], [-2.0, 0.1, 0.1]])
    norms = torch.tensor([1.0, 10.0, 0.0])
    assert torch.equal(wanda_scores(weight, norms), weight.abs() * norms)
    assert torch.equal(magnitude_scores(weight), weight.abs())
    # magnitude (across the matrix) drops both 0.1 weights; Wanda keeps the one on the loud
    # input and drops the weights on the silent one instead
    magnitude = unstructured_mask(magnitude_scores(weight), 1 / 3, per_row=False)
    assert magnitude.tolist() == [[True, True, True], [True, False, False]]
    keep = unstructured_mask(wanda_scores(weight, norms), 1 / 3)
    assert keep.tolist() == [[True, True, False], [True, True, False]]
    with pytest.raises(ValueError, match="takes 3 inputs"):
        wanda_scores(weight, torch.ones(4))


def test_input_norms_add_up_over_batches_and_pruning_reaches_the_sparsity(tokenizer):
    model = tiny(tokenizer)
    modules = block_linears(model)
    assert len(modules) == 3 * 7  # q, k, v, o, gate, up, down in each block
    batches = calibration(tokenizer)
    both = input_norms(model, batches, modules)
    one, two = (input_norms(model, [b], modules) for b in batches)
    for name in modules:
        assert torch.allclose(both[name] ** 2, one[name] ** 2 + two[name] ** 2, rtol=1e-4)
    embeddings = model.get_input_embeddings().weight.clone()
    shares = prune_linears(modules, "wanda", 0.5, norms=both)
    assert all(share == pytest.approx(0.5, abs=0.02) for share in shares.values())
    assert all(
        (m.weight == 0).float().mean() >= 0.48 for m in modules.values()
    )  # the zeros are in the weights themselves
    assert torch.equal(model.get_input_embeddings().weight, embeddings)
    assert torch.isfinite(model(input_ids=batches[0]).logits).all()
    shares = prune_linears(block_linears(tiny(tokenizer)), "magnitude", n_m=(2, 4))
    assert set(shares.values()) == {0.5}
    with pytest.raises(ValueError, match="input norms"):
        prune_linears(modules, "wanda", 0.5)


def test_a_block_that_passes_its_input_through_is_the_least_important(tokenizer):
    model = tiny(tokenizer, layers=4)
    with torch.no_grad():  # block 2 adds nothing to the residual stream
        decoder_blocks(model)[2].self_attn.o_proj.weight.zero_()
        decoder_blocks(model)[2].mlp.down_proj.weight.zero_()
    scores = block_importance(model, calibration(tokenizer))
    assert len(scores) == 4 and scores[2] == pytest.approx(0.0, abs=1e-6)
    assert min(range(4), key=scores.__getitem__) == 2 and min(scores[:2] + scores[3:]) > 1e-3


def test_a_model_without_some_blocks_is_smaller_and_generates_the_same_with_its_cache(tokenizer):
    model = tiny(tokenizer, layers=4)
    before = sum(p.numel() for p in model.parameters())
    drop_blocks(model, [1, 2])
    assert len(decoder_blocks(model)) == model.config.num_hidden_layers == 2
    assert sum(p.numel() for p in model.parameters()) < before
    prompt = calibration(tokenizer, 1)[0][:1, :8]
    cached = model.generate(prompt, max_new_tokens=6, do_sample=False, use_cache=True)
    uncached = model.generate(prompt, max_new_tokens=6, do_sample=False, use_cache=False)
    assert torch.equal(cached, uncached)
    with pytest.raises(ValueError, match="some, not all"):
        drop_blocks(model, [0, 1])


def test_an_architecture_without_decoder_blocks_gets_a_clear_message():
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=64))
    with pytest.raises(ValueError, match="block pruning supports Llama-style"):
        decoder_blocks(model)


def test_blocks_removed_for_a_while_come_back_as_they_were(tokenizer):
    model = tiny(tokenizer, layers=4)
    prompt = calibration(tokenizer, 1)[0][:1, :8]
    with torch.no_grad():
        before, fingerprint = model(input_ids=prompt).logits, model_fingerprint(model)
        with blocks_removed(model, [0, 2]) as pruned:
            assert pruned.config.num_hidden_layers == 2
            assert [b.self_attn.layer_idx for b in decoder_blocks(pruned)] == [0, 1]
            assert not torch.allclose(pruned(input_ids=prompt).logits, before)
        with pytest.raises(RuntimeError), blocks_removed(model, [3]):
            raise RuntimeError("a failing grade")
        after = model(input_ids=prompt).logits
    assert model.config.num_hidden_layers == 4 and model_fingerprint(model) == fingerprint
    assert [b.self_attn.layer_idx for b in decoder_blocks(model)] == [0, 1, 2, 3]
    assert torch.equal(after, before)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("remove 3", "not JSON"),
        ("[1, 2]", "one JSON object"),
        ('{"remove_blocks": [1], "code": "import os"}', "one JSON object"),
        ('{"remove_blocks": "1,2"}', "list of block indices"),
        ('{"remove_blocks": [1.5]}', "list of block indices"),
        ('{"remove_blocks": [true]}', "list of block indices"),
        ('{"remove_blocks": [2, 2]}', "twice"),
        ('{"remove_blocks": [30]}', "no block"),
        ('{"remove_blocks": [-1]}', "no block"),
        ('{"remove_blocks": []}', "some, not all"),
        ('{"remove_blocks": [0, 1, 2, 3, 4]}', "at most 4"),
        ('{"remove_blocks": [0, 1, 2, 3, 4, 5]}', "some, not all"),
    ],
)
def test_a_malformed_recipe_is_refused_with_its_reason(text, message):
    with pytest.raises(ValueError, match=message):
        read_block_recipe(text, num_blocks=6, max_removed=4)


def test_a_valid_recipe_reads_as_sorted_indices():
    assert read_block_recipe('{"remove_blocks": [5, 1, 3]}', num_blocks=6) == [1, 3, 5]


def test_the_labs_check_passes_the_kits_scores_and_fails_per_matrix_squared_norms(tokenizer):
    from utils.lab.checks import passed
    from utils.lab.task_checks import check_pruning_scores

    model = tiny(tokenizer)
    linears = block_linears(model)
    norms = input_norms(model, calibration(tokenizer), linears)
    check_pruning_scores(pruning_scores, linears, norms)
    assert passed("Task 10.1")

    def squared(weight, norm, method):  # torchao's variant: the squared norm
        return pruning_scores(weight, norm**2 if method == "wanda" else norm, method)

    check_pruning_scores(squared, linears, norms)
    assert not passed("Task 10.1")


def test_a_labs_own_scorer_prunes_like_the_kits(tokenizer):
    def by_hand(weight, norm, method):  # Wanda written out, as a learner would
        return weight.abs() * norm[None, :] if method == "wanda" else weight.abs()

    pruned = []
    for scorer in (None, by_hand):
        model = tiny(tokenizer)
        linears = block_linears(model)
        norms = input_norms(model, calibration(tokenizer), linears)
        prune_linears(linears, "wanda", 0.5, norms=norms, scorer=scorer)
        pruned.append(model_fingerprint(model))
    assert pruned[0] == pruned[1]
