"""Local HTTP twins of the vendor APIs, with fault injection (DESIGN.md, Layers item 5)."""

from .faults import FaultRule
from .server import SandboxServer

__all__ = ["FaultRule", "SandboxServer"]
