"""Preference tuning's pieces (utils.train.preference) against TRL's DPOTrainer on the same batch,
on the tiny random model: the same tokens, the same answer log-probabilities, rewards and loss."""

import json
import math

import pytest
import torch

from utils.eval.metrics import parse_json_object, target_json
from utils.runtime.models import build_tiny_model
from utils.train.preference import (
    answer_logps,
    answer_score,
    dpo_loss,
    extraction_reward,
    on_policy_pairs,
    pair_tokens,
    preference_scores,
)

BETA = 0.3


def pair(message: str, chosen: str, rejected: str) -> dict:
    return {
        "prompt": [{"role": "user", "content": f"Spam or ham? {message}"}],
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
    }


PAIRS = [
    pair("WINNER!! Claim your prize, call 09061701461 now", "spam", "ham"),
    pair("running late, be there in 10", "ham", "spam, because it mentions a time"),
    pair("Your parcel is on hold, confirm your details at bit.ly/x", "spam", "ham"),
    pair("Can u pick up milk on the way home?", "ham, a friend asking for a favour", "spam"),
]


def perturb_lora(model, seed=1):
    """Non-zero B matrices, so the adapter changes the model (a fresh LoRA starts as the base)."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.3)


def test_the_dpo_loss_is_log_2_where_policy_and_reference_agree_and_falls_as_chosen_rises():
    same = torch.tensor([-5.0, -7.0])
    out = dpo_loss(same, same - 1, same, same - 1, BETA)
    assert torch.allclose(out["losses"], torch.full((2,), math.log(2)))
    assert torch.equal(out["chosen_rewards"], torch.zeros(2))
    better = dpo_loss(same + 1, same - 1, same, same - 1, BETA)
    assert (better["losses"] < out["losses"]).all()
    assert torch.allclose(better["chosen_rewards"], torch.full((2,), BETA))


def test_answer_log_probabilities_do_not_depend_on_the_batch(tokenizer):
    model = build_tiny_model(tokenizer, num_layers=2, hidden_size=64, seed=0)
    tokens = [pair_tokens(tokenizer, p) for p in PAIRS]
    prompts = [t["prompt_ids"] for t in tokens]
    answers = [t["rejected_ids"] for t in tokens]
    with torch.no_grad():
        together = answer_logps(model, prompts, answers, batch_size=4)
        alone = answer_logps(model, prompts, answers, batch_size=1)
    assert torch.allclose(together, alone, atol=1e-4)
    assert (together < 0).all()
    assert answer_logps(model, [], []).shape == (0,)  # no pairs (a split where none formed)


def dpo_trainer(tokenizer, folder, model, peft_config=None):
    """TRL's DPOTrainer on PAIRS in one batch, one step at a negligible rate (its logged numbers
    are those of the weights it starts from)."""
    import unsloth  # noqa: F401  (its CPU backend patches TRL's fused log-prob path)
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    args = DPOConfig(
        output_dir=str(folder),
        per_device_train_batch_size=len(PAIRS),  # one batch: the whole set, in any order
        max_steps=1,
        learning_rate=1e-9,
        beta=BETA,
        bf16=False,
        use_cpu=True,
        logging_steps=1,
        report_to=[],
        save_strategy="no",
    )
    return DPOTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(PAIRS),
        processing_class=tokenizer,
        peft_config=peft_config,
    )


def assert_logged_like(trainer, ours):
    trainer.train()
    logged = trainer.state.log_history[0]
    assert logged["loss"] == pytest.approx(ours["loss"], abs=1e-4)
    assert logged["rewards/accuracies"] == pytest.approx(ours["accuracy"])
    assert logged["rewards/margins"] == pytest.approx(ours["margin"], abs=1e-4)
    assert logged["logps/chosen"] == pytest.approx(ours["logps_chosen"], rel=1e-4)
    assert logged["logps/rejected"] == pytest.approx(ours["logps_rejected"], rel=1e-4)


def test_tokens_and_scores_against_the_base_match_trls_dpo_trainer(tokenizer, tmp_path):
    from peft import LoraConfig

    model = build_tiny_model(tokenizer, num_layers=2, hidden_size=64, seed=0)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])
    trainer = dpo_trainer(tokenizer, tmp_path, model, peft_config=config)  # reference: the base
    for row, example in zip(trainer.train_dataset, PAIRS):
        assert {k: row[k] for k in ("prompt_ids", "chosen_ids", "rejected_ids")} == pair_tokens(
            tokenizer, example
        )
    perturb_lora(trainer.model)
    ours = preference_scores(trainer.model, tokenizer, PAIRS, BETA)  # the adapter off: the base
    assert ours["loss"] != pytest.approx(math.log(2), abs=1e-3)  # the adapter is not neutral
    assert_logged_like(trainer, ours)


def test_scores_against_a_starting_adapter_match_trls_dpo_trainer(tokenizer, tmp_path):
    """A model that already has an adapter (DPO after SFT): TRL's reference is a frozen copy of
    that adapter; here the copy is perturbed after the trainer made it, so the two differ."""
    import copy

    from peft import LoraConfig, get_peft_model

    model = build_tiny_model(tokenizer, num_layers=2, hidden_size=64, seed=0)
    policy = get_peft_model(
        model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])
    )
    perturb_lora(policy, seed=1)
    reference = copy.deepcopy(policy).eval()  # the "SFT" model, frozen
    trainer = dpo_trainer(tokenizer, tmp_path, policy)
    with torch.no_grad():  # move the trained adapter away from its frozen copy
        for name, param in trainer.model.named_parameters():
            if "lora_B.default" in name:
                param.add_(0.3 * torch.randn_like(param))
    ours = preference_scores(trainer.model, tokenizer, PAIRS, BETA, reference=reference)
    assert ours["loss"] != pytest.approx(math.log(2), abs=1e-3)
    assert_logged_like(trainer, ours)


FIELDS = ("who", "what", "when", "where")


def test_an_answer_scores_the_share_of_fields_it_gets_right():
    target = {"who": "the zoo", "what": "opened", "when": None, "where": "Leeds"}
    assert (
        answer_score(
            '{"who": "the zoo", "what": "opened", "when": null, "where": "Leeds"}', target, FIELDS
        )
        == 1
    )
    assert (
        answer_score(
            '{"who": "the zoo", "what": "closed", "when": "May", "where": "Leeds"}', target, FIELDS
        )
        == 0.5
    )
    assert answer_score("the zoo opened in Leeds", target, FIELDS) == 0


def test_the_rl_reward_pays_for_parsing_then_for_each_right_field():
    target = {"who": "the zoo", "what": "opened", "when": None, "where": "Leeds"}
    reward = extraction_reward(FIELDS)
    answers = [
        '{"who": "the zoo", "what": "opened", "when": null, "where": "Leeds"}',  # all right
        '{"who": "the zoo", "what": "closed", "when": "May", "where": "Leeds"}',  # half right
        '{"who": "a cat"}',  # parses; only "when" right (a missing field reads as null)
        '{"who": "the zoo", "what": "opened"',  # cut off: does not parse
        "the zoo opened in Leeds",  # no JSON at all
        "",
    ]
    got = reward(completions=answers, target=[target] * len(answers), prompts=None)
    assert got == pytest.approx([1.0, 0.6, 0.4, 0.0, 0.0, 0.0])
    # TRL's conversational form: the completion is a list holding the assistant's message
    chat = [[{"role": "assistant", "content": a}] for a in answers[:2]]
    assert reward(chat, [target] * 2) == pytest.approx([1.0, 0.6])
    assert reward.__name__ == "extraction_reward"  # the name TRL logs the reward under
    with pytest.raises(ValueError, match="lengths|longer|shorter|zip"):
        reward(answers, [target])
    with pytest.raises(ValueError, match="parse_weight"):
        extraction_reward(FIELDS, parse_weight=1.5)


def test_on_policy_pairs_rank_the_models_own_samples(tokenizer, monkeypatch):
    """The tiny model's samples are noise (all score 0), so the sampler is replaced by one whose
    answers are known: pairs come only from prompts whose answers differ, best over worst."""
    import utils.train.preference as preference
    from utils.data.datasets import load_split

    rows = load_split("news_events", "train")[:4]
    right = [preference.extraction_messages(r, FIELDS)[-1]["content"] for r in rows]
    half = target_json({**rows[3]["target"], "what": "x", "who": "y"}, FIELDS)  # 2 fields wrong
    answers = {0: ["junk", right[0], "junk"], 1: ["junk", "junk", "junk"], 2: [right[2], "x", "y"]}
    answers[3] = ["junk", half, "junk"]

    def sampler(model, tokenizer, prompts, n, *args, seed=0):
        assert n == 3 and seed == 5 and len(prompts) == 4
        return [list(answers[i]) for i in range(len(prompts))]

    monkeypatch.setattr(preference, "sample_completions_batch", sampler)
    pairs, counts = on_policy_pairs(None, tokenizer, rows, FIELDS, samples=3, seed=5)
    assert counts == {
        "prompts": 4,
        "pairs": 3,
        "all answers scored the same": 1,
        "no right answer": 0,
        "mean answer score": pytest.approx((1 / 3 + 1 / 3 + 0.5 / 3) / 4),
    }
    assert [p["id"] for p in pairs] == [rows[0]["id"], rows[2]["id"], rows[3]["id"]]
    # a right answer over a wrong one only: the half-right answer is not taken as "chosen"
    kept, counts = on_policy_pairs(
        None, tokenizer, rows, FIELDS, samples=3, seed=5, right_chosen=True
    )
    assert [p["id"] for p in kept] == [rows[0]["id"], rows[2]["id"]]
    assert counts["no right answer"] == 1 and counts["pairs"] == 2
    assert (
        pairs[0]["chosen"][0]["content"] == right[0]
        and pairs[0]["rejected"][0]["content"] == "junk"
    )
    assert pairs[1]["rejected"][0]["content"] == "x"  # the first of the tied worst
    assert pairs[0]["prompt"] == preference.extraction_messages(rows[0], FIELDS, with_answer=False)
    for pair in pairs:  # the pairs tokenize as the trainer will
        assert pair_tokens(tokenizer, pair)["chosen_ids"]


def test_sampled_answers_come_per_prompt_and_repeat_with_the_seed(tokenizer, tiny_model):
    from utils.eval.decoding import sample_completions_batch

    prompts = ["Task: say hi", "Task: count to three, slowly please"]
    side = tokenizer.padding_side
    first = sample_completions_batch(tiny_model, tokenizer, prompts, 3, 6, seed=1, batch_size=2)
    assert [len(a) for a in first] == [3, 3]
    assert (
        sample_completions_batch(tiny_model, tokenizer, prompts, 3, 6, seed=1, batch_size=2)
        == first
    )
    assert (
        sample_completions_batch(tiny_model, tokenizer, prompts, 3, 6, seed=2, batch_size=2)
        != first
    )
    assert tokenizer.padding_side == side  # restored after left-padding the prompts


def lora_policy(tokenizer):
    from peft import LoraConfig, get_peft_model

    model = build_tiny_model(tokenizer, num_layers=2, hidden_size=64, seed=0)
    return get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))


def test_answer_kl_is_zero_for_the_same_model_and_grows_with_the_adapter(tokenizer):
    from utils.train.preference import answer_kl

    policy = lora_policy(tokenizer)
    assert answer_kl(policy, None, tokenizer, PAIRS) == pytest.approx(0.0, abs=1e-6)  # B = 0
    perturb_lora(policy)
    moved = answer_kl(policy, None, tokenizer, PAIRS)
    assert moved > 1e-3
    assert answer_kl(policy, policy, tokenizer, PAIRS) == pytest.approx(0.0, abs=1e-6)
    assert answer_kl(policy, None, tokenizer, PAIRS, batch_size=1) == pytest.approx(moved, rel=1e-4)


def test_bundled_pairs_load_and_a_malformed_row_names_its_file_and_line(tmp_path):
    from utils.data.jsonl import DataError
    from utils.data.preference_pairs import load_pairs, read_pairs

    for split in ("train", "validation", "test"):
        rows = load_pairs(split)
        assert rows and all(r["scores"][0] > r["scores"][1] for r in rows)
    good = {**PAIRS[0], "id": "x-1", "scores": [1.0, 0.0]}
    bad = {
        "missing chosen": {k: v for k, v in good.items() if k != "chosen"},
        "the same answer": {**good, "rejected": good["chosen"]},
        "chosen scores 0.0 but rejected 1.0": {**good, "scores": [0.0, 1.0]},
        "exactly one assistant message": {**good, "chosen": PAIRS[0]["prompt"]},
    }
    for problem, row in bad.items():
        path = tmp_path / "pairs.jsonl"
        path.write_text(json.dumps(good) + "\n" + json.dumps(row) + "\n")
        with pytest.raises(DataError, match=f"{path}:2: .*{problem}"):
            read_pairs(path)
    path.write_text(json.dumps(good) + "\n{not json\n")
    with pytest.raises(DataError, match=f"{path}:2: invalid JSON"):
        read_pairs(path)
    with pytest.raises(ValueError, match="no preference split"):
        load_pairs("dev")
    with pytest.raises(PermissionError, match="reserved for grading"):
        load_pairs("heldout")
    assert load_pairs("heldout", allow_heldout=True)


def test_the_dpo_task_check_passes_the_kits_loss_and_fails_one_without_beta(tokenizer, capsys):
    from utils.lab.task_checks import check_dpo_loss

    policy = lora_policy(tokenizer)
    perturb_lora(policy)
    check_dpo_loss(dpo_loss, policy, tokenizer, PAIRS)
    out = capsys.readouterr().out
    assert out.count("[PASS] Task 11.1") == 9 and "[FAIL]" not in out

    def no_beta(pc, pr, rc, rr, beta):
        return dpo_loss(pc, pr, rc, rr, 1.0)

    check_dpo_loss(no_beta, policy, tokenizer, PAIRS)
    assert "[FAIL] Task 11.1" in capsys.readouterr().out


def test_the_reward_task_check_passes_the_kits_reward_and_fails_one_that_skips_normalising(
    capsys,
):
    from utils.data.datasets import get_spec, load_split
    from utils.lab.task_checks import check_reward

    fields = get_spec("news_events").fields
    rows = load_split("news_events", "train")[:4]
    answers = [pair("x", target_json(rows[3]["target"], fields), "no idea")]
    pairs = [{**answers[0], "id": rows[3]["id"]}]
    check_reward(extraction_reward(fields), fields, 0.2, pairs, rows)
    out = capsys.readouterr().out
    assert "[PASS] Task 11.3: max |yours - kit's| on 26 answers" in out and "[FAIL]" not in out

    def raw(completions, target, **_):
        out = []
        for completion, truth in zip(completions, target):
            answer = parse_json_object(completion[-1]["content"])
            right = sum(answer.get(f) == truth.get(f) for f in fields) if answer else 0
            out.append(0.0 if answer is None else 0.2 + 0.8 * right / len(fields))
        return out

    check_reward(raw, fields, 0.2, pairs, rows)
    assert "[FAIL] Task 11.3" in capsys.readouterr().out
