//! Functions of ksqlDB's dialect, as DataFusion UDFs and UDAFs, and the processing-error channel
//! through which a function reports a row it could not evaluate.
//!
//! ksqlDB does not fail a query when a function throws on one record: it logs a processing error
//! and uses a default (NULL in a projection, false in `WHERE`). A function here returns NULL for
//! that row and reports it with [`report_row_error`]; the runtime collects the reports around each
//! evaluation with [`collect_row_errors`] and counts them on the query.

pub mod arrays;
pub mod attr;
pub mod as_value;
pub mod by_offset;
pub mod bytes;
pub mod collect;
pub mod correlation;
pub mod datetime;
pub mod deviation;
pub mod encoding;
pub mod histogram;
pub mod json;
pub mod json_documents;
pub mod json_path;
pub mod lambdas;
pub mod listing;
pub mod maps;
pub mod math;
pub mod row_function;
pub mod series;
pub mod string_plus;
pub mod strings;
pub mod sum;
pub mod sum_list;
pub mod url;

use std::{cell::RefCell, sync::Arc};

use datafusion::{
    execution::FunctionRegistry,
    logical_expr::{AggregateUDF, DocSection, Documentation, ScalarUDF},
    prelude::SessionContext,
};

use crate::error::Result;

thread_local! {
    static ROW_ERRORS: RefCell<Option<Vec<(usize, String)>>> = const { RefCell::new(None) };
}

/// Runs `f`, returning what it returned and the row errors functions reported meanwhile.
pub fn collect_row_errors<T>(f: impl FnOnce() -> T) -> (T, Vec<(usize, String)>) {
    let outer = ROW_ERRORS.with(|e| e.borrow_mut().replace(Vec::new()));
    let value = f();
    let errors = ROW_ERRORS.with(|e| std::mem::replace(&mut *e.borrow_mut(), outer));
    (value, errors.unwrap_or_default())
}

/// Reports that row `row` of the batch being evaluated failed; a no-op outside a collection.
pub fn report_row_error(row: usize, message: impl FnOnce() -> String) {
    ROW_ERRORS.with(|e| {
        if let Some(errors) = e.borrow_mut().as_mut() {
            errors.push((row, message()));
        }
    });
}

/// Registers ksqlDB's functions, and ksqlDB's names for DataFusion's own, in a session.
pub fn register_all(ctx: &mut SessionContext, limits: collect::CollectLimits) -> Result<()> {
    ctx.register_expr_planner(Arc::new(string_plus::StringPlus))?;
    let ctx: &SessionContext = ctx;
    for udf in scalar_functions() {
        ctx.register_udf(udf);
    }
    for function in lambdas::functions() {
        ctx.register_higher_order_function(Arc::new(function));
    }
    for udaf in aggregate_functions(limits) {
        ctx.register_udaf(udaf);
    }
    // ksqlDB's COUNT_DISTINCT is a HyperLogLog of 2^14 registers, as DataFusion's.
    let approx_distinct = ctx.udaf("approx_distinct")?;
    ctx.register_udaf(approx_distinct.as_ref().clone().with_aliases(["count_distinct"]));
    // IFNULL is COALESCE of two: DataFusion's own IFNULL (NVL) takes only primitive types and
    // turns an ARRAY into its text.
    let aliases: [(&str, &[&str]); 4] = [
        ("upper", &["ucase"]),
        ("lower", &["lcase"]),
        ("character_length", &["len"]),
        ("coalesce", &["ifnull"]),
    ];
    for (name, extra) in aliases {
        let existing: Arc<ScalarUDF> = ctx.udf(name)?;
        ctx.register_udf(existing.as_ref().clone().with_aliases(extra.iter().copied()));
    }
    Ok(())
}

/// Sluice's own scalar functions: ksqlDB's that DataFusion lacks, or has with other behaviour.
pub fn scalar_functions() -> Vec<ScalarUDF> {
    json::functions()
        .into_iter()
        .chain(json_documents::functions())
        .chain(datetime::functions())
        .chain(url::functions())
        .chain(strings::functions())
        .chain(maps::functions())
        .chain(arrays::functions())
        .chain(math::functions())
        .chain(bytes::functions())
        .chain([as_value::function(), encoding::function(), series::function()])
        .collect()
}

/// Sluice's own aggregate functions, `COLLECT_LIST` and `COLLECT_SET` keeping up to `limits`.
pub fn aggregate_functions(limits: collect::CollectLimits) -> Vec<AggregateUDF> {
    by_offset::functions()
        .into_iter()
        .chain(collect::functions(limits))
        .chain(deviation::functions())
        .chain([histogram::function(), correlation::function(), sum_list::function(), attr::function(), sum::function()])
        .collect()
}

/// The documentation of one of Sluice's own functions, in DataFusion's form, so that
/// `DESCRIBE FUNCTION` reads Sluice's functions and DataFusion's alike.
fn documented(section: &'static str, description: &str, syntax: &str, arguments: &[(&str, &str)]) -> Documentation {
    let mut builder = Documentation::builder(DocSection { include: true, label: section, description: None }, description, syntax);
    for (name, text) in arguments {
        builder = builder.with_argument(*name, *text);
    }
    builder.build()
}
