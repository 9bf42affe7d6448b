"""`Splits` (train/val/test arrays) and the one LightningDataModule that serves them.

Every dataset here fits in memory, so a plain `TensorDataset` with no worker processes is the
fastest loader on a laptop CPU; it also keeps samples-per-step exact for the budget planner.
"""

from __future__ import annotations

from dataclasses import dataclass

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset


@dataclass(frozen=True)
class Splits:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    name: str

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


def split_validation(
    x: np.ndarray, y: np.ndarray, val_size: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Carve `val_size` examples out of a training set, reproducibly."""
    if not 0 < val_size < len(x):
        raise ValueError(f"data.val_size={val_size}: expected 0 < val_size < {len(x)}")
    order = np.random.default_rng(seed).permutation(len(x))
    val, train = order[:val_size], order[val_size:]
    return x[train], y[train], x[val], y[val]


def _tensors(x: np.ndarray, y: np.ndarray) -> TensorDataset:
    return TensorDataset(torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y).long())


class ArrayDataModule(L.LightningDataModule):
    def __init__(self, splits: Splits, batch_size: int, eval_batch_size: int = 1000):
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"data.batch_size={batch_size}: expected a whole number >= 1")
        self.splits = splits
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.train_set = _tensors(splits.x_train, splits.y_train)
        self.val_set = _tensors(splits.x_val, splits.y_val)
        self.test_set = _tensors(splits.x_test, splits.y_test)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.splits.input_shape

    @property
    def num_classes(self) -> int:
        return self.splits.num_classes

    def train_dataloader(self) -> DataLoader:
        # Full batches only: every step then costs the same FLOPs and samples, so the plan
        # is exact. Under DDP, Lightning swaps in a DistributedSampler with the same settings.
        drop_last = len(self.train_set) >= self.batch_size
        return DataLoader(self.train_set, self.batch_size, shuffle=True, drop_last=drop_last)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, self.eval_batch_size)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.test_set, self.eval_batch_size)
