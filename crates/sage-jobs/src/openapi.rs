//! The OpenAPI 3.0 document served at `/openapi.json`. Written by hand next to the routes; a
//! test checks that it parses as OpenAPI and that every route of the router is in it.

use serde_json::{Value, json};

fn problem_responses(codes: &[u16]) -> Value {
    let mut map = serde_json::Map::new();
    for code in codes {
        map.insert(
            code.to_string(),
            json!({ "description": "problem", "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } } }),
        );
    }
    Value::Object(map)
}

fn with(mut ok: Value, errors: &[u16]) -> Value {
    if let (Some(target), Value::Object(extra)) = (ok.as_object_mut(), problem_responses(errors)) {
        target.extend(extra);
    }
    ok
}

fn ok_json(schema: &str) -> Value {
    json!({ "200": { "description": "ok", "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } } } })
}

fn path_param(name: &str, description: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true, "description": description, "schema": { "type": "string" } })
}

/// The document.
pub fn document() -> Value {
    let felt = json!({ "type": "string", "pattern": "^0x[0-9a-fA-F]{1,64}$" });
    let auth = json!([{ "apiKey": [] }]);
    let job_id = path_param("id", "job id (0x hex)");
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Sage coordinator API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Submit jobs whose escrow the client holds on-chain, follow them to payment, fetch their proofs."
        },
        "components": {
            "securitySchemes": { "apiKey": { "type": "http", "scheme": "bearer", "description": "sage_<prefix>_<secret>" } },
            "schemas": {
                "Felt": felt,
                "JobSpec": { "oneOf": [
                    {
                        "type": "object", "required": ["type", "n", "seed"], "additionalProperties": false,
                        "description": "C = A·B over M31 for n×n matrices derived from the seed",
                        "properties": { "type": { "type": "string", "enum": ["matmul"] }, "n": { "type": "integer", "minimum": 2, "maximum": 1024 }, "seed": { "$ref": "#/components/schemas/Felt" } }
                    },
                    {
                        "type": "object", "required": ["type", "n", "a", "b"], "additionalProperties": false,
                        "description": "C = A·B for the client's matrices, uploaded first with PUT /v1/blobs (n² little-endian u32, row-major, each below 2^31 − 1)",
                        "properties": { "type": { "type": "string", "enum": ["matmul_data"] }, "n": { "type": "integer", "minimum": 2, "maximum": 1024 }, "a": { "$ref": "#/components/schemas/Digest" }, "b": { "$ref": "#/components/schemas/Digest" } }
                    },
                    {
                        "type": "object", "required": ["type", "program", "inputs"], "additionalProperties": false,
                        "description": "A straight-line Obelysk VM program; the output is the final registers",
                        "properties": { "type": { "type": "string", "enum": ["vm"] }, "program": { "$ref": "#/components/schemas/Program" }, "inputs": { "$ref": "#/components/schemas/Registers" } }
                    },
                    {
                        "type": "object", "required": ["type", "program", "inputs", "max_steps"], "additionalProperties": false,
                        "description": "An Obelysk VM program with jumps that must halt within max_steps",
                        "properties": { "type": { "type": "string", "enum": ["vm_jump"] }, "program": { "$ref": "#/components/schemas/Program" }, "inputs": { "$ref": "#/components/schemas/Registers" }, "max_steps": { "type": "integer", "minimum": 1, "maximum": sage_protocol::spec::MAX_VM_JUMP_STEPS } }
                    }
                ] },
                "Digest": { "type": "string", "pattern": "^0x[0-9a-f]{64}$", "description": "sha256 of a blob" },
                "Program": { "type": "string", "pattern": "^0x([0-9a-f]{16})+$", "maxLength": 2 + 16 * sage_protocol::spec::MAX_VM_PROGRAM_LEN, "description": "8 bytes per instruction: opcode, dst, src1, src2, little-endian immediate" },
                "Registers": { "type": "array", "items": { "type": "integer", "minimum": 0, "maximum": sage_protocol::spec::M31_P - 1 }, "minItems": 4, "maxItems": 4 },
                "SubmitJob": {
                    "type": "object", "required": ["client", "client_job_id", "spec"], "additionalProperties": false,
                    "properties": { "client": { "$ref": "#/components/schemas/Felt" }, "client_job_id": { "$ref": "#/components/schemas/Felt" }, "spec": { "$ref": "#/components/schemas/JobSpec" } }
                },
                "JobState": { "type": "string", "enum": sage_protocol::api::JobState::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>() },
                "Transition": {
                    "type": "object", "required": ["job_id", "seq", "state", "at_ms"],
                    "properties": { "job_id": { "$ref": "#/components/schemas/Felt" }, "seq": { "type": "integer" }, "state": { "$ref": "#/components/schemas/JobState" }, "at_ms": { "type": "integer" }, "tx": { "$ref": "#/components/schemas/Felt" }, "detail": { "type": "string" } }
                },
                "Escrow": {
                    "type": "object", "required": ["payment", "deadline", "spec_hash"],
                    "properties": { "payment": { "type": "string", "pattern": "^[0-9]+$" }, "deadline": { "type": "integer" }, "spec_hash": { "$ref": "#/components/schemas/Felt" } }
                },
                "Job": {
                    "type": "object", "required": ["id", "client", "client_job_id", "spec", "spec_hash", "state", "attempts", "history"],
                    "properties": {
                        "id": { "$ref": "#/components/schemas/Felt" }, "client": { "$ref": "#/components/schemas/Felt" },
                        "client_job_id": { "$ref": "#/components/schemas/Felt" }, "spec": { "$ref": "#/components/schemas/JobSpec" },
                        "spec_hash": { "$ref": "#/components/schemas/Felt" }, "state": { "$ref": "#/components/schemas/JobState" },
                        "escrow": { "$ref": "#/components/schemas/Escrow" }, "worker": { "$ref": "#/components/schemas/Felt" },
                        "attempts": { "type": "integer" }, "proof_hash": { "$ref": "#/components/schemas/Felt" },
                        "history": { "type": "array", "items": { "$ref": "#/components/schemas/Transition" } }
                    }
                },
                "JobList": { "type": "object", "required": ["jobs"], "properties": { "jobs": { "type": "array", "items": { "$ref": "#/components/schemas/Job" } } } },
                "Quote": {
                    "type": "object", "required": ["type", "size", "price", "expected_ms", "basis", "min_deadline_secs"],
                    "properties": { "type": { "type": "string" }, "size": { "type": "integer" }, "price": { "type": "string", "pattern": "^[0-9]+$" }, "expected_ms": { "type": "integer" }, "basis": { "type": "string", "enum": ["measured", "default"] }, "min_deadline_secs": { "type": "integer" } }
                },
                "Worker": {
                    "type": "object", "required": ["address", "public_key", "tier", "capacity", "active", "last_seen_ms", "completed", "failed"],
                    "properties": { "address": { "$ref": "#/components/schemas/Felt" }, "public_key": { "$ref": "#/components/schemas/Felt" }, "tier": { "type": "string" }, "capacity": { "type": "integer" }, "active": { "type": "integer" }, "last_seen_ms": { "type": "integer" }, "completed": { "type": "integer" }, "failed": { "type": "integer" } }
                },
                "WorkerList": { "type": "array", "items": { "$ref": "#/components/schemas/Worker" } },
                "Problem": {
                    "type": "object", "required": ["type", "title", "status", "code", "detail"],
                    "properties": { "type": { "type": "string" }, "title": { "type": "string" }, "status": { "type": "integer" }, "code": { "type": "string", "enum": sage_protocol::api::ProblemCode::ALL.iter().map(|c| c.as_str()).collect::<Vec<_>>() }, "detail": { "type": "string" } }
                }
            }
        },
        "paths": {
            "/v1/jobs": {
                "post": {
                    "summary": "Submit a job", "security": auth,
                    "parameters": [{ "name": "idempotency-key", "in": "header", "required": false, "schema": { "type": "string", "maxLength": 128 } }],
                    "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/SubmitJob" } } } },
                    "responses": with(json!({
                        "201": { "description": "stored", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Job" } } } },
                        "200": { "description": "the same submission was stored before", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Job" } } } }
                    }), &[400, 401, 403, 409, 413, 422, 429])
                },
                "get": {
                    "summary": "List jobs", "security": auth,
                    "parameters": [
                        { "name": "client", "in": "query", "schema": { "type": "string" } },
                        { "name": "state", "in": "query", "schema": { "$ref": "#/components/schemas/JobState" } },
                        { "name": "limit", "in": "query", "schema": { "type": "integer" } }
                    ],
                    "responses": with(ok_json("JobList"), &[400, 401, 429])
                }
            },
            "/v1/jobs/{id}": { "get": { "summary": "One job with its history", "security": auth, "parameters": [job_id.clone()], "responses": with(ok_json("Job"), &[400, 401, 404, 429]) } },
            "/v1/jobs/{id}/events": { "get": {
                "summary": "Server-sent events: every state change (history first); ends after a terminal state", "security": auth, "parameters": [job_id.clone()],
                "responses": with(json!({ "200": { "description": "event stream", "content": { "text/event-stream": { "schema": { "type": "string" } } } } }), &[400, 401, 404, 429])
            } },
            "/v1/jobs/{id}/proof": { "get": {
                "summary": "The proof envelope (zstd-compressed)", "security": auth, "parameters": [job_id.clone()],
                "responses": with(json!({ "200": { "description": "envelope", "content": { "application/octet-stream": { "schema": { "type": "string", "format": "binary" } } } } }), &[400, 401, 404, 429])
            } },
            "/v1/jobs/{id}/output": { "get": {
                "summary": "The output of a certified job (little-endian u32: a matmul's C row-major, a VM's final registers); check it against the proof's output commitment", "security": auth, "parameters": [job_id.clone()],
                "responses": with(json!({ "200": { "description": "output", "content": { "application/octet-stream": { "schema": { "type": "string", "format": "binary" } } } } }), &[400, 401, 404, 409, 429])
            } },
            "/v1/jobs/{id}/cancel": { "post": { "summary": "Cancel before assignment (then cancel the escrow on-chain)", "security": auth, "parameters": [job_id], "responses": with(ok_json("Job"), &[400, 401, 404, 409, 429]) } },
            "/v1/quote": { "get": {
                "summary": "Price and expected time", "security": auth,
                "parameters": [
                    { "name": "type", "in": "query", "required": true, "schema": { "type": "string" } },
                    { "name": "size", "in": "query", "required": true, "schema": { "type": "integer" } }
                ],
                "responses": with(ok_json("Quote"), &[400, 401, 422, 429])
            } },
            "/v1/workers": { "get": { "summary": "Known workers", "security": auth, "responses": with(ok_json("WorkerList"), &[401, 429]) } },
            "/v1/workers/{address}": { "get": { "summary": "One worker", "security": auth, "parameters": [path_param("address", "account address (0x hex)")], "responses": with(ok_json("Worker"), &[400, 401, 404, 429]) } },
            "/v1/blobs/{sha256}": {
                "put": {
                    "summary": "Upload a content-addressed blob", "security": auth, "parameters": [path_param("sha256", "lowercase hex sha256 of the body")],
                    "requestBody": { "required": true, "content": { "application/octet-stream": { "schema": { "type": "string", "format": "binary" } } } },
                    "responses": with(json!({ "201": { "description": "stored" } }), &[400, 401, 413, 429])
                },
                "get": {
                    "summary": "Download a blob", "security": auth, "parameters": [path_param("sha256", "lowercase hex sha256")],
                    "responses": with(json!({ "200": { "description": "the bytes", "content": { "application/octet-stream": { "schema": { "type": "string", "format": "binary" } } } } }), &[400, 401, 404, 429])
                }
            },
            "/healthz": { "get": { "summary": "Liveness", "responses": { "200": { "description": "ok" } } } },
            "/metrics": { "get": { "summary": "Prometheus metrics", "responses": { "200": { "description": "text exposition format" } } } },
            "/openapi.json": { "get": { "summary": "This document", "responses": { "200": { "description": "OpenAPI 3.0 document" } } } }
        }
    })
}
