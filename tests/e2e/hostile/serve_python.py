"""The probe server started from Python, for the hostile-client suite.

    python serve_python.py CONFIG ADDR

Serves until SIGTERM, then runs the shutdown sequence and exits 0.
"""

import signal
import sys
import threading

import runward

config, addr = sys.argv[1], sys.argv[2]
health = runward.Health(config=config)
server = health.serve(addr)
print(f"serving on {server.url}", flush=True)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
stop.wait()
server.shutdown(drain_ms=0)
