"""AstraGo: an on-premises GPU platform for AI teams."""

__version__ = "0.1.0"
