"""The installed package is the whole service: it carries the spec it serves and its version."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest
import yaml

from taskapi.cli import main
from taskapi.spec import load_spec, spec_text

CHECKOUT_SPEC = Path(__file__).resolve().parent.parent / "spec" / "openapi.yaml"


def test_the_package_reads_the_spec_of_the_checkout_unchanged() -> None:
    assert spec_text() == CHECKOUT_SPEC.read_text(encoding="utf-8")
    assert load_spec() == yaml.safe_load(CHECKOUT_SPEC.read_text(encoding="utf-8"))


def test_the_package_version_is_the_contract_version() -> None:
    assert importlib.metadata.version("taskapi") == load_spec()["info"]["version"]


def test_the_command_line_tells_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == importlib.metadata.version("taskapi")
