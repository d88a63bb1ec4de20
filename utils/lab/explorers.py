"""Interactive explorers the labs show with ipywidgets: a LoRA calculator, a prompt builder and a
quantization explorer. Each first prints a table of a few settings, so its numbers are on the page
even where widgets do not render (nbconvert, a terminal, a PDF export); in JupyterLab or Colab
the controls below the table recompute the same figures live.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from utils.data.prompting import build_prompt
from utils.eval.metrics import score_candidates
from utils.lab.results import format_table
from utils.train.lora_scaling import lora_scale
from utils.train.memory_estimate import SHAPES, estimate_memory
from utils.train.params import ALL_LINEAR
from utils.train.quantization import nf4_dequantize, nf4_quantize

ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")
TARGET_CHOICES = {"q, v": ("q_proj", "v_proj"), "attention": ATTENTION, "all linear": ALL_LINEAR}


def widgets_module():
    """``ipywidgets`` when running in an IPython kernel with it installed, else ``None``."""
    try:
        import ipywidgets
        from IPython import get_ipython
    except ImportError:
        return None
    return ipywidgets if get_ipython() is not None else None


def table(rows: list[dict]) -> str:
    """``rows`` as a plain-text table, columns in the order they first appear."""
    return format_table(rows, list(dict.fromkeys(key for row in rows for key in row)))


def show_explorer(
    title: str,
    presets: list[dict],
    compute: Callable[..., dict],
    controls: Callable[[object], dict] | None,
    live: Callable[..., None] | None = None,
) -> None:
    """Print ``compute(**preset)`` for each preset as a table, then (with widgets) the controls
    built by ``controls(ipywidgets)``, wired to ``live`` (default: print ``compute``'s row) whose
    printed output and figures show below them."""
    print(title)
    print(table([compute(**preset) for preset in presets]))
    widgets = widgets_module()
    if widgets is None or controls is None:
        return
    from IPython.display import display

    inputs = controls(widgets)
    output = widgets.Output()

    def refresh(**values):
        with output:
            output.clear_output(wait=True)
            if live is None:
                print(table([compute(**values)]))
            else:
                live(**values)

    row = widgets.HBox(list(inputs.values()), layout=widgets.Layout(flex_flow="row wrap"))
    display(widgets.VBox([row, output]))
    widgets.interactive_output(refresh, inputs)


# --- LoRA calculator ------------------------------------------------------------------------------


SCALINGS = {  # the calculator's names for utils.train.lora_scaling's conventions
    "PEFT α/r": "peft",
    "rsLoRA α/√r": "rslora",
    "from scratch α·(x@A@B)": "scratch",
}


def lora_figures(
    model: str, r: int, alpha: int, targets: str, weights: str, scaling: str = "PEFT α/r"
) -> dict:
    """What a LoRA set-up costs on one of ``SHAPES``: trainable parameters, their share, the
    adapter's size in fp16, the factor the update is scaled by under ``scaling`` (and what the
    same α gives at ranks 4 to 256) and the estimated GPU memory of training it (batch 1, 512
    tokens, gradient checkpointing, 16-bit activations)."""
    if scaling not in SCALINGS:
        raise ValueError(f"scaling must be one of {list(SCALINGS)}, got {scaling!r}")
    shape = SHAPES[model]
    modules = TARGET_CHOICES[targets]
    trainable = shape.lora_params(r, modules)
    memory = estimate_memory(
        shape,
        method="lora",
        weights=weights,
        lora_r=r,
        lora_targets=modules,
        gradient_checkpointing=True,
    )
    return {
        "model": shape.name,
        "weights": weights,
        "targets": targets,
        "r": r,
        "scaling": scaling,
        "scale": round(lora_scale(alpha, r, SCALINGS[scaling]), 3),
        "same α at r = 4/16/64/256": " / ".join(
            f"{lora_scale(alpha, rank, SCALINGS[scaling]):.3g}" for rank in (4, 16, 64, 256)
        ),
        "trainable": f"{trainable:,}",
        "% of model": round(100 * trainable / shape.params(), 3),
        "adapter MB (fp16)": round(trainable * 2 / 1e6, 1),
        "GPU GB (est.)": round(memory.total, 1),
    }


def lora_calculator(model: str = "smollm2-135m") -> None:
    """The LoRA calculator: rank, α, target modules and base-weight precision -> trainable
    parameters, adapter size and estimated GPU memory, for the kit's model shapes."""
    presets = (
        [
            {"model": model, "r": r, "alpha": 2 * r, "targets": t, "weights": "bf16"}
            for r, t in ((8, "q, v"), (16, "attention"), (16, "all linear"), (64, "all linear"))
        ]
        + [
            {"model": model, "r": 256, "alpha": 32, "targets": "all linear", "weights": "bf16"}
            | {"scaling": scaling}
            for scaling in SCALINGS
        ]
        + [
            {"model": "llama-3.1-8b", "r": 16, "alpha": 32, "targets": "all linear", "weights": w}
            for w in ("bf16", "nf4")
        ]
    )

    def controls(widgets):
        return {
            "model": widgets.Dropdown(options=list(SHAPES), value=model, description="model"),
            "r": widgets.IntSlider(value=16, min=1, max=256, description="rank r"),
            "alpha": widgets.IntSlider(value=32, min=1, max=512, description="alpha"),
            "targets": widgets.Dropdown(
                options=list(TARGET_CHOICES), value="all linear", description="targets"
            ),
            "weights": widgets.Dropdown(
                options=["bf16", "fp32", "int8", "nf4"], value="bf16", description="base weights"
            ),
            "scaling": widgets.Dropdown(
                options=list(SCALINGS), value="PEFT α/r", description="scaling"
            ),
        }

    show_explorer("LoRA calculator", presets, lora_figures, controls)


# --- quantization explorer ------------------------------------------------------------------------


def absmax_roundtrip(weight: torch.Tensor, bits: int, blocksize: int) -> torch.Tensor:
    """Blockwise symmetric integer quantization and back: each block scaled by its absolute
    maximum onto the ``2**(bits-1) - 1`` positive levels, rounded, scaled back."""
    flat = weight.detach().float().flatten()
    blocks = flat.view(-1, blocksize)
    levels = 2 ** (bits - 1) - 1
    scale = blocks.abs().amax(dim=1, keepdim=True).clamp_min(1e-12) / levels
    return (torch.round(blocks / scale) * scale).reshape(weight.shape)


def quantization_error(weight: torch.Tensor, code: str, blocksize: int) -> torch.Tensor:
    """``weight`` minus its round trip through ``code`` ("nf4", "int4" or "int8") with one
    absmax per ``blocksize`` weights."""

    if code == "nf4":
        restored = nf4_dequantize(*nf4_quantize(weight, blocksize), weight.shape)
    else:
        restored = absmax_roundtrip(weight, int(code.removeprefix("int")), blocksize)
    return weight.detach().float() - restored


def quantization_figures(weight: torch.Tensor, code: str, blocksize: int) -> dict:
    """Error statistics of one round trip, and the storage it costs per weight."""
    error = quantization_error(weight, code, blocksize)
    bits = 4 if code in ("nf4", "int4") else 8
    return {
        "code": code,
        "block": blocksize,
        "bits/weight": round(bits + 32 / blocksize, 2),
        "mean |error|": f"{error.abs().mean().item():.2e}",
        "max |error|": f"{error.abs().max().item():.2e}",
        "error / |w| (%)": round(100 * error.abs().mean().item() / weight.abs().mean().item(), 2),
    }


def quantization_explorer(weight: torch.Tensor, name: str = "weight") -> None:
    """The quantization explorer on one weight matrix: code and block size -> error statistics
    and (with widgets) a histogram of the errors."""
    presets = [{"code": c, "blocksize": b} for c in ("nf4", "int4", "int8") for b in (64, 4096)]
    blocks = [b for b in (32, 64, 128, 256, 1024, 4096) if weight.numel() % b == 0]

    def compute(code: str, blocksize: int) -> dict:
        return quantization_figures(weight, code, blocksize)

    def controls(widgets):
        return {
            "code": widgets.ToggleButtons(options=["nf4", "int4", "int8"], value="nf4"),
            "blocksize": widgets.SelectionSlider(options=blocks, value=64, description="block"),
        }

    def histogram(code: str, blocksize: int) -> None:
        import matplotlib.pyplot as plt

        print(table([compute(code, blocksize)]))
        fig, ax = plt.subplots(figsize=(6, 2.6))
        ax.hist(quantization_error(weight, code, blocksize).flatten().numpy(), bins=120)
        ax.set(xlabel="weight − round trip", ylabel="weights", title=f"{code}, block {blocksize}")
        fig.tight_layout()
        plt.show(fig)

    title = f"Quantization explorer on {name} {tuple(weight.shape)}"
    show_explorer(title, presets, compute, controls, histogram)


# --- prompt builder -------------------------------------------------------------------------------


def demo_positions(order: str, pool_size: int) -> list[int]:
    """``"3, 0,1"`` -> ``[3, 0, 1]``, each checked to be a position in the pool."""
    try:
        picks = [int(i) for i in order.replace(" ", "").split(",") if i != ""]
    except ValueError:
        raise ValueError(
            f"write positions separated by commas, e.g. '0,3,1'; got {order!r}"
        ) from None
    if any(not 0 <= i < pool_size for i in picks):
        raise ValueError(f"demonstration positions must be 0..{pool_size - 1}, got {order!r}")
    return picks


def prompt_figures(
    model, tokenizer, fmt, pool: Sequence[dict], labels: Sequence[str], query: dict, order: str
) -> dict:
    """Label log-probabilities and the prediction for ``query`` with the demonstrations
    ``order`` (comma-separated positions in ``pool``, in prompt order; empty = zero-shot)."""

    demos = [pool[i] for i in demo_positions(order, len(pool))]
    prompt = build_prompt(fmt, demos, query["text"], tuple(labels), tokenizer)
    scores = score_candidates(model, tokenizer, [prompt], progress=False)[0]
    best = max(range(len(labels)), key=scores.__getitem__)
    row = {"demonstrations": order or "(none)", "true": query["label"], "predicted": labels[best]}
    return row | {f"log p({label})": round(s, 2) for label, s in zip(labels, scores)}


def prompt_builder(model, tokenizer, fmt, pool: Sequence[dict], labels, queries: Sequence[dict]):
    """The prompt builder: pick demonstrations from ``pool`` and their order, and a message from
    ``queries`` -> the rendered prompt, each label's log-probability and the prediction."""

    half = len(pool) // 2
    forward = ",".join(str(i) for i in range(min(4, len(pool))))
    backward = ",".join(reversed(forward.split(",")))
    presets = [{"order": o, "index": 0} for o in ("", forward, backward, f"{half},{half + 1}")]

    def compute(order: str, index: int) -> dict:
        try:
            return prompt_figures(model, tokenizer, fmt, pool, labels, queries[index], order)
        except ValueError as exc:
            return {"error": str(exc)}

    def controls(widgets):
        return {
            "order": widgets.Text(value=forward, description="demos"),
            "index": widgets.IntSlider(value=0, min=0, max=len(queries) - 1, description="message"),
        }

    def live(order: str, index: int) -> None:
        row = compute(order, index)
        print(table([row]))
        if "error" not in row:
            picks = [pool[i] for i in demo_positions(order, len(pool))]
            prompt = build_prompt(fmt, picks, queries[index]["text"], tuple(labels), tokenizer)
            print(f"\nThe prompt:\n{prompt.text}")

    print("Demonstrations to choose from (position: label, text):")
    for i, row in enumerate(pool):
        print(f"  {i:2d}: {row['label']:>9}  {row['text'][:70]}")
    shown = build_prompt(
        fmt,
        [pool[i] for i in demo_positions(forward, len(pool))],
        queries[0]["text"],
        tuple(labels),
        tokenizer,
    )
    print(f"\nThe prompt for demos {forward} and message 0:\n{shown.text}\n")
    show_explorer("Prompt builder", presets, compute, controls, live)
