"""Measuring memory: peak GPU memory or process RSS over a run, freeing what deleted models left,
and the bytes a loaded model's weights occupy (estimates before a run:
``utils.train.memory_estimate``)."""

from __future__ import annotations

import gc
import threading
import time

import psutil
import torch

GB = 1e9


class PeakMemory:
    """Peak memory between ``start()`` and ``stop()`` (or inside a ``with`` block), which may span
    notebook cells: peak reserved memory on a GPU; on a CPU a thread samples the process RSS.
    ``stop()`` returns ``{"kind", "peak_gb", "start_gb"}``."""

    def __init__(self, interval: float = 0.02):
        self.interval, self.result = interval, {}
        self._done, self._thread, self._peak = threading.Event(), None, 0

    def start(self) -> PeakMemory:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.result = {"kind": "gpu reserved", "start_gb": torch.cuda.memory_reserved() / GB}
            return self
        process = psutil.Process()
        self._peak = process.memory_info().rss
        self.result = {"kind": "cpu rss", "start_gb": self._peak / GB}
        self._done.clear()

        def sample() -> None:
            while not self._done.is_set():
                self._peak = max(self._peak, process.memory_info().rss)
                time.sleep(self.interval)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> dict:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
            self.result["peak_gb"] = torch.cuda.max_memory_reserved() / GB
            return self.result
        self._done.set()
        if self._thread is not None:
            self._thread.join()
        self._peak = max(self._peak, psutil.Process().memory_info().rss)
        self.result["peak_gb"] = self._peak / GB
        return self.result

    def __enter__(self) -> dict:
        self.start()
        return self.result

    def __exit__(self, *exc) -> None:
        self.stop()


_imports_frozen = False


def freeze_imports_once() -> None:
    """Take every object alive now out of the garbage collector's walks (``gc.freeze``), once per
    process. Called by the loaders after the libraries are imported and before the first model
    exists, it freezes the ~600k functions, classes and constants of torch, transformers, PEFT and
    Unsloth, which live as long as the process anyway; each later full collection
    (``release_memory``, and the interpreter's own) then walks only what the lab made: 0.3 s -> 0
    per collection on the reference machine. Only once, because a frozen object is never collected
    and a model holds reference cycles: a model alive at a later call would never be freed."""
    global _imports_frozen
    if not _imports_frozen:
        gc.collect()
        gc.freeze()
        _imports_frozen = True


def release_memory() -> None:
    """Free what deleted models left behind: Python garbage, the CUDA cache, and (glibc) the heap
    pages the allocator keeps — so the next measurement starts from a comparable baseline."""
    import ctypes

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc (macOS, Windows): RSS may stay high after a free


def weight_bytes(model) -> int:
    """Bytes the model's parameters occupy, 4-bit packing and quantization scales included."""
    total = sum(t.numel() * t.element_size() for t in model.parameters())
    for module in model.modules():
        state = getattr(getattr(module, "weight", None), "quant_state", None)
        if state is not None:
            total += state.absmax.numel() * state.absmax.element_size()
            nested = getattr(state, "state2", None)
            if nested is not None:
                total += (
                    nested.absmax.numel() * nested.absmax.element_size() + nested.code.numel() * 4
                )
    return total


def memory_now() -> str:
    """One line: GPU memory reserved (peak) on a GPU, process RSS and system RAM on a CPU."""
    if torch.cuda.is_available():
        return (
            f"GPU {torch.cuda.get_device_name(0)}: reserved "
            f"{torch.cuda.memory_reserved() / GB:.2f} GB "
            f"(peak {torch.cuda.max_memory_reserved() / GB:.2f} GB) of "
            f"{torch.cuda.get_device_properties(0).total_memory / GB:.1f} GB"
        )
    ram = psutil.virtual_memory()
    return (
        f"CPU: this process uses {psutil.Process().memory_info().rss / GB:.2f} GB RSS; "
        f"RAM {ram.used / GB:.1f} of {ram.total / GB:.1f} GB in use"
    )
