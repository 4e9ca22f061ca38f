//! A scalar function defined by what it does to one row's arguments: the shape most of
//! ksqlDB's functions have, for the functions DataFusion lacks.
//!
//! A row whose argument is NULL gives NULL without a call (ksqlDB's functions return NULL
//! for NULL input) unless the function takes NULLs itself; a call that fails gives NULL and a
//! processing error on its row, as ksqlDB logs one and goes on.

use std::{
    hash::{Hash, Hasher},
    sync::Arc,
};

use arrow::{array::new_null_array, datatypes::DataType};
use datafusion::{
    common::{Result, ScalarValue},
    logical_expr::{ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility},
};

use super::{documented, report_row_error};

/// What a function does to one row: its value, or why the row has none.
pub type RowEval = fn(&[ScalarValue]) -> std::result::Result<ScalarValue, String>;
/// The function's result type for its argument types, or why it cannot take them.
pub type ReturnType = fn(&[DataType]) -> Result<DataType>;

#[derive(Debug)]
pub struct RowFunction {
    name: &'static str,
    signature: Signature,
    return_type: ReturnType,
    eval: RowEval,
    /// Called with NULL arguments too, instead of giving NULL for them.
    takes_nulls: bool,
    documentation: Documentation,
}

/// The text a function documents itself with: its section, what it returns, how it is called,
/// and each argument.
pub struct Doc {
    pub section: &'static str,
    pub description: &'static str,
    pub syntax: &'static str,
    pub arguments: &'static [(&'static str, &'static str)],
}

impl RowFunction {
    pub fn new(name: &'static str, signature: Signature, return_type: ReturnType, eval: RowEval, doc: Doc) -> Self {
        Self {
            name,
            signature,
            return_type,
            eval,
            takes_nulls: false,
            documentation: documented(doc.section, doc.description, doc.syntax, doc.arguments),
        }
    }

    /// The function is called with NULL arguments too.
    pub fn taking_nulls(mut self) -> Self {
        self.takes_nulls = true;
        self
    }

    pub fn udf(self) -> ScalarUDF {
        ScalarUDF::new_from_impl(self)
    }
}

impl PartialEq for RowFunction {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.signature == other.signature
    }
}

impl Eq for RowFunction {}

impl Hash for RowFunction {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        self.signature.hash(state);
    }
}

impl ScalarUDFImpl for RowFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&self.documentation)
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        (self.return_type)(arg_types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let data_type = args.return_field.data_type().clone();
        let rows = args.number_rows;
        let mut values = Vec::with_capacity(rows);
        let mut row_args = Vec::with_capacity(args.args.len());
        for row in 0..rows {
            row_args.clear();
            for arg in &args.args {
                row_args.push(match arg {
                    ColumnarValue::Scalar(value) => value.clone(),
                    ColumnarValue::Array(array) => ScalarValue::try_from_array(array, row)?,
                });
            }
            if !self.takes_nulls && row_args.iter().any(ScalarValue::is_null) {
                values.push(ScalarValue::try_from(&data_type)?);
                continue;
            }
            match (self.eval)(&row_args) {
                Ok(value) if value.data_type() == data_type || value.is_null() => {
                    values.push(if value.is_null() { ScalarValue::try_from(&data_type)? } else { value })
                }
                Ok(value) => values.push(value.cast_to(&data_type)?),
                Err(reason) => {
                    report_row_error(row, || format!("Failed to invoke function {}: {reason}", self.name.to_uppercase()));
                    values.push(ScalarValue::try_from(&data_type)?);
                }
            }
        }
        if values.is_empty() {
            return Ok(ColumnarValue::Array(new_null_array(&data_type, 0)));
        }
        ColumnarValue::Array(Arc::new(ScalarValue::iter_to_array(values)?)).cast_to(&data_type, None)
    }
}

/// The string in `value`, if it holds one.
/// ksqlDB's refusal of a call whose argument types no variant of `function` takes.
pub fn refuse_parameters<T>(function: &str, types: &[DataType]) -> Result<T> {
    let names: Vec<String> = types.iter().map(crate::catalog::SqlType::name_of).collect();
    datafusion::common::plan_err!("Function '{function}' does not accept parameters ({}).", names.join(", "))
}

pub fn text(value: &ScalarValue) -> Option<&str> {
    match value {
        ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => Some(s),
        _ => None,
    }
}

/// The integer in `value`, if it holds one.
pub fn integer(value: &ScalarValue) -> Option<i64> {
    match value {
        ScalarValue::Int8(Some(v)) => Some(*v as i64),
        ScalarValue::Int16(Some(v)) => Some(*v as i64),
        ScalarValue::Int32(Some(v)) => Some(*v as i64),
        ScalarValue::Int64(Some(v)) => Some(*v),
        ScalarValue::UInt8(Some(v)) => Some(*v as i64),
        ScalarValue::UInt16(Some(v)) => Some(*v as i64),
        ScalarValue::UInt32(Some(v)) => Some(*v as i64),
        ScalarValue::UInt64(Some(v)) => i64::try_from(*v).ok(),
        _ => None,
    }
}

/// A signature taking exactly one of `each` list of argument types.
pub fn one_of(each: Vec<Vec<DataType>>, volatility: Volatility) -> Signature {
    Signature::one_of(each.into_iter().map(datafusion::logical_expr::TypeSignature::Exact).collect(), volatility)
}
