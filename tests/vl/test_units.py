"""Unit tests of the vision-language pieces: hard-negative sampler, MLM masking, TCL's local MI,
queue / momentum / alpha behaviour, caption loaders and retrieval metrics."""

import json
import tarfile
from io import BytesIO

import pytest
import torch
import torch.nn.functional as F

from multissl.vl.methods import global_local_infonce, sample_hard_negatives
from multissl.vl.models import patch_pool


def test_hard_negatives_never_the_positive():
    torch.manual_seed(0)
    b = 32
    ids = torch.randint(0, 8, (b,))  # many same-image rows: all must be avoided
    sim = torch.randn(b, b) * 5
    sim[torch.arange(b), torch.arange(b)] = 50.0  # the positive dominates the softmax
    for _ in range(20):
        idx = sample_hard_negatives(sim, ids, ids)
        assert (ids[idx] != ids).all()


def test_hard_negatives_follow_the_similarity():
    torch.manual_seed(0)
    ids = torch.arange(4)
    sim = torch.tensor([[9.0, 8.0, -9.0, -9.0]] * 4)
    idx = torch.stack([sample_hard_negatives(sim, ids, ids) for _ in range(200)])
    assert (idx[:, 0] == 1).float().mean() > 0.95  # row 0: the hardest non-positive is column 1
    assert (idx[:, 1] == 0).float().mean() > 0.95


def test_hard_negatives_underflow_and_degenerate_rows():
    ids = torch.tensor([0, 1, 1])
    sim = torch.tensor([[1e4, -1e4, -1e4], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    idx = sample_hard_negatives(sim, ids, ids)
    assert idx[0] in (1, 2) and idx[1] == 0 and idx[2] == 0
    same = torch.zeros(3, dtype=torch.long)
    assert sample_hard_negatives(torch.zeros(3, 3), same, same).tolist() == [1, 2, 0]


def test_mlm_masking_rate_and_specials():
    from multissl.encoders.hf import load_tokenizer
    from multissl.encoders.masking import mask_tokens, special_tokens_mask

    tok = load_tokenizer("minilm")
    caps = ["A little girl climbing the stairs to her playhouse ."] * 200 + ["A dog ."] * 56
    enc = tok(caps, padding=True, return_tensors="pt")
    ids, att = enc["input_ids"], enc["attention_mask"]
    special = special_tokens_mask(ids, tok.all_special_ids) | (att == 0)
    g = torch.Generator().manual_seed(0)
    masked, labels = mask_tokens(ids, tok.mask_token_id, tok.vocab_size, special, rate=0.15, generator=g)
    chosen = labels != -100
    assert not chosen[special].any() and (masked[special] == ids[special]).all()
    assert abs(chosen.float().sum() / (~special).sum() - 0.15) < 0.02
    as_mask = (masked == tok.mask_token_id) & chosen
    assert abs(as_mask.sum() / chosen.sum() - 0.8) < 0.05
    assert (labels[chosen] == ids[chosen]).all()


def _g2l_reference(local, glob, temp, mask=None):
    """The official per-(sample, token) formulation, looped."""
    n, t, _ = local.shape
    losses = []
    for i in range(n):
        per = []
        negs = [glob[i] @ local[j, k] / temp for j in range(n) if j != i for k in range(t)
                if mask is None or mask[j, k]]
        for k in range(t):
            if mask is not None and not mask[i, k]:
                continue
            pos = glob[i] @ local[i, k] / temp
            per.append(-torch.log_softmax(torch.stack([pos] + negs), 0)[0])
        losses.append(torch.stack(per).mean())
    return torch.stack(losses).mean()


def test_local_mi_matches_the_looped_reference():
    torch.manual_seed(0)
    local = F.normalize(torch.randn(4, 5, 8), dim=-1)
    glob = F.normalize(torch.randn(4, 8), dim=-1)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0], [1, 1, 0, 0, 0]])
    assert torch.allclose(global_local_infonce(local, glob, 0.1, mask), _g2l_reference(local, glob, 0.1, mask), atol=1e-5)
    assert torch.allclose(global_local_infonce(local, glob, 0.1), _g2l_reference(local, glob, 0.1), atol=1e-5)


def test_patch_pool_grid():
    assert patch_pool(torch.randn(2, 256, 8)).shape == (2, 16, 8)  # 16x16 -> 4x4 (TCL)
    assert patch_pool(torch.randn(2, 16, 8)).shape == (2, 4, 8)
    assert patch_pool(torch.randn(2, 64, 8)).shape == (2, 16, 8)  # 8x8, kernel = stride = 2 -> 4x4 (official)
    x = torch.arange(16.0).view(1, 16, 1)  # a 4x4 grid: each output is the mean of one 2x2 block
    assert patch_pool(x).flatten().tolist() == [2.5, 4.5, 10.5, 12.5]
    assert patch_pool(torch.randn(2, 7, 8)).shape == (2, 7, 8)


@pytest.fixture(scope="module")
def albef_parts():
    from multissl.recipes import load_recipe
    from multissl.run import build_parts

    recipe = load_recipe("vl/tcl-flickr8k", ["data.image_size=32", "method.queue_size=16", "train.batch_size=8",
                                                 "data.max_length=12"])
    return build_parts(recipe)[1]


def test_fusion_layers_copy_the_tower(albef_parts):
    m = albef_parts.method
    assert len(m.text.model.encoder.layer) == 3 and len(m.fusion.layers) == 3
    from multissl.encoders.hf import load_auto_model

    full = load_auto_model("minilm")
    assert torch.equal(m.fusion.layers[0].q.weight, full.encoder.layer[3].attention.self.query.weight)


def test_queue_momentum_and_alpha(albef_parts):
    from multissl.core import Progress, after_optimizer_step

    m = albef_parts.method
    batch = albef_parts.collate_fn([albef_parts.train_data[i] for i in range(8)])
    assert "image_aug" in batch  # TCL: two image views
    opt = torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=0.1)
    ptr0 = int(m.text_queue.ptr)
    m.train()
    out = m(batch)
    for k in ("i2t", "t2i", "i2i", "t2t", "g2l_t", "g2l_i", "itm", "mlm"):
        assert torch.isfinite(torch.as_tensor(out.logs[k])), k
    assert out.logs["alpha"] == 0.0  # ramp starts at 0
    assert int(m.text_queue.ptr) == ptr0 and m.text_queue.num_staged == 8  # forward only stages keys
    out.loss.backward()
    online0 = m.image_proj.weight.detach().clone()
    target0 = m.image_proj_m.weight.detach().clone()
    opt.step()
    after_optimizer_step(m, Progress(step=5, total_steps=100, epoch=0, steps_per_epoch=10))
    assert int(m.text_queue.ptr) == (ptr0 + 8) % 16 and int(m.image_queue.ptr) == (ptr0 + 8) % 16
    assert (m.text_queue.ids()[ptr0 : ptr0 + 8] == batch["image_ids"]).all() and m.text_queue.num_staged == 0
    expect = 0.995 * target0 + 0.005 * m.image_proj.weight.detach()
    assert not torch.equal(online0, m.image_proj.weight)
    assert torch.allclose(m.image_proj_m.weight, expect, atol=1e-6)
    assert abs(m.current_alpha() - 0.2) < 1e-6  # half an epoch: 0.4 * 0.5
    after_optimizer_step(m, Progress(step=30, total_steps=100, epoch=3, steps_per_epoch=10))
    assert abs(m.current_alpha() - 0.4) < 1e-6
    assert not any(p.requires_grad for p in m.image_tower_m.parameters())
    assert 0.001 <= float(m.temp().detach()) <= 0.5


def test_caption_layouts_agree(tmp_path):
    from multissl.vl.data import load_captions

    base = load_captions("flickr8k-mini/captions.jsonl").subset("test")
    from multissl.data import resolve_data_path

    root = resolve_data_path("flickr8k-mini")
    names, caps = base.names[:3], base.captions[:3]
    coco = {"images": [{"id": i, "file_name": f"images/{n}"} for i, n in enumerate(names)],
            "annotations": [{"image_id": i, "caption": c} for i, cs in enumerate(caps) for c in cs]}
    (tmp_path / "captions_test2017.json").write_text(json.dumps(coco))
    karpathy = {"images": [{"filename": n, "filepath": "images", "split": "test",
                            "sentences": [{"raw": c} for c in cs]} for n, cs in zip(names, caps)]}
    (tmp_path / "dataset_flickr8k.json").write_text(json.dumps(karpathy))
    rows = "image,caption,split\n" + "".join(f"images/{n},\"{c}\",test\n" for n, cs in zip(names, caps) for c in cs)
    (tmp_path / "pairs.csv").write_text(rows)
    with tarfile.open(tmp_path / "shard-test-000.tar", "w") as tf:
        for n, cs in zip(names, caps):
            for ext, data in (("jpg", (root / "images" / n).read_bytes()), ("txt", "\n".join(cs).encode())):
                info = tarfile.TarInfo(f"{n[:-4]}.{ext}")
                info.size = len(data)
                tf.addfile(info, BytesIO(data))
    for f in ("captions_test2017.json", "dataset_flickr8k.json", "pairs.csv", "shard-test-000.tar"):
        got = load_captions(str(tmp_path / f), image_root=str(root))
        assert got.captions == caps, f
        assert set(got.split) == {"test"}, f
    from multissl.vl.data import load_images

    a = load_images(load_captions(str(tmp_path / "pairs.csv"), str(root)).images, 32)
    b = load_images(load_captions(str(tmp_path / "shard-test-000.tar")).images, 32)
    assert torch.equal(a, b)


def test_retrieval_metrics_perfect_and_chance():
    from multissl.vl.retrieval import _metrics_from_scores

    n = 20
    owner = torch.arange(n).repeat_interleave(5)
    scores = (torch.arange(n)[:, None] == owner[None, :]).float()  # perfect image->text
    rel = [torch.nonzero(owner == i).flatten().tolist() for i in range(n)]
    m = _metrics_from_scores(scores, rel, "i2t_")
    assert m["i2t_r@1"] == 1.0
    m = _metrics_from_scores(scores.t().contiguous(), owner, "t2i_")
    assert m["t2i_r@1"] == 1.0
