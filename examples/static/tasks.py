"""Deploy tasks for this project. Copy this file with config/ and templates/ into your own
repository: the tasks live in the ``deployer`` package and read config next to this file."""

from pathlib import Path

from deployer.cli import make_collection

ns = make_collection(Path(__file__).parent)
