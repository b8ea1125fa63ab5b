#!/usr/bin/env python3
"""An independent ext_authz v3 client: grpcio + xds-protos (Envoy's own generated protos).

Usage: .venv/bin/python tests/support/extauthz_client.py < request.json

The request on stdin is JSON:

    {"target": "127.0.0.1:PORT",
     "timeout_s": 10,
     "cases": [{"name": "valid",
                "method": "GET", "path": "/orders",
                "headers": {"authorization": "Bearer ..."},
                "raw": false}]}

`raw: true` sends the headers the way Envoy does with `encode_raw_headers: true`: in
`header_map` as `raw_value` bytes, with `headers` left empty.

Each case is one `envoy.service.auth.v3.Authorization/Check` call. The answer on stdout is one
JSON object: `{"grpcio": VERSION, "results": [...]}`, one result per case, in order:

    {"name": ..., "grpc_status": "OK",            # the RPC's own status
     "code": 0, "message": "",                    # CheckResponse.status
     "ok": {"headers": [{"key", "value", "append_action"}], "headers_to_remove": [...]} | null,
     "denied": {"status": 401, "headers": [...], "body": ""} | null,
     "dynamic_metadata": {...} | null}

An RPC that fails (e.g. verdict is down) is reported in `grpc_status`/`grpc_details`, not
raised. Exit status is non-zero only for a broken request or when the channel never gets ready.
"""

import json
import sys

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.auth.v3 import (
    attribute_context_pb2,
    external_auth_pb2,
    external_auth_pb2_grpc,
)
from google.protobuf import json_format


def header_options(options):
    return [
        {
            "key": option.header.key,
            "value": option.header.value
            or option.header.raw_value.decode("utf-8", "replace"),
            "append_action": base_pb2.HeaderValueOption.HeaderAppendAction.Name(
                option.append_action
            ),
        }
        for option in options
    ]


def check_request(case):
    headers = {str(k).lower(): str(v) for k, v in case.get("headers", {}).items()}
    http = attribute_context_pb2.AttributeContext.HttpRequest(
        id=case.get("name", ""),
        method=case.get("method", "GET"),
        path=case.get("path", "/"),
        host=case.get("host", "orders.example.com"),
        scheme="http",
        protocol="HTTP/1.1",
    )
    if case.get("raw"):
        http.header_map.CopyFrom(
            base_pb2.HeaderMap(
                headers=[
                    base_pb2.HeaderValue(key=k, raw_value=v.encode("utf-8"))
                    for k, v in headers.items()
                ]
            )
        )
    else:
        http.headers.update(headers)
    return external_auth_pb2.CheckRequest(
        attributes=attribute_context_pb2.AttributeContext(
            request=attribute_context_pb2.AttributeContext.Request(http=http)
        )
    )


def run_case(stub, case, timeout_s):
    result = {
        "name": case.get("name", ""),
        "grpc_status": "OK",
        "code": None,
        "message": None,
        "ok": None,
        "denied": None,
        "dynamic_metadata": None,
    }
    try:
        response = stub.Check(check_request(case), timeout=timeout_s)
    except grpc.RpcError as e:
        result["grpc_status"] = e.code().name
        result["grpc_details"] = e.details()
        return result
    result["code"] = response.status.code
    result["message"] = response.status.message
    which = response.WhichOneof("http_response")
    if which == "ok_response":
        result["ok"] = {
            "headers": header_options(response.ok_response.headers),
            "headers_to_remove": list(response.ok_response.headers_to_remove),
        }
    elif which == "denied_response":
        denied = response.denied_response
        result["denied"] = {
            "status": denied.status.code,
            "headers": header_options(denied.headers),
            "body": denied.body,
        }
    elif which is not None:
        result["other_response"] = which
    if response.HasField("dynamic_metadata"):
        result["dynamic_metadata"] = json_format.MessageToDict(response.dynamic_metadata)
    return result


def main():
    request = json.load(sys.stdin)
    target = request["target"]
    timeout_s = float(request.get("timeout_s", 10))
    with grpc.insecure_channel(target) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=timeout_s)
        except grpc.FutureTimeoutError:
            print(f"extauthz_client: {target} not ready within {timeout_s}s", file=sys.stderr)
            sys.exit(2)
        stub = external_auth_pb2_grpc.AuthorizationStub(channel)
        results = [run_case(stub, case, timeout_s) for case in request["cases"]]
    json.dump({"grpcio": grpc.__version__, "results": results}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
