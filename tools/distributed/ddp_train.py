"""Launch script for data-parallel LoRA training (the same file on CPUs and GPUs). Two ranks, then
the single-process reference:

    .venv/bin/torchrun --standalone --nproc_per_node=2 tools/distributed/ddp_train.py --out DIR
    .venv/bin/python tools/distributed/ddp_train.py --out DIR

Each run writes ``result-<ranks>.json`` (global losses, seconds per step) and
``adapter-<ranks>.safetensors`` in ``--out``; the two can then be compared.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from utils.train.distributed import train_one_rank  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for results and adapter")
    parser.add_argument("--steps", type=int, default=8, help="optimizer steps")
    parser.add_argument("--batch", type=int, default=8, help="global batch (split over ranks)")
    parser.add_argument("--lr", type=float, default=0.05, help="learning rate")
    parser.add_argument(
        "--optimizer", default="sgd-momentum", help="sgd-momentum (exact comparison) | adamw | ..."
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", default="cpu", help="cpu (embedded model) | t4 | a100")
    args = parser.parse_args(argv)
    train_one_rank(
        args.out, args.steps, args.batch, args.lr, args.seed, args.profile, args.optimizer
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
