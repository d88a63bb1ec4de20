"""In-context learning prompts: formats, demonstration choice, and prompts split into a shared
prefix (instruction + demonstrations, identical for every query) and a per-query suffix."""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class PromptFormat:
    """How a classification prompt is written.

    ``label_words`` maps each dataset label to the word the model should produce (label-word choice
    is itself an experiment in Lab 01). With ``chat=True`` the tokenizer's chat template is used:
    the instruction becomes the system message and each demonstration a user/assistant turn.
    """

    instruction: str | None = None
    input_prefix: str = "Input: "
    output_prefix: str = "Output:"
    separator: str = "\n\n"
    chat: bool = False
    label_words: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        words = list(self.label_words.values())
        if len(set(words)) != len(words):
            raise ValueError(f"PromptFormat.label_words must be distinct, got {self.label_words}")

    def word(self, label: str) -> str:
        """The word shown to the model for ``label``."""
        return self.label_words.get(label, label)


DATASET_FORMATS = {
    "sms_spam": PromptFormat(
        instruction=(
            "Classify each SMS message as spam or ham (ham means a normal, wanted message)."
        ),
        input_prefix="Message: ",
        output_prefix="Label:",
    ),
    "animal_diet": PromptFormat(
        instruction="Classify each animal by its diet: carnivore, herbivore or omnivore.",
        input_prefix="Animal: ",
        output_prefix="Diet:",
    ),
}  # each dataset's default instruction format (Lab 01, and the grader's zero-shot "before")


def format_to_dict(fmt: PromptFormat) -> dict:
    """A PromptFormat as plain JSON-ready values (for a Lab 01 submission)."""
    return asdict(fmt)


@dataclass(frozen=True)
class Prompt:
    """A prompt as ``prefix + suffix``; candidates are scored as continuations of the suffix."""

    prefix: str
    suffix: str
    candidates: tuple[str, ...]

    @property
    def text(self) -> str:
        return self.prefix + self.suffix


def choose_demos(
    rows: list[dict], k: int, seed: int, labels: tuple[str, ...] | None = None
) -> list[dict]:
    """Pick ``k`` demonstrations with a seeded RNG, covering labels round-robin when ``labels``
    given."""
    rng = random.Random(seed)
    if k <= 0:
        return []
    if not labels:
        return rng.sample(rows, k)
    pools = {
        label: rng.sample(
            [r for r in rows if r["label"] == label], sum(1 for r in rows if r["label"] == label)
        )
        for label in labels
    }
    order = list(labels)
    rng.shuffle(order)
    demos = [pools[order[i % len(order)]][i // len(order)] for i in range(k)]
    rng.shuffle(demos)
    return demos


def render_raw(fmt: PromptFormat, demos: list[dict], query: str) -> tuple[str, str]:
    """Plain-text prompt: optional instruction, the demonstrations, then the query."""
    parts = [fmt.instruction] if fmt.instruction else []
    parts += [
        f"{fmt.input_prefix}{d['text']}\n{fmt.output_prefix} {fmt.word(d['label'])}" for d in demos
    ]
    prefix = fmt.separator.join(parts) + (fmt.separator if parts else "")
    return prefix, f"{fmt.input_prefix}{query}\n{fmt.output_prefix}"


def render_chat(fmt: PromptFormat, demos: list[dict], query: str, tokenizer) -> tuple[str, str]:
    """Chat-template prompt: the instruction as system message, demonstrations as earlier turns."""
    messages = [{"role": "system", "content": fmt.instruction}] if fmt.instruction else []
    for d in demos:
        messages += [
            {"role": "user", "content": f"{fmt.input_prefix}{d['text']}"},
            {"role": "assistant", "content": fmt.word(d["label"])},
        ]
    full = tokenizer.apply_chat_template(
        [*messages, {"role": "user", "content": f"{fmt.input_prefix}{query}"}],
        tokenize=False,
        add_generation_prompt=True,
    )
    prefix = tokenizer.apply_chat_template(messages, tokenize=False) if messages else ""
    if not full.startswith(prefix):  # a template that rewrites earlier turns: no shared prefix
        prefix = ""
    return prefix, full[len(prefix) :]


def build_prompt(
    fmt: PromptFormat, demos: list[dict], query: str, labels: tuple[str, ...], tokenizer=None
) -> Prompt:
    """A Prompt for ``query`` with one candidate continuation per label (in ``labels`` order)."""
    if fmt.chat:
        if tokenizer is None:
            raise ValueError("a chat-format prompt needs the tokenizer (for its chat template)")
        prefix, suffix = render_chat(fmt, demos, query, tokenizer)
        candidates = tuple(fmt.word(label) for label in labels)
    else:
        prefix, suffix = render_raw(fmt, demos, query)
        candidates = tuple(" " + fmt.word(label) for label in labels)
    return Prompt(prefix, suffix, candidates)
