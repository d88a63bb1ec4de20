"""The distillation loss: its label part is the model's own loss, its teacher part TRL's KL."""

import pytest
import torch

from utils.train.distill import IGNORE_INDEX, distillation_loss


def batch(tokenizer):
    ids = torch.randint(0, len(tokenizer), (3, 9), generator=torch.Generator().manual_seed(0))
    labels = ids.clone()
    labels[:, :4] = IGNORE_INDEX  # a prompt the loss skips
    labels[2, 7:] = IGNORE_INDEX  # padding
    return ids, labels


def test_the_label_part_is_the_models_own_loss(tiny_model, tokenizer):
    ids, labels = batch(tokenizer)
    with torch.no_grad():
        out = tiny_model(input_ids=ids, labels=labels)
        teacher = torch.randn_like(out.logits)
        parts = distillation_loss(out.logits, teacher, labels, temperature=2.0, alpha=0.0)
    assert float(parts["ce"]) == pytest.approx(float(out.loss), abs=1e-5)
    assert float(parts["loss"]) == pytest.approx(float(out.loss), abs=1e-5)


@pytest.mark.parametrize("temperature", [1.0, 2.0, 4.0])
def test_the_teacher_part_is_trls_forward_kl_scaled_by_t_squared(tokenizer, temperature):
    from trl.experimental.gkd import GKDTrainer

    ids, labels = batch(tokenizer)
    generator = torch.Generator().manual_seed(1)
    student = torch.randn(3, 9, 50, generator=generator)
    teacher = 3 * torch.randn(3, 9, 50, generator=generator)
    labels = labels % 50
    labels[:, :4] = IGNORE_INDEX
    parts = distillation_loss(student, teacher, labels, temperature=temperature, alpha=1.0)
    # TRL's generalized JSD at beta 0 is KL(teacher || student) at the temperature, per
    # labelled position; it takes the logits and labels already shifted
    want = GKDTrainer.generalized_jsd_loss(
        student[:, :-1], teacher[:, :-1], labels[:, 1:], beta=0.0, temperature=temperature
    )
    assert float(parts["kd"]) == pytest.approx(temperature**2 * float(want), rel=1e-5)
    assert float(parts["loss"]) == pytest.approx(float(parts["kd"]), rel=1e-6)


def test_a_student_equal_to_its_teacher_has_no_teacher_loss_and_gradients_reach_the_student():
    logits = torch.randn(2, 5, 11, requires_grad=True)
    labels = torch.randint(0, 11, (2, 5))
    parts = distillation_loss(logits, logits.detach().clone(), labels, temperature=3.0)
    assert parts["kd"].item() == pytest.approx(0.0, abs=1e-6)
    parts["loss"].backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_mismatched_vocabularies_and_bad_settings_get_clear_errors():
    labels = torch.zeros(1, 4, dtype=torch.long)
    with pytest.raises(ValueError, match="must share a tokenizer"):
        distillation_loss(torch.zeros(1, 4, 10), torch.zeros(1, 4, 12), labels)
    with pytest.raises(ValueError, match="temperature > 0"):
        distillation_loss(torch.zeros(1, 4, 10), torch.zeros(1, 4, 10), labels, temperature=0)


def test_the_labs_check_passes_the_kits_loss_and_fails_one_without_t_squared(capsys):
    from utils.lab.checks import passed
    from utils.lab.task_checks import check_distillation_loss

    check_distillation_loss(distillation_loss)
    assert passed("Task 10.3")

    def without_t_squared(student, teacher, labels, temperature, alpha):
        parts = distillation_loss(student, teacher, labels, temperature, alpha)
        kd = parts["kd"] / temperature**2
        return {"loss": alpha * kd + (1 - alpha) * parts["ce"], "kd": kd, "ce": parts["ce"]}

    check_distillation_loss(without_t_squared)
    assert not passed("Task 10.3")
    assert "[FAIL] Task 10.3: kd at T 2" in capsys.readouterr().out
