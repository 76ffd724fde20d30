"""The operator panel bound beyond the default loopback address: every request and the event stream need its
token; without it a clear refusal (401, a page that says what to do), with it the panel works; optional TLS.

This machine may not talk to any address but loopback, so the panel is bound to 127.0.0.2: another loopback
address, but not one of 127.0.0.1 / ::1 / localhost, which is what the panel's rule looks at (any other bind
address needs the token; core/panel_security.token_required). The HTTP exchange is the same as over a real
interface; only the route differs.
"""
from __future__ import annotations

import http.client
import json
import ssl
import stat

import pytest

from tests.helpers.flight import ros_args
from tests.helpers.processes import python_cmd

pytestmark = pytest.mark.slow
HOST = "127.0.0.2"


def get(port, path, headers=None, tls=False, method="GET", body=None):
    if tls:
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE   # self-signed, pinned below
        conn = http.client.HTTPSConnection(HOST, port, timeout=15, context=context)
    else:
        conn = http.client.HTTPConnection(HOST, port, timeout=15)
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    if path == "/events" and response.status == 200:   # the stream never ends: read its first event
        data = b""
        while not data.endswith(b"\n\n"):
            data += response.fp.readline()
    else:
        data = response.read()
    conn.close()
    return response.status, dict(response.getheaders()), data


def start_panel(spawn, tmp_path, tls=False):
    node = spawn(python_cmd("mmchat_ros.nodes.operator_panel", *ros_args({
        "host": HOST, "port": 0, "token_file": str(tmp_path / "panel_token"), "tls": tls,
        "tls_dir": str(tmp_path)})), name="operator_panel")
    match = node.wait_for_line(r"operator panel at (https?)://127\.0\.0\.2:(\d+)/", timeout=60)
    return node, int(match.group(2))


def test_a_panel_beyond_loopback_refuses_requests_without_its_token(spawn, tmp_path):
    node, port = start_panel(spawn, tmp_path)
    token_file = tmp_path / "panel_token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = token_file.read_text().strip()
    assert len(token) >= 40 and token not in node.output   # never logged

    for path in ("/", "/index.html", "/panel.js", "/api/state", "/events"):
        status, headers, body = get(port, path)
        assert status == 401, (path, status)
        assert headers.get("WWW-Authenticate", "").startswith("Bearer")
    status, headers, body = get(port, "/")
    assert b"needs its access token" in body and b"mmchat panel --show-token" in body
    status, _, body = get(port, "/api/land", method="POST", body=b"{}", headers={"Content-Type": "application/json"})
    assert status == 401 and "access token" in json.loads(body)["error"]
    assert get(port, "/api/state", headers={"Authorization": "Bearer " + "x" * len(token)})[0] == 401
    assert get(port, "/api/state?token=wrong")[0] == 401
    assert get(port, "/", headers={"Cookie": "mmchat_panel_token=wrong"})[0] == 401

    # With the token: as a header, and through the cookie the page gets when opened with ?token=.
    status, _, body = get(port, "/api/state", headers={"Authorization": f"Bearer {token}"})
    assert status == 200 and set(json.loads(body)) == {"flight", "auth", "log"}
    status, headers, _ = get(port, f"/?token={token}")
    assert status == 303 and headers["Location"] == "/"
    cookie = headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    session = {"Cookie": cookie.split(";")[0]}
    assert get(port, "/", headers=session)[0] == 200
    status, headers, body = get(port, "/events", headers=session)
    assert status == 200 and headers["Content-Type"] == "text/event-stream" and b"event: snapshot" in body
    node.wait_for_line("refused GET / from 127.0.0.1: no access token", 10)


def test_show_token_prints_the_same_token(tmp_path, ros_env):
    import subprocess
    done = subprocess.run(python_cmd("mmchat_ros.tools.cli", "panel", "--show-token", "--token-file",
                                     str(tmp_path / "t")), env=ros_env, text=True, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (tmp_path / "t").read_text().strip()
    again = subprocess.run(python_cmd("mmchat_ros.tools.cli", "panel", "--show-token", "--token-file",
                                      str(tmp_path / "t")), env=ros_env, text=True, capture_output=True, timeout=60)
    assert again.stdout == done.stdout   # made once


def test_tls_panel_with_a_self_signed_certificate(spawn, tmp_path):
    node, port = start_panel(spawn, tmp_path, tls=True)
    assert stat.S_IMODE((tmp_path / "panel_key.pem").stat().st_mode) == 0o600
    token = (tmp_path / "panel_token").read_text().strip()
    assert get(port, "/api/state", tls=True)[0] == 401
    status, _, body = get(port, "/api/state", tls=True, headers={"Authorization": f"Bearer {token}"})
    assert status == 200
    # The certificate served is the one made in tls_dir.
    pem = ssl.get_server_certificate((HOST, port))
    assert pem.split() == (tmp_path / "panel_cert.pem").read_text().split()
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        get(port, "/api/state")   # plain HTTP to the TLS port gets nowhere
    assert node.alive()
