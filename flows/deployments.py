"""The deployments of `prefect.yaml`, built from that file for `prefect.serve` (one source for names and schedules)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
PREFECT_YAML = ROOT / "prefect.yaml"
NAMES = ("phase-deadline", "reminders", "retry-stuck", "approval", "dispatch-notifications", "sweep-chunks")
PER_CAMPAIGN_SCHEDULE = "reminders"  # its yaml schedule is the template of one schedule per loaded campaign


@dataclass(frozen=True)
class Spec:
    name: str
    entrypoint: str  # flows/<file>.py:<flow function>
    description: str = ""
    tags: list[str] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)
    schedules: list[dict[str, Any]] = field(default_factory=list)

    @property
    def module(self) -> str:
        path, _ = self.entrypoint.split(":")
        return path.removesuffix(".py").replace("/", ".")

    @property
    def function(self) -> str:
        return self.entrypoint.split(":")[1]

    def load_flow(self) -> Any:
        return getattr(importlib.import_module(self.module), self.function)


def specs(path: Path = PREFECT_YAML) -> list[Spec]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [
        Spec(
            name=entry["name"],
            entrypoint=entry["entrypoint"],
            description=" ".join(str(entry.get("description") or "").split()),
            tags=list(entry.get("tags") or []),
            parameters=dict(entry.get("parameters") or {}),
            schedules=list(entry.get("schedules") or []),
        )
        for entry in data["deployments"]
    ]


def _schedules(spec: Spec, campaigns: dict[str, str]) -> list[Any]:
    from prefect.schedules import Cron, Interval

    made: list[Any] = []
    for item in spec.schedules:
        if spec.name == PER_CAMPAIGN_SCHEDULE and campaigns:
            # The daily tick is at 00:05 in *each* campaign's own timezone.
            for key, tz in sorted(campaigns.items()):
                made.append(Cron(item["cron"], timezone=tz, parameters={"campaign": key}, slug=f"daily-{key}"))
        elif "cron" in item:
            made.append(Cron(item["cron"], timezone=item.get("timezone"), parameters=item.get("parameters") or {}))
        else:
            made.append(Interval(item["interval"], parameters=item.get("parameters") or {}))
    return made


def runner_deployments(campaigns: dict[str, str] | None = None, *, names: tuple[str, ...] | None = None) -> list[Any]:
    """`flow.to_deployment(...)` for each deployment of prefect.yaml (or the named ones); `campaigns` maps each loaded
    campaign's key to its timezone, for the daily tick's schedules."""
    made = []
    for spec in specs():
        if names is not None and spec.name not in names:
            continue
        made.append(
            spec.load_flow().to_deployment(
                name=spec.name,
                description=spec.description or None,
                tags=spec.tags,
                parameters=spec.parameters or None,
                schedules=_schedules(spec, campaigns or {}) or None,
            )
        )
    return made
