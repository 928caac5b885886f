"""Model cards for CycleGAN repos, rendered from the Jinja template `model_card.md` beside this file.

Metrics also go into the card's metadata as `EvalResult`s, so the Hub shows them.
"""

from __future__ import annotations

import os
from importlib.resources import files

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .hub import HUB_METADATA

CITATION_ARXIV = "arxiv:1703.10593"


def template_text() -> str:
    """The card's Jinja template, shipped inside the package."""
    return files("cyclegan_hub").joinpath("model_card.md").read_text(encoding="utf-8")


def _metric_rows(model, metrics: dict | None, baseline: str | None) -> list[dict]:
    """One table row per direction present in `metrics`."""
    rows = []
    for key in ("a2b", "b2a"):
        if metrics and f"fid_{key}" in metrics:
            rows.append(
                dict(
                    name=model.directions[key],
                    baseline=baseline,
                    fid=metrics[f"fid_{key}"],
                    kid=metrics[f"kid_{key}"],
                    kid_std=metrics[f"kid_{key}_std"],
                    checkerboard=metrics.get(f"checkerboard_{key}"),
                    detail=metrics.get(f"detail_{key}"),
                    num_x=metrics["num_a" if key == "a2b" else "num_b"],
                    num_y=metrics["num_b" if key == "a2b" else "num_a"],
                )
            )
    return rows


def render_model_card(
    model,
    *,
    model_id: str | None = None,
    dataset: str | None = None,
    metrics: dict | None = None,
    baselines: dict[str, dict] | None = None,
    **template_vars,
) -> ModelCard:
    """Fill the template for a `CycleGAN`.

    Args:
        model: the `CycleGAN` the card describes.
        model_id: Hub id shown in the usage snippet.
        dataset: Hub id or description of the training data.
        metrics: `evaluate.evaluate_translation` output: fid/kid per direction, sample sizes, protocol.
        baselines: label -> metrics of the same form for reference models (e.g. "untrained network").
        template_vars: anything else the template shows (hyperparameters, training_summary, samples_image, ...).
    """
    rows, eval_results = _metric_rows(model, metrics, None), []
    for label, baseline in (baselines or {}).items():
        rows += _metric_rows(model, baseline, label)
    for row in rows:
        if row["baseline"] is None:  # only the model's own scores go into the Hub metadata
            for metric in ("fid", "kid"):
                eval_results.append(
                    EvalResult(
                        task_type="image-to-image",
                        dataset_type=dataset or "custom",
                        dataset_name=dataset or "custom",
                        metric_type=metric,
                        metric_name=f"{metric.upper()} {row['name']}",
                        metric_value=round(float(row[metric]), 5),
                    )
                )
    card_data = ModelCardData(
        library_name=HUB_METADATA["library_name"],
        pipeline_tag=HUB_METADATA["pipeline_tag"],
        license=HUB_METADATA["license"],
        tags=sorted({*HUB_METADATA["tags"], CITATION_ARXIV}),
    )
    if dataset:
        card_data.datasets = [dataset]
    if eval_results:
        card_data.eval_results = eval_results
        card_data.model_name = model_id or f"cyclegan-{model.domain_a}-{model.domain_b}"
    generator = model.generator_ab
    generator_params = sum(p.numel() for p in generator.parameters())
    return ModelCard.from_template(
        card_data,
        template_str=template_text(),
        repo_url=HUB_METADATA["repo_url"],
        domain_a=model.domain_a,
        domain_b=model.domain_b,
        model_id=model_id,
        dataset=dataset,
        generator_kind=generator_kind(generator),
        generator_params=f"{generator_params:,}",
        architecture=template_vars.pop("architecture", None) or f"generator {model.generator_config or 'defaults'}",
        metrics=rows,
        metrics_protocol=(metrics or {}).get("protocol"),
        **template_vars,
    )


def generator_kind(generator) -> str:
    """The generator's architecture in words: the paper's ResNet, or its variants with skips."""
    skips = [name for name, used in (("U-Net skips", generator.unet_skips), ("an input skip", generator.input_skip)) if used]
    return "ResNet" + (" with " + " and ".join(skips) if skips else "")


def card_summary(source: str) -> str | None:
    """The first paragraph of prose in a model's card (README.md of its folder or Hub repo), one
    line; None when there is no card or it cannot be fetched."""
    try:
        card = ModelCard.load(os.path.join(source, "README.md") if os.path.isdir(source) else source)
    except Exception:  # no card, no network, a malformed file: the caller shows what it knows instead
        return None
    for block in card.text.split("\n\n"):
        block = block.strip()
        if block and not block.startswith(("#", "!", "<", "|", "`", "-", ">", "[")):
            return " ".join(block.split())
    return None
