"""The built wheel carries the bundled agents: installed on its own, `mario-rl eval 1-1` plays."""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_an_installed_wheel_plays_its_bundled_agent(tmp_path):
    # Built from a copy: setuptools leaves build/ and egg-info behind where it builds.
    source = tmp_path / "source"
    for part in ("src", "models"):
        shutil.copytree(REPO / part, source / part, ignore=shutil.ignore_patterns("*.egg-info"))
    for part in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / part, source / part)
    dist = tmp_path / "dist"
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    subprocess.run([*build, "-w", str(dist), str(source)], check=True, capture_output=True)
    (wheel,) = dist.glob("mario_rl-*.whl")

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q"]
    subprocess.run([*install, str(wheel)], check=True, capture_output=True)
    # The dependencies come from this environment as a plain path: its .pth files (and with
    # them the editable install of the source tree) are not run, so mario_rl is the wheel's.
    site = Path(
        subprocess.check_output(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            text=True,
        ).strip()
    )
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    env = {k: v for k, v in os.environ.items() if not k.startswith("MARIO_RL_")}
    where = subprocess.check_output(
        [str(python), "-c", "import mario_rl.bundled as b; print(b.models_dir())"],
        cwd=tmp_path,
        env=env,
        text=True,
    ).strip()
    assert Path(where).is_relative_to(venv), where

    out = tmp_path / "eval.json"
    command = [str(venv / "bin" / "mario-rl"), "eval", "1-1", "--episodes", "1", "--no-control"]
    result = subprocess.run(
        [*command, "--quiet", "--out", str(out)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "cleared" in result.stdout
    report = json.loads(out.read_text())
    assert report["episodes"] == 1 and Path(report["checkpoint"]).name == "model.pt"
