"""Score one submission on the held-out split with the lab's own evaluation function, on the one
loaded base model. Each artifact kind is put on the base (an adapter merged in, a classifier's
head and tensors loaded, a prompt built), evaluated, and the base restored bit for bit.

Artifact kinds (``rubric.artifact``):
- ``peft_adapter`` (Labs 03B, 04, 05): a PEFT LoRA adapter, merged into the base;
- ``classifier`` (Labs 02, 03A): a new head plus trained base tensors or from-scratch LoRA pairs;
- ``prompt_spec`` (Lab 01): a prompt format and demonstration ids, no weights at all;
- ``preference_adapter`` (Lab 11): a PEFT LoRA adapter, merged into the base and scored on
  held-out preference pairs against a reference policy (forward passes only, no sampling);
- ``pruned_student`` (Lab 10): a recipe naming the decoder blocks to remove (JSON data, never
  code) and a PEFT LoRA adapter trained on the base without them: the grader removes the blocks
  from its own base, merges the adapter, scores it, and puts every block back.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import re
import tempfile
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import torch

from grading.peft_types import MERGEABLE, adapter_details, check_adapter, config_to_load
from grading.rubric import Rubric
from grading.validate import (
    SubmissionError,
    check_classifier,
    check_prompt_spec,
    with_saved_rows_added,
)
from utils.data.batching import tokenize_texts
from utils.data.corpus import (
    TEST_FRACTIONS,
    Document,
    load_corpus,
    pack_blocks,
    split_documents,
    tokenize_documents,
)
from utils.data.datasets import get_spec, load_split, read_split_file
from utils.data.preference_pairs import HELDOUT, load_pairs, read_pairs
from utils.data.prompting import DATASET_FORMATS, PromptFormat, build_prompt
from utils.eval.icl import evaluate_prompt
from utils.eval.label_task import evaluate_labels
from utils.eval.metrics import (
    block_perplexity,
    classifier_accuracy,
    evaluate_extraction,
    majority_share,
)
from utils.runtime.models import model_fingerprint
from utils.runtime.storage import cache_dir, write_json_atomic
from utils.train.classifier import (
    apply_classifier,
    cache_hidden_states,
    classifier_logits,
    logits_from_hidden,
    replace_head,
)
from utils.train.params import is_linear
from utils.train.preference import logp_preferences, pair_logps, pair_tokens, train_policy
from utils.train.pruning import blocks_removed, decoder_blocks, read_block_recipe
from utils.train.quantization import nf4_roundtrip_linears
from utils.train.sft import extraction_prompts

CORPUS = "corpus"  # rubric.dataset of the continual pre-training lab: domain + general documents
PAIRS = "preference_pairs"  # rubric.dataset of the preference lab: the bundled preference pairs
POLICY_TASK = "news_events"  # the task the kit's SFT policy (the pairs' sampler) is trained on


def load_heldout(rubric: Rubric, path: Path | None = None) -> tuple[list[dict], str]:
    """Held-out rows (the kit's ``heldout`` split, or an instructor's JSONL file) and their hash.

    For the corpus lab the rows are documents ``{"id", "text", "corpus": "domain" | "general"}``;
    for the preference lab, pairs ``{"id", "prompt", "chosen", "rejected"}``."""
    if rubric.dataset == CORPUS:
        rows = corpus_heldout(path)
    elif rubric.dataset == PAIRS:
        rows = read_pairs(Path(path)) if path else load_pairs(HELDOUT, allow_heldout=True)
    elif path:
        rows = read_split_file(Path(path), get_spec(rubric.dataset))
    else:
        rows = load_split(rubric.dataset, "heldout", allow_heldout=True)
    return rows, rows_digest(rows)


def rows_digest(rows: list[dict]) -> str:
    """A short hash of evaluation rows (the key of the base score's cache)."""
    keys = ("id", "prompt", "chosen", "rejected") if rows and "chosen" in rows[0] else None
    return hashlib.sha256(
        json.dumps(
            [[r[k] for k in keys] for r in rows]
            if keys
            else [
                [r["id"], r["text"], r.get("label"), r.get("target"), r.get("corpus")] for r in rows
            ]
        ).encode()
    ).hexdigest()[:16]


TRIAL_ROWS = 2  # a student's pre-check runs the artifact on this many public examples


def trial_rows(rubric: Rubric) -> tuple[list[dict], Rubric]:
    """A few **public** examples (the dataset's validation split; for the corpus lab, test
    documents and one block) to run a submission on in a student's pre-check: the whole grading
    path, never the held-out split. Returns the rows and the rubric sized to them."""
    if rubric.dataset == CORPUS:
        rows = []
        for corpus, test_fraction in TEST_FRACTIONS.items():
            docs = split_documents(load_corpus(corpus), test_fraction=test_fraction)["test"]
            rows += [{"id": d.doc_id, "text": d.text, "corpus": corpus} for d in docs]
        return rows, replace(rubric, max_blocks=1)
    if rubric.dataset == PAIRS:  # read against the base: a pre-check trains no reference
        return load_pairs("validation")[:TRIAL_ROWS], replace(rubric, reference_policy="base")
    return load_split(rubric.dataset, "validation")[:TRIAL_ROWS], rubric


def corpus_heldout(path: Path | None) -> list[dict]:
    """The corpus lab's held-out documents: the kit's ``heldout`` share of both corpora, or a JSONL
    file of ``{"id", "text", "corpus"}`` rows (a bad row is named)."""

    if path is None:
        rows = []
        for (
            corpus,
            test_fraction,
        ) in TEST_FRACTIONS.items():  # the grading share next to Lab 05's test share
            docs = split_documents(
                load_corpus(corpus), test_fraction=test_fraction, allow_heldout=True
            )["heldout"]
            rows += [{"id": d.doc_id, "text": d.text, "corpus": corpus} for d in docs]
        return rows
    rows = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        row = json.loads(line)
        if not (
            isinstance(row, dict)
            and isinstance(row.get("id"), str)
            and isinstance(row.get("text"), str)
            and row.get("corpus") in ("domain", "general")
        ):
            raise ValueError(
                f'{path}, line {number}: expected {{"id": str, "text": str, '
                f'"corpus": "domain" | "general"}}'
            )
        rows.append(row)
    return rows


class LinearShapes(dict):
    """Module name -> (out_features, in_features); ``conv1d``: some are GPT-2-style ``Conv1D``."""

    conv1d = False


def linear_shapes(model) -> LinearShapes:
    """Module name -> (out_features, in_features) for every linear layer of the base model
    (``nn.Linear``, and GPT-2's ``Conv1D``, whose weight is stored as in x out)."""
    shapes = LinearShapes()
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.Linear):
            shapes[name] = (m.out_features, m.in_features)
        elif is_linear(m):
            shapes[name], shapes.conv1d = tuple(m.weight.shape[::-1]), True
    return shapes


def param_shapes(model) -> dict[str, tuple[int, ...]]:
    """Parameter name -> shape, tied parameters under each of their names."""
    return {name: tuple(p.shape) for name, p in model.named_parameters(remove_duplicate=False)}


def plain_attributes(model) -> dict:
    """The model's own attributes that are neither submodules nor parameter/buffer tables."""
    return {
        k: v
        for k, v in vars(model).items()
        if not k.startswith(("_modules", "_parameters", "_buffers"))
        and not isinstance(v, torch.nn.Module)
    }


CONFIG_OBJECTS = ("config", "generation_config")  # shared with the submodules: kept, not copied


def config_state(model) -> dict:
    """Deep copies of what a submission could change besides modules and weights: the model's
    config and generation config, and its plain attributes (PEFT sets some on the base); and the
    config objects themselves, which the blocks and a caller may hold."""
    generation = getattr(model, "generation_config", None)
    state = copy.deepcopy(
        {
            "config": vars(model.config),
            "generation_config": vars(generation) if generation is not None else {},
            "attributes": {
                k: v for k, v in plain_attributes(model).items() if k not in CONFIG_OBJECTS
            },
        }
    )
    state["objects"] = {key: getattr(model, key, None) for key in CONFIG_OBJECTS}
    return state


def restore_config_state(model, state: dict) -> None:
    """Put back what ``config_state`` saved: the same config objects, their contents in place."""
    for key, original in state["objects"].items():
        if original is not None:
            vars(model)[key] = original
    vars(model.config).clear()
    vars(model.config).update(copy.deepcopy(state["config"]))
    if getattr(model, "generation_config", None) is not None:
        vars(model.generation_config).clear()
        vars(model.generation_config).update(copy.deepcopy(state["generation_config"]))
    attributes = {k for k in plain_attributes(model) if k not in CONFIG_OBJECTS}
    for key in attributes - set(state["attributes"]):
        delattr(model, key)
    for key, value in state["attributes"].items():
        vars(model)[key] = copy.deepcopy(value)


def base_state_fingerprint(model) -> str:
    """The weights' fingerprint and a hash of the config: what must be the same before and after
    every submission (a submission that changed either would change every later student's score)."""

    config = json.dumps(model.config.to_dict(), sort_keys=True, default=str)
    return model_fingerprint(model) + "-" + hashlib.sha256(config.encode()).hexdigest()[:16]


@contextmanager
def base_restored(model):
    """Let a submission change ``model`` freely inside; on exit every module the base had is back in
    its place (replaced heads, unloaded PEFT layers), every parameter bit for bit, and the config,
    generation config and attributes as they were."""
    modules = dict(model.named_modules())
    params = {name: p.detach().clone() for name, p in model.named_parameters()}
    state = config_state(model)
    try:
        yield model
    finally:
        for name, module in modules.items():
            if name:
                parent, _, child = name.rpartition(".")
                modules[parent]._modules[child] = module
        current = dict(model.named_parameters())
        with torch.no_grad():
            for name, value in params.items():
                current[name].copy_(value)
        restore_config_state(model, state)


# --- the labs' metrics ---------------------------------------------------------------------------


def extraction_score(model, tokenizer, rows: list[dict], rubric: Rubric) -> dict:
    """Labs 03B/04: greedy JSON extraction scored with ``field_scores`` (as in the lab)."""

    fields = get_spec(rubric.dataset).fields
    prompts = extraction_prompts(tokenizer, rows, fields)
    result = evaluate_extraction(
        model,
        tokenizer,
        prompts,
        [r["target"] for r in rows],
        fields,
        max_new_tokens=56,
        batch_size=64,
        progress=False,
    )
    return {k: v for k, v in result.items() if k not in ("outputs", "correct")}


def perplexity_score(model, tokenizer, rows: list[dict], rubric: Rubric) -> dict:
    """Lab 05: perplexity on packed blocks of the held-out domain and general documents."""

    result = {}
    for corpus in ("domain", "general"):
        docs = [Document(r["id"], r["text"]) for r in rows if r["corpus"] == corpus]
        blocks = pack_blocks(
            tokenize_documents(tokenizer, docs), rubric.block_size, tokenizer.eos_token_id
        )[: rubric.max_blocks]
        if not blocks:
            raise ValueError(
                f"the held-out {corpus} documents make no block of {rubric.block_size} tokens"
            )
        perplexity = block_perplexity(model, blocks)
        if not math.isfinite(perplexity):
            raise SubmissionError(
                f"the adapter's held-out {corpus} perplexity is {perplexity} (the model's loss "
                "overflows: its training diverged, or its weights are far too large): lower the "
                "learning rate and train again"
            )
        result[f"{corpus}_perplexity"] = perplexity
        result[f"{corpus}_blocks"] = len(blocks)
    return result


def classifier_score(model, tokenizer, rows: list[dict], rubric: Rubric) -> dict:
    """Labs 02/03A: accuracy of the classifier (head at the last token) on the held-out messages."""

    labels = get_spec(rubric.dataset).labels
    ids = tokenize_texts(tokenizer, [r["text"] for r in rows])
    result = classifier_accuracy(
        lambda i, m: classifier_logits(model, i, m),
        ids,
        [labels.index(r["label"]) for r in rows],
        pad_value=tokenizer.pad_token_id,
    )
    return {"accuracy": result["accuracy"], "loss": result["loss"], "n": result["n"]}


def prompt_score(
    model, tokenizer, rows: list[dict], rubric: Rubric, fmt, demos: list[dict], calibrated: bool
) -> dict:
    """Lab 01: accuracy of one prompt (raw or calibrated) on the held-out messages."""

    result = evaluate_prompt(
        model, tokenizer, fmt, demos, rows, get_spec(rubric.dataset).labels, progress=False
    )
    key = "calibrated_" if calibrated else ""
    return {
        "accuracy": result[f"{key}accuracy"],
        "macro_f1": result[f"{key}macro_f1"],
        "n": result["n"],
    }


def label_score(model, tokenizer, rows: list[dict], rubric: Rubric) -> dict:
    """Lab 07: which label word is likelier after the message, through the model's own forward
    pass (soft prompts included), as in the lab."""

    return evaluate_labels(model, tokenizer, rows, get_spec(rubric.dataset).labels)


ADAPTER_METRICS = {
    "news_events": extraction_score,
    CORPUS: perplexity_score,
    "sms_spam": label_score,
}


def reference_logps(model, tokenizer, rubric: Rubric, rows: list[dict]) -> dict:
    """The reference policy's log-probabilities of the held-out pairs' answers: the kit's SFT
    policy (``train_policy``, the run the lab starts DPO and GRPO from and the pairs were sampled
    from), as stored in the pairs when they were made on this base, else trained here on the
    base (cached per reference, base state and held-out data, so a class pays for it once); or
    the base itself."""

    def compute() -> dict:
        tokens = [pair_tokens(tokenizer, pair) for pair in rows]
        with base_restored(model):
            reference = model
            if rubric.reference_policy == "kit_sft":
                task = load_split(POLICY_TASK, "train")
                reference, _ = train_policy(model, tokenizer, task, get_spec(POLICY_TASK).fields)
            logps = pair_logps(reference.eval(), tokens)
        return {which: values.tolist() for which, values in logps.items()}

    stored = [pair.get("reference") or {} for pair in rows]
    bases = {r.get("base") for r in stored}
    if rubric.reference_policy == "kit_sft" and bases == {model_fingerprint(model)}:
        # made with the pairs, on this base: nothing to train
        return {w: torch.tensor([r[w] for r in stored]) for w in ("chosen", "rejected")}
    key = f"{rubric.reference_policy}-{base_state_fingerprint(model)}-{rows_digest(rows)}"
    cached = cached_result(f"reference-{rubric.lab}-{key}", compute)
    return {which: torch.tensor(values) for which, values in cached.items()}


MARGIN_TIE = 1e-3  # a log-ratio margin (nats) this small is a tie: merging moves it by ~1e-6


def preference_score(model, tokenizer, rows: list[dict], reference: dict, rubric: Rubric) -> dict:
    """Lab 11: on held-out pairs, how often the chosen answer's implicit reward (the policy's log
    ratio to the reference) beats the rejected one's, the mean log-ratio margin, and how often the
    policy alone finds the chosen answer likelier, as the lab's ``preference_scores``; and the
    mean |log ratio| per answer token, which must stay under the rubric's limit."""
    tokens = [pair_tokens(tokenizer, pair) for pair in rows]
    policy = pair_logps(model, tokens)
    result = logp_preferences(policy, reference, beta=1.0, tie=MARGIN_TIE)
    ratios, lengths = [], []
    for which in ("chosen", "rejected"):
        ratios.append((policy[which] - reference[which]).abs())
        lengths.append(torch.tensor([len(t[f"{which}_ids"]) for t in tokens]))
    per_token = float((torch.cat(ratios) / torch.cat(lengths)).mean())
    limit = rubric.checks.max_log_ratio_per_token
    if rubric.reference_policy == "kit_sft" and per_token > limit:
        raise SubmissionError(
            f"on the held-out answers the adapter's log-probabilities are {per_token:.2f} nats per "
            f"token away from the reference policy's (this lab allows {limit:g}): preference "
            "tuning starts from the kit's SFT policy and stays near it; hand in the adapter "
            "trained from it"
        )
    return preference_result(result, per_token)


def preference_result(result: dict, per_token: float) -> dict:
    """The grader's fields from ``logp_preferences``' result and the mean |log ratio| per token."""
    return {
        "preference_accuracy": result["accuracy"],
        "log_ratio_margin": result["margin"],
        "log_ratio_per_token": per_token,
        "policy_prefers_chosen": result["policy_prefers_chosen"],
        "n": result["pairs"],
    }


# --- before (the base model, cached) and after (the submission) ----------------------------------


def adapter_base_score(model, tokenizer, rubric: Rubric, rows: list[dict]) -> dict:
    """Adapter labs' "before": the base model itself."""
    return ADAPTER_METRICS[rubric.dataset](model, tokenizer, rows, rubric)


def classifier_base_score(model, tokenizer, rubric: Rubric, rows: list[dict]) -> dict:
    """Classifier labs' "before": the base with a fresh head (seed 0), as in the labs."""

    with base_restored(model):
        replace_head(model, len(get_spec(rubric.dataset).labels), seed=0)
        return classifier_score(model, tokenizer, rows, rubric)


def prompt_base_score(model, tokenizer, rubric: Rubric, rows: list[dict]) -> dict:
    """The prompting lab's "before": the dataset's default format, zero-shot."""

    return prompt_score(model, tokenizer, rows, rubric, DATASET_FORMATS[rubric.dataset], [], False)


def preference_base_score(model, tokenizer, rubric: Rubric, rows: list[dict]) -> dict:
    """The preference lab's "before": the reference policy against itself (every margin 0)."""
    reference = reference_logps(model, tokenizer, rubric, rows)
    return preference_result(logp_preferences(reference, reference, 1.0, MARGIN_TIE), 0.0)


def chance_level(rubric: Rubric, rows: list[dict]) -> float | None:
    """For an accuracy metric, what answering the most common held-out label every time scores
    (for preference accuracy: a coin's 0.5); None for other metrics."""
    if rubric.metric == "preference_accuracy":
        return 0.5
    labels = [r["label"] for r in rows if "label" in r]
    if rubric.metric != "accuracy" or not labels:
        return None
    return majority_share(labels)


def artifact_scorers(rubric: Rubric):
    """(before, after) scoring functions for the rubric's artifact kind."""
    kind = rubric.artifact
    if kind not in ARTIFACTS:
        raise ValueError(f"rubric artifact {kind!r}: expected one of {sorted(ARTIFACTS)}")
    return ARTIFACTS[kind]


def base_score(
    model, tokenizer, rubric: Rubric, rows: list[dict], heldout_hash: str, fingerprint: str
) -> dict:
    """The base model's score, computed once per (lab, base weights-and-config fingerprint,
    held-out hash) and cached."""
    return cached_result(
        f"before-{rubric.lab}-{fingerprint}-{heldout_hash}",
        lambda: artifact_scorers(rubric)[0](model, tokenizer, rubric, rows),
    )


def cached_result(name: str, compute) -> dict:
    """``compute()``'s JSON result, kept in ``.cache/grading/<name>.json`` and read back from
    there next time (a base model's score, computed once per base state and held-out data)."""
    path = cache_dir() / "grading" / f"{name}.json"
    if path.is_file():
        return json.loads(path.read_text())
    result = compute()
    write_json_atomic(path, result)
    return result


def submission_score(
    model, tokenizer, files: dict[str, bytes], rubric: Rubric, rows: list[dict]
) -> tuple[dict, dict]:
    """Put the submitted artifact on ``model``, score it, restore the base; return (score,
    details)."""
    return artifact_scorers(rubric)[1](model, tokenizer, files, rubric, rows)


@contextmanager
def merged_adapter(model, folder: str, merge_into: str = "original", merge: bool = True):
    """The base with a PEFT adapter merged into its weights (faster to evaluate than separate LoRA
    layers), or only attached where it cannot merge (``merge=False``: soft prompts); on exit the
    base is restored bit for bit. ``merge_into="nf4"`` first rounds the blocks' linear weights
    through NF4 — the weights a QLoRA adapter trained on."""
    from peft import PeftModel

    if merge_into not in ("original", "nf4"):
        raise ValueError(f"rubric merge_into must be 'original' or 'nf4', got {merge_into!r}")
    with base_restored(model):
        if merge_into == "nf4":
            nf4_roundtrip_linears(model)
        try:
            attached = PeftModel.from_pretrained(model, folder, is_trainable=False)
            scored = attached.merge_and_unload() if merge else attached
        except (ValueError, RuntimeError, KeyError, TypeError) as exc:
            raise SubmissionError(
                f"the adapter does not load onto the base model ({exc})"
            ) from None
        yield scored


@contextmanager
def submitted_adapter_merged(model, files: dict[str, bytes], rubric: Rubric):
    """The submission's ``adapter/`` checked against the base (``check_adapter``) and merged into
    it (attached, for a type that cannot merge): yields ``(model to score, adapter config)``; the
    base is restored on exit."""
    files = with_saved_rows_added(files, dict(model.named_parameters(remove_duplicate=False)))
    config, _ = check_adapter(
        files, linear_shapes(model), rubric.checks, base_param_shapes=param_shapes(model)
    )
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "adapter_config.json").write_text(json.dumps(config_to_load(config)))
        weights = "adapter_model.safetensors"
        Path(folder, weights).write_bytes(files["adapter/" + weights])
        merge = config["peft_type"] in MERGEABLE
        with merged_adapter(model, folder, rubric.merge_into, merge) as merged:
            yield merged, config


def adapter_score(
    model, tokenizer, files: dict[str, bytes], rubric: Rubric, rows: list[dict]
) -> tuple[dict, dict]:
    """Put the submitted PEFT adapter on ``model`` (merged where it can be), score it, restore
    the base."""
    with submitted_adapter_merged(model, files, rubric) as (merged, config):
        result = ADAPTER_METRICS[rubric.dataset](merged, tokenizer, rows, rubric)
    return result, adapter_details(config)


def first_trained_block(model, tensors: dict) -> int:
    """The first block a classifier's tensors change (0 when they touch the embeddings or every
    block, as LoRA does; the number of blocks for a head-only classifier): the blocks before it
    compute the same for every student."""
    blocks = len(model.get_decoder().layers)
    found = [blocks]
    for name in tensors:
        match = re.match(r"^model\.layers\.(\d+)\.", name)
        if match:
            found.append(int(match.group(1)))
        elif not name.startswith(("lm_head.", "model.norm.")):
            return 0
    return min(found)


_PREFIX_CACHE: dict[tuple, list] = {}


def frozen_prefix(model, tokenizer, rows: list[dict], depth: int) -> list:
    """The held-out messages' hidden states entering block ``depth``, computed once per (base
    weights and config, held-out texts, depth) for the whole class — valid because no
    submission that starts at ``depth`` changes the blocks before it."""

    texts = [r["text"] for r in rows]
    key = (
        base_state_fingerprint(model),
        hashlib.sha256("\0".join(texts).encode()).hexdigest(),
        depth,
    )
    if key not in _PREFIX_CACHE:
        while len(_PREFIX_CACHE) >= 4:  # a few depths of one held-out set: bounded memory
            _PREFIX_CACHE.pop(next(iter(_PREFIX_CACHE)))
        ids = tokenize_texts(tokenizer, texts)
        _PREFIX_CACHE[key] = cache_hidden_states(
            model, ids, [depth], tokenizer.pad_token_id, progress=False
        )[depth]
    return _PREFIX_CACHE[key]


def cached_classifier_score(
    model, cache: list, rows: list[dict], rubric: Rubric, depth: int
) -> dict:
    """``classifier_score`` from the cached hidden states: only blocks ``depth..`` and the head
    run."""

    labels = get_spec(rubric.dataset).labels
    result = classifier_accuracy(
        lambda hidden, mask: logits_from_hidden(model, hidden, mask, depth),
        cache,
        [labels.index(r["label"]) for r in rows],
        pad_value=0.0,
    )
    return {"accuracy": result["accuracy"], "loss": result["loss"], "n": result["n"]}


def classifier_submission_score(
    model, tokenizer, files: dict[str, bytes], rubric: Rubric, rows: list[dict]
) -> tuple[dict, dict]:
    """Load the submitted classifier onto ``model`` (``utils.train.classifier.apply_classifier``),
    score it."""

    labels = get_spec(rubric.dataset).labels
    config, tensors = check_classifier(
        files,
        param_shapes(model),
        linear_shapes(model),
        model.config.hidden_size,
        labels,
        rubric.checks,
    )
    depth = first_trained_block(model, tensors)
    with base_restored(model):
        cache = frozen_prefix(model, tokenizer, rows, depth) if depth else None
        apply_classifier(model, tensors, config)
        if cache is None:
            result = classifier_score(model, tokenizer, rows, rubric)
        else:
            result = cached_classifier_score(model, cache, rows, rubric, depth)
    lora = config.get("lora") or None
    return result, {
        "trained_parameters": sum(t.numel() for t in tensors.values()),
        "lora": lora,
        "tensors": len(tensors),
    }


MAX_PROMPT_TOKENS = 2048  # a prompt's shared part + the longest query and label word


def check_prompt_cost(tokenizer, fmt, demos: list[dict], rows: list[dict], labels) -> None:
    """Bound the work before running it: a prompt spec within every size limit can still render
    a prompt too long to score on a class's worth of held-out items."""

    longest = max(rows, key=lambda r: len(r["text"]))
    prompt = build_prompt(fmt, demos, longest["text"], labels, tokenizer)
    text = prompt.prefix + prompt.suffix + max(prompt.candidates, key=len)
    tokens = len(tokenizer(text, add_special_tokens=False)["input_ids"])
    if tokens > MAX_PROMPT_TOKENS:
        raise SubmissionError(
            f"prompt_spec.json: the prompt is {tokens} tokens long with the longest held-out "
            f"message (at most {MAX_PROMPT_TOKENS}): use fewer or shorter demonstrations"
        )


def prompt_submission_score(
    model, tokenizer, files: dict[str, bytes], rubric: Rubric, rows: list[dict]
) -> tuple[dict, dict]:
    """Rebuild the submitted prompt (format + demonstrations from ``train``) and score it."""

    train = {r["id"]: r for r in load_split(rubric.dataset, "train")}
    labels = get_spec(rubric.dataset).labels
    spec = check_prompt_spec(files, rubric.dataset, labels, set(train), rubric.checks)
    try:
        fmt = PromptFormat(**spec["format"])
    except (TypeError, ValueError) as exc:
        raise SubmissionError(f"prompt_spec.json: invalid format ({exc})") from None
    demos = [train[i] for i in spec["demo_ids"]]
    check_prompt_cost(tokenizer, fmt, demos, rows, labels)
    result = prompt_score(model, tokenizer, rows, rubric, fmt, demos, spec["calibrated"])
    return result, {
        "shots": len(spec["demo_ids"]),
        "calibrated": spec["calibrated"],
        "chat": fmt.chat,
    }


def preference_submission_score(
    model, tokenizer, files: dict[str, bytes], rubric: Rubric, rows: list[dict]
) -> tuple[dict, dict]:
    """Put the submitted adapter on ``model`` (merged) and score it on the held-out pairs against
    the reference policy (computed first, on the base, and cached); restore the base."""
    reference = reference_logps(model, tokenizer, rubric, rows)
    with submitted_adapter_merged(model, files, rubric) as (merged, config):
        result = preference_score(merged, tokenizer, rows, reference, rubric)
    return result, adapter_details(config)


RECIPE = "recipe.json"  # a pruned student's recipe in its zip


def pruned_student_score(
    model, tokenizer, files: dict[str, bytes], rubric: Rubric, rows: list[dict]
) -> tuple[dict, dict]:
    """Remove the recipe's blocks from ``model``, merge the submitted adapter (checked against
    the pruned base), score it with the lab's metric; every block is put back on exit. The
    result also carries ``removed_share``: the share of the base's parameters the student
    lost, which the rubric's size band reads."""
    if RECIPE not in files:
        raise SubmissionError(f"{RECIPE} is missing: the zip needs the blocks removed and adapter/")
    try:
        text = files[RECIPE].decode("utf-8")
        remove = read_block_recipe(
            text, len(decoder_blocks(model)), rubric.checks.max_removed_blocks
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise SubmissionError(f"{RECIPE}: {exc}") from None
    total = sum(p.numel() for p in model.parameters())
    with blocks_removed(model, remove):
        kept = sum(p.numel() for p in model.parameters())
        with submitted_adapter_merged(model, files, rubric) as (merged, config):
            result = ADAPTER_METRICS[rubric.dataset](merged, tokenizer, rows, rubric)
    result = {**result, "removed_share": 1 - kept / total, "parameters": kept}
    return result, {**adapter_details(config), "removed_blocks": remove}


ARTIFACTS = {  # artifact kind -> (base model's "before", one submission's "after")
    "peft_adapter": (adapter_base_score, adapter_score),
    "classifier": (classifier_base_score, classifier_submission_score),
    "prompt_spec": (prompt_base_score, prompt_submission_score),
    "preference_adapter": (preference_base_score, preference_submission_score),
    "pruned_student": (adapter_base_score, pruned_student_score),
}
