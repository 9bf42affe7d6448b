"""`Splits` (train/val/test arrays) and the one LightningDataModule that serves them.

Every dataset here fits in memory, so a plain `TensorDataset` with no worker processes is the
fastest loader on a laptop CPU; it also keeps samples-per-step exact for the budget planner.
"""

from __future__ import annotations

from dataclasses import dataclass

import lightning as L
import numpy as np
import torch
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    DistributedSampler,
    RandomSampler,
    Sampler,
    TensorDataset,
)

from frugal.core.errors import bad


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
    x: np.ndarray, y: np.ndarray, val_size: int, seed: int, key: str = "data.source.val_size"
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Carve `val_size` examples out of a training set, reproducibly; `key` is the setting
    that chose `val_size`, named if it does not fit."""
    if isinstance(val_size, bool) or not isinstance(val_size, int) or not 0 < val_size < len(x):
        raise bad(key, val_size, "", f"a whole number with 0 < n < {len(x)}")
    order = np.random.default_rng(seed).permutation(len(x))
    val, train = order[:val_size], order[val_size:]
    return x[train], y[train], x[val], y[val]


def _tensors(x: np.ndarray, y: np.ndarray) -> TensorDataset:
    return TensorDataset(torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y).long())


class EpochBatchSampler(BatchSampler):
    """A BatchSampler that forwards `set_epoch` (Lightning calls it) to a DistributedSampler."""

    def set_epoch(self, epoch: int) -> None:
        if isinstance(self.sampler, DistributedSampler):
            self.sampler.set_epoch(epoch)


def batched_loader(dataset: TensorDataset, sampler: Sampler, batch_size: int, drop_last: bool):
    """One tensor index per batch instead of one per sample plus a collate: on a small model
    this halves the time of a training step on CPU."""
    batches = EpochBatchSampler(sampler, batch_size, drop_last)
    return DataLoader(dataset, sampler=batches, batch_size=None)


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
        # Full batches only: every step then costs the same FLOPs and samples, so the plan is
        # exact. Ranks get disjoint shards (the trainer runs with use_distributed_sampler=False).
        trainer = self.trainer
        if trainer is not None and trainer.world_size > 1:
            sampler: Sampler = DistributedSampler(
                self.train_set,
                trainer.world_size,
                trainer.global_rank,
                shuffle=True,
                drop_last=True,
            )
        else:
            sampler = RandomSampler(self.train_set)
        drop_last = len(sampler) >= self.batch_size
        return batched_loader(self.train_set, sampler, self.batch_size, drop_last)

    def _eval_loader(self, dataset: TensorDataset) -> DataLoader:
        sampler = range(len(dataset))  # in order; every rank evaluates the whole split
        return batched_loader(dataset, sampler, self.eval_batch_size, drop_last=False)

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader(self.val_set)

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader(self.test_set)
