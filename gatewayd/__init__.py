"""Clawgress: an egress governance gateway for autonomous AI workloads.

Components live in sub-packages named after the architecture (``identity``, ``policy``,
``store``, ...); each one's ``__init__`` states what it does and where its IO boundary is.
"""

__version__ = "0.1.0"
