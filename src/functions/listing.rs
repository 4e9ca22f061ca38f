//! What `SHOW FUNCTIONS` and `DESCRIBE FUNCTION` show: every function a query can call, by
//! each name a query can call it by, with its category, documentation and signatures — read
//! from the same registry the planner plans with, so the list is what runs.

use arrow::datatypes::DataType;
use datafusion::{
    logical_expr::{Documentation, Signature, TypeSignature},
    prelude::SessionContext,
};

use crate::{catalog::types::SqlType, error::Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FunctionKind {
    Scalar,
    Aggregate,
    /// A function that makes zero or more rows of each input row (`EXPLODE`).
    Table,
}

impl FunctionKind {
    /// ksqlDB's `FunctionType` name.
    pub fn name(self) -> &'static str {
        match self {
            FunctionKind::Scalar => "SCALAR",
            FunctionKind::Aggregate => "AGGREGATE",
            FunctionKind::Table => "TABLE",
        }
    }
}

/// One way to call a function: its argument types and what it returns, where they are fixed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overload {
    /// Each argument's type, as DataFusion words a type class where the type is not fixed.
    pub argument_types: Vec<String>,
    /// The result's type, where the argument types are fixed.
    pub return_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionInfo {
    /// The name, upper-cased as ksqlDB lists it.
    pub name: String,
    pub kind: FunctionKind,
    /// ksqlDB's category name: MATHEMATICAL, STRING, JSON, DATE / TIME, AGGREGATE, …
    pub category: String,
    pub description: String,
    /// How it is called, from its documentation: `extractjsonfield(json, path)`.
    pub syntax: String,
    /// Each documented argument's name and description.
    pub arguments: Vec<(String, String)>,
    pub overloads: Vec<Overload>,
    /// Who wrote it: Sluice, or DataFusion (ksqlDB's `author`).
    pub author: &'static str,
}

/// Every callable function, by name.
pub fn all() -> Result<Vec<FunctionInfo>> {
    let mut ctx = SessionContext::new();
    super::register_all(&mut ctx, Default::default())?;
    let state = ctx.state();
    let own: Vec<String> = super::scalar_functions()
        .iter()
        .flat_map(|f| std::iter::once(f.name()).chain(f.aliases().iter().map(String::as_str)).map(str::to_string).collect::<Vec<_>>())
        .chain(super::aggregate_functions(Default::default()).iter().map(|f| f.name().to_string()))
        .collect();
    let mut functions: Vec<FunctionInfo> = state
        .scalar_functions()
        .iter()
        .map(|(name, udf)| {
            let returns = |types: &[DataType]| udf.return_type(types).ok();
            describe(name, FunctionKind::Scalar, udf.documentation(), udf.signature(), &returns)
        })
        .chain(state.aggregate_functions().iter().map(|(name, udaf)| {
            let returns = |types: &[DataType]| udaf.return_type(types).ok();
            describe(name, FunctionKind::Aggregate, udaf.documentation(), udaf.signature(), &returns)
        }))
        .map(|mut info: FunctionInfo| {
            if own.iter().any(|name| name.eq_ignore_ascii_case(&info.name)) {
                info.author = "Sluice";
            }
            info
        })
        .chain(state.higher_order_functions().iter().map(|(name, function)| higher_order(name, function.documentation())))
        .chain(table_functions())
        .collect();
    functions.sort_by(|a, b| a.name.cmp(&b.name));
    functions.dedup_by(|a, b| a.name == b.name);
    Ok(functions)
}

/// The function named `name`, ignoring case.
pub fn find(name: &str) -> Result<Option<FunctionInfo>> {
    Ok(all()?.into_iter().find(|f| f.name.eq_ignore_ascii_case(name)))
}

fn describe(
    name: &str,
    kind: FunctionKind,
    documentation: Option<&Documentation>,
    signature: &Signature,
    returns: &dyn Fn(&[DataType]) -> Option<DataType>,
) -> FunctionInfo {
    let category = match kind {
        FunctionKind::Aggregate => "AGGREGATE".to_string(),
        FunctionKind::Table => "TABLE".to_string(),
        FunctionKind::Scalar => documentation.map_or_else(|| "OTHER".to_string(), |d| category(d.doc_section.label)),
    };
    FunctionInfo {
        name: name.to_uppercase(),
        kind,
        category,
        description: documentation.map(|d| d.description.clone()).unwrap_or_default(),
        syntax: documentation.map(|d| d.syntax_example.clone()).unwrap_or_default(),
        arguments: documentation.and_then(|d| d.arguments.clone()).unwrap_or_default(),
        overloads: overloads(&signature.type_signature, returns),
        author: "Apache DataFusion",
    }
}

/// A function that takes lambdas, such as `TRANSFORM`: one overload per form its documented
/// syntax gives, `a(x, y => e) | a(m, i, (s, k) => e)`, each argument as written there.
fn higher_order(name: &str, documentation: Option<&Documentation>) -> FunctionInfo {
    let syntax = documentation.map(|d| d.syntax_example.clone()).unwrap_or_default();
    let overloads = syntax
        .split(" | ")
        .filter_map(|form| {
            let arguments = form.split_once('(')?.1.strip_suffix(')')?;
            let mut split = Vec::new();
            let (mut depth, mut start) = (0, 0);
            for (i, c) in arguments.char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    ',' if depth == 0 => {
                        split.push(arguments[start..i].trim().to_string());
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            split.push(arguments[start..].trim().to_string());
            Some(Overload { argument_types: split, return_type: None })
        })
        .collect();
    FunctionInfo {
        name: name.to_uppercase(),
        kind: FunctionKind::Scalar,
        category: documentation.map_or_else(|| "LAMBDA".to_string(), |d| category(d.doc_section.label)),
        description: documentation.map(|d| d.description.clone()).unwrap_or_default(),
        syntax,
        arguments: documentation.and_then(|d| d.arguments.clone()).unwrap_or_default(),
        overloads,
        author: if super::lambdas::functions().iter().any(|f| f.name() == name) { "Sluice" } else { "Apache DataFusion" },
    }
}

/// The table functions the planner reads out of a projection (not DataFusion functions), as
/// ksqlDB describes them.
fn table_functions() -> [FunctionInfo; 2] {
    let table = |name: &str, description: &str, syntax: &str, argument: (&str, &str), overloads: Vec<Overload>| FunctionInfo {
        name: name.to_string(),
        kind: FunctionKind::Table,
        category: "TABLE".to_string(),
        description: description.to_string(),
        syntax: syntax.to_string(),
        arguments: vec![(argument.0.to_string(), argument.1.to_string())],
        overloads,
        author: "Sluice",
    };
    let overload = |argument: &str, returns: &str| Overload {
        argument_types: vec![argument.to_string()],
        return_type: Some(returns.to_string()),
    };
    [
        table(
            "EXPLODE",
            "Explodes an array. This function outputs one value for each element of the array.",
            "explode(list)",
            ("list", "The array whose elements become rows; NULL or empty makes no row."),
            vec![overload("ARRAY<T>", "T"), overload("ARRAY<DECIMAL>", "DECIMAL")],
        ),
        table(
            "CUBE_EXPLODE",
            "Takes as argument a list of columns and outputs all possible combinations of them. \
             It produces 2^d new rows where d is the number of columns given as parameter. \
             Duplicate entries for columns with null value are skipped.",
            "cube_explode(columns)",
            ("columns", "The array whose elements are kept or NULL in each combination."),
            vec![overload("ARRAY<T>", "ARRAY<T>")],
        ),
    ]
}

/// ksqlDB's category for a DataFusion documentation section.
fn category(section: &str) -> String {
    let base = section.trim_end_matches(" Functions").trim_end_matches(" functions");
    match base {
        "Math" => "MATHEMATICAL".into(),
        "String" | "Binary String" => "STRING".into(),
        "Time and Date" => "DATE / TIME".into(),
        "General" | "Other" | "Union" => "OTHER".into(),
        other => other.to_uppercase(),
    }
}

fn overloads(signature: &TypeSignature, returns: &dyn Fn(&[DataType]) -> Option<DataType>) -> Vec<Overload> {
    match signature {
        TypeSignature::OneOf(variants) => variants.iter().flat_map(|v| overloads(v, returns)).collect(),
        TypeSignature::Exact(types) => vec![Overload {
            argument_types: types.iter().map(type_name).collect(),
            return_type: returns(types).as_ref().map(type_name),
        }],
        other => other
            .to_string_repr()
            .into_iter()
            .map(|arguments| Overload {
                argument_types: if arguments.is_empty() { Vec::new() } else { vec![arguments] },
                return_type: None,
            })
            .collect(),
    }
}

/// ksqlDB's name for a type, or Arrow's where ksqlDB has none.
fn type_name(data_type: &DataType) -> String {
    SqlType::from_arrow(data_type).map_or_else(|_| data_type.to_string(), |t| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_ksqldbs_names_datafusions_functions_and_sluices_own_with_their_documentation() {
        let names: Vec<String> = all().unwrap().into_iter().map(|f| f.name).collect();
        for expected in ["EXTRACTJSONFIELD", "UCASE", "UPPER", "LEN", "ABS", "COUNT", "LATEST_BY_OFFSET"] {
            assert!(names.iter().any(|n| n == expected), "{expected} missing");
        }
        let extract = find("extractJsonField").unwrap().unwrap();
        assert_eq!((extract.kind, extract.category.as_str(), extract.author), (FunctionKind::Scalar, "JSON", "Sluice"));
        assert_eq!(extract.arguments.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["json", "path"]);
        assert_eq!(
            extract.overloads,
            [Overload { argument_types: vec!["STRING".into(), "STRING".into()], return_type: Some("STRING".into()) }]
        );
        for own in ["TO_BYTES", "COLLECT_LIST", "HISTOGRAM", "AS_VALUE", "ENCODE"] {
            assert_eq!(find(own).unwrap().unwrap().author, "Sluice", "{own}");
        }
        let abs = find("ABS").unwrap().unwrap();
        assert_eq!((abs.category.as_str(), abs.author), ("MATHEMATICAL", "Apache DataFusion"));
        assert!(!abs.description.is_empty());
        assert_eq!(find("LATEST_BY_OFFSET").unwrap().unwrap().kind, FunctionKind::Aggregate);
        assert_eq!(find("NO_SUCH_FUNCTION").unwrap(), None);
        let explode = find("explode").unwrap().unwrap();
        assert_eq!((explode.kind.name(), explode.category.as_str()), ("TABLE", "TABLE"));
        assert_eq!(explode.overloads[0].return_type.as_deref(), Some("T"));
        assert_eq!(find("CUBE_EXPLODE").unwrap().unwrap().kind, FunctionKind::Table);
        let reduce = find("reduce").unwrap().unwrap();
        assert_eq!((reduce.kind, reduce.category.as_str(), reduce.author), (FunctionKind::Scalar, "LAMBDA", "Sluice"));
        assert_eq!(reduce.overloads[1].argument_types, ["map", "initial state", "(s, k, v) => expression"]);
    }
}
