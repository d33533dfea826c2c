"""``python -m backend_pod [flags]``: run the sample backend (settings from env, flags override)."""

from __future__ import annotations

import sys

from backend_pod.server import main

if __name__ == "__main__":
    sys.exit(main())
