"""cyclegan-hub: CycleGAN (Zhu et al., 2017) as Hugging Face Hub models."""

from .model import CycleGAN
from .networks import PatchDiscriminator, ResnetGenerator
from .translate import translate

__all__ = ["CycleGAN", "PatchDiscriminator", "ResnetGenerator", "translate"]
__version__ = "0.1.0"
