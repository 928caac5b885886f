"""Training configuration: one dataclass, the only place defaults live, and the CLI built from it.

The defaults are the paper's recipe (section 4 and appendix 7). Each field is one flag of
`train_accelerate.py`; its help text is the field's `help` metadata.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
from dataclasses import dataclass

from .augment import AUGMENTED_DOMAINS, TRANSFORMS, diff_augment, parse_policy
from .cli import DefaultsHelpFormatter, add_flags, as_values, option, out_of_range, unmet_needs
from .data import PREPROCESS_MODES, STREAMED_HELD_OUT_IMAGES, DataOptions
from .hub import DTYPES
from .losses import GAN_MODES
from .networks import DOWNSAMPLES, NORMS, UPSAMPLES, check_layer_counts


@dataclass
class TrainConfig(DataOptions):
    # data (the dataset flags come from DataOptions)
    domain_a: str = option("A", "name of domain A, e.g. photo (used in the config, card and demo)")
    domain_b: str = option("B", "name of domain B, e.g. monet")
    eval_split: str = option("test", "split with held-out images for samples and FID/KID (falls back to --split)", card=False)
    load_size: int = option(286, "resize images to this size before cropping", minimum=1)
    crop_size: int = option(256, "random crop size: the training resolution", minimum=1)
    preprocess: str = option("resize_and_crop", "augmentation", PREPROCESS_MODES)
    no_flip: bool = option(False, "turn off random horizontal flips")
    num_workers: int = option(4, "DataLoader worker processes that decode and augment images", card=False, minimum=0)
    # networks
    ngf: int = option(64, "generator filters in the first conv layer", minimum=1)
    ndf: int = option(64, "discriminator filters in the first conv layer", minimum=1)
    n_blocks: int = option(9, "residual blocks in the generator (9 for 256 px, 6 for 128 px)", minimum=0)
    n_layers_d: tuple[int, ...] = option(
        (3,), "stride-2 conv layers in the discriminators: 3 gives the paper's 70x70 patches, 4 142x142; "
        "several values give each domain one discriminator per value, their losses averaged", minimum=1
    )
    norm: str = option("instance", "normalisation layer of the discriminators, and of the generators unless --norm_g", NORMS)
    norm_g: str | None = option(
        None, "normalisation in the generators alone, e.g. layer: one mean and spread shared by all "
        "channels instead of one per channel, or layer_instance: a learnt mix of the two per channel (default: --norm)", NORMS
    )
    dropout: float = option(0.0, "dropout in the generator's residual blocks")
    upsample: str = option(
        "transpose", "generator upsampling: the paper's transposed convs, nearest resize + conv, or blur + conv", UPSAMPLES
    )
    input_skip: bool = option(
        False, "generators add their input's logits to their output's, learning a change of the input that keeps its colours"
    )
    unet_skips: bool = option(
        False, "generators concatenate each encoder stage's features to the decoder's at the same resolution "
        "(U-Net skips), so fine detail need not pass the bottleneck"
    )
    downsample: str = option("stride", "downsampling in G and D: strided convs, or stride-1 conv + blur-pool", DOWNSAMPLES)
    downsample_d: str | None = option(None, "downsampling in the discriminators alone (default: --downsample)", DOWNSAMPLES)
    spectral_norm_d: bool = option(
        False, "spectral normalisation on every discriminator conv instead of --norm there (Miyato et al. 2018)"
    )
    # the recipe
    gan_mode: str = option("lsgan", "adversarial loss", GAN_MODES)
    lambda_cyc: float = option(10.0, "weight of the cycle-consistency loss")
    lambda_identity: tuple[float, ...] = option(
        (0.5,), "identity loss weight, as a fraction of lambda_cyc (0 turns it off): one value for both generators, "
        "or two, G's (A->B, kept from changing B's images) then F's (B->A, on A's)", minimum=0
    )
    identity_decay_steps: int | None = option(
        None, "fade the identity weights linearly to 0 over N steps (the first, or from --identity_start_step), then "
        "train without the term: early on it keeps the inputs' colours while the mapping forms, later it no longer "
        "holds G at its input (default: constant, the paper)", minimum=1
    )
    identity_start_step: int = option(
        0, "train without the identity term for the first N steps, then with it (faded over "
        "--identity_decay_steps from there, if given): the generators first leave their inputs, then the term "
        "brings the scenes' colours back (default: from the start, the paper)", minimum=0
    )
    cycle_noise: float = option(
        0.0, "std of Gaussian noise added to a translation before it is translated back in the cycle loss, "
        "so the cycle cannot rely on a faint hidden code (0: none, the paper)", minimum=0
    )
    cycle_downscale: int = option(
        1, "compare each round trip with its input average-pooled by this factor, so detail finer than it "
        "need not be hidden in the translation to survive the cycle (1: every pixel, the paper)", minimum=1
    )
    identity_downscale: int = option(
        1, "compare each identity image with its input average-pooled by this factor, so that the identity term "
        "keeps colours and leaves finer texture free (1: every pixel, the paper)", minimum=1
    )
    pool_size: int = option(50, "history of generated images shown to the discriminators", minimum=0)
    source_as_fake: float = option(
        0.0, "share of each discriminator's fake side given to real images of the other domain, so that it "
        "learns to reject an untranslated input too and not only a generator's artefacts (0: none, the paper)", minimum=0
    )
    r1_gamma: float = option(
        0.0, "weight of the R1 penalty on the discriminators' gradient at real images (Mescheder et al. 2018), "
        "which keeps them from overfitting a small data set (0: none, the paper)", minimum=0
    )
    r1_interval: int = option(16, "add the R1 penalty on one step in this many, weighted up as much", minimum=1)
    diffaugment: bool = option(
        False, "DiffAugment (the transforms of --diffaugment_policy) on every image the discriminators of "
        "--diffaugment_domains see, real and fake"
    )
    diffaugment_policy: str | None = option(
        None, "DiffAugment's transforms, comma-separated, from color, translation, cutout "
        "(default: all three, the DiffAugment paper's policy for small data sets)", needs="diffaugment"
    )
    diffaugment_domains: str = option(
        "both", "whose discriminators see DiffAugment: both, or domain a's or b's alone (e.g. the small one's: "
        "a domain with thousands of images gives its discriminator little to overfit)", tuple(AUGMENTED_DOMAINS),
        needs="diffaugment",
    )
    diffaugment_p: float = option(
        1.0, "the chance that each DiffAugment transform is applied to each image (ADA's p; 1: always, as in DiffAugment)",
        above=0, needs="diffaugment",
    )
    ema_decay: float | None = option(
        None, "keep an exponential moving average of the generators' weights (e.g. 0.999) and save it as the model"
    )
    lr: float = option(2e-4, "Adam learning rate", above=0)
    lr_d: float | None = option(None, "the discriminators' learning rate, decayed alike (default: --lr)", above=0)
    beta1: float = option(0.5, "Adam beta1")
    num_epochs: int = option(100, "epochs at the initial learning rate", minimum=0)
    decay_epochs: int = option(100, "epochs of linear decay to 0 after that", minimum=0)
    max_steps: int | None = option(None, "total steps instead of epochs, split constant:decay as num_epochs:decay_epochs", minimum=1)
    batch_size: int = option(1, "images per domain per step and per process", minimum=1)
    seed: int | None = option(None, "random seed; with it a single-process CPU run is reproducible")
    compile: bool = option(False, "torch.compile the networks (faster steps after a one-off compile)")
    cpu_threads: int | None = option(
        None,
        "torch threads per process when training on the CPU (default: OMP_NUM_THREADS if above 1, else the "
        "machine's physical cores shared among its processes; `accelerate launch` sets OMP_NUM_THREADS=1)", card=False, minimum=1
    )
    # run plumbing
    output_dir: str = option("cyclegan-output", "where checkpoints, samples, logs and the final model go", card=False)
    checkpointing_steps: int = option(500, "save a resumable checkpoint every N steps", card=False, minimum=1)
    checkpoints_total_limit: int | None = option(3, "keep only the last N checkpoints", card=False, minimum=1)
    resume_from_checkpoint: str | None = option(None, "'latest' or a checkpoint folder to continue from", card=False)
    init_from: str | None = option(
        None, "fine-tune a saved model (a folder or Hub id): start from its generators, and its discriminators when "
        "saved with it; its networks must match the flags and its domains --domain_a / --domain_b (either order). "
        "A resumed run takes its weights from the checkpoint instead"
    )
    logging_steps: int = option(50, "log every loss term every N steps", card=False, minimum=1)
    sample_steps: int = option(500, "save a real/translated/reconstructed grid every N steps", card=False, minimum=1)
    eval_steps: int | None = option(None, "compute FID/KID every N steps (and at the end when set)", card=False, minimum=1)
    eval_max_images: int | None = option(None, f"cap on images per domain for FID/KID (default: all; the first {STREAMED_HELD_OUT_IMAGES} of a stream)", card=False, minimum=2)
    report_to: str = option("tensorboard", "experiment tracker", ("tensorboard", "wandb", "all", "none"), card=False)
    save_dtype: str = option("float32", "dtype of the final weights", tuple(DTYPES))
    push_to_hub: bool = option(False, "push the final model (and every --push_steps) to the Hub", card=False)
    hub_model_id: str | None = option(None, "repo id to push to, e.g. org/cyclegan-monet", card=False)
    hub_private: bool = option(False, "create the Hub repo as private", card=False)
    push_steps: int | None = option(None, "also save and push every N steps", card=False, minimum=1)

    def __post_init__(self):
        self.n_layers_d, self.lambda_identity = as_values(self.n_layers_d), as_values(self.lambda_identity)
        problems = out_of_range(self) + unmet_needs(self)
        if len(self.n_layers_d) != 1:
            try:
                check_layer_counts(list(self.n_layers_d))
            except ValueError as error:
                problems.append(f"--n_layers_d: {error}")
        if self.preprocess != "none" and self.crop_size > self.load_size:
            problems.append(f"--crop_size ({self.crop_size}) must be <= --load_size ({self.load_size})")
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            problems.append(f"--ema_decay must be between 0 and 1 (exclusive), got {self.ema_decay}")
        if self.diffaugment_policy is not None:
            try:
                parse_policy(self.diffaugment_policy)
            except ValueError as error:
                problems.append(f"--diffaugment_policy: {error}")
        if len(self.lambda_identity) > 2:
            problems.append(f"--lambda_identity takes one weight or two (G's, F's), got {len(self.lambda_identity)}")
        for flag, value in (("--identity_decay_steps", self.identity_decay_steps), ("--identity_start_step", self.identity_start_step)):
            if value and not any(self.lambda_identity):
                problems.append(f"{flag} schedules the identity term: it needs --lambda_identity above 0")
        if self.source_as_fake >= 1:
            problems.append(f"--source_as_fake is a share of the fake side: below 1, got {self.source_as_fake}")
        if self.diffaugment_p > 1:
            problems.append(f"--diffaugment_p is a probability: at most 1, got {self.diffaugment_p}")
        if self.max_steps is None and self.num_epochs + self.decay_epochs == 0:
            problems.append("--num_epochs and --decay_epochs are both 0: nothing to train")
        if self.streaming and self.max_steps is None:
            problems.append("--streaming needs --max_steps: a stream has no known length")
        if self.push_to_hub and not self.hub_model_id:
            problems.append("--push_to_hub needs --hub_model_id (e.g. org/cyclegan-monet)")
        if not (self.dataset or self.dataset_a or self.dataset_b):
            problems.append("pass --dataset, or --dataset_a and --dataset_b")
        if problems:
            raise ValueError("; ".join(problems))

    def data_options(self) -> DataOptions:
        return DataOptions(**{f.name: getattr(self, f.name) for f in dataclasses.fields(DataOptions)})

    def generator_kwargs(self) -> dict:
        return dict(
            ngf=self.ngf, n_blocks=self.n_blocks, norm=self.norm_g or self.norm, dropout=self.dropout,
            upsample=self.upsample, downsample=self.downsample, input_skip=self.input_skip,
            unet_skips=self.unet_skips,
        )

    def training_resolution(self) -> int | None:
        """The shorter side images have when the networks see them (before cropping), if known."""
        return self.load_size if self.preprocess == "resize_and_crop" else None

    def step_kwargs(self) -> dict:
        """`training.CycleGANStep`'s settings: the loss terms, the pool and what the discriminators see."""
        augment = None
        if self.diffaugment:
            policy = parse_policy(self.diffaugment_policy) if self.diffaugment_policy else tuple(TRANSFORMS)
            augment = functools.partial(diff_augment, policy=policy, probability=self.diffaugment_p)
        return dict(
            gan_mode=self.gan_mode, lambda_cyc=self.lambda_cyc, lambda_identity=self.lambda_identity,
            pool_size=self.pool_size, cycle_noise=self.cycle_noise, cycle_downscale=self.cycle_downscale,
            identity_downscale=self.identity_downscale, source_as_fake=self.source_as_fake,
            r1_gamma=self.r1_gamma, r1_interval=self.r1_interval,
            augment=augment, augmented_domains=self.diffaugment_domains,
        )

    def discriminator_kwargs(self) -> dict:
        return dict(
            ndf=self.ndf, n_layers=self.n_layers_d[0] if len(self.n_layers_d) == 1 else list(self.n_layers_d),
            norm=self.norm, downsample=self.downsample_d or self.downsample, spectral_norm=self.spectral_norm_d,
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Train a CycleGAN (Zhu et al., 2017) with Accelerate. Defaults are the paper's recipe "
        "as the original release runs it.",
        formatter_class=DefaultsHelpFormatter,
    )
    add_flags(parser, TrainConfig)
    return parser


def parse_args(argv=None) -> TrainConfig:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return TrainConfig(**vars(args))
    except ValueError as error:
        parser.error(str(error))
