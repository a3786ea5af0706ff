import json

import pytest
from django.test import Client

from apps.api.keys import create_api_key


@pytest.fixture
def rw_key(team):
    return create_api_key(team=team, name="deploy", is_read_only=False).secret


@pytest.fixture
def ro_key(team):
    return create_api_key(team=team, name="grafana", is_read_only=True).secret


@pytest.fixture
def other_key(other_team):
    return create_api_key(team=other_team, name="theirs", is_read_only=False).secret


class Api:
    """Requests with a key, as a client program sends them (JSON in, JSON out)."""

    def __init__(self, key: str | None, header: str = "bearer"):
        self.client = Client()
        self.headers = {}
        if key is not None:
            if header == "bearer":
                self.headers["Authorization"] = f"Bearer {key}"
            else:
                self.headers["X-Api-Key"] = key

    def call(self, method: str, path: str, body=None, *, raw: bytes | None = None, **extra):
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        kwargs = {"headers": {**self.headers, **extra.pop("headers", {})}, **extra}
        if data is not None:
            kwargs.update(data=data, content_type="application/json")
        return getattr(self.client, method.lower())(path, **kwargs)

    def get(self, path, **extra):
        return self.call("GET", path, **extra)

    def post(self, path, body=None, **extra):
        return self.call("POST", path, body, **extra)

    def put(self, path, body=None, **extra):
        return self.call("PUT", path, body, **extra)

    def patch(self, path, body=None, **extra):
        return self.call("PATCH", path, body, **extra)

    def delete(self, path, **extra):
        return self.call("DELETE", path, **extra)


@pytest.fixture
def api(rw_key):
    return Api(rw_key)


@pytest.fixture
def ro_api(ro_key):
    return Api(ro_key, header="x-api-key")


@pytest.fixture
def other_api(other_key):
    return Api(other_key)


@pytest.fixture
def anon_api(db):
    return Api(None)
