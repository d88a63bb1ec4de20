"""General ability, measured with EleutherAI's LM Evaluation Harness, offline.

The kit ships small subsets of real benchmarks as harness tasks: ``data/benchmarks/<name>/``
holds ``items.jsonl`` and ``task.yaml`` (the harness's own prompt for that benchmark), read with
the ``json`` dataset builder, so nothing is downloaded. ``run_harness`` scores a model object with
the harness (``HFLM``); ``benchmark_requests`` gives the exact (context, continuation) pairs it
scores; ``score_requests`` computes the same log-likelihoods faster (the same tokens, what the
harness repeats run once), which is what comparing many models needs on a CPU.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from tqdm.auto import tqdm

from utils.data.batching import pad_batch
from utils.eval.metrics import decoder_and_head, prefix_cache, row_logprobs
from utils.runtime.storage import data_dir


@dataclass(frozen=True)
class Benchmark:
    """One shipped subset: what it tests, and the metric the field reports for it."""

    name: str
    title: str
    tests: str
    metric: str  # "acc" or "acc_norm": the one published results quote for this benchmark


BENCHMARKS = {
    b.name: b
    for b in (
        Benchmark("blimp", "BLiMP (4 phenomena)", "English grammar, minimal pairs", "acc"),
        Benchmark("piqa", "PIQA", "physical common sense", "acc_norm"),
        Benchmark("hellaswag", "HellaSwag", "common-sense sentence endings", "acc_norm"),
        Benchmark("truthfulqa_mc1", "TruthfulQA MC1", "resisting common misconceptions", "acc"),
        Benchmark("xcopa_it", "XCOPA (Italian)", "causal common sense, not English", "acc"),
    )
}


def benchmark_dir(name: str) -> Path:
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; the kit ships: {sorted(BENCHMARKS)}")
    return data_dir() / "benchmarks" / name


def task_config(name: str, **changes) -> dict:
    """The benchmark's harness task (its ``task.yaml``) with the data path made absolute;
    ``changes`` replace fields (another ``doc_to_text`` to try a prompt template)."""
    folder = benchmark_dir(name)
    config = yaml.safe_load((folder / "task.yaml").read_text(encoding="utf-8"))
    files = config["dataset_kwargs"]["data_files"]
    config["dataset_kwargs"]["data_files"] = {split: str(folder / f) for split, f in files.items()}
    for key, value in changes.items():
        if key not in config and key != "task":
            raise KeyError(f"{name}'s task has no field {key!r}: {sorted(config)}")
        config[key] = value
    return config


def chance_level(name: str, items: Sequence[dict]) -> float:
    """Expected accuracy of a uniform guess on these items (1 / choices, averaged)."""
    return sum(1 / len(item["continuations"]) for item in items) / len(items)


def _quiet_harness() -> None:
    """The harness warns once per task about defaults the kit's task files leave implicit."""
    for name in ("lm_eval", "lm-eval"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _task_manager():
    """The harness's task registry without its thousands of built-in task files (indexing them
    takes ~10 s): the kit's tasks come as configs."""
    from lm_eval.tasks import TaskManager

    _quiet_harness()
    return TaskManager(include_defaults=False)


def _tasks(configs: Sequence[dict]) -> dict:
    from lm_eval.tasks import get_task_dict

    return get_task_dict(list(configs), _task_manager())


def benchmark_requests(config: dict | str, limit: int | None = None) -> list[dict]:
    """The items the harness scores for a task (a ``task_config`` or a benchmark name): for each,
    its id, the context, the continuations (the target delimiter included), the choices (without
    it) and the gold index —
    the harness's own requests, built by its task object."""
    config = task_config(config) if isinstance(config, str) else config
    task = next(iter(_tasks([config]).values()))
    task.build_all_requests(limit=limit, rank=0, world_size=1)
    items: dict[int, dict] = {}
    for instance in task.instances:
        doc_id = instance.doc_id
        item = items.setdefault(
            doc_id,
            {
                "id": instance.doc.get("id", doc_id),
                "context": instance.args[0],
                "continuations": [],
                "choices": list(task.doc_to_choice(instance.doc)),
                "gold": int(task.doc_to_target(instance.doc)),
            },
        )
        item["continuations"].append(instance.args[1])
    return [items[k] for k in sorted(items)]


def harness_model(model, tokenizer, batch_size: int = 16):
    """The harness's Hugging Face wrapper around a model already in memory (no hub, no copy)."""
    from lm_eval.models.huggingface import HFLM

    _quiet_harness()
    return HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size)


def run_harness(
    model, tokenizer, configs: Sequence[dict], limit: int | None = None, batch_size: int = 16
) -> dict[str, dict]:
    """Score ``configs`` (``task_config`` dicts) with the harness. Per task: its metrics and, per
    item, the log-likelihood of each choice, the gold index and the harness's 0/1 verdicts."""
    from lm_eval import simple_evaluate

    _quiet_harness()
    out = simple_evaluate(
        model=harness_model(model, tokenizer, batch_size),
        tasks=list(configs),
        limit=limit,
        log_samples=True,
        bootstrap_iters=0,
        task_manager=_task_manager(),
        verbosity="ERROR",
    )
    results = {}
    for config in configs:
        name = config["task"]
        samples = sorted(out["samples"][name], key=lambda s: s["doc_id"])
        metrics = {
            key.split(",")[0]: value
            for key, value in out["results"][name].items()
            if key.split(",")[0] in ("acc", "acc_norm")
        }
        results[name] = {
            **metrics,
            "items": [
                {
                    "id": s["doc"].get("id", s["doc_id"]),
                    "gold": int(s["target"]),
                    "loglikelihoods": [float(ll) for ll, _ in s["filtered_resps"]],
                    **{k: float(s[k]) for k in metrics},
                }
                for s in samples
            ],
        }
    return results


def prefix_token_id(tokenizer) -> int:
    """What the harness puts before an empty context: the BOS token, or else end-of-text."""
    return tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id


def encode_pair(tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """Token ids of a context and its continuation exactly as the harness makes them: the pair is
    encoded as one text and split where the context's own tokens end (so a word that straddles the
    join is tokenized as in running text); the context's trailing spaces move to the
    continuation; an empty context is the prefix token alone."""

    def encode(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    if context == "":
        return [prefix_token_id(tokenizer)], encode(continuation)
    spaces = len(context) - len(context.rstrip())
    if spaces:
        context, continuation = context[:-spaces], context[-spaces:] + continuation
    whole, context_ids = encode(context + continuation), encode(context)
    return context_ids, whole[len(context_ids) :]


SHARED_PREFIX_MIN = 16  # tokens every item's context starts with (a few-shot preamble): run once
OWN_CONTEXT_MIN = 48  # an item's own context from this long runs once for all its choices
ROWS_PER_PASS = 16  # short items' choices scored together in one forward pass


def common_prefix(sequences: Sequence[Sequence[int]]) -> list[int]:
    """The longest run of tokens every sequence starts with."""
    if not sequences:
        return []
    first, n = sequences[0], min(map(len, sequences))
    for seq in sequences[1:]:
        n = next((i for i in range(n) if seq[i] != first[i]), n)
    return list(first[:n])


@torch.inference_mode()
def score_requests(
    model, tokenizer, items: Sequence[dict], progress: bool = True, rows_per_pass=ROWS_PER_PASS
) -> list[list[float]]:
    """log p(continuation | context) of every choice of every item, as the harness computes it
    (the same token ids), with the work the harness repeats done once — a fraction of its time
    on a CPU, the same numbers up to float rounding:

    - the context every item starts with (a few-shot preamble, a judge's instructions) runs once;
    - an item with a long context of its own runs it once for all its choices;
    - the other items' choices run as whole rows, ``rows_per_pass`` of them per forward pass
      (sorted by length, so little is padded);
    - only the continuation positions go through the LM head."""
    model.eval()
    decoder, _ = decoder_and_head(model)
    pad = tokenizer.pad_token_id
    encoded = [
        [encode_pair(tokenizer, it["context"], c) for c in it["continuations"]] for it in items
    ]
    contexts = [ctx for pairs in encoded for ctx, _ in pairs]
    shared = common_prefix(contexts)[: min(map(len, contexts), default=1) - 1]
    if len(shared) < SHARED_PREFIX_MIN:
        shared = []
    cache, start = prefix_cache(decoder, shared), len(shared)
    scores: list[list[float]] = [[0.0] * len(pairs) for pairs in encoded]
    long_items, rows = [], []  # rows: (item, choice, tokens after the shared prefix, targets)
    for i, pairs in enumerate(encoded):
        context = pairs[0][0]
        one_context = all(ctx == context for ctx, _ in pairs)
        if one_context and len(pairs) > 1 and len(context) - 1 - start >= OWN_CONTEXT_MIN:
            long_items.append(i)
            continue
        for k, (ctx, cont) in enumerate(pairs):
            targets = [(len(ctx) - 1 - start + j, t) for j, t in enumerate(cont)]
            rows.append((i, k, (ctx + cont[:-1])[start:], targets))
    rows.sort(key=lambda row: len(row[2]))
    passes = [rows[n : n + rows_per_pass] for n in range(0, len(rows), rows_per_pass)]
    bar = tqdm(
        total=len(long_items) + len(passes), desc="scoring", disable=not progress, leave=False
    )
    for i in long_items:  # the shared prefix, then the item's own context, each run once
        context = encoded[i][0][0]
        own = prefix_cache(decoder, context[start:-1], past=cache)
        choices = [context[-1:] + cont[:-1] for _, cont in encoded[i]]
        groups = [[[(j, t) for j, t in enumerate(cont)]] for _, cont in encoded[i]]
        values = row_logprobs(model, choices, groups, context[:-1], own, pad)
        scores[i] = [v[0] for v in values]
        bar.update()
    for chunk in passes:
        values = row_logprobs(
            model, [r[2] for r in chunk], [[r[3]] for r in chunk], shared, cache, pad
        )
        for (i, k, _, _), v in zip(chunk, values, strict=True):
            scores[i][k] = v[0]
        bar.update()
    bar.close()
    return scores


@torch.inference_mode()
def score_requests_full(
    model, tokenizer, items: Sequence[dict], progress: bool = True, rows_per_pass=ROWS_PER_PASS
) -> list[list[float]]:
    """The same log-likelihoods as ``score_requests`` (the same token ids), each choice run as
    a whole sequence through the model's own forward: slower, but a soft prompt, which PEFT
    prepends in that forward and the fast path's bare decoder never sees, takes part. Choices
    run ``rows_per_pass`` to a pass, padded on the right, and only positions counted from each
    row's end are read, so prepended virtual tokens shift nothing."""
    model.eval()
    device = next(model.parameters()).device
    rows = []  # (item, choice, context + continuation, continuation)
    for i, item in enumerate(items):
        for k, continuation in enumerate(item["continuations"]):
            context_ids, continuation_ids = encode_pair(tokenizer, item["context"], continuation)
            rows.append((i, k, context_ids + continuation_ids, continuation_ids))
    rows.sort(key=lambda row: len(row[2]))
    scores: list[list[float]] = [[0.0] * len(item["continuations"]) for item in items]
    passes = [rows[n : n + rows_per_pass] for n in range(0, len(rows), rows_per_pass)]
    for chunk in tqdm(passes, desc="scoring", disable=not progress, leave=False):
        ids, mask = pad_batch([row[2] for row in chunk], tokenizer.pad_token_id)  # on the right
        width = ids.shape[1]
        # counted from the end: the last context position predicts the first continuation token
        back = [width - len(tokens) + len(cont) + 1 for _, _, tokens, cont in chunk]
        keep = max(back)
        logits = model(
            input_ids=ids.to(device), attention_mask=mask.to(device), logits_to_keep=keep
        ).logits
        for r, (i, k, _, cont) in enumerate(chunk):
            first = keep - back[r]
            logprobs = torch.log_softmax(logits[r, first : first + len(cont)].float(), dim=-1)
            targets = torch.tensor(cont, device=logprobs.device)
            scores[i][k] = float(logprobs.gather(1, targets[:, None]).sum())
    return scores


def verdicts(items: Sequence[dict], loglikelihoods: Sequence[Sequence[float]]) -> dict:
    """Per item 0/1 for ``acc`` (the likeliest choice is gold) and ``acc_norm`` (the likeliest per
    character of the choice, as the harness), and their means."""
    acc, acc_norm = [], []
    for item, lls in zip(items, loglikelihoods, strict=True):
        per_char = [ll / len(c) for ll, c in zip(lls, item["choices"], strict=True)]
        acc.append(float(max(range(len(lls)), key=lls.__getitem__) == item["gold"]))
        acc_norm.append(float(max(range(len(lls)), key=per_char.__getitem__) == item["gold"]))
    return {
        "acc": sum(acc) / len(acc),
        "acc_norm": sum(acc_norm) / len(acc_norm),
        "items": {"acc": acc, "acc_norm": acc_norm},
    }


GENERAL_PER_BENCHMARK = 20  # the general set of Labs 06 and 09: 20 items x 5 benchmarks = 100
GENERAL_MAX_PER_BENCHMARK = 40  # the most a capstone may claim (TruthfulQA's subset has 50)


def general_set(per_benchmark: int = GENERAL_PER_BENCHMARK) -> dict[str, list[dict]]:
    """A fixed general-ability set: the first ``per_benchmark`` items of every shipped benchmark
    (each as ``benchmark_requests`` gives them), the same for every model scored on it."""
    if isinstance(per_benchmark, bool) or not isinstance(per_benchmark, int) or per_benchmark < 1:
        raise ValueError(f"per_benchmark must be a positive integer, got {per_benchmark!r}")
    return {name: benchmark_requests(name, per_benchmark) for name in BENCHMARKS}


def general_verdicts(
    model,
    tokenizer,
    items: dict[str, list[dict]],
    loglikelihoods: dict | None = None,
    full_forward: bool = False,
) -> dict[str, list[float]]:
    """Per benchmark, each item's 0/1 on the benchmark's headline metric (``BENCHMARKS``);
    ``loglikelihoods`` (per benchmark, from ``score_requests``) saves scoring them again;
    ``full_forward`` scores through the model's own forward (``score_requests_full``: a model
    with a soft prompt attached)."""
    scorer = score_requests_full if full_forward else score_requests
    verdicts_by_name = {}
    for name, requests in items.items():
        lls = (loglikelihoods or {}).get(name) or scorer(model, tokenizer, requests)
        metric = BENCHMARKS[name].metric
        verdicts_by_name[name] = verdicts(requests, lls)["items"][metric]
    return verdicts_by_name


def pooled(verdicts_by_name: dict[str, list[float]]) -> list[float]:
    """Every item's verdict in one list, benchmarks in the kit's order (for a mean or a paired
    bootstrap over items)."""
    return [v for name in BENCHMARKS if name in verdicts_by_name for v in verdicts_by_name[name]]


def word_ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    """The text's runs of ``n`` words, lower-cased, punctuation dropped."""
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def item_ngrams(item: dict, n: int) -> set[tuple[str, ...]]:
    """The runs of ``n`` words in a benchmark item: its context and every choice."""
    return word_ngrams(" ".join([item["context"], *item["choices"]]), n)


def ngram_index(training_texts: Sequence[str], n: int) -> set[tuple[str, ...]]:
    """Every run of ``n`` words in the training texts, built once for all benchmarks."""
    seen: set[tuple[str, ...]] = set()
    for text in training_texts:
        seen |= word_ngrams(text, n)
    return seen


def contamination(
    index: set[tuple[str, ...]], items: Sequence[dict], n: int = 8
) -> list[tuple[int, tuple[str, ...]]]:
    """Benchmark items that share a run of ``n`` words with the training texts (``ngram_index``
    of them; the overlap check of GPT-3's contamination study, which used 13 words on far longer
    texts): each as (item index, one shared run)."""
    hits = []
    for i, item in enumerate(items):
        shared = sorted(item_ngrams(item, n) & index)
        if shared:
            hits.append((i, shared[0]))
    return hits
