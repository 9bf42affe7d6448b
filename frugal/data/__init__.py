"""Datasets as in-memory arrays, served by one LightningDataModule."""
