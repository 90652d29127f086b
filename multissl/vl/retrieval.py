"""Image<->text retrieval evaluation as in ALBEF: rank by ITC similarity, then (when the model has an
ITM head) re-rank each query's top-k by the ITM score (Li et al., NeurIPS 2021, ``evaluation``).

Image->text: an image is a hit when any of its captions is in the top K; text->image: a caption is a
hit when its image is. RSUM here is the MEAN of the six recalls (R@1/5/10 both ways), in percent.
"""

from __future__ import annotations

import numpy as np
import torch

from multissl.eval import retrieval_metrics
from multissl.eval.ranks import first_hit_ranks_from_scores
from multissl.vl.data import normalize_images


@torch.no_grad()
def encode_gallery(method, images: torch.Tensor, captions: list[list[str]], batch_size: int = 128,
                   keep_tokens: bool = False) -> dict[str, object]:
    """Features (and, for re-ranking, token states) of every image (uint8 (N,3,S,S)) and caption."""
    device = next(method.parameters()).device
    flat = [c for caps in captions for c in caps]
    owner = [i for i, caps in enumerate(captions) for _ in caps]
    img_feats, img_tokens = [], []
    for s in range(0, len(images), batch_size):
        x = normalize_images(images[s : s + batch_size]).to(device)
        tok, feat = method.encode_image(x)
        img_feats.append(feat.float())
        if keep_tokens:
            img_tokens.append(tok)
    txt_feats, txt_states, txt_masks = [], [], []
    for s in range(0, len(flat), batch_size):
        enc = method.text.tokenize(flat[s : s + batch_size])
        ids, mask = enc["input_ids"].to(device), enc["attention_mask"].to(device)
        states, feat = method.encode_text(ids, mask)
        txt_feats.append(feat.float())
        if keep_tokens:
            txt_states.extend(states.unbind(0))
            txt_masks.extend(mask.unbind(0))
    out: dict[str, object] = {"image": torch.cat(img_feats), "text": torch.cat(txt_feats),
                              "owner": torch.tensor(owner, dtype=torch.long)}
    if keep_tokens:
        out["image_tokens"] = torch.cat(img_tokens)
        out["text_states"], out["text_masks"] = txt_states, txt_masks
    return out


def _pad(states: list[torch.Tensor], masks: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    length = max(int(m.sum()) for m in masks)
    s = torch.stack([x[:length] if x.shape[0] >= length else torch.cat(
        [x, x.new_zeros(length - x.shape[0], x.shape[1])]) for x in states])
    m = torch.stack([x[:length] if x.shape[0] >= length else torch.cat([x, x.new_zeros(length - x.shape[0])])
                     for x in masks])
    return s, m


@torch.no_grad()
def _itm_scores(method, text_idx: torch.Tensor, image_idx: torch.Tensor, g: dict, batch_size: int) -> torch.Tensor:
    out = []
    for s in range(0, len(text_idx), batch_size):
        ti, ii = text_idx[s : s + batch_size].tolist(), image_idx[s : s + batch_size]
        states, mask = _pad([g["text_states"][t] for t in ti], [g["text_masks"][t] for t in ti])
        logits = method.itm_logits(states, mask, g["image_tokens"][ii.to(g["image_tokens"].device)])
        out.append(logits[:, 1].float().cpu())
    return torch.cat(out)


def _metrics_from_scores(scores: torch.Tensor, relevant, prefix: str) -> dict[str, float]:
    eye = torch.eye(scores.shape[1], device=scores.device)
    return retrieval_metrics(scores, eye, relevant, ks=(1, 5, 10), mrr_cutoff=None, normalize=False, prefix=prefix)


KS = (1, 5, 10)


@torch.no_grad()
def retrieval_ranks(method, images: torch.Tensor, captions: list[list[str]], rerank_k: int = 0,
                    batch_size: int = 128) -> dict[str, torch.Tensor]:
    """Per-query ranks: ``i2t`` (N_img,) rank of each image's best caption, ``t2i`` (N_txt,) rank of each
    caption's image, ``owner`` (N_txt,) the image of each caption. ``rerank_k > 0`` and an ITM head:
    each query's ITC top-k is re-ranked by the ITM score (ALBEF's evaluation)."""
    rerank = rerank_k > 0 and getattr(method, "itm_head", None) is not None
    g = encode_gallery(method, images, captions, batch_size, keep_tokens=rerank)
    img, txt, owner = g["image"], g["text"], g["owner"].to(g["image"].device)
    sim = img @ txt.t()  # (N_img, N_txt), both normalised
    i2t_rel = [torch.nonzero(owner == i).flatten().tolist() for i in range(img.shape[0])]
    scores_i2t, scores_t2i = sim, sim.t().contiguous()
    if rerank:
        k = min(rerank_k, txt.shape[0], img.shape[0])
        top_t = sim.topk(k, dim=1).indices  # (N_img, k) texts per image
        s = _itm_scores(method, top_t.flatten().cpu(), torch.arange(img.shape[0]).repeat_interleave(k), g, batch_size)
        scores_i2t = (sim - 1e3).scatter(1, top_t, s.view(-1, k).to(sim.device) + 1e3)
        top_i = sim.t().topk(k, dim=1).indices  # (N_txt, k) images per text
        s = _itm_scores(method, torch.arange(txt.shape[0]).repeat_interleave(k), top_i.flatten().cpu(), g, batch_size)
        scores_t2i = (sim.t() - 1e3).scatter(1, top_i, s.view(-1, k).to(sim.device) + 1e3)
    i2t = first_hit_ranks_from_scores(lambda a, b: scores_i2t[a:b], scores_i2t.shape[0], i2t_rel)
    t2i = first_hit_ranks_from_scores(lambda a, b: scores_t2i[a:b], scores_t2i.shape[0], owner)
    return {"i2t": i2t, "t2i": t2i, "owner": owner.cpu()}


def recalls_from_ranks(ranks: dict[str, torch.Tensor], prefix: str = "") -> dict[str, float]:
    """R@1/5/10 both ways (percent) and ``rsum`` = their MEAN."""
    out = {}
    for d in ("i2t", "t2i"):
        for k in KS:
            out[f"{prefix}{d}_r@{k}"] = 100.0 * float((ranks[d] <= k).double().mean())
    out[f"{prefix}rsum"] = sum(out[f"{prefix}{d}_r@{k}"] for d in ("i2t", "t2i") for k in KS) / 6
    return out


def _draws(ranks: dict[str, torch.Tensor], idx: np.ndarray) -> dict[str, np.ndarray]:
    """Bootstrap draws of every recall and rsum with IMAGES resampled (each drawn image brings its
    captions: the text->image queries of one image are not independent)."""
    n_img = ranks["i2t"].shape[0]
    owner = ranks["owner"].numpy()
    caps_per_image = np.bincount(owner, minlength=n_img).astype(np.float64)
    out: dict[str, np.ndarray] = {}
    for k in KS:
        hit_i = (ranks["i2t"].numpy() <= k).astype(np.float64)
        out[f"i2t_r@{k}"] = 100.0 * hit_i[idx].mean(1)
        hit_t = np.bincount(owner, weights=(ranks["t2i"].numpy() <= k).astype(np.float64), minlength=n_img)
        out[f"t2i_r@{k}"] = 100.0 * hit_t[idx].sum(1) / caps_per_image[idx].sum(1)
    out["rsum"] = sum(out[f"{d}_r@{k}"] for d in ("i2t", "t2i") for k in KS) / 6
    return out


def bootstrap_recalls(ranks: dict[str, torch.Tensor], n_boot: int = 1000, seed: int = 0) -> dict[str, tuple[float, float]]:
    """Percentile 95% interval of each recall and rsum, images resampled with their captions."""
    from multissl.eval.bootstrap import resample_indices

    idx = resample_indices(ranks["i2t"].shape[0], n_boot, seed)
    return {k: tuple(np.percentile(v, [2.5, 97.5]).tolist()) for k, v in _draws(ranks, idx).items()}


def paired_recalls(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], n_boot: int = 1000,
                   seed: int = 0) -> dict[str, dict[str, float]]:
    """Difference a - b of every recall and rsum on the same images, with its paired 95% interval."""
    from multissl.eval.bootstrap import resample_indices

    if not torch.equal(a["owner"], b["owner"]):
        raise ValueError("paired retrieval needs both models scored on the same images and captions")
    idx = resample_indices(a["i2t"].shape[0], n_boot, seed)
    da, db = _draws(a, idx), _draws(b, idx)
    ra, rb = recalls_from_ranks(a), recalls_from_ranks(b)
    out = {}
    for k in da:
        lo, hi = np.percentile(da[k] - db[k], [2.5, 97.5])
        out[k] = {"difference": ra[k] - rb[k], "low": float(lo), "high": float(hi)}
    return out


@torch.no_grad()
def evaluate_retrieval(method, images: torch.Tensor, captions: list[list[str]], rerank_k: int = 0,
                       batch_size: int = 128, prefix: str = "") -> dict[str, float]:
    """R@1/5/10 image->text and text->image and their mean ``rsum`` (percent) on one split.
    ``rerank_k > 0`` and an ITM head: re-rank the top-k of each query by the ITM score."""
    return recalls_from_ranks(retrieval_ranks(method, images, captions, rerank_k, batch_size), prefix)


@torch.no_grad()
def retrieval_examples(method, images: torch.Tensor, captions: list[list[str]], out_png: str, n_queries: int = 4,
                       seed: int = 0) -> str:
    """A PNG: caption queries with the top-5 retrieved images (the correct image framed green)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    g = encode_gallery(method, images, captions)
    owner = g["owner"]
    sim = g["text"] @ g["image"].t()
    gen = torch.Generator().manual_seed(seed)
    queries = torch.randperm(len(owner), generator=gen)[:n_queries].tolist()
    flat = [c for caps in captions for c in caps]
    fig, axes = plt.subplots(n_queries, 5, figsize=(11, 2.6 * n_queries))
    for r, q in enumerate(queries):
        top = sim[q].topk(5).indices.tolist()
        for c, idx in enumerate(top):
            ax = axes[r][c]
            ax.imshow(images[idx].permute(1, 2, 0).numpy())
            ax.set_xticks([]), ax.set_yticks([])
            hit = idx == int(owner[q])
            for sp in ax.spines.values():
                sp.set_edgecolor("limegreen" if hit else "lightgray")
                sp.set_linewidth(5 if hit else 1)
            if c == 0:
                ax.set_title(flat[q][:90], fontsize=8, loc="left")
    fig.suptitle("text->image: top-5 per caption (green = the caption's image)")
    fig.tight_layout()
    fig.savefig(out_png, dpi=80)
    plt.close(fig)
    return out_png
