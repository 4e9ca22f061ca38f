//! Fuzz target for the HTTP API's request bodies: every body `/ksql`, `/query`,
//! `/query-stream`, `/close-query` and `/connectors` read is decoded the way the handlers
//! decode it, and any bytes get an answer (a request or an error), never a panic or a hang.

use proptest::{collection::vec, prelude::*};
use serde_json::Value;

use super::{
    connect::{CreateRequest, config_map},
    ksql::{KsqlRequest, property_text},
    query::{CloseQuery, LegacyQueryRequest, QueryStreamArgs},
};
use crate::{
    fuzzing::{config, within_bounds},
    parser::variables::substitute,
    properties,
};

/// A body: arbitrary bytes, or a request of the right shape with fields of any JSON type.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        Just(Value::String("SELECT * FROM S EMIT CHANGES; ${v}".into())),
    ];
    let value = leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            vec(("[a-zA-Z.]{0,12}", inner), 0..4).prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    });
    let field = proptest::sample::select(vec![
        "ksql", "sql", "streamsProperties", "properties", "sessionVariables", "queryId", "name", "config",
        "auto.offset.reset", "ksql.streams.auto.offset.reset",
    ]);
    prop_oneof![
        vec(any::<u8>(), 0..128),
        vec((field, value), 0..5).prop_map(|fields| {
            let object: serde_json::Map<String, Value> = fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
            serde_json::to_vec(&object).unwrap_or_default()
        }),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn request_bodies_are_answered(body in body()) {
        within_bounds("request body", || {
            if let Ok(request) = serde_json::from_slice::<KsqlRequest>(&body) {
                let _ = properties::normalize(&property_text(&request.streams_properties));
                let _ = substitute(&request.ksql, &property_text(&request.session_variables));
            }
            if let Ok(request) = serde_json::from_slice::<LegacyQueryRequest>(&body) {
                let _ = properties::normalize(&property_text(&request.streams_properties));
                let _ = substitute(&request.ksql, &property_text(&request.session_variables));
            }
            if let Ok(request) = serde_json::from_slice::<QueryStreamArgs>(&body) {
                let _ = properties::normalize(&property_text(&request.properties));
                let _ = substitute(&request.sql, &property_text(&request.session_variables));
            }
            let _ = serde_json::from_slice::<CloseQuery>(&body);
            if let Ok(CreateRequest { config: Some(config), .. }) = serde_json::from_slice::<CreateRequest>(&body) {
                let _ = config_map(&config);
            }
            if let Ok(config) = serde_json::from_slice::<serde_json::Map<String, Value>>(&body) {
                let _ = config_map(&config);
            }
        })?;
    }
}
