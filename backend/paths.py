"""Where the project's shipped data lives."""

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
