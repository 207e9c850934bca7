import json
import socket

import pytest

from cerberus.demo import command
from cerberus.demo.provision import DemoTenant

KEY = "sk-demoKeyForTheBannerTest0123456789"


def tenant(password: str | None = "s3cret-password") -> DemoTenant:
    return DemoTenant(
        organisation_id="o",
        workspace_id="w",
        agent_id="a",
        agent_key=KEY,
        admin_email="admin@demo.example.com",
        admin_password=password,
        policies=[("rbac", "block"), ("pii_email", "redact")],
    )


def json_block(text: str) -> dict[str, object]:
    start = text.index("\n  {") + 1
    end = text.index("\n  }\n", start) + 4
    return dict(json.loads(text[start:end]))


def test_the_banner_has_a_claude_command_and_client_json_with_the_key() -> None:
    text = command.banner(tenant(), "http://127.0.0.1:8000", "http://127.0.0.1:8001/mcp")

    assert (
        "claude mcp add --transport http cerberus-demo http://127.0.0.1:8000/mcp "
        f'--header "Authorization: Bearer {KEY}"'
    ) in text
    assert json_block(text) == {
        "mcpServers": {
            "cerberus-demo": {
                "type": "http",
                "url": "http://127.0.0.1:8000/mcp",
                "headers": {"Authorization": f"Bearer {KEY}"},
            }
        }
    }
    assert "s3cret-password" in text
    assert "rbac (block), pii_email (redact)" in text


def test_a_password_set_earlier_is_not_shown_again() -> None:
    text = command.banner(tenant(None), "http://127.0.0.1:8000", "http://127.0.0.1:8001/mcp")

    assert "--reset-password" in text
    assert "admin@demo.example.com" in text


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:8000"),
        ("0.0.0.0", "http://127.0.0.1:8000"),
        ("::", "http://127.0.0.1:8000"),
        ("::1", "http://[::1]:8000"),
        ("localhost", "http://localhost:8000"),
    ],
)
def test_the_printed_url_is_one_a_local_client_can_reach(host: str, url: str) -> None:
    assert command.local_url(host, 8000) == url


def test_a_busy_port_is_refused_naming_the_option() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(command.DemoError, match=f"port {port} .* pass --port PORT"):
            command.ensure_port_free("127.0.0.1", port, "gateway", "--port")


def test_connections_of_a_previous_run_in_time_wait_do_not_make_a_port_busy() -> None:
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _address = server.accept()
        # The server side closes first, as a stopping server does: its port enters TIME_WAIT.
        accepted.close()
        client.recv(1)
        client.close()

    command.ensure_port_free("127.0.0.1", port, "gateway", "--port")
