"""The API's documentation: the OpenAPI document, and a self-contained page for people (no CDN needed,
the service often runs on a network without internet access)."""

from __future__ import annotations

import html
import json
from typing import Any

from aiohttp import web

DOCS_KEY = web.AppKey("openapi", dict)


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(request.app[DOCS_KEY])


async def docs_page(request: web.Request) -> web.Response:
    return web.Response(text=render_page(request.app[DOCS_KEY]), content_type="text/html")


def render_page(document: dict[str, Any]) -> str:
    info = document["info"]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(info['title'])}</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}"
        "code,pre{background:#f4f4f4;padding:.1em .3em}pre{padding:.6em;overflow:auto}"
        ".op{border-top:1px solid #ccc;padding:.5em 0}.m{font-weight:bold;display:inline-block;width:4.5em}"
        "</style></head><body>",
        f"<h1>{html.escape(info['title'])} <small>{html.escape(info['version'])}</small></h1>",
        f"<p>{html.escape(info.get('description', ''))}</p>",
        "<p>Machine-readable: <a href='/api/v1/openapi.json'>/api/v1/openapi.json</a>. "
        "Authenticate with <code>Authorization: Bearer &lt;token&gt;</code>.</p>",
    ]
    for path, methods in document["paths"].items():
        for method, op in methods.items():
            parts.append("<div class='op'>")
            parts.append(f"<span class='m'>{method.upper()}</span><code>{html.escape(path)}</code>")
            parts.append(f" &mdash; {html.escape(op.get('summary', ''))}")
            if op.get("description"):
                parts.append(f"<p>{html.escape(op['description'])}</p>")
            for parameter in op.get("parameters", []):
                schema = html.escape(json.dumps(parameter.get("schema", {})))
                required = ", required" if parameter.get("required") else ""
                parts.append(
                    f"<div><code>{html.escape(parameter['name'])}</code> ({parameter['in']}{required}): "
                    f"<small>{schema}</small></div>"
                )
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            if body:
                parts.append(
                    f"<div>Body: <code>{html.escape(body.get('$ref', '').rsplit('/', 1)[-1])}</code></div>"
                )
            statuses = ", ".join(
                f"{code} {html.escape(r['description'])}" for code, r in op["responses"].items()
            )
            parts.append(f"<div><small>Responses: {statuses}</small></div></div>")
    parts.append("<h2>Schemas</h2>")
    for name, schema in document["components"]["schemas"].items():
        parts.append(f"<h3 id='{html.escape(name)}'>{html.escape(name)}</h3>")
        parts.append(f"<pre>{html.escape(json.dumps(schema, indent=2))}</pre>")
    parts.append("</body></html>")
    return "".join(parts)
