"""A model and a dataset of your own, outside frugal's package (README: "Your own model and data").

    PYTHONPATH=examples frugal-train model=own model._target_=mynets.Net +model.kwargs.hidden=32
    PYTHONPATH=examples frugal-train data=own data._target_=mynets.Blobs model=own \
        model._target_=mynets.Net

frugal builds `Net(input_shape=…, num_classes=…, **model.kwargs)` for the data at hand and
`Blobs(batch_size=data.batch_size, **data.kwargs)`; parameters and FLOPs are counted from the
module as it runs, so nothing here declares them.
"""

from __future__ import annotations

import itertools
import math

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class Net(nn.Module):
    """A two-layer perceptron for any input shape: (B, *input_shape) -> (B, num_classes)."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, hidden: int = 64):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Flatten(),
            nn.Linear(math.prod(input_shape), hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class Blobs(L.LightningDataModule):
    """`num_classes` Gaussian blobs in `features` dimensions, split 60/20/20. It states
    `input_shape` and `num_classes`, so frugal reads nothing from its batches."""

    def __init__(
        self, batch_size: int, samples: int = 2000, features: int = 8, num_classes: int = 3
    ):
        super().__init__()
        self.batch_size, self.samples = batch_size, samples
        self.input_shape, self.num_classes = (features,), num_classes

    def setup(self, stage: str | None = None) -> None:
        g = torch.Generator().manual_seed(0)
        y = torch.randint(0, self.num_classes, (self.samples,), generator=g)
        centres = torch.randn(self.num_classes, *self.input_shape, generator=g)
        x = centres[y] + torch.randn(self.samples, *self.input_shape, generator=g)
        cuts = [0, int(0.6 * self.samples), int(0.8 * self.samples), self.samples]
        self.splits = [TensorDataset(x[a:b], y[a:b]) for a, b in itertools.pairwise(cuts)]

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.splits[0], self.batch_size, shuffle=True, drop_last=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.splits[1], 500)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.splits[2], 500)
