"""Datasets: built-in sources and your files as in-memory arrays served by one LightningDataModule
(`arrays`, `sources`, `files`), or a LightningDataModule of your own; `build` turns the `data`
config into a DataModule and describes it for result.json."""
