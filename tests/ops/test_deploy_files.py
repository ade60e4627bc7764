"""What deploy/ ships is valid where it will run: the Prometheus configuration and rules
(promtool) and the systemd units (systemd-analyze verify)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is missing (.ci/run installs it)")
        pytest.skip(f"{name} is not installed")
    return found


def test_the_prometheus_configuration_and_rules_pass_promtool() -> None:
    """`promtool check config` accepts the scrape configuration and the rule file it loads."""
    result = subprocess.run([_tool("promtool"), "check", "config",
                             str(DEPLOY / "prometheus" / "prometheus.yml")],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "rule files found" in result.stdout


def test_every_process_with_metrics_is_scraped_on_its_unit_port() -> None:
    """The API, the consumer and the worker each have a job; the worker's port is the one its
    environment example sets."""
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    jobs = {j["job_name"]: j["static_configs"][0]["targets"][0]
            for j in config["scrape_configs"]}
    env = (DEPLOY / "systemd" / "analytics.env.example").read_text()
    assert jobs["analytics-api"].endswith(":8084")
    assert jobs["analytics-consumer"].endswith(":8085")
    assert "ANALYTICS_WORKER_METRICS_PORT=9464" in env
    assert jobs["analytics-worker"].endswith(":9464")


def test_there_is_a_unit_per_long_running_command() -> None:
    """serve, consume and worker each have a unit that runs that command."""
    commands = {u.name: next(line for line in u.read_text().splitlines()
                             if line.startswith("ExecStart=")) for u in UNITS}
    assert set(commands) == {"analytics-serve.service", "analytics-consume.service",
                             "analytics-worker.service"}
    for name, line in commands.items():
        assert line.endswith("analytics " + name.split("-")[1].removesuffix(".service"))


def test_the_systemd_units_verify(tmp_path: Path) -> None:
    """`systemd-analyze verify` accepts each unit (the venv and environment paths pointed at
    this checkout, since /opt/analytics does not exist here)."""
    tool = _tool("systemd-analyze")
    venv_bin = Path(sys.executable).parent
    for unit in UNITS:
        text = unit.read_text().replace("/opt/analytics/.venv/bin", str(venv_bin)).replace(
            "/etc/analytics/analytics.env", str(DEPLOY / "systemd" / "analytics.env.example"))
        (tmp_path / unit.name).write_text(text)
    result = subprocess.run([tool, "verify", *sorted(str(p) for p in tmp_path.iterdir())],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
