"""Guards used on both input (safety) and output (postprocess)."""

from shared.components.guards.guard import ScanResult, Span, TextGuard

__all__ = ["ScanResult", "Span", "TextGuard"]
