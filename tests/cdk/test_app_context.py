"""app.py's context settings (no synth): the issue-13 keys and their defaults."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import App, RemovalPolicy

import app as cdk_app
from stacks.platform_stack import DEFAULT_DRIFT_CHECK
from tests.cdk.conftest import cdk_json_context
from topic_sync.exceptions import SpecError


def _settings(**context: Any) -> Any:
    return cdk_app.settings_from_context(App(context=cdk_json_context(**context)))


def test_defaults_are_the_safe_ones() -> None:
    settings = _settings()
    assert settings.allow_placeholder_images is False
    assert settings.certificate_arn is None
    assert settings.alb_logs_bucket is None
    assert settings.alarm_email is None
    assert settings.drift_check == DEFAULT_DRIFT_CHECK == "rate(1 day)"
    assert settings.removal_policy is RemovalPolicy.RETAIN
    assert (settings.images, settings.health_checks, settings.users) == ({}, {}, {})


def test_every_key_is_read() -> None:
    settings = _settings(
        allowPlaceholderImages="true",
        certificateArn="arn:aws:acm:eu-west-1:111122223333:certificate/x",
        albLogsBucket="logs",
        alarmEmail="ops@example.com",
        driftCheck="cron(0 6 * * ? *)",
        **{
            "image.gateway": "r/gw@sha256:" + "0" * 64,
            "healthCheck.gateway": "true",
            "user.gateway": "101",
        },
    )
    assert settings.allow_placeholder_images is True
    assert settings.certificate_arn.endswith("certificate/x")
    assert (settings.alb_logs_bucket, settings.alarm_email) == ("logs", "ops@example.com")
    assert settings.drift_check == "cron(0 6 * * ? *)"
    assert settings.images == {"gateway": "r/gw@sha256:" + "0" * 64}
    assert settings.health_checks == {"gateway": "true"}
    assert settings.users == {"gateway": "101"}


@pytest.mark.parametrize("value", ["off", "OFF", " off "])
def test_drift_check_can_be_turned_off(value: str) -> None:
    assert _settings(driftCheck=value).drift_check is None


@pytest.mark.parametrize(
    ("key", "value"), [("driftCheck", "daily"), ("allowPlaceholderImages", "yes")]
)
def test_invalid_values_fail_the_synth_with_one_line(key: str, value: str) -> None:
    with pytest.raises(SpecError, match=key):
        _settings(**{key: value})
