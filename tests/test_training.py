"""The training step against an independent copy of the original release's algorithm; losses, pool, schedule.

`reference_optimize_parameters` below re-implements `CycleGANModel.optimize_parameters` of
github.com/junyanz/pytorch-CycleGAN-and-pix2pix with that code's names, so the naming swap is
visible: the original's netD_A judges domain B (our `discriminator_b`), its netD_B judges domain A.
"""

from __future__ import annotations

import copy
import inspect
import itertools
import math
import random

import pytest
import torch
from torch import nn

from conftest import TINY_DISCRIMINATOR, TINY_GENERATOR
from cyclegan_hub import CycleGAN
from cyclegan_hub.augment import diff_augment
from cyclegan_hub.config import parse_args
from cyclegan_hub.ema import GeneratorEMA
from cyclegan_hub.image_pool import ImagePool
from cyclegan_hub.losses import cycle_loss, discriminator_loss, generator_adversarial_loss, identity_loss, r1_penalty
from cyclegan_hub.training import LOSS_NAMES, CycleGANStep, adam, identity_schedule, linear_decay, unchanged

# --- the reference: the original release's update, written out -----------------------------------


class ReferenceImagePool:
    """The original `util/image_pool.py`."""

    def __init__(self, pool_size):
        self.pool_size = pool_size
        if self.pool_size > 0:
            self.num_imgs = 0
            self.images = []

    def query(self, images):
        if self.pool_size == 0:
            return images
        return_images = []
        for image in images:
            image = torch.unsqueeze(image.data, 0)
            if self.num_imgs < self.pool_size:
                self.num_imgs = self.num_imgs + 1
                self.images.append(image)
                return_images.append(image)
            else:
                p = random.uniform(0, 1)
                if p > 0.5:
                    random_id = random.randint(0, self.pool_size - 1)
                    tmp = self.images[random_id].clone()
                    self.images[random_id] = image
                    return_images.append(tmp)
                else:
                    return_images.append(image)
        return torch.cat(return_images, 0)


class ReferenceGANLoss(nn.Module):
    """The original `GANLoss` for "lsgan" and "vanilla"."""

    def __init__(self, gan_mode):
        super().__init__()
        self.loss = nn.MSELoss() if gan_mode == "lsgan" else nn.BCEWithLogitsLoss()

    def __call__(self, prediction, target_is_real):
        target = torch.tensor(1.0 if target_is_real else 0.0).expand_as(prediction)
        return self.loss(prediction, target)


def set_requires_grad(nets, requires_grad):
    for net in nets:
        for param in net.parameters():
            param.requires_grad = requires_grad


class ReferenceCycleGAN:
    """`CycleGANModel`'s training state and `optimize_parameters`, on our networks' copies."""

    def __init__(self, netG_A, netG_B, netD_A, netD_B, gan_mode, lambda_identity, pool_size, lr=2e-4, beta1=0.5):
        self.netG_A, self.netG_B, self.netD_A, self.netD_B = netG_A, netG_B, netD_A, netD_B
        self.lambda_A = self.lambda_B = 10.0
        self.lambda_idt = lambda_identity
        self.criterionGAN = ReferenceGANLoss(gan_mode)
        self.criterionCycle = nn.L1Loss()
        self.criterionIdt = nn.L1Loss()
        self.fake_A_pool = ReferenceImagePool(pool_size)
        self.fake_B_pool = ReferenceImagePool(pool_size)
        self.optimizer_G = torch.optim.Adam(
            itertools.chain(netG_A.parameters(), netG_B.parameters()), lr=lr, betas=(beta1, 0.999)
        )
        self.optimizer_D = torch.optim.Adam(
            itertools.chain(netD_A.parameters(), netD_B.parameters()), lr=lr, betas=(beta1, 0.999)
        )

    def forward(self):
        self.fake_B = self.netG_A(self.real_A)
        self.rec_A = self.netG_B(self.fake_B)
        self.fake_A = self.netG_B(self.real_B)
        self.rec_B = self.netG_A(self.fake_A)

    def backward_D_basic(self, netD, real, fake):
        pred_real = netD(real)
        loss_D_real = self.criterionGAN(pred_real, True)
        pred_fake = netD(fake.detach())
        loss_D_fake = self.criterionGAN(pred_fake, False)
        loss_D = (loss_D_real + loss_D_fake) * 0.5
        loss_D.backward()
        return loss_D

    def backward_D_A(self):
        fake_B = self.fake_B_pool.query(self.fake_B)
        self.loss_D_A = self.backward_D_basic(self.netD_A, self.real_B, fake_B)

    def backward_D_B(self):
        fake_A = self.fake_A_pool.query(self.fake_A)
        self.loss_D_B = self.backward_D_basic(self.netD_B, self.real_A, fake_A)

    def backward_G(self):
        lambda_idt, lambda_A, lambda_B = self.lambda_idt, self.lambda_A, self.lambda_B
        if lambda_idt > 0:
            self.idt_A = self.netG_A(self.real_B)
            self.loss_idt_A = self.criterionIdt(self.idt_A, self.real_B) * lambda_B * lambda_idt
            self.idt_B = self.netG_B(self.real_A)
            self.loss_idt_B = self.criterionIdt(self.idt_B, self.real_A) * lambda_A * lambda_idt
        else:
            self.loss_idt_A = 0
            self.loss_idt_B = 0
        self.loss_G_A = self.criterionGAN(self.netD_A(self.fake_B), True)
        self.loss_G_B = self.criterionGAN(self.netD_B(self.fake_A), True)
        self.loss_cycle_A = self.criterionCycle(self.rec_A, self.real_A) * lambda_A
        self.loss_cycle_B = self.criterionCycle(self.rec_B, self.real_B) * lambda_B
        self.loss_G = self.loss_G_A + self.loss_G_B + self.loss_cycle_A + self.loss_cycle_B + self.loss_idt_A + self.loss_idt_B
        self.loss_G.backward()

    def optimize_parameters(self, real_A, real_B):
        self.real_A, self.real_B = real_A, real_B
        self.forward()
        set_requires_grad([self.netD_A, self.netD_B], False)
        self.optimizer_G.zero_grad()
        self.backward_G()
        self.optimizer_G.step()
        set_requires_grad([self.netD_A, self.netD_B], True)
        self.optimizer_D.zero_grad()
        self.backward_D_A()
        self.backward_D_B()
        self.optimizer_D.step()


# --- step-for-step equivalence -----------------------------------------------------------------


def scalar(loss) -> float:
    return float(loss.detach()) if torch.is_tensor(loss) else float(loss)


def batches(count, batch_size=2, size=32, seed=0):
    generator = torch.Generator().manual_seed(seed)

    def images():
        return torch.rand(batch_size, 3, size, size, generator=generator) * 2 - 1

    return [(images(), images()) for _ in range(count)]


@pytest.mark.parametrize(
    "gan_mode, lambda_identity, pool_size, batch_size, norm, dropout",
    [
        ("lsgan", 0.5, 0, 2, "instance", 0.0),  # no pool: the discriminators see the latest fakes
        ("lsgan", 0.5, 2, 1, "instance", 0.0),  # pool full after step 2: steps 3-5 draw from the shared `random`
        ("lsgan", 0.5, 3, 2, "instance", 0.0),  # batch larger than the free room: fill and swap in one query
        ("vanilla", 0.0, 0, 2, "instance", 0.0),  # the original's other mode, without the identity term
        # Running statistics and dropout masks depend on the order of the generator passes.
        ("lsgan", 0.5, 2, 2, "batch", 0.5),
        ("lsgan", 0.0, 0, 2, "batch", 0.5),
    ],
)
def test_step_matches_the_original_optimize_parameters(gan_mode, lambda_identity, pool_size, batch_size, norm, dropout):
    """In float64, so what is compared is the algorithm and not the order of float32 rounding.

    Our step back-propagates the generator loss in parts, the original in one sum. In float32
    the rounding differs, and Adam scales it up for parameters whose gradient is near zero (the
    conv biases that instance norm cancels) to a full learning-rate step.
    """
    torch.manual_seed(0)
    model = CycleGAN(
        generator=dict(TINY_GENERATOR, norm=norm, dropout=dropout),
        discriminator=dict(TINY_DISCRIMINATOR, norm=norm),
        with_discriminators=True,
    )
    model = model.double().train()
    reference = ReferenceCycleGAN(
        netG_A=copy.deepcopy(model.generator_ab),
        netG_B=copy.deepcopy(model.generator_ba),
        netD_A=copy.deepcopy(model.discriminator_b),  # the original's D_A judges domain B
        netD_B=copy.deepcopy(model.discriminator_a),
        gan_mode=gan_mode,
        lambda_identity=lambda_identity,
        pool_size=pool_size,
    )
    step = CycleGANStep(
        model.generator_ab,
        model.generator_ba,
        model.discriminator_a,
        model.discriminator_b,
        torch.optim.Adam([*model.generator_ab.parameters(), *model.generator_ba.parameters()], lr=2e-4, betas=(0.5, 0.999)),
        torch.optim.Adam([*model.discriminator_a.parameters(), *model.discriminator_b.parameters()], lr=2e-4, betas=(0.5, 0.999)),
        gan_mode=gan_mode,
        lambda_cyc=10.0,
        lambda_identity=lambda_identity,
        pool_size=pool_size,
    )
    pairs = {
        "generator_ab": reference.netG_A,
        "generator_ba": reference.netG_B,
        "discriminator_b": reference.netD_A,
        "discriminator_a": reference.netD_B,
    }
    initial = copy.deepcopy(model.state_dict())
    steps = 5 if pool_size else 3
    for index, (real_a, real_b) in enumerate(batches(steps, batch_size)):
        real_a, real_b = real_a.double(), real_b.double()
        random.seed(1000 + index)  # both pools draw from Python's `random`, as the original's does
        torch.manual_seed(index)  # and dropout masks from torch's generator
        losses = step(real_a, real_b)
        random.seed(1000 + index)
        torch.manual_seed(index)
        reference.optimize_parameters(real_a, real_b)

        assert set(losses) == set(LOSS_NAMES)
        assert losses["loss_g"] == pytest.approx(scalar(reference.loss_G), rel=1e-5)
        assert losses["loss_gan_ab"] == pytest.approx(scalar(reference.loss_G_A), rel=1e-5)
        assert losses["loss_gan_ba"] == pytest.approx(scalar(reference.loss_G_B), rel=1e-5)
        assert 10 * losses["loss_cycle_a"] == pytest.approx(scalar(reference.loss_cycle_A), rel=1e-5)
        assert 10 * losses["loss_cycle_b"] == pytest.approx(scalar(reference.loss_cycle_B), rel=1e-5)
        assert 5 * losses["loss_identity_a"] == pytest.approx(scalar(reference.loss_idt_B), rel=1e-5, abs=1e-7)
        assert 5 * losses["loss_identity_b"] == pytest.approx(scalar(reference.loss_idt_A), rel=1e-5, abs=1e-7)
        assert losses["loss_d_b"] == pytest.approx(scalar(reference.loss_D_A), rel=1e-5)
        assert losses["loss_d_a"] == pytest.approx(scalar(reference.loss_D_B), rel=1e-5)
        for name, theirs in pairs.items():
            ours = getattr(model, name)
            for (key, mine), (_, other) in zip(ours.state_dict().items(), theirs.state_dict().items()):
                torch.testing.assert_close(mine, other, atol=1e-9, rtol=0, msg=lambda m: f"step {index + 1}: {name}.{key}: {m}")

    moved = [key for key, value in model.state_dict().items() if not torch.allclose(value, initial[key], atol=1e-4)]
    assert len(moved) > len(initial) // 2  # the comparison is not between untouched networks

    if pool_size:
        for ours, theirs in ((step.pool_a, reference.fake_A_pool), (step.pool_b, reference.fake_B_pool)):
            assert len(ours.images) == len(theirs.images) == pool_size
            for mine, other in zip(ours.images, theirs.images):
                torch.testing.assert_close(mine, other, atol=1e-9, rtol=0)


class SavedForBackward:
    """Counts the bytes autograd holds for backward: live now, and the most at any one time.

    Each saved tensor is wrapped on saving; the wrapper is dropped when its graph is freed.
    """

    def __init__(self):
        self.live = self.peak = 0

    def __enter__(self):
        self._hooks = torch.autograd.graph.saved_tensors_hooks(lambda tensor: SavedTensor(tensor, self), lambda saved: saved.tensor)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc):
        self._hooks.__exit__(*exc)


class SavedTensor:
    def __init__(self, tensor: torch.Tensor, counter: SavedForBackward):
        self.tensor, self.counter, self.nbytes = tensor, counter, tensor.numel() * tensor.element_size()
        counter.live += self.nbytes
        counter.peak = max(counter.peak, counter.live)

    def __del__(self):
        self.counter.live -= self.nbytes


def test_the_generator_update_holds_at_most_two_generator_passes_for_backward():
    """Memory: the six generator passes of eq. 3 plus identity are back-propagated two at a time."""
    torch.manual_seed(0)
    model = CycleGAN(generator=dict(TINY_GENERATOR), discriminator=dict(TINY_DISCRIMINATOR), with_discriminators=True).train()
    networks = (model.generator_ab, model.generator_ba, model.discriminator_a, model.discriminator_b)
    step = CycleGANStep(
        *networks,
        torch.optim.Adam([*model.generator_ab.parameters(), *model.generator_ba.parameters()]),
        torch.optim.Adam([*model.discriminator_a.parameters(), *model.discriminator_b.parameters()]),
        pool_size=0,
    )
    real_a, real_b = batches(1, batch_size=1, size=64)[0]
    with SavedForBackward() as one_pass:
        fake_b = model.generator_ab(real_a)
    del fake_b
    with SavedForBackward() as update:
        step(real_a, real_b)
    assert update.live == 0  # every graph was freed
    # Two generator passes and a small discriminator pass; one backward of the sum held six passes.
    assert 2 * one_pass.peak < update.peak < 2.5 * one_pass.peak


def test_adam_is_fused_with_the_papers_settings_over_every_parameter():
    model = CycleGAN(generator=dict(TINY_GENERATOR))
    optimizer = adam([model.generator_ab, model.generator_ba])
    (group,) = optimizer.param_groups
    assert group["fused"] and group["lr"] == 2e-4 and group["betas"] == (0.5, 0.999)
    assert [id(p) for p in group["params"]] == [id(p) for p in model.parameters()]


def test_the_step_trains_every_network_and_only_the_right_ones():
    torch.manual_seed(0)
    model = CycleGAN(generator=dict(TINY_GENERATOR), discriminator=dict(TINY_DISCRIMINATOR), with_discriminators=True).train()
    before = copy.deepcopy(model.state_dict())
    optimizer_g = torch.optim.Adam([*model.generator_ab.parameters(), *model.generator_ba.parameters()], lr=1e-3)
    networks = (model.generator_ab, model.generator_ba, model.discriminator_a, model.discriminator_b)
    step = CycleGANStep(*networks, optimizer_g, torch.optim.SGD(model.discriminator_a.parameters(), lr=0.0))
    real_a, real_b = batches(1)[0]
    losses = step(real_a, real_b)
    after = model.state_dict()
    assert all(not torch.equal(before[k], after[k]) for k in before if k.startswith("generator_") and k.endswith("weight"))
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("discriminator_"))  # lr 0 / not in it
    assert all(p.requires_grad for p in model.parameters())  # the discriminators are unfrozen afterwards
    adversarial = losses["loss_gan_ab"] + losses["loss_gan_ba"]
    cycle = losses["loss_cycle_a"] + losses["loss_cycle_b"]
    identity = losses["loss_identity_a"] + losses["loss_identity_b"]
    assert losses["loss_g"] == pytest.approx(adversarial + 10 * cycle + 5 * identity, rel=1e-5)
    with pytest.raises(ValueError, match="gan_mode must be one of"):
        CycleGANStep(*networks, optimizer_g, optimizer_g, gan_mode="wgan")


def test_hinge_mode_trains():
    torch.manual_seed(0)
    model = CycleGAN(generator=dict(TINY_GENERATOR), discriminator=dict(TINY_DISCRIMINATOR), with_discriminators=True).train()
    step = CycleGANStep(
        model.generator_ab,
        model.generator_ba,
        model.discriminator_a,
        model.discriminator_b,
        torch.optim.Adam([*model.generator_ab.parameters(), *model.generator_ba.parameters()]),
        torch.optim.Adam([*model.discriminator_a.parameters(), *model.discriminator_b.parameters()]),
        gan_mode="hinge",
        lambda_identity=0.0,
    )
    for real_a, real_b in batches(2):
        losses = step(real_a, real_b)
    assert all(math.isfinite(value) for value in losses.values())
    assert losses["loss_identity_a"] == losses["loss_identity_b"] == 0.0


# --- DiffAugment and the moving average -------------------------------------------------------


def tiny_pair(seed=0) -> CycleGAN:
    torch.manual_seed(seed)
    return CycleGAN(generator=dict(TINY_GENERATOR), discriminator=dict(TINY_DISCRIMINATOR), with_discriminators=True).train()


def step_for(model, augment=None, augmented_domains="both", **settings) -> CycleGANStep:
    return CycleGANStep(
        model.generator_ab, model.generator_ba, model.discriminator_a, model.discriminator_b,
        adam([model.generator_ab, model.generator_ba]), adam([model.discriminator_a, model.discriminator_b]),
        augment=augment, augmented_domains=augmented_domains, **settings,
    )


class RecordingAugment:
    """Records which images it is given and replaces them with noise, which only D can notice."""

    def __init__(self):
        self.seen = []

    def __call__(self, images):
        self.seen.append(images.detach().clone())
        return torch.rand_like(images) * 2 - 1 + 0 * images  # keeps the graph to `images`


def test_augment_sees_exactly_what_the_discriminators_judge():
    real_a, real_b = batches(1)[0]
    plain_model, augmented_model = tiny_pair(), tiny_pair()
    plain = step_for(plain_model)(real_a, real_b)
    augment = RecordingAugment()
    augmented = step_for(augmented_model, augment)(real_a, real_b)
    # G's two adversarial inputs, then D_X's real and fake, then D_Y's real and fake.
    assert len(augment.seen) == 6
    assert torch.equal(augment.seen[2], real_a) and torch.equal(augment.seen[4], real_b)
    with torch.no_grad():  # the first step's fakes come from the initial generators, the same in both pairs
        assert torch.allclose(augment.seen[0], tiny_pair().generator_ab(real_a), atol=1e-6)
    # The cycle and identity terms never see augmented images; the adversarial terms do.
    for name in ("loss_cycle_a", "loss_cycle_b", "loss_identity_a", "loss_identity_b"):
        assert augmented[name] == pytest.approx(plain[name], rel=1e-6), name
    assert augmented["loss_gan_ab"] != pytest.approx(plain["loss_gan_ab"], rel=1e-3)
    assert augmented["loss_d_a"] != pytest.approx(plain["loss_d_a"], rel=1e-3)


@pytest.mark.parametrize("domain", ["a", "b"])
def test_one_domains_augmentation_reaches_its_discriminator_alone(domain):
    real_a, real_b = batches(1)[0]
    plain = step_for(tiny_pair())(real_a, real_b)
    augment = RecordingAugment()
    augmented = step_for(tiny_pair(), augment, augmented_domains=domain)(real_a, real_b)
    # D_X judges domain a's images and F's fakes of them; D_Y domain b's and G's.
    judged, kept = ("loss_gan_ba", "loss_d_a"), ("loss_gan_ab", "loss_d_b")
    if domain == "b":
        judged, kept = kept, judged
    assert len(augment.seen) == 3  # its generator's adversarial input, then its real and fake
    assert torch.equal(augment.seen[1], real_a if domain == "a" else real_b)
    for name in judged:
        assert augmented[name] != pytest.approx(plain[name], rel=1e-3), name
    for name in kept:
        assert augmented[name] == pytest.approx(plain[name], rel=1e-6), name


@pytest.mark.parametrize("domain", ["a", "b"])
def test_one_domains_augmentation_also_alone_in_the_source_images_and_r1(domain):
    real_a, real_b = batches(1)[0]
    augment = RecordingAugment()
    step_for(tiny_pair(), augment, augmented_domains=domain, source_as_fake=0.5, r1_gamma=1.0, r1_interval=1)(real_a, real_b)
    own, other = (real_a, real_b) if domain == "a" else (real_b, real_a)
    # its generator's adversarial input; its real, fake and source (the other domain's real); R1 at its real
    assert len(augment.seen) == 5
    assert torch.equal(augment.seen[1], own) and torch.equal(augment.seen[3], other) and torch.equal(augment.seen[4], own)


def test_the_training_flags_set_every_setting_of_the_step():
    settings = parse_args(["--dataset", "unused", "--diffaugment", "--diffaugment_domains", "b"]).step_kwargs()
    parameters = inspect.signature(CycleGANStep).parameters.values()
    assert set(settings) == {p.name for p in parameters if p.kind is p.KEYWORD_ONLY} - {"accelerator"}
    step = step_for(tiny_pair(), **settings)
    assert step.augment_a is unchanged and step.augment_b is settings["augment"]


def test_an_unknown_augmented_domain_is_refused():
    with pytest.raises(ValueError, match="augmented_domains must be one of"):
        step_for(tiny_pair(), RecordingAugment(), augmented_domains="photo")


@pytest.mark.parametrize("source_as_fake", [0.0, 0.25, 0.9])
def test_source_as_fake_gives_the_other_domains_images_that_share_of_the_fake_side(source_as_fake):
    real_a, real_b = batches(1)[0]
    model = tiny_pair()
    before = copy.deepcopy(model).eval()  # no dropout or batch norm: eval and train passes agree
    step = CycleGANStep(
        model.generator_ab, model.generator_ba, model.discriminator_a, model.discriminator_b,
        adam([model.generator_ab, model.generator_ba]), adam([model.discriminator_a, model.discriminator_b]),
        pool_size=0, source_as_fake=source_as_fake,
    )
    losses = step(real_a, real_b)
    with torch.no_grad():  # D is judged before its update, on the fakes of G before its update
        for name, judge, real, fake, source in [
            ("loss_d_a", before.discriminator_a, real_a, before.generator_ba(real_b), real_b),
            ("loss_d_b", before.discriminator_b, real_b, before.generator_ab(real_a), real_a),
        ]:
            on_fakes = discriminator_loss(judge(real), judge(fake))
            on_sources = discriminator_loss(judge(real), judge(source))
            expected = (1 - source_as_fake) * on_fakes + source_as_fake * on_sources
            assert losses[name] == pytest.approx(scalar(expected), rel=1e-5), name
            assert abs(scalar(on_sources) - scalar(on_fakes)) > 1e-3  # the two shares differ, so the test can fail


class IdentityTranslator(nn.Module):
    """A 1x1 conv that starts as the identity: a cycle through two of them returns its input exactly."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        with torch.no_grad():
            self.conv.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
            self.conv.bias.zero_()

    def forward(self, images):
        return self.conv(images)


def identity_update(lambda_identity, identity_scale=1.0):
    """One step of a fresh tiny pair with these identity weights, its generators on plain SGD so
    that each one's update is its gradient: returns the model and the losses."""
    real_a, real_b = batches(1)[0]
    model = tiny_pair()
    generators = [model.generator_ab, model.generator_ba]
    step = CycleGANStep(
        *generators, model.discriminator_a, model.discriminator_b,
        torch.optim.SGD([p for g in generators for p in g.parameters()], lr=1.0),
        adam([model.discriminator_a, model.discriminator_b]), pool_size=0, lambda_identity=lambda_identity,
    )
    step.identity_scale = identity_scale
    return model, step(real_a, real_b)


def same_weights(first: nn.Module, second: nn.Module) -> bool:
    return all(torch.allclose(a, b, atol=1e-6) for a, b in zip(first.parameters(), second.parameters()))


def test_each_generator_can_have_its_own_identity_weight():
    """(G's, F's): |G(y) - y| moves only G, |F(x) - x| only F."""
    only_g, losses = identity_update((0.5, 0.0))
    both, both_losses = identity_update(0.5)
    neither, _ = identity_update(0.0)
    assert losses["loss_identity_a"] == 0 and losses["loss_identity_b"] == pytest.approx(both_losses["loss_identity_b"])
    assert same_weights(only_g.generator_ab, both.generator_ab) and same_weights(only_g.generator_ba, neither.generator_ba)
    # and the identity term does move G, so the first comparison can fail
    assert not same_weights(only_g.generator_ab, neither.generator_ab)


def test_identity_scale_multiplies_both_identity_weights():
    """identity_scale 0.5 on weight 0.5 is weight 0.25; scale 0 is no identity term."""
    halved, halved_losses = identity_update(0.5, identity_scale=0.5)
    quarter, quarter_losses = identity_update(0.25)
    assert same_weights(halved, quarter) and halved_losses["loss_g"] == pytest.approx(quarter_losses["loss_g"], rel=1e-6)
    faded, faded_losses = identity_update(0.5, identity_scale=0.0)
    assert same_weights(faded, identity_update(0.0)[0]) and faded_losses["loss_identity_a"] == faded_losses["loss_identity_b"] == 0
    assert not same_weights(halved, faded)  # the term does move the generators, so the first comparison can fail


def test_r1_penalty_is_the_squared_gradient_of_the_mean_patch_verdict():
    torch.manual_seed(0)
    judge = nn.Conv2d(3, 1, 1, bias=False)  # a linear PatchGAN: each patch's verdict is w . x at one pixel
    real = torch.rand(2, 3, 8, 8)
    # D(x) = the mean of 64 verdicts: its gradient is w / 64 at every pixel, of squared norm |w|^2 / 64.
    expected = scalar(judge.weight.pow(2).sum()) / 64
    assert scalar(r1_penalty(judge, real)) == pytest.approx(expected, rel=1e-5)
    # Several PatchGANs: the mean of their verdicts, here 2 w . x.
    assert scalar(r1_penalty(lambda x: [judge(x), 3 * judge(x)], real)) == pytest.approx(4 * expected, rel=1e-5)
    r1_penalty(judge, real).backward()  # a loss of the discriminator's weights: it trains them
    assert torch.allclose(judge.weight.grad, 2 * judge.weight / 64)


def r1_update(r1_gamma: float, at_step: int, real_a, real_b):
    """One step of a fresh tiny pair, its discriminators on plain SGD at rate 1, numbered `at_step`."""
    model = tiny_pair()
    before = copy.deepcopy(model)
    step = CycleGANStep(
        model.generator_ab, model.generator_ba, model.discriminator_a, model.discriminator_b,
        adam([model.generator_ab, model.generator_ba]), torch.optim.SGD([*model.discriminator_a.parameters(),
        *model.discriminator_b.parameters()], lr=1.0), pool_size=0, r1_gamma=r1_gamma, r1_interval=4,
    )
    step.step = at_step
    losses = step(real_a, real_b)
    return before, model, losses


def test_r1_joins_one_discriminator_update_in_r1_interval_weighted_up_as_much():
    real_a, real_b = batches(1)[0]
    before, plain, _ = r1_update(0.0, 0, real_a, real_b)
    _, regularised, losses = r1_update(0.5, 0, real_a, real_b)
    judges = [*before.discriminator_a.parameters(), *before.discriminator_b.parameters()]
    penalty = r1_penalty(before.discriminator_a, real_a) + r1_penalty(before.discriminator_b, real_b)
    # (the last conv's bias moves every verdict alike, so it has no part in the penalty)
    gradients = [torch.zeros_like(p) if g is None else g for p, g in zip(judges, torch.autograd.grad(penalty, judges, allow_unused=True))]
    assert losses["loss_r1"] == pytest.approx(scalar(penalty) / 2, rel=1e-5)  # the two discriminators' mean
    # SGD at rate 1: the two updates differ by gamma / 2 * interval times the penalty's gradient.
    moved = [*regularised.discriminator_a.parameters(), *regularised.discriminator_b.parameters()]
    unmoved = [*plain.discriminator_a.parameters(), *plain.discriminator_b.parameters()]
    for with_r1, without, gradient in zip(moved, unmoved, gradients, strict=True):
        assert torch.allclose(without - with_r1, 0.5 / 2 * 4 * gradient, atol=1e-6)
    assert max(scalar(gradient.abs().max()) for gradient in gradients) > 1e-4  # so the check can fail
    # The generators' update comes first and knows nothing of it.
    assert all(torch.equal(a, b) for a, b in zip(plain.generator_ab.parameters(), regularised.generator_ab.parameters()))
    # Off the interval (update 5 of a run resumed at step 5): the paper's update.
    _, skipped, losses = r1_update(0.5, 5, real_a, real_b)
    assert losses["loss_r1"] == 0
    assert all(torch.equal(a, b) for a, b in zip(skipped.parameters(), plain.parameters()))


@pytest.mark.parametrize("cycle_noise", [0.0, 0.5])
def test_cycle_noise_reaches_only_the_way_back_of_the_cycle(cycle_noise):
    discriminators = tiny_pair()
    G, F = IdentityTranslator(), IdentityTranslator()
    D_X, D_Y = discriminators.discriminator_a, discriminators.discriminator_b
    step = CycleGANStep(G, F, D_X, D_Y, adam([G, F]), adam([D_X, D_Y]), cycle_noise=cycle_noise, pool_size=1)
    real_a, real_b = batches(1, batch_size=1, size=128)[0]
    losses = step(real_a, real_b)
    # F(G(x) + noise) = x + noise: the cycle loss is E|noise| = sigma * sqrt(2 / pi), 0 without noise.
    for name in ("loss_cycle_a", "loss_cycle_b"):
        assert losses[name] == pytest.approx(cycle_noise * math.sqrt(2 / math.pi), abs=0.01), name
    # The identity terms and what the discriminators judge are the clean translations.
    assert losses["loss_identity_a"] == losses["loss_identity_b"] == 0
    assert torch.equal(step.pool_b.images[0], real_a) and torch.equal(step.pool_a.images[0], real_b)


class CheckerboardTranslator(IdentityTranslator):
    """Returns its input with a 2-pixel checkerboard of +-0.25 added: a code finer than 2 pixels."""

    def forward(self, images):
        rows, cols = torch.meshgrid(torch.arange(images.shape[-2]), torch.arange(images.shape[-1]), indexing="ij")
        return super().forward(images) + 0.25 * (1 - 2 * ((rows + cols) % 2)).to(images)


@pytest.mark.parametrize("pooled", ["cycle", "identity"])
@pytest.mark.parametrize("downscale, expected", [(1, 0.25), (2, 0.0), (4, 0.0)])
def test_pooled_terms_ignore_detail_finer_than_the_pooling(pooled, downscale, expected):
    """--cycle_downscale pools the round trips, --identity_downscale the identity images; the other term stays whole."""
    discriminators = tiny_pair()
    G, F = IdentityTranslator(), CheckerboardTranslator()
    D_X, D_Y = discriminators.discriminator_a, discriminators.discriminator_b
    step = CycleGANStep(G, F, D_X, D_Y, adam([G, F]), adam([D_X, D_Y]), pool_size=1, **{f"{pooled}_downscale": downscale})
    real_a, real_b = batches(1, batch_size=1, size=34)[0]  # 34 is not a multiple of 4: the last pools are partial
    losses = step(real_a, real_b)
    # Both round trips and F's identity image add the checkerboard once: every pixel counts it,
    # any pooling averages it out.
    pooled_names = ["loss_cycle_a", "loss_cycle_b"] if pooled == "cycle" else ["loss_identity_a"]
    whole_names = ["loss_identity_a"] if pooled == "cycle" else ["loss_cycle_a", "loss_cycle_b"]
    for name in pooled_names:
        assert losses[name] == pytest.approx(expected, abs=1e-6), name
    for name in whole_names:
        assert losses[name] == pytest.approx(0.25, abs=1e-6), name
    # What is coarser than the pooling still counts: a uniform offset (a change of colour) survives it.
    loss = cycle_loss if pooled == "cycle" else identity_loss
    assert loss(real_a + 0.3, real_a, downscale).item() == pytest.approx(0.3, abs=1e-6)


def test_ema_follows_the_weights_with_a_warm_up():
    model = tiny_pair()
    ema = GeneratorEMA(model, decay=0.99)
    initial = copy.deepcopy(ema.model.generator_ab.state_dict())
    assert all(torch.equal(initial[k], v) for k, v in model.generator_ab.state_dict().items())
    with torch.no_grad():
        for p in model.generator_ab.parameters():
            p.add_(1.0)
    ema.update(model)  # the first update's decay is min(0.99, 2 / 11)
    for key, value in ema.model.generator_ab.state_dict().items():
        torch.testing.assert_close(value, initial[key] + 9 / 11)
    for _ in range(2000):
        ema.update(model)
    for key, value in ema.model.generator_ab.state_dict().items():
        torch.testing.assert_close(value, model.generator_ab.state_dict()[key], atol=1e-5, rtol=0)
    # The discriminators are the model's own, so the averaged pair saves like a trained one.
    assert ema.model.discriminator_a is model.discriminator_a
    assert not any(p.requires_grad for p in ema.model.generator_ab.parameters())


def test_ema_does_not_change_training_and_round_trips():
    data = batches(3)
    plain_model, tracked_model = tiny_pair(), tiny_pair()
    # DiffAugment draws from torch's random stream every step, so any extra draw would show.
    torch.manual_seed(1)
    plain_step = step_for(plain_model, diff_augment)
    for real_a, real_b in data:
        plain_step(real_a, real_b)
    torch.manual_seed(1)
    tracked_step = step_for(tracked_model, diff_augment)
    ema = GeneratorEMA(tracked_model, decay=0.9)  # builds networks: must not draw from the run's random stream
    for real_a, real_b in data:
        tracked_step(real_a, real_b)
        ema.update(tracked_model)
    for key, value in plain_model.state_dict().items():
        assert torch.equal(value, tracked_model.state_dict()[key]), key
    assert not torch.equal(ema.model.generator_ab.head.weight, tracked_model.generator_ab.head.weight)

    restored = GeneratorEMA(tiny_pair(seed=5), decay=0.9)
    restored.load_state_dict(ema.state_dict())
    assert restored.updates == 3
    for key, value in ema.model.generator_ba.state_dict().items():
        assert torch.equal(value, restored.model.generator_ba.state_dict()[key])


# --- losses, by hand ---------------------------------------------------------------------------

LOGITS = torch.tensor([[-1.0, 0.0], [1.0, 2.0]])
REAL = torch.tensor([2.0, 0.5])
FAKE = torch.tensor([0.0, 0.5])


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def test_generator_adversarial_losses():
    # lsgan: mean((x - 1)^2) = (4 + 1 + 0 + 1) / 4
    assert generator_adversarial_loss(LOGITS, "lsgan").item() == pytest.approx(1.5)
    # vanilla: mean(-log sigmoid(x)) = mean(softplus(-x))
    expected = sum(softplus(-x) for x in (-1.0, 0.0, 1.0, 2.0)) / 4
    assert generator_adversarial_loss(LOGITS, "vanilla").item() == pytest.approx(expected)
    # hinge: -mean(x)
    assert generator_adversarial_loss(LOGITS, "hinge").item() == pytest.approx(-0.5)
    assert generator_adversarial_loss(LOGITS).item() == pytest.approx(1.5)  # lsgan is the default, as in the paper


def test_discriminator_losses():
    # lsgan: ((mean((r - 1)^2) + mean(f^2)) / 2 = ((1 + 0.25) / 2 + (0 + 0.25) / 2) / 2
    assert discriminator_loss(REAL, FAKE, "lsgan").item() == pytest.approx(0.5 * (0.625 + 0.125))
    # vanilla: BCE(r, 1) = softplus(-r), BCE(f, 0) = softplus(f)
    real = (softplus(-2.0) + softplus(-0.5)) / 2
    fake = (softplus(0.0) + softplus(0.5)) / 2
    assert discriminator_loss(REAL, FAKE, "vanilla").item() == pytest.approx(0.5 * (real + fake))
    # hinge: mean(relu(1 - r)) = (0 + 0.5) / 2; mean(relu(1 + f)) = (1 + 1.5) / 2
    assert discriminator_loss(REAL, FAKE, "hinge").item() == pytest.approx(0.5 * (0.25 + 1.25))
    for bad in ("wgan", "LSGAN"):
        with pytest.raises(ValueError, match="gan_mode must be one of"):
            discriminator_loss(REAL, FAKE, bad)
        with pytest.raises(ValueError, match="gan_mode must be one of"):
            generator_adversarial_loss(LOGITS, bad)


@pytest.mark.parametrize("gan_mode", ["lsgan", "vanilla", "hinge"])
def test_losses_average_over_a_multi_patch_discriminators_members(gan_mode):
    other_real, other_fake = torch.tensor([1.0, -3.0, 0.25]), torch.tensor([0.5, -1.0, 2.0])
    assert generator_adversarial_loss([LOGITS, other_fake], gan_mode).item() == pytest.approx(
        (generator_adversarial_loss(LOGITS, gan_mode).item() + generator_adversarial_loss(other_fake, gan_mode).item()) / 2
    )
    assert discriminator_loss([REAL, other_real], [FAKE, other_fake], gan_mode).item() == pytest.approx(
        (discriminator_loss(REAL, FAKE, gan_mode).item() + discriminator_loss(other_real, other_fake, gan_mode).item()) / 2
    )
    with pytest.raises(ValueError):  # verdicts of two PatchGANs on real images, of one on fakes
        discriminator_loss([REAL, other_real], [FAKE], gan_mode)


def test_cycle_and_identity_losses():
    x = torch.tensor([[0.0, 1.0], [-1.0, 0.5]])
    y = torch.tensor([[0.5, 1.0], [1.0, 0.0]])
    assert cycle_loss(x, y).item() == pytest.approx((0.5 + 0 + 2 + 0.5) / 4)
    assert identity_loss(x, y).item() == pytest.approx((0.5 + 0 + 2 + 0.5) / 4)
    assert cycle_loss(x, x).item() == 0.0


# --- the image pool ----------------------------------------------------------------------------


def constant_images(*values) -> torch.Tensor:
    return torch.stack([torch.full((3, 4, 4), float(v)) for v in values])


def values(images: torch.Tensor) -> list[float]:
    return [float(image[0, 0, 0]) for image in images]


def test_pool_of_size_zero_returns_its_input():
    pool = ImagePool(0)
    fakes = constant_images(1, 2).requires_grad_()
    out = pool.query(fakes)
    assert torch.equal(out, fakes) and not out.requires_grad
    assert pool.images == []


def test_pool_fills_up_then_mixes():
    random.seed(0)
    pool = ImagePool(3)
    assert values(pool.query(constant_images(1, 2))) == [1, 2]  # room left: stored and returned as is
    assert values(pool.query(constant_images(3))) == [3]
    assert [float(image[0, 0, 0, 0]) for image in pool.images] == [1, 2, 3]

    returned, history = [], {1.0, 2.0, 3.0}
    for value in range(4, 40):
        out = values(pool.query(constant_images(value).requires_grad_()))
        assert len(pool.images) == 3
        returned.append((value, out[0]))
        assert out[0] == value or out[0] in history  # fresh, or an older fake swapped out
        history = {float(image[0, 0, 0, 0]) for image in pool.images} | history
    fresh = sum(1 for value, out in returned if out == value)
    assert 0.25 * len(returned) < fresh < 0.75 * len(returned)  # about half and half
    assert all(not image.requires_grad for image in pool.images)

    with pytest.raises(ValueError, match="pool size must be >= 0"):
        ImagePool(-1)


def test_pool_state_dict_round_trip():
    random.seed(1)
    pool = ImagePool(2)
    for value in range(5):
        pool.query(constant_images(value))
    state = pool.state_dict()
    restored = ImagePool(50)
    restored.load_state_dict(state)
    assert restored.size == 2
    assert all(torch.equal(a, b) for a, b in zip(restored.images, pool.images)) and len(restored.images) == 2

    random.seed(7)
    expected = [values(pool.query(constant_images(v))) for v in range(10, 20)]
    random.seed(7)
    assert [values(restored.query(constant_images(v))) for v in range(10, 20)] == expected


# --- the learning-rate and identity-weight schedules -------------------------------------------


def test_linear_decay():
    assert [linear_decay(step, 10, 10) for step in (0, 5, 9, 10, 12, 15, 19, 20, 30)] == pytest.approx(
        [1, 1, 1, 1, 0.8, 0.5, 0.1, 0, 0]
    )
    assert linear_decay(0, 0, 4) == 1.0 and linear_decay(3, 0, 4) == 0.25
    assert linear_decay(4, 5, 0) == 1.0 and linear_decay(5, 5, 0) == 0.0  # no decay phase
    # the paper's schedule: 100 epochs at 2e-4, then linearly to 0 over 100 more
    assert 2e-4 * linear_decay(150, 100, 100) == pytest.approx(1e-4)


def test_identity_schedule():
    """The paper's term by default; a late term off before its start; a fade counted from the start."""
    assert {identity_schedule(step) for step in (0, 1, 10_000)} == {1.0}
    assert [identity_schedule(step, start_step=3) for step in range(5)] == [0, 0, 0, 1, 1]
    assert [identity_schedule(step, decay_steps=4) for step in range(6)] == pytest.approx([1, 0.75, 0.5, 0.25, 0, 0])
    assert [identity_schedule(step, 3, 4) for step in range(9)] == pytest.approx([0, 0, 0, 1, 0.75, 0.5, 0.25, 0, 0])
