"""The golden label-selector table (label_selectors.yaml, apimachinery's own cases) against both
parsers: the sandbox API server's (what `kubectl get -l` is answered with) and the dashboard's (what
the page shows as selected), so the page and the cluster never disagree about which pods a
selector picks."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboard import objects
from sandbox.apiserver import selectors

CASES: list[dict[str, Any]] = yaml.safe_load((Path(__file__).parent / "label_selectors.yaml").read_text())
Matcher = Callable[[Mapping[str, str]], bool]


def api_server(text: str) -> Matcher:
    requirements = selectors.parse_label_selector(text)
    return lambda labels: selectors.labels_match(requirements, dict(labels))


def dashboard(text: str) -> Matcher:
    return objects.parse_selector(text).matches


PARSERS = {
    "api-server": (api_server, selectors.SelectorError),
    "dashboard": (dashboard, objects.SelectorError),
}


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize("case", CASES, ids=[repr(case["selector"]) for case in CASES])
def test_both_parsers_read_a_selector_as_kubernetes_does(parser: str, case: dict[str, Any]) -> None:
    parse, error = PARSERS[parser]
    if not case.get("valid", True):
        with pytest.raises(error):
            parse(case["selector"])
        return
    matcher = parse(case["selector"])
    assert [matcher(labels) for labels in case.get("matches", [])] == [True] * len(case.get("matches", []))
    assert [matcher(labels) for labels in case.get("misses", [])] == [False] * len(case.get("misses", []))
