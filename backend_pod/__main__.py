"""``python -m backend_pod [flags]``: run the sample backend (settings from env, flags override)."""

from __future__ import annotations

import sys

# The backend never speaks TLS. asyncio imports ssl only if it can and works without it; keeping
# OpenSSL out saves about 4 MiB of resident memory in each of the many pods a lab runs.
sys.modules.setdefault("ssl", None)  # type: ignore[arg-type]

from backend_pod.server import main  # noqa: E402 - after the ssl switch above

if __name__ == "__main__":
    sys.exit(main())
