"""The package as installed: every subpackage of clockwork is listed, so a non-editable install has it all."""

from __future__ import annotations

import configparser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_setup_cfg_lists_every_package() -> None:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    listed = set(config["options"]["packages"].split())
    found = {".".join(path.parent.relative_to(ROOT).parts) for path in (ROOT / "clockwork").rglob("__init__.py")}
    found |= {"clockwork.operations", "clockwork.facts"}  # mapped from operations/ and facts/ by package_dir
    assert listed == found
