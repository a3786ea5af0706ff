"""drf-spectacular post-processing: every API operation documents the error answers it can
give, in the one error shape of errors.py, and accepts either key header."""

ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {"type": "string", "description": "What went wrong, for people."},
        "code": {"type": "string", "description": "A stable code for programs."},
        "fields": {
            "type": "object",
            "description": "Validation errors only: messages per input field.",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
    },
    "required": ["error", "code"],
}
ALWAYS = {
    "400": "Malformed input (see `fields`).",
    "401": "No API key, or an unknown one.",
    "404": "No such object in the key's team.",
    "429": "Too many requests for this key; retry after the Retry-After header.",
}
WRITES = {
    "403": "The API key is read-only.",
    "409": "The object's state does not allow this action.",
    "413": "The request body is too large.",
}


def document_errors(result, generator, request, public):
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    reference = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            if operation.get("security"):
                # Either header will do; one requirement object would demand both.
                operation["security"] = [{"BearerKey": []}, {"ApiKeyHeader": []}]
            content = operation.get("requestBody", {}).get("content", {})
            if len(content) > 1:
                # /api/v3/ also reads JSON sent with any Content-Type; documented as JSON.
                content.pop("*/*", None)
            errors = dict(ALWAYS)
            if method != "get":
                errors.update(WRITES)
            responses = operation.setdefault("responses", {})
            for code, description in errors.items():
                responses.setdefault(code, {"description": description, "content": reference})
    return result


def one_healthchecks_version(endpoints, **kwargs):
    """drf-spectacular pre-processing: Healthchecks' API is mounted as v1, v2 and v3 with the
    same views; the schema documents it once, as v3 (the versions' differences are in the
    README), so that every operation id stays unique."""
    return [e for e in endpoints if not e[0].startswith(("/api/v1/", "/api/v2/"))]
