//! Reading the plan records to upload: CSV with the documented header, or JSON lines (one record
//! as the API takes it per line). Every row keeps its line number, so that a rejection can name
//! it; a row that cannot be read is a rejection of its own, never the end of the run.

use crate::check::Problem;
use crate::error::CliError;
use serde_json::{Map, Value};
use std::path::Path;

/// The CSV columns, in the documented order. Every column is optional in the header (a file
/// of withdrawals needs only `action`, `nhs_number`, `plan_type`, `case_ref`); an empty cell
/// leaves its field out of the record.
pub const CSV_COLUMNS: [&str; 12] = [
    "action",
    "nhs_number",
    "case_ref",
    "plan_type",
    "start_date",
    "end_date",
    "delete_date",
    "stage",
    "la_ods_code",
    "la_name",
    "office_hours_phone",
    "emergency_duty_team_phone",
];

/// The CSV column of each `local_authority` field.
const LA_COLUMNS: [(&str, &str); 4] = [
    ("la_ods_code", "ods_code"),
    ("la_name", "name"),
    ("office_hours_phone", "office_hours_phone"),
    ("emergency_duty_team_phone", "emergency_duty_team_phone"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Comma-separated values with the documented header.
    Csv,
    /// One JSON record per line, as `POST /api/v1/plans` takes it.
    Jsonl,
}

impl Format {
    /// The format named, or else the one the file's extension tells.
    pub fn of(path: &Path, named: Option<Format>) -> Result<Format, CliError> {
        if let Some(format) = named {
            return Ok(format);
        }
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("csv") => Ok(Format::Csv),
            Some("jsonl" | "ndjson") => Ok(Format::Jsonl),
            _ => Err(CliError::Usage(format!(
                "cannot tell the format of {} from its name: pass --format csv or --format jsonl",
                path.display()
            ))),
        }
    }
}

/// One row of the input: its line number and the record, or why it could not be read.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub line: u64,
    pub record: Result<Value, Problem>,
}

/// Every row of the file. Only a file that cannot be read at all (a CSV header with unknown
/// columns, text that is not UTF-8) is an error; a bad row is a rejected row.
pub fn read_rows(path: &Path, bytes: &[u8], format: Format) -> Result<Vec<Row>, CliError> {
    match format {
        Format::Csv => csv_rows(path, bytes),
        Format::Jsonl => jsonl_rows(path, bytes),
    }
}

fn csv_rows(path: &Path, bytes: &[u8]) -> Result<Vec<Row>, CliError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| CliError::file(path, format!("cannot read the CSV header: {e}")))?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_ascii_lowercase())
        .collect();
    check_header(&header).map_err(|m| CliError::file(path, m))?;
    Ok(reader
        .records()
        .map(|result| match result {
            Ok(fields) => Row {
                line: fields.position().map_or(0, |p| p.line()),
                record: Ok(csv_record(&header, fields.iter())),
            },
            Err(e) => Row {
                line: e.position().map_or(0, |p| p.line()),
                record: Err(Problem::new("", "malformed_row", csv_error(&e))),
            },
        })
        .collect())
}

fn csv_error(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => {
            format!("the row has {len} fields but the header has {expected_len}")
        }
        csv::ErrorKind::Utf8 { .. } => "the row is not UTF-8 text".into(),
        _ => e.to_string(),
    }
}

fn check_header(header: &[String]) -> Result<(), String> {
    for (i, column) in header.iter().enumerate() {
        if !CSV_COLUMNS.contains(&column.as_str()) {
            return Err(format!(
                "unknown CSV column {column:?}; the columns are: {} (see `cpis upload --help`)",
                CSV_COLUMNS.join(",")
            ));
        }
        if header[..i].contains(column) {
            return Err(format!("the CSV column {column:?} appears twice"));
        }
    }
    if !header.iter().any(|c| c == "plan_type" || c == "case_ref") {
        return Err(format!(
            "the first line must be the header ({}); found no case_ref or plan_type column",
            CSV_COLUMNS.join(",")
        ));
    }
    Ok(())
}

/// The record JSON for a CSV row: empty cells are left out, the `la_*` and phone columns go
/// into `local_authority`.
pub fn csv_record<'a>(header: &[String], fields: impl Iterator<Item = &'a str>) -> Value {
    let mut record = Map::new();
    let mut la = Map::new();
    for (column, value) in header.iter().zip(fields) {
        if value.is_empty() {
            continue;
        }
        let value = Value::String(value.to_string());
        match LA_COLUMNS.iter().find(|(c, _)| c == column) {
            Some((_, field)) => la.insert(field.to_string(), value),
            None => record.insert(column.clone(), value),
        };
    }
    if !la.is_empty() {
        record.insert("local_authority".into(), Value::Object(la));
    }
    Value::Object(record)
}

fn jsonl_rows(path: &Path, bytes: &[u8]) -> Result<Vec<Row>, CliError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| CliError::file(path, format!("the file is not UTF-8 text: {e}")))?;
    Ok(text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| Row {
            line: i as u64 + 1,
            record: match serde_json::from_str::<Value>(line) {
                Ok(record @ Value::Object(_)) => Ok(record),
                Ok(_) => Err(Problem::new(
                    "",
                    "malformed_json",
                    "the line is not a JSON object",
                )),
                Err(e) => Err(Problem::new(
                    "",
                    "malformed_json",
                    format!("the line is not JSON: {e}"),
                )),
            },
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rows(format: Format, text: &str) -> Result<Vec<Row>, CliError> {
        read_rows(Path::new("in"), text.as_bytes(), format)
    }

    #[test]
    fn csv_rows_become_records_with_their_line_numbers() {
        let text = "nhs_number,case_ref,plan_type,start_date,end_date,la_ods_code,la_name,office_hours_phone,emergency_duty_team_phone\n\
                    943 476 5919,C-1,342191000000101,2026-01-10,,LA1,\"Leeds, City\",0113 222 4401,0113 535 0600\n\
                    ,C-2,764841000000100,2026-02-01,,,,,\n";
        let rows = rows(Format::Csv, text).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].line, 2);
        assert_eq!(
            rows[0].record.as_ref().unwrap(),
            &json!({"nhs_number": "943 476 5919", "case_ref": "C-1", "plan_type": "342191000000101",
                    "start_date": "2026-01-10",
                    "local_authority": {"ods_code": "LA1", "name": "Leeds, City",
                        "office_hours_phone": "0113 222 4401", "emergency_duty_team_phone": "0113 535 0600"}})
        );
        assert_eq!(
            rows[1].record.as_ref().unwrap(),
            &json!({"case_ref": "C-2", "plan_type": "764841000000100", "start_date": "2026-02-01"})
        );
    }

    #[test]
    fn a_short_csv_row_is_rejected_alone() {
        let rows = rows(Format::Csv, "case_ref,plan_type\nA,1\nB\nC,2\n").unwrap();
        assert_eq!(rows.len(), 3);
        let problem = rows[1].record.as_ref().unwrap_err();
        assert_eq!((rows[1].line, problem.code.as_str()), (3, "malformed_row"));
        assert_eq!(problem.message, "the row has 1 fields but the header has 2");
        assert!(rows[2].record.is_ok());
    }

    #[test]
    fn unknown_or_repeated_columns_and_a_missing_header_stop_the_run() {
        for (text, says) in [
            ("case_ref,colour\n", "unknown CSV column \"colour\""),
            ("case_ref,case_ref\n", "appears twice"),
            ("nhs_number\n9434765919\n", "must be the header"),
        ] {
            let err = rows(Format::Csv, text).unwrap_err();
            assert!(
                matches!(&err, CliError::File { message, .. } if message.contains(says)),
                "{err}"
            );
        }
        // A byte-order mark and upper case are tolerated.
        assert!(rows(Format::Csv, "\u{feff}CASE_REF,Plan_Type\nA,B\n").is_ok());
    }

    #[test]
    fn json_lines_keep_line_numbers_and_skip_blank_lines() {
        let rows = rows(Format::Jsonl, "{\"case_ref\":\"A\"}\n\n[1]\n{oops\n").unwrap();
        assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), [1, 3, 4]);
        assert_eq!(
            rows[1].record.as_ref().unwrap_err().message,
            "the line is not a JSON object"
        );
        assert!(
            rows[2]
                .record
                .as_ref()
                .unwrap_err()
                .message
                .starts_with("the line is not JSON")
        );
        assert!(matches!(
            read_rows(Path::new("x"), b"\xff\n", Format::Jsonl),
            Err(CliError::File { .. })
        ));
    }

    #[test]
    fn the_format_comes_from_the_flag_or_the_extension() {
        assert_eq!(Format::of(Path::new("a.CSV"), None).unwrap(), Format::Csv);
        assert_eq!(
            Format::of(Path::new("a.ndjson"), None).unwrap(),
            Format::Jsonl
        );
        assert_eq!(
            Format::of(Path::new("a.txt"), Some(Format::Csv)).unwrap(),
            Format::Csv
        );
        assert!(matches!(
            Format::of(Path::new("a.txt"), None),
            Err(CliError::Usage(_))
        ));
    }
}
