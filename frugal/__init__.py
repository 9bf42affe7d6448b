"""frugal: train neural networks under a resource budget declared up front."""

__version__ = "0.1.0"
