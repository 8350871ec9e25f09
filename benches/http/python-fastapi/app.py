"""The Python peer of the /readyz benchmark: FastAPI + fast-healthchecks, served by uvicorn.

    FAST_URL=http://127.0.0.1:18081 [HANG_URL=http://127.0.0.1:18082] \
        uvicorn app:app --host 127.0.0.1 --port 18100

fast-healthchecks runs the probe's checks on every request to /readyz (concurrently, up to its
default of 8 at a time). Each of the 20 checks is the library's own `UrlHealthCheck`, which
keeps one httpx client per check; the timeout is 2.5 s, as in runward.toml. Without HANG_URL
the 20 checks go to FAST_URL; with it, the 20th goes to HANG_URL.
"""

import os

from fastapi import FastAPI
from fast_healthchecks import Probe
from fast_healthchecks.checks.url import UrlHealthCheck
from fast_healthchecks.integrations.base import build_probe_route_options
from fast_healthchecks.integrations.fastapi import HealthcheckRouter

FAST_URL = os.environ.get("FAST_URL", "http://127.0.0.1:18081")
HANG_URL = os.environ.get("HANG_URL", "")
TIMEOUT_S = 2.5
CHECKS = 20


def _checks() -> list[UrlHealthCheck]:
    checks = []
    for i in range(1, CHECKS + 1):
        name = f"dep{i:02d}"
        if i == CHECKS and HANG_URL:
            checks.append(UrlHealthCheck(name="hanging", url=f"{HANG_URL}/ok", timeout=TIMEOUT_S))
        else:
            checks.append(UrlHealthCheck(name=name, url=f"{FAST_URL}/{name}", timeout=TIMEOUT_S))
    return checks


router = HealthcheckRouter(
    Probe(name="readyz", checks=_checks()),
    Probe(name="livez", checks=[]),
    options=build_probe_route_options(prefix="", success_status=200),
)

app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
app.include_router(router)
