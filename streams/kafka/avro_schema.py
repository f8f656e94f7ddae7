"""The walk of a parsed Avro schema that the compiled writer and reader share
(`streams.kafka.avro_writer`, `streams.kafka.avro_reader`): each kind of type has a method, and
the walk calls it once per node of the schema, at compile time."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, Generic, TypeVar

Compiled = TypeVar("Compiled")


class SchemaCompiler(ABC, Generic[Compiled]):
    """What a schema compiles to, by kind; a schema as fastavro parses it (named types are full
    names, a named type's later uses are its name)."""

    def compile(self, schema: Any) -> Compiled:
        if isinstance(schema, list):
            return self.union(schema)
        if isinstance(schema, str):
            return self.by_name(schema)
        kind = schema["type"]
        logical = schema.get("logicalType")
        if logical is not None and isinstance(kind, str):
            return self.logical(schema, kind, logical)
        if kind == "record":
            return self.record(schema)
        if kind == "enum":
            return self.enum(schema)
        if kind == "array":
            return self.array(self.compile(schema["items"]))
        if kind == "map":
            return self.map(self.compile(schema["values"]))
        return self.compile(kind)

    @abstractmethod
    def union(self, branches: Sequence[Any]) -> Compiled: ...

    @abstractmethod
    def by_name(self, name: str) -> Compiled:
        """A primitive, or a named type defined earlier in the schema."""

    @abstractmethod
    def logical(self, schema: Mapping[str, Any], kind: str, logical: str) -> Compiled: ...

    @abstractmethod
    def record(self, schema: Mapping[str, Any]) -> Compiled: ...

    @abstractmethod
    def enum(self, schema: Mapping[str, Any]) -> Compiled: ...

    @abstractmethod
    def array(self, items: Compiled) -> Compiled: ...

    @abstractmethod
    def map(self, values: Compiled) -> Compiled: ...
