"""What changes weights: which parameters train and PEFT LoRA (``params``), the classifier, LoRA
from scratch (``lora``), LoRA's scale, merging and combining adapters (``lora_scaling``),
instruction tuning (``sft``), continual pre-training (``cpt``), quantization, memory estimates and
the run plan (``memory_estimate``, ``budget``), the learning curve, the PEFT family
(``peft_family``) and its short training loop (``loop``), memory levers and data parallelism
(``memory_levers``, ``distributed``)."""
