"""What the test sinks (smtp_sink.py, http_sink.py) received: each record
becomes DIR/NNNN.json, numbered in arrival order, written whole (renamed into
place) so that a test never reads half of one."""
import json
import os
import threading

_lock = threading.Lock()


def save(directory, record):
    with _lock:
        n = len([f for f in os.listdir(directory) if f.endswith(".json")]) + 1
        tmp = os.path.join(directory, "%04d.tmp" % n)
        with open(tmp, "w") as f:
            json.dump(record, f)
        os.rename(tmp, os.path.join(directory, "%04d.json" % n))
