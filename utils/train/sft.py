"""Instruction tuning with PEFT + TRL (through Unsloth where installed): chat formatting, the
response-only loss mask and its checks, training, and adapter save/load (LoRA itself is attached
by ``utils.train.params.add_peft_lora``).

Labs 03 (Part B) and 04 use these; they wrap the libraries rather than re-implement them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import torch

from utils.data.chat_format import chat_text, instruction_chat
from utils.eval.metrics import target_json
from utils.runtime.storage import cache_dir
from utils.train.params import ALL_LINEAR, keep_adapters_fp32

IGNORE_INDEX = -100

EXTRACTION_INSTRUCTION = "Extract who, what, when, where as JSON; null if not stated."
SPAM_INSTRUCTION = "Is this SMS spam or ham? Answer in one word."


@dataclass
class SFTSettings:
    """What one LoRA instruction-tuning run uses (saved with its results)."""

    r: int = 16
    alpha: int = 32
    use_rslora: bool = False  # scale the update by alpha / sqrt(r) instead of alpha / r
    target_modules: tuple[str, ...] = ALL_LINEAR
    learning_rate: float = 1e-3
    epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides epochs
    batch_size: int = 8
    max_length: int = 256
    warmup_steps: int = 5
    seed: int = 0
    gradient_checkpointing: bool = False  # off on CPU: faster, and memory allows it at this size
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.r < 1 or self.alpha <= 0:
            raise ValueError(
                f"SFTSettings: r must be >= 1 and alpha > 0, got r={self.r}, alpha={self.alpha}"
            )
        if not self.target_modules:
            raise ValueError("SFTSettings.target_modules must name at least one module")

    def to_dict(self) -> dict:
        """A JSON-friendly copy."""
        return {**asdict(self), "target_modules": list(self.target_modules)}

    def lora_arguments(self) -> dict:
        """The adapter part, as keywords of ``utils.train.params.add_peft_lora``."""
        return {
            "r": self.r,
            "alpha": self.alpha,
            "target_modules": self.target_modules,
            "use_rslora": self.use_rslora,
            "seed": self.seed,
            "gradient_checkpointing": self.gradient_checkpointing,
        }


def extraction_messages(row: dict, fields: Sequence[str], with_answer: bool = True) -> list[dict]:
    """Chat messages for one extraction row: instruction + sentence, and the JSON answer."""
    answer = target_json(row["target"], fields) if with_answer else None
    return instruction_chat(EXTRACTION_INSTRUCTION, row["text"], answer)


def extraction_prompts(tokenizer, rows: Sequence[dict], fields: Sequence[str]) -> list[str]:
    """Generation prompts for extraction rows: the chat template with the assistant header open."""
    return [chat_text(tokenizer, extraction_messages(r, fields, with_answer=False)) for r in rows]


def spam_messages(row: dict, with_answer: bool = True) -> list[dict]:
    """Chat messages for one SMS row: instruction + message, and the one-word label."""
    return instruction_chat(SPAM_INSTRUCTION, row["text"], row["label"] if with_answer else None)


def chat_dataset(rows: Sequence[dict], tokenizer, to_messages: Callable[[dict], list[dict]]):
    """A ``datasets.Dataset`` with one ``text`` column of chat-formatted training examples."""
    from datasets import Dataset

    return Dataset.from_dict({"text": [chat_text(tokenizer, to_messages(row)) for row in rows]})


def response_template_ids(tokenizer) -> list[int]:
    """Token ids of the assistant header (``<|im_start|>assistant\\n`` for SmolLM2/ChatML)."""
    probe = [{"role": "user", "content": "x"}]
    with_header = tokenizer.apply_chat_template(probe, tokenize=False, add_generation_prompt=True)
    without = tokenizer.apply_chat_template(probe, tokenize=False)
    header = (
        with_header[len(without) :]
        if with_header.startswith(without)
        else "<|im_start|>assistant\n"
    )
    return tokenizer(header, add_special_tokens=False)["input_ids"]


def find_subsequence(sequence: Sequence[int], pattern: Sequence[int], start: int = 0) -> int:
    """Index of the first occurrence of ``pattern`` in ``sequence`` at or after ``start``, or -1."""
    n = len(pattern)
    for i in range(start, len(sequence) - n + 1):
        if list(sequence[i : i + n]) == list(pattern):
            return i
    return -1


def response_only_labels(input_ids: Sequence[int], header_ids: Sequence[int]) -> list[int]:
    """Labels that keep only the last assistant answer (after the last header); the rest is -100."""
    last, position = -1, find_subsequence(input_ids, header_ids)
    while position >= 0:
        last = position
        position = find_subsequence(input_ids, header_ids, position + 1)
    if last < 0:
        return [IGNORE_INDEX] * len(input_ids)
    begin = last + len(header_ids)
    return [IGNORE_INDEX] * begin + list(input_ids[begin:])


def check_labels(labels_per_row: Sequence[Sequence[int]], what: str = "training set") -> dict:
    """Fail loudly if any row has no label left; return counts of kept and masked tokens."""
    empty = [i for i, labels in enumerate(labels_per_row) if all(t == IGNORE_INDEX for t in labels)]
    if empty:
        raise ValueError(
            f"{what}: {len(empty)} of {len(labels_per_row)} rows have every label masked (-100), "
            f"first at row {empty[0]}: the response template was not found (wrong chat template?) "
            "or the answer was cut off by max_length. Such rows teach nothing."
        )
    kept = sum(sum(t != IGNORE_INDEX for t in labels) for labels in labels_per_row)
    total = sum(len(labels) for labels in labels_per_row)
    return {"rows": len(labels_per_row), "label_tokens": kept, "masked_tokens": total - kept}


def show_masked(
    tokenizer, input_ids: Sequence[int], labels: Sequence[int], hidden: str = "░"
) -> str:
    """The labels decoded, one ``hidden`` block per masked (-100) token: what the loss sees."""
    parts = [
        tokenizer.decode([label]) if label != IGNORE_INDEX else hidden
        for _, label in zip(input_ids, labels, strict=True)
    ]
    return "".join(parts)


def training_precision(model) -> dict:
    """TRL mixed-precision flags from the weights' dtype: fp32 on CPU, fp16 on a T4, bf16 on an A100
    (the dtype was chosen by compute capability when the model was loaded)."""
    dtype = next(model.parameters()).dtype
    on_gpu = next(model.parameters()).is_cuda
    return {"fp16": on_gpu and dtype == torch.float16, "bf16": on_gpu and dtype == torch.bfloat16}


def trainer_defaults(model) -> dict:
    """Trainer arguments every kit run shares: no checkpoints, reporting or weight decay, AdamW,
    a log line per step, a progress bar, precision from the weights."""
    return {
        "output_dir": str(scratch_dir()),
        "weight_decay": 0.0,
        "optim": "adamw_torch",
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": "none",
        "dataloader_num_workers": 0,
        "disable_tqdm": False,
        **training_precision(model),
    }


def sft_config(model, settings: SFTSettings):
    """TRL's ``SFTConfig`` for ``settings`` (the kit's ``trainer_defaults`` plus the run's own)."""
    from trl import SFTConfig

    return SFTConfig(
        **trainer_defaults(model),
        dataset_text_field="text",
        max_length=settings.max_length,
        per_device_train_batch_size=settings.batch_size,
        per_device_eval_batch_size=settings.batch_size,
        num_train_epochs=settings.epochs,
        max_steps=settings.max_steps,
        learning_rate=settings.learning_rate,
        lr_scheduler_type="linear",
        warmup_steps=settings.warmup_steps,
        seed=settings.seed,
        data_seed=settings.seed,
        packing=False,
        gradient_checkpointing=settings.gradient_checkpointing,
    )


def build_trainer(model, tokenizer, train_dataset, settings: SFTSettings, eval_dataset=None):
    """An ``SFTTrainer`` with the loss on the assistant answers only, labels checked."""
    from trl import SFTTrainer

    trainer = SFTTrainer(
        model=model,
        args=sft_config(model, settings),
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
    )
    trainer = mask_prompts(trainer, tokenizer)
    keep_adapters_fp32(trainer.model)
    return trainer


def mask_prompts(trainer, tokenizer):
    """Loss on the answers only: Unsloth's ``train_on_responses_only`` where installed (it reads
    the user and assistant headers from the model's chat template, ChatML or Llama 3 alike), else
    the kit's own ``response_only_labels``; then check no row lost every label."""
    try:
        from unsloth.chat_templates import train_on_responses_only
    except ImportError:
        train_on_responses_only = None
    if train_on_responses_only is not None:
        trainer = train_on_responses_only(trainer)
    else:
        ids = response_template_ids(tokenizer)
        trainer.train_dataset = trainer.train_dataset.map(
            lambda row: {"labels": response_only_labels(row["input_ids"], ids)}
        )
    check_labels(trainer.train_dataset["labels"])
    return trainer


def scratch_dir():
    """The trainers' output folder (nothing is saved there: no checkpoints)."""

    path = cache_dir() / "trainer-scratch"
    path.mkdir(parents=True, exist_ok=True)
    return path


def train(trainer) -> dict:
    """Run ``trainer.train()``; return the loss history and wall time."""
    start = time.perf_counter()
    output = trainer.train()
    seconds = time.perf_counter() - start
    losses = [(log["step"], log["loss"]) for log in trainer.state.log_history if "loss" in log]
    return {
        "steps": [s for s, _ in losses],
        "loss": [v for _, v in losses],
        "seconds": seconds,
        "train_loss": output.training_loss,
        "global_steps": trainer.state.global_step,
    }


def train_choosing_epoch(trainer, validation_score: Callable[[object], float]) -> dict:
    """``train`` that scores the validation split after every epoch (``validation_score(model)``,
    higher is better) and ends with the trainable weights of the best epoch (the first one on a
    tie). Adds ``epoch_scores`` and ``best_epoch`` (1-based) to the history."""
    from transformers import TrainerCallback

    scores: list[float] = []
    snapshots: list[dict] = []

    class ScoreEachEpoch(TrainerCallback):
        def on_epoch_end(self, args, state, control, model=None, **kwargs):
            model.eval()
            with torch.no_grad():
                scores.append(float(validation_score(model)))
            snapshots.append(
                {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
            )
            model.train()

    trainer.add_callback(ScoreEachEpoch())
    history = train(trainer)
    best = max(range(len(scores)), key=scores.__getitem__) if scores else None
    if best is not None:
        params = dict(trainer.model.named_parameters())
        with torch.no_grad():
            for name, value in snapshots[best].items():
                params[name].copy_(value)
    trainer.model.eval()
    return {**history, "epoch_scores": scores, "best_epoch": None if best is None else best + 1}
