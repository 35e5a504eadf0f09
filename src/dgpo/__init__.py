"""dgpo: exact clipping objectives for RL with verifiable rewards, built around DGPO (arXiv 2603.14389)."""

__version__ = "0.1.0"
