"""The package's version is the contract's: `info.version` of spec/openapi.yaml, read here once
so that the wheel, `taskapi --version` and the served spec can never disagree."""

from pathlib import Path

import yaml
from setuptools import setup

SPEC = Path(__file__).resolve().parent / "spec" / "openapi.yaml"

setup(version=yaml.safe_load(SPEC.read_text(encoding="utf-8"))["info"]["version"])
