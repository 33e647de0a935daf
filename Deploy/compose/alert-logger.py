"""A webhook receiver for Alertmanager that writes each alert it is sent as one line to standard output.

The compose stack's Alertmanager posts here (compose/alertmanager.yml), so firing and resolved alerts can be read with
    docker compose -f Deploy/compose.yaml logs -f alert-logger
Replace it with a real receiver (pager, chat, mail) in alertmanager.yml for anything beyond a local stack.
Python's standard library only. Usage: alert-logger.py [PORT]   (default 5001; POST /alerts, GET / for health)
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 4 << 20


def describe(alert):
    """One line for one alert of Alertmanager's webhook payload (version 4)."""
    labels = alert.get("labels", {})
    annotations = alert.get("annotations", {})
    fields = {
        "status": alert.get("status", "?"),
        "alertname": labels.get("alertname", "?"),
        "severity": labels.get("severity", "-"),
        "startsAt": alert.get("startsAt", "-"),
        "summary": annotations.get("summary", ""),
        "runbook": annotations.get("runbook_url", ""),
    }
    return "ALERT " + json.dumps(fields, sort_keys=True)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.reply(200, b"ok\n")

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        if self.path != "/alerts" or not 0 < length <= MAX_BODY:
            self.reply(404 if self.path != "/alerts" else 413, b"")
            return
        try:
            payload = json.loads(self.rfile.read(length))
            alerts = payload["alerts"]
        except (ValueError, KeyError, TypeError):
            self.reply(400, b"not an Alertmanager webhook payload\n")
            return
        for alert in alerts:
            print(describe(alert), flush=True)
        self.reply(200, b"")

    def reply(self, status, body):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # one line per alert is the output; no access log
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 5001
    print(f"alert-logger listening on :{port}", flush=True)
    ThreadingHTTPServer(("", port), Handler).serve_forever()
