//! ksqlDB's AS_VALUE: a key column's value copied into the result's value columns.
//!
//! It returns its argument unchanged; what it changes is the planner's reading of the output
//! column, which is then no longer the key column it reads.

use std::sync::LazyLock;

use arrow::datatypes::DataType;
use datafusion::{
    common::{Result, plan_err},
    logical_expr::{ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility},
};

#[derive(Debug, PartialEq, Eq, Hash)]
struct AsValue {
    signature: Signature,
}

static DOCUMENTATION: LazyLock<Documentation> = LazyLock::new(|| {
    super::documented(
        "Other Functions",
        "The value of a key column, as a value column of the result (a key column may also stay the key).",
        "as_value(column)",
        &[("column", "A column, usually a key column.")],
    )
});

pub fn function() -> ScalarUDF {
    ScalarUDF::new_from_impl(AsValue { signature: Signature::any(1, Volatility::Immutable) })
}

impl ScalarUDFImpl for AsValue {
    fn name(&self) -> &str {
        "as_value"
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOCUMENTATION)
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [one] => Ok(one.clone()),
            _ => plan_err!("AS_VALUE takes one argument"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        match <[ColumnarValue; 1]>::try_from(args.args) {
            Ok([value]) => Ok(value),
            Err(_) => plan_err!("AS_VALUE takes one argument"),
        }
    }
}
