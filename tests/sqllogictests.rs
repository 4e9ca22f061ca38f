//! Runs the `.slt` files under `tests/sql/`: SQL behaviour of Sluice's functions, evaluated by
//! DataFusion with ksqlDB's functions registered, as a query over a stream evaluates them.

use std::path::Path;

use datafusion::{arrow::util::display::array_value_to_string, error::DataFusionError, prelude::SessionContext};
use sqllogictest::{DBOutput, DefaultColumnType};

struct Functions {
    ctx: SessionContext,
}

#[async_trait::async_trait]
impl sqllogictest::AsyncDB for Functions {
    type Error = DataFusionError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, DataFusionError> {
        let frame = self.ctx.sql(sql).await?;
        let batches = frame.collect().await?;
        let mut rows = Vec::new();
        let mut width = 0;
        for batch in &batches {
            width = batch.num_columns();
            for row in 0..batch.num_rows() {
                let values = batch
                    .columns()
                    .iter()
                    .map(|c| {
                        if c.is_null(row) {
                            Ok("NULL".to_string())
                        } else {
                            array_value_to_string(c, row).map(|v| if v.is_empty() { "(empty)".into() } else { v })
                        }
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                rows.push(values);
            }
        }
        Ok(DBOutput::Rows {
            types: vec![DefaultColumnType::Any; width],
            rows,
        })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "sluice-functions"
    }
}

#[tokio::main]
async fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sql");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/sql exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .slt files in {}", dir.display());
    let mut failed = 0;
    for file in &files {
        let mut runner = sqllogictest::Runner::new(|| async {
            let mut ctx = SessionContext::new();
            sluice::functions::register_all(&mut ctx, Default::default()).map_err(|e| DataFusionError::External(Box::new(e)))?;
            Ok(Functions { ctx })
        });
        match runner.run_file_async(file).await {
            Ok(()) => println!("ok   {}", file.display()),
            Err(e) => {
                failed += 1;
                println!("FAIL {}\n{e}", file.display());
            }
        }
    }
    println!("{} passed, {failed} failed", files.len() - failed);
    if failed > 0 {
        std::process::exit(1);
    }
}
