"""An outside MCP client (the official MCP Python SDK) driving sage-mcp, for bins/sage-mcp/tests/python.rs.

Usage:
  mcp_client.py stdio <sage-mcp binary> <config>   the stdio scenario
  mcp_client.py http <url> <token>                 the HTTP scenario

Prints one JSON document with what it saw; the Rust test asserts on it and on the chain.
"""

import asyncio
import json
import sys

import httpx2
from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


def payload(result):
    """The tool result as (is_error, structured JSON)."""
    data = result.structured_content
    if data is None:
        text = "".join(c.text for c in result.content if getattr(c, "text", None))
        data = json.loads(text) if text else None
    return bool(result.is_error), data


async def approve(context, params):
    """The user approves every escrow it is asked about."""
    return types.ElicitResult(action="accept", content={"approve": True})


async def stdio_scenario(binary, config):
    out = {}
    params = StdioServerParameters(command=binary, args=["--config", config, "stdio"])
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write, elicitation_callback=approve) as session:
            init = await session.initialize()
            out["protocol"] = init.protocol_version
            tools = await session.list_tools()
            out["tools"] = {
                t.name: {
                    "required": t.input_schema.get("required", []),
                    "properties": sorted(t.input_schema.get("properties", {}).keys()),
                    "read_only": bool(t.annotations and t.annotations.read_only_hint),
                    "destructive": bool(t.annotations and t.annotations.destructive_hint),
                }
                for t in tools.tools
            }
            out["budget_before"] = payload(await session.call_tool("sage_budget", {}))
            out["quote"] = payload(await session.call_tool("sage_quote", {"size": 8}))
            out["submit"] = payload(
                await session.call_tool("sage_submit_job", {"size": 8, "seed": "0x51", "idempotency_key": "py-1"})
            )
            job = out["submit"][1]["job_id"]
            progress = []

            async def on_progress(p, total, message):
                progress.append(message)

            out["wait"] = payload(
                await session.call_tool(
                    "sage_wait_job", {"job_id": job, "timeout_secs": 120}, progress_callback=on_progress
                )
            )
            out["progress"] = progress
            out["verify"] = payload(await session.call_tool("sage_verify_proof", {"job_id": job}))
            out["output"] = payload(await session.call_tool("sage_get_output", {"job_id": job}))
            out["retry"] = payload(
                await session.call_tool("sage_submit_job", {"size": 8, "seed": "0x51", "idempotency_key": "py-1"})
            )
            out["second"] = payload(
                await session.call_tool("sage_submit_job", {"size": 8, "seed": "0x52", "idempotency_key": "py-2"})
            )
            out["over_budget"] = payload(
                await session.call_tool("sage_submit_job", {"size": 8, "seed": "0x53", "idempotency_key": "py-3"})
            )
            out["bad_size"] = payload(
                await session.call_tool("sage_submit_job", {"size": 3, "idempotency_key": "py-4"})
            )
            out["bad_job"] = payload(await session.call_tool("sage_job_status", {"job_id": "not-a-job"}))
            out["budget_after"] = payload(await session.call_tool("sage_budget", {}))
    return out


async def http_scenario(url, token):
    out = {}
    async with httpx2.AsyncClient() as raw:
        r = await raw.post(
            url,
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={"Accept": "application/json, text/event-stream"},
        )
        out["unauthenticated_status"] = r.status_code
        r = await raw.post(
            url,
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={"Accept": "application/json, text/event-stream", "Authorization": "Bearer smcp_wrong"},
        )
        out["wrong_token_status"] = r.status_code
    client = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    async with client:
        async with streamable_http_client(url, http_client=client) as streams:
            read, write = streams[0], streams[1]
            # No elicitation callback: this client cannot ask its user.
            async with ClientSession(read, write) as session:
                await session.initialize()
                out["tool_count"] = len((await session.list_tools()).tools)
                out["quote"] = payload(await session.call_tool("sage_quote", {"size": 8}))
                out["unapproved"] = payload(
                    await session.call_tool("sage_submit_job", {"size": 8, "seed": "0x61", "idempotency_key": "http-1"})
                )
                out["budget"] = payload(await session.call_tool("sage_budget", {}))
    return out


def main():
    mode = sys.argv[1]
    if mode == "stdio":
        result = asyncio.run(stdio_scenario(sys.argv[2], sys.argv[3]))
    else:
        result = asyncio.run(http_scenario(sys.argv[2], sys.argv[3]))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
