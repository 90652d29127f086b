"""Run under torchrun (gloo, 2 processes): gathered local losses vs the single-process global loss."""

import json
import sys

import torch
import torch.distributed as dist
import torch.nn.functional as F

from multissl.core import (
    FeatureQueue,
    barlow_twins,
    dcl,
    info_nce,
    nt_xent,
    sinkhorn_knopp,
    vicreg,
)


def main(out_path: str) -> None:
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)
    b, d = 4, 6
    q_all = torch.randn(world * b, d, dtype=torch.double)
    k_all = torch.randn(world * b, d, dtype=torch.double)
    ids_all = torch.arange(world * b) // 3  # some same-id pairs cross the process boundary
    queue = torch.randn(5, d, dtype=torch.double)
    sl = slice(rank * b, (rank + 1) * b)
    results = {"world": world, "rank": rank}
    n = world * b
    pos_all = torch.eye(n, dtype=torch.bool)
    pos_all[0, n - 1] = pos_all[n - 1, 1] = True  # extra positives across the process boundary
    drop_all = torch.zeros(n, n, dtype=torch.bool)
    drop_all[1, n - 2] = drop_all[n - 2, 0] = True
    losses = {
        "info_nce": lambda q, k, ids: info_nce(q, k, temperature=0.1, extra_keys=queue, gather=True,
                                               query_ids=ids, key_ids=ids),
        "info_nce_sym": lambda q, k, ids: info_nce(q, k, temperature=0.1, symmetric=True, gather=True),
        "nt_xent": lambda q, k, ids: nt_xent(q, k, 0.5, gather=True),
        "dcl": lambda q, k, ids: dcl(q, k, 0.5, gather=True),
        "barlow": lambda q, k, ids: barlow_twins(q, k, 5e-3, gather=True),
        "vicreg": lambda q, k, ids: vicreg(q, k, gather=True),
        "info_nce_sym_masks": lambda q, k, ids: info_nce(q, k, temperature=0.1, symmetric=True, gather=True,
                                                         positive_mask=pos_all[sl], false_negative_mask=drop_all[sl]),
    }
    for name, fn in losses.items():
        q = q_all[sl].clone().requires_grad_(True)
        k = k_all[sl].clone().requires_grad_(True)
        local = fn(q, k, ids_all[sl])
        local.backward()
        # reference: one process, whole batch
        qg, kg = q_all.clone().requires_grad_(True), k_all.clone().requires_grad_(True)
        if name == "info_nce":
            ref = info_nce(qg, kg, temperature=0.1, extra_keys=queue, query_ids=ids_all, key_ids=ids_all)
        elif name == "info_nce_sym":
            ref = info_nce(qg, kg, temperature=0.1, symmetric=True)
        elif name == "nt_xent":
            ref = nt_xent(qg, kg, 0.5)
        elif name == "dcl":
            ref = dcl(qg, kg, 0.5)
        elif name == "vicreg":
            ref = vicreg(qg, kg)
        elif name == "info_nce_sym_masks":
            ref = info_nce(qg, kg, temperature=0.1, symmetric=True, positive_mask=pos_all, false_negative_mask=drop_all)
        else:
            ref = barlow_twins(qg, kg, 5e-3)
        ref.backward()
        summed = local.detach().clone()
        dist.all_reduce(summed)
        # DDP averages gradients over processes: the effective loss is the mean of local losses (for
        # Barlow Twins every process computes the same global statistic, so the mean is that value)
        mean_loss = summed / world
        grad_q = q.grad / world
        results[name] = {
            "loss_diff": abs(float(mean_loss - ref)),
            "grad_q_diff": float((grad_q - qg.grad[sl]).abs().max()),
            "grad_k_diff": float((k.grad / world - kg.grad[sl]).abs().max()),
        }
    # Sinkhorn-Knopp: each process's codes equal the single-process codes of its rows; the two halves
    # have very different score scales, so a per-process max would change the result
    scores_all = torch.randn(world * b, 7, dtype=torch.double) * 0.05
    scores_all[b:] += 0.3
    local_codes = sinkhorn_knopp(scores_all[sl], epsilon=0.05, iterations=3)
    global_codes = sinkhorn_knopp(scores_all, epsilon=0.05, iterations=3)[sl]
    results["sinkhorn_diff"] = float((local_codes - global_codes).abs().max())
    # staged queue keys: two micro-batches per process, pushed once, in one process's global-batch order
    sq = FeatureQueue(4 * world * b, d)
    ids_mb = torch.arange(2 * world * b).view(2, world * b)  # micro-batch m holds global ids ids_mb[m]
    for m in range(2):
        sq.stage(F.normalize(k_all[sl].float(), dim=1), ids=ids_mb[m][sl])
    sq.flush()
    results["staged_ids"] = sq.ids().tolist()
    fq = FeatureQueue(6, d)
    fq.push(F.normalize(k_all[sl].float(), dim=1), ids=ids_all[sl])
    results["queue_ids"] = fq.ids().tolist()
    results["queue_keys_sum"] = float(fq.keys().sum())
    with open(f"{out_path}.{rank}.json", "w") as fh:
        json.dump(results, fh)
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
