"""The OpenAPI description of /api/v1, written by hand so it says what each endpoint is for."""

from __future__ import annotations

from typing import Any

from .. import __version__
from .params import MAX_PAGE_SIZE, MAX_QUERY


def _param(name: str, where: str, typ: str, description: str, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": where, "required": required or where == "path",
            "schema": {"type": typ}, "description": description}


PAGING = [
    _param("page", "query", "integer", "Page number, from 1."),
    _param("limit", "query", "integer", f"Items per page, 1 to {MAX_PAGE_SIZE}."),
]
FILTERS = [
    _param("area", "query", "string", "Only this area."),
    _param("kind", "query", "string", "paper or talk."),
    _param("year", "query", "string", "Only this year (YYYY)."),
    _param("author", "query", "string", "Only records by this author (name or key)."),
]

ENDPOINTS: list[tuple[str, str, list[dict[str, Any]]]] = [
    ("/api/v1/stats", "Counts of papers and talks, per area and per year, and the counts line.", []),
    ("/api/v1/home", "The home page: counts, latest records, emerging concepts, largest topics.", []),
    ("/api/v1/records", "Records, filtered by facets that combine, sorted, paged by cursor (paging.next and"
     " paging.prev; page=N still works), with facet counts (the top 12 of area, concept and author, and how many"
     " more under facets.more).",
     [*FILTERS, _param("concept", "query", "string", "Only records with this concept."),
      _param("topic", "query", "integer", "Only records in this topic."),
      _param("sort", "query", "string", "newest (default), oldest or title."),
      _param("after", "query", "string", "The page after this cursor (paging.next of a page)."),
      _param("before", "query", "string", "The page before this cursor (paging.prev of a page)."), *PAGING]),
    ("/api/v1/records/{id}", "One record with its area probabilities, concepts, connections, topic and map "
     "position (what `landscape show --json` gives, and more). Has an ETag.",
     [_param("id", "path", "string", "Record id.")]),
    ("/api/v1/graph/{id}", "A record's connections and their connections, as nodes and edges.",
     [_param("id", "path", "string", "Record id.")]),
    ("/api/v1/related", "Related records with scores and reasons, for a record id or for pasted text.",
     [_param("id", "query", "string", "Record id."),
      _param("text", "query", "string", f"Text such as an abstract (at most {MAX_QUERY} characters)."),
      _param("limit", "query", "integer", f"At most this many, 1 to {MAX_PAGE_SIZE}.")]),
    ("/api/v1/search", "Hybrid search (keywords and meaning) with highlighted snippets and facet counts.",
     [_param("q", "query", "string", f"The query (at most {MAX_QUERY} characters).", required=True),
      *FILTERS, _param("since", "query", "string", "YYYY-MM-DD"), _param("until", "query", "string", "YYYY-MM-DD"),
      *PAGING]),
    ("/api/v1/concepts", "Concepts, most used first.",
     [_param("prefix", "query", "string", "Only concepts starting with this."), *PAGING]),
    ("/api/v1/concepts/{name}", "One concept: description, records, records per year, related concepts.",
     [_param("name", "path", "string", "Concept name."), *PAGING]),
    ("/api/v1/topics", "Topics, largest first.", []),
    ("/api/v1/topics/{id}", "One topic: label, records, records per year, concepts.",
     [_param("id", "path", "integer", "Topic id."), *PAGING]),
    ("/api/v1/areas", "Areas with counts and descriptions.", []),
    ("/api/v1/areas/{name}", "One area: records, records per year, concepts, topics.",
     [_param("name", "path", "string", "Area name."), *PAGING]),
    ("/api/v1/authors", "Authors, most prolific first.",
     [_param("prefix", "query", "string", "Only names starting with this."), *PAGING]),
    ("/api/v1/authors/{key}", "One author: records, areas, concepts, co-authors, first and latest year,"
     " citations within the landscape (times cited, most cited records).",
     [_param("key", "path", "string", "Author key (normalised name)."), *PAGING]),
    ("/api/v1/trends", "Records per year, emerging and fading concepts, concepts and topics over time.", []),
    ("/api/v1/map", "Map coordinates of every record in columns, with topic label positions (JSON, up to "
     "100,000 points, a 400 beyond; /api/v1/map/points is a few bytes a point at any size).", []),
    ("/api/v1/map/points", "Every placed record as a binary file of typed arrays (application/octet-stream): "
     "a 32-byte header (LMAP, format, n, metadata length, bounds), JSON metadata (store version, areas, topics, "
     "labels at each zoom level), then uint16 x and y quantised over the bounds, uint8 area, uint8 kind, uint16 "
     "topic, each padded to 4 bytes, and with `sample` uint32 rows. ETag: the store version.",
     [_param("v", "query", "string", "The store version the client has (409 if it changed; immutable if not)."),
      _param("sample", "query", "integer", "Only this many points, spread evenly, with their rows.")]),
    ("/api/v1/map/rows", "Id, title and kind of points of the binary map file, by row.",
     [_param("rows", "query", "string", "Row numbers separated by commas (at most 200).", required=True),
      _param("v", "query", "string", "The map's store version (409 if it changed).")]),
    ("/api/v1/map/match", "Rows of the binary map file whose title contains the text, the first with titles.",
     [_param("q", "query", "string", "Text to find in titles.", required=True),
      _param("v", "query", "string", "The map's store version (409 if it changed).")]),
    ("/api/v1/about", "How areas, concepts, summaries and connections are made, and which steps have run.", []),
]


def spec() -> dict[str, Any]:
    error = {"description": "Error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    paths: dict[str, Any] = {}
    for path, summary, params in ENDPOINTS:
        paths[path] = {"get": {
            "summary": summary,
            "parameters": params,
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}},
                "304": {"description": "Not modified (If-None-Match matched the ETag)"},
                "400": error, "404": error, "503": error,
            },
        }}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Landscape API", "version": __version__,
                 "description": "Read-only JSON twin of every Landscape page."},
        "paths": paths,
        "components": {"schemas": {"Error": {
            "type": "object", "required": ["error"],
            "properties": {"error": {"type": "object", "required": ["status", "message"], "properties": {
                "status": {"type": "integer"}, "message": {"type": "string"}}}},
        }}},
    }
