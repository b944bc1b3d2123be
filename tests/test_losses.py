import torch

from w2s.models.losses import get_loss, harden, soft_xent


def test_binary_hardening_matches_weak_class_balance():
    torch.manual_seed(0)
    probs = torch.rand(1000, 1)
    probs = torch.cat([1 - probs, probs], dim=1)
    for frac in (0.2, 0.5, 0.7):
        hard = harden(probs, torch.tensor([1 - frac, frac]))
        assert abs(hard[:, 1].mean().item() - frac) < 0.01
        # the hardened positives are the most confident ones
        assert probs[hard[:, 1] == 1, 1].min() >= probs[hard[:, 1] == 0, 1].max()


def test_multiclass_hardening_moves_toward_prior():
    torch.manual_seed(0)
    logits = torch.randn(3000, 3) + torch.tensor([1.5, 0.0, 0.0])  # skewed to class 0
    probs = logits.softmax(-1)
    prior = torch.tensor([1 / 3, 1 / 3, 1 / 3])
    raw = torch.bincount(probs.argmax(-1), minlength=3).float() / 3000
    hard = harden(probs, prior).mean(0)
    assert (hard - prior).abs().max() < (raw - prior).abs().max()
    assert (hard - prior).abs().max() < 0.1


def test_logconf_warms_up_from_plain_xent():
    torch.manual_seed(0)
    logits = torch.randn(64, 2)
    weak = torch.rand(64, 1)
    weak = torch.cat([1 - weak, weak], dim=1)
    loss = get_loss("logconf", aux_max=0.75, warmup=0.2)
    xent = soft_xent(logits, weak)
    assert torch.allclose(loss(logits, weak, 0.0), xent)
    own = harden(logits.softmax(-1), weak.mean(0))
    mid = soft_xent(logits, 0.625 * weak + 0.375 * own)  # a = 0.75 * 0.1/0.2
    assert torch.allclose(loss(logits, weak, 0.1), mid)
    full = soft_xent(logits, 0.25 * weak + 0.75 * own)
    assert torch.allclose(loss(logits, weak, 0.9), full)


def test_product_target_is_normalised_product():
    logits = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    weak = torch.tensor([[0.2, 0.8], [0.5, 0.5]])
    loss = get_loss("product", alpha=1.0, beta=1.0)
    p = logits.softmax(-1)
    target = weak * p / (weak * p).sum(-1, keepdim=True)
    assert torch.allclose(loss(logits, weak, 0.5), soft_xent(logits, target))


def test_hard_xent_uses_argmax_of_soft_labels():
    logits = torch.tensor([[1.0, 0.0]])
    weak = torch.tensor([[0.4, 0.6]])
    loss = get_loss("xent_hard")
    expected = torch.nn.functional.cross_entropy(logits, torch.tensor([1]))
    assert torch.allclose(loss(logits, weak, 0.0), expected)
