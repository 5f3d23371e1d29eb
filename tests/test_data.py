"""Data loading: every bad-input case gets a problem with code, line and field; nothing else escapes."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adaptlab.data import load_dataset
from adaptlab.errors import DataError


def write(tmp_path, content, name="data.jsonl"):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def problems(path):
    with pytest.raises(DataError) as info:
        load_dataset(path)
    return info.value.problems


def test_reads_input_output_and_prompt_completion(tmp_path):
    ds = load_dataset(write(tmp_path, '{"input": "a", "output": "x"}\n\n{"input": "b", "output": " y "}\n'))
    assert [(e.input, e.output, e.line) for e in ds] == [("a", "x", 1), ("b", "y", 3)]
    ds = load_dataset(write(tmp_path, '{"prompt": "a", "completion": "x"}\n'))
    assert ds.outputs == ["x"]


def test_reads_openai_chat_with_system_as_instruction(tmp_path):
    line = {
        "messages": [
            {"role": "system", "content": "Classify."},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "greeting"},
        ]
    }
    ds = load_dataset(write(tmp_path, json.dumps(line) + "\n"))
    assert ds.inputs == ["hi"] and ds.outputs == ["greeting"] and ds.instruction == "Classify."


def test_bom_and_crlf_are_accepted(tmp_path):
    ds = load_dataset(
        write(tmp_path, b'\xef\xbb\xbf{"input": "a", "output": "x"}\r\n{"input": "b", "output": "y"}\r\n')
    )
    assert ds.outputs == ["x", "y"]


def test_every_broken_line_is_reported_with_its_number(tmp_path):
    content = (
        '{"input": "a", "output": "x"}\n{"input": "b", "output": "y",}\n[1, 2]\n{"input": '
        '"c"}\n{"input": 3, "output": "z"}\n{"input": "d", "output": "  "}\n'
    )
    found = {(p.code, p.line, p.field) for p in problems(write(tmp_path, content))}
    assert found == {
        ("invalid_json", 2, None),
        ("not_an_object", 3, None),
        ("missing_field", 4, "output"),
        ("wrong_type", 5, "input"),
        ("empty_field", 6, "output"),
    }


def test_invalid_utf8_names_the_line(tmp_path):
    (p,) = problems(write(tmp_path, b'{"input": "a", "output": "x"}\n{"input": "\xff", "output": "y"}\n'))
    assert (p.code, p.line) == ("invalid_utf8", 2)


def test_json_array_file_gets_a_hint(tmp_path):
    (p,) = problems(write(tmp_path, '[{"input": "a", "output": "x"}]'))
    assert p.code == "json_array" and "one JSON object per line" in p.message


def test_empty_file_and_missing_file(tmp_path):
    assert problems(write(tmp_path, ""))[0].code == "too_few_examples"
    assert problems(tmp_path / "nope.jsonl")[0].code == "file_not_found"


@pytest.mark.parametrize(
    "messages, code, field",
    [
        ([{"role": "human", "content": "hi"}, {"role": "gpt", "content": "x"}], "unknown_role", "messages[0].role"),
        (
            [{"role": "user", "content": ["a"]}, {"role": "assistant", "content": "x"}],
            "wrong_type",
            "messages[0].content",
        ),
        (
            [{"role": "user", "content": "hi"}, {"role": "assistant", "content": None}],
            "wrong_type",
            "messages[1].content",
        ),
        ([{"role": "user", "content": "hi"}], "ends_on_user", "messages[0]"),
        ([{"role": "assistant", "content": "hi"}], "no_assistant", "messages"),
        (
            [{"role": "user", "content": "hi"}, {"role": "assistant", "content": " "}],
            "empty_field",
            "messages[1].content",
        ),
        ("not a list", "wrong_type", "messages"),
    ],
)
def test_chat_problems(tmp_path, messages, code, field):
    found = problems(write(tmp_path, json.dumps({"messages": messages}) + "\n"))
    assert (found[0].code, found[0].line, found[0].field) == (code, 1, field)


@pytest.mark.parametrize("role", [["user"], {"name": "user"}])
def test_a_list_or_object_role_is_a_wrong_type(tmp_path, role):
    found = problems(
        write(
            tmp_path,
            json.dumps({"messages": [{"role": role, "content": "hi"}, {"role": "assistant", "content": "x"}]}) + "\n",
        )
    )
    assert [(p.code, p.line, p.field) for p in found] == [("wrong_type", 1, "messages[0].role")]


def test_a_list_role_in_parquet_is_a_wrong_type(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(
        pa.table({"messages": [[{"role": ["user"], "content": "hi"}, {"role": ["assistant"], "content": "x"}]]}),
        tmp_path / "d.parquet",
    )
    found = problems(tmp_path / "d.parquet")
    assert [(p.code, p.line, p.field) for p in found] == [
        ("wrong_type", 1, "messages[0].role"),
        ("wrong_type", 1, "messages[1].role"),
    ]


def test_json_nested_too_deeply_names_the_line(tmp_path):
    deep = "[" * 100_000 + "]" * 100_000
    found = problems(write(tmp_path, '{"input": "a", "output": "x"}\n{"input": ' + deep + ', "output": "y"}\n'))
    assert [(p.code, p.line) for p in found] == [("too_deeply_nested", 2)]


def test_an_integer_over_the_digit_limit_names_the_line(tmp_path):
    (p,) = problems(write(tmp_path, '{"input": ' + "9" * 5_000 + ', "output": "x"}\n'))
    assert (
        (p.code, p.line) == ("number_too_long", 1)
        and "4300 digits" in p.message
        and "set_int_max_str_digits" not in str(p)
    )


@pytest.mark.parametrize(
    "line, field",
    [
        ('{"input": "a\\ud800b", "output": "x"}', "input"),
        ('{"prompt": "a", "completion": "\\udfff"}', "completion"),
        (
            '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "x\\udc80"}]}',
            "messages[1].content",
        ),
        (
            '{"messages": [{"role": "system", "content": "\\ud800"}, {"role": "user", "content": '
            '"hi"}, {"role": "assistant", "content": "x"}]}',
            "messages[0].content",
        ),
    ],
)
def test_a_lone_surrogate_names_line_and_field(tmp_path, line, field):
    (p,) = problems(write(tmp_path, line + "\n"))
    assert (p.code, p.line, p.field) == ("invalid_unicode", 1, field) and "lone surrogate" in p.message


def test_a_surrogate_pair_is_text_and_a_lone_surrogate_key_can_be_printed(tmp_path):
    assert load_dataset(write(tmp_path, '{"input": "\\ud83d\\ude00", "output": "x"}\n')).inputs == ["\U0001f600"]
    (p,) = problems(write(tmp_path, '{"\\ud800": "a"}\n'))
    assert p.code == "unknown_format" and "\\ud800" in str(p).encode("utf-8").decode()


def test_unknown_role_hint_maps_sharegpt_names(tmp_path):
    found = problems(
        write(
            tmp_path,
            json.dumps({"messages": [{"role": "human", "content": "hi"}, {"role": "assistant", "content": "x"}]})
            + "\n",
        )
    )
    assert "'user'" in found[0].hint


def test_mixed_formats_in_one_file(tmp_path):
    chat = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "x"}]}
    found = problems(write(tmp_path, '{"input": "a", "output": "x"}\n' + json.dumps(chat) + "\n"))
    assert (found[0].code, found[0].line) == ("mixed_formats", 2)


def test_problems_are_capped_at_100(tmp_path):
    with pytest.raises(DataError) as info:
        load_dataset(write(tmp_path, "{bad\n" * 250))
    assert len(info.value.problems) == 100 and info.value.truncated


def test_duplicates_are_a_warning_not_an_error(tmp_path):
    ds = load_dataset(write(tmp_path, '{"input": "a", "output": "x"}\n{"input": "a", "output": "x"}\n'))
    assert len(ds) == 2 and "line 2: duplicate of line 1" in ds.warnings[0]


def test_content_hash_ignores_format(tmp_path):
    a = load_dataset(write(tmp_path, '{"input": "a", "output": "x"}\n', "a.jsonl"))
    b = load_dataset(write(tmp_path, '{"prompt": "a", "completion": "x"}\r\n', "b.jsonl"))
    assert a.content_hash == b.content_hash


# JSON values that once escaped as raw Python errors: nesting past the parser's recursion
# limit, ints over Python's 4,300-digit limit, lone surrogates, list/object roles, markup.
ODD_JSON = st.one_of(
    st.integers(1_000, 20_000).map(lambda n: "[" * n + "]" * n),
    st.integers(4_301, 6_000).map(lambda n: "9" * n),
    st.sampled_from(
        [
            '"\\ud800"',
            '"a\\udfffb"',
            '"\\ud83d\\ude00"',
            '"[/x]"',
            '"[bold]x"',
            '["user"]',
            '{"role": "user"}',
            "null",
            '"user"',
            '"assistant"',
            '"ok"',
        ]
    ),
)
ODD_LINES = st.one_of(
    st.tuples(st.sampled_from(["input", "prompt", "completion", "[/x]", "\\udc00"]), ODD_JSON, ODD_JSON).map(
        lambda t: f'{{"{t[0]}": {t[1]}, "output": {t[2]}}}'
    ),
    st.tuples(ODD_JSON, ODD_JSON, ODD_JSON).map(
        lambda t: f'{{"messages": [{{"role": {t[0]}, "content": {t[1]}}}, {{"role": "assistant", "content": {t[2]}}}]}}'
    ),
)


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=300),
        st.lists(
            st.recursive(
                st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                lambda c: (
                    st.lists(c, max_size=3)
                    | st.dictionaries(
                        st.sampled_from(["input", "output", "messages", "role", "content", "prompt"]), c, max_size=4
                    )
                ),
                max_leaves=8,
            ),
            max_size=4,
        ).map(lambda rows: "\n".join(json.dumps(r) for r in rows).encode()),
        st.lists(ODD_LINES | st.just('{"input": "a", "output": "b"}'), min_size=1, max_size=4).map(
            lambda lines: "\n".join(lines).encode()
        ),
    )
)
def test_any_bytes_give_a_dataset_or_a_data_error(tmp_path_factory, content):
    path = tmp_path_factory.mktemp("fuzz") / "data.jsonl"
    path.write_bytes(content)
    try:
        ds = load_dataset(path)
    except DataError as exc:
        assert exc.problems and all(p.code and p.file for p in exc.problems)
        str(exc).encode("utf-8")  # the message can be printed and written as JSON
    else:
        _ = ds.content_hash  # every example is valid text (hashing encodes it as UTF-8)


def test_csv_with_a_column_mapping(tmp_path):
    path = write(
        tmp_path,
        'text,label,id\r\n"my card, the new one, never '
        'came",card_arrival,1\r\n"two\nlines",lost,2\r\n\r\nATM ate it,swallowed,3\r\n',
        "data.csv",
    )
    ds = load_dataset(path, input_col="text", output_col="label")
    assert [(e.input, e.output, e.line) for e in ds] == [
        ("my card, the new one, never came", "card_arrival", 2),
        ("two\nlines", "lost", 3),
        ("ATM ate it", "swallowed", 6),
    ]


def test_csv_missing_column_and_bad_rows(tmp_path):
    found = problems(write(tmp_path, "text,label\na,b\n", "data.csv"))
    assert [(p.code, p.field) for p in found] == [("missing_column", "input"), ("missing_column", "output")]
    assert "found: text, label" in found[0].message
    found = {(p.code, p.line, p.field) for p in problems(write(tmp_path, "input,output\na,b\nc\nd,\n", "data.csv"))}
    assert found == {("wrong_field_count", 3, None), ("empty_field", 4, "output")}


def test_file_over_the_size_limit(tmp_path, monkeypatch):
    import adaptlab.data.load as load

    monkeypatch.setattr(load, "MAX_FILE_BYTES", 10)
    (p,) = problems(write(tmp_path, '{"input": "a", "output": "x"}\n'))
    assert p.code == "file_too_large"


def test_test_rows_also_in_train_are_an_error_unless_allowed(tmp_path):
    from adaptlab.data import check_leakage

    train = load_dataset(
        write(tmp_path, '{"input": "My card  is lost", "output": "x"}\n{"input": "b", "output": "y"}\n', "train.jsonl")
    )
    test = load_dataset(
        write(tmp_path, '{"input": "c", "output": "x"}\n{"input": "my card is LOST", "output": "x"}\n', "test.jsonl")
    )
    with pytest.raises(DataError) as info:
        check_leakage(train, test)
    (p,) = info.value.problems
    assert (p.code, p.line, p.field) == ("leakage", 2, "input") and "train.jsonl line 1" in p.message
    assert "line 2" in check_leakage(train, test, allow=True)[0]


def test_parquet_and_datasets_folders(tmp_path):
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(
        pa.table({"text": ["my card never came", "ATM ate it"], "label": ["card_arrival", "card_swallowed"]}),
        tmp_path / "d.parquet",
    )
    ds = load_dataset(tmp_path / "d.parquet", input_col="text", output_col="label")
    assert [(e.input, e.output, e.line) for e in ds] == [
        ("my card never came", "card_arrival", 1),
        ("ATM ate it", "card_swallowed", 2),
    ]
    datasets.Dataset.from_dict({"input": ["a", "b", "c"], "output": ["x", " ", "y"]}).save_to_disk(str(tmp_path / "hf"))
    (p,) = problems(tmp_path / "hf")
    assert (p.code, p.line, p.field) == ("empty_field", 2, "output")
    datasets.DatasetDict({"train": datasets.Dataset.from_dict({"input": ["a"], "output": ["x"]})}).save_to_disk(
        str(tmp_path / "dd")
    )
    (p,) = problems(tmp_path / "dd")
    assert p.code == "dataset_dict" and "dd/train" in p.hint
    assert problems(tmp_path / "d.parquet")[0].code == "unknown_format"  # no input/output columns and no mapping given


def test_fewer_examples_than_the_minimum(tmp_path):
    with pytest.raises(DataError) as info:
        load_dataset(write(tmp_path, '{"input": "a", "output": "x"}\n'), min_examples=2)
    (p,) = info.value.problems
    assert p.code == "too_few_examples" and "fewer than the minimum of 2" in p.message


def test_jsonl_and_parquet_fields_named_by_input_col_and_output_col(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    lines = (
        '{"id": 1, "text": "my card never came", "label": "card_arrival"}\n{"id": 2, "text": "ATM ate '
        'it", "label": "card_swallowed", "sources": ["faq.md"]}\n'
    )
    ds = load_dataset(write(tmp_path, lines), input_col="text", output_col="label")
    assert [(e.input, e.output, e.line, e.sources) for e in ds] == [
        ("my card never came", "card_arrival", 1, ()),
        ("ATM ate it", "card_swallowed", 2, ("faq.md",)),
    ]
    assert (
        problems(write(tmp_path, lines, "plain.jsonl"))[0].code == "unknown_format"
    )  # without the mapping: no input/output fields
    with pytest.raises(DataError) as info:  # problems name the file's own fields
        load_dataset(
            write(
                tmp_path,
                '{"text": "a", "label": "x"}\n{"text": "b"}\n{"text": "c", "label": ""}\n{"input": '
                '"d", "output": "y"}\n',
                "bad.jsonl",
            ),
            input_col="text",
            output_col="label",
        )
    found = [(p.code, p.line, p.field) for p in info.value.problems]
    assert found == [
        ("missing_field", 2, "label"),
        ("empty_field", 3, "label"),
        ("missing_field", 4, "text"),
        ("missing_field", 4, "label"),
    ]
    assert "data.input_col and data.output_col" in info.value.problems[0].hint
    nulls = load_dataset(
        write(tmp_path, '{"q": "Who won?", "a": null}\n', "qa.jsonl"),
        input_col="q",
        output_col="a",
        abstain="I don't know",
    )
    assert nulls.outputs == ["I don't know"]
    pq.write_table(pa.table({"text": ["a", "b"], "label": ["x", None]}), tmp_path / "d.parquet")
    with pytest.raises(DataError) as info:
        load_dataset(tmp_path / "d.parquet", input_col="text", output_col="label")
    assert [(p.code, p.line, p.field) for p in info.value.problems] == [("wrong_type", 2, "label")]


def test_experiment_columns_reach_jsonl_files(tmp_path):
    from adaptlab.runs.experiment import parse_experiment
    from adaptlab.runs.prepare import prepare

    rows = [{"text": f"card {i} never came", "label": "card_arrival"} for i in range(3)] + [
        {"text": f"ATM {i} ate it", "label": "card_swallowed"} for i in range(3)
    ]
    write(tmp_path, "".join(json.dumps(r) + "\n" for r in rows[1:5]), "train.jsonl")
    write(tmp_path, "".join(json.dumps(r) + "\n" for r in (rows[0], rows[5])), "test.jsonl")
    config = parse_experiment(
        {
            "task": {"name": "cards", "instruction": "Route it."},
            "data": {"train": "train.jsonl", "test": "test.jsonl", "input_col": "text", "output_col": "label"},
            "strategies": [{"name": "zero_shot"}],
        }
    )
    prepared = prepare(config, tmp_path)
    assert prepared.task.labels == ("card_arrival", "card_swallowed") and prepared.test.inputs == [
        "card 0 never came",
        "ATM 2 ate it",
    ]
