"""Policy-diversity analysis on top of the emulator: stores, analysis, figures, CLI."""

__version__ = "0.1.0"
