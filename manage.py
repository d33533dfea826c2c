#!/usr/bin/env python
"""Django's command-line utility for lb-demo (`python manage.py demo`, `check --deploy`, ...)."""

from __future__ import annotations

import os
import sys


def main() -> None:
    """Run a Django management command with lb-demo's settings."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
