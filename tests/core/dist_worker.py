"""Run under torchrun (gloo, 2 processes): gathered local losses vs the single-process global loss."""

import json
import sys

import torch
import torch.distributed as dist
import torch.nn.functional as F

from multissl.core import FeatureQueue, barlow_twins, dcl, info_nce, nt_xent


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
    losses = {
        "info_nce": lambda q, k, ids: info_nce(q, k, temperature=0.1, extra_keys=queue, gather=True,
                                               query_ids=ids, key_ids=ids),
        "info_nce_sym": lambda q, k, ids: info_nce(q, k, temperature=0.1, symmetric=True, gather=True),
        "nt_xent": lambda q, k, ids: nt_xent(q, k, 0.5, gather=True),
        "dcl": lambda q, k, ids: dcl(q, k, 0.5, gather=True),
        "barlow": lambda q, k, ids: barlow_twins(q, k, 5e-3, gather=True),
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
    fq = FeatureQueue(6, d)
    fq.push(F.normalize(k_all[sl].float(), dim=1), ids=ids_all[sl])
    results["queue_ids"] = fq.ids().tolist()
    results["queue_keys_sum"] = float(fq.keys().sum())
    with open(f"{out_path}.{rank}.json", "w") as fh:
        json.dump(results, fh)
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
