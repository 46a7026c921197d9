"""Offline completion: a maintained catalog from description keywords to pinned images. No network.

Extend it by adding ``(keywords, image)`` to ``IMAGES``; product names come
before generic words so that "nginx reverse proxy" picks nginx.
"""

from __future__ import annotations

import re
from typing import Any

from clockwork.resources.base import Resource

#: (keywords, pinned image), first match wins: product names first, then kinds of service.
IMAGES: list[tuple[tuple[str, ...], str]] = [
    (("nginx",), "nginx:1.27-alpine"),
    (("traefik",), "traefik:v3.1"),
    (("caddy",), "caddy:2.8-alpine"),
    (("apache", "httpd"), "httpd:2.4-alpine"),
    (("haproxy",), "haproxy:3.0-alpine"),
    (("redis",), "redis:7.4-alpine"),
    (("valkey",), "valkey/valkey:8.0-alpine"),
    (("postgres", "postgresql"), "postgres:16-alpine"),
    (("mariadb",), "mariadb:11.4"),
    (("mysql",), "mysql:8.4"),
    (("mongo", "mongodb"), "mongo:7.0"),
    (("memcached",), "memcached:1.6-alpine"),
    (("rabbitmq", "amqp"), "rabbitmq:3.13-management-alpine"),
    (("kafka",), "apache/kafka:3.8.0"),
    (("node exporter", "node-exporter"), "prom/node-exporter:v1.8.2"),
    (("alertmanager",), "prom/alertmanager:v0.27.0"),
    (("prometheus",), "prom/prometheus:v2.54.1"),
    (("grafana",), "grafana/grafana:11.2.0"),
    (("elasticsearch",), "elasticsearch:8.15.1"),
    (("minio",), "minio/minio:RELEASE.2024-09-13T20-26-02Z"),
    (("vault",), "hashicorp/vault:1.17"),
    (("consul",), "hashicorp/consul:1.19"),
    (("jaeger",), "jaegertracing/all-in-one:1.60"),
    (("busybox",), "busybox:1.36"),
    # Kinds of service, when no product is named.
    (("reverse proxy", "load balancer"), "nginx:1.27-alpine"),
    (("web server", "static site", "static files", "website"), "nginx:1.27-alpine"),
    (("cache", "key-value", "key value"), "redis:7.4-alpine"),
    (("database", "sql"), "postgres:16-alpine"),
    (("message queue", "message broker", "queue"), "rabbitmq:3.13-management-alpine"),
    (("metrics", "monitoring"), "prom/prometheus:v2.54.1"),
    (("dashboard", "dashboards"), "grafana/grafana:11.2.0"),
    (("object storage", "s3"), "minio/minio:RELEASE.2024-09-13T20-26-02Z"),
    (("tracing",), "jaegertracing/all-in-one:1.60"),
]


def image_for(text: str) -> str | None:
    """The catalog's image for a description, or ``None``.

    >>> image_for("Redis cache for sessions")
    'redis:7.4-alpine'
    """
    words = text.lower()
    for keywords, image in IMAGES:
        if any(re.search(rf"(?<![\w-]){re.escape(keyword)}(?![\w-])", words) for keyword in keywords):
            return image
    return None


def complete(resource: Resource, fields: list[str]) -> dict[str, Any]:
    """The fields the rules can fill for ``resource`` (only a container's ``image`` today)."""
    if "image" not in fields:
        return {}
    image = image_for(f"{resource.name} {resource.description}")
    return {"image": image} if image else {}
