/// The OpenAPI 3.1 description of `/v1`, served at `/v1/openapi.json`. `ApprovalAPITests` calls every operation it
/// lists and checks each answer against it, so it stays true.
enum ApprovalAPIDocument {
    static let text = #"""
        {
          "openapi": "3.1.0",
          "info": {
            "title": "Tollgate approvals API",
            "version": "1",
            "description": "Reviewers list, read and decide the tool calls that Tollgate holds for human approval. Every request but this document needs Authorization: Bearer <token>, a reviewer's token whose hash is under `reviewers:` in the gateway's configuration. Roles: reviewer and admin may read and decide; auditor may only read."
          },
          "servers": [{"url": "/"}],
          "security": [{"bearer": []}],
          "paths": {
            "/v1/openapi.json": {
              "get": {
                "operationId": "openapi",
                "summary": "This document.",
                "security": [],
                "responses": {"200": {"description": "The OpenAPI document.", "content": {"application/json": {"schema": {"type": "object", "required": ["openapi", "paths"]}}}}}
              }
            },
            "/v1/approvals": {
              "get": {
                "operationId": "listApprovals",
                "summary": "Approval requests, newest first, one page at a time.",
                "parameters": [
                  {"name": "status", "in": "query", "schema": {"type": "string", "enum": ["pending", "approved", "denied", "expired"]}},
                  {"name": "server", "in": "query", "schema": {"type": "string", "minLength": 1, "maxLength": 200}},
                  {"name": "agent", "in": "query", "schema": {"type": "string", "minLength": 1, "maxLength": 200}},
                  {"name": "tool", "in": "query", "schema": {"type": "string", "minLength": 1, "maxLength": 200}},
                  {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}},
                  {"name": "cursor", "in": "query", "description": "next_cursor of the previous page.", "schema": {"type": "string"}}
                ],
                "responses": {
                  "200": {"description": "One page.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ApprovalPage"}}}},
                  "400": {"$ref": "#/components/responses/Error"},
                  "401": {"$ref": "#/components/responses/Error"},
                  "503": {"$ref": "#/components/responses/Error"}
                }
              }
            },
            "/v1/approvals/{id}": {
              "get": {
                "operationId": "showApproval",
                "summary": "One approval request, with the call's arguments (as the log stores them) and the policy rule that asked.",
                "parameters": [{"$ref": "#/components/parameters/id"}],
                "responses": {
                  "200": {"description": "The request.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Approval"}}}},
                  "401": {"$ref": "#/components/responses/Error"},
                  "404": {"$ref": "#/components/responses/Error"},
                  "503": {"$ref": "#/components/responses/Error"}
                }
              }
            },
            "/v1/approvals/{id}/approve": {
              "post": {
                "operationId": "approve",
                "summary": "Approve: one reviewer counts once toward the quorum; the agent that made the call cannot approve it.",
                "parameters": [{"$ref": "#/components/parameters/id"}],
                "requestBody": {"required": false, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ApproveBody"}}}},
                "responses": {
                  "200": {"description": "The request after the approval.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Approval"}}}},
                  "400": {"$ref": "#/components/responses/Error"},
                  "401": {"$ref": "#/components/responses/Error"},
                  "403": {"$ref": "#/components/responses/Error"},
                  "404": {"$ref": "#/components/responses/Error"},
                  "409": {"$ref": "#/components/responses/Error"},
                  "413": {"$ref": "#/components/responses/Error"},
                  "415": {"$ref": "#/components/responses/Error"},
                  "503": {"$ref": "#/components/responses/Error"}
                }
              }
            },
            "/v1/approvals/{id}/deny": {
              "post": {
                "operationId": "deny",
                "summary": "Deny, with a reason the agent is shown. One denial decides the request.",
                "parameters": [{"$ref": "#/components/parameters/id"}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/DenyBody"}}}},
                "responses": {
                  "200": {"description": "The request after the denial.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Approval"}}}},
                  "400": {"$ref": "#/components/responses/Error"},
                  "401": {"$ref": "#/components/responses/Error"},
                  "403": {"$ref": "#/components/responses/Error"},
                  "404": {"$ref": "#/components/responses/Error"},
                  "409": {"$ref": "#/components/responses/Error"},
                  "413": {"$ref": "#/components/responses/Error"},
                  "415": {"$ref": "#/components/responses/Error"},
                  "503": {"$ref": "#/components/responses/Error"}
                }
              }
            }
          },
          "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "parameters": {
              "id": {"name": "id", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}}
            },
            "responses": {
              "Error": {"description": "An error with a stable code.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            },
            "schemas": {
              "ApproveBody": {
                "type": "object", "additionalProperties": false,
                "properties": {"comment": {"type": "string", "maxLength": 2000}}
              },
              "DenyBody": {
                "type": "object", "additionalProperties": false, "required": ["reason"],
                "properties": {"reason": {"type": "string", "minLength": 1, "maxLength": 2000}}
              },
              "ApprovalPage": {
                "type": "object", "required": ["items", "next_cursor"],
                "properties": {
                  "items": {"type": "array", "items": {"$ref": "#/components/schemas/ApprovalSummary"}},
                  "next_cursor": {"type": ["string", "null"], "description": "Pass as cursor for the next page; null on the last."}
                }
              },
              "ApprovalSummary": {
                "type": "object",
                "required": ["id", "status", "consumed", "call_id", "agent", "grant", "session", "server", "tool", "arguments_hash", "arguments_storage", "policy_hash", "rule", "reason", "category", "quorum", "reviewers", "approvals", "denial", "requested_at", "expires_at", "decided_at", "consumed_at", "consumed_by_call", "version"],
                "properties": {
                  "id": {"type": "string", "format": "uuid"},
                  "status": {"type": "string", "enum": ["pending", "approved", "denied", "expired"]},
                  "consumed": {"type": "boolean", "description": "Whether the approved call has run (an approval runs one call, once)."},
                  "call_id": {"type": "string", "format": "uuid", "description": "The call that made the request."},
                  "agent": {"type": "string"},
                  "grant": {"type": "string"},
                  "session": {"type": "string"},
                  "server": {"type": "string"},
                  "tool": {"type": "string"},
                  "arguments_hash": {"type": "string", "description": "SHA-256 of the arguments' canonical JSON: the approval covers exactly these arguments."},
                  "arguments_storage": {"type": "string", "enum": ["full", "hash", "keys"]},
                  "policy_hash": {"type": "string", "description": "The policy version the approval is bound to."},
                  "rule": {"type": "string", "description": "The policy rule that asked for approval."},
                  "reason": {"type": ["string", "null"]},
                  "category": {"type": ["string", "null"]},
                  "quorum": {"type": "integer", "minimum": 1},
                  "reviewers": {"type": "array", "items": {"type": "string"}, "description": "Who may decide; empty means any reviewer."},
                  "approvals": {"type": "array", "items": {"$ref": "#/components/schemas/Grant"}},
                  "denial": {"oneOf": [{"$ref": "#/components/schemas/Denial"}, {"type": "null"}]},
                  "requested_at": {"type": "string", "format": "date-time"},
                  "expires_at": {"type": "string", "format": "date-time"},
                  "decided_at": {"type": ["string", "null"], "format": "date-time"},
                  "consumed_at": {"type": ["string", "null"], "format": "date-time"},
                  "consumed_by_call": {"type": ["string", "null"], "format": "uuid"},
                  "version": {"type": "integer", "description": "Events in the request's stream."}
                }
              },
              "Approval": {
                "allOf": [
                  {"$ref": "#/components/schemas/ApprovalSummary"},
                  {"type": "object", "required": ["arguments"], "properties": {"arguments": {"description": "The call's arguments as the log stores them: in full, their keys only, or null (hash only)."}}}
                ]
              },
              "Grant": {
                "type": "object", "required": ["reviewer", "comment", "at"],
                "properties": {"reviewer": {"type": "string"}, "comment": {"type": ["string", "null"]}, "at": {"type": "string", "format": "date-time"}}
              },
              "Denial": {
                "type": "object", "required": ["reviewer", "reason", "at"],
                "properties": {"reviewer": {"type": "string"}, "reason": {"type": "string"}, "at": {"type": "string", "format": "date-time"}}
              },
              "Error": {
                "type": "object", "required": ["error"],
                "properties": {
                  "error": {
                    "type": "object", "required": ["code", "message"],
                    "properties": {
                      "code": {"type": "string", "enum": ["unauthorized", "forbidden", "not_found", "method_not_allowed", "invalid_parameter", "invalid_cursor", "invalid_body", "body_too_large", "unsupported_media_type", "already_decided", "already_granted", "self_approval", "not_a_reviewer", "unavailable"]},
                      "message": {"type": "string"},
                      "outcome": {"type": "object", "description": "For already_decided: how the request ended.", "required": ["status", "by"], "properties": {"status": {"type": "string"}, "by": {"type": "array", "items": {"type": "string"}}, "reason": {"type": "string"}, "at": {"type": "string", "format": "date-time"}}},
                      "approvals": {"type": "integer"},
                      "quorum": {"type": "integer"}
                    }
                  }
                }
              }
            }
          }
        }
        """#
}
