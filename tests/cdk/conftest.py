"""The ONE synthesis of the app shared by every tests/cdk test (session scope).

The app is built in-process exactly as ``app.py`` builds it, with cdk.json's context (feature
flags included) and a pinned SyncToken, so two runs give the same template.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# jsii prints a banner for Node 20 on every start; it is noise in test output.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

from aws_cdk import App, Stack
from aws_cdk.assertions import Template

REPO_ROOT = Path(__file__).resolve().parents[2]
PINNED_SYNC_TOKEN = "pinned-by-tests"


def cdk_json_context(**overrides: Any) -> dict[str, Any]:
    """cdk.json's context (what `npx cdk synth` passes to the app) plus ``overrides``."""
    context: dict[str, Any] = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    context["topicSyncToken"] = PINNED_SYNC_TOKEN
    context.update(overrides)
    return context


@dataclass(frozen=True)
class SynthesizedApp:
    stack: Stack
    template: Template
    template_json: Mapping[str, Any]
    outdir: Path

    def resources(self, resource_type: str) -> dict[str, Any]:
        return {
            logical_id: resource
            for logical_id, resource in self.template_json["Resources"].items()
            if resource["Type"] == resource_type
        }


@pytest.fixture(scope="session")
def synthesized_app(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedApp:
    import app as cdk_app  # the real entry point's build(), nag plugin included

    outdir = tmp_path_factory.mktemp("cdk.out")
    app = App(context=cdk_json_context(), outdir=str(outdir))
    stack = cdk_app.build(app)
    app.synth()  # raises if cdk-nag reports an unacknowledged finding
    template_json = json.loads((outdir / f"{stack.stack_name}.template.json").read_text())
    return SynthesizedApp(stack, Template.from_json(template_json), template_json, outdir)
