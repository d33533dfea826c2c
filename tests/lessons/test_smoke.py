from __future__ import annotations

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.sandbox]


def test_disposable_by_buttons(rail, artifacts_dir) -> None:
    rail.start("disposable", 1)
    rail.press("disposable", "kill a pod")
    print(rail.wait("disposable", "pod-replaced"))
    print(rail.wait("disposable", "service-answered"))
    rail.page.screenshot(path=str(artifacts_dir / "lessons-smoke.png"), full_page=True)
