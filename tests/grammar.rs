//! Every example under `grammar/examples/` parses, to the statement its file is named after,
//! and reads back the same through `Display`.

use std::path::Path;

use sluice::parser::{KsqlParser, Statement};

fn production(statement: &Statement) -> &'static str {
    match statement {
        Statement::CreateSource(_) => "create_source",
        Statement::CreateAsSelect(_) => "create_as_select",
        Statement::InsertSelect(_) => "insert_select",
        Statement::InsertValues(_) => "insert_values",
        Statement::Select(_) => "select",
        Statement::Show(_) => "show",
        Statement::Describe(_) => "describe",
        Statement::DropSource(_) => "drop_source",
        Statement::QueryControl(_) => "query_control",
        Statement::Explain(_) => "explain",
        Statement::Print(_) => "print",
        Statement::Set(_) => "set",
        Statement::Unset(_) => "unset",
        Statement::Define(_) => "define",
        Statement::Undefine(_) => "undefine",
        Statement::CreateConnector(_) => "create_connector",
        Statement::DropConnector(_) => "drop_connector",
        Statement::DescribeConnector(_) => "describe_connector",
        Statement::CreateType(_) => "create_type",
        Statement::DropType(_) => "drop_type",
        Statement::AlterSource(_) => "alter_source",
    }
}

#[test]
fn every_grammar_example_parses_to_its_production_and_round_trips() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("grammar/examples");
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let sql = std::fs::read_to_string(&path).unwrap();
        let statements = KsqlParser::parse(&sql).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(!statements.is_empty(), "{} has no statement", path.display());
        for parsed in statements {
            assert_eq!(production(&parsed.statement), name, "{}: {}", path.display(), parsed.text);
            let printed = parsed.statement.to_string();
            let reparsed = KsqlParser::parse_one(&printed)
                .unwrap_or_else(|e| panic!("{printed} does not parse back: {e}"));
            assert_eq!(reparsed.statement, parsed.statement, "{printed}");
        }
        files += 1;
    }
    let ebnf = std::fs::read_to_string(dir.parent().unwrap().join("ksql.ebnf")).unwrap();
    for statement in ["create_source", "create_as_select", "insert_select", "insert_values", "select", "show", "describe", "drop_source", "query_control", "explain", "print", "set", "unset", "define", "undefine", "create_connector", "drop_connector", "describe_connector", "create_type", "drop_type", "alter_source"] {
        assert!(ebnf.contains(&format!("\n{statement} ")), "ksql.ebnf lacks {statement}");
    }
    assert_eq!(files, 21, "one example file per production");
}

#[test]
fn parse_errors_name_line_column_what_was_found_and_expected() {
    let err = KsqlParser::parse("SHOW STREAMS;\nCREATE STREAM S (A STRING) WITH (KAFKA_TOPIC 't');").unwrap_err();
    assert_eq!(
        err.to_string(),
        "line 2:46: Syntax Error: expected '=' after the property KAFKA_TOPIC, but found ''t''"
    );
    let err = KsqlParser::parse("SELECT * FROM S WHERE EMIT CHANGES;").unwrap_err();
    assert!(err.to_string().starts_with("line 1:") && err.to_string().contains(": Syntax Error: "), "{err}");
    let err = KsqlParser::parse("FROB S;").unwrap_err();
    assert!(err.to_string().contains("expected a statement such as CREATE"), "{err}");
    for statement in ["ALTER SYSTEM 'ksql.streams.num.stream.threads'='4';"] {
        let err = KsqlParser::parse(statement).unwrap_err();
        assert!(err.to_string().starts_with("Not supported yet: "), "{statement}: {err}");
    }
}

#[test]
fn a_key_column_says_key_in_a_stream_and_primary_key_in_a_table() {
    let err = KsqlParser::parse("CREATE TABLE T (ID STRING KEY, V INT) WITH (KAFKA_TOPIC='t', VALUE_FORMAT='JSON');").unwrap_err();
    assert!(
        err.to_string().contains("Line: 1, Col: 17: Column `ID` is a 'KEY' column: please use 'PRIMARY KEY' for tables."),
        "{err}"
    );
    let err = KsqlParser::parse("CREATE STREAM S (ID STRING PRIMARY KEY) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON');").unwrap_err();
    assert!(err.to_string().contains("Column `ID` is a 'PRIMARY KEY' column: please use 'KEY' for streams."), "{err}");
}

#[test]
fn statements_split_from_a_script_keep_their_place_in_it() {
    let script = "SHOW STREAMS;\n-- a comment; with a semicolon\nDEFINE t = 'x;y';\n  SELECT * FROM S\n  WHERE;";
    let pieces = KsqlParser::split(script).unwrap();
    let texts: Vec<&str> = pieces.iter().map(|p| p.text.as_str()).collect();
    assert_eq!(texts, vec!["SHOW STREAMS;", "DEFINE t = 'x;y';", "SELECT * FROM S\n  WHERE;"]);
    let err = KsqlParser::parse_split(&pieces[2].text, pieces[2].location, &Default::default()).unwrap_err();
    assert!(err.to_string().starts_with("line 5:") && err.to_string().contains(": Syntax Error: "), "{err}");
}

#[test]
fn unquoted_identifiers_are_upper_cased_and_quoted_ones_kept() {
    let parsed = KsqlParser::parse_one("CREATE STREAM sensors (`Mixed` STRING, plain INT) WITH (KAFKA_TOPIC='t', VALUE_FORMAT='JSON');").unwrap();
    let Statement::CreateSource(create) = parsed.statement else { panic!() };
    assert_eq!(create.name, "SENSORS");
    assert_eq!(create.columns[0].name, "Mixed");
    assert_eq!(create.columns[1].name, "PLAIN");
}

#[test]
fn a_column_type_may_name_a_type_created_before_it() {
    let script = "CREATE TYPE ADDRESS AS STRUCT<NUMBER INTEGER, CITY VARCHAR>;\n\
                  CREATE STREAM S (K STRING KEY, HOME ADDRESS, PAST ARRAY<ADDRESS>) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON');\n\
                  DROP TYPE ADDRESS;\n\
                  CREATE TYPE IF NOT EXISTS ADDRESS AS INTEGER;";
    let parsed = KsqlParser::parse(script).unwrap();
    let Statement::CreateSource(create) = &parsed[1].statement else { panic!() };
    assert_eq!(create.columns[1].data_type.to_string(), "STRUCT<`NUMBER` INTEGER, `CITY` STRING>");
    assert_eq!(create.columns[2].data_type.to_string(), "ARRAY<STRUCT<`NUMBER` INTEGER, `CITY` STRING>>");

    let err = KsqlParser::parse("CREATE TYPE A AS INTEGER; DROP TYPE A; CREATE STREAM S (V A) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON');")
        .unwrap_err();
    assert_eq!(err.to_string(), "Cannot resolve unknown type: A");
    let err = KsqlParser::parse("CREATE STREAM S (V KEY) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON');").unwrap_err();
    assert!(err.to_string().starts_with("line 1:20: Syntax Error: expected a column type"), "{err}");

    let types = sluice::catalog::CustomTypes::from([("MONEY".to_string(), sluice::catalog::SqlType::Decimal { precision: 10, scale: 2 })]);
    let parsed = KsqlParser::parse_one_with_types("SELECT CAST(V AS money) AS M FROM S EMIT CHANGES;", &types).unwrap();
    let Statement::Select(select) = &parsed.statement else { panic!() };
    assert!(select.query.to_string().contains("CAST(V AS DECIMAL(10,2))"), "{}", select.query);
}
