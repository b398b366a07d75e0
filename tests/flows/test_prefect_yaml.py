"""prefect.yaml declares the contract's deployments, and `make run` serves exactly those (no server needed)."""

from __future__ import annotations

import inspect

import yaml

from flows.deployments import NAMES, PREFECT_YAML, runner_deployments, specs


def test_prefect_yaml_is_valid_for_prefect_deploy() -> None:
    from prefect.cli.deploy._models import PrefectYamlModel

    model = PrefectYamlModel.model_validate(yaml.safe_load(PREFECT_YAML.read_text(encoding="utf-8")))
    assert [d.name for d in model.deployments] == list(NAMES)


def test_each_deployment_s_entrypoint_is_its_flow_and_takes_campaign_first() -> None:
    for spec in specs():
        flow = spec.load_flow()
        assert flow.name == spec.name
        assert spec.entrypoint.startswith("flows/") and spec.entrypoint.endswith(f".py:{flow.fn.__name__}")
        first = next(iter(inspect.signature(flow.fn).parameters.values()))
        assert (first.name, first.annotation) == ("campaign", "str")


def test_the_daily_tick_is_at_00_05_in_each_campaign_s_timezone() -> None:
    (reminders,) = [s for s in specs() if s.name == "reminders"]
    assert reminders.schedules == [{"cron": "5 0 * * *", "timezone": "Asia/Shanghai", "parameters": {"campaign": "sfao-live"}}]
    served = {d.name: d for d in runner_deployments({"sfao-live": "Asia/Shanghai", "other": "Europe/Paris"})}
    assert sorted(served) == sorted(NAMES)
    ticks = [(s.schedule.cron, s.schedule.timezone, s.parameters) for s in served["reminders"].schedules]
    assert ticks == [
        ("5 0 * * *", "Europe/Paris", {"campaign": "other"}),
        ("5 0 * * *", "Asia/Shanghai", {"campaign": "sfao-live"}),
    ]
    assert served["phase-deadline"].schedules in (None, [])  # deadlines are one-off runs, not schedules
    assert served["approval"].entrypoint == "flows/approval.py:approval"
