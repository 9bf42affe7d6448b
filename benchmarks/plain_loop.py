"""Reference: the MNIST-1D paper's CNN trained by a plain PyTorch loop, no framework.

Batch 100, Adam at 1e-2, 6,000 steps, one thread. `make train` is compared against this
(`benchmarks/train_overhead.py` runs both side by side).

    python benchmarks/plain_loop.py [--threads 1] [--steps 6000] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from mnist1d.data import get_dataset_args, make_dataset
from torch import nn


def paper_cnn(channels: int = 25) -> nn.Module:
    return nn.Sequential(
        nn.Unflatten(1, (1, 40)),
        nn.Conv1d(1, channels, 5, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv1d(channels, channels, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv1d(channels, channels, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(channels * 5, 10),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    start_s = time.perf_counter()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data = make_dataset(get_dataset_args())
    x = torch.tensor(data["x"], dtype=torch.float32)
    y = torch.tensor(data["y"], dtype=torch.long)
    x_test = torch.tensor(data["x_test"], dtype=torch.float32)
    y_test = torch.tensor(data["y_test"], dtype=torch.long)

    model = paper_cnn()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(args.steps):
        idx = torch.randint(0, len(x), (100,))
        loss = loss_fn(model(x[idx]), y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        acc = (model(x_test).argmax(1) == y_test).float().mean().item()
    wall_s = time.perf_counter() - start_s
    print(json.dumps({"test_acc": round(acc, 4), "wall_s": round(wall_s, 2)}))


if __name__ == "__main__":
    main()
