"""Model cards: a Hugging Face ``README.md`` (YAML front matter + markdown) for an exported model folder.

Hugging Face's model-card format (https://huggingface.co/docs/hub/model-cards): metadata between
``---`` lines (``library_name``, ``pipeline_tag``, ``tags``, ``license``, ``base_model``,
``model-index`` with the evaluation results), then free text. The card says what the model is, the
recipe that made it, the data it saw with that data's licence, its test metrics beside the baselines
the task reported, and how to load it. It is written from the run folder (``recipe.yaml`` and
``results.json``), so it states only what the run measured.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from multissl.report.metrics import fmt, split_metrics

MINILM = ("minilm", "all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2")
BASE_LICENCES = {"sentence-transformers/all-MiniLM-L6-v2": "apache-2.0"}
_HF_LICENCE = [  # licence text in data/README.md -> Hugging Face licence id (first match wins)
    (r"CC BY-NC-SA 3\.0", "cc-by-nc-sa-3.0"), (r"CC BY-NC-SA 4\.0", "cc-by-nc-sa-4.0"),
    (r"CC BY-ND 4\.0", "cc-by-nd-4.0"), (r"CC BY-SA 4\.0", "cc-by-sa-4.0"), (r"CC BY 4\.0", "cc-by-4.0"),
    (r"MIT", "mit"), (r"ODC-By( 1\.0)?", "odc-by"),
]
PIPELINE = {"sentence-transformers": "sentence-similarity", "transformers": "feature-extraction",
            "backbone": "image-feature-extraction"}


def export_format(folder: Path) -> str | None:
    """``sentence-transformers``, ``transformers``, ``backbone`` (timm-like weights file) or None."""
    if (folder / "modules.json").exists():
        return "sentence-transformers"
    if (folder / "config.json").exists() and any(folder.glob("*.safetensors")):
        return "transformers"
    if any(folder.glob("*.safetensors")):
        return "backbone"
    return None


def data_licences(recipe: dict[str, Any], readme: Path | None = None) -> list[dict[str, str]]:
    """The shipped sets the recipe's ``data`` section names, with source and licence from data/README.md.

    A path that is not a shipped set is listed with "not a shipped set: check its licence".
    """
    if readme is None:
        from multissl.data import project_root

        readme = project_root() / "data" / "README.md"
    table: dict[str, dict[str, str]] = {}
    if readme.exists():
        for line in readme.read_text().splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            m = re.match(r"`([^`/]+)/?`", cells[0]) if len(cells) >= 5 else None
            if m:
                table[m.group(1)] = {"set": m.group(1), "what": cells[1], "source": cells[2], "licence": cells[3]}
    data = recipe.get("data") or {}
    values = [v for v in (data.values() if isinstance(data, dict) else [data]) if isinstance(v, str) and v]
    found: list[dict[str, str]] = []
    seen: set[str] = set()
    for value in values:
        parts = Path(value).parts
        hit = next((p for p in parts if p in table), None)
        if hit is None and ("/" in value or "." in Path(value).name) and not value.startswith("hf:"):
            if value not in seen:
                seen.add(value)
                found.append({"set": value, "what": "", "source": "", "licence": "not a shipped set: check its licence"})
            continue
        if hit and hit not in seen:
            seen.add(hit)
            found.append(table[hit])
    return found


def hf_licence(licences: list[dict[str, str]]) -> str:
    """One Hugging Face licence id when every set is under exactly one and the same licence, else
    ``other`` (a row such as "scores CC BY-SA 4.0, sentences keep their sources' licences" is not one)."""
    ids = set()
    for row in licences:
        text = re.sub(r"\([^)]*\)", "", row["licence"]).split(":", 1)[0].strip()
        ids.add(next((hf for pat, hf in _HF_LICENCE if re.fullmatch(pat, text)), "other"))
    return ids.pop() if len(ids) == 1 else "other"


def base_model(recipe: dict[str, Any]) -> str | None:
    """The hub id the model started from, when the recipe names one (``minilm`` is all-MiniLM-L6-v2)."""
    model = recipe.get("model") or {}
    for key in ("name", "name_or_path", "text_tower"):
        name = model.get(key) if isinstance(model, dict) else None
        if isinstance(name, str) and name:
            if name.lower() in MINILM:
                return "sentence-transformers/all-MiniLM-L6-v2"
            if re.fullmatch(r"[\w.-]+/[\w.-]+", name) and not Path(name).exists():
                return name
    return None


def _how_to_load(fmt_name: str, recipe: dict[str, Any]) -> str:
    if fmt_name == "sentence-transformers":
        return ("```python\nfrom sentence_transformers import SentenceTransformer\n\n"
                "model = SentenceTransformer(\"path/to/this/folder\")\n"
                "embeddings = model.encode([\"a first sentence\", \"another one\"])\n```\n\n"
                "or with transformers (mean pooling is in `1_Pooling/config.json`):\n\n"
                "```python\nfrom transformers import AutoModel, AutoTokenizer\n\n"
                "tokenizer = AutoTokenizer.from_pretrained(\"path/to/this/folder\")\n"
                "model = AutoModel.from_pretrained(\"path/to/this/folder\")\n```\n")
    if fmt_name == "transformers":
        return ("```python\nfrom transformers import AutoModel\n\n"
                "model = AutoModel.from_pretrained(\"path/to/this/folder\")\n```\n")
    backbone = (recipe.get("model") or {}).get("backbone", "BACKBONE")
    stem = (recipe.get("model") or {}).get("cifar_stem", True)
    return ("```python\nfrom safetensors.torch import load_file\nfrom multissl.image.models import build_backbone\n\n"
            f"net, dim = build_backbone({backbone!r}, cifar_stem={stem!r})\n"
            "net.load_state_dict(load_file(\"path/to/this/folder/backbone.safetensors\"))\n"
            "features = net(images)  # (B, 3, H, W) -> (B, dim)\n```\n")


def render_card(folder: Path, recipe: dict[str, Any], results: dict[str, Any], run_dir: Path | None = None) -> str:
    """The card's text for the export ``folder`` of a run with this resolved recipe and results."""
    import yaml

    import multissl

    kind = export_format(folder) or "backbone"
    name = str(recipe.get("name", folder.parent.name))
    task = str(recipe.get("task", ""))
    modality, _, method = task.partition(".")
    metrics = results.get("metrics") or {}
    plain, baselines, intervals = split_metrics(metrics)
    tests = [k for k in plain if k.startswith("test/")]
    licences = data_licences(recipe)
    base = base_model(recipe)
    tags = ["multissl", "self-supervised", modality or "unknown", method or "unknown"]
    if kind == "sentence-transformers":
        tags += ["sentence-transformers", "feature-extraction"]
    pipeline = PIPELINE[kind]
    pre = folder / "preprocessor_config.json"
    if kind == "transformers" and pre.exists() and "image" in pre.read_text():  # a vision AutoModel export
        pipeline = "image-feature-extraction"
    meta: dict[str, Any] = {"library_name": {"backbone": "pytorch"}.get(kind, kind), "pipeline_tag": pipeline,
                            "tags": tags, "license": hf_licence(licences) if licences else "other"}
    if base:
        meta["base_model"] = base
    if tests:
        entries = []
        for k in tests:
            entries.append({"type": k.split("/", 1)[1], "value": float(metrics[k]), "name": k})
            entries += [{"type": b.key.split("/", 1)[1], "value": float(metrics[b.key]), "name": f"{b.label}: {b.key}"}
                        for b in baselines.get(k, [])]
        data_name = ", ".join(row["set"] for row in licences) or "see recipe"
        meta["model-index"] = [{"name": name, "results": [{
            "task": {"type": "feature-extraction", "name": f"{modality} {method} evaluation"},
            "dataset": {"name": data_name, "type": data_name, "split": "test"}, "metrics": entries}]}]
    lines = ["---", yaml.safe_dump(meta, sort_keys=False).rstrip(), "---", "", f"# {name}", ""]
    what = {"sentence-transformers": "a sentence-transformers (and transformers) text encoder",
            "transformers": "a transformers encoder", "backbone": "an encoder backbone (timm-like weights file)"}[kind]
    lines += [f"This is {what} trained by multissl with the "
              f"**{method or task}** method on **{modality}** data: {recipe.get('description', '')}".rstrip(), ""]
    if base:
        lines += [f"It starts from `{base}`" + (f" (licence {BASE_LICENCES[base]})." if base in BASE_LICENCES else "."), ""]
    train = recipe.get("train") or {}
    lines += ["## Recipe", "", "| setting | value |", "|---|---|", f"| recipe | `{name}` |", f"| task | `{task}` |"]
    for key in ("epochs", "max_steps", "batch_size", "optimizer", "lr", "weight_decay", "scheduler", "precision",
                "seed", "select_metric"):
        if train.get(key) is not None:
            lines.append(f"| train.{key} | `{train[key]}` |")
    for section in ("method", "model"):
        for key, value in (recipe.get(section) or {}).items():
            if not isinstance(value, (dict, list)):
                lines.append(f"| {section}.{key} | `{value}` |")
    lines += ["", f"Optimizer steps run: {results.get('steps', '-')}; selected checkpoint: "
              f"{results.get('selected_checkpoint', '-')}"
              + (f" (best {results.get('select_metric')} = {fmt(results.get('best_metric'))} at step "
                 f"{results.get('best_step')})" if results.get("select_metric") else "") + ".", "",
              "<details><summary>the full resolved recipe</summary>", "", "```yaml",
              yaml.safe_dump(recipe, sort_keys=False).rstrip(), "```", "", "</details>", ""]
    lines += ["## Training data", ""]
    data = recipe.get("data") or {}
    lines += [f"- `{k}`: `{v}`" for k, v in (data.items() if isinstance(data, dict) else []) if v not in (None, "")]
    lines += [""]
    lines += ["## Evaluation", ""]
    if tests:
        lines += [(f"Test metrics of the selected weights (one run, seed {results.get('seed', '-')}), beside "
                   "the baselines the task measured in the same run:"), "",
                  "| metric | value | interval | baselines |", "|---|---|---|---|"]
        for k in tests:
            iv = intervals.get(k, {})
            ivs = (f"[{fmt(iv['low'])}, {fmt(iv['high'])}]" if "low" in iv and "high" in iv
                   else (f"+- {fmt(iv['std'])}" if "std" in iv else "-"))
            bl = "; ".join(f"{b.label} {fmt(metrics[b.key])}" for b in baselines.get(k, [])) or "-"
            lines.append(f"| {k} | {fmt(metrics[k])} | {ivs} | {bl} |")
    else:
        lines.append("The run reported no test metrics.")
    lines += ["", "## How to load", "", _how_to_load(kind, recipe), "## Licence", ""]
    if licences:
        lines.append("The weights were trained on data under these terms; the `license` above is theirs where "
                     "every set has the same one, else `other`. Check them before any use:")
        lines += [f"- `{row['set']}`: {row['licence']}" + (f" (source: {row['source']})" if row["source"] else "")
                  for row in licences]
    else:
        lines.append("The recipe names no data set this card can look up: check your data's licence.")
    if base and base in BASE_LICENCES:
        lines.append(f"- base model `{base}`: {BASE_LICENCES[base]}")
    lines += ["", "## Provenance", "", f"Written by multissl {multissl.__version__}"
              + (f" from the run folder `{run_dir.name}` of recipe `{name}`." if run_dir else "."), ""]
    return "\n".join(lines)


def write_model_card(folder: Path, recipe: dict[str, Any], results: dict[str, Any],
                     run_dir: Path | None = None) -> Path | None:
    """Write ``folder/README.md`` when ``folder`` holds a model; returns its path (None: nothing to card)."""
    folder = Path(folder)
    if not folder.is_dir() or export_format(folder) is None:
        return None
    out = folder / "README.md"
    out.write_text(render_card(folder, recipe, results, run_dir))
    return out


def write_run_card(run_dir: Path) -> Path | None:
    """The card of ``run_dir/export`` from the run's ``recipe.yaml`` and ``results.json``.

    Called by the trainer after a task's export; a card that cannot be written prints one warning line
    instead of failing a run whose weights and results are already saved.
    """
    import yaml

    run_dir = Path(run_dir)
    folder = run_dir / "export"
    if not folder.is_dir() or not (run_dir / "results.json").exists():
        return None
    try:
        recipe_file = run_dir / "recipe.yaml"
        recipe = (yaml.safe_load(recipe_file.read_text()) or {}) if recipe_file.exists() else {}
        return write_model_card(folder, recipe, json.loads((run_dir / "results.json").read_text()), run_dir)
    except (OSError, ValueError, TypeError, KeyError, yaml.YAMLError) as exc:
        print(f"multissl: warning: no model card written in {folder}: {exc}")
        return None
