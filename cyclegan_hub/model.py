"""`CycleGAN`: a trained pair of generators as one Hub model, discriminators on request.

A repo or folder holds:
- `config.json`: the domain names and the generator / discriminator settings;
- `model.safetensors`: `generator_ab` (G: A->B) and `generator_ba` (F: B->A);
- `discriminators.safetensors`: `discriminator_a` (D_X, judges A) and `discriminator_b` (D_Y),
  read only by `from_pretrained(..., load_discriminators=True)` to resume or fine-tune.
"""

from __future__ import annotations

import inspect

import torch
from PIL import Image
from torch import nn

from .fast import CompiledGenerator
from .hub import WEIGHTS_FILE, HubModule
from .networks import PatchDiscriminator, ResnetGenerator, build_discriminator
from .translate import translate

DISCRIMINATORS_FILE = "discriminators.safetensors"
SCALES = ("input", "training")


def check_settings(name: str, settings, network: type) -> None:
    """`settings` must be None or a dict of `network`'s keyword arguments."""
    if settings is None:
        return
    known = set(inspect.signature(network.__init__).parameters) - {"self"}
    if not isinstance(settings, dict):
        raise ValueError(f"{name} must be a dict of {network.__name__} settings, got {settings!r}")
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ValueError(f"{name} has unknown settings {unknown}; {network.__name__} takes {sorted(known)}")


class CycleGAN(HubModule):
    """Two generators translating between domains A and B, plus optional discriminators.

    Args:
        domain_a: name of domain A, e.g. "photo".
        domain_b: name of domain B, e.g. "monet".
        generator: keyword arguments of both `ResnetGenerator`s.
        discriminator: keyword arguments of both `PatchDiscriminator`s; a list as `n_layers`
            makes each discriminator a `MultiPatchDiscriminator` with one member per entry.
        training_resolution: shorter side, in pixels, of the images the generators learned from
            (after resizing, before cropping); `translate(..., scale="training")` works at it.
            None when unknown.
        with_discriminators: build the discriminators now (for training). Not stored in the
            config: a loaded model has none unless `load_discriminators=True`.
    """

    def __init__(
        self,
        domain_a: str = "A",
        domain_b: str = "B",
        generator: dict | None = None,
        discriminator: dict | None = None,
        training_resolution: int | None = None,
        with_discriminators: bool = False,
    ):
        super().__init__()
        if not isinstance(domain_a, str) or not isinstance(domain_b, str) or not domain_a or not domain_b or domain_a == domain_b:
            raise ValueError(f"domain names must be two different non-empty strings, got {domain_a!r}, {domain_b!r}")
        for name, settings, network in (("generator", generator, ResnetGenerator), ("discriminator", discriminator, PatchDiscriminator)):
            check_settings(name, settings, network)
        if training_resolution is not None and (not isinstance(training_resolution, int) or training_resolution < 1):
            raise ValueError(f"training_resolution must be a positive integer or None, got {training_resolution!r}")
        self.domain_a, self.domain_b = domain_a, domain_b
        self.training_resolution = training_resolution
        self.generator_config = dict(generator or {})
        self.discriminator_config = dict(discriminator or {})
        try:
            self.generator_ab = ResnetGenerator(**self.generator_config)
        except ValueError as error:
            raise ValueError(f"generator: {error}") from None
        self.generator_ba = ResnetGenerator(**self.generator_config)
        self._fast: dict[str, CompiledGenerator] = {}  # filled by enable_fast_inference
        self.discriminator_a: nn.Module | None = None
        self.discriminator_b: nn.Module | None = None
        if with_discriminators:
            self.add_discriminators()

    @property
    def config(self) -> dict:
        """What config.json holds: the domains and the networks' settings (not whether this
        instance has discriminators, which is about training, not the model)."""
        return dict(
            domain_a=self.domain_a,
            domain_b=self.domain_b,
            generator=dict(self.generator_config),
            discriminator=dict(self.discriminator_config),
            training_resolution=self.training_resolution,
        )

    def save_pretrained(self, save_directory, **kwargs):
        """Like `HubModule.save_pretrained`, writing `config` as config.json."""
        if kwargs.get("config") is None:  # the mixin's push_to_hub passes config=None explicitly
            kwargs["config"] = self.config
        return super().save_pretrained(save_directory, **kwargs)

    def add_discriminators(self) -> None:
        """Create freshly initialised D_X (judges domain A) and D_Y (judges domain B)."""
        try:
            self.discriminator_a = build_discriminator(**self.discriminator_config)
        except ValueError as error:
            raise ValueError(f"discriminator: {error}") from None
        self.discriminator_b = build_discriminator(**self.discriminator_config)
        self.discriminator_a.to(next(self.generator_ab.parameters()).device)
        self.discriminator_b.to(next(self.generator_ab.parameters()).device)

    def swapped(self) -> CycleGAN:
        """The same pair with domains A and B named the other way round: G and F, and D_X and D_Y,
        trade places (A and B are only names)."""
        config = dict(self.config, domain_a=self.domain_b, domain_b=self.domain_a)
        pair = CycleGAN(**config, with_discriminators=self.discriminator_a is not None)
        for ours, theirs in (("generator_ab", "generator_ba"), ("generator_ba", "generator_ab"),
                             ("discriminator_a", "discriminator_b"), ("discriminator_b", "discriminator_a")):
            if getattr(self, theirs) is not None:
                getattr(pair, ours).load_state_dict(getattr(self, theirs).state_dict())
        return pair.to(next(self.parameters()).device).train(self.training)

    def _weight_files(self) -> dict[str, tuple[str, ...]]:
        files = {WEIGHTS_FILE: ("generator_ab.", "generator_ba.")}
        if self.discriminator_a is not None:
            files[DISCRIMINATORS_FILE] = ("discriminator_a.", "discriminator_b.")
        return files

    @classmethod
    def _from_pretrained(cls, *, load_discriminators: bool = False, **kwargs):
        # With discriminators built, `_weight_files` lists their file too, so it is read; else never.
        return super()._from_pretrained(with_discriminators=load_discriminators, **kwargs)

    def resolve_direction(self, direction: str) -> str:
        """"a2b" or "b2a" for a direction given as either, as the target domain's name, or as its
        label in `directions` ("photo -> monet"); names and labels in any case."""
        wanted = str(direction).strip().lower()
        for key, target in (("a2b", self.domain_b), ("b2a", self.domain_a)):
            if wanted in (key, target.lower(), self.directions[key].lower()):
                return key
        raise ValueError(
            f"direction must be 'a2b', 'b2a', {self.domain_b!r} or {self.directions['a2b']!r} (A->B), "
            f"or {self.domain_a!r} or {self.directions['b2a']!r} (B->A); got {direction!r}"
        )

    def source_domain(self, direction: str) -> str:
        """The domain a direction translates from."""
        return self.domain_a if self.resolve_direction(direction) == "a2b" else self.domain_b

    def generator(self, direction: str) -> ResnetGenerator:
        """The generator for "a2b" / "b2a" or the name of the target domain."""
        return self.generator_ab if self.resolve_direction(direction) == "a2b" else self.generator_ba

    def enable_fast_inference(self, warmup_side: int | None = 256, bf16: bool = False) -> None:
        """Make `translate` run both generators compiled (see `cyclegan_hub.fast`), and pay the
        compile now, with warm-up images per direction (None: on the first request instead).

        The warm-up image is not square (`warmup_side` x 3/4 of it), so the graph lets height and
        width vary independently and no later size recompiles. `bf16` adds bfloat16 autocast:
        about 2x faster on a CPU with native bf16, outputs about 1 level in 255 off on average."""
        self._fast = {
            "a2b": CompiledGenerator(self.generator_ab, bf16=bf16),
            "b2a": CompiledGenerator(self.generator_ba, bf16=bf16),
        }
        if warmup_side is not None:
            # PIL images, the way requests come: a tensor warm-up left the first real request to recompile.
            for direction in self._fast:
                self.translate(Image.new("RGB", (warmup_side, warmup_side * 3 // 4)), direction)

    @property
    def compiled(self) -> dict[str, CompiledGenerator]:
        """The compiled generators by direction once `enable_fast_inference` ran, else empty."""
        return dict(self._fast)

    @property
    def directions(self) -> dict[str, str]:
        """Human labels of the two directions, e.g. {"a2b": "photo -> monet", ...}."""
        return {"a2b": f"{self.domain_a} -> {self.domain_b}", "b2a": f"{self.domain_b} -> {self.domain_a}"}

    def translate(self, images, direction: str = "a2b", *, scale: str = "input", **kwargs):
        """Translate PIL images or a tensor; see `cyclegan_hub.translate.translate` for options.

        `scale="input"` translates at the size given; `scale="training"` at the model's training
        resolution (an image with a longer short side is downscaled to it, translated, and the
        result upscaled back), so strokes and textures come out at the size the model learned.
        """
        short_side = self.short_side(scale)
        if short_side is not None:  # else a caller's own short_side, if any, stands
            kwargs["short_side"] = short_side
        generator = self._fast.get(self.resolve_direction(direction)) or self.generator(direction)
        return translate(generator, images, **kwargs)

    def short_side(self, scale: str) -> int | None:
        """The short side a translation at `scale` works at: None for the input's own size."""
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
        if scale == "training" and self.training_resolution is None:
            raise ValueError("this model's config.json has no training_resolution: use scale='input'")
        return self.training_resolution if scale == "training" else None

    def generate_model_card(self, *args, **kwargs):
        """The card `save_pretrained` / `push_to_hub` write; `model_card_kwargs` fill its template."""
        from .model_card import render_model_card

        return render_model_card(self, **kwargs)

    def forward(self, images: torch.Tensor, direction: str = "a2b") -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1], sides divisible by 4 -> translated batch."""
        return self.generator(direction)(images)

