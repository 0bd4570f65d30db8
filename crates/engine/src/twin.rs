//! The stateful twin: a run's copy of the scenario's data tables.
//!
//! Rows are shared with the seed (`Arc`), so starting or resetting a run
//! copies one pointer per table, and the first write to a table copies one
//! pointer per row. That is what keeps a reset well under a millisecond
//! for thousands of rows.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

use serde_json::{Map, Value};

use sandbar_scenario::{Row, TableSeed, key_text};

/// One table as a run sees it.
#[derive(Debug, Clone)]
pub struct Table {
    pub key: Option<String>,
    rows: Arc<Vec<Arc<Row>>>,
    /// Key text to row position, built on first lookup after a change.
    index: Arc<OnceLock<HashMap<String, usize>>>,
}

impl Table {
    fn from_seed(seed: &TableSeed) -> Table {
        Table {
            key: seed.key.clone(),
            rows: seed.rows.clone(),
            index: Arc::new(OnceLock::new()),
        }
    }

    /// The rows, in order.
    pub fn rows(&self) -> &[Arc<Row>] {
        &self.rows
    }

    /// The row whose key column equals `key` (compared as text, so `5`
    /// finds the row with id 5 as well as "5").
    pub fn get(&self, key: &str) -> Option<&Arc<Row>> {
        self.position(key).map(|i| &self.rows[i])
    }

    /// The position of the row with this key. The index is built on the
    /// first lookup and shared by every twin cloned from the same state, so
    /// runs that start from the seed build it once between them.
    fn position(&self, key: &str) -> Option<usize> {
        let column = self.key.as_ref()?;
        let index = self.index.get_or_init(|| {
            self.rows
                .iter()
                .enumerate()
                .filter_map(|(i, r)| r.get(column).map(|v| (key_text(v), i)))
                .collect()
        });
        index.get(key).copied()
    }

    /// Positions of the rows matching `filter`, ascending: by index when the
    /// filter is exactly the key column, by scan otherwise.
    fn matching(&self, filter: &[(String, Value)]) -> Vec<usize> {
        if let ([(column, value)], Some(key)) = (filter, &self.key)
            && column == key
        {
            return self.position(&key_text(value)).into_iter().collect();
        }
        self.rows
            .iter()
            .enumerate()
            .filter(|(_, r)| row_matches(r, filter))
            .map(|(i, _)| i)
            .collect()
    }

    /// Whether any row has this value in `column` (compared as text).
    pub fn contains(&self, column: &str, value: &Value) -> bool {
        if self.key.as_deref() == Some(column) {
            return self.get(&key_text(value)).is_some();
        }
        let wanted = key_text(value);
        self.rows
            .iter()
            .any(|r| r.get(column).is_some_and(|v| key_text(v) == wanted))
    }

    fn rows_mut(&mut self) -> &mut Vec<Arc<Row>> {
        self.index = Arc::new(OnceLock::new());
        Arc::make_mut(&mut self.rows)
    }
}

/// All tables of a run.
#[derive(Debug, Clone, Default)]
pub struct Twin {
    tables: BTreeMap<String, Table>,
}

/// What a set of effects changed, for templates (`effects.inserted` and so
/// on) and for the run's events.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    pub inserted: Vec<(String, Arc<Row>)>,
    pub updated: Vec<(String, Arc<Row>)>,
    pub deleted: Vec<(String, Arc<Row>)>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.inserted.is_empty() && self.updated.is_empty() && self.deleted.is_empty()
    }

    /// As JSON: `{"inserted": {"table": [rows]}, ...}`, omitting empty parts.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        for (name, list) in [
            ("inserted", &self.inserted),
            ("updated", &self.updated),
            ("deleted", &self.deleted),
        ] {
            if list.is_empty() {
                continue;
            }
            let mut by_table: Map<String, Value> = Map::new();
            for (table, row) in list {
                let entry = by_table
                    .entry(table.clone())
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(items) = entry {
                    items.push(Value::Object((**row).clone()));
                }
            }
            out.insert(name.to_owned(), Value::Object(by_table));
        }
        Value::Object(out)
    }
}

impl Twin {
    /// A twin at the seed state.
    pub fn from_seed(seed: &BTreeMap<String, TableSeed>) -> Twin {
        Twin {
            tables: seed
                .iter()
                .map(|(name, s)| (name.clone(), Table::from_seed(s)))
                .collect(),
        }
    }

    /// The table with this name.
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.get(name)
    }

    /// All tables by name.
    pub fn tables(&self) -> &BTreeMap<String, Table> {
        &self.tables
    }

    /// The whole state as JSON (`{"table": [rows]}`).
    pub fn to_json(&self) -> Value {
        Value::Object(
            self.tables
                .iter()
                .map(|(name, t)| {
                    (
                        name.clone(),
                        Value::Array(
                            t.rows
                                .iter()
                                .map(|r| Value::Object((**r).clone()))
                                .collect(),
                        ),
                    )
                })
                .collect(),
        )
    }

    fn table_mut(&mut self, table: &str) -> Result<&mut Table, String> {
        self.tables
            .get_mut(table)
            .ok_or_else(|| format!("there is no table `{table}`"))
    }

    /// Inserts a row. A row whose key is already taken is refused, as a
    /// database with a primary key would.
    pub fn insert(&mut self, table: &str, row: Row, changes: &mut Changes) -> Result<(), String> {
        let t = self.table_mut(table)?;
        if let Some(key) = &t.key {
            match row.get(key) {
                Some(k) if t.get(&key_text(k)).is_some() => {
                    return Err(format!(
                        "{table} already has a row with {key} `{}`",
                        key_text(k)
                    ));
                }
                _ => {}
            }
        }
        let row = Arc::new(row);
        t.rows_mut().push(row.clone());
        changes.inserted.push((table.to_owned(), row));
        Ok(())
    }

    /// Updates every row matching `filter`; `set` computes the new columns
    /// of each matched row (it may read the row's old values).
    pub fn update(
        &mut self,
        table: &str,
        filter: &[(String, Value)],
        mut set: impl FnMut(&Row) -> Result<Vec<(String, Value)>, String>,
        changes: &mut Changes,
    ) -> Result<usize, String> {
        let t = self.table_mut(table)?;
        let matched = t.matching(filter);
        if matched.is_empty() {
            return Ok(0);
        }
        let key = t.key.clone();
        let mut new_rows = Vec::with_capacity(matched.len());
        for &i in &matched {
            let old = &t.rows[i];
            let mut row = (**old).clone();
            for (column, value) in set(old)? {
                if key.as_deref() == Some(column.as_str()) && row.get(&column) != Some(&value) {
                    return Err(format!(
                        "effects may not change the key column `{column}` of {table}"
                    ));
                }
                row.insert(column, value);
            }
            new_rows.push((i, Arc::new(row)));
        }
        let rows = t.rows_mut();
        for (i, row) in new_rows {
            rows[i] = row.clone();
            changes.updated.push((table.to_owned(), row));
        }
        Ok(matched.len())
    }

    /// Deletes every row matching `filter`.
    pub fn delete(
        &mut self,
        table: &str,
        filter: &[(String, Value)],
        changes: &mut Changes,
    ) -> Result<usize, String> {
        let t = self.table_mut(table)?;
        let matched = t.matching(filter);
        if matched.is_empty() {
            return Ok(0);
        }
        let rows = t.rows_mut();
        // Positions ascend; removing from the back keeps the rest valid.
        let mut removed: Vec<(String, Arc<Row>)> = matched
            .iter()
            .rev()
            .map(|&i| (table.to_owned(), rows.remove(i)))
            .collect();
        removed.reverse();
        let count = removed.len();
        changes.deleted.extend(removed);
        Ok(count)
    }
}

/// A row matches when every filter column equals the given value, as text
/// when the types differ (a template renders `5` where the table holds 5).
fn row_matches(row: &Row, filter: &[(String, Value)]) -> bool {
    filter
        .iter()
        .all(|(column, value)| row.get(column).is_some_and(|v| same_key(v, value)))
}

fn same_key(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::String(_), _) | (_, Value::String(_)) => key_text(a) == key_text(b),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn seed() -> BTreeMap<String, TableSeed> {
        let rows: Vec<Arc<Row>> = (0..5)
            .map(|i| {
                let Value::Object(m) = json!({"id": format!("o{i}"), "n": i, "status": "open"})
                else {
                    unreachable!()
                };
                Arc::new(m)
            })
            .collect();
        BTreeMap::from([(
            "orders".to_owned(),
            TableSeed {
                key: Some("id".into()),
                rows: Arc::new(rows),
            },
        )])
    }

    #[test]
    fn writes_do_not_touch_the_seed() {
        let seed = seed();
        let mut twin = Twin::from_seed(&seed);
        let mut changes = Changes::default();
        let n = twin
            .update(
                "orders",
                &[("id".into(), json!("o1"))],
                |_| Ok(vec![("status".into(), json!("refunded"))]),
                &mut changes,
            )
            .expect("update");
        assert_eq!(n, 1);
        assert_eq!(
            twin.table("orders")
                .and_then(|t| t.get("o1"))
                .and_then(|r| r.get("status")),
            Some(&json!("refunded"))
        );
        assert_eq!(seed["orders"].rows[1].get("status"), Some(&json!("open")));
        let fresh = Twin::from_seed(&seed);
        assert_eq!(
            fresh
                .table("orders")
                .and_then(|t| t.get("o1"))
                .and_then(|r| r.get("status")),
            Some(&json!("open"))
        );
    }

    #[test]
    fn keys_are_enforced() {
        let mut twin = Twin::from_seed(&seed());
        let mut changes = Changes::default();
        let Value::Object(dup) = json!({"id": "o2"}) else {
            unreachable!()
        };
        let err = twin
            .insert("orders", dup, &mut changes)
            .expect_err("duplicate key");
        assert!(err.contains("already has a row"), "{err}");
        let err = twin
            .update(
                "orders",
                &[("n".into(), json!(3))],
                |_| Ok(vec![("id".into(), json!("zz"))]),
                &mut changes,
            )
            .expect_err("key change");
        assert!(err.contains("key column"), "{err}");
        assert_eq!(
            twin.delete("orders", &[("status".into(), json!("open"))], &mut changes),
            Ok(5)
        );
        assert!(twin.table("orders").is_some_and(|t| t.rows().is_empty()));
    }

    #[test]
    fn lookups_compare_as_text() {
        let twin = Twin::from_seed(&seed());
        let t = twin.table("orders").expect("table");
        assert!(t.contains("n", &json!("3")));
        assert!(t.contains("n", &json!(3)));
        assert!(!t.contains("n", &json!(9)));
        assert!(t.get("o4").is_some());
    }
}
