"""A stand-in engine for the serve tests: `tiny_server.py PORT [--stubborn CHILD_PID_FILE]`.

Answers 200 to every GET; with --stubborn it ignores SIGTERM and starts a child that ignores it too.
"""

import http.server
import signal
import subprocess
import sys


class Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


if __name__ == "__main__":
    if "--stubborn" in sys.argv:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        child = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)",
            ]
        )
        with open(sys.argv[sys.argv.index("--stubborn") + 1], "w") as fh:
            fh.write(str(child.pid))
    print("tiny server ready", flush=True)
    http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Ok).serve_forever()
