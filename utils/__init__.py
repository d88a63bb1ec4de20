"""The kit's helpers, grouped by concern (labs import from the module that holds a name):

- ``utils.runtime``: where code runs and on what — profiles, hardware and dtype, model loading,
  memory measurement, and where files are stored.
- ``utils.data``: what the labs read — the bundled datasets, Lab 05's corpora, prompt formats,
  batching, and the generators that wrote the bundled data.
- ``utils.train``: what changes weights — which parameters train (freezing, PEFT LoRA), the
  classifier, LoRA from scratch, instruction tuning, continual pre-training, quantization, and
  memory estimates.
- ``utils.eval``: how a model is measured — task metrics, batched decoding, in-context learning.
- ``utils.lab``: what a lab notebook shows and hands in — checks, plots, result files, submissions.

Tooling that no notebook imports (pins, environment check, notebook execution) lives in ``tools/``.
"""
