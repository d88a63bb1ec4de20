"""Knowledge distillation (Lab 10): a student learns from a teacher's next-token distributions
as well as from the labels.

The teacher's distribution over the whole vocabulary says more than the one right token ("dark
knowledge", Hinton et al. 2015, "Distilling the Knowledge in a Neural Network"): both
distributions are softened at a temperature T, the student is pulled towards the teacher's by
the KL divergence KL(teacher || student), scaled by T² so its gradients keep their size as T
changes, and that term is mixed with the usual label loss (DistilBERT, Sanh et al. 2019;
pruning a model and then distilling it back is Minitron's recipe, Muralidharan et al. 2024).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100  # a label the loss skips (the prompt, padding), as transformers does


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    temperature: float = 2.0,
    alpha: float = 0.5,
) -> dict[str, torch.Tensor]:
    """``alpha`` × T² × KL(teacher_T || student_T) + (1 − ``alpha``) × cross-entropy on the
    labels, both averaged over the positions with a label. ``labels`` are as a causal LM takes
    them (aligned with the inputs, ``IGNORE_INDEX`` where there is nothing to learn): position t's
    logits predict label t + 1. Returns ``loss``, ``kd`` (the scaled KL) and ``ce``."""
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"student logits {tuple(student_logits.shape)} and teacher logits "
            f"{tuple(teacher_logits.shape)} differ: the two must share a tokenizer"
        )
    if temperature <= 0 or not 0 <= alpha <= 1:
        raise ValueError(f"need temperature > 0 and alpha in [0, 1], got {temperature}, {alpha}")
    targets = labels[:, 1:]
    keep = targets != IGNORE_INDEX
    student = student_logits[:, :-1][keep].float()  # (labelled positions, vocabulary)
    teacher = teacher_logits[:, :-1][keep].float().detach()
    student_t = F.log_softmax(student / temperature, dim=-1)
    teacher_t = F.log_softmax(teacher / temperature, dim=-1)
    kl = (teacher_t.exp() * (teacher_t - student_t)).sum(-1)  # per position
    kd = temperature**2 * kl.mean()
    ce = F.cross_entropy(student, targets[keep])
    return {"loss": alpha * kd + (1 - alpha) * ce, "kd": kd, "ce": ce}
