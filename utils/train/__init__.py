"""What changes weights: which parameters train, the classifier, LoRA from scratch, instruction
tuning, continual pre-training, quantization, and memory estimates."""
