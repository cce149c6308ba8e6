"""The contract, as the installed package carries it.

`spec/openapi.yaml` at the top of the checkout is the one source; `src/openapi.yaml` links to
it, and a build copies it into the package, so a checkout, an editable install and a wheel all
read the same document through `importlib.resources`.
"""

from __future__ import annotations

import copy
import functools
from importlib import resources
from typing import Any

import yaml

SPEC_RESOURCE = "openapi.yaml"


@functools.cache
def spec_text() -> str:
    """The spec's text exactly as written."""
    return resources.files("taskapi").joinpath(SPEC_RESOURCE).read_text(encoding="utf-8")


def load_spec() -> dict[str, Any]:
    """The spec as a fresh dict (Connexion annotates what it is given), parsed only once."""
    return copy.deepcopy(_parsed_spec())


@functools.cache
def _parsed_spec() -> dict[str, Any]:
    # libyaml's loader when PyYAML has it: a third of the time of the pure-Python one.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    spec: dict[str, Any] = yaml.load(spec_text(), Loader=loader)  # noqa: S506 - a safe loader
    return spec
