"""``multissl bench image``: SimCLR training throughput (source images/s) of multissl vs lightly.

Both sides train the same backbone (default ResNet-18 with the CIFAR stem), the same projection head
(512-512-128, lightly's CIFAR benchmark head), NT-Xent at temperature 0.5, SGD, the same batch size,
precision and memory layout, in one process:

- end to end: multissl feeds uint8 batches from memory and draws the views on the device
  (:class:`~multissl.image.augment.BatchAugment` inside the method's forward); lightly feeds PIL
  images through ``SimCLRTransform(input_size=32, cj_strength=0.5, gaussian_blur=0.0)`` (its CIFAR-10
  benchmark setting) in a ``DataLoader`` with ``--workers`` processes, as its users do;
- model step only: the same pre-made views for both (forward, backward, optimizer step).

lightly is a dev/bench dependency only.
"""

from __future__ import annotations

import argparse
import time

import torch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _peak_mb(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _backbone(name: str, channels_last: bool, device: torch.device):
    from multissl.image.models import build_backbone

    net, dim = build_backbone(name, cifar_stem=True)
    net = net.to(device)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    return net, dim


def _timed_loop(step, batches, warmup: int, steps: int, device: torch.device) -> float:
    """Seconds for ``steps`` calls of ``step`` after ``warmup`` untimed ones (batches is an iterator)."""
    for _ in range(warmup):
        step(next(batches))
    _sync(device)
    t = time.perf_counter()
    for _ in range(steps):
        step(next(batches))
    _sync(device)
    return time.perf_counter() - t


def _cycle(loader):
    while True:
        yield from loader


def ours(images, args, device, autocast, premade=None) -> tuple[float, float | None]:
    from torch.utils.data import DataLoader, RandomSampler

    from multissl.image.augment import ViewConfig
    from multissl.image.data import ImageTensorDataset, batch_collate
    from multissl.image.methods import SimCLR

    torch.manual_seed(0)
    net, dim = _backbone(args.backbone, args.channels_last, device)
    method = SimCLR(net, dim, [ViewConfig(), ViewConfig()], proj_hidden=512, proj_dim=128, temperature=0.5,
                    channels_last=args.channels_last).to(device)
    opt = torch.optim.SGD(method.parameters(), lr=0.06, momentum=0.9, weight_decay=5e-4)
    if args.compile:
        method.forward = torch.compile(method.forward)
    _reset_peak(device)

    if premade is not None:
        from multissl.core import nt_xent

        v1, v2 = premade

        def step(_):
            with autocast():
                z = method.projector(method.encode(torch.cat([v1, v2])))
                loss = nt_xent(*z.chunk(2), 0.5)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        batches = iter(int, 1)  # endless dummy iterator
    else:
        ds = ImageTensorDataset(images)
        loader = DataLoader(ds, batch_size=args.batch_size, sampler=RandomSampler(ds), drop_last=True,
                            collate_fn=batch_collate, pin_memory=device.type == "cuda")

        def step(batch):
            batch = batch.to(device, non_blocking=True)
            with autocast():
                loss = method(batch).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        batches = _cycle(loader)
    seconds = _timed_loop(step, batches, args.warmup, args.steps, device)
    return args.steps * args.batch_size / seconds, _peak_mb(device)


class _PILSet(torch.utils.data.Dataset):
    def __init__(self, images, transform):
        self.images, self.transform = images, transform

    def __len__(self):
        return self.images.shape[0]

    def __getitem__(self, i):
        from PIL import Image

        img = Image.fromarray(self.images[i].permute(1, 2, 0).numpy())
        return self.transform(img)


def peer(images, args, device, autocast, premade=None) -> tuple[float, float | None]:
    from lightly.loss import NTXentLoss
    from lightly.models.modules import SimCLRProjectionHead
    from lightly.transforms import SimCLRTransform
    from torch.utils.data import DataLoader

    torch.manual_seed(0)
    net, dim = _backbone(args.backbone, args.channels_last, device)
    head = SimCLRProjectionHead(dim, 512, 128).to(device)
    criterion = NTXentLoss(temperature=0.5)
    params = list(net.parameters()) + list(head.parameters())
    opt = torch.optim.SGD(params, lr=0.06, momentum=0.9, weight_decay=5e-4)
    fmt = (lambda x: x.contiguous(memory_format=torch.channels_last)) if args.channels_last else (lambda x: x)
    _reset_peak(device)

    def train_step(x0, x1):
        with autocast():
            z0, z1 = head(net(fmt(x0))), head(net(fmt(x1)))  # lightly's examples: one forward per view
            loss = criterion(z0, z1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    if premade is not None:
        v1, v2 = premade
        batches, step = iter(int, 1), (lambda _: train_step(v1, v2))
    else:
        transform = SimCLRTransform(input_size=32, cj_strength=0.5, gaussian_blur=0.0)
        loader = DataLoader(_PILSet(images, transform), batch_size=args.batch_size, shuffle=True, drop_last=True,
                            num_workers=args.workers, pin_memory=device.type == "cuda",
                            persistent_workers=args.workers > 0)

        def step(views):
            x0, x1 = views
            train_step(x0.to(device, non_blocking=True), x1.to(device, non_blocking=True))

        batches = _cycle(loader)
    seconds = _timed_loop(step, batches, args.warmup, args.steps, device)
    return args.steps * args.batch_size / seconds, _peak_mb(device)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="multissl bench image", description=__doc__.splitlines()[0])
    p.add_argument("--data", default="cifar10-mini", help="image-folder root (default: the shipped subset)")
    p.add_argument("--backbone", default="torchvision:resnet18")
    p.add_argument("--batch-size", type=int, default=None, help="default: 512 on GPU, 32 on CPU")
    p.add_argument("--steps", type=int, default=None, help="timed steps (default: 30 on GPU, 3 on CPU)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps first (default: 10 GPU, 1 CPU)")
    p.add_argument("--workers", type=int, default=None, help="lightly DataLoader workers (default: min(8, cores))")
    p.add_argument("--precision", choices=("auto", "bf16", "no"), default="auto", help="auto: bf16 on GPU")
    p.add_argument("--no-channels-last", dest="channels_last", action="store_false")
    p.add_argument("--compile", action="store_true", help="torch.compile multissl's forward")
    p.add_argument("--skip-peer", action="store_true", help="measure multissl only")
    args = p.parse_args(argv)
    import os

    from multissl.bench.harness import Measurement, record
    from multissl.image.augment import BatchAugment, ViewConfig
    from multissl.image.data import load_image_folder

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    gpu = device.type == "cuda"
    args.batch_size = args.batch_size or (512 if gpu else 32)
    args.steps = args.steps or (30 if gpu else 3)
    args.warmup = args.warmup if args.warmup is not None else (10 if gpu else 1)
    args.workers = args.workers if args.workers is not None else min(8, os.cpu_count() or 1)
    bf16 = args.precision == "bf16" or (args.precision == "auto" and gpu)
    if gpu:
        torch.backends.cudnn.benchmark = True

    def autocast():
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)

    images = load_image_folder(args.data, "train").images
    torch.manual_seed(0)
    aug = BatchAugment(ViewConfig())
    premade = (aug(images[: args.batch_size].to(device)), aug(images[: args.batch_size].to(device)))
    where = f"{args.backbone}, batch {args.batch_size}, {'bf16' if bf16 else 'fp32'}, {device.type}"
    rows = []
    o_e2e, o_mem = ours(images, args, device, autocast)
    o_step, _ = ours(images, args, device, autocast, premade)
    p_e2e = p_step = p_mem = None
    if not args.skip_peer:
        try:
            p_e2e, p_mem = peer(images, args, device, autocast)
            p_step, _ = peer(images, args, device, autocast, premade)
        except ImportError as exc:
            print(f"lightly is not installed ({exc}); measuring multissl only")
    rows.append(Measurement("image", f"SimCLR train end to end ({where}, peer workers {args.workers})", o_e2e, p_e2e,
                            "images/s", "lightly SimCLRTransform+DataLoader+NTXentLoss",
                            extra={"peak_mem_mb_ours": o_mem, "peak_mem_mb_peer": p_mem}))
    rows.append(Measurement("image", f"SimCLR model step only ({where})", o_step, p_step, "images/s",
                            "lightly NTXentLoss, same pre-made views"))
    if o_mem is not None:
        rows.append(Measurement("image", f"SimCLR end to end peak GPU memory ({where})", o_mem, p_mem, "MiB",
                                "lightly", higher_is_better=False))
    record(rows)
    return 0
