"""Chat formatting, the response-only mask and its checks (Lab 03 Part B), and the kit's training
choices on a tiny model."""

import copy

import pytest
import torch
from peft import LoraConfig

from utils.data.datasets import load_split
from utils.eval.metrics import target_json
from utils.train import sft
from utils.train.params import (
    ALL_LINEAR,
    add_peft_lora,
    attach_lora,
    keep_adapters_fp32,
    lora_config_for,
)

FIELDS = ("who", "what", "when", "where")
ROW = {
    "text": "The zoo hired forty nurses on Monday.",
    "target": {"who": "the zoo", "what": "hired forty nurses", "when": "Monday", "where": None},
}


def test_training_text_ends_at_eos_and_prompt_ends_with_the_assistant_header(tokenizer):
    text = sft.chat_text(tokenizer, sft.extraction_messages(ROW, FIELDS))
    assert text.endswith('"where": null}<|im_end|>') and text.count("<|im_end|>") == 3
    prompt = sft.chat_text(tokenizer, sft.extraction_messages(ROW, FIELDS, with_answer=False))
    assert text.startswith(prompt) and prompt.endswith("<|im_start|>assistant\n")
    assert tokenizer.decode(sft.response_template_ids(tokenizer)) == "<|im_start|>assistant\n"


def test_response_mask_keeps_only_the_last_answer(tokenizer):
    header = sft.response_template_ids(tokenizer)
    text = sft.chat_text(tokenizer, sft.extraction_messages(ROW, FIELDS))
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    labels = sft.response_only_labels(ids, header)
    kept = [t for t in labels if t != sft.IGNORE_INDEX]
    assert tokenizer.decode(kept) == target_json(ROW["target"], FIELDS) + "<|im_end|>"
    assert labels[: len(ids) - len(kept)] == [sft.IGNORE_INDEX] * (len(ids) - len(kept))
    twice = ids + ids
    labels_twice = sft.response_only_labels(twice, header)
    assert [t for t in labels_twice if t != sft.IGNORE_INDEX] == kept
    assert sft.response_only_labels(ids[:4], header) == [sft.IGNORE_INDEX] * 4
    shown = sft.show_masked(tokenizer, ids, labels)
    assert shown.endswith(tokenizer.decode(kept)) and shown.startswith("░" * 5)


def test_rows_with_every_label_masked_fail_loudly():
    good, empty = [5, sft.IGNORE_INDEX, 7], [sft.IGNORE_INDEX] * 3
    assert sft.check_labels([good, good]) == {"rows": 2, "label_tokens": 4, "masked_tokens": 2}
    with pytest.raises(ValueError, match=r"1 of 3 rows have every label masked.*first at row 2"):
        sft.check_labels([good, good, empty])


def test_spam_messages_and_settings(tokenizer):
    row = load_split("sms_spam", "train")[0]
    text = sft.chat_text(tokenizer, sft.spam_messages(row))
    assert text.endswith(f"{row['label']}<|im_end|>")
    assert sft.SFTSettings(r=4, alpha=8).to_dict()["target_modules"] == list(ALL_LINEAR)
    with pytest.raises(ValueError, match="r must be >= 1"):
        sft.SFTSettings(r=0)
    with pytest.raises(ValueError, match="target_modules"):
        sft.SFTSettings(target_modules=())


def test_chat_dataset_has_one_text_per_row(tokenizer):
    rows = load_split("news_events", "train")[:5]
    dataset = sft.chat_dataset(rows, tokenizer, lambda r: sft.extraction_messages(r, FIELDS))
    assert dataset.column_names == ["text"] and len(dataset) == 5
    assert all(t.endswith("<|im_end|>") for t in dataset["text"])


def train_losses(tokenizer, checkpointing: bool) -> tuple[list[float], dict]:
    """Three kit training steps of a fresh tiny model: per-step losses and the final LoRA
    weights."""
    import torch

    from utils.runtime.models import build_tiny_model

    model = build_tiny_model(tokenizer, num_layers=2, hidden_size=64, seed=0)
    settings = sft.SFTSettings(
        r=4,
        alpha=8,
        batch_size=2,
        max_steps=3,
        warmup_steps=0,
        max_length=128,
        gradient_checkpointing=checkpointing,
    )
    model = add_peft_lora(model, **settings.lora_arguments())
    rows = load_split("news_events", "train")[:6]
    trainer = sft.build_trainer(
        model,
        tokenizer,
        sft.chat_dataset(rows, tokenizer, lambda r: sft.extraction_messages(r, FIELDS)),
        settings,
    )
    trainer.args.disable_tqdm = True
    trainer.train()
    assert model.get_base_model().is_gradient_checkpointing == checkpointing
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    lora = {name: p.detach().clone() for name, p in model.named_parameters() if "lora_" in name}
    assert lora and all(p.dtype == torch.float32 for p in lora.values())
    return losses, lora


def test_training_without_gradient_checkpointing_gives_the_same_run(tokenizer):
    """The kit trains with checkpointing off on a CPU for speed; the run must be the same one."""
    fast, fast_weights = train_losses(tokenizer, checkpointing=False)
    slow, slow_weights = train_losses(tokenizer, checkpointing=True)
    assert len(fast) == 3 and fast == pytest.approx(slow, rel=1e-5)
    for name, weight in fast_weights.items():
        assert (weight - slow_weights[name]).abs().max() < 1e-5, name


def test_adapters_stay_fp32_on_cpu():
    import torch

    layer = torch.nn.Linear(4, 4).to(torch.bfloat16)
    frozen = torch.nn.Linear(4, 4).to(torch.bfloat16).requires_grad_(False)
    keep_adapters_fp32(torch.nn.ModuleList([layer, frozen]))
    assert layer.weight.dtype == torch.float32 and frozen.weight.dtype == torch.bfloat16


def test_a_written_out_lora_config_attaches_the_same_adapters_as_the_kits(tiny_model):
    written = LoraConfig(
        r=4, lora_alpha=8, lora_dropout=0.0, bias="none",
        target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM",
    )  # fmt: skip
    assert written.to_dict() == lora_config_for(tiny_model, 4, 8, ("q_proj", "v_proj")).to_dict()
    mine = attach_lora(copy.deepcopy(tiny_model), written, seed=5).state_dict()
    kits = add_peft_lora(copy.deepcopy(tiny_model), 4, 8, ("q_proj", "v_proj"), seed=5)
    assert all(torch.equal(mine[k], v) for k, v in kits.state_dict().items())
    wrong = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "qkv"], task_type="CAUSAL_LM")
    with pytest.raises(ValueError, match=r"\['qkv'\] are not linear layers .* it has \['q_proj'"):
        attach_lora(copy.deepcopy(tiny_model), wrong)
    for peft_picks in (None, r".*\.(q_proj|v_proj)"):  # PEFT's default for the model; a regex
        config = LoraConfig(r=4, lora_alpha=8, target_modules=peft_picks, task_type="CAUSAL_LM")
        adapted = attach_lora(copy.deepcopy(tiny_model), config)
        names = {
            n.split(".lora_A")[0].rsplit(".", 1)[-1]
            for n, _ in adapted.named_parameters()
            if "lora_A" in n
        }
        assert names == {"q_proj", "v_proj"}, peft_picks
