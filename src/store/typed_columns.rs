//! Which JSON fields the store writes to typed columns, read from the
//! mapping it builds for a fresh database: the authority `ouradb coverage`
//! compares an Oura spec with.

use super::StoreError;
use super::mapping::{self, Fill, SeriesColumn, Shape};
use super::schema::fresh_in_memory;
use crate::registry::DataType;

/// A typed column of a data type's table and the JSON fields it is filled
/// from (paths inside a document or time-series row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypedColumn {
    pub column: String,
    /// Any of these fills it: a flattened column takes its own name first,
    /// then the nested path (`readiness_score_delta` or
    /// `readiness.score_delta`); a time series' `ts` takes `timestamp`
    /// and `timestamp_unix`.
    pub paths: Vec<Vec<String>>,
}

/// The typed columns of each of `types` as the store maps them in a fresh
/// database, in table order. Columns ouradb fills itself (bookkeeping,
/// decoded times, `extra`) are left out.
pub fn typed_columns(
    types: &[DataType],
) -> Result<Vec<(&'static str, Vec<TypedColumn>)>, StoreError> {
    let conn = fresh_in_memory()?;
    types
        .iter()
        .map(|dt| Ok((dt.name, columns_of(&mapping::build(&conn, dt)?))))
        .collect()
}

fn columns_of(shape: &Shape) -> Vec<TypedColumn> {
    let column = |name: &str, paths: Vec<Vec<String>>| TypedColumn {
        column: name.to_owned(),
        paths,
    };
    match shape {
        Shape::Document(t) => t
            .columns
            .iter()
            .filter_map(|c| match &c.fill {
                Fill::Field { nested } => {
                    let own = vec![c.name.clone()];
                    Some(column(
                        &c.name,
                        std::iter::once(own).chain(nested.clone()).collect(),
                    ))
                }
                Fill::Path(p) => Some(column(&c.name, vec![p.clone()])),
                Fill::Seconds(_) => None,
            })
            .collect(),
        Shape::Series(t) => t
            .columns
            .iter()
            .flat_map(|c| match c {
                SeriesColumn::Ts => vec![column(
                    "ts",
                    vec![vec!["timestamp".into()], vec!["timestamp_unix".into()]],
                )],
                SeriesColumn::TsMs => vec![column(
                    "ts_ms",
                    vec![vec!["timestamp".into()], vec!["timestamp_unix".into()]],
                )],
                SeriesColumn::Extra => vec![],
                SeriesColumn::Field(f) => vec![column(f, vec![vec![f.clone()]])],
                // Read back by virtual columns of the fields' own names.
                SeriesColumn::Packed(p) => [p.high, p.low]
                    .map(|f| column(f, vec![vec![f.to_owned()]]))
                    .into(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::DATA_TYPES;

    #[test]
    fn flattened_columns_name_their_nested_fields_and_ts_its_two_times() {
        let all = typed_columns(DATA_TYPES).unwrap();
        let of = |name: &str, col: &str| {
            let (_, cols) = all.iter().find(|(n, _)| *n == name).unwrap();
            cols.iter().find(|c| c.column == col).cloned()
        };
        let path = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            of("sleep", "readiness_contributors_hrv_balance")
                .unwrap()
                .paths,
            [
                path(&["readiness_contributors_hrv_balance"]),
                path(&["readiness", "contributors", "hrv_balance"])
            ]
        );
        assert_eq!(
            of("heartrate", "ts").unwrap().paths,
            [path(&["timestamp"]), path(&["timestamp_unix"])]
        );
        assert_eq!(of("sleep", "id").unwrap().paths, [path(&["id"])]);
        for bookkeeping in ["raw_json", "pk", "bedtime_start_ts"] {
            assert_eq!(of("sleep", bookkeeping), None, "{bookkeeping}");
        }
        assert_eq!(of("heartrate", "extra"), None);
    }
}
