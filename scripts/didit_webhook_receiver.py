#!/usr/bin/env python3
"""A webhook receiver written as Didit's integrators write theirs, for handoff's tests.

It verifies the three signatures of every delivery the way Didit's documentation shows:
X-Signature over the raw body; X-Signature-V2 over the body re-encoded with sorted keys,
compact separators, UTF-8 unescaped and integer-valued floats written as integers; and
X-Signature-Simple over "{timestamp}:{session_id}:{status}:{webhook_type}" — each an HMAC-SHA256
in hex, compared in constant time, with a 5-minute window on X-Timestamp.

Usage: didit_webhook_receiver.py SECRET_FILE RECORD_FILE [PLAN]
  Prints the port it listens on (127.0.0.1), then serves until killed. The secret is read from
  SECRET_FILE at each delivery (so that it can be written once the destination exists). Each delivery is
  appended to RECORD_FILE as one JSON line: {"headers", "body", "verified"}. PLAN, optional, is
  a comma-separated list of what to answer to the first deliveries, in order: a status code
  (e.g. 500) or "sleep:N" (wait N seconds, then 200); later deliveries get 200.
"""

import hashlib
import hmac
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def shorten_floats(data):
    if isinstance(data, dict):
        return {key: shorten_floats(value) for key, value in data.items()}
    if isinstance(data, list):
        return [shorten_floats(item) for item in data]
    if isinstance(data, float) and data.is_integer():
        return int(data)
    return data


def sign(secret, message):
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def fresh(timestamp):
    try:
        return abs(time.time() - int(timestamp)) <= 300
    except (TypeError, ValueError):
        return False


def verify_raw(secret, raw_body, signature, timestamp):
    return fresh(timestamp) and hmac.compare_digest(sign(secret, raw_body), signature or "")


def verify_v2(secret, body, signature, timestamp):
    canonical = json.dumps(
        shorten_floats(body), sort_keys=True, ensure_ascii=False, separators=(",", ":")
    )
    return fresh(timestamp) and hmac.compare_digest(
        sign(secret, canonical.encode("utf-8")), signature or ""
    )


def verify_simple(secret, body, signature, timestamp):
    canonical = ":".join(
        str(body.get(field, ""))
        for field in ("timestamp", "session_id", "status", "webhook_type")
    )
    return fresh(timestamp) and hmac.compare_digest(
        sign(secret, canonical.encode("utf-8")), signature or ""
    )


def main():
    secret_file, record_file = sys.argv[1], sys.argv[2]
    plan = [step for step in (sys.argv[3] if len(sys.argv) > 3 else "").split(",") if step]
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            with open(secret_file, encoding="utf-8") as source:
                secret = source.read().strip()
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            body = json.loads(raw.decode("utf-8"))
            timestamp = self.headers.get("X-Timestamp")
            verified = {
                "raw": verify_raw(secret, raw, self.headers.get("X-Signature"), timestamp),
                "v2": verify_v2(secret, body, self.headers.get("X-Signature-V2"), timestamp),
                "simple": verify_simple(
                    secret, body, self.headers.get("X-Signature-Simple"), timestamp
                ),
            }
            with lock:
                step = plan.pop(0) if plan else "200"
                with open(record_file, "a", encoding="utf-8") as out:
                    out.write(
                        json.dumps(
                            {
                                "headers": {k.lower(): v for k, v in self.headers.items()},
                                "body": body,
                                "verified": verified,
                                "answered": step,
                            },
                            ensure_ascii=False,
                        )
                        + "\n"
                    )
            if step.startswith("sleep:"):
                time.sleep(float(step.split(":", 1)[1]))
                step = "200"
            status = int(step)
            if not all(verified.values()):
                status = 401
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"ok": true}')
            except (BrokenPipeError, ConnectionResetError):
                pass  # The sender gave up waiting (its timeout, or it was killed).

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
