"""The Dockerfile the deployment guide's compose file builds, checked without Docker (base images
cannot be pulled here): what it copies exists and is enough to install Kefu, and what it runs is a
``kefu`` command line that listens where the image says."""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import yaml

from bot.cli import _parser
from bot.config import ServerConfig
from tests.browser import ROOT


def instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def copied() -> list[str]:
    sources = []
    for op, args in instructions():
        if op == "COPY":
            *src, _ = args.split()
            sources += src
    return sources


def compose() -> dict[str, object]:
    guide = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    block = guide.split("## Docker Compose", 1)[1].split("```yaml", 1)[1].split("```", 1)[0]
    return dict(yaml.safe_load(block))


def test_every_copy_source_exists_and_is_not_ignored() -> None:
    ignored = [p.strip() for p in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines() if p.strip()]
    for source in copied():
        assert (ROOT / source).exists(), source
        assert not any(fnmatch.fnmatch(source, pattern) for pattern in ignored), source


def test_the_copied_files_are_what_pyproject_installs(tmp_path: Path) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    sources = set(copied())
    assert packages <= sources and {"pyproject.toml", project["project"]["readme"]} <= sources
    context = tmp_path / "context"  # the build context as the image sees it: only what it copies
    context.mkdir()
    for source in sources:
        if (ROOT / source).is_dir():
            shutil.copytree(ROOT / source, context / source, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(ROOT / source, context / source)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "dist"), str(context)], check=True, capture_output=True, timeout=120)
    wheel = next((tmp_path / "dist").glob("kefu-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert {"bot/cli.py", "bot/static/admin.js", "knowledge/default-faq.yaml", "intents/layer.py"} <= set(names)
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "kefu = bot.cli:main" in entry_points


def test_cmd_and_the_compose_command_are_kefu_command_lines_on_the_exposed_port() -> None:
    ops = dict(instructions())
    cmd = json.loads(ops["CMD"])  # exec form: signals reach kefu, not a shell
    exposed = int(ops["EXPOSE"])
    assert exposed == ServerConfig().port
    service = compose()["services"]["kefu"]  # type: ignore[index]
    for line in (cmd, service["command"]):
        assert line[0] == "kefu"
        args = _parser().parse_args(line[1:])
        assert args.command == "serve" and args.host == "0.0.0.0" and args.port is None  # default 8080
    assert service["build"] == "."
    assert service["ports"] == [f"{exposed}:{exposed}"]
    user = ops["USER"]
    assert re.search(rf"useradd .*\b{user}$", ops["RUN"])
    assert f"kefu-cache:/home/{user}/.cache/kefu" in service["volumes"]
    assert "./config.yaml:/app/config.yaml:ro" in service["volumes"] and ops["WORKDIR"] == "/app"
