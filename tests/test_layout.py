"""The package layout: every folder with Python code is installed, under the one `pang` import package."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_listed_in_pyproject() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    mapping = config["package-dir"]
    expected = set()
    for import_name, folder in mapping.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            expected.add(".".join([import_name, *rel.parts]))
    assert expected - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"


def test_top_level_folders_show_the_data_flow() -> None:
    for folder in ("shippers", "indexer", "archive", "dashboards", "docker", "tests", "bench"):
        assert (ROOT / folder).is_dir(), folder
