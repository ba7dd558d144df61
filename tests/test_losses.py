"""Each loss's value and gradient on known logits, computed by hand from its formula."""

import math

import pytest
import torch
from torch import nn

from gan.losses import d_belief, discriminator_loss, generator_loss, gradient_penalty, r1_penalty

REAL, FAKE = [2.0, -1.0], [0.5, -3.0]


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


def d_loss_and_grads(loss: str):
    real = torch.tensor(REAL, dtype=torch.float64, requires_grad=True)
    fake = torch.tensor(FAKE, dtype=torch.float64, requires_grad=True)
    value = discriminator_loss(loss, real, fake)
    value.backward()
    return value.item(), real.grad.tolist(), fake.grad.tolist()


def g_loss_and_grad(loss: str, logits=FAKE):
    fake = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
    value = generator_loss(loss, fake)
    value.backward()
    return value.item(), fake.grad.tolist()


# expected D loss and its gradients with respect to the real and fake logits (2 samples each, hence the / 2)
D_EXPECTED = {
    "bce": (
        mean(softplus(-r) for r in REAL) + mean(softplus(f) for f in FAKE),
        [-(1 - sigmoid(r)) / 2 for r in REAL],
        [sigmoid(f) / 2 for f in FAKE],
    ),
    "hinge": (mean(max(0, 1 - r) for r in REAL) + mean(max(0, 1 + f) for f in FAKE), [0.0, -0.5], [0.5, 0.0]),
    "lsgan": (
        mean(0.5 * (r - 1) ** 2 for r in REAL) + mean(0.5 * f**2 for f in FAKE),
        [(r - 1) / 2 for r in REAL],
        [f / 2 for f in FAKE],
    ),
    "wgan-gp": (mean(FAKE) - mean(REAL), [-0.5, -0.5], [0.5, 0.5]),
}
D_EXPECTED["saturating"] = D_EXPECTED["bce"]  # the two differ only in G's loss

G_EXPECTED = {
    "bce": (mean(softplus(-f) for f in FAKE), [-(1 - sigmoid(f)) / 2 for f in FAKE]),
    # log(1 - D(G(z))) = -softplus(logit); its gradient is -D(G(z)) / N
    "saturating": (mean(math.log(1 - sigmoid(f)) for f in FAKE), [-sigmoid(f) / 2 for f in FAKE]),
    "hinge": (-mean(FAKE), [-0.5, -0.5]),
    "lsgan": (mean(0.5 * (f - 1) ** 2 for f in FAKE), [(f - 1) / 2 for f in FAKE]),
    "wgan-gp": (-mean(FAKE), [-0.5, -0.5]),
}


@pytest.mark.parametrize("loss", sorted(D_EXPECTED))
def test_discriminator_loss_value_and_gradient(loss):
    value, grad_real, grad_fake = d_loss_and_grads(loss)
    expected_value, expected_real, expected_fake = D_EXPECTED[loss]
    assert value == pytest.approx(expected_value, abs=1e-12)
    assert grad_real == pytest.approx(expected_real, abs=1e-12)
    assert grad_fake == pytest.approx(expected_fake, abs=1e-12)


@pytest.mark.parametrize("loss", sorted(G_EXPECTED))
def test_generator_loss_value_and_gradient(loss):
    value, grad = g_loss_and_grad(loss)
    expected_value, expected_grad = G_EXPECTED[loss]
    assert value == pytest.approx(expected_value, abs=1e-12)
    assert grad == pytest.approx(expected_grad, abs=1e-12)


def test_the_saturating_loss_vanishes_where_the_non_saturating_one_does_not():
    """Against a D that rejects the fakes (logit -10, D(G(z)) = 0.00005), G learns almost nothing from log(1 - D)."""
    _, saturating = g_loss_and_grad("saturating", [-10.0])
    _, non_saturating = g_loss_and_grad("bce", [-10.0])
    assert abs(saturating[0]) < 1e-4 and abs(non_saturating[0]) > 0.99


class Linear(nn.Module):
    """D(x) = <w, x>: its gradient with respect to x is w everywhere, so the penalty is (|w| - 1)^2."""

    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x, y=None):
        return x.flatten(1) @ self.w


def test_gradient_penalty_value_and_gradient():
    w = torch.zeros(784, dtype=torch.float64)
    w[0], w[1] = 2.0, math.sqrt(5.0)  # |w| = 3
    D = Linear(w)
    real, fake = torch.randn(4, 1, 28, 28, dtype=torch.float64), torch.randn(4, 1, 28, 28, dtype=torch.float64)
    penalty = gradient_penalty(D, real, fake, None, torch.rand(4, 1, 1, 1, dtype=torch.float64))
    assert penalty.item() == pytest.approx(4.0)
    penalty.backward()  # through the input gradient: d/dw (|w| - 1)^2 = 2 (|w| - 1) w / |w|
    assert D.w.grad.tolist() == pytest.approx((2 * (3 - 1) * w / 3).tolist())


def test_r1_penalty_is_the_squared_input_gradient_on_real_digits():
    w = torch.zeros(784, dtype=torch.float64)
    w[0], w[1] = 2.0, math.sqrt(5.0)  # |w|^2 = 9 wherever x is
    D = Linear(w)
    penalty = r1_penalty(D, torch.randn(4, 1, 28, 28, dtype=torch.float64), None)
    assert penalty.item() == pytest.approx(9.0)
    penalty.backward()  # d/dw |w|^2 = 2w: the penalty shrinks D's slope
    assert D.w.grad.tolist() == pytest.approx((2 * w).tolist())


def test_beliefs_are_probabilities_except_for_the_critic():
    logits = torch.tensor([0.0, 2.0])
    assert d_belief("bce", logits).tolist() == pytest.approx([0.5, sigmoid(2.0)])
    assert d_belief("lsgan", logits).tolist() == [0.0, 2.0]
    assert d_belief("wgan-gp", logits) is None
