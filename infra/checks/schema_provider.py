#!/usr/bin/env python3
"""A schema-only Terraform provider, so `terraform validate` runs without the real provider binary.

The Terraform registry is out of reach here, and `validate` needs each provider's schema and
nothing else. This plugin speaks Terraform's plugin protocol 6 (go-plugin handshake, gRPC
over TLS) and serves the schema aws_schema.py extracted from the cdktn-provider-aws wheel
(hashicorp/aws) or the few random_password fields (hashicorp/random). Validation RPCs
answer "no problems": what `validate` reports comes from Terraform's own checks against the
schema (unknown or missing arguments, types, references, functions, module wiring).

It can also plan, with no cloud behind it: a new resource's planned state is its
configuration with every unset computed attribute unknown (as a real provider plans a
create), and a data source reads as its configuration with placeholders of the right type.
So `terraform plan` evaluates every expression, module variable validation and output of a
fresh environment, and `terraform show -json` shows the values Terraform would send.

usage (as a dev_overrides provider executable): schema_provider.py aws|random SCHEMA.json [DIR]
    DIR limits the served AWS types to those the *.tf files under it use.
"""

# ruff: noqa: T201  (the plugin handshake is a line on stdout)

from __future__ import annotations

import base64
import datetime
import json
import os
import re
import sys
import threading
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import msgpack
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from tfplugin_proto import tfplugin6_5_pb2 as pb
from tfplugin_proto import tfplugin6_5_pb2_grpc as pb_grpc

MAGIC_COOKIE = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2"
TYPE_USE = re.compile(r'^\s*(resource|data)\s+"(aws_\w+)"', re.M)
STRING, NUMBER, BOOL = "string", "number", "bool"


def attr(kind: Any, *, required: bool = False, computed: bool = False) -> dict[str, Any]:
    return {"type": kind, "required": required, "optional": not required, "computed": computed}


RANDOM_PASSWORD = {
    "attributes": {
        "length": attr(NUMBER, required=True),
        "keepers": attr(["map", STRING]),
        "lower": attr(BOOL, computed=True),
        "upper": attr(BOOL, computed=True),
        "numeric": attr(BOOL, computed=True),
        "special": attr(BOOL, computed=True),
        "min_lower": attr(NUMBER, computed=True),
        "min_upper": attr(NUMBER, computed=True),
        "min_numeric": attr(NUMBER, computed=True),
        "min_special": attr(NUMBER, computed=True),
        "override_special": attr(STRING),
        "id": {"type": STRING, "required": False, "optional": False, "computed": True},
        "result": {"type": STRING, "required": False, "optional": False, "computed": True},
        "bcrypt_hash": {"type": STRING, "required": False, "optional": False, "computed": True},
    },
    "block_types": {},
}


def to_block(spec: dict[str, Any]) -> Any:
    block = pb.Schema.Block(version=0)
    for name, a in sorted(spec.get("attributes", {}).items()):
        block.attributes.append(
            pb.Schema.Attribute(
                name=name,
                type=json.dumps(a["type"]).encode(),
                required=a["required"],
                optional=a["optional"],
                computed=a["computed"],
                sensitive=name in {"result", "bcrypt_hash"},
            )
        )
    for name, nested in sorted(spec.get("block_types", {}).items()):
        block.block_types.append(
            pb.Schema.NestedBlock(
                type_name=name,
                block=to_block(nested["block"]),
                nesting=pb.Schema.NestedBlock.LIST,
                min_items=nested["min_items"],
                max_items=nested["max_items"],
            )
        )
    return block


def load_schema(which: str, path: str, scan: str | None) -> Any:
    response = pb.GetProviderSchema.Response()
    response.server_capabilities.plan_destroy = True
    if which == "random":
        response.provider.block.CopyFrom(pb.Schema.Block())
        response.resource_schemas["random_password"].block.CopyFrom(to_block(RANDOM_PASSWORD))
        return response
    with open(path) as handle:
        schema = json.load(handle)
    used: set[str] | None = None
    if scan:
        used = {m[1] for f in Path(scan).rglob("*.tf") for m in TYPE_USE.findall(f.read_text())}
    provider = dict(schema["provider"])
    provider["attributes"] = {k: v for k, v in provider["attributes"].items() if k != "alias"}
    response.provider.block.CopyFrom(to_block(provider))
    for kind, target in (
        ("resources", response.resource_schemas),
        ("data", response.data_source_schemas),
    ):
        for name, node in schema[kind].items():
            if used is None or name in used:
                target[name].block.CopyFrom(to_block(node["typed"]))
    return response


# cty's msgpack encoding of an unknown value: fixext1, extension type 0.
UNKNOWN = msgpack.ExtType(0, b"\x00")


def unpack(value: Any) -> Any:
    return msgpack.unpackb(value.msgpack, raw=False, strict_map_key=False)


def placeholder(kind: Any) -> Any:
    """A known value of a cty type, for what a data source would have read."""
    if kind == STRING:
        return "placeholder"
    if kind == NUMBER:
        return 0
    if kind == BOOL:
        return False
    if isinstance(kind, list) and kind[0] in {"list", "set"}:
        return []
    if isinstance(kind, list) and kind[0] == "map":
        return {}
    return None


def fill(value: Any, block: Any, unknown: bool) -> Any:
    """Set each computed attribute the configuration left null: unknown, or a placeholder."""
    if not isinstance(value, dict):
        return value
    for a in block.attributes:
        if a.computed and value.get(a.name) is None:
            value[a.name] = UNKNOWN if unknown else placeholder(json.loads(a.type))
    for nested in block.block_types:
        items = value.get(nested.type_name)
        if isinstance(items, list):
            value[nested.type_name] = [fill(item, nested.block, unknown) for item in items]
    return value


class Provider(pb_grpc.ProviderServicer):  # type: ignore[misc]
    def __init__(self, schema: Any) -> None:
        self.schema = schema

    def ConfigureProvider(self, request: Any, context: Any) -> Any:
        return pb.ConfigureProvider.Response()

    def PlanResourceChange(self, request: Any, context: Any) -> Any:
        proposed = unpack(request.proposed_new_state)
        if proposed is not None and unpack(request.prior_state) is None:
            block = self.schema.resource_schemas[request.type_name].block
            proposed = fill(proposed, block, unknown=True)
        packed = msgpack.packb(proposed, use_bin_type=True)
        return pb.PlanResourceChange.Response(planned_state=pb.DynamicValue(msgpack=packed))

    def ReadDataSource(self, request: Any, context: Any) -> Any:
        block = self.schema.data_source_schemas[request.type_name].block
        state = fill(unpack(request.config), block, unknown=False)
        packed = msgpack.packb(state, use_bin_type=True)
        return pb.ReadDataSource.Response(state=pb.DynamicValue(msgpack=packed))

    def GetProviderSchema(self, request: Any, context: Any) -> Any:
        return self.schema

    def GetFunctions(self, request: Any, context: Any) -> Any:
        return pb.GetFunctions.Response()

    def ValidateProviderConfig(self, request: Any, context: Any) -> Any:
        return pb.ValidateProviderConfig.Response()

    def ValidateResourceConfig(self, request: Any, context: Any) -> Any:
        return pb.ValidateResourceConfig.Response()

    def ValidateDataResourceConfig(self, request: Any, context: Any) -> Any:
        return pb.ValidateDataResourceConfig.Response()

    def StopProvider(self, request: Any, context: Any) -> Any:
        return pb.StopProvider.Response()


def controller() -> Any:
    """go-plugin's GRPCController: Terraform asks the plugin to shut down, else waits 2 s."""

    def shutdown(request: bytes, context: Any) -> bytes:
        threading.Timer(0.05, os._exit, args=(0,)).start()
        return b""  # plugin.Empty

    handler = grpc.unary_unary_rpc_method_handler(
        shutdown, request_deserializer=bytes, response_serializer=bytes
    )
    return grpc.method_handlers_generic_handler("plugin.GRPCController", {"Shutdown": handler})


def server_certificate() -> tuple[bytes, bytes, str]:
    """Self-signed CA-capable certificate, as go-plugin's automatic mutual TLS expects."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(
            x509.KeyUsage(True, False, True, True, False, True, False, False, False),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    der = cert.public_bytes(serialization.Encoding.DER)
    # go-plugin decodes the handshake's certificate with unpadded base64.
    encoded = base64.b64encode(der).decode().rstrip("=")
    return key_pem, cert.public_bytes(serialization.Encoding.PEM), encoded


def main() -> int:
    if os.environ.get("TF_PLUGIN_MAGIC_COOKIE") != MAGIC_COOKIE:
        print("This is a Terraform plugin; Terraform starts it.", file=sys.stderr)
        return 1
    which, path = sys.argv[1], sys.argv[2]
    scan = sys.argv[3] if len(sys.argv) > 3 else None
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    pb_grpc.add_ProviderServicer_to_server(Provider(load_schema(which, path, scan)), server)
    server.add_generic_rpc_handlers((controller(),))
    health_servicer = health.HealthServicer()
    health_servicer.set("plugin", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    key_pem, cert_pem, cert_b64 = server_certificate()
    credentials = grpc.ssl_server_credentials([(key_pem, cert_pem)])
    port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    print(f"1|6|tcp|127.0.0.1:{port}|grpc|{cert_b64}", flush=True)
    parent = os.getppid()
    # Terraform ends plugins with SIGKILL; stop as well if it disappears first.
    while os.getppid() == parent and server.wait_for_termination(1):
        pass
    server.stop(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
