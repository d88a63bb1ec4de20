"""The chat-format JSONL that fine-tuning services and TRL take — one
``{"messages": [{"role": "system"|"user"|"assistant", "content": ...}, ...]}`` per line — with
conversions to and from Alpaca-style rows and the kit's rows, and a validator that reports every
bad line with its line number and every reason, instead of stopping at the first.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from utils.data.jsonl import jsonl_records

ROLES = ("system", "user", "assistant")

MESSAGE_KEYS = {"role", "content", "name", "weight"}  # what hosted services accept per message
LINE_KEYS = {"messages"}


@dataclass(frozen=True)
class Problem:
    """One reason a line is bad: ``line`` (1-based) and a sentence."""

    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


def instruction_chat(
    instruction: str, user: str | list[dict], answer: str | None = None
) -> list[dict]:
    """The kit's one chat layout for a task: the instruction as the system message, the input as
    the user turn (or ``user``'s earlier turns, for a conversation), then — for training — the
    answer as the assistant's. Every lab that trains on chat builds its lines here."""
    turns = [{"role": "user", "content": user}] if isinstance(user, str) else list(user)
    messages = [{"role": "system", "content": instruction}, *turns]
    if answer is not None:
        messages.append({"role": "assistant", "content": answer})
    return messages


def alpaca_to_messages(row: dict) -> dict:
    """``{"instruction", "input", "output"}`` -> a chat line in the kit's layout: with an input,
    the instruction is the system message and the input the user turn; without one, the
    instruction is the user turn."""
    if row.get("input"):
        return {"messages": instruction_chat(row["instruction"], row["input"], row["output"])}
    user = [{"role": "user", "content": row["instruction"]}]
    return {"messages": [*user, {"role": "assistant", "content": row["output"]}]}


def messages_to_alpaca(line: dict) -> dict:
    """A single-turn chat line -> ``{"instruction", "input", "output"}``: the inverse of
    ``alpaca_to_messages`` (a system message becomes the instruction, the user turn the input)."""
    roles = [m["role"] for m in line["messages"]]
    contents = [m["content"] for m in line["messages"]]
    if roles == ["system", "user", "assistant"]:
        return dict(zip(("instruction", "input", "output"), contents, strict=True))
    if roles == ["user", "assistant"]:
        return {"instruction": contents[0], "input": "", "output": contents[1]}
    raise ValueError(f"only [system,] user, assistant converts to Alpaca, got roles {roles}")


def row_to_messages(row: dict, instruction: str) -> dict:
    """A kit row (``text`` + ``label``/``target``/``reference``) -> a chat line in the kit's
    layout (``instruction_chat``): the instruction as the system message, the text as the user
    turn, the answer (a target as JSON) as the assistant's."""
    answer = next(row[k] for k in ("label", "target", "reference") if k in row)
    answer = answer if isinstance(answer, str) else json.dumps(answer, ensure_ascii=False)
    return {"messages": instruction_chat(instruction, row["text"], answer)}


def message_problems(messages: object) -> list[str]:
    """What is wrong with one line's ``messages`` value: its shape, each message's keys, role and
    content, the order of roles (an optional system message first, then user and assistant
    alternating, starting with user), whether the assistant answers at all and whether the line
    ends on an answer. Lab 00's validator and the capstone's loader both use these rules."""
    if not isinstance(messages, list) or not messages:
        return ["'messages' must be a non-empty list"]
    problems: list[str] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            problems.append(f"message {i} is not an object")
            continue
        unknown = sorted(set(message) - MESSAGE_KEYS)
        if unknown:
            problems.append(f"message {i} has unknown keys {unknown}")
        if message.get("role") not in ROLES:
            problems.append(f"message {i} has role {message.get('role')!r}, not one of {ROLES}")
        content = message.get("content")
        if not isinstance(content, str):
            problems.append(f"message {i} content is {type(content).__name__}, not a string")
        elif not content.strip():
            problems.append(f"message {i} ({message.get('role')}) has empty content")
    roles = [m.get("role") if isinstance(m, dict) else None for m in messages]
    if all(role in ROLES for role in roles):  # order is judged only when every role is known
        order = role_order_problems(roles)
        if not order and roles[-1] != "assistant":
            order = [f"the last message is the {roles[-1]}'s: a line must end on an answer"]
        problems += order
    return problems


def role_order_problems(roles: Sequence[str]) -> list[str]:
    """Problems with the order of ``roles``: system only first, then user/assistant taking turns
    from a user, and at least one assistant message."""
    problems = []
    if "system" in roles[1:]:
        problems.append("a system message appears after the first message")
    turns = [r for r in roles if r != "system"]
    expected = ["user", "assistant"] * len(turns)
    if turns != expected[: len(turns)]:
        problems.append("roles must alternate user, assistant, ... starting with user")
    if "assistant" not in turns:
        problems.append("no assistant message: nothing to learn from")
    return problems


def validate_chat_lines(
    lines: Iterable[str], tokenizer=None, max_tokens: int | None = None
) -> list[Problem]:
    """Every problem of every line of a chat JSONL (blank lines are skipped): invalid JSON, a
    line that is not an object, unknown keys, the ``messages`` problems above and — with a
    tokenizer and ``max_tokens`` — a conversation longer than ``max_tokens`` under the chat
    template."""
    problems: list[Problem] = []
    for where, record in jsonl_records(lines, "line"):
        number = int(where.rsplit(":", 1)[1])
        if isinstance(record, Exception):
            problems.append(Problem(number, str(record)))
            continue
        if not isinstance(record, dict):
            problems.append(
                Problem(number, f"a line must be an object, got {type(record).__name__}")
            )
            continue
        unknown = sorted(set(record) - LINE_KEYS)
        reasons = [f"unknown keys {unknown}"] if unknown else []
        reasons += message_problems(record.get("messages"))
        if not reasons and tokenizer is not None and max_tokens is not None:
            length = len(chat_token_ids(tokenizer, record["messages"]))
            if length > max_tokens:
                reasons.append(f"{length} tokens, more than the limit of {max_tokens}")
        problems += [Problem(number, reason) for reason in reasons]
    return problems


def validate_chat_file(path: Path, tokenizer=None, max_tokens: int | None = None) -> list[Problem]:
    """``validate_chat_lines`` on a file."""
    with open(path, encoding="utf-8") as fh:
        return validate_chat_lines(fh, tokenizer, max_tokens)


def chat_token_ids(tokenizer, messages: list[dict]) -> list[int]:
    """The token ids of a conversation under the tokenizer's chat template."""
    return list(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=False))


def chat_text(tokenizer, messages: list[dict]) -> str:
    """Render messages with the model's chat template.

    A conversation that ends with the assistant is a training example: it ends exactly at eos
    (the template's trailing newline is dropped, so TRL does not append a second eos). One that
    ends with the user gets the assistant header, ready for generation.
    """
    if messages[-1]["role"] == "assistant":
        text = tokenizer.apply_chat_template(messages, tokenize=False)
        text = text.rstrip("\n")
        if not text.endswith(tokenizer.eos_token):
            raise ValueError(
                f"chat template does not end the answer with eos {tokenizer.eos_token!r}: "
                f"{text[-40:]!r}"
            )
        return text
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
