"""Hub plumbing shared by every network: strict safetensors files, optional half-precision saving.

`PyTorchModelHubMixin` loads with `strict=False` and keeps whatever dtype the module has. We
want the opposite: a renamed or missing weight is an error, files may be stored in float16 or
bfloat16 to halve them, and loading gives float32 unless asked otherwise.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
from pathlib import Path

import torch
from huggingface_hub import PyTorchModelHubMixin, constants, hf_hub_download
from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled
from safetensors.torch import load_file, save_file
from torch import nn

PAPER_URL = "https://arxiv.org/abs/1703.10593"
REPO_URL = "https://github.com/cyclegan-hub/cyclegan-hub"
HUB_METADATA = dict(
    library_name="cyclegan-hub",
    pipeline_tag="image-to-image",
    tags=["cyclegan", "unpaired-image-to-image", "image-to-image", "gan"],
    license="bsd-3-clause",
    paper_url=PAPER_URL,
    repo_url=REPO_URL,
)
WEIGHTS_FILE = "model.safetensors"
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    """Accept "float16", torch.float16 or None; anything else is a clear error."""
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    return DTYPES[dtype]


def looks_like_a_path(source: str) -> bool:
    """True for what cannot be a Hub id ("org/name"): ./x, ../x, /x, ~/x, C:\\x, a/b/c, or a bare name."""
    return source.startswith((".", "/", "~")) or "\\" in source or ":" in source or source.count("/") != 1


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


class HubModule(nn.Module, PyTorchModelHubMixin, **HUB_METADATA):
    """Base class: subclasses list which submodules go in which weights file.

    `_weight_files()` maps a file name to the submodule prefixes it holds ("" = everything).
    `from_pretrained` reads only `model.safetensors`; `CycleGAN` reads its discriminators' file
    on request, so loading for inference never downloads them.
    """

    _save_dtype: torch.dtype | None = None

    def _weight_files(self) -> dict[str, tuple[str, ...]]:
        return {WEIGHTS_FILE: ("",)}

    @contextlib.contextmanager
    def _saving_in(self, dtype: str | torch.dtype | None):
        """Store floating-point weights in `dtype` for the saves inside this block (None: as they are).

        `push_to_hub` saves into a temporary folder through `save_pretrained`, so a dtype set by
        the outer call stays in force for the nested one.
        """
        previous = self._save_dtype
        if dtype is not None:
            self._save_dtype = resolve_dtype(dtype)
        try:
            yield
        finally:
            self._save_dtype = previous

    def save_pretrained(self, save_directory, *, dtype: str | torch.dtype | None = None, **kwargs):
        """Like the mixin's, plus `dtype="float16"|"bfloat16"` to store half-size weights; a card
        given by `model_card_kwargs` replaces the folder's card (the mixin would keep an old one)."""
        if kwargs.get("model_card_kwargs"):
            (Path(save_directory) / "README.md").unlink(missing_ok=True)
        with self._saving_in(dtype):
            return super().save_pretrained(save_directory, **kwargs)

    def push_to_hub(self, repo_id: str, *, dtype: str | torch.dtype | None = None, **kwargs):
        """Like the mixin's (the files `save_pretrained` writes, with the card), plus `dtype`."""
        with self._saving_in(dtype):
            return super().push_to_hub(repo_id, **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | Path, **kwargs):
        """Like the mixin's, with errors that say what went wrong: a local path that does not
        exist, a Hub id that could not be fetched, a config.json that is not JSON or not this
        model's, weights that do not match or are not finite."""
        source = str(pretrained_model_name_or_path)
        if not os.path.isdir(source) and looks_like_a_path(source):
            raise FileNotFoundError(
                f"no folder {source!r}: it is not a Hub id either (those look like 'org/name'), so the Hub was not asked"
            )
        if os.path.isdir(source):  # the mixin would fail on a malformed file with a bare AttributeError
            cls._check_config(os.path.join(source, constants.CONFIG_NAME), source)
        try:
            return super().from_pretrained(source, **kwargs)
        except json.JSONDecodeError as error:
            raise ValueError(f"config.json of {source!r} is not valid JSON: {error}") from None
        except (HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled) as error:
            if constants.HF_HUB_OFFLINE:
                advice = "offline mode (HF_HUB_OFFLINE=1) is on and the Hub cache has no copy of it; pass a local folder"
            else:
                advice = "check the id and the connection; without a network, pass a local folder or set HF_HUB_OFFLINE=1 to use the Hub cache"
            raise OSError(
                f"could not load {source!r}: it is not a local folder, so it was looked up on the Hugging Face Hub "
                f"({_first_line(error)}). {advice}."
            ) from None

    def _save_pretrained(self, save_directory: Path) -> None:
        state = self.state_dict()
        for filename, prefixes in self._weight_files().items():
            tensors = {
                # Integer buffers (BatchNorm's num_batches_tracked) keep their dtype.
                key: value.detach().to(self._save_dtype if value.is_floating_point() and self._save_dtype else value.dtype)
                .contiguous()
                .cpu()
                for key, value in state.items()
                if key.startswith(prefixes)
            }
            if tensors:
                save_file(tensors, str(Path(save_directory) / filename), metadata={"format": "pt"})

    @classmethod
    def _from_pretrained(
        cls,
        *,
        model_id: str,
        revision,
        cache_dir,
        force_download: bool,
        local_files_only: bool,
        token,
        map_location: str = "cpu",
        strict: bool = True,
        torch_dtype: str | torch.dtype | None = None,
        **model_kwargs,
    ):
        hub_kwargs = dict(
            revision=revision,
            cache_dir=cache_dir,
            force_download=force_download,
            token=token,
            local_files_only=local_files_only,
        )
        if not os.path.isdir(model_id):  # already downloaded by the mixin: this reads the cache
            cls._check_config(hf_hub_download(repo_id=model_id, filename=constants.CONFIG_NAME, **hub_kwargs), model_id)
        try:
            model = cls(**model_kwargs)
        except (TypeError, ValueError) as error:
            raise ValueError(f"config.json of {model_id!r} does not describe a {cls.__name__}: {error}") from None
        for filename in model._weight_files():
            model.load_weights_file(model_id, filename, map_location=map_location, strict=strict, **hub_kwargs)
        model.to(map_location)
        dtype = resolve_dtype(torch_dtype)
        if dtype is not None:
            model.to(dtype)
        return model.eval()

    @classmethod
    def _check_config(cls, path: str, source: str) -> None:
        """Refuse a config.json that is not a JSON object of this class's settings (the mixin
        would drop unknown ones silently)."""
        if not os.path.isfile(path):
            return
        try:
            with open(path, encoding="utf-8") as file:
                config = json.load(file)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"config.json of {source!r} is not valid JSON: {error}") from None
        if not isinstance(config, dict):
            raise ValueError(f"config.json of {source!r} must hold a JSON object, got {type(config).__name__}")
        known = set(inspect.signature(cls.__init__).parameters) - {"self"}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValueError(f"config.json of {source!r} has unknown settings {unknown}; a {cls.__name__} takes {sorted(known)}")

    def load_weights_file(self, model_id: str, filename: str, *, map_location="cpu", strict=True, **hub_kwargs):
        """Read one weights file of a local folder or Hub repo into the submodules it holds."""
        if os.path.isdir(model_id):
            path = os.path.join(model_id, filename)
            if not os.path.exists(path):
                raise FileNotFoundError(f"{filename} not found in {model_id}")
        else:
            path = hf_hub_download(repo_id=model_id, filename=filename, **hub_kwargs)
        state = load_file(path, device=str(map_location))
        for key, value in state.items():
            if value.is_floating_point() and not torch.isfinite(value).all():
                raise ValueError(f"{path}: tensor {key!r} holds NaN or infinite values; the file is damaged")
        prefixes = self._weight_files()[filename]
        expected = {key for key in self.state_dict() if key.startswith(prefixes)}
        missing, unexpected = sorted(expected - state.keys()), sorted(state.keys() - expected)
        if strict and (missing or unexpected):
            raise ValueError(
                f"{filename} does not match {type(self).__name__}: missing {missing}, unexpected {unexpected}"
            )
        # Half-precision files are upcast by load_state_dict into the module's float32 parameters.
        self.load_state_dict(state, strict=False)
