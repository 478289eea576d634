from __future__ import annotations

import pytest

from osbatch.field_map import FieldMapper, MappingError
from osbatch.models.ingest import MappedDoc

SAGEMAKER_LINE = {
    "_id": "1185869",
    "text": "what is a knn index",
    "SageMakerOutput": [0.1, 0.2, 0.3],
    "_osbatch": {"line": 7},
}


def test_reference_example_maps_content_vectors_and_id() -> None:
    # Given the single-file request of OpenSearch's "Asynchronous batch ingestion", with a list of vectors
    # and contents
    mapper = FieldMapper(
        {
            "chapter": "$.content[0]",
            "title": "$.content[1]",
            "chapter_embedding": "$.SageMakerOutput[0]",
            "title_embedding": "$.SageMakerOutput[1]",
            "_id": "$.id",
        },
        ingest_fields=["$.id"],
    )
    record = {
        "SageMakerOutput": [[0.1, 0.2], [0.3, 0.4]],
        "content": ["this is chapter 1", "harry potter"],
        "id": 1,
    }

    # When the record is mapped
    doc = mapper.map(record)

    # Then every field lands where the field_map says, the id is a string, and $.id is copied as "id"
    assert doc == MappedDoc(
        doc_id="1",
        body={
            "chapter": "this is chapter 1",
            "title": "harry potter",
            "chapter_embedding": [0.1, 0.2],
            "title_embedding": [0.3, 0.4],
            "id": 1,
        },
    )


def test_dotted_targets_build_nested_objects() -> None:
    # Given targets that share a parent
    mapper = FieldMapper(
        {"passage.text": "$.text", "passage.vector": "$.SageMakerOutput", "meta.source.id": "$._id"}
    )

    # When a record is mapped
    doc = mapper.map(SAGEMAKER_LINE)

    # Then the dots become objects, not literal field names
    assert doc.body == {
        "passage": {"text": "what is a knn index", "vector": [0.1, 0.2, 0.3]},
        "meta": {"source": {"id": "1185869"}},
    }


def test_id_list_takes_the_first_path_present_and_skips_nulls() -> None:
    # Given an _id list, as in that page's multi-file example but within one file
    mapper = FieldMapper({"text": "$.text", "_id": ["$.custom_id", "$.recordId", "$._id"]})

    # When records carry different id fields, one of them null
    from_record_id = mapper.map({"text": "a", "custom_id": None, "recordId": "CALL0000001"})
    from_underscore = mapper.map({"text": "b", "_id": 42})

    # Then the first present, non-null one wins, as a string
    assert from_record_id.doc_id == "CALL0000001"
    assert from_underscore.doc_id == "42"


def test_id_list_missing_everywhere_names_every_path() -> None:
    # Given an _id list none of whose paths is in the record
    mapper = FieldMapper({"text": "$.text", "_id": ["$.custom_id", "$.recordId"]})

    # When the record is mapped
    with pytest.raises(MappingError) as raised:
        mapper.map({"text": "a"})

    # Then the error lists the paths tried
    assert str(raised.value) == "field_map._id: none of $.custom_id, $.recordId found in record"


def test_source_zero_prefix_is_accepted() -> None:
    # Given paths written for _batch_ingestion with the source[0]. prefix
    mapper = FieldMapper(
        {"text": "source[0].$.text", "_id": ["source[0].$._id"]},
        ingest_fields=["source[0].$.SageMakerOutput"],
    )

    # When a record is mapped
    doc = mapper.map(SAGEMAKER_LINE)

    # Then the prefix selects the one source file and is otherwise ignored
    assert doc == MappedDoc("1185869", {"text": "what is a knn index", "SageMakerOutput": [0.1, 0.2, 0.3]})


def test_source_one_is_rejected_with_a_pointer_to_batch_ingest() -> None:
    # Given a field that reads a second input file
    field_map: dict[str, str | list[str]] = {
        "question": "source[1].$.body.input[0]",
        "_id": "source[0].$.custom_id",
    }

    # When the mapper is built
    with pytest.raises(ValueError) as raised:
        FieldMapper(field_map)

    # Then the error names the field and says where multi-file mapping lives
    message = str(raised.value)
    assert message.startswith("field_map.question: 'source[1].$.body.input[0]' reads source[1]")
    assert "needs `osbatch batch-ingest`" in message


def test_missing_mapped_field_raises_a_record_level_error() -> None:
    # Given the usual SageMaker mapping
    mapper = FieldMapper({"chunk": "$.text", "chunk_embedding": "$.SageMakerOutput"}, id_path="$._id")

    # When a record lacks the model output
    with pytest.raises(MappingError) as raised:
        mapper.map({"_id": "1", "text": "no vector"})

    # Then the message names the target field and the path, in the form dead letters show
    assert str(raised.value) == "field_map.chunk_embedding: $.SageMakerOutput not found in record"


def test_ingest_fields_copy_under_the_last_field_name() -> None:
    # Given ingest_fields, including a nested path, an indexed path and a wildcard path
    mapper = FieldMapper(
        {"text": "$.text"},
        ingest_fields=["$.meta.lang", "$.tags[0]", "$.response.body.data[*].embedding"],
    )
    record = {
        "text": "t",
        "meta": {"lang": "en"},
        "tags": ["a", "b"],
        "response": {"body": {"data": [{"embedding": [1.0]}, {"embedding": [2.0]}]}},
    }

    # When the record is mapped
    doc = mapper.map(record)

    # Then each value is copied under its last field name; a wildcard path gives every match
    assert doc.body == {"text": "t", "lang": "en", "tags": "a", "embedding": [[1.0], [2.0]]}


def test_missing_ingest_field_is_an_error_too() -> None:
    # Given an ingest field the record lacks
    mapper = FieldMapper({"text": "$.text"}, ingest_fields=["$.id"])

    # When the record is mapped
    with pytest.raises(MappingError) as raised:
        mapper.map({"text": "t"})

    # Then the error says which ingest field
    assert str(raised.value) == "ingest_fields: $.id not found in record"


def test_bookkeeping_key_is_never_indexed_unless_mapped() -> None:
    # Given a mapping that copies the whole record and a wildcard over it, and one that names the line
    whole = FieldMapper({"raw": "$", "values": "$.*"})
    explicit = FieldMapper({"text": "$.text", "input_line": "$._osbatch.line"})
    record = {"text": "t", "_osbatch": {"line": 7}}

    # When the record is mapped both ways
    whole_doc = whole.map(record)
    explicit_doc = explicit.map(record)

    # Then only the explicit mapping sees _osbatch, and the record itself is left untouched
    assert whole_doc.body == {"raw": {"text": "t"}, "values": ["t"]}
    assert explicit_doc.body == {"text": "t", "input_line": 7}
    assert record == {"text": "t", "_osbatch": {"line": 7}}


def test_id_falls_back_to_the_pipeline_id_path() -> None:
    # Given no _id mapping but the pipeline's source.id_path
    mapper = FieldMapper({"text": "$.text"}, id_path="$._id")

    # When a record with and one without the id are mapped
    doc = mapper.map(SAGEMAKER_LINE)
    with pytest.raises(MappingError) as raised:
        mapper.map({"text": "no id"})

    # Then the id comes from id_path, so a re-run overwrites; a missing id is a record error, not a random id
    assert doc.doc_id == "1185869"
    assert str(raised.value) == "source.id_path: $._id not found in record"


def test_no_id_path_leaves_the_id_to_opensearch() -> None:
    # Given neither an _id mapping nor an id_path
    mapper = FieldMapper({"text": "$.text"})

    # When a record is mapped
    doc = mapper.map({"text": "t"})

    # Then there is no id
    assert doc.doc_id is None


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ({"a": 1}, "field_map._id: the id is a dict, not a string or number"),
        (True, "field_map._id: the id is a bool, not a string or number"),
        ("", "field_map._id: the id is an empty string"),
    ],
)
def test_unusable_ids_are_record_errors(value: object, reason: str) -> None:
    # Given an id mapping
    mapper = FieldMapper({"_id": "$.id", "text": "$.text"})

    # When the id is not a usable scalar
    with pytest.raises(MappingError) as raised:
        mapper.map({"id": value, "text": "t"})

    # Then the record fails with a reason naming the problem
    assert str(raised.value) == reason


@pytest.mark.parametrize("content", ["abc", {"0": "x"}, [], 5])
def test_type_mismatches_on_the_way_are_not_found_rather_than_wrong_values(content: object) -> None:
    # Given an indexed path, where jsonpath-ng alone would index into a string or raise on a dict or int
    mapper = FieldMapper({"first": "$.content[0]"})

    # When the value there is not a list long enough
    with pytest.raises(MappingError) as raised:
        mapper.map({"content": content})

    # Then the path is reported missing
    assert str(raised.value) == "field_map.first: $.content[0] not found in record"


def test_negative_indexes_count_from_the_end() -> None:
    # Given a negative index
    mapper = FieldMapper({"last": "$.content[-1]"})

    # When mapped
    doc = mapper.map({"content": [1, 2]})

    # Then it is the last item, as in jsonpath-ng
    assert doc.body == {"last": 2}


def test_null_values_are_kept_for_ordinary_fields() -> None:
    # Given a mapped field whose value is JSON null
    mapper = FieldMapper({"title": "$.title"})

    # When mapped
    doc = mapper.map({"title": None})

    # Then null is a value, not a missing path (only ids treat null as absent)
    assert doc.body == {"title": None}


@pytest.mark.parametrize(
    ("field_map", "ingest_fields", "message"),
    [
        ({"a": "$.x", "a.b": "$.y"}, [], "field_map.a and field_map.a.b both write 'a'"),
        ({"id": "$.x"}, ["$.meta.id"], "field_map.id and ingest_fields both write 'id'"),
        ({"_source": "$.x"}, [], "field_map._source: '_source' is an OpenSearch metadata field"),
        ({"a..b": "$.x"}, [], "field_map.a..b: not a field name (empty part between dots)"),
        ({"a": "$.x"}, ["$.*"], "ingest_fields: '$.*' does not end in a field name to copy it to"),
        ({"a": "$.x"}, ["$._id"], "ingest_fields: '$._id' would write the metadata field '_id'"),
        ({"a": "x"}, [], "field_map.a: 'x' is not a JSONPath (it must start with '$')"),
    ],
)
def test_bad_mappings_fail_at_construction(
    field_map: dict[str, str | list[str]], ingest_fields: list[str], message: str
) -> None:
    # Given a mapping that could never produce a valid document
    # When the mapper is built
    with pytest.raises(ValueError) as raised:
        FieldMapper(field_map, ingest_fields)

    # Then it fails before any record is read, saying why
    assert str(raised.value) == message
