# ruff: noqa: E501
"""Builds the labelled detection corpus (samples.jsonl) from realistic templates, seeded.

The corpus was written before the detectors and is not tuned to them: positives are what a
person would call PII or a secret, negatives are what they would not, including look-alikes
(order numbers, UUIDs, timestamps, versions, ISBNs, git SHAs, product codes). Run it to
regenerate: `.venv/bin/python tests/guardrails/corpus/build_corpus.py`.
"""

from __future__ import annotations

import base64
import json
import random
import string
from pathlib import Path

HERE = Path(__file__).parent
rng = random.Random(20261127)


def luhn_complete(prefix: str, length: int) -> str:
    digits = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 0:
            value *= 2
            value -= 9 if value > 9 else 0
        total += value
    return digits + str((10 - total % 10) % 10)


def luhn_broken(prefix: str, length: int) -> str:
    good = luhn_complete(prefix, length)
    return good[:-1] + str((int(good[-1]) + rng.randint(1, 9)) % 10)


def group(number: str, sep: str) -> str:
    if len(number) == 15 or len(number) == 14:
        parts = [number[:4], number[4:10], number[10:]]
    else:
        parts = [number[i : i + 4] for i in range(0, len(number), 4)]
    return sep.join(parts)


def ssn() -> str:
    area = rng.choice([a for a in range(1, 900) if a != 666])
    return f"{area:03d}", f"{rng.randint(1, 99):02d}", f"{rng.randint(1, 9999):04d}"


def rand(chars: str, n: int) -> str:
    return "".join(rng.choice(chars) for _ in range(n))


ALNUM = string.ascii_letters + string.digits
HEX = "0123456789abcdef"
NAMES = ["alice", "bob.smith", "j.doe", "maria_garcia", "chen.wei", "o'neil", "ops-team", "x9"]
DOMAINS = ["example.com", "mail.acme.io", "corp.example.co.uk", "uni.edu", "sub.domain.org"]


def sentence(value: str) -> str:
    templates = [
        "{v}",
        "Contact: {v}",
        "Please forward this to {v} before Friday.",
        "customer record -> {v} (verified)",
        '{{"field": "{v}"}}',
        "Row 17: Jane Roe, {v}, active",
        "As discussed, the value is {v}. Thanks!",
        "<td>{v}</td>",
    ]
    return rng.choice(templates).format(v=value)


def positives() -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for i in range(60):
        a, g, s = ssn()
        form = [f"{a}-{g}-{s}", f"{a} {g} {s}", f"SSN: {a}{g}{s}"][i % 3]
        out.append(("pii_ssn", sentence(form) if i % 3 != 2 else form))
    brands = [("4", 16), ("4", 13), ("51", 16), ("55", 16), ("2221", 16), ("34", 15), ("37", 15)]
    brands += [("6011", 16), ("65", 16), ("3530", 16), ("36", 14), ("4", 19), ("62", 16)]
    for i in range(65):
        prefix, length = brands[i % len(brands)]
        number = luhn_complete(prefix, length)
        form = [number, group(number, " "), group(number, "-")][i % 3]
        out.append(("pii_credit_card", sentence(f"card {form}" if i % 4 == 0 else form)))
    for i in range(60):
        local = rng.choice(NAMES).replace("'", "") + rng.choice(["", "+tag", "42", ".ext"])
        domain = rng.choice(DOMAINS)
        email = f"{local}@{domain}"
        if i % 5 == 0:
            email = email.upper()
        form = [email, f"mailto:{email}", f"<{email}>", f"{email}."][i % 4]
        out.append(("pii_email", sentence(form)))
    for i in range(60):
        area, mid, last = rng.randint(201, 989), rng.randint(200, 999), rng.randint(0, 9999)
        forms = [
            f"({area}) {mid}-{last:04d}",
            f"{area}-{mid}-{last:04d}",
            f"{area}.{mid}.{last:04d}",
            f"+1 {area} {mid} {last:04d}",
            f"+1-{area}-{mid}-{last:04d}",
            f"1 ({area}) {mid}-{last:04d}",
            f"+44 20 {rng.randint(7000, 8999)} {rng.randint(1000, 9999)}",
            f"+49 30 {rng.randint(10000000, 99999999)}",
            f"+33 1 {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)} 00",
            f"+81 3-{rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}",
            f"+91 {rng.randint(70000, 99999)} {rng.randint(10000, 99999)}",
            f"+61 2 {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}",
        ]
        phone = forms[i % len(forms)]
        out.append(("pii_phone", sentence(f"tel: {phone}" if i % 5 == 0 else phone)))
    for i in range(60):
        if i % 2 == 0:
            first = rng.choice([10, 172, 192, 8, 34, 52, 203, 100, 45])
            rest = ".".join(str(rng.randint(0, 255)) for _ in range(3))
            ip = f"{first}.{rest}"
        else:
            groups = [rand(HEX, rng.randint(1, 4)) for _ in range(8)]
            ip = [
                ":".join(groups),
                f"2001:db8::{groups[0]}:{groups[1]}",
                f"fe80::{groups[2]}:{groups[3]}:{groups[4]}",
                f"::ffff:192.0.2.{rng.randint(1, 254)}",
                f"2607:f8b0:4005:80{rng.randint(0, 9)}::200e",
            ][i // 2 % 5]
        form = [ip, f"client_ip={ip}", f"connection from {ip} refused", f"[{ip}]:443"][i % 4]
        out.append(("pii_ip_address", form))
    for i in range(72):
        kind = i % 12
        if kind == 0:
            value = f"aws_access_key_id = AKIA{rand(string.ascii_uppercase + '234567', 16)}"
        elif kind == 1:
            value = f"export GITHUB_TOKEN=ghp_{rand(ALNUM, 36)}"
        elif kind == 2:
            value = f"token: github_pat_{rand(ALNUM, 22)}_{rand(ALNUM, 59)}"
        elif kind == 3:
            value = f"GITLAB_TOKEN=glpat-{rand(ALNUM + '-_', 20)}"
        elif kind == 4:
            value = f"slack bot xoxb-{rand(string.digits, 12)}-{rand(string.digits, 13)}-{rand(ALNUM, 24)}"
        elif kind == 5:
            value = f"stripe.api_key = 'sk_live_{rand(ALNUM, 24)}'"
        elif kind == 6:
            value = f"OPENAI_API_KEY=sk-proj-{rand(ALNUM + '-_', 48)}"
        elif kind == 7:
            body = base64.b64encode(rng.randbytes(180)).decode()
            label = rng.choice(
                ["RSA PRIVATE KEY", "PRIVATE KEY", "OPENSSH PRIVATE KEY", "EC PRIVATE KEY"]
            )
            value = f"-----BEGIN {label}-----\n{body[:64]}\n{body[64:]}\n-----END {label}-----"
        elif kind == 8:
            header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').decode().rstrip("=")
            claims = json.dumps({"sub": str(rng.randint(1, 10**6)), "iat": 1700000000 + i})
            payload = base64.urlsafe_b64encode(claims.encode()).decode().rstrip("=")
            signature = rand(ALNUM + "-_", 43)
            value = f"Authorization: Bearer {header}.{payload}.{signature}"
        elif kind == 9:
            scheme = rng.choice(["postgresql", "mysql", "mongodb+srv", "redis", "amqp"])
            value = f"DATABASE_URL={scheme}://app_user:{rand(ALNUM, 14)}@db.internal:5432/prod"
        elif kind == 10:
            value = f"Server=tcp:sql.example.net;User Id=admin;Password={rand(ALNUM + '!#', 12)};"
        else:
            name = rng.choice(["api_key", "client_secret", "SECRET_KEY", "auth_token", "apiKey"])
            value = f'{name} = "{rand(ALNUM, 32)}"'
        out.append(("secrets", value))
    return out


def negatives() -> list[str]:
    out: list[str] = []
    for _ in range(25):
        out.append(
            f"Order #{rng.randint(10**7, 10**10)} shipped on 2024-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}"
        )
        out.append(f"ORD-{rng.randint(2019, 2026)}-{rng.randint(0, 999999):06d}")
    for _ in range(20):
        out.append(
            f"request_id: {rng.randbytes(16).hex()[:8]}-{rand(HEX, 4)}-4{rand(HEX, 3)}-a{rand(HEX, 3)}-{rand(HEX, 12)}"
        )
    for _ in range(20):
        ts = rng.randint(1_500_000_000, 1_800_000_000)
        out.append(
            rng.choice(
                [
                    f"ts={ts}",
                    f"created_at: {ts * 1000}",
                    f"2025-11-{rng.randint(10, 28)}T{rng.randint(10, 23)}:{rng.randint(10, 59)}:{rng.randint(10, 59)}.{rng.randint(100, 999)}Z",
                ]
            )
        )
    for _ in range(20):
        out.append(
            rng.choice(
                [
                    f"version {rng.randint(1, 20)}.{rng.randint(0, 30)}.{rng.randint(0, 99)}",
                    f"Windows 10.0.{rng.randint(10000, 22999)}.{rng.randint(100, 3000)}",
                    f"requires numpy>={rng.randint(1, 2)}.{rng.randint(0, 26)}.{rng.randint(0, 9)}",
                    f"v{rng.randint(1, 9)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}-rc.{rng.randint(1, 5)}",
                ]
            )
        )
    for _ in range(15):
        out.append(
            rng.choice(
                [
                    f"ISBN 978-{rng.randint(0, 1)}-{rng.randint(100, 999)}-{rng.randint(10000, 99999)}-{rng.randint(0, 9)}",
                    f"ISBN-13: 978{rng.randint(10**9, 10**10 - 1)}",
                    f"ISBN 0-{rng.randint(100, 999)}-{rng.randint(10000, 99999)}-X",
                ]
            )
        )
    for _ in range(20):
        sha = rng.randbytes(20).hex()
        out.append(
            rng.choice(
                [
                    f"commit {sha}",
                    f"Merge {sha[:7]} into main",
                    f"sha256: {rng.randbytes(32).hex()}",
                    f'etag: "{rng.randbytes(16).hex()}"',
                ]
            )
        )
    for _ in range(20):
        out.append(
            rng.choice(
                [
                    f"SKU {rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}",
                    f"P/N {rng.randint(10, 99)}-{rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}",
                    f"model ABX-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}",
                    f"part 555-{rng.randint(10, 99)}",
                    f"Item code {rng.randint(100000, 999999)}/{rng.randint(10, 99)}",
                ]
            )
        )
    for _ in range(10):
        a, g, s = ssn()
        out.append(
            rng.choice(
                [
                    f"000-{g}-{s}",
                    f"666-{g}-{s}",
                    f"9{rng.randint(0, 99):02d}-{g}-{s}",
                    f"{a}-00-{s}",
                    f"{a}-{g}-0000",
                ]
            )
        )
    for _ in range(12):
        prefix, length = rng.choice([("4", 16), ("51", 16), ("37", 15), ("6011", 16)])
        out.append(f"card {group(luhn_broken(prefix, length), ' ')}")
    for _ in range(10):
        out.append(
            rng.choice(
                [
                    "@app.route('/users')",
                    "npm i @types/node@20.11.5",
                    "ping me @alice on slack",
                    "user@localhost is not routable",
                    "price: 4 @ $12.50",
                    "email: <redacted>",
                    "twitter: @acme_support",
                ]
            )
        )
    for _ in range(12):
        out.append(
            rng.choice(
                [
                    f"ext. {rng.randint(100, 9999)}",
                    f"call 555-{rng.randint(1000, 9999)}",
                    f"room {rng.randint(100, 999)}-{rng.randint(10, 99)}",
                    f"zip {rng.randint(10000, 99999)}-{rng.randint(1000, 9999)}",
                    f"{rng.randint(1, 12)}/{rng.randint(1, 28)}/{rng.randint(2000, 2030)}",
                ]
            )
        )
    for _ in range(14):
        out.append(
            rng.choice(
                [
                    f"{rng.randint(256, 999)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}",
                    f"OID 1.3.6.1.4.1.{rng.randint(1000, 99999)}.{rng.randint(1, 9)}",
                    f"mac {':'.join(rand(HEX, 2) for _ in range(6))}",
                    f"at {rng.randint(10, 23)}:{rng.randint(10, 59)}:{rng.randint(10, 59)}",
                    f"lat/long {rng.uniform(-90, 90):.6f}, {rng.uniform(-180, 180):.6f}",
                    f"color #{rand(HEX, 6)}",
                ]
            )
        )
    for _ in range(25):
        out.append(
            rng.choice(
                [
                    "api_key = os.environ['API_KEY']",
                    "password = ''",
                    "password: ********",
                    "token = '<YOUR_TOKEN_HERE>'",
                    "API_KEY=${API_KEY}",
                    "postgres://app_user@db.internal:5432/prod",
                    "https://example.com/search?q=password&page=2",
                    f"session_timeout = {rng.randint(30, 3600)}",
                    "secret_santa = True",
                    "The token bucket refills every second.",
                    "Set OPENAI_API_KEY in your environment before running.",
                    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ user@host (public key)",
                    "-----BEGIN CERTIFICATE----- (truncated)",
                    "key = 'user_id'",
                    f'cache_key = "user:{rng.randint(1, 99999)}:profile"',
                    "sk-ip-address lookup table",
                    "AKIA is the prefix of AWS access key ids",
                ]
            )
        )
    for _ in range(60):
        out.append(
            rng.choice(
                [
                    "The quarterly report is attached; revenue grew 12% to $4,312,900.",
                    "Meeting moved to 3pm in room B-204.",
                    "def add(a, b):\n    return a + b",
                    "SELECT id, name FROM users WHERE created_at > '2024-01-01';",
                    "Temperature 21.5C, humidity 45%, pressure 1013.25 hPa.",
                    "Invoice INV-2024-00917 total 1,299.00 EUR due 2024-12-31.",
                    "Tracking: 1Z999AA10123456784",
                    "The build took 4m 32s on runner 12.",
                    "Flight LH 441 departs gate B22 at 14:35.",
                    "Population 8,336,817 (2022 estimate).",
                    "Step 3 of 10: installing dependencies...",
                    "Coordinates: 52.5200 N, 13.4050 E",
                    "IBAN DE89 3704 0044 0532 0130 00",
                    "Error code 0x80070005 (access denied).",
                ]
            )
        )
    return out


# Written by hand, after the generated part and before any detector was run on them.
HANDWRITTEN: list[tuple[str, list[str]]] = [
    ("Reach me at first.last@sub.example-mail.com or +44 7911 123456.", ["pii_email", "pii_phone"]),
    ("SSN 078-05-1120 was famously printed on wallet inserts.", ["pii_ssn"]),
    ("Visa test card 4242-4242-4242-4242 exp 12/34 cvc 123", ["pii_credit_card"]),
    ("Amex: 3782 822463 10005", ["pii_credit_card"]),
    ("server listening on 0.0.0.0:8080, peer 203.0.113.77", ["pii_ip_address"]),
    ("IPv6 peer [2001:0db8:85a3:0000:0000:8a2e:0370:7334]", ["pii_ip_address"]),
    ("Call the front desk: 1-800-555-0199", ["pii_phone"]),
    ("mobile +91-98765-43210 (WhatsApp)", ["pii_phone"]),
    ('JSON: {"email":"jane.roe@example.org","age":41}', ["pii_email"]),
    ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY1", ["secrets"]),
    ("curl -u admin:s3cr3tP4ss https://admin:s3cr3tP4ss@ci.internal/api", ["secrets"]),
    ("const stripe = require('stripe')('sk_test_4eC39HqLyjWDarjtT1zdp7dc');", ["secrets"]),
    (
        "slack webhook https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
        ["secrets"],
    ),
    (
        "git remote add origin https://x-access-token:ghs_16C7e42F292c6912E7710c838347Ae178B4a@github.com/o/r.git",
        ["secrets"],
    ),
    ("SSN: 123 45 6789 (spaces)", ["pii_ssn"]),
    ("Please wire to card ending 4242 only; do not store the full number.", []),
    ("Build 2024.11.27.1 released; see CHANGELOG.", []),
    ("Order 4532015112830366 shipped", ["pii_credit_card"]),
    ("uuid 123e4567-e89b-12d3-a456-426614174000 created", []),
    ("Timestamp 2026-11-27 08:12:18.123456+00:00", []),
    ("ISBN 978-3-16-148410-0", []),
    ("commit 9fceb02d0ae598e95dc970b74767f19372d61af8 (HEAD -> main)", []),
    ("Product code 1234-5678-90 and batch 12-345-6789", []),
    ("Routing table: 10.0.0.0/8 via eth0", ["pii_ip_address"]),
    ("Version 1.2.3.4 of the driver", []),
    ("The ratio was 3:2:1 in every sample", []),
    ("Deadline 12:00:00 UTC on 2026-01-01", []),
    ("The password must be at least 12 characters long.", []),
    ("Enter your API key in the settings page.", []),
    ("Bearer token expired; please log in again.", []),
    ("sha1: da39a3ee5e6b4b0d3255bfef95601890afd80709", []),
    ("Phone extension 2045, fax line 3301", []),
    ("Serial number SN-4111-1111-1111", []),
    ("Invoice total 4111.11 USD; tax 411.11", []),
    ('token_type = "bearer"; expires_in = 3600', []),
    ('password = "changeme"', ["secrets"]),
    (
        "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----",
        [],
    ),
    ("Contact support@acme.io for help", ["pii_email"]),
    ("Our office: +1 212 555 0147, 5th Avenue", ["pii_phone"]),
    ("Colour codes #ff00aa #00ff00 and RGB 255.255.0", []),
]


def main() -> None:
    rows = [{"text": text, "labels": [label]} for label, text in positives()]
    rows += [{"text": text, "labels": []} for text in negatives()]
    rows += [{"text": text, "labels": labels} for text, labels in HANDWRITTEN]
    with (HERE / "samples.jsonl").open("w") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    positives_count = sum(1 for row in rows if row["labels"])
    print(f"{positives_count} positive, {len(rows) - positives_count} negative")  # noqa: T201


if __name__ == "__main__":
    main()
