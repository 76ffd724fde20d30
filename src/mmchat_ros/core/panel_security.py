"""Who may use the operator panel: loopback by default; on any other address only holders of the panel's token.

Rules:
  * Bound to 127.0.0.1, ::1 or localhost the panel needs no token (only this machine's users reach it). Bound to
    anything else - another interface, 0.0.0.0, even another 127.x address: we do not guess what a given address
    exposes - every request, the event stream included, must carry the token.
  * The token is made once (32 random bytes, URL-safe) into a 0600 file in the data directory and shown by
    `mmchat panel --show-token`. A request carries it as ``Authorization: Bearer <token>``, as the cookie the
    panel sets when the page is opened with ``?token=<token>``, or as that query parameter. It is compared in
    constant time. A token file readable by others is refused.
  * Optional TLS: a self-signed certificate (``cryptography``) made once beside the token, key 0600.

Pure logic: no rclpy, no sockets.
"""
from __future__ import annotations

import datetime
import hmac
import ipaddress
import os
import secrets
import stat
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from urllib.parse import parse_qs

COOKIE = "mmchat_panel_token"
LOOPBACK_DEFAULTS = ("127.0.0.1", "::1", "localhost")
TOKEN_FILE = "panel_token"
CERT_FILE, CERT_KEY_FILE = "panel_cert.pem", "panel_key.pem"


class PanelSecurityError(RuntimeError):
    """The token or certificate cannot be used: the message says why and what to do."""


def data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "mmchat_ros"


def token_required(host: str) -> bool:
    """True unless the panel listens only on this machine's default loopback address."""
    return host.strip().lower() not in LOOPBACK_DEFAULTS


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host.strip().lower() == "localhost"


def _check_private(path: Path, what: str) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise PanelSecurityError(f"{what} {path} has mode {mode:04o}: others could read it; refusing it. Delete it "
                                 "(a new one is made at the next start) or `chmod 600` it if nobody could have "
                                 "copied it")


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def load_or_create_token(path: str | os.PathLike | None = None) -> tuple[str, bool]:
    """(token, made now). The token file is created once, 0600."""
    path = Path(path) if path else data_dir() / TOKEN_FILE
    if not path.exists():
        try:
            _write_private(path, (secrets.token_urlsafe(32) + "\n").encode())
            made = True
        except FileExistsError:   # another process made it meanwhile
            made = False
    else:
        made = False
    _check_private(path, "panel token")
    token = path.read_text().strip()
    if len(token) < 32:
        raise PanelSecurityError(f"panel token {path} is too short or empty: delete it and restart the panel")
    return token, made


def read_token(path: str | os.PathLike | None = None) -> str:
    path = Path(path) if path else data_dir() / TOKEN_FILE
    if not path.exists():
        raise PanelSecurityError(f"no panel token at {path}: it is made the first time the panel starts bound to a "
                                 "non-loopback address (or run `mmchat panel --show-token` after such a start)")
    _check_private(path, "panel token")
    return path.read_text().strip()


def presented_token(headers, query: str) -> tuple[str | None, str]:
    """The token a request carries and where: ('...', 'header'|'cookie'|'query') or (None, '')."""
    auth = headers.get("Authorization") or ""
    if auth.lower().startswith("bearer "):
        return auth[7:].strip(), "header"
    cookie_header = headers.get("Cookie")
    if cookie_header:
        try:
            jar = SimpleCookie(cookie_header)
            if COOKIE in jar:
                return jar[COOKIE].value, "cookie"
        except CookieError:
            pass
    values = parse_qs(query or "").get("token")
    if values:
        return values[0], "query"
    return None, ""


def token_matches(expected: str, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(expected.encode(), presented.encode())


def session_cookie(token: str, secure: bool) -> str:
    """Set-Cookie value: the page keeps the token for its own requests and event stream, not readable by scripts,
    never sent cross-site."""
    return f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict" + ("; Secure" if secure else "")


REFUSAL_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>mmchat panel: token needed</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto">
<h1>This operator panel needs its access token</h1>
<p>The panel listens on an address other machines may reach, so every request must carry its token.
{why}</p>
<p>On the robot, run <code>mmchat panel --show-token</code> and open the address it prints
(<code>https://HOST:PORT/?token=...</code>); the page then remembers the token for this browser session.</p>
</body></html>
"""


def refusal_page(presented: bool) -> bytes:
    why = "The token given is wrong." if presented else "This request carried none."
    return REFUSAL_PAGE.format(why=why).encode()


def ensure_self_signed_cert(directory: str | os.PathLike | None = None, hostnames: tuple[str, ...] = ("localhost",),
                            days: int = 825) -> tuple[Path, Path, bool]:
    """(certificate, key, made now): a self-signed certificate for ``hostnames`` (IP addresses or names), made once
    with its key 0600."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    directory = Path(directory) if directory else data_dir()
    cert_path, key_path = directory / CERT_FILE, directory / CERT_KEY_FILE
    if cert_path.exists() and key_path.exists():
        _check_private(key_path, "panel TLS key")
        return cert_path, key_path, False
    key = ec.generate_private_key(ec.SECP256R1())
    names = []
    for host in hostnames:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mmchat operator panel")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    for path in (cert_path, key_path):
        path.unlink(missing_ok=True)
    _write_private(key_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    _write_private(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path, True
