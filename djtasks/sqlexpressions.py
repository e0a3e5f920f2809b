"""Database expressions that Django lacks, one per vendor."""

from __future__ import annotations

import json
from typing import Any

from django.db import models
from django.db.models import F, Func


class JSONAppend(Func):
    """``column`` with one more element at the end of its JSON list, computed in the database.

    Appending in SQL spares reading the row first (worker ids, errors).
    """

    output_field = models.JSONField()
    templates = {
        "postgresql": "(COALESCE({column}, '[]'::jsonb) || jsonb_build_array(%s::jsonb))",
        "sqlite": "json_insert(COALESCE({column}, '[]'), '$[#]', json(%s))",
        "mysql": "JSON_MERGE_PRESERVE(COALESCE({column}, JSON_ARRAY()), CONCAT('[', %s, ']'))",
    }

    def __init__(self, column: str, element: Any) -> None:
        super().__init__(F(column))
        self.element_json = json.dumps(element)

    def as_sql(self, compiler, connection, **extra):  # noqa: ANN001, ANN201
        column_sql, params = compiler.compile(self.get_source_expressions()[0])
        template = self.templates[connection.vendor]
        return template.format(column=column_sql), (*params, self.element_json)


class JSONRemoveLast(Func):
    """``column`` without the last element of its JSON list."""

    output_field = models.JSONField()
    templates = {
        "postgresql": "({column} - (jsonb_array_length({column}) - 1))",
        "sqlite": "json_remove({column}, '$[#-1]')",
        "mysql": "JSON_REMOVE({column}, CONCAT('$[', JSON_LENGTH({column}) - 1, ']'))",
    }

    def __init__(self, column: str) -> None:
        super().__init__(F(column))

    def as_sql(self, compiler, connection, **extra):  # noqa: ANN001, ANN201
        column_sql, params = compiler.compile(self.get_source_expressions()[0])
        template = self.templates[connection.vendor]
        return template.format(column=column_sql), tuple(params) * template.count("{column}")
