#!/usr/bin/env python3
"""Drives headless Debian chromium through chromedriver's W3C WebDriver
HTTP API (python3 stdlib only): opens the admin console, logs in with the
password, waits until the dashboard shows the expected connection and
service-graph edge, saves a screenshot, prints the page's table text.

usage: dashboard.py URL PASSWORD SCREENSHOT EXPECT...
Exit 0 when every EXPECT string appeared in the dashboard, else 1."""
import base64
import json
import sys
import time
import urllib.request

DRIVER = "http://127.0.0.1:9515"


def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(DRIVER + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read() or b"{}").get("value")


def main():
    url, password, shot, expects = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    caps = {"capabilities": {"alwaysMatch": {
        "browserName": "chrome",
        "acceptInsecureCerts": True,  # the test CA is not in chromium's store
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1400,1800", "--user-data-dir=" + sys.argv[3] + ".profile"],
        }}}}
    sid = call("POST", "/session", caps)["sessionId"]
    ok = False
    try:
        s = "/session/" + sid
        call("POST", s + "/url", {"url": url})

        def find(css):
            return call("POST", s + "/element", {"using": "css selector", "value": css})

        def eid(e):
            return list(e.values())[0]

        # the login form is shown to a browser without a session
        deadline = time.time() + 20
        while time.time() < deadline:
            shown = call("GET", s + "/element/" + eid(find("#login")) + "/displayed")
            if shown:
                break
            time.sleep(0.2)
        print("login form shown:", bool(shown))
        call("POST", s + "/element/" + eid(find("#password")) + "/value", {"text": password})
        call("POST", s + "/element/" + eid(find("#login-button")) + "/click", {})
        text = ""
        deadline = time.time() + 30
        while time.time() < deadline:
            text = call("POST", s + "/execute/sync", {
                "script": "return document.getElementById('dash').hidden ? '' : "
                          "document.getElementById('dash').innerText;", "args": []}) or ""
            if text and all(x in text for x in expects):
                ok = True
                break
            time.sleep(0.5)
        cookie_flags = call("POST", s + "/execute/sync", {
            "script": "return document.cookie;", "args": []})
        print("document.cookie (HttpOnly hides the session):", repr(cookie_flags))
        png = base64.b64decode(call("GET", s + "/screenshot"))
        with open(shot, "wb") as f:
            f.write(png)
        print("screenshot bytes:", len(png))
        for line in text.splitlines():
            if any(x in line for x in expects):
                print("dashboard:", line)
        if not ok:
            print("missing:", [x for x in expects if x not in text])
            print(text[:3000])
    finally:
        call("DELETE", "/session/" + sid)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
