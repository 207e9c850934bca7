"""What the secrets detector must catch, and what it must leave alone."""

from __future__ import annotations

import pytest

from cerberus.scanning import scanner

PEM_BODY = "MIIEowIBAAKCAQEA7Zq3" + "Qx9Lk2Jv" * 12
# Provider tokens in their documented shapes (random characters, not real credentials).
ANTHROPIC = "sk-ant-api03-" + "Xq7_Lm2-Pz9wRt4vYb8N" * 4 + "k3JdQ0sTu1AA"
HUGGING_FACE = "hf_" + "QxLmPzWrTvYbNk3JdQsTu1Ab2Cd4Ef6Gh8"
NPM = "npm_" + "Qx7Lm2Pz9wRt4vYb8Nk3JdQ0sTu1Ab2Cd4Ef"
PYPI = "pypi-AgEIcHlwaS5vcmc" + "CJDQ5ZjRhNmY0LTc3NzItNGQ2Ni05ZTk1LTI3MzE0YjQ0NjYwNQACKlsz"
SENDGRID = "SG." + "Qx7Lm2Pz9wRt4vYb8Nk3Jd" + "." + "Q0sTu1Ab2Cd4Ef6Gh8Ij0Kl2Mn4Op6Qr8St0Uv2Wx4Y"


def found(text: str) -> list[tuple[str, str]]:
    data = text.encode()
    return [
        (hit.detector, data[hit.start : hit.end].decode())
        for hit in scanner(["secrets"]).scan(data)
    ]


@pytest.mark.parametrize(
    ("text", "kind", "secret"),
    [
        ("key AKIAZ7QW3ERT5YUI6OPA here", "aws_access_key", "AKIAZ7QW3ERT5YUI6OPA"),
        (
            "ghp_" + "a1B2c3D4e5" * 3 + "f6G7h8",
            "github_token",
            "ghp_" + "a1B2c3D4e5" * 3 + "f6G7h8",
        ),
        ("glpat-Ab3dEf7hIj1LmN0pQr5t", "gitlab_token", "glpat-Ab3dEf7hIj1LmN0pQr5t"),
        (
            "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
            "slack_token",
            "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
        ),
        ("sk_live_4eC39HqLyjWDarjtT1zdp7dc", "stripe_key", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
        (f"export {ANTHROPIC}", "anthropic_key", ANTHROPIC),
        (f"token {HUGGING_FACE} ok", "huggingface_token", HUGGING_FACE),
        (f"npm login with {NPM}", "npm_token", NPM),
        (f"twine upload -p {PYPI}", "pypi_token", PYPI),
        (f"SENDGRID {SENDGRID}.", "sendgrid_key", SENDGRID),
        (
            'curl -H "Authorization: Bearer 8f3kQ2j5h7gZ9d1s3a5f7h9j2k4l6" https://api.example',
            "bearer_token",
            "8f3kQ2j5h7gZ9d1s3a5f7h9j2k4l6",
        ),
        ("Authorization: Basic dXNlcjpzM2NyM3QtcGFzcw==", "basic_auth", "dXNlcjpzM2NyM3QtcGFzcw=="),
        (
            "sk-proj-Q2w3E4r5T6y7U8i9O0p1A2s3D4f5G6h7J8k9",
            "openai_key",
            "sk-proj-Q2w3E4r5T6y7U8i9O0p1A2s3D4f5G6h7J8k9",
        ),
        ("DSN postgres://svc:Xy7pQ2zL@db:5432/app", "url_password", "Xy7pQ2zL"),
        # Letters glued before the scheme, past the 31 the rule once allowed it.
        ("x" * 40 + "postgres://svc:Xy7pQ2zL@db:5432/app", "url_password", "Xy7pQ2zL"),
        ("Server=db;User Id=sa;Password=Tr0ub4dor&3;", "connection_string", "Tr0ub4dor&3"),
        ('db_password = "hunter2hunter2"', "password_assignment", "hunter2hunter2"),
        ("API_KEY=Zx81QmPa0LkW92nBv7Yt", "generic_secret", "Zx81QmPa0LkW92nBv7Yt"),
        # Basic with an empty side: a key as the user (Stripe), or a token with no user.
        ("Authorization: Basic c2tfbGl2ZV94eXo6", "basic_auth", "c2tfbGl2ZV94eXo6"),
        ("Authorization: Basic OnMzY3IzdC1wYXNz", "basic_auth", "OnMzY3IzdC1wYXNz"),
        # Passwords without quotes, where the form says it is one, whatever their entropy.
        ("DB_PASSWORD=hunter2", "password_assignment", "hunter2"),
        ("export PGPASSWORD=hunter2", "password_assignment", "hunter2"),
        ("SMTP_PASS=letmein1", "password_assignment", "letmein1"),
        ("GET /login?user=a&password=hunter2&next=/", "password_assignment", "hunter2"),
        ("mysql --password=hunter2 -u root", "password_assignment", "hunter2"),
        ("psql --password hunter2", "password_assignment", "hunter2"),
        ("db:\n  password: s3cretpass\n  user: app", "password_assignment", "s3cretpass"),
        ("password: s3cret#pass  # rotated monthly", "password_assignment", "s3cret#pass"),
        # A password after an empty user name (Redis, which has no users before ACLs).
        ("redis://:mypassword123@redis.example.com:6379", "url_password", "mypassword123"),
        ("REDIS_URL=redis://:s3cretpass@cache:6379/0", "url_password", "s3cretpass"),
        ("postgresql://:pw@host/db", "url_password", "pw"),
    ],
)
def test_secret_is_found_and_only_the_secret_is_marked(text: str, kind: str, secret: str) -> None:
    assert (kind, secret) in found(text)


def test_private_key_block_is_found_whole() -> None:
    block = f"-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n-----END RSA PRIVATE KEY-----"
    assert found(f"key:\n{block}\nthanks") == [("private_key", block)]


def _service_account(newline: str, body: str = PEM_BODY) -> tuple[str, str]:
    """A GCP service-account key file as JSON source (its newlines escaped, as a text read
    from a resource holds them), and the key block in it."""
    lines = ["-----BEGIN PRIVATE KEY-----", body, PEM_BODY[::-1], "-----END PRIVATE KEY-----"]
    block = newline.join(lines)
    document = (
        '{"type": "service_account", "project_id": "demo", "private_key_id": "k1", '
        f'"private_key": "{block}{newline}", "client_id": "1"}}'
    )
    return document, block


@pytest.mark.parametrize("newline", ["\\n", "\\r\\n"], ids=["escaped-lf", "escaped-crlf"])
def test_a_private_key_in_json_source_is_one_finding_from_begin_to_end(newline: str) -> None:
    document, block = _service_account(newline)
    assert found(document) == [("private_key", block)]


def test_a_private_key_with_escaped_slashes_is_found_whole() -> None:
    # PHP's json_encode writes `/` as `\/`, and base64 holds slashes.
    body = PEM_BODY[:20] + "\\/" + PEM_BODY[20:] + "\\/+="
    document, block = _service_account("\\n", body)
    assert found(document) == [("private_key", block)]


ENCRYPTED_KEY_LINES = [
    "-----BEGIN RSA PRIVATE KEY-----",
    "Proc-Type: 4,ENCRYPTED",
    "DEK-Info: AES-128-CBC,3F17F5316E2BAC89",
    "",
    PEM_BODY,
    "-----END RSA PRIVATE KEY-----",
]


def test_an_encrypted_private_key_block_is_found_whole() -> None:
    # Before, the block ended at `Proc`: its body branch was tried before its header branch.
    block = "\n".join(ENCRYPTED_KEY_LINES)
    assert found(f"key:\n{block}\nthanks") == [("private_key", block)]


def test_an_encrypted_private_key_in_json_source_is_found_whole() -> None:
    block = "\\n".join(ENCRYPTED_KEY_LINES)
    assert found(f'{{"key": "{block}\\n", "user": "deploy"}}') == [("private_key", block)]


def test_a_private_key_block_with_crlf_line_ends_is_found_whole() -> None:
    block = f"-----BEGIN EC PRIVATE KEY-----\r\n{PEM_BODY}\r\n-----END EC PRIVATE KEY-----"
    assert found(f"{block}\r\n") == [("private_key", block)]


def test_jwt_is_found() -> None:
    jwt = (
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0"
        ".dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
    )
    assert found(f"Authorization: Bearer {jwt}") == [("jwt", jwt)]


@pytest.mark.parametrize(
    "text",
    [
        "commit 9fceb02d0ae598e95dc970b74767f19372d61af8",
        "sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "request_id = 550e8400-e29b-41d4-a716-446655440000",
        "api_key = os.environ['API_KEY']",
        "token = '<YOUR_TOKEN_HERE>'",
        "API_KEY=${API_KEY}",
        "password: ********",
        "postgres://app_user@db.internal:5432/prod",
        "The password must be at least 12 characters long.",
        "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcD\n-----END PUBLIC KEY-----",
        "token_type = bearer",
        "secret_santa = True",
        "PWD=/home/alice",  # the working directory
        "OLDPWD=/home/alice",
        "PASSWORD=$DB_PASSWORD",
        "PASSWORD_MIN_LENGTH=12",
        "--password-file /run/secrets/db",
        "Password: please ask the admin",  # prose goes on after a word
        "password: required",
        "password=********",
        # URLs with a port but no password: hosts, IPv6 literals, an empty user and password.
        "http://example.com:8080/",
        "see https://example.com:8443/path?q=1 for details",
        "redis://cache:6379/0",
        "http://[::1]:8080/",
        "http://[2001:db8::1]:8080/status",
        "redis://:@cache:6379",
        "redis://:${REDIS_PASSWORD}@cache:6379",
        "a JSON text that mentions -----BEGIN PUBLIC KEY-----\\nMFkwEwYHKoZIzj0C\\n",
    ],
)
def test_secret_look_alikes_are_left_alone(text: str) -> None:
    assert found(text) == []


@pytest.mark.parametrize(
    "text",
    [
        "XAKIAZ7QW3ERT5YUI6OPA",  # the tail of a longer word, not a key id
        "xghp_" + "a1B2c3D4e5" * 3 + "f6G7h8",
        "my_github_pat_" + "A" * 22 + "_" + "b" * 59,
        "task-Q2w3E4r5T6y7U8i9O0p1A2s3D4f5G6h7J8k9",  # "sk-" inside a word
        "xglpat-Ab3dEf7hIj1LmN0pQr5t",
        "Axoxb-123456789012-1234567890123",
    ],
)
def test_a_token_glued_to_a_preceding_word_is_left_alone(text: str) -> None:
    assert found(text) == []


@pytest.mark.parametrize(
    ("text", "kind", "secret"),
    [
        (
            "task-sk-proj-Q2w3E4r5T6y7U8i9O0p1A2s3D4f5G6h7J8k9",
            "openai_key",
            "sk-proj-Q2w3E4r5T6y7U8i9O0p1A2s3D4f5G6h7J8k9",
        ),
        ("xglpat-glpat-Ab3dEf7hIj1LmN0pQr5t", "gitlab_token", "glpat-Ab3dEf7hIj1LmN0pQr5t"),
        ("Axoxb-xoxb-123456789012-1234", "slack_token", "xoxb-123456789012-1234"),
    ],
)
def test_a_token_after_a_dash_in_a_glued_look_alike_is_found(
    text: str, kind: str, secret: str
) -> None:
    # The look-alike is a candidate (its pattern starts with a literal, without `\b`) that
    # runs over the real token; the token is still found, with its own span.
    assert found(text) == [(kind, secret)]


def test_a_token_after_punctuation_is_found() -> None:
    assert found("keys=AKIAZ7QW3ERT5YUI6OPA,ASIAZ7QW3ERT5YUI6OPB") == [
        ("aws_access_key", "AKIAZ7QW3ERT5YUI6OPA"),
        ("aws_access_key", "ASIAZ7QW3ERT5YUI6OPB"),
    ]


def test_an_anthropic_key_is_one_finding_not_also_an_openai_key() -> None:
    assert found(f"export {ANTHROPIC}") == [("anthropic_key", ANTHROPIC)]


@pytest.mark.parametrize(
    "text",
    [
        "Bearer token required",
        "use a Bearer scheme with your own token",
        "basic authentication is disabled",
        "Basic aGVsbG8gd29ybGQ=",  # base64, but of no user:password
    ],
)
def test_authorization_look_alikes_are_left_alone(text: str) -> None:
    assert found(text) == []


def test_a_jwt_bearer_is_one_finding() -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.c2lnbmF0dXJlLXZhbHVl"
    assert found(f"Authorization: Bearer {jwt}") == [("jwt", jwt)]
