"""GraphQL for the W&B door: parsed by graphql-core, resolved by top-level field, projected.

W&B's schema is large and its clients' query texts change from release to release, so nothing
here validates a query against a schema. An operation is answered field by field:

* each top-level field (``viewer``, ``upsertBucket``, ``project``...) has a :data:`Resolver` in
  a table (:class:`Resolvers`); the operation's name and the query's other wording do not matter;
* a resolver returns a *node*: JSON values, dicts and lists, where a dict's value may be a
  :class:`Field`, a function of that field's arguments, computed only when the query selects it
  (``project { run(name: "x") { ... } }``: ``run`` is a :class:`Field` of the project node);
* the node is projected on the query's selection set: aliases, fragments and inline fragments
  are honoured, and a field the node does not have is ``null``, so a client asking for a field
  runyard does not know still gets everything else.

Failures never become HTTP errors (the wandb client retries a 5xx for minutes, blocking
``finish()``): a top-level field without a resolver, a :class:`GraphQLFieldError` raised by a
resolver (the message is for the user: say what to do), a syntax error or an unexpected
exception each give an entry of the response's ``errors`` array, and that field is ``null``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Generic, TypeVar

from graphql import GraphQLError, parse
from graphql.language import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionNode,
    SelectionSetNode,
)
from graphql.pyutils import Undefined
from graphql.utilities import value_from_ast_untyped

log = logging.getLogger("runyard.compat.wandb")

C = TypeVar("C")

#: ``resolver(context, arguments) -> node`` for one top-level field.
Resolver = Callable[[C, dict[str, Any]], Any]


class GraphQLFieldError(Exception):
    """A field cannot be answered; the message goes to the client's user as is."""


class Field:
    """A node's field computed from its arguments, only when the query selects it."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[dict[str, Any]], Any]) -> None:
        self.fn = fn


class Resolvers(Generic[C]):
    """The top-level fields a door serves: ``name -> resolver``."""

    def __init__(self) -> None:
        self._table: dict[str, Resolver[C]] = {}
        self._mutations: set[str] = set()
        self._types: dict[str, tuple[bool, tuple[str, ...]]] = {}

    def field(self, *names: str, mutation: bool = False) -> Callable[[Resolver[C]], Resolver[C]]:
        """Decorator: ``@resolvers.field("upsertBucket", mutation=True)``. ``mutation`` only
        decides which type introspection (``__type(name: "Mutation")``) lists the field under:
        either kind of operation may select any field, as before."""

        def register(fn: Resolver[C]) -> Resolver[C]:
            for name in names:
                if name in self._table:
                    raise ValueError(f"top-level field {name!r} has two resolvers")
                self._table[name] = fn
                if mutation:
                    self._mutations.add(name)
            return fn

        return register

    def describe(self, type_name: str, fields: Sequence[str], *, input_type: bool = False) -> None:
        """Declare the fields of a type that clients probe with ``__type``: W&B's clients ask
        which ``ServerInfo``/``Artifact`` fields and which ``CreateArtifactInput`` fields
        (``input_type``) a server has before they use newer ones. List only fields that are
        served: a client sends or reads whatever is listed."""
        self._types[type_name] = (input_type, tuple(fields))

    def get(self, name: str) -> Resolver[C] | None:
        return self._table.get(name)

    def names(self) -> list[str]:
        return sorted(self._table)

    def type_fields(self, type_name: str) -> tuple[bool, list[str]]:
        """``(is an input type, field names)`` that introspection answers for ``type_name``."""
        if type_name == "Query":
            return False, sorted(set(self._table) - self._mutations)
        if type_name == "Mutation":
            return False, sorted(self._mutations)
        described = self._types.get(type_name)
        if described is None:
            # A type runyard does not describe has no optional fields: a probing client then
            # takes the path that every server speaks (a null type crashes older clients).
            return type_name.endswith("Input"), []
        return described[0], list(described[1])


@dataclass
class GraphQLRequest:
    query: str
    variables: dict[str, Any]
    operation_name: str | None


class BadRequest(Exception):
    """The body is not a GraphQL request at all."""


def parse_request(body: Any) -> GraphQLRequest:
    """The request in a decoded JSON body ``{"query", "variables", "operationName"}``."""
    if not isinstance(body, dict):
        raise BadRequest('a GraphQL request is a JSON object {"query": ..., "variables": ...}')
    query = body.get("query")
    if not isinstance(query, str) or not query.strip():
        raise BadRequest("the GraphQL request has no 'query' string")
    variables = body.get("variables")
    if variables is None:
        variables = {}
    if not isinstance(variables, dict):
        raise BadRequest("'variables' must be a JSON object")
    name = body.get("operationName")
    return GraphQLRequest(query, variables, name if isinstance(name, str) and name else None)


@lru_cache(maxsize=512)
def _parse(query: str) -> DocumentNode:
    return parse(query, no_location=True)


@dataclass
class _Run:
    fragments: dict[str, FragmentDefinitionNode]
    variables: dict[str, Any]
    errors: list[dict[str, Any]]


def operation_of(request: GraphQLRequest) -> tuple[OperationDefinitionNode, _Run]:
    """The operation to run (by ``operationName`` when the document has several)."""
    document = _parse(request.query)
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    if request.operation_name is not None:
        chosen = [o for o in operations if o.name and o.name.value == request.operation_name]
    else:
        chosen = operations
    if len(chosen) != 1:
        raise GraphQLFieldError(
            f"the document has {len(operations)} operations; name one with operationName"
            if request.operation_name is None
            else f"the document has no operation named {request.operation_name!r}"
        )
    variables = dict(request.variables)
    for definition in chosen[0].variable_definitions or ():
        name = definition.variable.name.value
        if name not in variables and definition.default_value is not None:
            variables[name] = _value(value_from_ast_untyped(definition.default_value, {}))
    return chosen[0], _Run(fragments, variables, [])


def top_level_fields(request: GraphQLRequest) -> list[str]:
    """The names of the operation's top-level fields (for logs and tests)."""
    operation, run = operation_of(request)
    return [f.name.value for f in _fields(operation.selection_set, run)]


def execute(request: GraphQLRequest, resolvers: Resolvers[C], context: C) -> dict[str, Any]:
    """Answer ``request``: ``{"data": {...}}`` plus ``"errors"`` when something failed."""
    try:
        operation, run = operation_of(request)
    except GraphQLError as exc:
        return {"data": None, "errors": [{"message": f"invalid GraphQL query: {exc.message}"}]}
    except GraphQLFieldError as exc:
        return {"data": None, "errors": [{"message": str(exc)}]}
    op_name = operation.name.value if operation.name else "anonymous"
    if operation.operation.value == "subscription":
        return {"data": None, "errors": [{"message": "runyard serves no GraphQL subscriptions"}]}
    data: dict[str, Any] = {}
    for node in _fields(operation.selection_set, run):
        name = node.name.value
        key = node.alias.value if node.alias else name
        if name == "__typename":
            data[key] = "Mutation" if operation.operation.value == "mutation" else "Query"
            continue
        if name == "__type":
            # Capability probes (``ProbeServerCapabilities``): the names runyard serves, so a
            # client picks the protocol both sides speak. Only the names of ``fields`` or
            # ``inputFields``: no types, arguments or descriptions.
            type_name = _arguments(node, run).get("name")
            described = None
            if isinstance(type_name, str):
                is_input, names = resolvers.type_fields(type_name)
                described = {
                    "__typename": "__Type",
                    "name": type_name,
                    "kind": "INPUT_OBJECT" if is_input else "OBJECT",
                    "fields": None if is_input else [{"name": f} for f in names],
                    "inputFields": [{"name": f} for f in names] if is_input else None,
                }
            data[key] = _project(described, node.selection_set, run, [key])
            continue
        resolver = resolvers.get(name)
        if resolver is None:
            run.errors.append(
                {
                    "message": f"runyard does not serve the W&B GraphQL field {name!r} "
                    f"(operation {op_name}); docs/wandb-compat.md lists what it serves",
                    "path": [key],
                }
            )
            data[key] = None
            continue
        try:
            value = resolver(context, _arguments(node, run))
            data[key] = _project(value, node.selection_set, run, [key])
        except GraphQLFieldError as exc:
            run.errors.append({"message": str(exc), "path": [key]})
            data[key] = None
        except Exception as exc:
            log.exception("wandb GraphQL field %s (operation %s) failed", name, op_name)
            run.errors.append(
                {
                    "message": f"runyard failed to answer {name!r} (operation {op_name}): "
                    f"{type(exc).__name__}: {exc}; see the server's log",
                    "path": [key],
                }
            )
            data[key] = None
    out: dict[str, Any] = {"data": data}
    if run.errors:
        out["errors"] = run.errors
    return out


def _value(value: Any) -> Any:
    if value is Undefined:
        return None
    if isinstance(value, dict):
        return {k: _value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_value(v) for v in value]
    return value


def _arguments(node: FieldNode, run: _Run) -> dict[str, Any]:
    return {
        a.name.value: _value(value_from_ast_untyped(a.value, run.variables))
        for a in node.arguments or ()
    }


def _included(selection: SelectionNode, run: _Run) -> bool:
    """``@include(if: ...)`` / ``@skip(if: ...)``."""
    for directive in getattr(selection, "directives", None) or ():
        name = directive.name.value
        if name not in ("include", "skip"):
            continue
        value = None
        for argument in directive.arguments or ():
            if argument.name.value == "if":
                value = _value(value_from_ast_untyped(argument.value, run.variables))
        if (name == "include" and value is False) or (name == "skip" and value is True):
            return False
    return True


def _fields(selection_set: SelectionSetNode | None, run: _Run) -> Iterable[FieldNode]:
    """The fields of a selection set with fragments spread (type conditions are not checked:
    a node answers the fields it has) and ``@include``/``@skip`` applied."""
    if selection_set is None:
        return
    for selection in selection_set.selections:
        if not _included(selection, run):
            continue
        if isinstance(selection, FieldNode):
            yield selection
        elif isinstance(selection, InlineFragmentNode):
            yield from _fields(selection.selection_set, run)
        elif isinstance(selection, FragmentSpreadNode):
            fragment = run.fragments.get(selection.name.value)
            if fragment is not None:
                yield from _fields(fragment.selection_set, run)


def _project(value: Any, selection_set: SelectionSetNode | None, run: _Run, path: list[Any]) -> Any:
    if isinstance(value, Field):
        raise TypeError("a Field must be read through its parent node")
    if selection_set is None or value is None:
        return value
    if isinstance(value, list | tuple):
        return [_project(v, selection_set, run, [*path, i]) for i, v in enumerate(value)]
    if not isinstance(value, dict):
        return value  # a scalar where the query expected an object: answer it as it is
    out: dict[str, Any] = {}
    for node in _fields(selection_set, run):
        name = node.name.value
        key = node.alias.value if node.alias else name
        if key in out and not node.selection_set:
            continue
        field_value = value.get(name)
        if isinstance(field_value, Field):
            try:
                field_value = field_value.fn(_arguments(node, run))
            except GraphQLFieldError as exc:
                run.errors.append({"message": str(exc), "path": [*path, key]})
                out[key] = None
                continue
        projected = _project(field_value, node.selection_set, run, [*path, key])
        if key in out and isinstance(out[key], dict) and isinstance(projected, dict):
            out[key].update(projected)  # the same field selected twice (fragments)
        else:
            out[key] = projected
    return out
