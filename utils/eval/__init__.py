"""How a model is measured: one metric function per task type, batched greedy decoding, and
in-context learning."""
