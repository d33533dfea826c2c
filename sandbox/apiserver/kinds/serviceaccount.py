"""ServiceAccounts (core/v1): printServiceAccount's SECRETS column. Every namespace gets its
`default` ServiceAccount when it is created (see `namespace.py`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sandbox.apiserver.printing import CORE, Row, age_col, age_of, col, doc, name_col, name_of
from sandbox.apiserver.strategy import Resource, Strategy


def _serviceaccount_row(obj: dict, now: datetime) -> Row:
    return [name_of(obj), len(obj.get("secrets") or []), age_of(obj, now)]


RESOURCE = Resource("", "v1", "ServiceAccount", "serviceaccounts", "io.k8s.api.core.v1.ServiceAccount",
                    short_names=("sa",))


class ServiceAccountStrategy(Strategy):
    """ServiceAccounts: printServiceAccount."""

    resource = RESOURCE

    def columns(self) -> list[dict[str, Any]]:
        """printServiceAccount's columns."""
        return [name_col(), col("Secrets", description=doc(CORE + "ServiceAccount", "secrets")), age_col()]

    def row(self, obj: dict, now: datetime) -> Row:
        """printServiceAccount's cells."""
        return _serviceaccount_row(obj, now)


STRATEGY = ServiceAccountStrategy()
