//! Each domain's `schema.rs` (and core's `audit_log` declaration) says exactly what the
//! migrations build: every declared table and column exists with that type, nullability
//! and primary key, no column of a declared table is missing, and each `diesel.toml`
//! section lists exactly the tables its file declares. diesel's CLI is not available
//! here (it links libpq), so this test stands in for `diesel print-schema --diff`.

use std::collections::BTreeMap;
use std::path::Path;

use diesel::QueryableByName;
use diesel::sql_types::{Bool, Text};
use diesel_async::RunQueryDsl;
use ecom_testkit::TestDb;

/// A column as declared: its diesel type (`Int8`) and whether it is `Nullable<…>`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Column {
    sql_type: String,
    nullable: bool,
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Table {
    primary_key: Vec<String>,
    columns: BTreeMap<String, Column>,
}

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// The `diesel::table!` blocks of one file.
fn declared_tables(source: &str) -> BTreeMap<String, Table> {
    let mut tables = BTreeMap::new();
    for block in source.split("diesel::table! {").skip(1) {
        let body = block.split("\n}").next().unwrap_or_default();
        let mut lines = body
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("use ") && !l.starts_with("//"));
        let Some(head) = lines.next() else { continue };
        let (name, rest) = head.split_once('(').expect("table head: name (key) {");
        let key = rest.split_once(')').expect("closing parenthesis").0;
        let mut table = Table {
            primary_key: key.split(',').map(|k| k.trim().to_string()).collect(),
            ..Table::default()
        };
        for line in lines {
            let Some((column, ty)) = line.trim_end_matches(',').split_once("->") else {
                continue;
            };
            let ty = ty.trim();
            let (sql_type, nullable) = match ty.strip_prefix("Nullable<") {
                Some(inner) => (inner.trim_end_matches('>').to_string(), true),
                None => (ty.to_string(), false),
            };
            table
                .columns
                .insert(column.trim().to_string(), Column { sql_type, nullable });
        }
        tables.insert(name.trim().to_string(), table);
    }
    tables
}

/// PostgreSQL's `udt_name` for a diesel type name (`_text` for `Array<Nullable<Text>>`).
fn udt_name(diesel_type: &str) -> String {
    if let Some(element) = diesel_type
        .strip_prefix("Array<")
        .and_then(|t| t.strip_suffix('>'))
    {
        let element = element
            .strip_prefix("Nullable<")
            .and_then(|t| t.strip_suffix('>'))
            .unwrap_or(element);
        return format!("_{}", udt_name(element));
    }
    match diesel_type {
        "Int2" => "int2",
        "Int4" => "int4",
        "Int8" => "int8",
        "Float4" => "float4",
        "Float8" => "float8",
        "Text" => "text",
        "Bool" => "bool",
        "Bytea" => "bytea",
        "Numeric" => "numeric",
        "Json" => "json",
        "Jsonb" => "jsonb",
        "Date" => "date",
        "Timestamptz" => "timestamptz",
        "Tsvector" => "tsvector",
        "Uuid" => "uuid",
        other => panic!("add {other} to udt_name()"),
    }
    .to_string()
}

#[derive(QueryableByName)]
struct DbColumn {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Text)]
    udt_name: String,
    #[diesel(sql_type = Bool)]
    nullable: bool,
    #[diesel(sql_type = Bool)]
    in_primary_key: bool,
}

async fn migrated_tables() -> BTreeMap<String, Table> {
    let db = TestDb::new().await;
    let mut conn = db.connect().await;
    let rows: Vec<DbColumn> = diesel::sql_query(
        "SELECT c.table_name::text, c.column_name::text, c.udt_name::text, \
                c.is_nullable = 'YES' AS nullable, \
                EXISTS (SELECT 1 FROM information_schema.key_column_usage k \
                        JOIN information_schema.table_constraints t \
                          ON t.constraint_name = k.constraint_name AND t.table_name = k.table_name \
                        WHERE t.constraint_type = 'PRIMARY KEY' AND k.table_name = c.table_name \
                          AND k.column_name = c.column_name) AS in_primary_key \
         FROM information_schema.columns c WHERE c.table_schema = 'public' \
         ORDER BY c.table_name, c.ordinal_position",
    )
    .load(&mut conn)
    .await
    .expect("read the catalog");
    let mut tables: BTreeMap<String, Table> = BTreeMap::new();
    for row in rows {
        let table = tables.entry(row.table_name).or_default();
        if row.in_primary_key {
            table.primary_key.push(row.column_name.clone());
        }
        table.columns.insert(
            row.column_name,
            Column {
                sql_type: row.udt_name,
                nullable: row.nullable,
            },
        );
    }
    tables
}

#[actix_web::test]
async fn every_schema_file_matches_the_migrations() {
    let sources = [
        ("auth", "crates/ecom-auth/src/schema.rs"),
        ("catalog", "crates/ecom-catalog/src/schema.rs"),
        ("orders", "crates/ecom-orders/src/schema.rs"),
        ("carts", "crates/ecom-carts/src/schema.rs"),
        ("payments", "crates/ecom-payments/src/schema.rs"),
        ("webhooks", "crates/ecom-webhooks/src/schema.rs"),
        ("core", "crates/ecom-core/src/audit.rs"),
        ("core", "crates/ecom-core/src/events.rs"),
        ("core", "crates/ecom-core/src/mail.rs"),
    ];
    let migrated = migrated_tables().await;
    let diesel_toml = std::fs::read_to_string(root().join("diesel.toml")).expect("diesel.toml");
    for (domain, file) in sources {
        let source = std::fs::read_to_string(root().join(file)).expect("schema file");
        let declared = declared_tables(&source);
        assert!(!declared.is_empty(), "{file} declares tables");
        for (name, table) in &declared {
            let actual = migrated
                .get(name)
                .unwrap_or_else(|| panic!("{file}: table {name} is not in the migrations"));
            let mut want_key = table.primary_key.clone();
            let mut got_key = actual.primary_key.clone();
            want_key.sort();
            got_key.sort();
            assert_eq!(want_key, got_key, "{file}: primary key of {name}");
            let declared_columns: Vec<&String> = table.columns.keys().collect();
            let migrated_columns: Vec<&String> = actual.columns.keys().collect();
            assert_eq!(
                declared_columns, migrated_columns,
                "{file}: columns of {name}"
            );
            for (column, want) in &table.columns {
                let got = &actual.columns[column];
                assert_eq!(
                    (udt_name(&want.sql_type), want.nullable),
                    (got.sql_type.clone(), got.nullable),
                    "{file}: {name}.{column} (type, nullable)"
                );
            }
        }
        if domain == "core" {
            continue;
        }
        // diesel.toml's filter for this domain lists exactly the declared tables.
        let section = diesel_toml
            .split(&format!("[print_schema.{domain}]"))
            .nth(1)
            .unwrap_or_else(|| panic!("diesel.toml has [print_schema.{domain}]"));
        let only = section
            .split("only_tables = [")
            .nth(1)
            .and_then(|s| s.split(']').next())
            .expect("only_tables");
        let mut listed: Vec<String> = only
            .split(',')
            .map(|t| t.trim().trim_matches('"').to_string())
            .filter(|t| !t.is_empty())
            .collect();
        listed.sort();
        let names: Vec<String> = declared.keys().cloned().collect();
        assert_eq!(
            listed, names,
            "diesel.toml [print_schema.{domain}] only_tables"
        );
    }
}

#[test]
fn the_parser_reads_keys_types_and_nullability() {
    let tables = declared_tables(
        "diesel::table! {\n    pairs (user_id, key) {\n        user_id -> Int8,\n        note -> Nullable<Text>,\n    }\n}\n",
    );
    let pairs = &tables["pairs"];
    assert_eq!(pairs.primary_key, vec!["user_id", "key"]);
    assert_eq!(
        pairs.columns["note"],
        Column {
            sql_type: "Text".into(),
            nullable: true
        }
    );
}
